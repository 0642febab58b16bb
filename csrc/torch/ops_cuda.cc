// The CUDA kernels of kapre_fast::front_end and kapre_fast::inverse_stft: the call is checked
// exactly as on the CPU (tensor_args.h), the plan's tables come from the device cache shared with
// the JAX CUDA handlers (csrc/cuda/device_tables.h), the result and the workspace from torch's
// caching allocator, and csrc/cuda's launch functions enqueue the kernels on torch's current
// stream of the tensor's device. Nothing waits for the GPU: a plan's first upload runs on a
// private stream that torch's stream waits on (device_tables.h), also inside a CUDA graph capture.
//
// Compiled by g++ with no CUDA header, only where the CUDA kernels are built, against the stable
// ABI like the rest of the library: the stream travels as void*, as in csrc/cuda/launch.h, and
// torch's current stream comes from the C shim's aoti_torch_get_current_cuda_stream. That
// function lives in libtorch_cuda.so, which a CPU-only torch lacks, so it is looked up when a
// CUDA tensor first arrives (a CUDA build of torch has loaded it by then) rather than linked:
// the library loads in either build. Torch's runtime and our static CUDA runtime meet in the
// device's primary context.
#include <dlfcn.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/headeronly/core/ScalarType.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/device_tables.h"
#include "../cuda/launch.h"
#include "../cuda/plan.h"
#include "tensor_args.h"

namespace kapre_fast {
namespace torch_ops {
namespace {

using CurrentCudaStream = AOTITorchError (*)(int32_t device_index, void** ret_stream);

// RuntimeError "kapre_fast: <message>" unless ok: a failure of the device, not of the call.
void check_runtime(bool ok, const std::string& message) {
  if (!ok) throw std::runtime_error("kapre_fast: " + message);
}

CurrentCudaStream current_cuda_stream_function() {
  static const CurrentCudaStream function = [] {
    void* found = nullptr;
    if (void* cuda = dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD)) {
      found = dlsym(cuda, "aoti_torch_get_current_cuda_stream");
    }
    if (found == nullptr) found = dlsym(RTLD_DEFAULT, "aoti_torch_get_current_cuda_stream");
    return reinterpret_cast<CurrentCudaStream>(found);
  }();
  return function;
}

// torch's current CUDA stream on `device`, as the cudaStream_t (a void*).
void* current_stream(int device) {
  const CurrentCudaStream function = current_cuda_stream_function();
  check_runtime(
      function != nullptr,
      "torch's current CUDA stream is unavailable (aoti_torch_get_current_cuda_stream not "
      "found: a CUDA tensor under a torch without libtorch_cuda.so?)");
  void* stream = nullptr;
  check_runtime(
      function(device, &stream) == AOTI_TORCH_SUCCESS,
      "torch's current CUDA stream of device " + std::to_string(device) + " is unavailable");
  return stream;
}

void check_cache(const gpu::CacheStatus& status) {
  check(status.code != gpu::CacheStatus::kInvalid, status.message);  // ValueError: a bad call
  check_runtime(status.ok(), status.message);                        // a CUDA failure, OOM too
}

using LaunchFn = std::string (*)(const gpu::FrontEndParams&, const gpu::Geometry&, int, void*);

// One checked call on `like`'s device: prepare(plan, p, limits) fills p's per-call fields and
// returns the geometry; launch_fn enqueues the kernels on torch's current stream.
template <class Prepare>
void launch(const Tensor& like, const FrontEndConfig& cfg, const float* window,
            const BandView& bands, Prepare&& prepare, LaunchFn launch_fn) {
  const int device = like.get_device();
  // torch's current device is the caller's again on return, whatever happens below (csrc/cuda's
  // entry points restore the runtime's too).
  const torch::stable::accelerator::DeviceGuard device_guard(device);
  void* stream = current_stream(device);
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
  check(misaligned.empty(), misaligned);
  Tensor workspace;
  if (const std::size_t bytes = g.workspace_bytes(); bytes > 0) {
    // Sections sit at 256-byte boundaries from the start: over-allocate and round it up. The
    // caching allocator hands the block out again only after this stream's work is done.
    const std::vector<int64_t> size{static_cast<int64_t>(bytes) + 255};
    workspace = torch::stable::new_empty(like, size, torch::headeronly::ScalarType::Byte);
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(workspace.mutable_data_ptr());
    gpu::bind_workspace(p, g, reinterpret_cast<void*>((start + 255) / 256 * 256));
  } else {
    gpu::bind_workspace(p, g, nullptr);
  }
  const std::string err = launch_fn(p, g, device, stream);
  check_runtime(err.empty(), err);
}

void front_end_cuda(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const FrontEndArgs args = pop_front_end_args(stack, num_args);
  FrontEndCall call;
  std::vector<int32_t> scratch;
  check_front_end(args, /*contents=*/true, &call, &scratch);
  const Tensor out = allocate_features(args.audio, &call);
  if (out.numel() > 0) {
    launch(
        args.audio, call.cfg, call.window, call.bands,
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_call(plan, p, call.signal, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_frontend);
  }
  push_result(stack, out);
}

void inverse_stft_cuda(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const InverseStftArgs args = pop_inverse_stft_args(stack, num_args);
  InverseStftCall call;
  check_inverse_stft(args, /*contents=*/true, &call);
  const Tensor out = allocate_waveforms(args.stft, &call);
  if (out.numel() > 0) {
    launch(
        args.stft, call.cfg, call.window, BandView{},
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_istft(plan, p, call.in, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_istft);
  }
  push_result(stack, out);
}

// The stream the operators above enqueue on, as an integer: the GPU tests compare it with
// torch.cuda.current_stream().cuda_stream.
void cuda_stream_of(StableIValue* stack, uint64_t num_args, uint64_t num_outputs) {
  const Tensor tensor = torch::stable::detail::to<Tensor>(stack[0]);
  const int device = tensor.get_device();
  stack[0] = torch::stable::detail::from(
      static_cast<int64_t>(reinterpret_cast<std::uintptr_t>(current_stream(device))));
}

}  // namespace
}  // namespace torch_ops
}  // namespace kapre_fast

STABLE_TORCH_LIBRARY_FRAGMENT(kapre_fast, m) { m.def("cuda_stream_of(Tensor tensor) -> int"); }

STABLE_TORCH_LIBRARY_IMPL(kapre_fast, CUDA, m) {
  m.impl("front_end", &kapre_fast::torch_ops::front_end_cuda);
  m.impl("inverse_stft", &kapre_fast::torch_ops::inverse_stft_cuda);
  m.impl("cuda_stream_of", &kapre_fast::torch_ops::cuda_stream_of);
}
