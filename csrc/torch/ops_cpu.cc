// The CPU kernels of kapre_fast::front_end and kapre_fast::inverse_stft: checked calls
// (tensor_args.h) run by the core's compute_frontend / compute_istft on the tensors' own memory,
// the result allocated by torch, as the NumPy module and the JAX CPU handlers do.
#include <torch/csrc/stable/library.h>

#include "../core/huge_pages.h"
#include "../core/layout.h"
#include "../core/pipeline.h"
#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

void front_end_cpu(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const FrontEndArgs args = pop_front_end_args(stack, num_args);
  FrontEndCall call;
  std::vector<int32_t> scratch;
  check_front_end(args, /*contents=*/true, &call, &scratch);
  const Tensor out = allocate_features(args.audio, &call);
  const int64_t size = out.numel();
  if (size > 0) {
    const bool complex = call.cfg.output == OutputKind::kComplex;
    FeatureView view = contiguous_features(call.out, call.out_channels, call.frames, call.features,
                                           call.out_first, complex ? 2 : 1);
    if (call.cfg.output == OutputKind::kMagPhase) {
      view.phase = call.out + call.signal.channels * view.sc;
    }
    advise_huge_pages(call.out, static_cast<std::size_t>(size) * out.element_size());
    compute_frontend(call.cfg, call.window, call.bands, call.signal, view,
                     thread_pool_for(static_cast<int>(args.threads)));
  }
  push_result(stack, out);
}

void inverse_stft_cpu(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const InverseStftArgs args = pop_inverse_stft_args(stack, num_args);
  InverseStftCall call;
  check_inverse_stft(args, /*contents=*/true, &call);
  const Tensor out = allocate_waveforms(args.stft, &call);
  const int64_t size = out.numel();
  if (size > 0) {
    const SignalOutView view =
        contiguous_signal_out(call.out, call.in.channels, call.length, call.out_first);
    advise_huge_pages(call.out, static_cast<std::size_t>(size) * sizeof(float));
    compute_istft(call.cfg, call.window, call.in, view,
                  thread_pool_for(static_cast<int>(args.threads)));
  }
  push_result(stack, out);
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

STABLE_TORCH_LIBRARY_IMPL(kapre_fast, CPU, m) {
  m.impl("front_end", &kapre_fast::torch_ops::front_end_cpu);
  m.impl("inverse_stft", &kapre_fast::torch_ops::inverse_stft_cpu);
}
