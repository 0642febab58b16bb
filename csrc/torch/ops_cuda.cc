// The CUDA kernels of kapre_fast::front_end and kapre_fast::inverse_stft: the call is checked
// exactly as on the CPU (tensor_args.h), the plan's tables come from the device cache shared with
// the JAX CUDA handlers (csrc/cuda/device_tables.h), the result and the workspace from torch's
// caching allocator, and csrc/cuda's launch functions enqueue the kernels on torch's current
// stream of the tensor's device. Nothing waits for the GPU: a plan's first upload runs on a
// private stream that torch's stream waits on (device_tables.h), also inside a CUDA graph capture.
//
// Compiled by g++ with no CUDA header, only where the CUDA kernels are built: the stream
// travels as void*, as in csrc/cuda/launch.h, and torch's current stream is asked through
// libc10's device-guard interface, so this library needs no libc10_cuda (a CPU-only torch has
// none) to link; it runs only under a CUDA build of torch, which registers that interface.
// Torch's runtime and our static CUDA runtime meet in the device's primary context.
#include <torch/library.h>

#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <memory>
#include <string>

#include "../cuda/device_tables.h"
#include "../cuda/launch.h"
#include "../cuda/plan.h"
#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

// torch's current CUDA stream on the tensor's device, as the cudaStream_t (a void*).
void* current_stream(const at::Tensor& tensor) {
  const c10::impl::DeviceGuardImplInterface* cuda =
      c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  return cuda->getStream(tensor.device()).native_handle();
}

void check_cache(const gpu::CacheStatus& status) {
  TORCH_CHECK_VALUE(status.code != gpu::CacheStatus::kInvalid, "kapre_fast: ", status.message);
  TORCH_CHECK(status.ok(), "kapre_fast: ", status.message);  // RuntimeError (OOM included)
}

using LaunchFn = std::string (*)(const gpu::FrontEndParams&, const gpu::Geometry&, int, void*);

// One checked call on `like`'s device: prepare(plan, p, limits) fills p's per-call fields and
// returns the geometry; launch_fn enqueues the kernels on torch's current stream.
template <class Prepare>
void launch(const at::Tensor& like, const FrontEndConfig& cfg, const float* window,
            const BandView& bands, Prepare&& prepare, LaunchFn launch_fn) {
  // torch's current device is the caller's again on return, whatever happens below (csrc/cuda's
  // entry points restore the runtime's too).
  const c10::DeviceGuard device_guard(like.device());
  const int device = like.get_device();
  void* stream = current_stream(like);
  gpu::DeviceLimits limits;
  check_cache(gpu::device_limits(device, &limits));
  // Held until the kernels are enqueued: the cache then records this stream's event.
  gpu::TablesLease lease;
  check_cache(gpu::device_tables(device, stream, cfg, window, bands, &lease));
  const gpu::DeviceTables& tables = lease.value();
  gpu::FrontEndParams p = tables.plan->params(tables.floats, tables.ints);
  const gpu::Geometry g = prepare(*tables.plan, p, limits);
  // torch's allocations are aligned; a misaligned view would poison the process's CUDA context.
  const std::string misaligned = gpu::alignment_error(p);
  TORCH_CHECK_VALUE(misaligned.empty(), "kapre_fast: ", misaligned);
  at::Tensor workspace;
  if (const std::size_t bytes = g.workspace_bytes(); bytes > 0) {
    // Sections sit at 256-byte boundaries from the start: over-allocate and round it up. The
    // caching allocator hands the block out again only after this stream's work is done.
    workspace = at::empty({static_cast<int64_t>(bytes) + 255}, like.options().dtype(at::kByte));
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(workspace.mutable_data_ptr());
    gpu::bind_workspace(p, g, reinterpret_cast<void*>((start + 255) / 256 * 256));
  } else {
    gpu::bind_workspace(p, g, nullptr);
  }
  const std::string err = launch_fn(p, g, device, stream);
  TORCH_CHECK(err.empty(), "kapre_fast: ", err);
}

at::Tensor front_end_cuda(const at::Tensor& audio, c10::string_view spec, int64_t threads) {
  FrontEndCall call;
  const auto definition = check_front_end(audio, spec, threads, &call);
  at::Tensor out = allocate_features(audio, &call);
  if (out.numel() == 0) return out;
  launch(
      audio, call.cfg, call.window, call.bands,
      [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
        return gpu::prepare_call(plan, p, call.signal, call.out, call.out_first, limits);
      },
      gpu::cuda_launch_frontend);
  return out;
}

at::Tensor inverse_stft_cuda(const at::Tensor& stft, c10::string_view spec, int64_t threads) {
  InverseStftCall call;
  const auto definition = check_inverse_stft(stft, spec, threads, &call);
  at::Tensor out = allocate_waveforms(stft, &call);
  if (out.numel() == 0) return out;
  launch(
      stft, call.cfg, call.window, BandView{},
      [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
        return gpu::prepare_istft(plan, p, call.in, call.out, call.out_first, limits);
      },
      gpu::cuda_launch_istft);
  return out;
}

// The stream the operators above enqueue on, as an integer: the GPU tests compare it with
// torch.cuda.current_stream().cuda_stream.
int64_t cuda_stream_of(const at::Tensor& tensor) {
  return static_cast<int64_t>(reinterpret_cast<std::uintptr_t>(current_stream(tensor)));
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

TORCH_LIBRARY_FRAGMENT(kapre_fast, m) { m.def("cuda_stream_of(Tensor tensor) -> int"); }

TORCH_LIBRARY_IMPL(kapre_fast, CUDA, m) {
  m.impl("front_end", &kapre_fast::torch_ops::front_end_cuda);
  m.impl("inverse_stft", &kapre_fast::torch_ops::inverse_stft_cuda);
  m.impl("cuda_stream_of", &kapre_fast::torch_ops::cuda_stream_of);
}
