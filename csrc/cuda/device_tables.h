// The plan's tables on the device, cached per (device, plan) for the life of the process: used by
// the bindings whose framework offers no per-plan memory of its own (the JAX CUDA handlers, the
// PyTorch CUDA operators). The kernels read the plan's tables (twiddles, window, filterbank:
// GpuPlan::floats() and ints(), from tens of KB to a few MB) from device memory; rebuilding the
// plan (O(n_fft) host work) and copying them per call would cost more than the call.
//
// One cache per device with its own lock (table_cache.h, whose bookkeeping the emulation's tests
// check without a GPU). A miss builds the plan outside the lock and uploads it on the device's
// private stream; the caller's stream (and every other one that uses the plan before the copy is
// known to be done) waits on its event, the host on nothing of the caller's.
// Each call holds a lease until its kernels are enqueued; an evicted plan's memory is freed in
// stream order after the last event recorded for it (no host or device synchronisation). Under
// CUDA graph capture (torch.cuda.graph, torch.compile(mode='reduce-overhead'), a JAX command
// buffer) the first use of a plan may happen inside the capture, and every plan used inside a
// capture stays cached for the life of the process: the graph holds its raw pointers.
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
#include "table_cache.h"

namespace kapre_fast {
namespace gpu {

// Plans kept per device besides the captured ones: the least recently used beyond are freed.
constexpr std::size_t kCachedPlansPerDevice = 64;

// One plan's tables in device memory.
struct DeviceTables {
  std::unique_ptr<const GpuPlan> plan;
  const float* floats = nullptr;  // 256-byte aligned
  const int32_t* ints = nullptr;  // at a 256-byte boundary after the floats
};

// table_cache.h's backend on the CUDA runtime (launch.h) for one device.
struct CudaTableBackend {
  int device = -1;
  std::string capturing(void* stream, bool* capturing);
  std::string record(void* stream, void** event);
  std::string release(void* memory, void* ready, const std::vector<void*>& events);
  std::string ready(void* stream, bool capturing, void** event);
};

using TablesLease = TableCache<CudaTableBackend, DeviceTables>::Lease;

// The device's limits (queried once per device) into *limits.
CacheStatus device_limits(int device, DeviceLimits* limits);

// The tables of this plan on `device` for one call on `stream`, uploaded the first time (the
// stream waits for the upload). Keep *out until the call's kernels are enqueued on `stream`.
CacheStatus device_tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                          const BandView& bands, TablesLease* out);

// The host bytes uploaded for `plan`: floats, then ints at a 256-byte boundary (*ints_at).
std::vector<char> table_bytes(const GpuPlan& plan, int64_t* ints_at);

}  // namespace gpu
}  // namespace kapre_fast
