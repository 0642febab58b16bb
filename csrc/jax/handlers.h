// XLA FFI handlers of kapre_fast's JAX binding, exported to Python as capsules by module.cc and
// registered by kapre_fast/jax/_ops.py:
//
//   kapre_fast_front_end    (audio f32[..., B, T, C] or [..., B, C, T]) -> features
//                           f32 (magnitude, mag/phase; with or without filterbank and dB) or
//                           c64 (the complex STFT), kapre's layouts
//   kapre_fast_inverse_stft (stft c64[..., B, F, K, C] or [..., B, C, F, K]) -> f32 waveforms
//
// Leading axes beyond kapre's 3 / 4 fold into the batch (vmap's "expand_dims" adds them). The
// window and filterbank are array attributes (host constants of the compiled program, as the TF
// ops take them from host memory), so vmap never batches them. One handler per platform, with
// the same attributes and checks (call_args.h): *Cpu over csrc/core (handlers.cc), *Cuda over
// csrc/cuda's launch functions (handlers_cuda.cc, built only with the CUDA kernels:
// KF_JAX_CUDA).
#pragma once

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(KapreFastFrontEndCpu);
XLA_FFI_DECLARE_HANDLER_SYMBOL(KapreFastInverseStftCpu);
#ifdef KF_JAX_CUDA
XLA_FFI_DECLARE_HANDLER_SYMBOL(KapreFastFrontEndCuda);
XLA_FFI_DECLARE_HANDLER_SYMBOL(KapreFastInverseStftCuda);
#endif
