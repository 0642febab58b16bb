#include "device_tables.h"

#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <stdexcept>

#include "launch.h"

namespace kapre_fast {
namespace gpu {
namespace {

constexpr std::size_t kCachedPlans = 32;  // least recently used ones beyond this are freed

template <class T>
void append_bytes(std::vector<char>* key, const T* data, int64_t n) {
  const char* bytes = reinterpret_cast<const char*>(data);
  key->insert(key->end(), bytes, bytes + n * static_cast<int64_t>(sizeof(T)));
}

template <class T>
void append_value(std::vector<char>* key, T value) {
  append_bytes(key, &value, 1);
}

// Every input of GpuPlan's constructor, as bytes.
std::vector<char> plan_key(int device, const FrontEndConfig& cfg, const float* window,
                           const BandView& bands) {
  std::vector<char> key;
  append_value(&key, device);
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

CacheStatus failed(CacheStatus::Code code, std::string message) {
  CacheStatus status;
  status.code = code;
  status.message = std::move(message);
  return status;
}

// Builds the plan and uploads its tables on `stream` (which it waits for).
CacheStatus make_tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                        const BandView& bands, DeviceTables* made) {
  try {
    made->plan = std::make_unique<GpuPlan>(cfg, window, cfg.win_length, bands);
  } catch (const std::invalid_argument& error) {
    return failed(CacheStatus::kInvalid, error.what());  // checked before; the CUDA-only limits
  }
  const std::vector<float>& floats = made->plan->floats();
  const std::vector<int32_t>& ints = made->plan->ints();
  const int64_t ints_at = round_up_256(static_cast<int64_t>(floats.size() * sizeof(float)));
  std::vector<char> host(static_cast<std::size_t>(ints_at) + ints.size() * sizeof(int32_t));
  std::memcpy(host.data(), floats.data(), floats.size() * sizeof(float));
  std::memcpy(host.data() + ints_at, ints.data(), ints.size() * sizeof(int32_t));
  std::string err = cuda_allocate(host.size(), device, &made->memory);
  if (!err.empty()) {
    return failed(CacheStatus::kOutOfMemory,
                  "the plan's tables on GPU " + std::to_string(device) + ": " + err);
  }
  made->device = device;
  err = cuda_copy_to_device(made->memory, host.data(), host.size(), device, stream);
  if (!err.empty()) return failed(CacheStatus::kInternal, err);
  made->floats = static_cast<const float*>(made->memory);
  made->ints = reinterpret_cast<const int32_t*>(static_cast<const char*>(made->memory) + ints_at);
  return CacheStatus{};
}

// The device limits and the cached tables. One per process, never destroyed: freeing device
// memory while the CUDA runtime is torn down at exit can crash.
class DeviceCache {
 public:
  CacheStatus limits(int device, DeviceLimits* limits) {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = limits_.find(device);
    if (found == limits_.end()) {
      int count = 0, major = 0, minor = 0;
      DeviceLimits queried;
      std::string err = cuda_device_count(&count);
      if (err.empty()) err = cuda_device_limits(device, &queried, &major, &minor);
      if (!err.empty()) return failed(CacheStatus::kInternal, err);
      found = limits_.emplace(device, queried).first;
    }
    *limits = found->second;
    return CacheStatus{};
  }

  // The lock is held through a first upload: it happens once per plan, and two calls must not
  // upload one twice.
  CacheStatus tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                     const BandView& bands, std::shared_ptr<const DeviceTables>* out) {
    std::vector<char> key = plan_key(device, cfg, window, bands);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if ((*it)->key == key) {
        entries_.splice(entries_.begin(), entries_, it);  // most recently used first
        *out = entries_.front();
        return CacheStatus{};
      }
    }
    auto made = std::make_shared<DeviceTables>();
    CacheStatus status = make_tables(device, stream, cfg, window, bands, made.get());
    if (!status.ok()) return status;
    made->key = std::move(key);
    entries_.push_front(made);
    if (entries_.size() > kCachedPlans) entries_.pop_back();
    *out = std::move(made);
    return CacheStatus{};
  }

 private:
  std::mutex mu_;
  std::map<int, DeviceLimits> limits_;
  std::list<std::shared_ptr<const DeviceTables>> entries_;
};

DeviceCache& device_cache() {
  static DeviceCache* cache = new DeviceCache;  // deliberately leaked (see DeviceCache)
  return *cache;
}

}  // namespace

DeviceTables::~DeviceTables() {
  if (memory != nullptr) cuda_free(memory, device);
}

CacheStatus device_limits(int device, DeviceLimits* limits) {
  return device_cache().limits(device, limits);
}

CacheStatus device_tables(int device, void* stream, const FrontEndConfig& cfg,
                          const float* window, const BandView& bands,
                          std::shared_ptr<const DeviceTables>* out) {
  return device_cache().tables(device, stream, cfg, window, bands, out);
}

}  // namespace gpu
}  // namespace kapre_fast
