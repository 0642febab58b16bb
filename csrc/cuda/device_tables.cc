#include "device_tables.h"

#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "launch.h"

namespace kapre_fast {
namespace gpu {
namespace {

template <class T>
void append_bytes(std::vector<char>* key, const T* data, int64_t n) {
  const char* bytes = reinterpret_cast<const char*>(data);
  key->insert(key->end(), bytes, bytes + n * static_cast<int64_t>(sizeof(T)));
}

template <class T>
void append_value(std::vector<char>* key, T value) {
  append_bytes(key, &value, 1);
}

// Every input of GpuPlan's constructor, as bytes (the device chooses the cache).
std::vector<char> plan_key(const FrontEndConfig& cfg, const float* window, const BandView& bands) {
  std::vector<char> key;
  for (int64_t v : {cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.pad_begin}) {
    append_value(&key, v);
  }
  for (int v : {int{cfg.pad_end}, static_cast<int>(cfg.output), cfg.power, int{cfg.decibel}}) {
    append_value(&key, v);
  }
  for (float v : {cfg.db_multiplier, cfg.amin, cfg.ref_value, cfg.dynamic_range}) {
    append_value(&key, v);
  }
  append_value(&key, bands.n_bands);
  append_value(&key, bands.n_weights);
  append_bytes(&key, window, cfg.win_length);
  append_bytes(&key, bands.start, bands.n_bands);
  append_bytes(&key, bands.length, bands.n_bands);
  append_bytes(&key, bands.weights, bands.n_weights);
  return key;
}

int64_t round_up_256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

using Cache = TableCache<CudaTableBackend, DeviceTables>;

PerDevice<CudaTableBackend, DeviceTables>& caches() {
  static auto* all = new PerDevice<CudaTableBackend, DeviceTables>;  // never destroyed
  return *all;
}

// The device limits, queried once per device. Never destroyed, as the caches.
class Limits {
 public:
  CacheStatus get(int device, DeviceLimits* limits) {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = limits_.find(device);
    if (found == limits_.end()) {
      int count = 0, major = 0, minor = 0;
      DeviceLimits queried;
      std::string err = cuda_device_count(&count);
      if (err.empty()) err = cuda_device_limits(device, &queried, &major, &minor);
      if (!err.empty()) return cache_failure(CacheStatus::kInternal, err);
      found = limits_.emplace(device, queried).first;
    }
    *limits = found->second;
    return CacheStatus{};
  }

 private:
  std::mutex mu_;
  std::map<int, DeviceLimits> limits_;
};

}  // namespace

std::string CudaTableBackend::capturing(void* stream, bool* capturing) {
  return cuda_stream_capturing(device, stream, capturing);
}

std::string CudaTableBackend::record(void* stream, void** event) {
  return cuda_record_event(device, stream, event);
}

std::string CudaTableBackend::release(void* memory, void* ready, const std::vector<void*>& events) {
  return cuda_release_tables(device, memory, ready, events);
}

std::string CudaTableBackend::ready(void* stream, bool capturing, void** event) {
  return cuda_tables_ready(device, stream, capturing, event);
}

std::vector<char> table_bytes(const GpuPlan& plan, int64_t* ints_at) {
  const std::vector<float>& floats = plan.floats();
  const std::vector<int32_t>& ints = plan.ints();
  *ints_at = round_up_256(static_cast<int64_t>(floats.size() * sizeof(float)));
  std::vector<char> host(static_cast<std::size_t>(*ints_at) + ints.size() * sizeof(int32_t));
  std::memcpy(host.data(), floats.data(), floats.size() * sizeof(float));
  std::memcpy(host.data() + *ints_at, ints.data(), ints.size() * sizeof(int32_t));
  return host;
}

CacheStatus device_limits(int device, DeviceLimits* limits) {
  static auto* all = new Limits;
  return all->get(device, limits);
}

CacheStatus device_tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                          const BandView& bands, TablesLease* out) {
  Cache& cache =
      caches().of(device, [](int d) { return CudaTableBackend{d}; }, kCachedPlansPerDevice);
  auto make = [&](bool capturing, DeviceTables* made, void** memory, void** ready) {
    try {
      made->plan = std::make_unique<GpuPlan>(cfg, window, cfg.win_length, bands);
    } catch (const std::invalid_argument& error) {
      return cache_failure(CacheStatus::kInvalid, error.what());  // the CUDA-only limits
    }
    int64_t ints_at = 0;
    const std::vector<char> host = table_bytes(*made->plan, &ints_at);
    const std::string err =
        cuda_upload_tables(device, host.data(), host.size(), stream, capturing, memory, ready);
    if (!err.empty()) {
      const bool oom = err.find("cudaErrorMemoryAllocation") != std::string::npos;
      return cache_failure(oom ? CacheStatus::kOutOfMemory : CacheStatus::kInternal,
                           "the plan's tables on GPU " + std::to_string(device) + ": " + err);
    }
    made->floats = static_cast<const float*>(*memory);
    made->ints = reinterpret_cast<const int32_t*>(static_cast<const char*>(*memory) + ints_at);
    return CacheStatus{};
  };
  return cache.get(plan_key(cfg, window, bands), stream, make, out);
}

}  // namespace gpu
}  // namespace kapre_fast
