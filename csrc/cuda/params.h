// The plain-data structs a launch carries: everything one kernel needs, as
// sizes and pointers (device memory on the GPU, host memory in the emulation).
// No CUDA header: g++ and nvcc both compile this.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hd.h"

namespace kapre_fast {
namespace gpu {

// One Stockham pass (as the CPU plan's FftPass): sub-length radix * m, stride s.
struct PassDesc {
  int radix = 0;
  int m = 0;
  int s = 0;
  int twiddle = 0;   // offset (complex) of w^(j p), [m][radix - 1]
  int trig = 0;      // odd radix: offset (floats) of cos then sin of 2 pi j k / radix, [half][half]
  int s_shift = -1;  // log2(s) when s is a power of two, else -1
  int span_shift = -1;  // log2(s * m) when a power of two, else -1
};

constexpr int kMaxPasses = 24;    // 65536-point lengths need at most 16
constexpr int kMaxThreads = 512;  // threads per block, every kernel (launch bound)
constexpr int kDirectRadix = 31;  // largest odd radix a pass runs directly (CPU plan's limit)

struct FftDesc {
  int n = 0;         // complex length the passes transform
  int n_shift = -1;  // log2(n) when a power of two, else -1
  int n_passes = 0;
  PassDesc pass[kMaxPasses];
};

enum Output : int { kMagnitude = 0, kMagPhase = 1, kComplex = 2 };

struct FrontEndParams {
  // ---- transform ----
  int n_fft = 0, win_length = 0, hop_length = 0;
  int n_used = 0;  // samples of a frame that reach the FFT: min(win_length, n_fft)
  int n_freq = 0;  // n_fft / 2 + 1
  int64_t pad_begin = 0;
  int even = 0;       // 1: real FFT as a complex FFT of n_fft / 2 plus a split pass
  int nc = 0;         // complex FFT length: n_fft / 2 (even) or n_fft (odd)
  int bluestein = 0;  // 1: nc runs as a chirp-z convolution of length fft.n
  FftDesc fft;        // passes of length nc, or of the convolution length
  // ---- tables ----
  const Cf* twiddles = nullptr;
  const float* trig = nullptr;
  const float* window = nullptr;   // win_length, 16-byte aligned
  const Cf* split = nullptr;       // even: w^k, k <= nc
  const Cf* chirp = nullptr;       // Bluestein: exp(-i pi k^2 / nc), k < nc
  const Cf* kernel = nullptr;      // Bluestein: FFT of the conjugate chirp / fft.n
  const int32_t* bands = nullptr;  // [n_bands][3]: first bin, length, offset into weights
  const float* weights = nullptr;
  int n_bands = 0;
  int n_features = 0;
  // ---- what to compute ----
  int output = kMagnitude;
  int power = 1;  // 1: |X| (kapre); 2: |X|^2 (the presets' power spectrum)
  int decibel = 0;
  // dB: db_scale * 10 log10(max(x, amin)) - db_offset; db_scale = db_multiplier / 10, 1 for kapre
  // (then never multiplied, as the CPU core, so kapre's values keep their bits).
  float amin = 0.0f, db_scale = 1.0f, db_offset = 0.0f, dynamic_range = 0.0f;
  // ---- signal: element (b, c, t) at audio[b * sb + c * sc + t * st] ----
  const float* audio = nullptr;
  int64_t batch = 0, channels = 0, time = 0, sb = 0, sc = 0, st = 0;
  int64_t n_frames = 0;
  // ---- output: feature (b, c, frame, k) at out[b * osb + c * osc + frame * osf + k * osk] ----
  float* out = nullptr;
  float* phase = nullptr;  // mag/phase: the phase channels, same strides
  int64_t osb = 0, osc = 0, osf = 0, osk = 0;
  int out_channels_last = 0;
  // ---- geometry (see plan.h's make_geometry) ----
  int threads = 0;          // blockDim.x, a power of two
  int frames_per_item = 0;  // frames one block transforms side by side
  int64_t items_per_signal = 0, n_items = 0;
  int buf_stride = 0;              // complex elements between two frame buffers (padded)
  Cf* global_ws = nullptr;         // null: the buffers live in shared memory
  int64_t ws_block_stride = 0;     // complex elements of global workspace per block
  int32_t* example_max = nullptr;  // decibel: ordered_key of each example's max, [batch]
  // ---- inverse STFT: spectrum (b, c, frame, k) at spectrum[b * isb + c * isc + frame * isf +
  // k * isk] (floats, imaginary part at +1); waveform (b, c, t) at out[b * osb + c * osc + t * ost]
  const float* spectrum = nullptr;
  int64_t isb = 0, isc = 0, isf = 0, isk = 0;
  int64_t ost = 0, out_length = 0;
  float inverse_scale = 0.0f;  // 1 / nc
  float* frames = nullptr;     // workspace: windowed frames, [signal][frame][n_used]
};

// One PCEN pass in place over a 4-D filterbank output (csrc/core/pcen.h's definition):
// element (b, c, frame, k) at mel[b * sb + c * sc + frame * sf + k * sk]; one thread per
// (b, c, k) row walks the frames.
struct PcenLaunch {
  float* mel = nullptr;
  int64_t batch = 0, channels = 0, frames = 0, features = 0;
  int64_t sb = 0, sc = 0, sf = 0, sk = 0;
  // float32 constants as the CPU pass derives them from librosa's (double) ones.
  float b = 0.0f, keep = 0.0f;  // M[t] = keep M[t - 1] + b S[t]
  float neg_gain = 0.0f, eps = 0.0f, power = 0.0f, inv_bias = 0.0f, bias_pow = 0.0f;
  int kind = 2;  // 0: log1p (power == 0); 1: plain power (bias == 0); 2: librosa's general form
  // geometry
  int threads = 0;
  int64_t grid = 0;
};

// How a front end launches: the same numbers drive the GPU and the emulation.
struct Geometry {
  int threads = 0;
  int frames_per_item = 0;
  int64_t items_per_signal = 0, n_items = 0;
  int64_t grid = 0;            // blocks of the fused kernel (each loops over items)
  std::size_t smem_bytes = 0;  // dynamic shared memory of the fused kernel
  bool global = false;         // FFT buffers in global workspace instead of shared memory
  int buf_stride = 0;
  int64_t ws_block_stride = 0;
  // Workspace: [example maxima][per-block FFT buffers][inverse: frames], each 256-byte aligned.
  std::size_t max_bytes = 0, ws_bytes = 0;
  // The small kernels: init of the maxima and the clamp.
  int64_t init_grid = 0, clamp_grid = 0;
  int small_threads = 256;
  int64_t clamp_elements = 0;
  // Inverse STFT: the windowed frames between the two kernels, and the overlap-add's grid.
  std::size_t frames_bytes = 0;
  int64_t ola_grid = 0;
  std::size_t workspace_bytes() const { return max_bytes + ws_bytes + frames_bytes; }
};

// What the geometry depends on in the device: the opt-in shared memory per
// block and the number of multiprocessors. max_grid caps the fused kernel's grid
// (0: no cap); the emulation tests use it to make blocks loop over several items.
struct DeviceLimits {
  int64_t smem_per_block = 48 * 1024;
  int sm_count = 1;
  int64_t max_grid = 0;
};

// x / d, as a shift when d = 2^shift (shift >= 0): GPUs have no integer divider, and the
// common sizes are powers of two. Either way the same quotient.
KF_HD KF_INLINE int divide(int x, int d, int shift) { return shift >= 0 ? x >> shift : x / d; }

// log2(v) for a power of two v > 0, else -1 (host side, for the plan).
inline int exact_log2(int64_t v) {
  if (v <= 0 || (v & (v - 1)) != 0) return -1;
  int k = 0;
  while ((int64_t{1} << k) < v) ++k;
  return k;
}

// Index of complex element i in a padded buffer: one spare slot every 16
// elements, so strided radix writes spread over all 32 banks.
KF_HD KF_INLINE int pidx(int i) { return i + (i >> 4); }
KF_HD KF_INLINE int padded_length(int n) { return n + (n >> 4) + 1; }

}  // namespace gpu
}  // namespace kapre_fast
