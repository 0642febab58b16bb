#include "plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "../core/fft_plan.h"
#include "../core/layout.h"
#include "phases.h"

namespace kapre_fast {
namespace gpu {
namespace {

// Appends n zero floats starting at a multiple of 4 floats (16 bytes); returns the offset.
int64_t append(std::vector<float>& v, int64_t n) {
  const int64_t off = (static_cast<int64_t>(v.size()) + 3) / 4 * 4;
  v.resize(static_cast<std::size_t>(off + n), 0.0f);
  return off;
}

void put_complex(std::vector<float>& v, int64_t off, int64_t n, const float* re, const float* im) {
  for (int64_t k = 0; k < n; ++k) {
    v[off + 2 * k] = re[k];
    v[off + 2 * k + 1] = im[k];
  }
}

int threads_for(int64_t elements) {
  int t = 64;
  while (t < kMaxThreads && t * 8 < elements) t *= 2;
  return t;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t bytes) { return ceil_div(bytes, 256) * 256; }
int64_t sm_count(const DeviceLimits& limits) { return std::max(1, limits.sm_count); }

// Shared-memory path: F frames per block so that a block has ~2048 complex values to
// transform; 64..512 threads with ~8 values each. Too big for shared memory: one frame per
// block with its two buffers in global workspace, and a grid small enough for the budget.
void fft_geometry(FrontEndParams& p, int64_t signals, const DeviceLimits& limits, Geometry* g) {
  const int L = p.fft.n;
  const int stride = padded_length(L);
  int frames = L >= 2048 ? 1 : std::min(32, 2048 / L);
  frames = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(frames, p.n_frames)));
  p.buf_stride = stride;
  p.frames_per_item = frames;
  p.threads = threads_for(static_cast<int64_t>(frames) * L);
  g->global = static_cast<int64_t>(frontend_smem_bytes(p, false)) > limits.smem_per_block;
  if (g->global) {
    p.frames_per_item = 1;
    p.threads = kMaxThreads;
  }
  g->smem_bytes = frontend_smem_bytes(p, g->global);
  g->threads = p.threads;
  g->frames_per_item = p.frames_per_item;
  g->buf_stride = stride;
  g->items_per_signal = ceil_div(p.n_frames, p.frames_per_item);
  g->n_items = signals * g->items_per_signal;
  p.items_per_signal = g->items_per_signal;
  p.n_items = g->n_items;

  const int64_t block_bytes = 2 * static_cast<int64_t>(stride) * static_cast<int64_t>(sizeof(Cf));
  int64_t cap = g->global ? std::min<int64_t>(4 * sm_count(limits),
                                              std::max<int64_t>(1, kWorkspaceBudget / block_bytes))
                          : int64_t{1} << 30;
  if (limits.max_grid > 0) cap = std::min(cap, limits.max_grid);
  g->grid = std::min(g->n_items, cap);
  g->ws_block_stride = g->global ? 2 * stride : 0;
  p.ws_block_stride = g->ws_block_stride;
  g->ws_bytes = g->global ? static_cast<std::size_t>(round_up(g->grid * block_bytes)) : 0;
  p.global_ws = nullptr;
  p.example_max = nullptr;
  p.frames = nullptr;
}

// Grid of the small elementwise kernels (init, clamp, overlap-add).
int64_t small_grid(int64_t elements, const Geometry& g, const DeviceLimits& limits) {
  int64_t cap = 32 * sm_count(limits);
  if (limits.max_grid > 0) cap = std::min(cap, limits.max_grid);
  return std::min(ceil_div(elements, g.small_threads), cap);
}

}  // namespace

GpuPlan::GpuPlan(const FrontEndConfig& cfg, const float* window, int64_t window_length,
                 const BandView& bands)
    : cfg_(cfg) {
  const std::string err = check_config(cfg, window_length, bands);
  if (!err.empty()) throw std::invalid_argument(err);
  n_bands_ = bands.n_bands;
  n_features_ = feature_count(cfg, bands);

  FrontEndParams& p = proto_;
  const int64_t n = cfg.n_fft;
  p.n_fft = static_cast<int>(n);
  p.win_length = static_cast<int>(cfg.win_length);
  p.hop_length = static_cast<int>(cfg.hop_length);
  p.n_used = static_cast<int>(std::min(cfg.win_length, n));
  p.n_freq = static_cast<int>(n / 2 + 1);
  p.pad_begin = cfg.pad_begin;
  p.even = n % 2 == 0;
  p.nc = static_cast<int>(p.even ? n / 2 : n);
  p.output = static_cast<int>(cfg.output);
  p.power = cfg.power;
  p.decibel = cfg.decibel;
  p.amin = cfg.amin;
  // As the CPU core (pipeline.cc's make_job), so both subtract the same float.
  p.db_scale = cfg.db_multiplier / 10.0f;
  p.db_offset = cfg.db_multiplier * std::log10(std::max(cfg.amin, cfg.ref_value));
  p.dynamic_range = cfg.dynamic_range;
  p.n_bands = static_cast<int>(n_bands_);
  p.n_features = static_cast<int>(n_features_);

  // The CPU core's plan supplies the factorisation and the twiddles (double precision,
  // stored as float); the GPU runs the same passes.
  const auto complex_plan = get_complex_fft_plan(p.nc);
  const ComplexFftView& cv = complex_plan->view();
  p.bluestein = cv.inner != nullptr;
  const ComplexFftView& work = p.bluestein ? *cv.inner : cv;
  if (work.n_passes > kMaxPasses) throw std::logic_error("FFT plan has too many passes");
  p.fft.n = static_cast<int>(work.n);
  p.fft.n_shift = exact_log2(work.n);
  p.fft.n_passes = work.n_passes;

  int64_t twiddles = 0, trig = 0;
  for (int i = 0; i < work.n_passes; ++i) {
    const FftPass& ps = work.passes[i];
    twiddles += ps.m * (ps.radix - 1);
    if (ps.radix % 2 == 1) trig += 2 * (ps.radix / 2) * (ps.radix / 2);
  }
  off_twiddles_ = append(floats_, 2 * twiddles);
  off_trig_ = append(floats_, trig);
  int64_t tw_at = 0, trig_at = 0;
  for (int i = 0; i < work.n_passes; ++i) {
    const FftPass& ps = work.passes[i];
    PassDesc& d = p.fft.pass[i];
    d.radix = ps.radix;
    d.m = static_cast<int>(ps.m);
    d.s = static_cast<int>(ps.s);
    d.twiddle = static_cast<int>(tw_at);
    d.s_shift = exact_log2(ps.s);
    d.span_shift = exact_log2(ps.s * ps.m);
    const int64_t count = ps.m * (ps.radix - 1);
    put_complex(floats_, off_twiddles_ + 2 * tw_at, count, ps.tw_re, ps.tw_im);
    tw_at += count;
    if (ps.radix % 2 == 1) {
      const int64_t hh = (ps.radix / 2) * (ps.radix / 2);
      d.trig = static_cast<int>(trig_at);
      std::copy(ps.cos_tab, ps.cos_tab + hh, floats_.begin() + off_trig_ + trig_at);
      std::copy(ps.sin_tab, ps.sin_tab + hh, floats_.begin() + off_trig_ + trig_at + hh);
      trig_at += 2 * hh;
    }
  }

  off_window_ = append(floats_, window_length);
  std::copy(window, window + window_length, floats_.begin() + off_window_);
  if (p.even) {
    const auto real_plan = get_real_fft_plan(n);
    const RealFftView& rv = real_plan->view();
    off_split_ = append(floats_, 2 * (p.nc + 1));
    put_complex(floats_, off_split_, p.nc + 1, rv.split_re, rv.split_im);
  }
  if (p.bluestein) {
    off_chirp_ = append(floats_, 2 * cv.n);
    put_complex(floats_, off_chirp_, cv.n, cv.chirp_re, cv.chirp_im);
    off_kernel_ = append(floats_, 2 * cv.conv_n);
    put_complex(floats_, off_kernel_, cv.conv_n, cv.kernel_re, cv.kernel_im);
  }
  off_weights_ = append(floats_, bands.n_weights);
  std::copy(bands.weights, bands.weights + bands.n_weights, floats_.begin() + off_weights_);
  append(floats_, 4);  // never empty, and every offset above stays inside

  int32_t offset = 0;
  for (int64_t b = 0; b < bands.n_bands; ++b) {
    ints_.push_back(bands.start[b]);
    ints_.push_back(bands.length[b]);
    ints_.push_back(offset);
    offset += bands.length[b];
  }
  ints_.resize(ints_.size() + 4, 0);
}

FrontEndParams GpuPlan::params(const float* floats_base, const int32_t* ints_base) const {
  FrontEndParams p = proto_;
  auto complex_at = [&](int64_t off) { return reinterpret_cast<const Cf*>(floats_base + off); };
  p.twiddles = complex_at(off_twiddles_);
  p.trig = floats_base + off_trig_;
  p.window = floats_base + off_window_;
  p.split = p.even ? complex_at(off_split_) : nullptr;
  p.chirp = p.bluestein ? complex_at(off_chirp_) : nullptr;
  p.kernel = p.bluestein ? complex_at(off_kernel_) : nullptr;
  p.weights = floats_base + off_weights_;
  p.bands = ints_base;
  return p;
}

std::string output_shape(const GpuPlan& plan, int64_t batch, int64_t channels, int64_t time,
                         bool output_channels_first, OutputShape* shape) {
  const FrontEndConfig& cfg = plan.config();
  SignalView sig;
  sig.batch = batch;
  sig.channels = channels;
  sig.time = time;
  BandView bands;
  bands.n_bands = plan.n_bands();
  std::string err = check_signal(cfg, bands, sig);
  if (!err.empty()) return err;
  const ResultShape result =
      result_shape(cfg, plan.n_features(), channels, time, output_channels_first);
  shape->frames = result.frames;
  shape->complex = cfg.output == OutputKind::kComplex;
  shape->out_channels = result.channels;
  shape->shape = {batch};
  shape->shape.insert(shape->shape.end(), result.axes.begin(), result.axes.end());
  return {};
}

Geometry prepare_call(const GpuPlan& plan, FrontEndParams& p, const SignalView& signal, float* out,
                      bool output_channels_first, const DeviceLimits& limits) {
  const FrontEndConfig& cfg = plan.config();
  p.audio = signal.data;
  p.batch = signal.batch;
  p.channels = signal.channels;
  p.time = signal.time;
  p.sb = signal.sb;
  p.sc = signal.sc;
  p.st = signal.st;
  p.n_frames = frame_count(cfg, signal.time);

  const int64_t out_channels = cfg.output == OutputKind::kMagPhase ? 2 * p.channels : p.channels;
  const int64_t floats = cfg.output == OutputKind::kComplex ? 2 : 1;
  const FeatureView f = contiguous_features(out, out_channels, p.n_frames, plan.n_features(),
                                            output_channels_first, floats);
  p.out = out;
  p.phase =
      (out != nullptr && cfg.output == OutputKind::kMagPhase) ? out + p.channels * f.sc : nullptr;
  p.osb = f.sb;
  p.osc = f.sc;
  p.osf = f.sf;
  p.osk = f.sk;
  p.out_channels_last = !output_channels_first;

  Geometry g;
  fft_geometry(p, p.batch * p.channels, limits, &g);

  // dB: the per-example maxima, their init and the clamp.
  if (p.decibel) {
    g.max_bytes = static_cast<std::size_t>(round_up(p.batch * 4));
    g.init_grid = small_grid(p.batch, g, limits);
    g.clamp_elements = p.batch * p.channels * p.n_frames * p.n_features;
    g.clamp_grid = small_grid(g.clamp_elements, g, limits);
  }
  return g;
}

std::string istft_check(const GpuPlan& plan, const ComplexInputView& in) {
  const FrontEndConfig& cfg = plan.config();
  if (cfg.output != OutputKind::kComplex || cfg.decibel || plan.n_bands() != 0) {
    return "an inverse STFT plan takes output=2 (complex), no dB and no filterbank";
  }
  return check_istft(cfg, cfg.win_length, in);
}

Geometry prepare_istft(const GpuPlan& plan, FrontEndParams& p, const ComplexInputView& in,
                       float* out, bool output_channels_first, const DeviceLimits& limits) {
  const FrontEndConfig& cfg = plan.config();
  p.batch = in.batch;
  p.channels = in.channels;
  p.n_frames = in.frames;
  p.spectrum = in.data;
  p.isb = in.sb;
  p.isc = in.sc;
  p.isf = in.sf;
  p.isk = in.sk;
  p.out_length = istft_length(cfg, in.frames);
  const SignalOutView o =
      contiguous_signal_out(out, in.channels, p.out_length, output_channels_first);
  p.out = out;
  p.osb = o.sb;
  p.osc = o.sc;
  p.ost = o.st;
  p.inverse_scale = 1.0f / static_cast<float>(p.nc);
  Geometry g;
  fft_geometry(p, p.batch * p.channels, limits, &g);
  const int64_t signals = p.batch * p.channels;
  g.frames_bytes = static_cast<std::size_t>(round_up(signals * p.n_frames * p.n_used * 4));
  g.ola_grid = small_grid(signals * p.out_length, g, limits);
  return g;
}

namespace {

std::string misaligned(const char* name, const void* at, unsigned bytes, const char* what) {
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(at);
  if (address % bytes == 0) return {};
  char hex[2 + 2 * sizeof address + 1];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(address));
  return std::string(name) + " must be aligned to " + std::to_string(bytes) + " bytes (" + what +
         "), got address " + hex;
}

}  // namespace

std::string alignment_error(const FrontEndParams& p) {
  const bool inverse = p.spectrum != nullptr;
  std::string err = inverse ? misaligned("stft", p.spectrum, 8, "complex64")
                            : misaligned("audio", p.audio, 4, "float32");
  if (err.empty()) {
    const bool complex_out = !inverse && p.output == kComplex;
    err = misaligned("out", p.out, complex_out ? 8 : 4, complex_out ? "complex64" : "float32");
  }
  return err;
}

std::string table_alignment_error(const void* floats, const void* ints) {
  std::string err = misaligned("floats", floats, 16, "the plan's float tables, 16-byte sections");
  if (err.empty()) err = misaligned("ints", ints, 4, "the plan's int32 band descriptors");
  return err;
}

std::string workspace_alignment_error(const void* workspace) {
  return misaligned("workspace", workspace, 8, "complex64 FFT buffers and int32 maxima");
}

std::string prepare_pcen(const PcenParams& constants, const FeatureShape& shape, float* mel,
                         int64_t sb, int64_t sc, int64_t sf, int64_t sk, const DeviceLimits& limits,
                         PcenLaunch* out) {
  std::string err = check_pcen(constants, shape);
  if (!err.empty()) return err;
  // Rows and elements must count in int64 (the kernel's indices), even with no frames.
  const int64_t cap = int64_t{1} << 60;
  int64_t rows = 1;
  for (int64_t n : {shape.batch, shape.channels, shape.features}) {
    if (n > 0 && rows > cap / n) return "PCEN sizes are too large: the row count overflows";
    rows *= n;
  }
  if (shape.frames > 0 && rows > cap / shape.frames) {
    return "PCEN sizes are too large: the element count overflows";
  }
  const int64_t elements = rows * shape.frames;
  if (elements != 0) {
    if (mel == nullptr) return "mel must not be a null pointer";
    err = misaligned("mel", mel, 4, "float32");
    if (!err.empty()) return err;
  }
  PcenLaunch& p = *out;
  p = PcenLaunch();
  p.mel = mel;
  p.batch = shape.batch;
  p.channels = shape.channels;
  p.frames = shape.frames;
  p.features = shape.features;
  p.sb = sb;
  p.sc = sc;
  p.sf = sf;
  p.sk = sk;
  // The float32 constants exactly as pcen.cc's compute_pcen derives them.
  p.b = static_cast<float>(constants.b);
  p.keep = static_cast<float>(1.0 - constants.b);
  p.neg_gain = static_cast<float>(-constants.gain);
  p.eps = static_cast<float>(constants.eps);
  p.power = static_cast<float>(constants.power);
  p.inv_bias = constants.bias > 0 ? static_cast<float>(1.0 / constants.bias) : 0.0f;
  p.bias_pow = static_cast<float>(std::pow(constants.bias, constants.power));
  p.kind = constants.power == 0 ? 0 : (constants.bias == 0 ? 1 : 2);
  // 128 threads a block, and enough blocks for every row when that fills the device; fewer
  // rows than threads leave most of the GPU idle: the pass is one sequential walk per row.
  p.threads = 128;
  const int64_t grid = elements == 0 ? 0 : ceil_div(rows, p.threads);
  int64_t cap_blocks = 64 * sm_count(limits);
  if (limits.max_grid > 0) cap_blocks = std::min(cap_blocks, limits.max_grid);
  p.grid = std::min(grid, cap_blocks);
  return {};
}

void bind_workspace(FrontEndParams& p, const Geometry& g, void* workspace) {
  unsigned char* base = static_cast<unsigned char*>(workspace);
  p.example_max = g.max_bytes ? reinterpret_cast<int32_t*>(base) : nullptr;
  p.global_ws = g.global ? reinterpret_cast<Cf*>(base + g.max_bytes) : nullptr;
  p.frames = g.frames_bytes ? reinterpret_cast<float*>(base + g.max_bytes + g.ws_bytes) : nullptr;
}

}  // namespace gpu
}  // namespace kapre_fast
