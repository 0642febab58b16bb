// The checks of one operator call, shared by the CPU and CUDA kernels (ops_cpu.cc, ops_cuda.cc)
// and by the shape operators of the fake implementations (library.cc): the definition named by
// `spec` (definitions.h; defined from the key itself when missing, tensor_args.cc), then the
// tensor's dtype, rank and layout, then the shared shape checks of csrc/core/call_checks.h (the
// JAX handlers' too), all before any memory is touched. Failures raise through TORCH_CHECK_*:
// ValueError (TypeError for a dtype) naming the argument.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "../core/call_checks.h"
#include "definitions.h"

namespace kapre_fast {
namespace torch_ops {

// What the checks read of a tensor: never its memory, only its address (null for a tensor
// without memory: the fake implementations check meta and fake tensors' shapes with these).
struct TensorFacts {
  at::ScalarType dtype;
  std::vector<int64_t> sizes, strides;
  bool contiguous;
  const void* data;
};

TensorFacts facts_of(const at::Tensor& tensor);

// `audio` (float32, 3 axes in the definition's layout, contiguous) for the front end `spec`.
std::shared_ptr<const FrontEndDefinition> check_front_end(const TensorFacts& audio,
                                                          c10::string_view spec, int64_t threads,
                                                          FrontEndCall* call);
std::shared_ptr<const FrontEndDefinition> check_front_end(const at::Tensor& audio,
                                                          c10::string_view spec, int64_t threads,
                                                          FrontEndCall* call);

// `stft` (complex64, 4 axes, contiguous) for the inverse STFT `spec`.
std::shared_ptr<const InverseStftDefinition> check_inverse_stft(const TensorFacts& stft,
                                                                c10::string_view spec,
                                                                int64_t threads,
                                                                InverseStftCall* call);
std::shared_ptr<const InverseStftDefinition> check_inverse_stft(const at::Tensor& stft,
                                                                c10::string_view spec,
                                                                int64_t threads,
                                                                InverseStftCall* call);

// The result tensors of checked calls, on the input's device (torch's allocator), with
// call->out pointing at their memory.
at::Tensor allocate_features(const at::Tensor& audio, FrontEndCall* call);
at::Tensor allocate_waveforms(const at::Tensor& stft, InverseStftCall* call);

}  // namespace torch_ops
}  // namespace kapre_fast
