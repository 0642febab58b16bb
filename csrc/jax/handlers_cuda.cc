// CUDA XLA FFI handlers (see handlers.h): the call is checked exactly as on the CPU
// (call_args.h), then the plan's tables are found on the device, the launch parameters filled
// (csrc/cuda/plan.h: prepare_call / prepare_istft, alignment_error; the tables cached by
// csrc/cuda/device_tables.h, shared with the PyTorch CUDA operators), the workspace taken from
// XLA's scratch allocator and the kernels enqueued on XLA's stream with csrc/cuda's launch
// functions, as the CuPy module and the TF GPU kernels do. Nothing here waits for the GPU: a
// plan's first upload runs on a private stream that XLA's stream waits on (device_tables.h).
// The handlers still do not declare XLA's command-buffer trait, so XLA launches them directly.
//
// Compiled by g++ only when the CUDA kernels are built (KF_JAX_CUDA); no CUDA header: the
// stream travels as void*, as in launch.h. XLA's stream and our static CUDA runtime meet in the
// device's primary context, which both XLA and the runtime API use.
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/device_tables.h"
#include "../cuda/launch.h"
#include "../cuda/plan.h"
#include "call_args.h"
#include "handlers.h"

namespace kapre_fast {
namespace jax_ffi {
namespace {

// A failure of the shared table cache (csrc/cuda/device_tables.h) as an FFI error.
ffi::Error as_error(const gpu::CacheStatus& status) {
  switch (status.code) {
    case gpu::CacheStatus::kOk:
      return ffi::Error::Success();
    case gpu::CacheStatus::kInvalid:
      return invalid(status.message);
    case gpu::CacheStatus::kOutOfMemory:
      return ffi::Error(ffi::ErrorCode::kResourceExhausted, "kapre_fast: " + status.message);
    default:
      return ffi::Error::Internal("kapre_fast: " + status.message);
  }
}

using LaunchFn = std::string (*)(const gpu::FrontEndParams&, const gpu::Geometry&, int, void*);

// One checked call on `device`: prepare(plan, p, limits) fills p's per-call fields (the
// buffers' device addresses) and returns the geometry; the workspace comes from XLA's scratch
// allocator, and launch_fn enqueues the kernels on XLA's stream.
template <class Prepare>
ffi::Error launch(void* stream, int32_t device, ffi::ScratchAllocator& scratch,
                  const FrontEndConfig& cfg, const float* window, const BandView& bands,
                  Prepare&& prepare, LaunchFn launch_fn) {
  if (stream == nullptr || device < 0) {
    return ffi::Error::Internal("kapre_fast: XLA gave no CUDA stream or device (device " +
                                std::to_string(device) + ")");
  }
  gpu::DeviceLimits limits;
  if (ffi::Error error = as_error(gpu::device_limits(device, &limits)); error.failure()) {
    return error;
  }
  // Held until the kernels are enqueued: the cache then records this stream's event.
  gpu::TablesLease lease;
  if (ffi::Error error = as_error(gpu::device_tables(device, stream, cfg, window, bands, &lease));
      error.failure()) {
    return error;
  }
  const gpu::DeviceTables& tables = lease.value();
  gpu::FrontEndParams p = tables.plan->params(tables.floats, tables.ints);
  const gpu::Geometry g = prepare(*tables.plan, p, limits);
  // XLA aligns whole buffers; a misaligned view would poison the process's CUDA context.
  const std::string misaligned = gpu::alignment_error(p);
  if (!misaligned.empty()) return invalid(misaligned);
  void* workspace = nullptr;
  if (const std::size_t bytes = g.workspace_bytes(); bytes > 0) {
    // XLA's allocator promises at most 16-byte alignment; the workspace's sections sit at
    // 256-byte boundaries from its start: over-allocate and round the start up. The memory
    // returns to XLA when this handler returns, which is safe because XLA's device allocator
    // orders reuse on this same stream, after the kernels enqueued here.
    const std::optional<void*> got = scratch.Allocate(bytes + 255, 16);
    if (!got.has_value()) {
      return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                        "kapre_fast: XLA's scratch allocator could not provide " +
                            std::to_string(bytes) + " bytes of GPU workspace");
    }
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(*got);
    workspace = reinterpret_cast<void*>((at + 255) / 256 * 256);
  }
  gpu::bind_workspace(p, g, workspace);
  const std::string err = launch_fn(p, g, device, stream);
  if (!err.empty()) return ffi::Error::Internal("kapre_fast: " + err);
  return ffi::Error::Success();
}

ffi::Error FrontEndCuda(void* stream, int32_t device, ffi::ScratchAllocator scratch,
                        ffi::AnyBuffer audio, ffi::Result<ffi::AnyBuffer> result,
                        FrontEndAttrs attrs) {
  return run_guarded([&] {
    FrontEndCall call;
    if (ffi::Error error = check_front_end(attrs, audio, *result, &call); error.failure()) {
      return error;
    }
    return launch(
        stream, device, scratch, call.cfg, call.window, call.bands,
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_call(plan, p, call.signal, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_frontend);
  });
}

ffi::Error InverseStftCuda(void* stream, int32_t device, ffi::ScratchAllocator scratch,
                           ffi::AnyBuffer stft, ffi::Result<ffi::AnyBuffer> result,
                           InverseStftAttrs attrs) {
  return run_guarded([&] {
    InverseStftCall call;
    if (ffi::Error error = check_inverse_stft(attrs, stft, *result, &call); error.failure()) {
      return error;
    }
    return launch(
        stream, device, scratch, call.cfg, call.window, BandView{},
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_istft(plan, p, call.in, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_istft);
  });
}

}  // namespace
}  // namespace jax_ffi
}  // namespace kapre_fast

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastFrontEndCuda, kapre_fast::jax_ffi::FrontEndCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<void*>>()
                                  .Ctx<xla::ffi::DeviceOrdinal>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::AnyBuffer>()  // audio
                                  .Ret<xla::ffi::AnyBuffer>()  // features
                                  .Attrs<kapre_fast::jax_ffi::FrontEndAttrs>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastInverseStftCuda, kapre_fast::jax_ffi::InverseStftCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<void*>>()
                                  .Ctx<xla::ffi::DeviceOrdinal>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::AnyBuffer>()  // stft
                                  .Ret<xla::ffi::AnyBuffer>()  // waveforms
                                  .Attrs<kapre_fast::jax_ffi::InverseStftAttrs>());
