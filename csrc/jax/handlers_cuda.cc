// CUDA XLA FFI handlers (see handlers.h): the call is checked exactly as on the CPU
// (call_args.h), then the plan's tables are found on the device, the launch parameters filled
// (csrc/cuda/plan.h: prepare_call / prepare_istft, alignment_error), the workspace taken from
// XLA's scratch allocator and the kernels enqueued on XLA's stream with csrc/cuda's launch
// functions, as the CuPy module and the TF GPU kernels do. Nothing here waits for the GPU
// except the one upload of a plan's tables (below); that wait is also why the handlers do not
// declare XLA's command-buffer trait (no stream synchronisation is allowed inside a CUDA graph
// capture), so XLA launches them directly.
//
// Compiled by g++ only when the CUDA kernels are built (KF_JAX_CUDA); no CUDA header: the
// stream travels as void*, as in launch.h. XLA's stream and our static CUDA runtime meet in the
// device's primary context, which both XLA and the runtime API use.
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/launch.h"
#include "../cuda/plan.h"
#include "call_args.h"
#include "handlers.h"

namespace kapre_fast {
namespace jax_ffi {
namespace {

// ---- the plan's tables on the device ----
//
// The kernels read the plan's tables (twiddles, window, filterbank: GpuPlan::floats() and
// ints(), from tens of KB to a few MB) from device memory. They are cached per (device, plan)
// for the life of the process rather than copied into XLA's scratch memory on every call:
// a per-call cudaMemcpyAsync from pageable host memory is staged by the driver and may
// synchronise the host with the stream, so every call would wait for the GPU work queued
// before it (XLA dispatches asynchronously), and the plan (twiddle tables, O(n_fft) host work)
// would be rebuilt per call as well. The cache costs one cudaMalloc and one synchronous upload
// per distinct front end and device (memory outside XLA's pool: small next to the 25% XLA
// leaves free by default), and a comparison of the attributes (a few KB) per call.
constexpr std::size_t kCachedPlans = 32;  // least recently used ones beyond this are freed

struct DeviceTables {
  int device = -1;
  std::vector<char> key;  // the attributes the plan was built from
  std::unique_ptr<const gpu::GpuPlan> plan;
  void* memory = nullptr;  // floats, then ints at a 256-byte boundary
  const float* floats = nullptr;
  const int32_t* ints = nullptr;

  DeviceTables() = default;
  DeviceTables(const DeviceTables&) = delete;
  DeviceTables& operator=(const DeviceTables&) = delete;
  // Runs when the last holder lets go: the cache after an eviction, or a call that was still
  // launching with it. cuda_free waits for the device first; a failure there has no caller
  // left to tell (the memory is lost, nothing breaks).
  ~DeviceTables() {
    if (memory != nullptr) gpu::cuda_free(memory, device);
  }
};

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

// Builds the plan and uploads its tables on `stream` (which it waits for).
ffi::Error make_tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                       const BandView& bands, DeviceTables* made) {
  try {
    made->plan = std::make_unique<gpu::GpuPlan>(cfg, window, cfg.win_length, bands);
  } catch (const std::invalid_argument& error) {
    return invalid(error.what());  // checked before; kept for the CUDA-only limits
  }
  const std::vector<float>& floats = made->plan->floats();
  const std::vector<int32_t>& ints = made->plan->ints();
  const int64_t ints_at = round_up_256(static_cast<int64_t>(floats.size() * sizeof(float)));
  std::vector<char> host(static_cast<std::size_t>(ints_at) + ints.size() * sizeof(int32_t));
  std::memcpy(host.data(), floats.data(), floats.size() * sizeof(float));
  std::memcpy(host.data() + ints_at, ints.data(), ints.size() * sizeof(int32_t));
  std::string err = gpu::cuda_allocate(host.size(), device, &made->memory);
  if (!err.empty()) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "kapre_fast: the plan's tables on GPU " + std::to_string(device) + ": " +
                          err);
  }
  made->device = device;
  err = gpu::cuda_copy_to_device(made->memory, host.data(), host.size(), device, stream);
  if (!err.empty()) return ffi::Error::Internal("kapre_fast: " + err);
  made->floats = static_cast<const float*>(made->memory);
  made->ints = reinterpret_cast<const int32_t*>(static_cast<const char*>(made->memory) + ints_at);
  return ffi::Error::Success();
}

// The device limits (queried once per device) and the cached tables. One per process, never
// destroyed: freeing device memory while the CUDA runtime is torn down at exit can crash.
class DeviceCache {
 public:
  ffi::Error limits(int device, gpu::DeviceLimits* limits) {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = limits_.find(device);
    if (found == limits_.end()) {
      int count = 0, major = 0, minor = 0;
      gpu::DeviceLimits queried;
      std::string err = gpu::cuda_device_count(&count);
      if (err.empty()) err = gpu::cuda_device_limits(device, &queried, &major, &minor);
      if (!err.empty()) return ffi::Error::Internal("kapre_fast: " + err);
      found = limits_.emplace(device, queried).first;
    }
    *limits = found->second;
    return ffi::Error::Success();
  }

  // The tables of this plan on `device`, uploaded on `stream` the first time. The lock is held
  // through a first upload: it happens once per plan, and two calls must not upload one twice.
  ffi::Error tables(int device, void* stream, const FrontEndConfig& cfg, const float* window,
                    const BandView& bands, std::shared_ptr<const DeviceTables>* out) {
    std::vector<char> key = plan_key(device, cfg, window, bands);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if ((*it)->key == key) {
        entries_.splice(entries_.begin(), entries_, it);  // most recently used first
        *out = entries_.front();
        return ffi::Error::Success();
      }
    }
    auto made = std::make_shared<DeviceTables>();
    if (ffi::Error error = make_tables(device, stream, cfg, window, bands, made.get());
        error.failure()) {
      return error;
    }
    made->key = std::move(key);
    entries_.push_front(made);
    if (entries_.size() > kCachedPlans) entries_.pop_back();
    *out = std::move(made);
    return ffi::Error::Success();
  }

 private:
  std::mutex mu_;
  std::map<int, gpu::DeviceLimits> limits_;
  std::list<std::shared_ptr<const DeviceTables>> entries_;
};

DeviceCache& device_cache() {
  static DeviceCache* cache = new DeviceCache;  // deliberately leaked (see DeviceCache)
  return *cache;
}

using LaunchFn = std::string (*)(const gpu::FrontEndParams&, const gpu::Geometry&, int, void*);

// One checked call on `device`: prepare(plan, p, limits) fills p's per-call fields (the
// buffers' device addresses) and returns the geometry; the workspace comes from XLA's scratch
// allocator, and launch_fn enqueues the kernels on XLA's stream.
template <class Prepare>
ffi::Error launch(void* stream, int32_t device, ffi::ScratchAllocator& scratch,
                  const FrontEndConfig& cfg, const float* window, const BandView& bands,
                  Prepare&& prepare, LaunchFn launch_fn) {
  if (stream == nullptr || device < 0) {
    return ffi::Error::Internal("kapre_fast: XLA gave no CUDA stream or device (device " +
                                std::to_string(device) + ")");
  }
  gpu::DeviceLimits limits;
  if (ffi::Error error = device_cache().limits(device, &limits); error.failure()) return error;
  std::shared_ptr<const DeviceTables> tables;
  if (ffi::Error error = device_cache().tables(device, stream, cfg, window, bands, &tables);
      error.failure()) {
    return error;
  }
  gpu::FrontEndParams p = tables->plan->params(tables->floats, tables->ints);
  const gpu::Geometry g = prepare(*tables->plan, p, limits);
  // XLA aligns whole buffers; a misaligned view would poison the process's CUDA context.
  const std::string misaligned = gpu::alignment_error(p);
  if (!misaligned.empty()) return invalid(misaligned);
  void* workspace = nullptr;
  if (const std::size_t bytes = g.workspace_bytes(); bytes > 0) {
    // XLA's allocator promises at most 16-byte alignment; the workspace's sections sit at
    // 256-byte boundaries from its start: over-allocate and round the start up. The memory
    // returns to XLA when this handler returns, which is safe because XLA's device allocator
    // orders reuse on this same stream, after the kernels enqueued here.
    const std::optional<void*> got = scratch.Allocate(bytes + 255, 16);
    if (!got.has_value()) {
      return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                        "kapre_fast: XLA's scratch allocator could not provide " +
                            std::to_string(bytes) + " bytes of GPU workspace");
    }
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(*got);
    workspace = reinterpret_cast<void*>((at + 255) / 256 * 256);
  }
  gpu::bind_workspace(p, g, workspace);
  const std::string err = launch_fn(p, g, device, stream);
  if (!err.empty()) return ffi::Error::Internal("kapre_fast: " + err);
  return ffi::Error::Success();
}

ffi::Error FrontEndCuda(void* stream, int32_t device, ffi::ScratchAllocator scratch,
                        ffi::AnyBuffer audio, ffi::Result<ffi::AnyBuffer> result,
                        FrontEndAttrs attrs) {
  return run_guarded([&] {
    FrontEndCall call;
    if (ffi::Error error = check_front_end(attrs, audio, *result, &call); error.failure()) {
      return error;
    }
    return launch(
        stream, device, scratch, call.cfg, call.window, call.bands,
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_call(plan, p, call.signal, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_frontend);
  });
}

ffi::Error InverseStftCuda(void* stream, int32_t device, ffi::ScratchAllocator scratch,
                           ffi::AnyBuffer stft, ffi::Result<ffi::AnyBuffer> result,
                           InverseStftAttrs attrs) {
  return run_guarded([&] {
    InverseStftCall call;
    if (ffi::Error error = check_inverse_stft(attrs, stft, *result, &call); error.failure()) {
      return error;
    }
    return launch(
        stream, device, scratch, call.cfg, call.window, BandView{},
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_istft(plan, p, call.in, call.out, call.out_first, limits);
        },
        gpu::cuda_launch_istft);
  });
}

}  // namespace
}  // namespace jax_ffi
}  // namespace kapre_fast

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastFrontEndCuda, kapre_fast::jax_ffi::FrontEndCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<void*>>()
                                  .Ctx<xla::ffi::DeviceOrdinal>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::AnyBuffer>()  // audio
                                  .Ret<xla::ffi::AnyBuffer>()  // features
                                  .Attrs<kapre_fast::jax_ffi::FrontEndAttrs>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(KapreFastInverseStftCuda, kapre_fast::jax_ffi::InverseStftCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<void*>>()
                                  .Ctx<xla::ffi::DeviceOrdinal>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::AnyBuffer>()  // stft
                                  .Ret<xla::ffi::AnyBuffer>()  // waveforms
                                  .Attrs<kapre_fast::jax_ffi::InverseStftAttrs>());
