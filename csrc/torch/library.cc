// The kapre_fast operator library: the schemas, the operators that define front ends
// (definitions.h explains why they exist) and the shape operators of the fake implementations.
// The kernels are registered per device in ops_cpu.cc and ops_cuda.cc; the fake (meta)
// implementations, the autograd formulas and define_from_key's kernel are Python's
// (kapre_fast/torch/_ops.py), over these same schemas.
#include <torch/library.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../core/call_checks.h"
#include "definitions.h"
#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

// A 1-D CPU tensor of dtype T as a vector (a copy: a definition outlives the caller's tensor).
template <class T>
std::vector<T> values_of(const at::Tensor& tensor, at::ScalarType dtype, const char* name) {
  TORCH_CHECK_TYPE(tensor.scalar_type() == dtype, "kapre_fast: ", name, " must be ",
                   c10::toString(dtype), ", got ", tensor.scalar_type());
  TORCH_CHECK_VALUE(tensor.dim() == 1, "kapre_fast: ", name, " must have 1 axis, got ",
                    tensor.dim());
  TORCH_CHECK_VALUE(tensor.device().is_cpu(), "kapre_fast: ", name,
                    " must be on the CPU, got device ", tensor.device());
  const at::Tensor dense = tensor.contiguous();
  const T* data = dense.const_data_ptr<T>();
  return std::vector<T>(data, data + dense.numel());
}

// Single-precision attributes: a double that does not survive the cast is rejected, not rounded
// to infinity.
float float_attribute(double value, const char* name) {
  const float narrowed = static_cast<float>(value);
  TORCH_CHECK_VALUE(!std::isfinite(value) || std::isfinite(narrowed), "kapre_fast: ", name,
                    " is out of float32 range, got ", value);
  return narrowed;
}

void define_front_end(c10::string_view spec, const at::Tensor& window, const at::Tensor& band_start,
                      const at::Tensor& band_length, const at::Tensor& band_weights, int64_t n_fft,
                      int64_t win_length, int64_t hop_length, int64_t pad_begin, bool pad_end,
                      int64_t output, int64_t power, bool decibel, double db_multiplier,
                      double amin, double ref_value, double dynamic_range,
                      bool input_channels_first, bool output_channels_first) {
  auto definition = std::make_shared<FrontEndDefinition>();
  FrontEndConfig& cfg = definition->cfg;
  cfg.n_fft = n_fft;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.pad_begin = pad_begin;
  cfg.pad_end = pad_end;
  TORCH_CHECK_VALUE(power == 1 || power == 2, "kapre_fast: power must be 1 or 2, got ", power);
  cfg.power = static_cast<int>(power);
  cfg.decibel = decibel;
  cfg.db_multiplier = float_attribute(db_multiplier, "db_multiplier");
  cfg.amin = float_attribute(amin, "amin");
  cfg.ref_value = float_attribute(ref_value, "ref_value");
  cfg.dynamic_range = float_attribute(dynamic_range, "dynamic_range");
  definition->window = values_of<float>(window, at::kFloat, "window");
  definition->band_start = values_of<int32_t>(band_start, at::kInt, "band_start");
  definition->band_length = values_of<int32_t>(band_length, at::kInt, "band_length");
  definition->band_weights = values_of<float>(band_weights, at::kFloat, "band_weights");
  definition->input_channels_first = input_channels_first;
  definition->output_channels_first = output_channels_first;
  // The shared checks of every binding (csrc/core/call_checks.h), on the definition itself.
  FrontEndCall checked;
  checked.cfg = cfg;
  const std::string err = check_front_end_config(
      output, definition->window.data(), static_cast<int64_t>(definition->window.size()),
      definition->band_start.data(), static_cast<int64_t>(definition->band_start.size()),
      definition->band_length.data(), static_cast<int64_t>(definition->band_length.size()),
      definition->band_weights.data(), static_cast<int64_t>(definition->band_weights.size()),
      &checked);
  TORCH_CHECK_VALUE(err.empty(), "kapre_fast: ", err);
  cfg.output = checked.cfg.output;
  const std::string key(spec.data(), spec.size());
  const std::string err_stored =
      define(key, std::shared_ptr<const FrontEndDefinition>(std::move(definition)));
  TORCH_CHECK_VALUE(err_stored.empty(), "kapre_fast: ", err_stored);
}

void define_inverse_stft(c10::string_view spec, const at::Tensor& window, int64_t n_fft,
                         int64_t win_length, int64_t hop_length, bool input_channels_first,
                         bool output_channels_first) {
  auto definition = std::make_shared<InverseStftDefinition>();
  FrontEndConfig& cfg = definition->cfg;
  cfg.n_fft = n_fft;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.output = OutputKind::kComplex;
  definition->window = values_of<float>(window, at::kFloat, "window");
  definition->input_channels_first = input_channels_first;
  definition->output_channels_first = output_channels_first;
  // The framing and the window's length, as check_istft checks them on every call.
  const std::string err =
      check_config(cfg, static_cast<int64_t>(definition->window.size()), BandView{});
  TORCH_CHECK_VALUE(err.empty(), "kapre_fast: ", err);
  const std::string key(spec.data(), spec.size());
  const std::string err_stored =
      define(key, std::shared_ptr<const InverseStftDefinition>(std::move(definition)));
  TORCH_CHECK_VALUE(err_stored.empty(), "kapre_fast: ", err_stored);
}

// A tensor without memory: its dtype, sizes, strides and contiguity only.
TensorFacts facts(at::IntArrayRef sizes, at::IntArrayRef strides, bool contiguous,
                  at::ScalarType dtype) {
  return TensorFacts{dtype, sizes.vec(), strides.vec(), contiguous, nullptr};
}

// The shape of what the kernels would return for such a tensor, after the kernels' own checks
// (tensor_args.h): the fake implementations' answer for meta and fake tensors of concrete sizes,
// so they refuse exactly the calls the kernels refuse. front_end_shape: (shape, whether the
// result is complex64 rather than float32).
std::tuple<std::vector<int64_t>, bool> front_end_shape(c10::string_view spec, at::IntArrayRef sizes,
                                                       at::IntArrayRef strides, bool contiguous,
                                                       at::ScalarType dtype, int64_t threads) {
  FrontEndCall call;
  check_front_end(facts(sizes, strides, contiguous, dtype), spec, threads, &call);
  return {call.out_shape, call.cfg.output == OutputKind::kComplex};
}

std::vector<int64_t> inverse_stft_shape(c10::string_view spec, at::IntArrayRef sizes,
                                        at::IntArrayRef strides, bool contiguous,
                                        at::ScalarType dtype, int64_t threads) {
  InverseStftCall call;
  check_inverse_stft(facts(sizes, strides, contiguous, dtype), spec, threads, &call);
  return call.out_shape;
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

TORCH_LIBRARY(kapre_fast, m) {
  // spec: a key made by define_* (kapre_fast/torch/_ops.py: a FrontEnd's canonical JSON);
  // threads: 0 for every core (the CPU kernels' pool), checked and unused on a GPU.
  m.def("front_end(Tensor audio, str spec, int threads) -> Tensor");
  m.def("inverse_stft(Tensor stft, str spec, int threads) -> Tensor");
  m.def(
      "define_front_end(str spec, Tensor window, Tensor band_start, Tensor band_length, "
      "Tensor band_weights, int n_fft, int win_length, int hop_length, int pad_begin, "
      "bool pad_end, int output, int power, bool decibel, float db_multiplier, float amin, "
      "float ref_value, float dynamic_range, bool input_channels_first, "
      "bool output_channels_first) -> ()",
      &kapre_fast::torch_ops::define_front_end);
  m.def(
      "define_inverse_stft(str spec, Tensor window, int n_fft, int win_length, "
      "int hop_length, bool input_channels_first, bool output_channels_first) -> ()",
      &kapre_fast::torch_ops::define_inverse_stft);
  // Defines the front end (inverse: the inverse STFT) named by a key the library lacks, if the
  // key is a FrontEnd's canonical JSON; its kernel is Python's (kapre_fast/torch/_ops.py), which
  // the kernels call on a key they do not know (tensor_args.cc).
  m.def("define_from_key(str spec, bool inverse) -> bool");
  // The result shape of front_end / inverse_stft on a tensor of these sizes, strides, contiguity
  // and dtype, after the kernels' checks (front_end's: and whether it is complex64): what the
  // fake implementations return.
  m.def(
      "front_end_shape(str spec, int[] sizes, int[] strides, bool contiguous, "
      "ScalarType dtype, int threads) -> (int[], bool)",
      &kapre_fast::torch_ops::front_end_shape);
  m.def(
      "inverse_stft_shape(str spec, int[] sizes, int[] strides, bool contiguous, "
      "ScalarType dtype, int threads) -> int[]",
      &kapre_fast::torch_ops::inverse_stft_shape);
}
