// The CUDA side's host API (defined in kernels.cu, called by cuda_module.cc, by the TF GPU
// kernels in csrc/tf/kernels_gpu.cc and by the JAX CUDA handlers in csrc/jax/handlers_cuda.cc).
// No CUDA header here: streams travel as void*, errors as messages ("" = fine).
#pragma once

#include <cstddef>
#include <string>

#include "params.h"

namespace kapre_fast {
namespace gpu {

// Number of CUDA devices; a message saying what is missing (driver, GPU) on failure.
std::string cuda_device_count(int* count);

// The device's opt-in shared memory per block and multiprocessor count; fails with a
// clear message when the kernels were not compiled for this device's architecture.
std::string cuda_device_limits(int device, DeviceLimits* limits, int* major, int* minor);

// Launches one front-end call on `stream` of `device`: init of the example maxima (dB),
// the fused kernel, the clamp (dB). p is fully bound to device memory. Asynchronous:
// only launch errors are reported here.
std::string cuda_launch_frontend(const FrontEndParams& p, const Geometry& g, int device,
                                 void* stream);

// Launches one inverse STFT: the frame kernel, then the overlap-add kernel.
std::string cuda_launch_istft(const FrontEndParams& p, const Geometry& g, int device,
                              void* stream);

// Launches one PCEN pass in place (p from plan.h's prepare_pcen, mel in device memory).
std::string cuda_launch_pcen(const PcenLaunch& p, int device, void* stream);

// Copies `bytes` of host memory at `src` to device memory at `dst` on `stream` of `device` and
// waits for the stream (the plan's tables, uploaded once per plan): on return the copy has
// finished and `src` may be freed.
std::string cuda_copy_to_device(void* dst, const void* src, std::size_t bytes, int device,
                                void* stream);

// Device memory a binding keeps across calls (the JAX CUDA handlers' cache of plan tables,
// where XLA offers only per-call scratch memory): cudaMalloc of `bytes` on `device` into *ptr.
std::string cuda_allocate(std::size_t bytes, int device, void** ptr);

// Frees memory from cuda_allocate. Waits for all work on `device` first: a kernel enqueued
// earlier on any stream may still read it.
std::string cuda_free(void* ptr, int device);

// The CUDA runtime version this module was linked with (e.g. 13000).
int cuda_runtime_version();

// The newest CUDA version the installed NVIDIA driver supports (e.g. 12080 for R570);
// 0 without a driver. Only asks; creates no context.
int cuda_driver_version();

}  // namespace gpu
}  // namespace kapre_fast
