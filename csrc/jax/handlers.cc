// CPU XLA FFI handlers over csrc/core (see handlers.h): thin adapters that check the call with
// call_args.h (every attribute, shape and dtype, before any memory is touched), then run the
// same compute_frontend / compute_istft as the NumPy module and the TF kernels. Errors come
// back as ffi::Error (INVALID_ARGUMENT naming the argument), never as a crash.

#include "../core/huge_pages.h"
#include "../core/layout.h"
#include "../core/pipeline.h"
#include "call_args.h"
#include "handlers.h"

namespace kapre_fast {
namespace jax_ffi {
namespace {

ffi::Error FrontEndCpu(ffi::AnyBuffer audio, ffi::Result<ffi::AnyBuffer> result,
                       FrontEndAttrs attrs) {
  return run_guarded([&] {
    FrontEndCall call;
    if (ffi::Error error = check_front_end(attrs, audio, *result, &call); error.failure()) {
      return error;
    }
    const bool complex = call.cfg.output == OutputKind::kComplex;
    FeatureView out = contiguous_features(call.out, call.out_channels, call.frames, call.features,
                                          call.out_first, complex ? 2 : 1);
    if (call.cfg.output == OutputKind::kMagPhase) {
      out.phase = call.out + call.signal.channels * out.sc;
    }
    advise_huge_pages(result->untyped_data(), result->size_bytes());
    compute_frontend(call.cfg, call.window, call.bands, call.signal, out,
                     thread_pool_for(static_cast<int>(attrs.threads)));
    return ffi::Error::Success();
  });
}

ffi::Error InverseStftCpu(ffi::AnyBuffer stft, ffi::Result<ffi::AnyBuffer> result,
                          InverseStftAttrs attrs) {
  return run_guarded([&] {
    InverseStftCall call;
    if (ffi::Error error = check_inverse_stft(attrs, stft, *result, &call); error.failure()) {
      return error;
    }
    const SignalOutView out =
        contiguous_signal_out(call.out, call.in.channels, call.length, call.out_first);
    advise_huge_pages(result->untyped_data(), result->size_bytes());
    compute_istft(call.cfg, call.window, call.in, out,
                  thread_pool_for(static_cast<int>(attrs.threads)));
    return ffi::Error::Success();
  });
}

}  // namespace
}  // namespace jax_ffi
}  // namespace kapre_fast

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastFrontEndCpu, kapre_fast::jax_ffi::FrontEndCpu,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::AnyBuffer>()  // audio
                                  .Ret<xla::ffi::AnyBuffer>()  // features
                                  .Attrs<kapre_fast::jax_ffi::FrontEndAttrs>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastInverseStftCpu, kapre_fast::jax_ffi::InverseStftCpu,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::AnyBuffer>()  // stft
                                  .Ret<xla::ffi::AnyBuffer>()  // waveforms
                                  .Attrs<kapre_fast::jax_ffi::InverseStftAttrs>());
