#include "call_args.h"

#include <vector>

#include "../core/layout.h"

namespace kapre_fast {
namespace jax_ffi {
namespace {

using Dims = ffi::Span<const int64_t>;

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
// declared, and the kernels write every element of the expected shape.
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

// threads: 0 for every core, else the worker count (the CPU handlers' pool size).
ffi::Error check_threads(int64_t threads) {
  if (threads < 0 || threads > 1024) {
    return invalid("threads must be in [0, 1024], got " + std::to_string(threads));
  }
  return ffi::Error::Success();
}

}  // namespace

ffi::Error invalid(const std::string& message) {
  return ffi::Error::InvalidArgument("kapre_fast: " + message);
}

ffi::Error check_front_end(const FrontEndAttrs& a, const ffi::AnyBuffer& audio,
                           const ffi::AnyBuffer& result, FrontEndCall* call) {
  if (a.output < 0 || a.output > 2) {
    return invalid("output must be 0 (magnitude), 1 (mag_phase) or 2 (complex), got " +
                   std::to_string(a.output));
  }
  if (ffi::Error error = check_threads(a.threads); error.failure()) return error;
  FrontEndConfig& cfg = call->cfg;
  cfg.n_fft = a.n_fft;
  cfg.win_length = a.win_length;
  cfg.hop_length = a.hop_length;
  cfg.pad_begin = a.pad_begin;
  cfg.pad_end = a.pad_end;
  cfg.output = static_cast<OutputKind>(a.output);
  cfg.decibel = a.decibel;
  cfg.amin = a.amin;
  cfg.ref_value = a.ref_value;
  cfg.dynamic_range = a.dynamic_range;
  if (a.band_start.size() != a.band_length.size()) {
    return invalid("band_start has " + std::to_string(a.band_start.size()) +
                   " entries but band_length has " + std::to_string(a.band_length.size()));
  }
  BandView& bands = call->bands;
  bands.n_bands = static_cast<int64_t>(a.band_start.size());
  bands.start = a.band_start.begin();
  bands.length = a.band_length.begin();
  bands.weights = a.band_weights.begin();
  bands.n_weights = static_cast<int64_t>(a.band_weights.size());
  std::string err = check_config(cfg, static_cast<int64_t>(a.window.size()), bands);
  if (!err.empty()) return invalid(err);
  call->window = a.window.begin();

  const bool in_first = a.input_channels_first;
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
  call->signal = contiguous_signal(static_cast<const float*>(audio.untyped_data()), batch,
                                   dims[in_first ? rank - 2 : rank - 1],
                                   dims[in_first ? rank - 1 : rank - 2], in_first);
  err = check_signal(cfg, bands, call->signal);
  if (!err.empty()) return invalid(err);

  call->frames = frame_count(cfg, call->signal.time);
  call->features = feature_count(cfg, bands);
  call->out_channels = cfg.output == OutputKind::kMagPhase ? 2 * call->signal.channels
                                                           : call->signal.channels;
  call->out_first = a.output_channels_first;
  std::vector<int64_t> expected(dims.begin(), dims.end() - 2);
  if (call->out_first) {
    expected.insert(expected.end(), {call->out_channels, call->frames, call->features});
  } else {
    expected.insert(expected.end(), {call->frames, call->features, call->out_channels});
  }
  const bool complex = cfg.output == OutputKind::kComplex;
  if (ffi::Error error = check_result(result, complex ? ffi::DataType::C64 : ffi::DataType::F32,
                                      expected);
      error.failure()) {
    return error;
  }
  call->out = static_cast<float*>(result.untyped_data());
  return ffi::Error::Success();
}

ffi::Error check_inverse_stft(const InverseStftAttrs& a, const ffi::AnyBuffer& stft,
                              const ffi::AnyBuffer& result, InverseStftCall* call) {
  if (ffi::Error error = check_threads(a.threads); error.failure()) return error;
  FrontEndConfig& cfg = call->cfg;
  cfg.n_fft = a.n_fft;
  cfg.win_length = a.win_length;
  cfg.hop_length = a.hop_length;
  cfg.output = OutputKind::kComplex;
  const bool in_first = a.input_channels_first;
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
  call->in = contiguous_complex(static_cast<const float*>(stft.untyped_data()), batch, channels,
                                frames, bins, in_first);
  const std::string err = check_istft(cfg, static_cast<int64_t>(a.window.size()), call->in);
  if (!err.empty()) return invalid(err);
  call->window = a.window.begin();

  call->length = istft_length(cfg, frames);
  call->out_first = a.output_channels_first;
  std::vector<int64_t> expected(dims.begin(), dims.end() - 3);
  if (call->out_first) {
    expected.insert(expected.end(), {channels, call->length});
  } else {
    expected.insert(expected.end(), {call->length, channels});
  }
  if (ffi::Error error = check_result(result, ffi::DataType::F32, expected); error.failure()) {
    return error;
  }
  call->out = static_cast<float*>(result.untyped_data());
  return ffi::Error::Success();
}

}  // namespace jax_ffi
}  // namespace kapre_fast
