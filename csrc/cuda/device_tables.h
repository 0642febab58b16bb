// The plan's tables on the device, cached per (device, plan) for the life of the process: used by
// the bindings whose framework offers no per-plan memory of its own (the JAX CUDA handlers, the
// PyTorch CUDA operators). The kernels read the plan's tables (twiddles, window, filterbank:
// GpuPlan::floats() and ints(), from tens of KB to a few MB) from device memory. A per-call
// cudaMemcpyAsync from pageable host memory is staged by the driver and may synchronise the host
// with the stream, so every call would wait for the GPU work queued before it, and the plan
// (O(n_fft) host work) would be rebuilt per call as well. The cache costs one cudaMalloc and one
// synchronous upload per distinct front end and device (outside the framework's memory pool), and
// a comparison of the attributes (a few KB) per call.
//
// g++ only (no CUDA header): streams are void*, as in launch.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/pipeline.h"
#include "params.h"
#include "plan.h"

namespace kapre_fast {
namespace gpu {

// What went wrong, for the binding to map to its framework's error kinds.
struct CacheStatus {
  enum Code { kOk, kInvalid, kOutOfMemory, kInternal };
  Code code = kOk;
  std::string message;  // without a "kapre_fast: " prefix
  bool ok() const { return code == kOk; }
};

// One plan's tables in device memory; freed when the cache and every call holding it let go.
struct DeviceTables {
  int device = -1;
  std::vector<char> key;  // the attributes the plan was built from
  std::unique_ptr<const GpuPlan> plan;
  void* memory = nullptr;  // floats, then ints at a 256-byte boundary
  const float* floats = nullptr;
  const int32_t* ints = nullptr;

  DeviceTables() = default;
  DeviceTables(const DeviceTables&) = delete;
  DeviceTables& operator=(const DeviceTables&) = delete;
  // cuda_free waits for the device first; a failure there has no caller left to tell (the
  // memory is lost, nothing breaks).
  ~DeviceTables();
};

// The device's limits (queried once per device) into *limits.
CacheStatus device_limits(int device, DeviceLimits* limits);

// The tables of this plan on `device`, built and uploaded on `stream` (which it then waits for)
// the first time; the 32 most recently used plans stay cached.
CacheStatus device_tables(int device, void* stream, const FrontEndConfig& cfg,
                          const float* window, const BandView& bands,
                          std::shared_ptr<const DeviceTables>* out);

}  // namespace gpu
}  // namespace kapre_fast
