// CPU XLA FFI handlers over csrc/core (see handlers.h): thin adapters that check every attribute,
// shape and dtype (the audio's, and the result buffer XLA allocated from the caller's declared
// shape) with the core's check_* functions before any memory is touched, then call the same
// compute_frontend / compute_istft as the NumPy module and the TF kernels. Errors come back as
// ffi::Error (INVALID_ARGUMENT naming the argument), never as a crash.
#include "handlers.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "../core/layout.h"
#include "../core/pipeline.h"

namespace ffi = xla::ffi;

namespace kapre_fast {
namespace {

using Dims = ffi::Span<const int64_t>;

ffi::Error invalid(const std::string& message) {
  return ffi::Error::InvalidArgument("kapre_fast: " + message);
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    text += std::to_string(dims[i]) + (i + 1 < dims.size() ? ", " : "");
  }
  return text + (dims.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> to_vector(Dims dims) { return std::vector<int64_t>(dims.begin(), dims.end()); }

const char* dtype_name(ffi::DataType dtype) {
  switch (dtype) {
    case ffi::DataType::F32: return "float32";
    case ffi::DataType::F64: return "float64";
    case ffi::DataType::F16: return "float16";
    case ffi::DataType::BF16: return "bfloat16";
    case ffi::DataType::C64: return "complex64";
    case ffi::DataType::C128: return "complex128";
    case ffi::DataType::S32: return "int32";
    case ffi::DataType::S64: return "int64";
    case ffi::DataType::PRED: return "bool";
    default: return "another dtype";
  }
}

// The product of the leading axes dims[0 .. rank - trailing): kapre's batch axis and the ones
// vmap adds in front of it. False when it overflows.
bool folded_batch(Dims dims, std::size_t trailing, int64_t* batch) {
  int64_t product = 1;
  for (std::size_t i = 0; i + trailing < dims.size(); ++i) {
    if (dims[i] < 0 || __builtin_mul_overflow(product, dims[i], &product)) return false;
  }
  *batch = product;
  return true;
}

// The result buffer must be what the inputs produce: XLA allocated it from the shape the caller
// declared, and the kernel writes every element of the expected shape.
ffi::Error check_result(const ffi::AnyBuffer& result, ffi::DataType dtype,
                        const std::vector<int64_t>& expected) {
  const std::vector<int64_t> got = to_vector(result.dimensions());
  if (result.element_type() != dtype || got != expected) {
    return invalid(std::string("the result must be ") + dtype_name(dtype) + " of shape " +
                   shape_text(expected) + ", got " + dtype_name(result.element_type()) +
                   " of shape " + shape_text(got));
  }
  return ffi::Error::Success();
}

// threads: 0 for every core (as the NumPy module), else the worker count.
ffi::Error parallel_for(int64_t threads, ParallelFor* parallel) {
  if (threads < 0 || threads > 1024) {
    return invalid("threads must be in [0, 1024], got " + std::to_string(threads));
  }
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  *parallel = thread_pool_for(static_cast<int>(threads));
  return ffi::Error::Success();
}

// Runs fn, turning a failed scratch allocation (or any other exception) into an FFI error: an
// exception must not cross the C boundary into XLA.
template <class Fn>
ffi::Error run_guarded(Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "kapre_fast: out of memory for scratch buffers");
  } catch (const std::exception& error) {
    return ffi::Error::Internal(std::string("kapre_fast: ") + error.what());
  }
  return ffi::Error::Success();
}

ffi::Error FrontEndImpl(ffi::AnyBuffer audio, ffi::Result<ffi::AnyBuffer> result, int64_t n_fft,
                        int64_t win_length, int64_t hop_length, int64_t pad_begin, bool pad_end,
                        int64_t output, bool decibel, float amin, float ref_value,
                        float dynamic_range, bool input_channels_first,
                        bool output_channels_first, int64_t threads,
                        ffi::Span<const float> window, ffi::Span<const int32_t> band_start,
                        ffi::Span<const int32_t> band_length,
                        ffi::Span<const float> band_weights) {
  if (output < 0 || output > 2) {
    return invalid("output must be 0 (magnitude), 1 (mag_phase) or 2 (complex), got " +
                   std::to_string(output));
  }
  ParallelFor parallel;
  if (ffi::Error error = parallel_for(threads, &parallel); error.failure()) return error;
  FrontEndConfig cfg;
  cfg.n_fft = n_fft;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.pad_begin = pad_begin;
  cfg.pad_end = pad_end;
  cfg.output = static_cast<OutputKind>(output);
  cfg.decibel = decibel;
  cfg.amin = amin;
  cfg.ref_value = ref_value;
  cfg.dynamic_range = dynamic_range;
  if (band_start.size() != band_length.size()) {
    return invalid("band_start has " + std::to_string(band_start.size()) +
                   " entries but band_length has " + std::to_string(band_length.size()));
  }
  BandView bands;
  bands.n_bands = static_cast<int64_t>(band_start.size());
  bands.start = band_start.begin();
  bands.length = band_length.begin();
  bands.weights = band_weights.begin();
  bands.n_weights = static_cast<int64_t>(band_weights.size());
  std::string err = check_config(cfg, static_cast<int64_t>(window.size()), bands);
  if (!err.empty()) return invalid(err);

  const bool in_first = input_channels_first, out_first = output_channels_first;
  if (audio.element_type() != ffi::DataType::F32) {
    return invalid(std::string("audio must be float32, got ") + dtype_name(audio.element_type()));
  }
  const Dims dims = audio.dimensions();
  const std::size_t rank = dims.size();
  if (rank < 3) {
    return invalid(std::string("audio must have 3 axes ") +
                   (in_first ? "(batch, channels, time)" : "(batch, time, channels)") +
                   " (more in front under vmap), got shape " + shape_text(to_vector(dims)));
  }
  int64_t batch = 0;
  if (!folded_batch(dims, 2, &batch)) {
    return invalid("audio shape " + shape_text(to_vector(dims)) + " is too large");
  }
  const SignalView signal = contiguous_signal(
      static_cast<const float*>(audio.untyped_data()), batch, dims[in_first ? rank - 2 : rank - 1],
      dims[in_first ? rank - 1 : rank - 2], in_first);
  err = check_signal(cfg, bands, signal);
  if (!err.empty()) return invalid(err);

  const int64_t frames = frame_count(cfg, signal.time);
  const int64_t features = feature_count(cfg, bands);
  const bool complex = cfg.output == OutputKind::kComplex;
  const int64_t out_channels =
      cfg.output == OutputKind::kMagPhase ? 2 * signal.channels : signal.channels;
  std::vector<int64_t> expected(dims.begin(), dims.end() - 2);
  if (out_first) {
    expected.insert(expected.end(), {out_channels, frames, features});
  } else {
    expected.insert(expected.end(), {frames, features, out_channels});
  }
  if (ffi::Error error = check_result(*result, complex ? ffi::DataType::C64 : ffi::DataType::F32,
                                      expected);
      error.failure()) {
    return error;
  }
  float* data = static_cast<float*>(result->untyped_data());
  FeatureView out =
      contiguous_features(data, out_channels, frames, features, out_first, complex ? 2 : 1);
  if (cfg.output == OutputKind::kMagPhase) out.phase = data + signal.channels * out.sc;
  return run_guarded(
      [&] { compute_frontend(cfg, window.begin(), bands, signal, out, parallel); });
}

ffi::Error InverseStftImpl(ffi::AnyBuffer stft, ffi::Result<ffi::AnyBuffer> result,
                           int64_t n_fft, int64_t win_length, int64_t hop_length,
                           bool input_channels_first, bool output_channels_first,
                           int64_t threads, ffi::Span<const float> window) {
  ParallelFor parallel;
  if (ffi::Error error = parallel_for(threads, &parallel); error.failure()) return error;
  FrontEndConfig cfg;
  cfg.n_fft = n_fft;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.output = OutputKind::kComplex;
  const bool in_first = input_channels_first, out_first = output_channels_first;
  if (stft.element_type() != ffi::DataType::C64) {
    return invalid(std::string("stft must be complex64, got ") + dtype_name(stft.element_type()));
  }
  const Dims dims = stft.dimensions();
  const std::size_t rank = dims.size();
  if (rank < 4) {
    return invalid(std::string("stft must have 4 axes ") +
                   (in_first ? "(batch, channels, frames, bins)"
                             : "(batch, frames, bins, channels)") +
                   " (more in front under vmap), got shape " + shape_text(to_vector(dims)));
  }
  int64_t batch = 0;
  if (!folded_batch(dims, 3, &batch)) {
    return invalid("stft shape " + shape_text(to_vector(dims)) + " is too large");
  }
  const int64_t channels = dims[in_first ? rank - 3 : rank - 1];
  const int64_t frames = dims[in_first ? rank - 2 : rank - 3];
  const int64_t bins = dims[in_first ? rank - 1 : rank - 2];
  const ComplexInputView in = contiguous_complex(static_cast<const float*>(stft.untyped_data()),
                                                 batch, channels, frames, bins, in_first);
  const std::string err = check_istft(cfg, static_cast<int64_t>(window.size()), in);
  if (!err.empty()) return invalid(err);

  const int64_t length = istft_length(cfg, frames);
  std::vector<int64_t> expected(dims.begin(), dims.end() - 3);
  if (out_first) {
    expected.insert(expected.end(), {channels, length});
  } else {
    expected.insert(expected.end(), {length, channels});
  }
  if (ffi::Error error = check_result(*result, ffi::DataType::F32, expected); error.failure()) {
    return error;
  }
  const SignalOutView out = contiguous_signal_out(static_cast<float*>(result->untyped_data()),
                                                  channels, length, out_first);
  return run_guarded([&] { compute_istft(cfg, window.begin(), in, out, parallel); });
}

}  // namespace
}  // namespace kapre_fast

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastFrontEndCpu, kapre_fast::FrontEndImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // audio
                                  .Ret<ffi::AnyBuffer>()  // features
                                  .Attr<int64_t>("n_fft")
                                  .Attr<int64_t>("win_length")
                                  .Attr<int64_t>("hop_length")
                                  .Attr<int64_t>("pad_begin")
                                  .Attr<bool>("pad_end")
                                  .Attr<int64_t>("output")
                                  .Attr<bool>("decibel")
                                  .Attr<float>("amin")
                                  .Attr<float>("ref_value")
                                  .Attr<float>("dynamic_range")
                                  .Attr<bool>("input_channels_first")
                                  .Attr<bool>("output_channels_first")
                                  .Attr<int64_t>("threads")
                                  .Attr<ffi::Span<const float>>("window")
                                  .Attr<ffi::Span<const int32_t>>("band_start")
                                  .Attr<ffi::Span<const int32_t>>("band_length")
                                  .Attr<ffi::Span<const float>>("band_weights"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastInverseStftCpu, kapre_fast::InverseStftImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // stft
                                  .Ret<ffi::AnyBuffer>()  // waveforms
                                  .Attr<int64_t>("n_fft")
                                  .Attr<int64_t>("win_length")
                                  .Attr<int64_t>("hop_length")
                                  .Attr<bool>("input_channels_first")
                                  .Attr<bool>("output_channels_first")
                                  .Attr<int64_t>("threads")
                                  .Attr<ffi::Span<const float>>("window"));
