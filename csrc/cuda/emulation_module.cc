// pybind11 module kapre_fast._gpu_emulation: the CUDA front end's kernels run
// on the host, phase by phase and thread by thread (emulation.h), on NumPy
// arrays. Built with every build, GPU or not: the tests check the GPU
// algorithm against the float64 reference here.
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "device_guard.h"
#include "emulation.h"
#include "shared_memory_opt_in.h"
#include "table_cache.h"

namespace kapre_fast {
namespace gpu {
namespace {

SignalView host_signal(const py::array& audio, bool input_channels_first) {
  if (!py::isinstance<py::array_t<float>>(audio) || !audio.dtype().is(py::dtype::of<float>())) {
    throw py::type_error("audio must be a float32 array, got dtype " +
                         py::str(audio.dtype()).cast<std::string>());
  }
  require(audio.ndim() == 3,
          std::string("audio must be 3-D ") +
              (input_channels_first ? "(batch, channels, time)" : "(batch, time, channels)") +
              ", got " + std::to_string(audio.ndim()) + " dimensions");
  const int64_t item = static_cast<int64_t>(sizeof(float));
  for (int d = 0; d < 3; ++d) {
    require(audio.strides(d) % item == 0, "audio strides must be multiples of 4 bytes");
  }
  const int ch = input_channels_first ? 1 : 2, t = input_channels_first ? 2 : 1;
  SignalView s;
  s.data = static_cast<const float*>(audio.data());
  s.batch = audio.shape(0);
  s.channels = audio.shape(ch);
  s.time = audio.shape(t);
  s.sb = audio.strides(0) / item;
  s.sc = audio.strides(ch) / item;
  s.st = audio.strides(t) / item;
  return s;
}

ThreadOrder parse_order(const std::string& name) {
  if (name == "forward") return ThreadOrder::kForward;
  if (name == "reverse") return ThreadOrder::kReverse;
  if (name == "shuffled") return ThreadOrder::kShuffled;
  throw py::value_error("thread_order must be 'forward', 'reverse' or 'shuffled', got '" + name +
                        "'");
}

py::array frontend(const GpuPlan& plan, const py::array& audio, bool input_channels_first,
                   bool output_channels_first, int64_t smem_per_block, int sm_count,
                   int64_t max_grid, const std::string& thread_order, bool reverse_blocks,
                   uint64_t seed) {
  const DeviceLimits lim = limits(smem_per_block, sm_count, max_grid);
  EmulationOptions opt;
  opt.order = parse_order(thread_order);
  opt.reverse_blocks = reverse_blocks;
  opt.seed = seed;
  const SignalView sig = host_signal(audio, input_channels_first);
  const OutputShape shape =
      checked_output_shape(plan, sig.batch, sig.channels, sig.time, output_channels_first);
  py::array result(shape.complex ? py::dtype("complex64") : py::dtype("float32"),
                   std::vector<py::ssize_t>(shape.shape.begin(), shape.shape.end()));
  // NaN everywhere first: an element the kernels fail to write cannot pass a test.
  std::memset(result.mutable_data(), 0xff, static_cast<std::size_t>(result.nbytes()));

  FrontEndParams p = plan.params(plan.floats().data(), plan.ints().data());
  const Geometry g = prepare_call(plan, p, sig, static_cast<float*>(result.mutable_data()),
                                  output_channels_first, lim);
  std::vector<double> workspace((g.workspace_bytes() + sizeof(double) - 1) / sizeof(double));
  std::memset(workspace.data(), 0xff, workspace.size() * sizeof(double));
  bind_workspace(p, g, workspace.data());
  {
    py::gil_scoped_release release;
    emulate_frontend(p, g, opt);
  }
  return result;
}

py::array istft(const GpuPlan& plan, const py::array& stft, bool input_channels_first,
                bool output_channels_first, int64_t smem_per_block, int sm_count, int64_t max_grid,
                const std::string& thread_order, bool reverse_blocks, uint64_t seed) {
  const DeviceLimits lim = limits(smem_per_block, sm_count, max_grid);
  EmulationOptions opt;
  opt.order = parse_order(thread_order);
  opt.reverse_blocks = reverse_blocks;
  opt.seed = seed;
  if (!stft.dtype().is(py::dtype("complex64"))) {
    throw py::type_error("stft must be a complex64 array, got dtype " +
                         py::str(stft.dtype()).cast<std::string>());
  }
  require(stft.ndim() == 4, std::string("stft must be 4-D ") +
                                (input_channels_first ? "(batch, channels, frames, bins)"
                                                      : "(batch, frames, bins, channels)") +
                                ", got " + std::to_string(stft.ndim()) + " dimensions");
  for (int d = 0; d < 4; ++d) {
    require(stft.strides(d) % 8 == 0, "stft strides must be multiples of 8 bytes");
  }
  const int axes_first[4] = {0, 1, 2, 3}, axes_last[4] = {0, 3, 1, 2};
  const int* axes = input_channels_first ? axes_first : axes_last;  // b, c, frame, bin
  const int64_t b = stft.shape(axes[0]), c = stft.shape(axes[1]);
  const int64_t f = stft.shape(axes[2]), k = stft.shape(axes[3]);
  const ComplexInputView in =
      checked_istft_input(plan, b, c, f, k, stft.strides(axes[0]) / 4, stft.strides(axes[1]) / 4,
                          stft.strides(axes[2]) / 4, stft.strides(axes[3]) / 4);
  const std::vector<int64_t> shape = istft_shape(plan, in, output_channels_first);
  py::array result(py::dtype("float32"), std::vector<py::ssize_t>(shape.begin(), shape.end()));
  std::memset(result.mutable_data(), 0xff, static_cast<std::size_t>(result.nbytes()));
  std::vector<double> workspace;
  RawCall call;
  call.p = plan.params(plan.floats().data(), plan.ints().data());
  ComplexInputView bound = in;
  bound.data = static_cast<const float*>(stft.data());
  call.g = prepare_istft(plan, call.p, bound, static_cast<float*>(result.mutable_data()),
                         output_channels_first, lim);
  workspace.resize((call.g.workspace_bytes() + sizeof(double) - 1) / sizeof(double));
  std::memset(workspace.data(), 0xff, workspace.size() * sizeof(double));
  bind_workspace(call.p, call.g, workspace.data());
  {
    py::gil_scoped_release release;
    emulate_istft(call.p, call.g, opt);
  }
  return result;
}

// A kernel's dynamic shared memory limit per device, as the CUDA runtime keeps it, simulated for
// the raw entry points: they raise it through the same SharedMemoryOptIn as kernels.cu (with
// their smem_per_block argument standing in for the device's opt-in maximum) and fail as the
// launch would when a call needs more than the limit holds at launch time.
class SimulatedKernel {
 public:
  explicit SimulatedKernel(const char* name) : name_(name) {}

  std::size_t limit(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = limit_.find(device);
    return it == limit_.end() ? kDefaultSharedMemory : it->second;
  }

  // "" or the launch failure CUDA would report.
  std::string launch(int device, const Geometry& g, int64_t opt_in_maximum) {
    if (g.grid == 0) return {};
    std::string err = opt_in_.allow(device, g.smem_bytes, [&] {
      std::lock_guard<std::mutex> lock(mu_);
      limit_[device] = static_cast<std::size_t>(opt_in_maximum);
      return std::string();
    });
    if (err.empty() && g.smem_bytes > limit(device)) {
      err = std::string("launching ") + name_ +
            " failed: cudaErrorInvalidValue (emulated: the call needs " +
            std::to_string(g.smem_bytes) +
            " bytes of shared memory, the kernel's limit on device " + std::to_string(device) +
            " is " + std::to_string(limit(device)) + ")";
    }
    return err;
  }

 private:
  const char* name_;
  SharedMemoryOptIn opt_in_;
  std::mutex mu_;
  std::map<int, std::size_t> limit_;
};

SimulatedKernel frontend_kernel("frontend_kernel"), istft_kernel("istft_kernel");

// ---- device_guard.h on a simulated runtime: one thread's current device and the process's
// primary contexts (cudaSetDevice creates the context of the device it selects, as since CUDA
// 12). Returns what a call on `device` leaves behind.
struct SimulatedRuntimeDevice {
  int current_device = 0;
  std::vector<bool> contexts;
  std::vector<int> sets;  // every cudaSetDevice, in order
  bool fail_set = false;
  int current() { return current_device; }
  std::string set(int device) {
    sets.push_back(device);
    if (fail_set) return "cudaSetDevice(" + std::to_string(device) + ") failed (emulated)";
    current_device = device;
    if (contexts.size() <= static_cast<std::size_t>(device)) contexts.resize(device + 1, false);
    contexts[device] = true;
    return {};
  }
  bool active(int device) {
    return static_cast<std::size_t>(device) < contexts.size() && contexts[device];
  }
};

py::dict scoped_device(int current, const std::vector<int>& active, int device, bool fail_set) {
  SimulatedRuntimeDevice api;
  api.current_device = current;
  for (int d : active) api.set(d);
  api.current_device = current;
  api.sets.clear();
  api.fail_set = fail_set;
  py::dict result;
  {
    ScopedDevice<SimulatedRuntimeDevice> guard(api, device);
    result["error"] = guard.error();
    result["during"] = api.current_device;
    api.fail_set = false;
  }
  result["after"] = api.current_device;
  result["sets"] = api.sets;
  std::vector<int> contexts;
  for (std::size_t d = 0; d < api.contexts.size(); ++d) {
    if (api.contexts[d]) contexts.push_back(static_cast<int>(d));
  }
  result["contexts"] = contexts;
  return result;
}

// ---- table_cache.h on a simulated backend: streams that capture or not, events, uploads and
// releases as a log the tests read.
struct SimulatedTables {
  std::mutex mu;
  std::vector<std::string> log;
  std::map<std::uintptr_t, bool> capturing;  // stream -> capturing now
  std::uintptr_t next_event = 1;
  std::string fail_release;
  std::function<void(void*)> on_release;  // set by TableCacheModel::stress (then no log)
  bool uploads_complete = true;
  void add(std::string line) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(std::move(line));
  }
};

struct SimulatedTableBackend {
  int device = 0;
  SimulatedTables* sim = nullptr;
  std::string capturing(void* stream, bool* capturing) {
    std::lock_guard<std::mutex> lock(sim->mu);
    *capturing = sim->capturing[reinterpret_cast<std::uintptr_t>(stream)];
    return {};
  }
  std::string record(void* stream, void** event) {
    std::lock_guard<std::mutex> lock(sim->mu);
    if (*event == nullptr) *event = reinterpret_cast<void*>(sim->next_event++);
    if (sim->on_release) return {};
    sim->log.push_back("record device=" + std::to_string(device) +
                       " stream=" + std::to_string(reinterpret_cast<std::uintptr_t>(stream)) +
                       " event=" + std::to_string(reinterpret_cast<std::uintptr_t>(*event)));
    return {};
  }
  // The upload's event: done once the test says uploads have completed; before that, a call's
  // stream waits on it, or the host does while the stream captures.
  std::string ready(void* stream, bool capturing, void** event) {
    std::lock_guard<std::mutex> lock(sim->mu);
    const std::string id = std::to_string(reinterpret_cast<std::uintptr_t>(*event));
    if (sim->uploads_complete) {
      sim->log.push_back("ready-done event=" + id);
      *event = nullptr;
    } else if (capturing) {
      sim->log.push_back("host-wait stream=" +
                         std::to_string(reinterpret_cast<std::uintptr_t>(stream)) + " event=" + id);
      *event = nullptr;
    } else {
      sim->log.push_back("wait stream=" + std::to_string(reinterpret_cast<std::uintptr_t>(stream)) +
                         " event=" + id);
    }
    return {};
  }
  std::string release(void* memory, void* ready, const std::vector<void*>& events) {
    if (ready != nullptr)
      sim->add("destroy-ready event=" + std::to_string(reinterpret_cast<std::uintptr_t>(ready)));
    if (sim->on_release) {
      sim->on_release(memory);
      return {};
    }
    std::string line = "release device=" + std::to_string(device) +
                       " memory=" + std::to_string(reinterpret_cast<std::uintptr_t>(memory)) +
                       " events=";
    for (void* e : events) line += std::to_string(reinterpret_cast<std::uintptr_t>(e)) + ",";
    sim->add(line);
    return sim->fail_release;
  }
};

// A model of the per-device caches: integer keys stand for plans, the key itself for the
// uploaded memory's address.
class TableCacheModel {
 public:
  explicit TableCacheModel(std::size_t capacity) : capacity_(capacity) {
    require(capacity >= 1, "capacity must be >= 1, got " + std::to_string(capacity));
  }

  void set_capturing(std::uintptr_t stream, bool on) {
    std::lock_guard<std::mutex> lock(sim_.mu);
    sim_.capturing[stream] = on;
  }

  void set_release_failure(const std::string& message) { sim_.fail_release = message; }

  void set_uploads_complete(bool done) {
    std::lock_guard<std::mutex> lock(sim_.mu);
    sim_.uploads_complete = done;
  }

  // Looks `key` up on `device` for a call on `stream`: a lease id, or RuntimeError with the
  // status's message (fail_upload: the upload's failure, e.g. out of memory).
  int get(int device, int key, std::uintptr_t stream, const std::string& fail_upload) {
    Cache& cache = cache_of(device);
    std::vector<char> bytes(reinterpret_cast<const char*>(&key),
                            reinterpret_cast<const char*>(&key) + sizeof key);
    Cache::Lease lease;
    const CacheStatus status = cache.get(
        bytes, reinterpret_cast<void*>(stream),
        [&](bool capturing, int* value, void** memory, void** ready) {
          if (!fail_upload.empty()) {
            return cache_failure(CacheStatus::kOutOfMemory, fail_upload);
          }
          *value = key;
          *memory = reinterpret_cast<void*>(static_cast<std::uintptr_t>(key) + 1000);
          if (!capturing) {  // a capturing upload has finished on return
            std::lock_guard<std::mutex> lock(sim_.mu);
            *ready = reinterpret_cast<void*>(sim_.next_event++);
          }
          sim_.add("upload device=" + std::to_string(device) + " key=" + std::to_string(key) +
                   " capturing=" + std::to_string(capturing ? 1 : 0));
          return CacheStatus{};
        },
        &lease);
    if (!status.ok()) throw std::runtime_error(status.message);
    require(lease.valid() && lease.value() == key, "the lease holds another key");
    leases_[++last_lease_] = std::move(lease);
    return last_lease_;
  }

  // Ends a call: the lease is dropped after its (simulated) launch.
  void drop(int lease) {
    const auto found = leases_.find(lease);
    require(found != leases_.end(), "no lease " + std::to_string(lease));
    leases_.erase(found);
  }

  py::dict stats(int device) {
    const auto s = cache_of(device).stats();
    py::dict d;
    d["entries"] = s.entries;
    d["captured"] = s.captured;
    d["retired"] = s.retired;
    d["uploads"] = s.uploads;
    d["releases"] = s.releases;
    return d;
  }

  std::vector<std::string> take_log() {
    std::lock_guard<std::mutex> lock(sim_.mu);
    return std::exchange(sim_.log, {});
  }

  // `threads` threads, each making `rounds` calls on `device` with keys drawn from `keys`, on
  // its own stream (some of them capturing), holding each lease across a simulated launch. The
  // backend counts the violations of the cache's promises: a release of memory that a call
  // still holds, an event recorded after its entry's release, a second release. Without the GIL.
  py::dict stress(int device, int threads, int rounds, int keys, int capturing_threads) {
    require(threads >= 1 && rounds >= 1 && keys >= 1, "threads, rounds and keys must be >= 1");
    Cache& cache = cache_of(device);
    std::mutex mu;
    std::map<void*, int> holders;    // memory -> calls holding it now
    std::map<void*, bool> released;  // memory -> released (a fresh upload clears it)
    int violations = 0, calls = 0;
    sim_.on_release = [&](void* memory) {
      std::lock_guard<std::mutex> lock(mu);
      if (holders[memory] > 0 || released[memory]) ++violations;
      released[memory] = true;
    };
    for (int t = 0; t < threads; ++t) {
      set_capturing(static_cast<std::uintptr_t>(1000 + t), t < capturing_threads);
    }
    {
      py::gil_scoped_release unlocked;
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          unsigned state = 2654435761u * static_cast<unsigned>(t + 1);
          for (int r = 0; r < rounds; ++r) {
            state = state * 1664525u + 1013904223u;
            const int key = static_cast<int>((state >> 8) % static_cast<unsigned>(keys));
            std::vector<char> bytes(reinterpret_cast<const char*>(&key),
                                    reinterpret_cast<const char*>(&key) + sizeof key);
            Cache::Lease lease;
            void* stream = reinterpret_cast<void*>(static_cast<std::uintptr_t>(1000 + t));
            const CacheStatus status = cache.get(
                bytes, stream,
                [&](bool, int* value, void** memory, void**) {
                  *value = key;
                  *memory = new char;  // a distinct address per upload
                  std::lock_guard<std::mutex> lock(mu);
                  released[*memory] = false;
                  return CacheStatus{};
                },
                &lease);
            std::lock_guard<std::mutex> lock(mu);
            ++calls;
            if (!status.ok() || lease.value() != key) {
              ++violations;
              continue;
            }
            void* memory = lease.memory();
            if (released[memory]) ++violations;  // handed out after its release
            ++holders[memory];
            mu.unlock();
            std::this_thread::yield();  // the simulated launch
            mu.lock();
            --holders[memory];
          }
        });
      }
      for (auto& thread : pool) thread.join();
    }
    sim_.on_release = nullptr;
    const auto s = cache.stats();
    py::dict d;
    d["violations"] = violations;
    d["calls"] = calls;
    d["entries"] = s.entries;
    d["captured"] = s.captured;
    d["uploads"] = s.uploads;
    d["releases"] = s.releases;
    return d;
  }

 private:
  using Cache = TableCache<SimulatedTableBackend, int>;
  Cache& cache_of(int device) {
    return caches_.of(device, [this](int d) { return SimulatedTableBackend{d, &sim_}; }, capacity_);
  }

  SimulatedTables sim_;
  std::size_t capacity_;
  PerDevice<SimulatedTableBackend, int> caches_;
  std::map<int, Cache::Lease> leases_;  // destroyed before caches_ (declared after it)
  int last_lease_ = 0;
};

SimulatedKernel& simulated(const std::string& name) {
  if (name == "frontend_kernel") return frontend_kernel;
  if (name == "istft_kernel") return istft_kernel;
  throw py::value_error("kernel must be 'frontend_kernel' or 'istft_kernel', got '" + name + "'");
}

void istft_raw(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints, std::uintptr_t stft,
               int64_t batch, int64_t channels, int64_t frames, int64_t bins, int64_t sb,
               int64_t sc, int64_t sf, int64_t sk, std::uintptr_t out, bool output_channels_first,
               std::uintptr_t workspace, int64_t workspace_bytes, int64_t smem_per_block,
               int sm_count, int device, std::uintptr_t stream) {
  (void)stream;
  const RawCall call = raw_istft(plan, floats, ints, stft, batch, channels, frames, bins, sb, sc,
                                 sf, sk, out, output_channels_first, workspace, workspace_bytes,
                                 limits(smem_per_block, sm_count, 0));
  std::string err;
  {
    py::gil_scoped_release release;
    err = istft_kernel.launch(device, call.g, smem_per_block);
    if (err.empty()) emulate_istft(call.p, call.g, EmulationOptions());
  }
  if (!err.empty()) throw std::runtime_error(err);
}

// kapre_fast._cuda.frontend's signature on host addresses: lets tests drive kapre_fast.gpu's
// Python code end to end with host memory standing in for the device.
void frontend_raw(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints,
                  std::uintptr_t audio, int64_t batch, int64_t channels, int64_t time, int64_t sb,
                  int64_t sc, int64_t st, std::uintptr_t out, bool output_channels_first,
                  std::uintptr_t workspace, int64_t workspace_bytes, int64_t smem_per_block,
                  int sm_count, int device, std::uintptr_t stream) {
  (void)stream;
  const RawCall call = raw_call(plan, floats, ints, audio, batch, channels, time, sb, sc, st, out,
                                output_channels_first, workspace, workspace_bytes,
                                limits(smem_per_block, sm_count, 0));
  std::string err;
  {
    py::gil_scoped_release release;
    err = frontend_kernel.launch(device, call.g, smem_per_block);
    if (err.empty()) emulate_frontend(call.p, call.g, EmulationOptions());
  }
  if (!err.empty()) throw std::runtime_error(err);
}

// kapre_fast._cuda.pcen on a host address (stream and device are ignored).
void pcen_raw(std::uintptr_t mel, int64_t batch, int64_t channels, int64_t frames, int64_t features,
              int64_t sb, int64_t sc, int64_t sf, int64_t sk, double b, double gain, double bias,
              double power, double eps, int sm_count, int device, std::uintptr_t stream) {
  (void)device;
  (void)stream;
  const PcenLaunch p = raw_pcen(mel, batch, channels, frames, features, sb, sc, sf, sk, b, gain,
                                bias, power, eps, sm_count);
  py::gil_scoped_release release;
  emulate_pcen(p, EmulationOptions());
}

// PCEN of a float32 4-D NumPy array (any strides; channels_first: (batch, channels, frames,
// features), else (batch, frames, features, channels)) into a new array, scheduled as asked.
py::array pcen(const py::array& mel, double b, double gain, double bias, double power, double eps,
               bool channels_first, int sm_count, int64_t max_grid, const std::string& thread_order,
               bool reverse_blocks, uint64_t seed) {
  if (!mel.dtype().is(py::dtype::of<float>())) {
    throw py::type_error("mel must be a float32 array, got dtype " +
                         py::str(mel.dtype()).cast<std::string>());
  }
  require(mel.ndim() == 4, "mel must be 4-D, got " + std::to_string(mel.ndim()) + " dimensions");
  EmulationOptions opt;
  opt.order = parse_order(thread_order);
  opt.reverse_blocks = reverse_blocks;
  opt.seed = seed;
  py::array result(py::dtype("float32"), std::vector<py::ssize_t>(mel.shape(), mel.shape() + 4));
  result[py::ellipsis()] = mel;  // a C-contiguous copy the pass overwrites
  const int axes_first[4] = {0, 1, 2, 3}, axes_last[4] = {0, 3, 1, 2};
  const int* axes = channels_first ? axes_first : axes_last;  // b, c, frame, k
  auto size = [&](int i) { return static_cast<int64_t>(result.shape(axes[i])); };
  auto stride = [&](int i) { return static_cast<int64_t>(result.strides(axes[i])) / 4; };
  const PcenLaunch p = raw_pcen(reinterpret_cast<std::uintptr_t>(result.mutable_data()), size(0),
                                size(1), size(2), size(3), stride(0), stride(1), stride(2),
                                stride(3), b, gain, bias, power, eps, sm_count, max_grid);
  {
    py::gil_scoped_release release;
    emulate_pcen(p, opt);
  }
  return result;
}

}  // namespace
}  // namespace gpu
}  // namespace kapre_fast

PYBIND11_MODULE(_gpu_emulation, m) {
  namespace py = pybind11;
  using namespace kapre_fast::gpu;
  m.doc() =
      "Host emulation of kapre_fast's CUDA kernels: the same phases, launch geometry and "
      "shared-memory layout, run block by block and thread by thread on NumPy arrays.";
  bind_plan(m);
  m.def("frontend", &frontend, py::arg("plan"), py::arg("audio"), py::kw_only(),
        py::arg("input_channels_first"), py::arg("output_channels_first"),
        py::arg("smem_per_block") = 101376, py::arg("sm_count") = 4, py::arg("max_grid") = 0,
        py::arg("thread_order") = "forward", py::arg("reverse_blocks") = false, py::arg("seed") = 0,
        "Runs the front end of `plan` on float32 `audio` (any strides) as the GPU would with "
        "`smem_per_block` bytes of shared memory per block (99 KiB: sm_86/89) and `sm_count` "
        "multiprocessors.");
  m.def("frontend_raw", &frontend_raw, py::arg("plan"), py::arg("floats"), py::arg("ints"),
        py::arg("audio"), py::arg("batch"), py::arg("channels"), py::arg("time"), py::arg("sb"),
        py::arg("sc"), py::arg("st"), py::arg("out"), py::arg("output_channels_first"),
        py::arg("workspace"), py::arg("workspace_bytes"), py::arg("smem_per_block"),
        py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "kapre_fast._cuda.frontend on host addresses (stream is ignored; `device` selects the "
        "simulated shared-memory limit, see shared_memory_limit).");
  m.def("istft", &istft, py::arg("plan"), py::arg("stft"), py::kw_only(),
        py::arg("input_channels_first"), py::arg("output_channels_first"),
        py::arg("smem_per_block") = 101376, py::arg("sm_count") = 4, py::arg("max_grid") = 0,
        py::arg("thread_order") = "forward", py::arg("reverse_blocks") = false, py::arg("seed") = 0,
        "Inverse STFT of the complex64 `stft` (any 8-byte strides) as the GPU would run it; the "
        "plan holds the synthesis window, output=2, no dB, no bands.");
  m.def("istft_raw", &istft_raw, py::arg("plan"), py::arg("floats"), py::arg("ints"),
        py::arg("stft"), py::arg("batch"), py::arg("channels"), py::arg("frames"), py::arg("bins"),
        py::arg("sb"), py::arg("sc"), py::arg("sf"), py::arg("sk"), py::arg("out"),
        py::arg("output_channels_first"), py::arg("workspace"), py::arg("workspace_bytes"),
        py::arg("smem_per_block"), py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "kapre_fast._cuda.istft on host addresses (stream is ignored; `device` selects the "
        "simulated shared-memory limit, see shared_memory_limit).");
  m.def("pcen_raw", &pcen_raw, py::arg("mel"), py::arg("batch"), py::arg("channels"),
        py::arg("frames"), py::arg("features"), py::arg("sb"), py::arg("sc"), py::arg("sf"),
        py::arg("sk"), py::arg("b"), py::arg("gain"), py::arg("bias"), py::arg("power"),
        py::arg("eps"), py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "kapre_fast._cuda.pcen on a host address (in place; device and stream are ignored).");
  m.def("pcen", &pcen, py::arg("mel"), py::arg("b"), py::arg("gain"), py::arg("bias"),
        py::arg("power"), py::arg("eps"), py::kw_only(), py::arg("channels_first"),
        py::arg("sm_count") = 4, py::arg("max_grid") = 0, py::arg("thread_order") = "forward",
        py::arg("reverse_blocks") = false, py::arg("seed") = 0,
        "PCEN of the float32 4-D `mel` (a new array) as the GPU's pass computes it, with "
        "librosa's constants (b resolved); the frames axis is 2 (channels_first) or 1.");
  m.def("scoped_device", &scoped_device, py::arg("current"), py::arg("active"), py::arg("device"),
        py::arg("fail_set") = false,
        "csrc/cuda/device_guard.h on a simulated runtime: a call on `device` from a thread whose "
        "current device is `current`, with primary contexts on `active`: {'error', 'during', "
        "'after', 'sets', 'contexts'}.");
  py::class_<TableCacheModel>(m, "TableCacheModel", py::module_local(),
                              "csrc/cuda/table_cache.h's per-device caches on a simulated "
                              "backend (integer keys, a log of uploads, records and releases).")
      .def(py::init<std::size_t>(), py::arg("capacity"))
      .def("set_capturing", &TableCacheModel::set_capturing, py::arg("stream"), py::arg("on"))
      .def("set_release_failure", &TableCacheModel::set_release_failure, py::arg("message"))
      .def("set_uploads_complete", &TableCacheModel::set_uploads_complete, py::arg("done"))
      .def("get", &TableCacheModel::get, py::arg("device"), py::arg("key"), py::arg("stream"),
           py::arg("fail_upload") = "")
      .def("drop", &TableCacheModel::drop, py::arg("lease"))
      .def("stats", &TableCacheModel::stats, py::arg("device"))
      .def("take_log", &TableCacheModel::take_log)
      .def("stress", &TableCacheModel::stress, py::arg("device"), py::arg("threads"),
           py::arg("rounds"), py::arg("keys"), py::arg("capturing_threads") = 0);
  m.def(
      "shared_memory_limit",
      [](const std::string& kernel, int device) { return simulated(kernel).limit(device); },
      py::arg("kernel"), py::arg("device"),
      "The simulated dynamic shared memory limit (bytes) of 'frontend_kernel' or "
      "'istft_kernel' on `device`, as the raw entry points have left it (48 KiB until a call "
      "needs more).");
}
