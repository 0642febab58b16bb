#include "tensor_args.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <string>
#include <vector>

namespace kapre_fast {
namespace torch_ops {
namespace {

std::vector<int64_t> dims_of(const at::Tensor& tensor) {
  return std::vector<int64_t>(tensor.sizes().begin(), tensor.sizes().end());
}

void check_threads_arg(int64_t threads) {
  const std::string err = check_threads(threads);
  TORCH_CHECK_VALUE(err.empty(), "kapre_fast: ", err);
}

// A non-contiguous view would need strides the CUDA kernels do not take; the Python wrappers
// pass .contiguous() tensors (no copy when they already are).
void check_dense(const TensorFacts& tensor, const char* name) {
  TORCH_CHECK_VALUE(tensor.contiguous, "kapre_fast: ", name,
                    " must be a contiguous tensor (call .contiguous()), got strides ",
                    shape_text(tensor.strides));
}

// A key the process has no definition for yet, handed to kapre_fast::define_from_key: its kernel
// (kapre_fast/torch/_ops.py, registered by `import kapre_fast.torch`) defines it when the key is
// a FrontEnd's canonical JSON, since that key is the whole spec. A torch.export program loaded in
// a fresh process names its front ends by key only. False without that kernel (no Python) or for
// any other string.
bool define_from_key(const std::string& key, bool inverse) {
  static const c10::OperatorHandle handle =
      c10::Dispatcher::singleton().findSchemaOrThrow("kapre_fast::define_from_key", "");
  if (!handle.hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd)) return false;
  return handle.typed<bool(c10::string_view, bool)>().call(key, inverse);
}

template <class Definition, class Find>
std::shared_ptr<const Definition> find_or_define(const std::string& key, bool inverse, Find find) {
  std::shared_ptr<const Definition> definition = find(key);
  if (definition == nullptr && define_from_key(key, inverse)) definition = find(key);
  return definition;
}

}  // namespace

TensorFacts facts_of(const at::Tensor& tensor) {
  return TensorFacts{tensor.scalar_type(), dims_of(tensor),
                     std::vector<int64_t>(tensor.strides().begin(), tensor.strides().end()),
                     tensor.is_contiguous(), tensor.const_data_ptr()};
}

std::shared_ptr<const FrontEndDefinition> check_front_end(const TensorFacts& audio,
                                                          c10::string_view spec, int64_t threads,
                                                          FrontEndCall* call) {
  check_threads_arg(threads);
  const std::string key(spec.data(), spec.size());
  std::shared_ptr<const FrontEndDefinition> definition =
      find_or_define<FrontEndDefinition>(key, false, find_front_end);
  TORCH_CHECK_VALUE(definition != nullptr, "kapre_fast: spec ", key,
                    " is not a defined front end (kapre_fast.torch._ops.spec_key defines it)");
  TORCH_CHECK_TYPE(audio.dtype == at::kFloat, "kapre_fast: audio must be float32, got ",
                   audio.dtype);
  const bool in_first = definition->input_channels_first;
  TORCH_CHECK_VALUE(audio.sizes.size() == 3, "kapre_fast: audio must have 3 axes ",
                    in_first ? "(batch, channels, time)" : "(batch, time, channels)",
                    ", got shape ", shape_text(audio.sizes));
  check_dense(audio, "audio");
  call->cfg = definition->cfg;
  call->window = definition->window.data();
  call->bands = definition->bands();
  const std::string err = check_front_end_audio(static_cast<const float*>(audio.data), audio.sizes,
                                                in_first, definition->output_channels_first, call);
  TORCH_CHECK_VALUE(err.empty(), "kapre_fast: ", err);
  return definition;
}

std::shared_ptr<const FrontEndDefinition> check_front_end(const at::Tensor& audio,
                                                          c10::string_view spec, int64_t threads,
                                                          FrontEndCall* call) {
  return check_front_end(facts_of(audio), spec, threads, call);
}

std::shared_ptr<const InverseStftDefinition> check_inverse_stft(const TensorFacts& stft,
                                                                c10::string_view spec,
                                                                int64_t threads,
                                                                InverseStftCall* call) {
  check_threads_arg(threads);
  const std::string key(spec.data(), spec.size());
  std::shared_ptr<const InverseStftDefinition> definition =
      find_or_define<InverseStftDefinition>(key, true, find_inverse_stft);
  TORCH_CHECK_VALUE(definition != nullptr, "kapre_fast: spec ", key,
                    " is not a defined inverse STFT (kapre_fast.torch._ops.inverse_key "
                    "defines it)");
  TORCH_CHECK_TYPE(stft.dtype == at::kComplexFloat, "kapre_fast: stft must be complex64, got ",
                   stft.dtype);
  const bool in_first = definition->input_channels_first;
  TORCH_CHECK_VALUE(
      stft.sizes.size() == 4, "kapre_fast: stft must have 4 axes ",
      in_first ? "(batch, channels, frames, bins)" : "(batch, frames, bins, channels)",
      ", got shape ", shape_text(stft.sizes));
  check_dense(stft, "stft");
  call->cfg = definition->cfg;
  const std::string err = check_inverse_stft_input(
      static_cast<const float*>(stft.data), stft.sizes, definition->window.data(),
      static_cast<int64_t>(definition->window.size()), in_first, definition->output_channels_first,
      call);
  TORCH_CHECK_VALUE(err.empty(), "kapre_fast: ", err);
  return definition;
}

std::shared_ptr<const InverseStftDefinition> check_inverse_stft(const at::Tensor& stft,
                                                                c10::string_view spec,
                                                                int64_t threads,
                                                                InverseStftCall* call) {
  return check_inverse_stft(facts_of(stft), spec, threads, call);
}

at::Tensor allocate_features(const at::Tensor& audio, FrontEndCall* call) {
  const bool complex = call->cfg.output == OutputKind::kComplex;
  at::Tensor out =
      at::empty(call->out_shape, audio.options().dtype(complex ? at::kComplexFloat : at::kFloat));
  call->out = static_cast<float*>(out.mutable_data_ptr());
  return out;
}

at::Tensor allocate_waveforms(const at::Tensor& stft, InverseStftCall* call) {
  at::Tensor out = at::empty(call->out_shape, stft.options().dtype(at::kFloat));
  call->out = static_cast<float*>(out.mutable_data_ptr());
  return out;
}

}  // namespace torch_ops
}  // namespace kapre_fast
