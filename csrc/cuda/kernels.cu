// The CUDA kernels: thin __global__ shells that run the phase drivers of
// phases.h with a barrier after every phase, and their launch functions.
// The algorithm lives in phases.h, where the host emulation runs it too.
#include <cuda.h>  // driver API types only: its functions come through cudaGetDriverEntryPoint
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "device_guard.h"
#include "launch.h"
#include "pcen_phases.h"
#include "phases.h"
#include "shared_memory_opt_in.h"

#ifndef KF_CUDA_ARCHS
#define KF_CUDA_ARCHS "(unknown)"
#endif

namespace kapre_fast {
namespace gpu {
namespace {

// ex.run(phase): every thread runs the phase, then the block waits for all of them.
struct DeviceExec {
  KF_HD KF_INLINE int threads() const {
#if defined(__CUDA_ARCH__)
    return static_cast<int>(blockDim.x);
#else
    return 0;
#endif
  }
  template <class F>
  KF_HD KF_INLINE void run(F&& phase) const {
#if defined(__CUDA_ARCH__)
    phase(static_cast<int>(threadIdx.x));
    __syncthreads();
#else
    (void)phase;
#endif
  }
};

// __grid_constant__: the phases take the parameters by reference without a local copy.
__global__ void __launch_bounds__(kMaxThreads)
    frontend_kernel(const __grid_constant__ FrontEndParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const DeviceExec ex;
  frontend_block(ex, p, blockIdx.x, gridDim.x, smem);
}

__global__ void __launch_bounds__(kMaxThreads)
    init_max_kernel(const __grid_constant__ FrontEndParams p) {
  const DeviceExec ex;
  init_max_block(ex, p, blockIdx.x, gridDim.x);
}

__global__ void __launch_bounds__(kMaxThreads)
    clamp_kernel(const __grid_constant__ FrontEndParams p) {
  const DeviceExec ex;
  clamp_block(ex, p, blockIdx.x, gridDim.x);
}

__global__ void __launch_bounds__(kMaxThreads)
    istft_kernel(const __grid_constant__ FrontEndParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const DeviceExec ex;
  istft_block(ex, p, blockIdx.x, gridDim.x, smem);
}

__global__ void __launch_bounds__(kMaxThreads)
    overlap_add_kernel(const __grid_constant__ FrontEndParams p) {
  const DeviceExec ex;
  overlap_add_block(ex, p, blockIdx.x, gridDim.x);
}

__global__ void __launch_bounds__(kMaxThreads) pcen_kernel(const __grid_constant__ PcenLaunch p) {
  const DeviceExec ex;
  pcen_block(ex, p, blockIdx.x, gridDim.x);
}

std::string failure(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return {};
  return what + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

// cuDevicePrimaryCtxGetState from the driver (no libcuda link: the static runtime finds it), or
// null where the driver is too old to say.
using PrimaryCtxGetState = CUresult(CUDAAPI*)(CUdevice, unsigned int*, int*);
using DeviceGet = CUresult(CUDAAPI*)(CUdevice*, int);

struct DriverQueries {
  PrimaryCtxGetState get_state = nullptr;
  DeviceGet device_get = nullptr;
  DriverQueries() {
    cudaDriverEntryPointQueryResult found;
    void* fn = nullptr;
    if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 12000,
                                         cudaEnableDefault, &found) == cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      get_state = reinterpret_cast<PrimaryCtxGetState>(fn);
    }
    fn = nullptr;
    if (cudaGetDriverEntryPointByVersion("cuDeviceGet", &fn, 12000, cudaEnableDefault, &found) ==
            cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      device_get = reinterpret_cast<DeviceGet>(fn);
    }
    cudaGetLastError();
  }
};

// device_guard.h's Api on the CUDA runtime.
struct RuntimeDevice {
  int current() {
    int device = -1;
    if (cudaGetDevice(&device) != cudaSuccess) {
      cudaGetLastError();
      return -1;
    }
    return device;
  }
  std::string set(int device) {
    const std::string err =
        failure(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    if (!err.empty()) cudaGetLastError();
    return err;
  }
  // False when the driver cannot say: then the caller's device is not restored rather than a
  // context created on it.
  bool active(int device) {
    static const DriverQueries driver;
    if (driver.get_state == nullptr || driver.device_get == nullptr) return false;
    CUdevice handle = 0;
    unsigned int flags = 0;
    int is_active = 0;
    return driver.device_get(&handle, device) == CUDA_SUCCESS &&
           driver.get_state(handle, &flags, &is_active) == CUDA_SUCCESS && is_active != 0;
  }
};

// On entry to every host function that launches or copies: the thread's last error cleared (an
// earlier, unrelated failure must not be read as this launch's), then `device` made current
// until the scope ends (device_guard.h).
struct OnDevice {
  RuntimeDevice api;
  ScopedDevice<RuntimeDevice> guard;
  explicit OnDevice(int device) : guard((static_cast<void>(cudaGetLastError()), api), device) {}
  const std::string& error() const { return guard.error(); }
};

// While the caller's stream captures a graph in the global or thread-local mode, the calls an
// upload needs (cudaMallocAsync, a pageable copy, a wait on the private stream) are refused as
// "potentially unsafe"; this thread switches to the relaxed mode for the scope. None of them
// touches the capturing stream.
struct RelaxedCapture {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  bool active;
  explicit RelaxedCapture(bool capturing) : active(capturing) {
    if (active) cudaThreadExchangeStreamCaptureMode(&mode);
  }
  ~RelaxedCapture() {
    if (active) cudaThreadExchangeStreamCaptureMode(&mode);
  }
};

// Raises `kernel`'s dynamic shared memory limit on `device` (current) to the device's opt-in
// maximum; the plan's geometry never asks for more than that.
template <class Kernel>
std::string raise_to_opt_in(Kernel* kernel, int device) {
  int maximum = 0;
  std::string err =
      failure(cudaDeviceGetAttribute(&maximum, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
              "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  if (err.empty()) {
    err =
        failure(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, maximum),
                "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
  }
  return err;
}

SharedMemoryOptIn frontend_opt_in, istft_opt_in;

}  // namespace

std::string cuda_device_count(int* count) {
  *count = 0;
  const cudaError_t e = cudaGetDeviceCount(count);
  if (e == cudaSuccess) {
    return *count > 0 ? std::string() : std::string("no CUDA GPU was found");
  }
  cudaGetLastError();  // clear the sticky error
  if (e == cudaErrorInsufficientDriver) {
    return "no NVIDIA driver that supports CUDA " + std::to_string(CUDART_VERSION / 1000) +
           " was found (kapre_fast's CUDA kernels need the NVIDIA driver R580 or newer; "
           "cudaGetDeviceCount: cudaErrorInsufficientDriver)";
  }
  if (e == cudaErrorNoDevice) return "no CUDA GPU was found (cudaErrorNoDevice)";
  return failure(e, "cudaGetDeviceCount");
}

std::string cuda_device_limits(int device, DeviceLimits* limits, int* major, int* minor) {
  cudaGetLastError();  // an earlier failure is not this query's
  int smem = 0, sms = 0;
  std::string err =
      failure(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
              "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  if (err.empty()) {
    err = failure(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                  "cudaDeviceGetAttribute(MultiProcessorCount)");
  }
  if (err.empty()) {
    err = failure(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, device),
                  "cudaDeviceGetAttribute(ComputeCapabilityMajor)");
  }
  if (err.empty()) {
    err = failure(cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, device),
                  "cudaDeviceGetAttribute(ComputeCapabilityMinor)");
  }
  if (err.empty()) {
    // Fails when this build has no binary or PTX the device can run. The caller's device is
    // restored only where its context exists (device_guard.h): never a context on GPU 0 in a
    // process that uses only GPU k. The first call may come inside a capture (the torch
    // operators' first use in a torch.cuda.graph), and loading the module is no capture's work.
    // Every kernel is loaded here (CUDA_MODULE_LOADING=LAZY loads each at its first use
    // otherwise): a launch inside a later capture then loads nothing.
    const OnDevice on(device);
    const RelaxedCapture relaxed(true);
    cudaFuncAttributes attributes;
    cudaError_t e = cudaSuccess;
    const void* kernels[] = {reinterpret_cast<const void*>(frontend_kernel),
                             reinterpret_cast<const void*>(init_max_kernel),
                             reinterpret_cast<const void*>(clamp_kernel),
                             reinterpret_cast<const void*>(istft_kernel),
                             reinterpret_cast<const void*>(overlap_add_kernel),
                             reinterpret_cast<const void*>(pcen_kernel)};
    for (const void* kernel : kernels) {
      if (on.error().empty() && e == cudaSuccess) e = cudaFuncGetAttributes(&attributes, kernel);
    }
    if (!on.error().empty()) {
      err = on.error();
    } else if (e != cudaSuccess) {
      cudaGetLastError();
      const std::string arch = std::to_string(*major) + std::to_string(*minor);
      err = failure(
                e, "loading the kernels for GPU " + std::to_string(device) + " (sm_" + arch + ")") +
            "; they were compiled for CUDA architectures " KF_CUDA_ARCHS
            ": rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
            arch;
    }
  }
  if (!err.empty()) {
    cudaGetLastError();
    return err;
  }
  limits->smem_per_block = smem;
  limits->sm_count = sms;
  limits->max_grid = 0;
  return {};
}

std::string cuda_launch_frontend(const FrontEndParams& p, const Geometry& g, int device,
                                 void* stream_handle) {
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  const OnDevice on(device);
  std::string err = on.error();
  if (!err.empty()) return err;
  if (p.decibel && g.init_grid > 0) {
    init_max_kernel<<<static_cast<unsigned>(g.init_grid), g.small_threads, 0, stream>>>(p);
    err = failure(cudaGetLastError(), "launching init_max_kernel");
    if (!err.empty()) return err;
  }
  if (g.grid > 0) {
    const auto raise_limit = [device] {
      const RelaxedCapture relaxed(true);  // a first large call may come inside a capture
      return raise_to_opt_in(frontend_kernel, device);
    };
    err = frontend_opt_in.allow(device, g.smem_bytes, raise_limit);
    if (!err.empty()) return err;
    frontend_kernel<<<static_cast<unsigned>(g.grid), g.threads, g.smem_bytes, stream>>>(p);
    err = failure(cudaGetLastError(), "launching frontend_kernel");
    if (!err.empty()) return err;
  }
  if (p.decibel && g.clamp_grid > 0) {
    clamp_kernel<<<static_cast<unsigned>(g.clamp_grid), g.small_threads, 0, stream>>>(p);
    err = failure(cudaGetLastError(), "launching clamp_kernel");
  }
  return err;
}

std::string cuda_launch_istft(const FrontEndParams& p, const Geometry& g, int device,
                              void* stream_handle) {
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  const OnDevice on(device);
  std::string err = on.error();
  if (!err.empty()) return err;
  if (g.grid > 0) {
    const auto raise_limit = [device] {
      const RelaxedCapture relaxed(true);  // a first large call may come inside a capture
      return raise_to_opt_in(istft_kernel, device);
    };
    err = istft_opt_in.allow(device, g.smem_bytes, raise_limit);
    if (!err.empty()) return err;
    istft_kernel<<<static_cast<unsigned>(g.grid), g.threads, g.smem_bytes, stream>>>(p);
    err = failure(cudaGetLastError(), "launching istft_kernel");
    if (!err.empty()) return err;
  }
  if (g.ola_grid > 0) {
    overlap_add_kernel<<<static_cast<unsigned>(g.ola_grid), g.small_threads, 0, stream>>>(p);
    err = failure(cudaGetLastError(), "launching overlap_add_kernel");
  }
  return err;
}

std::string cuda_launch_pcen(const PcenLaunch& p, int device, void* stream_handle) {
  const OnDevice on(device);
  std::string err = on.error();
  if (!err.empty() || p.grid == 0) return err;
  pcen_kernel<<<static_cast<unsigned>(p.grid), p.threads, 0,
                static_cast<cudaStream_t>(stream_handle)>>>(p);
  return failure(cudaGetLastError(), "launching pcen_kernel");
}

std::string cuda_copy_to_device(void* dst, const void* src, std::size_t bytes, int device,
                                void* stream_handle) {
  const OnDevice on(device);
  std::string err = on.error();
  if (err.empty() && bytes > 0) {
    err = failure(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                                  static_cast<cudaStream_t>(stream_handle)),
                  "cudaMemcpyAsync(host to device)");
  }
  if (err.empty()) {
    err = failure(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_handle)),
                  "cudaStreamSynchronize");
  }
  return err;
}

namespace {

// One non-blocking stream per device for the table cache's uploads and frees: it carries nothing
// of the callers', so waiting on it never waits for their work, and it is never captured.
// Created on first use, never destroyed (as the cache).
std::string private_stream(int device, cudaStream_t* stream) {
  static std::mutex mu;
  static std::map<int, cudaStream_t>* streams = new std::map<int, cudaStream_t>;
  std::lock_guard<std::mutex> lock(mu);
  auto found = streams->find(device);
  if (found == streams->end()) {
    cudaStream_t made = nullptr;
    const std::string err =
        failure(cudaStreamCreateWithFlags(&made, cudaStreamNonBlocking), "cudaStreamCreate");
    if (!err.empty()) return err;
    found = streams->emplace(device, made).first;
  }
  *stream = found->second;
  return {};
}

}  // namespace

std::string cuda_stream_capturing(int device, void* stream_handle, bool* capturing) {
  *capturing = false;
  const OnDevice on(device);
  if (!on.error().empty()) return on.error();
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t e = cudaStreamIsCapturing(static_cast<cudaStream_t>(stream_handle), &status);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return failure(e, "cudaStreamIsCapturing") +
           (e == cudaErrorStreamCaptureImplicit
                ? "; the legacy default stream cannot be used while another stream captures a "
                  "CUDA graph: run on a stream of your own"
                : "");
  }
  if (status == cudaStreamCaptureStatusInvalidated) {
    return "the caller's stream is capturing a CUDA graph that is already invalidated "
           "(cudaStreamCaptureStatusInvalidated)";
  }
  *capturing = status == cudaStreamCaptureStatusActive;
  return {};
}

std::string cuda_upload_tables(int device, const void* host, std::size_t bytes, void* stream_handle,
                               bool capturing, void** memory, void** ready) {
  *memory = nullptr;
  *ready = nullptr;
  const OnDevice on(device);
  const RelaxedCapture relaxed(capturing);  // before the private stream's creation too
  std::string err = on.error();
  cudaStream_t upload = nullptr;
  if (err.empty()) err = private_stream(device, &upload);
  if (!err.empty()) return err;
  err = failure(cudaMallocAsync(memory, bytes, upload),
                "cudaMallocAsync(" + std::to_string(bytes) + " bytes)");
  if (!err.empty()) {
    cudaGetLastError();  // out of memory is not sticky
    *memory = nullptr;
    return err;
  }
  // Pageable memory: the call returns once `host` is staged, so it may be freed on return.
  err = failure(cudaMemcpyAsync(*memory, host, bytes, cudaMemcpyHostToDevice, upload),
                "cudaMemcpyAsync(host to device, private stream)");
  if (err.empty() && capturing) {
    // An event from outside the capture cannot be waited on inside it: the copy finishes
    // before the capture does, hence before any replay (this waits for the copy only).
    err = failure(cudaStreamSynchronize(upload), "cudaStreamSynchronize(private stream)");
  } else if (err.empty()) {
    // Kept in *ready: later calls on other streams wait on it too until it has completed.
    cudaEvent_t done = nullptr;
    err = failure(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    if (err.empty()) err = failure(cudaEventRecord(done, upload), "cudaEventRecord");
    if (err.empty()) {
      err = failure(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_handle), done, 0),
                    "cudaStreamWaitEvent(the caller's stream)");
    }
    if (err.empty()) {
      *ready = done;
    } else if (done != nullptr) {
      cudaEventDestroy(done);
    }
  }
  if (!err.empty()) {
    cudaFreeAsync(*memory, upload);
    *memory = nullptr;
    cudaGetLastError();
  }
  return err;
}

std::string cuda_record_event(int device, void* stream_handle, void** event) {
  const OnDevice on(device);
  std::string err = on.error();
  if (!err.empty()) return err;
  if (*event == nullptr) {
    cudaEvent_t made = nullptr;
    err = failure(cudaEventCreateWithFlags(&made, cudaEventDisableTiming), "cudaEventCreate");
    if (!err.empty()) return err;
    *event = made;
  }
  err = failure(
      cudaEventRecord(static_cast<cudaEvent_t>(*event), static_cast<cudaStream_t>(stream_handle)),
      "cudaEventRecord");
  if (!err.empty()) cudaGetLastError();
  return err;
}

std::string cuda_tables_ready(int device, void* stream_handle, bool capturing, void** event) {
  const OnDevice on(device);
  const RelaxedCapture relaxed(capturing);
  std::string err = on.error();
  if (!err.empty()) return err;
  const cudaEvent_t ready = static_cast<cudaEvent_t>(*event);
  const cudaError_t state = cudaEventQuery(ready);
  cudaGetLastError();  // cudaErrorNotReady is an answer, not a failure
  if (state == cudaSuccess) {
    cudaEventDestroy(ready);
    *event = nullptr;
    return {};
  }
  if (state != cudaErrorNotReady) return failure(state, "cudaEventQuery(the tables' upload)");
  if (capturing) {  // an outside event cannot be waited on inside a capture: the host waits
    err = failure(cudaEventSynchronize(ready), "cudaEventSynchronize(the tables' upload)");
    if (err.empty()) {
      cudaEventDestroy(ready);
      *event = nullptr;
    }
  } else {
    err = failure(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_handle), ready, 0),
                  "cudaStreamWaitEvent(the tables' upload)");
  }
  if (!err.empty()) cudaGetLastError();
  return err;
}

std::string cuda_release_tables(int device, void* memory, void* ready,
                                const std::vector<void*>& events) {
  const OnDevice on(device);
  const RelaxedCapture relaxed(true);  // an eviction may happen while this thread captures
  std::string err = on.error();
  cudaStream_t upload = nullptr;
  if (err.empty()) err = private_stream(device, &upload);
  for (void* event : events) {
    if (err.empty()) {
      err = failure(cudaStreamWaitEvent(upload, static_cast<cudaEvent_t>(event), 0),
                    "cudaStreamWaitEvent(private stream)");
    }
  }
  if (err.empty() && memory != nullptr) {
    err = failure(cudaFreeAsync(memory, upload), "cudaFreeAsync");
  }
  for (void* event : events) cudaEventDestroy(static_cast<cudaEvent_t>(event));
  if (ready != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(ready));
  if (!err.empty()) cudaGetLastError();
  return err;
}

int cuda_runtime_version() { return CUDART_VERSION; }

int cuda_driver_version() {
  int version = 0;
  if (cudaDriverGetVersion(&version) != cudaSuccess) return 0;
  return version;
}

}  // namespace gpu
}  // namespace kapre_fast
