// Validation, threading and the dB clamp around the per-ISA fused kernels.
#include "pipeline.h"
#include "stage_timing.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "fft_plan.h"
#include "isa_kernels.h"
#include "worker_pool.h"

namespace kapre_fast {
namespace {

constexpr int64_t kMaxSize = int64_t{1} << 40;  // elements of one output, well past any real use
constexpr int64_t kMaxScratchBytes = int64_t{1} << 30;

// Per-thread, 64-byte aligned scratch that grows to the largest size used and
// is then reused: no allocation on the hot path after the first call.
float* thread_scratch(int64_t floats) {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buffer;
  thread_local int64_t capacity = 0;
  if (floats > capacity) {
    const std::size_t bytes = (static_cast<std::size_t>(floats) * sizeof(float) + 63) / 64 * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p == nullptr) throw std::bad_alloc();
    buffer.reset(p);
    capacity = floats;
  }
  return buffer.get();
}

bool mul_ok(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out) && *out <= kMaxSize;
}

std::atomic<const IsaKernels*> g_forced{nullptr};

// Largest output one call may allocate; KAPRE_FAST_MAX_OUTPUT_BYTES overrides the default.
int64_t default_output_limit() {
  const char* env = std::getenv("KAPRE_FAST_MAX_OUTPUT_BYTES");
  if (env != nullptr) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end != env && v > 0) return v;
  }
  return int64_t{4} << 30;
}
std::atomic<int64_t> g_output_limit{default_output_limit()};
// Results of at least this many bytes without a dB clamp pass are written with non-temporal
// stores (FrontEndJob::stream_out): past the caches of the cores this project runs on, where a
// plain store's read-for-ownership doubles the memory traffic (config C, 42 MB).
std::atomic<int64_t> g_stream_bytes{int64_t{16} << 20};

std::string too_large(int64_t bytes) {
  return "the output would need " + std::to_string(bytes) + " bytes, more than the limit of " +
         std::to_string(g_output_limit.load()) +
         " bytes (set KAPRE_FAST_MAX_OUTPUT_BYTES to allow more, or pass less audio)";
}

const IsaKernels& detect_isa() {
#if defined(KF_HAVE_X86_ISAS)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* want = std::getenv("KAPRE_FAST_ISA");
  const std::string w = want ? want : "";
  if (avx512 && (w.empty() || w == "avx512")) return isa_avx512::kKernels;
  if (avx2 && (w.empty() || w == "avx512" || w == "avx2")) return isa_avx2::kKernels;
#endif
  return isa_sse2::kKernels;
}

std::string too_short(const FrontEndConfig& cfg, int64_t time) {
  if (cfg.pad_end) {
    return "audio has 0 samples; at least one sample is needed with pad_end=True";
  }
  return "audio has " + std::to_string(time) + " samples" +
         (cfg.pad_begin ? " (" + std::to_string(time + cfg.pad_begin) + " after pad_begin)" : "") +
         "; one frame needs win_length=" + std::to_string(cfg.win_length) +
         " samples: pass longer audio or use pad_end=True";
}

}  // namespace

uint64_t g_stage_counts[kStageSlots] = {};

bool stage_counts(uint64_t out[kStageSlots], bool reset) {
  for (int slot = 0; slot < kStageSlots; ++slot) {
    out[slot] = reset ? __atomic_exchange_n(&g_stage_counts[slot], uint64_t{0}, __ATOMIC_RELAXED)
                      : __atomic_load_n(&g_stage_counts[slot], __ATOMIC_RELAXED);
  }
  return KF_STAGE_TIMING != 0;
}

const IsaKernels& isa_kernels() {
  const IsaKernels* forced = g_forced.load();
  if (forced) return *forced;
  static const IsaKernels& detected = detect_isa();
  return detected;
}

const char* active_isa() { return isa_kernels().name; }

ParallelFor serial_for() {
  return [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    if (n > 0) fn(0, n);
  };
}

ParallelFor thread_pool_for(int threads) {
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) return serial_for();
  return [threads](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    const int64_t workers = std::min<int64_t>(threads, n);
    if (workers <= 1) return fn(0, n);
    // Small chunks handed out dynamically keep both cores busy to the end; the
    // output does not depend on who ran which chunk.
    const int64_t chunk = std::max<int64_t>(1, n / (workers * 8));
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto work = [&] {
      try {
        for (;;) {
          const int64_t begin = next.fetch_add(chunk);
          if (begin >= n || failed.load()) break;
          fn(begin, std::min(n, begin + chunk));
        }
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
      }
    };
    if (WorkerPool* pool = WorkerPool::acquire(static_cast<int>(workers - 1))) {
      struct Release {
        WorkerPool* p;
        ~Release() { p->release(); }
      } release{pool};
      pool->run(static_cast<int>(workers - 1), work);
    } else {
      std::vector<std::thread> threads;
      threads.reserve(workers - 1);
      for (int64_t i = 1; i < workers; ++i) threads.emplace_back(work);
      work();
      for (auto& t : threads) t.join();
    }
    if (error) std::rethrow_exception(error);
  };
}

int64_t frame_count(const FrontEndConfig& cfg, int64_t time) {
  const int64_t padded = time + cfg.pad_begin;
  if (cfg.pad_end) return padded <= 0 ? 0 : (padded + cfg.hop_length - 1) / cfg.hop_length;
  if (padded < cfg.win_length) return 0;
  return 1 + (padded - cfg.win_length) / cfg.hop_length;
}

int64_t feature_count(const FrontEndConfig& cfg, const BandView& bands) {
  return bands.n_bands > 0 ? bands.n_bands : cfg.n_fft / 2 + 1;
}

ResultShape result_shape(const FrontEndConfig& cfg, int64_t features, int64_t channels,
                         int64_t time, bool out_first) {
  ResultShape r;
  r.frames = frame_count(cfg, time);
  r.features = features;
  r.channels = cfg.output == OutputKind::kMagPhase ? 2 * channels : channels;
  r.axes = out_first ? std::array<int64_t, 3>{r.channels, r.frames, r.features}
                     : std::array<int64_t, 3>{r.frames, r.features, r.channels};
  return r;
}

std::string check_config(const FrontEndConfig& cfg, int64_t window_length, const BandView& bands) {
  auto num = [](auto v) { return std::to_string(v); };
  if (cfg.n_fft < 2 || cfg.n_fft > kMaxFftLength) {
    return "n_fft must be in [2, " + num(kMaxFftLength) + "], got " + num(cfg.n_fft);
  }
  if (cfg.win_length < 1 || cfg.win_length > kMaxFftLength) {
    return "win_length must be in [1, " + num(kMaxFftLength) + "], got " + num(cfg.win_length);
  }
  if (cfg.hop_length < 1 || cfg.hop_length > kMaxFftLength) {
    return "hop_length must be in [1, " + num(kMaxFftLength) + "], got " + num(cfg.hop_length);
  }
  if (cfg.pad_begin < 0 || cfg.pad_begin > kMaxFftLength) {
    return "pad_begin length must be in [0, " + num(kMaxFftLength) + "], got " + num(cfg.pad_begin);
  }
  if (window_length != cfg.win_length) {
    return "window has " + num(window_length) + " samples but win_length is " + num(cfg.win_length);
  }
  const int out = static_cast<int>(cfg.output);
  if (out < 0 || out > 2) return "output kind must be 0, 1 or 2, got " + num(out);
  if (cfg.output == OutputKind::kComplex && (cfg.decibel || bands.n_bands > 0)) {
    return "complex STFT output takes no filterbank and no decibel scaling";
  }
  // The phase has one value per frequency bin: a filterbank's narrower feature axis cannot hold it.
  if (cfg.output == OutputKind::kMagPhase && bands.n_bands > 0) {
    return "mag_phase output takes no filterbank, got " + num(bands.n_bands) + " bands";
  }
  if (cfg.power != 1 && (cfg.power != 2 || cfg.output == OutputKind::kComplex)) {
    return "power must be 1 or 2 (and 1 for the complex STFT), got " + num(cfg.power);
  }
  if (cfg.decibel) {
    if (!(cfg.amin > 0.0f) || !std::isfinite(cfg.amin)) {
      return "db_amin must be a finite number > 0, got " + num(cfg.amin);
    }
    if (!(cfg.ref_value > 0.0f) || !std::isfinite(cfg.ref_value)) {
      return "db_ref_value must be a finite number > 0, got " + num(cfg.ref_value);
    }
    if (!(cfg.db_multiplier > 0.0f) || !std::isfinite(cfg.db_multiplier)) {
      return "db_multiplier must be a finite number > 0, got " + num(cfg.db_multiplier);
    }
    if (!(cfg.dynamic_range > 0.0f)) {
      return "db_dynamic_range must be > 0, got " + num(cfg.dynamic_range);
    }
  }
  const int64_t n_freq = cfg.n_fft / 2 + 1;
  if (bands.n_bands < 0 || bands.n_bands > kMaxFftLength) {
    return "filterbank band count must be in [0, " + num(kMaxFftLength) + "], got " +
           num(bands.n_bands);
  }
  int64_t total = 0;
  for (int64_t b = 0; b < bands.n_bands; ++b) {
    const int64_t start = bands.start[b], len = bands.length[b];
    if (start < 0 || len < 0 || start + len > n_freq) {
      return "filterbank band " + num(b) + " covers bins [" + num(start) + ", " + num(start + len) +
             ") outside [0, " + num(n_freq) + ")";
    }
    total += len;
  }
  if (total != bands.n_weights) {
    return "filterbank weights hold " + num(bands.n_weights) + " values but the bands need " +
           num(total);
  }
  return {};
}

std::string check_signal(const FrontEndConfig& cfg, const BandView& bands,
                         const SignalView& signal) {
  if (signal.batch < 0 || signal.channels < 0 || signal.time < 0) {
    return "audio shape must be non-negative";
  }
  if (signal.time > kMaxSize - cfg.pad_begin) return "audio is too long";
  const int64_t frames = frame_count(cfg, signal.time);
  if (frames < 1) return too_short(cfg, signal.time);
  int64_t a = 0, b = 0, c = 0, bytes = 0;
  const int64_t per_element = cfg.output == OutputKind::kMagnitude ? 4 : 8;  // complex / mag+phase
  if (!mul_ok(signal.batch, signal.channels, &a) || !mul_ok(a, frames, &b) ||
      !mul_ok(b, feature_count(cfg, bands), &c) || !mul_ok(c, per_element, &bytes)) {
    return "output of " + std::to_string(signal.batch) + " x " + std::to_string(signal.channels) +
           " x " + std::to_string(frames) + " frames x " +
           std::to_string(feature_count(cfg, bands)) + " features is too large";
  }
  if (bytes > g_output_limit.load()) return too_large(bytes);
  return {};
}

namespace {

// The tile kernel's job for `cfg` over `signal` into `out`; band_offset points into `offsets`.
FrontEndJob make_job(const FrontEndConfig& cfg, const float* window, const BandView& bands,
                     const SignalView& signal, const FeatureView& out, const RealFftView* fft,
                     std::vector<int64_t>* offsets, int lanes) {
  offsets->resize(bands.n_bands);
  for (int64_t b = 0, off = 0; b < bands.n_bands; ++b) {
    (*offsets)[b] = off;
    off += bands.length[b];
  }
  FrontEndJob job{};
  job.n_fft = cfg.n_fft;
  job.win_length = cfg.win_length;
  job.hop_length = cfg.hop_length;
  job.pad_begin = cfg.pad_begin;
  job.output = cfg.output;
  job.decibel = cfg.decibel;
  job.amin = cfg.amin;
  job.db_scale = cfg.db_multiplier / 10.0f;
  job.db_offset = cfg.db_multiplier * std::log10(std::max(cfg.amin, cfg.ref_value));
  job.power = cfg.power;
  job.window = window;
  job.n_bands = bands.n_bands;
  job.band_start = bands.start;
  job.band_length = bands.length;
  job.band_offset = offsets->data();
  job.band_weights = bands.weights;
  job.bins_used = bands.n_bands > 0 ? 0 : cfg.n_fft / 2 + 1;
  for (int64_t b = 0; b < bands.n_bands; ++b) {
    job.bins_used = std::max<int64_t>(job.bins_used, int64_t{bands.start[b]} + bands.length[b]);
  }
  job.fft = fft;
  job.signal = signal;
  job.out = out;
  job.n_frames = frame_count(cfg, signal.time);
  job.n_features = feature_count(cfg, bands);
  job.tiles_per_signal = (job.n_frames + lanes - 1) / lanes;
  return job;
}

// kapre's clamp floor of one example: the largest of its tasks' dB maxima less the range;
// NaN when any is NaN (kapre's max is NaN then, and max(y, NaN) makes the example NaN).
float example_floor(const float* task_max, int64_t n_tasks, float dynamic_range) {
  float m = -INFINITY;
  for (int64_t t = 0; t < n_tasks; ++t) {
    const float v = task_max[t];
    if (v != v) return v;
    m = v > m ? v : m;
  }
  return m - dynamic_range;
}

}  // namespace

void compute_frontend(const FrontEndConfig& cfg, const float* window, const BandView& bands,
                      const SignalView& signal, const FeatureView& out,
                      const ParallelFor& parallel) {
  const IsaKernels& k = isa_kernels();
  const auto plan = get_real_fft_plan(cfg.n_fft);
  std::vector<int64_t> offsets;
  FrontEndJob job = make_job(cfg, window, bands, signal, out, &plan->view(), &offsets, k.lanes);
  // A result larger than the caches that no later pass reads (no dB clamp) is streamed out.
  const int64_t result_floats = signal.batch * signal.channels * job.n_frames * job.n_features;
  job.stream_out = !cfg.decibel && cfg.output == OutputKind::kMagnitude &&
                   result_floats * static_cast<int64_t>(sizeof(float)) >= g_stream_bytes.load();

  const int64_t n_signals = signal.batch * signal.channels;
  const int64_t n_tasks = n_signals * job.tiles_per_signal;
  if (n_tasks == 0) return;
  const int64_t scratch = k.frontend_scratch(job);
  if (scratch * static_cast<int64_t>(sizeof(float)) > kMaxScratchBytes) throw std::bad_alloc();
  std::vector<float> task_max(cfg.decibel ? n_tasks : 0);
  // Cost hint: ~5 n log2 n flops per frame, W frames per task.
  const int64_t cost = k.lanes * cfg.n_fft * 4;
  if (!cfg.decibel) {
    parallel(n_tasks, cost, [&](int64_t begin, int64_t end) {
      k.frontend_tasks(job, begin, end, thread_scratch(scratch), task_max.data());
    });
    return;
  }

  // kapre's clamp: y = max(y, max over (channels, time, features) of the example - range), done
  // for each example by the thread that finishes its last task, while that thread's share of
  // the example's rows is still in its caches (one thread: all of it), not in a second pass
  // over the whole result.
  const int64_t tasks_per_example = signal.channels * job.tiles_per_signal;
  const std::unique_ptr<std::atomic<int64_t>[]> remaining(
      new std::atomic<int64_t>[static_cast<std::size_t>(signal.batch)]);
  for (int64_t b = 0; b < signal.batch; ++b) remaining[b].store(tasks_per_example);
  auto clamp_example = [&](int64_t b) {
    const float floor = example_floor(task_max.data() + b * tasks_per_example, tasks_per_example,
                                      cfg.dynamic_range);
    const int64_t sk = out.sk;
    for (int64_t c = 0; c < signal.channels; ++c) {
      for (int64_t f = 0; f < job.n_frames; ++f) {
        float* row = out.data + b * out.sb + c * out.sc + f * out.sf;
        if (floor != floor) {
          for (int64_t i = 0; i < job.n_features; ++i) row[i * sk] = floor;
        } else if (sk == 1) {  // the common layout: a loop the compiler vectorises
          for (int64_t i = 0; i < job.n_features; ++i) row[i] = row[i] < floor ? floor : row[i];
        } else {
          for (int64_t i = 0; i < job.n_features; ++i) {
            row[i * sk] = row[i * sk] < floor ? floor : row[i * sk];
          }
        }
      }
    }
  };
  parallel(n_tasks, cost, [&](int64_t begin, int64_t end) {
    float* const buffer = thread_scratch(scratch);
    while (begin < end) {  // example by example
      const int64_t b = begin / tasks_per_example;
      const int64_t stop = std::min(end, (b + 1) * tasks_per_example);
      k.frontend_tasks(job, begin, stop, buffer, task_max.data());
      // The last finisher sees every other thread's rows and task maxima (acquire-release).
      if (remaining[b].fetch_sub(stop - begin, std::memory_order_acq_rel) == stop - begin) {
        clamp_example(b);
      }
      begin = stop;
    }
  });
}

std::string check_dct(const FrontEndConfig& cfg, const BandView& bands, const DctView& dct) {
  if (cfg.output != OutputKind::kMagnitude || !cfg.decibel || bands.n_bands < 1) {
    return "MFCC needs a filterbank and decibel magnitudes (output 'magnitude', decibel=True)";
  }
  if (dct.matrix == nullptr || dct.n_in != bands.n_bands) {
    return "MFCC matrix has " + std::to_string(dct.n_in) + " rows but the filterbank has " +
           std::to_string(bands.n_bands) + " bands";
  }
  if (dct.n_out < 1 || dct.n_out > dct.n_in) {
    return "n_mfcc must be in [1, " + std::to_string(dct.n_in) +
           "] (the filterbank's bands), got " + std::to_string(dct.n_out);
  }
  return {};
}

void compute_mfcc(const FrontEndConfig& cfg, const float* window, const BandView& bands,
                  const DctView& dct, const SignalView& signal, const FeatureView& out,
                  const ParallelFor& parallel) {
  const IsaKernels& k = isa_kernels();
  const auto plan = get_real_fft_plan(cfg.n_fft);
  std::vector<int64_t> offsets;
  // One example's tiles write its dB mel into a buffer the size of that example: the clamp
  // needs the example's peak before any row can be transformed, so the DCT runs per example
  // while its mel is still in cache (44 frames x 128 mels = 22 KB a second of audio at hop
  // 512), not per tile. Band-major (channel, band, frame), frames padded to whole vectors:
  // the tiles store their lanes as they are, and the DCT runs with frames in the lanes.
  const int64_t frames = frame_count(cfg, signal.time), n_mels = bands.n_bands;
  const int64_t stride = (frames + k.lanes - 1) / k.lanes * k.lanes;
  FeatureView mel_layout;
  mel_layout.sk = stride;
  mel_layout.sf = 1;
  mel_layout.sc = n_mels * stride;
  mel_layout.sb = signal.channels * mel_layout.sc;
  SignalView one = signal;
  one.batch = 1;
  const FrontEndJob job =
      make_job(cfg, window, bands, one, mel_layout, &plan->view(), &offsets, k.lanes);
  const int64_t tasks_per_example = signal.channels * job.tiles_per_signal;
  if (signal.batch == 0 || tasks_per_example == 0) return;
  const int64_t scratch = k.frontend_scratch(job);
  const int64_t mel_floats = mel_layout.sb;
  if ((scratch + mel_floats) * static_cast<int64_t>(sizeof(float)) > kMaxScratchBytes) {
    throw std::bad_alloc();
  }
  const int64_t cost = tasks_per_example * k.lanes * cfg.n_fft * 4;
  parallel(signal.batch, cost, [&](int64_t begin, int64_t end) {
    std::vector<float> mel(static_cast<std::size_t>(mel_floats));  // padding lanes stay 0
    std::vector<float> task_max(static_cast<std::size_t>(tasks_per_example));
    for (int64_t b = begin; b < end; ++b) {
      FrontEndJob ex = job;
      ex.signal.data = signal.data + b * signal.sb;
      ex.out.data = mel.data();
      k.frontend_tasks(ex, 0, tasks_per_example, thread_scratch(scratch), task_max.data());
      const float floor = example_floor(task_max.data(), tasks_per_example, cfg.dynamic_range);
      for (int64_t i = 0; i < signal.channels * n_mels; ++i) {
        float* row = mel.data() + i * stride;
        for (int64_t f = 0; f < frames; ++f) {
          row[f] = floor != floor ? floor : (row[f] < floor ? floor : row[f]);
        }
      }
      for (int64_t c = 0; c < signal.channels; ++c) {
        k.dct_frames(mel.data() + c * mel_layout.sc, stride, frames, dct,
                     out.data + b * out.sb + c * out.sc, out.sf, out.sk);
      }
    }
  });
}

std::string check_istft(const FrontEndConfig& cfg, int64_t window_length,
                        const ComplexInputView& in) {
  FrontEndConfig plain = cfg;
  plain.decibel = false;
  plain.output = OutputKind::kComplex;
  std::string err = check_config(plain, window_length, BandView{});
  if (!err.empty()) return err;
  if (in.batch < 0 || in.channels < 0 || in.frames < 0) return "STFT shape must be non-negative";
  if (in.frames < 1) return "inverse STFT needs at least one frame, got 0";
  if (in.bins != cfg.n_fft / 2 + 1) {
    return "STFT has " + std::to_string(in.bins) +
           " frequency bins but n_fft=" + std::to_string(cfg.n_fft) + " needs " +
           std::to_string(cfg.n_fft / 2 + 1);
  }
  int64_t len = 0, signals = 0, total = 0;
  if (!mul_ok(in.frames - 1, cfg.hop_length, &len) || !mul_ok(in.batch, in.channels, &signals) ||
      !mul_ok(len + cfg.win_length, signals, &total)) {
    return "inverse STFT output would be too large";
  }
  if (total * 4 > g_output_limit.load()) return too_large(total * 4);
  return {};
}

int64_t istft_length(const FrontEndConfig& cfg, int64_t frames) {
  return (frames - 1) * cfg.hop_length + cfg.win_length;
}

void compute_istft(const FrontEndConfig& cfg, const float* window, const ComplexInputView& in,
                   const SignalOutView& out, const ParallelFor& parallel) {
  const IsaKernels& k = isa_kernels();
  const auto plan = get_real_fft_plan(cfg.n_fft);
  IstftJob job{};
  job.n_fft = cfg.n_fft;
  job.win_length = cfg.win_length;
  job.hop_length = cfg.hop_length;
  job.window = window;
  job.fft = &plan->view();
  job.in = in;
  job.out = out;
  job.out_length = istft_length(cfg, in.frames);
  const int64_t scratch = k.istft_scratch(job);
  if (scratch * static_cast<int64_t>(sizeof(float)) > kMaxScratchBytes) throw std::bad_alloc();
  parallel(in.batch * in.channels, in.frames * cfg.n_fft * 4, [&](int64_t begin, int64_t end) {
    k.istft_signals(job, begin, end, thread_scratch(scratch));
  });
}

void real_fft_rows(int64_t n, const float* in, int64_t rows, float* out,
                   const ParallelFor& parallel) {
  const IsaKernels& k = isa_kernels();
  const auto plan = get_real_fft_plan(n);
  const int64_t scratch = k.fft_scratch(plan->view());
  const int64_t lanes = k.lanes;
  parallel((rows + lanes - 1) / lanes, n * 4 * lanes, [&](int64_t begin, int64_t end) {
    k.rfft_rows(plan->view(), in, rows, begin * lanes, std::min(rows, end * lanes), out,
                thread_scratch(scratch));
  });
}

void inverse_real_fft_rows(int64_t n, const float* in, int64_t rows, float* out,
                           const ParallelFor& parallel) {
  const IsaKernels& k = isa_kernels();
  const auto plan = get_real_fft_plan(n);
  const int64_t scratch = k.fft_scratch(plan->view());
  const int64_t lanes = k.lanes;
  parallel((rows + lanes - 1) / lanes, n * 4 * lanes, [&](int64_t begin, int64_t end) {
    k.irfft_rows(plan->view(), in, rows, begin * lanes, std::min(rows, end * lanes), out,
                 thread_scratch(scratch));
  });
}

int64_t set_output_limit(int64_t bytes) {
  if (bytes > 0) g_output_limit.store(bytes);
  return g_output_limit.load();
}

int64_t set_stream_bytes(int64_t bytes) {
  if (bytes >= 0) g_stream_bytes.store(bytes);
  return g_stream_bytes.load();
}

bool force_isa(const std::string& name) {
  if (name.empty()) {
    g_forced.store(nullptr);
    return true;
  }
  static const IsaKernels& widest = detect_isa();
  for (const IsaKernels* k : {
#if defined(KF_HAVE_X86_ISAS)
           &isa_avx512::kKernels, &isa_avx2::kKernels,
#endif
           &isa_sse2::kKernels}) {
    if (name == k->name && k->lanes <= widest.lanes) {
      g_forced.store(k);
      return true;
    }
  }
  return false;
}

}  // namespace kapre_fast
