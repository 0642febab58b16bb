// The bookkeeping of the device table cache (device_tables.h), as plain C++ over a backend: the
// CUDA runtime in device_tables.cc, a simulated one in the host emulation, whose tests
// (tests/test_gpu_launch_safety.py) run this same logic without a GPU.
//
// One TableCache per device, each with its own lock: a device's misses and evictions never
// block another device's launches. What it guarantees:
//   - A miss builds and uploads outside the lock (Make), on the backend's private stream; the
//     caller's stream waits on the upload's event, the host waits for nothing. Until that event
//     is known to have completed, every later call, on whatever stream, is ordered after it too
//     (Backend::ready): a hit on another stream must not read tables still being copied.
//   - Every call pins its entry from lookup until its Lease is dropped (after the launch); then
//     an event is recorded on the call's stream (the latest one per stream is kept).
//   - An evicted entry is released only when no call pins it, and its release is ordered after
//     every event recorded for it (Backend::release: the private stream waits on them, then
//     frees; no host or device synchronisation).
//   - An entry looked up while the caller's stream is capturing a CUDA graph is captured: the
//     graph holds its raw pointers for as long as the graph lives, which no cache can know, so a
//     captured entry is never evicted (and counts against no capacity). Capturing lookups record
//     no event (an event record would become a graph node).
//   - A release failure is reported by the next lookup on that device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kapre_fast {
namespace gpu {

// What went wrong, for the binding to map to its framework's error kinds.
struct CacheStatus {
  enum Code { kOk, kInvalid, kOutOfMemory, kInternal };
  Code code = kOk;
  std::string message;  // without a "kapre_fast: " prefix
  bool ok() const { return code == kOk; }
};

inline CacheStatus cache_failure(CacheStatus::Code code, std::string message) {
  CacheStatus status;
  status.code = code;
  status.message = std::move(message);
  return status;
}

// Backend (one device):
//   std::string capturing(void* stream, bool* capturing);
//   std::string record(void* stream, void** event);  // *event: null: create one; else re-record
//   std::string release(void* memory, void* ready, const std::vector<void*>& events);
//       // frees memory after the events; destroys them and `ready` (may be null)
//   std::string ready(void* stream, bool capturing, void** event);
//       // orders `stream` after the upload's *event: "" and *event null once it has completed
//       // (the event destroyed); otherwise the stream waits on it (capturing: the host does, as
//       // an outside event cannot be waited on inside a capture)
// Make: CacheStatus make(bool capturing, Value* value, void** memory, void** ready): builds the
// value and uploads its tables (the caller's stream waits for them), outside the lock; *ready:
// the upload's event, or null when the upload has completed already.
template <class Backend, class Value>
class TableCache {
  struct Entry {
    std::vector<char> key;
    Value value;
    void* memory = nullptr;
    void* ready = nullptr;          // the upload's event until it is known to have completed
    std::map<void*, void*> events;  // stream -> its latest event
    int pins = 0;
    bool captured = false;
    bool evicted = false;
  };

 public:
  // Pins an entry for one call; dropping it (after the launch) records the call's event.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept {
      reset();
      cache_ = std::exchange(other.cache_, nullptr);
      entry_ = std::move(other.entry_);
      stream_ = other.stream_;
      capturing_ = other.capturing_;
      return *this;
    }
    ~Lease() { reset(); }
    const Value& value() const { return entry_->value; }
    void* memory() const { return entry_->memory; }
    bool valid() const { return entry_ != nullptr; }
    void reset() {
      if (cache_ != nullptr && entry_) cache_->unpin(entry_, stream_, capturing_);
      cache_ = nullptr;
      entry_.reset();
    }

   private:
    friend class TableCache;
    TableCache* cache_ = nullptr;
    std::shared_ptr<Entry> entry_;
    void* stream_ = nullptr;
    bool capturing_ = false;
  };

  TableCache(Backend backend, std::size_t capacity)
      : backend_(std::move(backend)), capacity_(capacity) {}
  TableCache(const TableCache&) = delete;
  TableCache& operator=(const TableCache&) = delete;

  template <class Make>
  CacheStatus get(const std::vector<char>& key, void* stream, Make&& make, Lease* lease) {
    lease->reset();  // outside the lock: a held lease unpins under it
    bool capturing = false;
    const std::string err = backend_.capturing(stream, &capturing);
    if (!err.empty()) return cache_failure(CacheStatus::kInternal, err);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (CacheStatus pending = take_pending(); !pending.ok()) return pending;
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if ((*it)->key == key) {
          entries_.splice(entries_.begin(), entries_, it);  // most recently used first
          return pin(entries_.front(), stream, capturing, lease);
        }
      }
    }
    // A miss: built and uploaded outside the lock. Two threads may build the same key; the
    // second to insert releases its own copy (never used, so with no event) and takes the first.
    auto made = std::make_shared<Entry>();
    made->key = key;
    CacheStatus status = make(capturing, &made->value, &made->memory, &made->ready);
    if (!status.ok()) return status;
    std::lock_guard<std::mutex> lock(mu_);
    ++uploads_;
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if ((*it)->key == key) {
        const std::string dropped = backend_.release(made->memory, made->ready, {});
        ++releases_;
        entries_.splice(entries_.begin(), entries_, it);
        status = pin(entries_.front(), stream, capturing, lease);
        if (status.ok() && !dropped.empty()) {
          status = cache_failure(CacheStatus::kInternal, dropped);
        }
        return status;
      }
    }
    entries_.push_front(made);
    status = pin(made, stream, capturing, lease);
    CacheStatus evicted = evict();
    return status.ok() ? evicted : status;
  }

  // Counts for the tests: entries cached (captured ones included), captured entries, evicted
  // entries still pinned by a call, uploads and releases so far.
  struct Stats {
    std::size_t entries = 0, captured = 0, retired = 0, uploads = 0, releases = 0;
  };
  Stats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    Stats s;
    s.entries = entries_.size();
    for (const auto& e : entries_) s.captured += e->captured ? 1 : 0;
    s.retired = retired_;
    s.uploads = uploads_;
    s.releases = releases_;
    return s;
  }

  Backend& backend() { return backend_; }

 private:
  // Under the lock: the call's lease, once its stream is ordered after the upload.
  CacheStatus pin(const std::shared_ptr<Entry>& entry, void* stream, bool capturing, Lease* lease) {
    if (entry->ready != nullptr) {  // cheap once the upload is known to be done
      const std::string err = backend_.ready(stream, capturing, &entry->ready);
      if (!err.empty()) return cache_failure(CacheStatus::kInternal, err);
    }
    ++entry->pins;
    if (capturing) entry->captured = true;
    lease->cache_ = this;
    lease->entry_ = entry;
    lease->stream_ = stream;
    lease->capturing_ = capturing;
    return CacheStatus{};
  }

  void unpin(const std::shared_ptr<Entry>& entry, void* stream, bool capturing) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!capturing) {
      void*& event = entry->events[stream];
      const std::string err = backend_.record(stream, &event);
      if (!err.empty() && pending_.empty()) pending_ = err;
      if (event == nullptr) entry->events.erase(stream);
    }
    if (--entry->pins == 0 && entry->evicted) {
      --retired_;
      release(entry.get());
    }
  }

  // Least recently used entries beyond the capacity leave the list; captured ones never do.
  CacheStatus evict() {
    std::size_t uncaptured = 0;
    for (const auto& e : entries_) uncaptured += e->captured ? 0 : 1;
    auto it = entries_.end();
    while (uncaptured > capacity_ && it != entries_.begin()) {
      --it;
      if ((*it)->captured) continue;
      std::shared_ptr<Entry> old = *it;
      it = entries_.erase(it);
      --uncaptured;
      old->evicted = true;
      if (old->pins == 0) {
        release(old.get());
      } else {
        ++retired_;
      }
    }
    return take_pending();
  }

  void release(Entry* entry) {
    std::vector<void*> events;
    for (const auto& se : entry->events) events.push_back(se.second);
    entry->events.clear();
    const std::string err = backend_.release(entry->memory, entry->ready, events);
    entry->memory = nullptr;
    entry->ready = nullptr;
    ++releases_;
    if (!err.empty() && pending_.empty()) {
      pending_ = "releasing an evicted plan's tables failed: " + err;
    }
  }

  CacheStatus take_pending() {
    if (pending_.empty()) return CacheStatus{};
    return cache_failure(CacheStatus::kInternal, std::exchange(pending_, std::string()));
  }

  Backend backend_;
  const std::size_t capacity_;
  std::mutex mu_;
  std::list<std::shared_ptr<Entry>> entries_;  // most recently used first
  std::size_t retired_ = 0, uploads_ = 0, releases_ = 0;
  std::string pending_;  // a failure no caller could be told of yet
};

// One TableCache per device, made on first use and never destroyed (freeing device memory while
// the CUDA runtime is torn down at exit can crash). make_backend(device) -> Backend.
template <class Backend, class Value>
class PerDevice {
 public:
  using Cache = TableCache<Backend, Value>;
  template <class MakeBackend>
  Cache& of(int device, MakeBackend&& make_backend, std::size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<Cache>& cache = caches_[device];
    if (!cache) cache = std::make_unique<Cache>(make_backend(device), capacity);
    return *cache;
  }

 private:
  std::mutex mu_;
  std::map<int, std::unique_ptr<Cache>> caches_;
};

}  // namespace gpu
}  // namespace kapre_fast
