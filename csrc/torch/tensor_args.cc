#include "tensor_args.h"

#include <torch/csrc/stable/ops.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace kapre_fast {
namespace torch_ops {
namespace {

using torch::headeronly::ScalarType;

template <class T>
T pop(StableIValue* stack, uint64_t* at) {
  return torch::stable::detail::to<T>(stack[(*at)++]);
}

std::vector<int64_t> dims_of(const Tensor& tensor) {
  const auto sizes = tensor.sizes();
  return std::vector<int64_t>(sizes.begin(), sizes.end());
}

// torch's Python names ("float32"), as the Python side's messages print dtypes.
std::string dtype_name(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::Float:
      return "float32";
    case ScalarType::Double:
      return "float64";
    case ScalarType::Half:
      return "float16";
    case ScalarType::BFloat16:
      return "bfloat16";
    case ScalarType::ComplexFloat:
      return "complex64";
    case ScalarType::ComplexDouble:
      return "complex128";
    case ScalarType::Int:
      return "int32";
    case ScalarType::Long:
      return "int64";
    case ScalarType::Short:
      return "int16";
    case ScalarType::Char:
      return "int8";
    case ScalarType::Byte:
      return "uint8";
    case ScalarType::Bool:
      return "bool";
    default:
      return torch::headeronly::toString(dtype);
  }
}

void check_dtype(const Tensor& tensor, ScalarType dtype, const char* name) {
  if (tensor.scalar_type() != dtype) {
    fail(std::string(name) + " must be " + dtype_name(dtype) + ", got " +
         dtype_name(tensor.scalar_type()));
  }
}

// A 1-D table (window, bands) of dtype `dtype` in host memory: the kernels read it on the host
// (the CUDA kernels upload it into their device cache, csrc/cuda/device_tables.h).
void check_table(const Tensor& tensor, ScalarType dtype, const char* name, bool contents) {
  check_dtype(tensor, dtype, name);
  if (tensor.dim() != 1) {
    fail(std::string(name) + " must have 1 axis, got shape " + shape_text(dims_of(tensor)));
  }
  if (contents && !tensor.is_cpu()) {
    fail(std::string(name) +
         " must be a CPU tensor (the kernels read it on the host), got one "
         "on another device");
  }
  if (!tensor.is_contiguous()) fail(std::string(name) + " must be contiguous");
}

// A non-contiguous view would need strides the CUDA kernels do not take; the Python wrappers
// pass .contiguous() tensors (no copy when they already are).
void check_dense(const Tensor& tensor, const char* name) {
  if (!tensor.is_contiguous()) {
    const auto strides = tensor.strides();
    fail(std::string(name) + " must be a contiguous tensor (call .contiguous()), got strides " +
         shape_text(std::vector<int64_t>(strides.begin(), strides.end())));
  }
}

void check_threads_arg(int64_t threads) {
  const std::string err = check_threads(threads);
  check(err.empty(), err);
}

template <class T>
const char* schema_type() {
  if (std::is_same<T, bool>::value) return "bool";
  if (std::is_same<T, float>::value) return "float";  // a double in torch, narrowed on arrival
  return "int";
}

// An uninitialised contiguous tensor of `shape` and `dtype` on `like`'s device: the C shim's
// empty_strided (one direct call; torch::stable::new_empty goes through the boxed dispatcher
// and looks the operator up by name on every call).
Tensor empty_like_device(const Tensor& like, const std::vector<int64_t>& shape, int32_t dtype) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  int32_t device_type = 0, device_index = 0;
  STD_TORCH_CHECK(aoti_torch_get_device_type(like.get(), &device_type) == AOTI_TORCH_SUCCESS &&
                      aoti_torch_get_device_index(like.get(), &device_index) == AOTI_TORCH_SUCCESS,
                  "kapre_fast: the input's device is unavailable");
  AtenTensorHandle handle = nullptr;
  STD_TORCH_CHECK(
      aoti_torch_empty_strided(static_cast<int64_t>(shape.size()), shape.data(), strides.data(),
                               dtype, device_type, device_index, &handle) == AOTI_TORCH_SUCCESS,
      "kapre_fast: allocating the result of shape ", shape_text(shape), " failed");
  return Tensor(handle);
}

template <class T>
const T* data_of(const Tensor& tensor, bool contents) {
  return contents ? static_cast<const T*>(tensor.const_data_ptr()) : nullptr;
}

}  // namespace

void fail(const std::string& message) { throw std::invalid_argument("kapre_fast: " + message); }

void check(bool ok, const std::string& message) {
  if (!ok) fail(message);
}

std::string front_end_schema_scalars() {
  std::string text;
#define KF_TORCH_SCHEMA(type, name) text += std::string(", ") + schema_type<type>() + " " + #name;
  KAPRE_FAST_KERNEL_ARGS(KF_TORCH_SCHEMA)
#undef KF_TORCH_SCHEMA
  return text;
}

#define KF_TORCH_SCHEMA(type, schema, name) text += std::string(", ") + schema + " " + #name;
std::string inverse_stft_schema_scalars() {
  std::string text;
  KF_TORCH_INVERSE_STFT_SCALARS(KF_TORCH_SCHEMA)
  return text;
}
#undef KF_TORCH_SCHEMA

FrontEndArgs pop_front_end_args(StableIValue* stack, uint64_t num_args) {
  uint64_t at = 0;
  FrontEndArgs args{pop<Tensor>(stack, &at),
                    pop<Tensor>(stack, &at),
                    pop<Tensor>(stack, &at),
                    pop<Tensor>(stack, &at),
                    pop<Tensor>(stack, &at),
                    {},
                    0};
  // The contract's arguments in its order; a float32 one arrives as a double and must survive
  // the cast. The stack's tensors are all taken by now: throwing here leaks nothing.
  auto get = [&](const char* name, auto* value) -> std::string {
    using T = std::remove_pointer_t<decltype(value)>;
    if constexpr (std::is_same_v<T, float>) {
      return narrow_float(pop<double>(stack, &at), name, value);
    } else {
      *value = pop<T>(stack, &at);
      return "";
    }
  };
  const std::string err = read_kernel_args(get, &args.kernel);
  check(err.empty(), err);
  args.threads = pop<int64_t>(stack, &at);
  STD_TORCH_CHECK(at == num_args, "kapre_fast: front_end's schema has ", num_args,
                  " arguments, its kernel takes ", at);
  return args;
}

InverseStftArgs pop_inverse_stft_args(StableIValue* stack, uint64_t num_args) {
  uint64_t at = 0;
  InverseStftArgs args{pop<Tensor>(stack, &at), pop<Tensor>(stack, &at), {}, 0};
#define KF_TORCH_POP(type, schema, name) args.scalars.name = pop<type>(stack, &at);
  KF_TORCH_INVERSE_STFT_SCALARS(KF_TORCH_POP)
#undef KF_TORCH_POP
  args.threads = pop<int64_t>(stack, &at);
  STD_TORCH_CHECK(at == num_args, "kapre_fast: inverse_stft's schema has ", num_args,
                  " arguments, its kernel takes ", at);
  return args;
}

void check_front_end(const FrontEndArgs& args, bool contents, FrontEndCall* call,
                     std::vector<int32_t>* scratch) {
  const KernelArgs& s = args.kernel;
  check_threads_arg(args.threads);
  check_table(args.window, ScalarType::Float, "window", contents);
  check_table(args.band_start, ScalarType::Int, "band_start", contents);
  check_table(args.band_length, ScalarType::Int, "band_length", contents);
  check_table(args.band_weights, ScalarType::Float, "band_weights", contents);
  const std::string err_config = to_config(s, &call->cfg);
  check(err_config.empty(), err_config);
  const int64_t n_start = args.band_start.numel(), n_length = args.band_length.numel();
  const int32_t* start = data_of<int32_t>(args.band_start, contents);
  const int32_t* length = data_of<int32_t>(args.band_length, contents);
  int64_t n_weights = args.band_weights.numel();
  if (!contents) {  // sizes only: every band empty, so no weights are needed
    scratch->assign(static_cast<std::size_t>(std::max(n_start, n_length)), 0);
    start = length = scratch->data();
    n_weights = 0;
  }
  const std::string err = check_front_end_config(
      data_of<float>(args.window, contents), args.window.numel(), start, n_start, length, n_length,
      data_of<float>(args.band_weights, contents), n_weights, call);
  check(err.empty(), err);
  const Tensor& audio = args.audio;
  check_dtype(audio, ScalarType::Float, "audio");
  const bool in_first = s.input_channels_first;
  if (audio.dim() != 3) {
    fail(std::string("audio must have 3 axes ") +
         (in_first ? "(batch, channels, time)" : "(batch, time, channels)") + ", got shape " +
         shape_text(dims_of(audio)));
  }
  check_dense(audio, "audio");
  const std::string err_audio = check_front_end_audio(
      data_of<float>(audio, contents), dims_of(audio), in_first, s.output_channels_first, call);
  check(err_audio.empty(), err_audio);
}

void check_inverse_stft(const InverseStftArgs& args, bool contents, InverseStftCall* call) {
  const InverseStftScalars& s = args.scalars;
  check_threads_arg(args.threads);
  check_table(args.window, ScalarType::Float, "window", contents);
  FrontEndConfig& cfg = call->cfg;
  cfg.n_fft = s.n_fft;
  cfg.win_length = s.win_length;
  cfg.hop_length = s.hop_length;
  cfg.output = OutputKind::kComplex;
  const Tensor& stft = args.stft;
  check_dtype(stft, ScalarType::ComplexFloat, "stft");
  const bool in_first = s.input_channels_first;
  if (stft.dim() != 4) {
    fail(std::string("stft must have 4 axes ") +
         (in_first ? "(batch, channels, frames, bins)" : "(batch, frames, bins, channels)") +
         ", got shape " + shape_text(dims_of(stft)));
  }
  check_dense(stft, "stft");
  const std::string err = check_inverse_stft_input(
      data_of<float>(stft, contents), dims_of(stft), data_of<float>(args.window, contents),
      args.window.numel(), in_first, s.output_channels_first, call);
  check(err.empty(), err);
}

Tensor allocate_features(const Tensor& audio, FrontEndCall* call) {
  const bool complex = call->cfg.output == OutputKind::kComplex;
  Tensor out = empty_like_device(
      audio, call->out_shape, complex ? aoti_torch_dtype_complex64() : aoti_torch_dtype_float32());
  call->out = static_cast<float*>(out.mutable_data_ptr());
  return out;
}

Tensor allocate_waveforms(const Tensor& stft, InverseStftCall* call) {
  Tensor out = empty_like_device(stft, call->out_shape, aoti_torch_dtype_float32());
  call->out = static_cast<float*>(out.mutable_data_ptr());
  return out;
}

void push_result(StableIValue* stack, const Tensor& result) {
  stack[0] = torch::stable::detail::from(result);
}

}  // namespace torch_ops
}  // namespace kapre_fast
