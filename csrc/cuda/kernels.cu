// The CUDA kernels: thin __global__ shells that run the phase drivers of
// phases.h with a barrier after every phase, and their launch functions.
// The algorithm lives in phases.h, where the host emulation runs it too.
#include <cuda_runtime.h>

#include <string>

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

__global__ void __launch_bounds__(kMaxThreads)
    pcen_kernel(const __grid_constant__ PcenLaunch p) {
  const DeviceExec ex;
  pcen_block(ex, p, blockIdx.x, gridDim.x);
}

std::string failure(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return {};
  return what + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

// Raises `kernel`'s dynamic shared memory limit on `device` (current) to the device's opt-in
// maximum; the plan's geometry never asks for more than that.
template <class Kernel>
std::string raise_to_opt_in(Kernel* kernel, int device) {
  int maximum = 0;
  std::string err = failure(
      cudaDeviceGetAttribute(&maximum, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
      "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  if (err.empty()) {
    err = failure(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       maximum),
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
  int smem = 0, sms = 0;
  std::string err = failure(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                                   device),
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
    // Fails when this build has no binary or PTX the device can run.
    int current = 0;
    cudaGetDevice(&current);
    cudaSetDevice(device);
    cudaFuncAttributes attributes;
    const cudaError_t e = cudaFuncGetAttributes(&attributes, frontend_kernel);
    cudaSetDevice(current);
    if (e != cudaSuccess) {
      cudaGetLastError();
      const std::string arch = std::to_string(*major) + std::to_string(*minor);
      err = failure(e, "loading the kernels for GPU " + std::to_string(device) + " (sm_" + arch +
                           ")") +
            "; they were compiled for CUDA architectures " KF_CUDA_ARCHS
            ": rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + arch;
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
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
  if (!err.empty()) return err;
  if (p.decibel && g.init_grid > 0) {
    init_max_kernel<<<static_cast<unsigned>(g.init_grid), g.small_threads, 0, stream>>>(p);
    err = failure(cudaGetLastError(), "launching init_max_kernel");
    if (!err.empty()) return err;
  }
  if (g.grid > 0) {
    err = frontend_opt_in.allow(device, g.smem_bytes,
                                [device] { return raise_to_opt_in(frontend_kernel, device); });
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
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
  if (!err.empty()) return err;
  if (g.grid > 0) {
    err = istft_opt_in.allow(device, g.smem_bytes,
                             [device] { return raise_to_opt_in(istft_kernel, device); });
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
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
  if (!err.empty() || p.grid == 0) return err;
  pcen_kernel<<<static_cast<unsigned>(p.grid), p.threads, 0,
                static_cast<cudaStream_t>(stream_handle)>>>(p);
  return failure(cudaGetLastError(), "launching pcen_kernel");
}

std::string cuda_copy_to_device(void* dst, const void* src, std::size_t bytes, int device,
                                void* stream_handle) {
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
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

std::string cuda_allocate(std::size_t bytes, int device, void** ptr) {
  *ptr = nullptr;
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
  if (err.empty()) {
    err = failure(cudaMalloc(ptr, bytes), "cudaMalloc(" + std::to_string(bytes) + " bytes)");
  }
  if (!err.empty()) cudaGetLastError();  // an out-of-memory error is not sticky: clear it
  return err;
}

std::string cuda_free(void* ptr, int device) {
  std::string err = failure(cudaSetDevice(device), "cudaSetDevice");
  if (err.empty()) err = failure(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  if (err.empty()) err = failure(cudaFree(ptr), "cudaFree");
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
