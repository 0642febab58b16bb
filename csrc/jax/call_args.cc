#include "call_args.h"

#include <vector>

#include "../core/layout.h"

namespace kapre_fast {
namespace jax_ffi {
namespace {

using Dims = ffi::Span<const int64_t>;

std::vector<int64_t> to_vector(Dims dims) { return std::vector<int64_t>(dims.begin(), dims.end()); }

const char* dtype_name(ffi::DataType dtype) {
  switch (dtype) {
    case ffi::DataType::F32:
      return "float32";
    case ffi::DataType::F64:
      return "float64";
    case ffi::DataType::F16:
      return "float16";
    case ffi::DataType::BF16:
      return "bfloat16";
    case ffi::DataType::C64:
      return "complex64";
    case ffi::DataType::C128:
      return "complex128";
    case ffi::DataType::S32:
      return "int32";
    case ffi::DataType::S64:
      return "int64";
    case ffi::DataType::PRED:
      return "bool";
    default:
      return "another dtype";
  }
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

// A shared check's message ("" when fine) as an FFI error.
ffi::Error as_error(const std::string& message) {
  return message.empty() ? ffi::Error::Success() : invalid(message);
}

}  // namespace

ffi::Error invalid(const std::string& message) {
  return ffi::Error::InvalidArgument("kapre_fast: " + message);
}

ffi::Error check_front_end(const FrontEndAttrs& a, const ffi::AnyBuffer& audio,
                           const ffi::AnyBuffer& result, FrontEndCall* call) {
  if (ffi::Error error = as_error(check_threads(a.threads)); error.failure()) return error;
  FrontEndConfig& cfg = call->cfg;
  if (ffi::Error error = as_error(to_config(kernel_args_of(a), &cfg)); error.failure()) {
    return error;
  }
  if (ffi::Error error = as_error(check_front_end_config(
          a.window.begin(), static_cast<int64_t>(a.window.size()), a.band_start.begin(),
          static_cast<int64_t>(a.band_start.size()), a.band_length.begin(),
          static_cast<int64_t>(a.band_length.size()), a.band_weights.begin(),
          static_cast<int64_t>(a.band_weights.size()), call));
      error.failure()) {
    return error;
  }

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
  if (ffi::Error error =
          as_error(check_front_end_audio(static_cast<const float*>(audio.untyped_data()),
                                         to_vector(dims), in_first, a.output_channels_first, call));
      error.failure()) {
    return error;
  }
  const bool complex = cfg.output == OutputKind::kComplex;
  if (ffi::Error error =
          check_result(result, complex ? ffi::DataType::C64 : ffi::DataType::F32, call->out_shape);
      error.failure()) {
    return error;
  }
  call->out = static_cast<float*>(result.untyped_data());
  return ffi::Error::Success();
}

ffi::Error check_inverse_stft(const InverseStftAttrs& a, const ffi::AnyBuffer& stft,
                              const ffi::AnyBuffer& result, InverseStftCall* call) {
  if (ffi::Error error = as_error(check_threads(a.threads)); error.failure()) return error;
  FrontEndConfig& cfg = call->cfg;
  cfg.n_fft = a.n_fft;
  cfg.win_length = a.win_length;
  cfg.hop_length = a.hop_length;
  const bool in_first = a.input_channels_first;
  if (stft.element_type() != ffi::DataType::C64) {
    return invalid(std::string("stft must be complex64, got ") + dtype_name(stft.element_type()));
  }
  const Dims dims = stft.dimensions();
  const std::size_t rank = dims.size();
  if (rank < 4) {
    return invalid(
        std::string("stft must have 4 axes ") +
        (in_first ? "(batch, channels, frames, bins)" : "(batch, frames, bins, channels)") +
        " (more in front under vmap), got shape " + shape_text(to_vector(dims)));
  }
  if (ffi::Error error = as_error(check_inverse_stft_input(
          static_cast<const float*>(stft.untyped_data()), to_vector(dims), a.window.begin(),
          static_cast<int64_t>(a.window.size()), in_first, a.output_channels_first, call));
      error.failure()) {
    return error;
  }
  if (ffi::Error error = check_result(result, ffi::DataType::F32, call->out_shape);
      error.failure()) {
    return error;
  }
  call->out = static_cast<float*>(result.untyped_data());
  return ffi::Error::Success();
}

}  // namespace jax_ffi
}  // namespace kapre_fast
