// The CPU kernels of kapre_fast::front_end and kapre_fast::inverse_stft: checked calls
// (tensor_args.h) run by the core's compute_frontend / compute_istft on the tensors' own memory,
// the result allocated by torch, as the NumPy module and the JAX CPU handlers do.
#include <torch/library.h>

#include "../core/huge_pages.h"
#include "../core/layout.h"
#include "../core/pipeline.h"
#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

at::Tensor front_end_cpu(const at::Tensor& audio, c10::string_view spec, int64_t threads) {
  FrontEndCall call;
  const auto definition = check_front_end(audio, spec, threads, &call);
  at::Tensor out = allocate_features(audio, &call);
  if (out.numel() == 0) return out;
  const bool complex = call.cfg.output == OutputKind::kComplex;
  FeatureView view = contiguous_features(call.out, call.out_channels, call.frames, call.features,
                                         call.out_first, complex ? 2 : 1);
  if (call.cfg.output == OutputKind::kMagPhase) {
    view.phase = call.out + call.signal.channels * view.sc;
  }
  advise_huge_pages(out.data_ptr(), out.nbytes());
  compute_frontend(call.cfg, call.window, call.bands, call.signal, view,
                   thread_pool_for(static_cast<int>(threads)));
  return out;
}

at::Tensor inverse_stft_cpu(const at::Tensor& stft, c10::string_view spec, int64_t threads) {
  InverseStftCall call;
  const auto definition = check_inverse_stft(stft, spec, threads, &call);
  at::Tensor out = allocate_waveforms(stft, &call);
  if (out.numel() == 0) return out;
  const SignalOutView view =
      contiguous_signal_out(call.out, call.in.channels, call.length, call.out_first);
  advise_huge_pages(out.data_ptr(), out.nbytes());
  compute_istft(call.cfg, call.window, call.in, view, thread_pool_for(static_cast<int>(threads)));
  return out;
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

TORCH_LIBRARY_IMPL(kapre_fast, CPU, m) {
  m.impl("front_end", &kapre_fast::torch_ops::front_end_cpu);
  m.impl("inverse_stft", &kapre_fast::torch_ops::inverse_stft_cpu);
}
