// The CUDA side's host API (defined in kernels.cu, called by cuda_module.cc, by the TF GPU
// kernels in csrc/tf/kernels_gpu.cc and by the JAX CUDA handlers in csrc/jax/handlers_cuda.cc).
// No CUDA header here: streams travel as void*, errors as messages ("" = fine).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

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
std::string cuda_launch_istft(const FrontEndParams& p, const Geometry& g, int device, void* stream);

// Launches one PCEN pass in place (p from plan.h's prepare_pcen, mel in device memory).
std::string cuda_launch_pcen(const PcenLaunch& p, int device, void* stream);

// Copies `bytes` of host memory at `src` to device memory at `dst` on `stream` of `device` and
// waits for the stream (the TF GPU kernels' tables, uploaded once per node and plan): on return
// the copy has finished and `src` may be freed.
std::string cuda_copy_to_device(void* dst, const void* src, std::size_t bytes, int device,
                                void* stream);

// ---- the device table cache's CUDA side (device_tables.cc; table_cache.h's backend) ----

// Whether `stream` is capturing a CUDA graph now; an error for an invalidated capture, or for
// the legacy default stream while another stream captures.
std::string cuda_stream_capturing(int device, void* stream, bool* capturing);

// Allocates `bytes` on `device` (stream-ordered, cudaMallocAsync) and copies `host` there on the
// device's private upload stream, never on the caller's: `stream` then waits for the copy on an
// event, and the host waits for nothing of the caller's. While `stream` captures a graph
// (capturing), the thread is switched to the relaxed capture mode for the upload and waits for
// the private stream's copy (an outside event cannot be waited on inside a capture). `host` may
// be freed on return. *memory: the allocation ("" returned) or null. *ready: the copy's event
// (null when capturing: the copy has finished), for cuda_tables_ready.
std::string cuda_upload_tables(int device, const void* host, std::size_t bytes, void* stream,
                               bool capturing, void** memory, void** ready);

// Orders `stream` after the upload whose event is *ready: once the event has completed it is
// destroyed and *ready set to null; otherwise `stream` waits on it (while capturing, the host
// waits for it instead: the capture cannot wait on an outside event).
std::string cuda_tables_ready(int device, void* stream, bool capturing, void** ready);

// Records *event (created first when null) on `stream`.
std::string cuda_record_event(int device, void* stream, void** event);

// Frees `memory` from cuda_upload_tables once every event in `events` has completed (the private
// stream waits on them, then cudaFreeAsync; the host waits for nothing), and destroys the events
// and `ready` (the upload's, when still held; may be null).
std::string cuda_release_tables(int device, void* memory, void* ready,
                                const std::vector<void*>& events);

// The CUDA runtime version this module was linked with (e.g. 13000).
int cuda_runtime_version();

// The newest CUDA version the installed NVIDIA driver supports (e.g. 12080 for R570);
// 0 without a driver. Only asks; creates no context.
int cuda_driver_version();

}  // namespace gpu
}  // namespace kapre_fast
