// The kapre_fast operator library on LibTorch's stable ABI: the schemas and the shape operators
// of the fake implementations. The kernels are registered per device in ops_cpu.cc and
// ops_cuda.cc; the fake (meta) implementations and the autograd formulas are Python's
// (kapre_fast/torch/_ops.py), over these same schemas.
#include <torch/csrc/stable/library.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

// The shape of what the kernels would return for these arguments, after the kernels' own checks
// (tensor_args.h) on tensors without memory (meta tensors of the fake tensors' sizes, strides
// and dtypes): the fake implementations' answer for concrete sizes, so they refuse the calls the
// kernels refuse (all but what only the bands' values decide). front_end_shape: (shape, whether
// the result is complex64 rather than float32).
void front_end_shape(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const FrontEndArgs args = pop_front_end_args(stack, num_args);
  FrontEndCall call;
  std::vector<int32_t> scratch;
  check_front_end(args, /*contents=*/false, &call, &scratch);
  stack[0] = torch::stable::detail::from(call.out_shape);
  stack[1] = torch::stable::detail::from(call.cfg.output == OutputKind::kComplex);
}

void inverse_stft_shape(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const InverseStftArgs args = pop_inverse_stft_args(stack, num_args);
  InverseStftCall call;
  check_inverse_stft(args, /*contents=*/false, &call);
  stack[0] = torch::stable::detail::from(call.out_shape);
}

const std::string& front_end_arguments() {
  static const std::string text =
      "Tensor audio, Tensor window, Tensor band_start, Tensor band_length, Tensor band_weights" +
      front_end_schema_scalars() + ", int threads";
  return text;
}

const std::string& inverse_stft_arguments() {
  static const std::string text =
      "Tensor stft, Tensor window" + inverse_stft_schema_scalars() + ", int threads";
  return text;
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

STABLE_TORCH_LIBRARY(kapre_fast, m) {
  using namespace kapre_fast::torch_ops;
  // window: the analysis window (float32, win_length values); band_start / band_length (int32)
  // and band_weights (float32): the filterbank's bands, empty for a plain |STFT|; all 1-D CPU
  // tensors. threads: 0 for every core (the CPU kernels' pool), checked and unused on a GPU.
  m.def(("front_end(" + front_end_arguments() + ") -> Tensor").c_str());
  m.def(("inverse_stft(" + inverse_stft_arguments() + ") -> Tensor").c_str());
  // The result shape of front_end / inverse_stft for these arguments, after the kernels' checks
  // (front_end's: and whether it is complex64): what the fake implementations return.
  m.def(("front_end_shape(" + front_end_arguments() + ") -> (int[], bool)").c_str());
  m.def(("inverse_stft_shape(" + inverse_stft_arguments() + ") -> int[]").c_str());
}

STABLE_TORCH_LIBRARY_IMPL(kapre_fast, CompositeExplicitAutograd, m) {
  m.impl("front_end_shape", &kapre_fast::torch_ops::front_end_shape);
  m.impl("inverse_stft_shape", &kapre_fast::torch_ops::inverse_stft_shape);
}
