// The checks of one operator call, shared by the CPU and CUDA kernels (ops_cpu.cc, ops_cuda.cc):
// the definition named by `spec` (definitions.h), then the tensor's dtype, rank and layout, then
// the shared shape checks of csrc/core/call_checks.h (the JAX handlers' too), all before any
// memory is touched. Failures raise through TORCH_CHECK_*: ValueError (TypeError for a dtype)
// naming the argument.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "../core/call_checks.h"
#include "definitions.h"

namespace kapre_fast {
namespace torch_ops {

// `audio` (float32, 3 axes in the definition's layout, contiguous) for the front end `spec`.
std::shared_ptr<const FrontEndDefinition> check_front_end(const at::Tensor& audio,
                                                          c10::string_view spec, int64_t threads,
                                                          FrontEndCall* call);

// `stft` (complex64, 4 axes, contiguous) for the inverse STFT `spec`.
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
