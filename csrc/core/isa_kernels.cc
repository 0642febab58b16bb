// The fused kernels, compiled once per instruction set (CMake defines
// KF_ISA_AVX512, KF_ISA_AVX2 or neither, and the matching -m flags).
//
// A task is one tile of W consecutive frames of one signal: the W frames sit
// in the W lanes of every vector, so the FFT, magnitude, filterbank and dB run
// on whole vectors and the frames never leave this thread's cache.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "isa_kernels.h"
#include "stage_timing.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
// GCC 12 flags its own _mm512_undefined_ps() as maybe-uninitialized; it is not.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace kapre_fast {

#if defined(KF_ISA_AVX512)
#define KF_NS isa_avx512
#define KF_NAME "avx512"
constexpr int kLanes = 16;
#elif defined(KF_ISA_AVX2)
#define KF_NS isa_avx2
#define KF_NAME "avx2"
constexpr int kLanes = 8;
#else
#define KF_NS isa_sse2
#define KF_NAME "sse2"
constexpr int kLanes = 4;
#endif

namespace KF_NS {
namespace {

typedef float V __attribute__((vector_size(4 * kLanes)));
typedef int32_t VI __attribute__((vector_size(4 * kLanes)));

#include "fast_log.h"
#include "fft_kernels.h"

// sqrt(x) from the hardware reciprocal square root plus one Newton step (about
// 1 ulp): vsqrtps is several times slower and dominated the magnitude pass.
// 0, +inf and NaN pass through unchanged, as sqrt would return them.
// Lane l of vector k of a V array, as a plain float lvalue. Writing through a
// GCC vector subscripts (v[k][l]) miscompile under -fsanitize=address, so every
// per-lane access goes through these two.
inline float& lane(V* v, int64_t k, int l) { return reinterpret_cast<float*>(v + k)[l]; }
inline float at(const V* v, int64_t k, int l) { return reinterpret_cast<const float*>(v + k)[l]; }

inline V vsqrt(V x) {
#if defined(KF_ISA_AVX512)
  const V r0 = (V)_mm512_rsqrt14_ps((__m512)x);
#elif defined(KF_ISA_AVX2)
  const V r0 = (V)_mm256_rsqrt_ps((__m256)x);
#elif defined(__SSE2__)
  const V r0 = (V)_mm_rsqrt_ps((__m128)x);
#else
  V r0;
  for (int l = 0; l < kLanes; ++l) lane(&r0, 0, l) = 1.0f / std::sqrt(at(&x, 0, l));
#endif
  const V r = r0 * (1.5f - 0.5f * x * r0 * r0);
  const VI finite_positive = (x > 0.0f) & (x < INFINITY);
  return (V)(((VI)(x * r) & finite_positive) | ((VI)x & ~finite_positive));
}

// Whether any lane of a comparison result is true (all bits set), in one vector test.
inline bool any_lane(VI mask) {
#if defined(KF_ISA_AVX512)
  return _mm512_test_epi32_mask((__m512i)mask, (__m512i)mask) != 0;
#elif defined(KF_ISA_AVX2)
  return !_mm256_testz_si256((__m256i)mask, (__m256i)mask);
#elif defined(__SSE2__)
  return _mm_movemask_ps((__m128)mask) != 0;
#else
  bool any = false;
  for (int l = 0; l < kLanes; ++l) any |= reinterpret_cast<const int32_t*>(&mask)[l] != 0;
  return any;
#endif
}

// 10 log10(x) for positive normal lanes: Cephes-style log with the mantissa in
// [sqrt(1/2), sqrt(2)) and a degree-9 polynomial (fast_log.h, about 1 ulp). Lanes that are
// zero, subnormal, infinite or NaN take the libm path, so they keep libm's meaning.
inline V decibel(V x) {
  // Lanes outside [FLT_MIN, FLT_MAX], NaN included (it compares false), take the libm path.
  if (any_lane(~((x >= FLT_MIN) & (x <= FLT_MAX)))) {
    V r;
    for (int l = 0; l < kLanes; ++l) lane(&r, 0, l) = 10.0f * std::log10(at(&x, 0, l));
    return r;
  }
  const VI bits = (VI)x;
  VI e = ((bits >> 23) & 0xff) - 126;
  V m = (V)((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const VI small = m < kLogSqrtHalf;            // lanes: -1 where true
  e += small;                                   // e - 1 there
  m = m + (V)((VI)m & small) - 1.0f;            // 2m - 1 there, m - 1 elsewhere
  const V ln = log_of_reduced(m, __builtin_convertvector(e, V));
  return ln * 4.342944819032518f;  // 10 / ln(10)
}

// atan2(y, x) lane by lane, within about 2e-7 rad of libm's: the octant from the signs and
// |y| > |x|, then atan of t = min / max in [0, 1], reduced once more above tan(pi/8) through
// atan(t) = pi/4 + atan((t - 1) / (t + 1)), by Cephes' atanf polynomial. Lanes where min / max is
// not a plain ratio (both zero, an infinity, NaN) take the libm path, so they keep its meaning.
inline V vatan2(V y, V x) {
  const VI sign = VI{} + INT32_MIN;  // (splat(-0.0f) would be +0: 0 + -0 rounds to +0)
  const V ax = (V)((VI)x & ~sign), ay = (V)((VI)y & ~sign);
  const VI swap = ay > ax;
  const V num = swap ? ax : ay, den = swap ? ay : ax;
  if (any_lane(~((den > 0.0f) & (den <= FLT_MAX) & (num <= den)))) {
    V r;
    for (int l = 0; l < kLanes; ++l) lane(&r, 0, l) = std::atan2(at(&y, 0, l), at(&x, 0, l));
    return r;
  }
  const V t = num / den;
  const VI above = t > 0.41421356237309503f;  // tan(pi/8)
  const V u = above ? (t - 1.0f) / (t + 1.0f) : t;
  const V z = u * u;
  const V poly = (((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z -
                  3.33329491539e-1f) *
                     z * u +
                 u;
  V r = (above ? splat<V>(0.78539816339744831f) : V{}) + poly;  // atan(t), in [0, pi/4]
  r = swap ? 1.5707963267948966f - r : r;
  r = ((VI)x & sign) != 0 ? 3.1415926535897932f - r : r;  // x < 0, or -0
  return (V)((VI)r | ((VI)y & sign));                     // r >= 0: y's sign
}

// Transposes a W x W block: row l starts at src + l * row_stride (W floats);
// dst[i * W + l] = row l's element i, so dst holds one lane-vector per sample.
inline void transpose_block(const float* src, int64_t row_stride, V* dst) {
#if defined(KF_ISA_AVX512)
  __m512 r[16], t[16];
  for (int l = 0; l < 16; ++l) r[l] = _mm512_loadu_ps(src + l * row_stride);
  for (int g = 0; g < 4; ++g) {  // rows 4g..4g+3 -> per 128-bit lane k: column e + 4k
    const __m512 lo01 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    const __m512 hi01 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 lo23 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m512 hi23 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    t[4 * g + 0] = _mm512_shuffle_ps(lo01, lo23, 0x44);
    t[4 * g + 1] = _mm512_shuffle_ps(lo01, lo23, 0xEE);
    t[4 * g + 2] = _mm512_shuffle_ps(hi01, hi23, 0x44);
    t[4 * g + 3] = _mm512_shuffle_ps(hi01, hi23, 0xEE);
  }
  for (int e = 0; e < 4; ++e) {  // gather the four row groups of columns e, e+4, e+8, e+12
    const __m512 x0 = _mm512_shuffle_f32x4(t[e], t[4 + e], 0x88);
    const __m512 y0 = _mm512_shuffle_f32x4(t[e], t[4 + e], 0xDD);
    const __m512 x1 = _mm512_shuffle_f32x4(t[8 + e], t[12 + e], 0x88);
    const __m512 y1 = _mm512_shuffle_f32x4(t[8 + e], t[12 + e], 0xDD);
    dst[e] = (V)_mm512_shuffle_f32x4(x0, x1, 0x88);
    dst[e + 8] = (V)_mm512_shuffle_f32x4(x0, x1, 0xDD);
    dst[e + 4] = (V)_mm512_shuffle_f32x4(y0, y1, 0x88);
    dst[e + 12] = (V)_mm512_shuffle_f32x4(y0, y1, 0xDD);
  }
#elif defined(KF_ISA_AVX2)
  __m256 r[8], t[8];
  for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src + l * row_stride);
  for (int g = 0; g < 2; ++g) {
    const __m256 lo01 = _mm256_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    const __m256 hi01 = _mm256_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m256 lo23 = _mm256_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m256 hi23 = _mm256_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    t[4 * g + 0] = _mm256_shuffle_ps(lo01, lo23, 0x44);
    t[4 * g + 1] = _mm256_shuffle_ps(lo01, lo23, 0xEE);
    t[4 * g + 2] = _mm256_shuffle_ps(hi01, hi23, 0x44);
    t[4 * g + 3] = _mm256_shuffle_ps(hi01, hi23, 0xEE);
  }
  for (int e = 0; e < 4; ++e) {
    dst[e] = (V)_mm256_permute2f128_ps(t[e], t[4 + e], 0x20);
    dst[e + 4] = (V)_mm256_permute2f128_ps(t[e], t[4 + e], 0x31);
  }
#elif defined(__SSE2__)
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + row_stride);
  __m128 r2 = _mm_loadu_ps(src + 2 * row_stride), r3 = _mm_loadu_ps(src + 3 * row_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  dst[0] = (V)r0;
  dst[1] = (V)r1;
  dst[2] = (V)r2;
  dst[3] = (V)r3;
#else
  for (int i = 0; i < kLanes; ++i) {
    for (int l = 0; l < kLanes; ++l) lane(dst, i, l) = src[l * row_stride + i];
  }
#endif
}

// {v[1], ..., v[W-1], x}: the next frame's samples move down one lane. With
// hop < n_fft, sample i + hop of frame l is sample i of frame l + 1, so a tile
// needs only one new sample per lane-vector beyond the first hop rows.
inline V shift_in(V v, float x) {
#if defined(KF_ISA_AVX512)
  return (V)_mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(x)),
                                                    _mm512_castps_si512((__m512)v), 1));
#elif defined(KF_ISA_AVX2)
  const __m256 rotated =
      _mm256_permutevar8x32_ps((__m256)v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0));
  return (V)_mm256_blend_ps(rotated, _mm256_set1_ps(x), 0x80);
#else
  V r;
  for (int l = 0; l + 1 < kLanes; ++l) lane(&r, 0, l) = at(&v, 0, l + 1);
  lane(&r, 0, kLanes - 1) = x;
  return r;
#endif
}

// Stores windowed sample i (all lanes) where real_forward expects it.
inline void put_sample(bool even, int64_t i, V value, V* zr, V* zi) {
  if (even) {
    // Pick the buffer first: GCC 12 miscompiles (c ? p : q)[k] under -fsanitize=shift.
    V* half = (i & 1) ? zi : zr;
    half[i >> 1] = value;
  } else {
    zr[i] = value;
  }
}

// Samples of a frame that are read (the rest of the n_fft is zero padding).
inline int64_t samples_used(const FrontEndJob& j) {
  return j.win_length < j.n_fft ? j.win_length : j.n_fft;
}

// Whether the tile's nvalid frames from f0 lie inside the signal (no padding), so rows of
// samples can be cut with register transposes; with full, all W frames (no ragged end).
inline bool frames_inside(const FrontEndJob& j, int64_t f0, int nvalid, bool full) {
  const int lanes = full ? kLanes : nvalid;
  const int64_t first = f0 * j.hop_length - j.pad_begin;
  const int64_t last = (f0 + lanes - 1) * j.hop_length - j.pad_begin;
  return (!full || nvalid == kLanes) && first >= 0 && last + samples_used(j) <= j.signal.time;
}

// Samples the W frames of a tile read, from the first frame's start.
inline int64_t tile_span(const FrontEndJob& j) {
  return (kLanes - 1) * j.hop_length + samples_used(j);
}

// Strided audio (channels_last with several channels, views) is first copied into a
// contiguous span per tile, so interior tiles take the transposes there too; so is a
// signal's last, ragged tile, zero-filled past the end (the missing frames' lanes are
// computed but never stored). For spans up to this many samples (512 KiB of scratch; 15
// hops + n_fft of any usual front end); longer ones take the edge path.
constexpr int64_t kMaxCompactSpan = int64_t{1} << 17;

inline bool compacts(const FrontEndJob& j) { return tile_span(j) <= kMaxCompactSpan; }

// An interior tile's samples: frame f0's first sample, unit stride, frame f0 + l starting
// l * hop later; the signal itself, or `compact` filled from it. Null for an edge tile.
const float* interior_frames(const FrontEndJob& j, const float* sig, int64_t f0, int nvalid,
                             float* compact) {
  const int64_t T = j.signal.time, st = j.signal.st;
  const int64_t first = f0 * j.hop_length - j.pad_begin;
  if (st == 1 && frames_inside(j, f0, nvalid, true)) return sig + first;
  if (compact == nullptr || !frames_inside(j, f0, nvalid, false)) return nullptr;
  const int64_t span = tile_span(j);
  const int64_t inside = T - first < span ? T - first : span;
  for (int64_t i = 0; i < inside; ++i) compact[i] = sig[(first + i) * st];
  for (int64_t i = inside; i < span; ++i) compact[i] = 0.0f;
  return compact;
}

// Rows i0 .. i0 + W - 1 (row i: sample i of the W frames) into block, by a register transpose;
// rows from n_used on are left as they are (the caller never reads them).
inline void cut_rows(const float* frames, int64_t hop, int64_t i0, int64_t n_used, V* block) {
  if (i0 + kLanes <= n_used) {
    transpose_block(frames + i0, hop, block);
    return;
  }
  for (int ii = 0; ii < kLanes && i0 + ii < n_used; ++ii) {
    for (int l = 0; l < kLanes; ++l) lane(block, ii, l) = frames[l * hop + i0 + ii];
  }
}

// Cut W frames starting at frame f0 out of one signal, window them, and pack
// them into the lanes of (zr, zi) as real_forward expects. `compact` holds
// tile_span(j) floats where compacts(j), else it is null.
void load_frames(const FrontEndJob& j, const float* sig, int64_t f0, int nvalid, V* zr, V* zi,
                 float* compact) {
  const int64_t nc = j.fft->complex_n();
  const int64_t n_used = samples_used(j);
  const int64_t T = j.signal.time, st = j.signal.st;
  const bool even = j.fft->even;
  if (const float* frames = interior_frames(j, sig, f0, nvalid, compact)) {
    // Interior tile: no bounds checks, no per-lane gathers.
    if (!even) {
      for (int64_t i = 0; i < nc; ++i) zi[i] = V{};  // odd n: a real signal in a complex FFT
    }
    const int64_t hop = j.hop_length;
    const float* lane_last = frames + (kLanes - 1) * hop;  // frame W-1's samples
    // Rows [0, n_head) are cut from the signal (W x W register transposes); every
    // later row i comes from row i - hop, shifted one lane, plus frame W-1's sample i.
    const int64_t n_head = hop < n_used ? hop : n_used;
    V block[kLanes];
    for (int64_t i0 = 0; i0 < n_head; i0 += kLanes) {
      cut_rows(frames, hop, i0, n_used, block);
      const int rows = static_cast<int>(n_head - i0 < kLanes ? n_head - i0 : kLanes);
      for (int ii = 0; ii < rows; ++ii) {
        V v = block[ii];
        int64_t i = i0 + ii;
        if (even && hop % 2 == 0) {
          // An even hop keeps a chain's rows on one parity: one half buffer, no per-row choice.
          V* dst = ((i & 1) ? zi : zr) + (i >> 1);
          const float* w = j.window + i;
          const float* last = lane_last + i;
          dst[0] = v * w[0];
          for (int64_t t = hop; t < n_used - i; t += hop) {
            v = shift_in(v, last[t]);
            dst[t >> 1] = v * w[t];
          }
          continue;
        }
        put_sample(even, i, v * j.window[i], zr, zi);
        for (i += hop; i < n_used; i += hop) {
          v = shift_in(v, lane_last[i]);
          put_sample(even, i, v * j.window[i], zr, zi);
        }
      }
    }
    for (int64_t i = n_used; i < (even ? 2 * nc : nc); ++i) put_sample(even, i, V{}, zr, zi);
    return;
  }
  // Edge tile (padding, ragged end): lane by lane with bounds checks.
  for (int64_t i = 0; i < nc; ++i) zr[i] = zi[i] = V{};
  float* zrf = reinterpret_cast<float*>(zr);
  float* zif = reinterpret_cast<float*>(zi);
  for (int l = 0; l < nvalid; ++l) {
    const int64_t start = (f0 + l) * j.hop_length - j.pad_begin;
    const int64_t lo = start < 0 ? -start : 0;
    const int64_t hi = (T - start) < n_used ? (T - start) : n_used;
    if (even) {
      for (int64_t i = lo; i < hi; ++i) {
        float* dst = (i & 1) ? zif : zrf;
        dst[(i >> 1) * kLanes + l] = sig[(start + i) * st] * j.window[i];
      }
    } else {
      for (int64_t i = lo; i < hi; ++i) zrf[i * kLanes + l] = sig[(start + i) * st] * j.window[i];
    }
  }
}

// Framing fused into the FFT's first pass (complex_forward_blocked_loaded): for even n in the
// blocked order, input z_(q + k M) of column q is the pair of rows 2 (q + k M) and 2 (q + k M) + 1.
// When hop is a multiple of 2 M, row i + hop (row i shifted one lane, plus frame W-1's
// sample i + hop, as in load_frames) is input k + c of the same column, c = hop / (2 M). So a
// column's inputs k < c are cut from the signal (register transposes shared by the W / 2
// columns of a group) and the rest are shift chains from them: the packed input, nc vectors
// written out and read back from L2, is never stored.
inline bool frames_fuse_into_fft(const FrontEndJob& j) {
  const RealFftView& f = *j.fft;
  if (!f.even || !use_blocks<V>(f)) return false;
  const int64_t m = f.block_fft->n;
  return m % (kLanes / 2) == 0 && j.hop_length % (2 * m) == 0;
}

struct FramedColumns {
  const float* frames;     // interior_frames
  const float* lane_last;  // frame W-1's samples
  const float* window;
  int64_t hop, n_used, m, c;
  V head[16][kLanes];  // head[k][t]: row 2 (q0 + k M) + t, for the group of columns from q0

  FramedColumns(const FrontEndJob& j, const float* f)
      : frames(f),
        lane_last(f + (kLanes - 1) * j.hop_length),
        window(j.window),
        hop(j.hop_length),
        n_used(samples_used(j)),
        m(j.fft->block_fft->n),
        c(j.hop_length / (2 * j.fft->block_fft->n)) {}

  void operator()(int64_t q, V* r, V* i) {
    constexpr int kGroup = kLanes / 2;
    const int64_t q0 = q - q % kGroup;
    if (q == q0) {
      for (int64_t k = 0; k < c && k < 16; ++k) {
        cut_rows(frames, hop, 2 * (q0 + k * m), n_used, head[k]);
      }
    }
    const int t = static_cast<int>(2 * (q - q0));
    // One chain per head input k0 < c: inputs k0, k0 + c, ... are its rows shifted 0, 1, ...
    // times; the windowed value goes out, the raw one stays in a register for the next shift.
    for (int64_t k0 = 0; k0 < c && k0 < 16; ++k0) {
      int64_t row = 2 * (q + k0 * m);
      if (row + 1 < n_used) {  // both rows of the first input are samples
        V ev = head[k0][t], od = head[k0][t + 1];
        r[k0] = ev * window[row];
        i[k0] = od * window[row + 1];
        int64_t k = k0 + c;
        for (row += hop; k < 16 && row + 1 < n_used; k += c, row += hop) {
          ev = shift_in(ev, lane_last[row]);
          od = shift_in(od, lane_last[row + 1]);
          r[k] = ev * window[row];
          i[k] = od * window[row + 1];
        }
        if (k < 16 && row < n_used) {  // odd n_used: the pair's odd row is padding
          r[k] = shift_in(ev, lane_last[row]) * window[row];
          i[k] = V{};
          k += c;
        }
        for (; k < 16; k += c) r[k] = i[k] = V{};
      } else {
        r[k0] = row < n_used ? head[k0][t] * window[row] : V{};
        i[k0] = V{};
        for (int64_t k = k0 + c; k < 16; k += c) r[k] = i[k] = V{};
      }
    }
  }
};

// Interleaved rows (channels_last with `step` channels): a row's W features k0 .. k0 + W - 1
// go to dst[step * i], i < W, and the floats between them belong to the other channels, which
// other tasks may be writing right now. Output vector v of the W * step floats gets, through a
// lane permute, feature (v W + e) / step at each lane e with (v W + e) % step == 0, and a masked
// store writes those lanes only (masked stores never touch the lanes they leave out).
constexpr int kMaxMaskedStep = 8;

struct StridedStore {
#if defined(KF_ISA_AVX512) || defined(KF_ISA_AVX2)
  VI index[kMaxMaskedStep];
  VI mask[kMaxMaskedStep];
#endif
  int step;
  explicit StridedStore(int s) : step(s) {
#if defined(KF_ISA_AVX512) || defined(KF_ISA_AVX2)
    for (int v = 0; v < step; ++v) {
      for (int e = 0; e < kLanes; ++e) {
        const int pos = v * kLanes + e;
        reinterpret_cast<int32_t*>(&index[v])[e] = pos / step;
        reinterpret_cast<int32_t*>(&mask[v])[e] = pos % step == 0 ? -1 : 0;
      }
    }
#endif
  }
  void operator()(float* dst, V x) const {
#if defined(KF_ISA_AVX512) || defined(KF_ISA_AVX2)
    for (int v = 0; v < step; ++v) {
      float* d = dst + v * kLanes;
#if defined(KF_ISA_AVX512)
      const __m512i m = (__m512i)mask[v];
      _mm512_mask_storeu_ps(d, _mm512_test_epi32_mask(m, m),
                            _mm512_permutexvar_ps((__m512i)index[v], (__m512)x));
#else
      _mm256_maskstore_ps(d, (__m256i)mask[v],
                          _mm256_permutevar8x32_ps((__m256)x, (__m256i)index[v]));
#endif
    }
#else
    for (int i = 0; i < kLanes; ++i) dst[i * step] = at(&x, 0, i);
#endif
  }
};

// Writes lane l of values[0 .. n) to out + l * row_stride + k * step: the tile's
// frames become output rows. Rows with step 1 (one channel, or channels_first) go
// W x W block by block through the register transpose and plain stores, interleaved rows
// of up to kMaxMaskedStep channels (channels_last) through the transpose and StridedStore;
// anything else element by element.
void store_rows(V* values, int64_t n, int nvalid, float* out, int64_t row_stride, int64_t step) {
  int64_t k0 = 0;
  if (step >= 1 && step <= kMaxMaskedStep && nvalid == kLanes) {
    const StridedStore strided(static_cast<int>(step));
    V block[kLanes];
    for (; k0 + kLanes <= n; k0 += kLanes) {
      transpose_block(reinterpret_cast<const float*>(values + k0), kLanes, block);
      for (int l = 0; l < kLanes; ++l) {
        if (step == 1) {
          __builtin_memcpy(out + l * row_stride + k0, &block[l], sizeof(V));
        } else {
          strided(out + l * row_stride + step * k0, block[l]);
        }
      }
    }
  }
  for (int l = 0; l < nvalid; ++l) {
    float* row = out + l * row_stride;
    for (int64_t k = k0; k < n; ++k) row[k * step] = at(values, k, l);
  }
}

#if defined(KF_ISA_AVX512)
// store_rows for a full tile of rows with step 1 whose result is large and written once
// (FrontEndJob::stream_out): the same values, written with non-temporal 64-byte stores that
// skip the read-for-ownership of each output line and leave the caches to the transform.
// Row l starts at any float boundary, so its aligned 64-byte chunks straddle two transposed
// blocks: each chunk is one two-source permute of the previous block and the current one. The
// row's unaligned head and tail (and bins past the last full block) take plain stores.
void stream_rows(const V* values, int64_t n, float* out, int64_t row_stride) {
  __m512 prev[kLanes];
  __m512i pick[kLanes];
  int head[kLanes];  // floats before row l's first 64-byte boundary
  for (int l = 0; l < kLanes; ++l) {
    const auto address = reinterpret_cast<std::uintptr_t>(out + l * row_stride);
    head[l] = static_cast<int>(((64 - (address & 63)) & 63) / sizeof(float));
    // Chunk = lanes head .. 15 of the previous block, then lanes 0 .. head - 1 of this one.
    pick[l] =
        _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(head[l]));
  }
  const int64_t full = n / kLanes * kLanes;
  V block[kLanes];
  for (int64_t k0 = 0; k0 < full; k0 += kLanes) {
    transpose_block(reinterpret_cast<const float*>(values + k0), kLanes, block);
    for (int l = 0; l < kLanes; ++l) {
      float* row = out + l * row_stride;
      const __m512 cur = (__m512)block[l];
      if (head[l] == 0) {
        _mm512_stream_ps(row + k0, cur);
      } else if (k0 == 0) {
        _mm512_mask_storeu_ps(row, static_cast<__mmask16>((1u << head[l]) - 1), cur);
      } else {
        _mm512_stream_ps(row + k0 - kLanes + head[l],
                         _mm512_permutex2var_ps(prev[l], pick[l], cur));
      }
      prev[l] = cur;
    }
  }
  for (int l = 0; l < kLanes && full > 0; ++l) {  // lanes head .. 15 of the last full block
    if (head[l] != 0) {
      const __mmask16 tail = static_cast<__mmask16>(~((1u << head[l]) - 1));
      _mm512_mask_storeu_ps(out + l * row_stride + full - kLanes, tail, prev[l]);
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    float* row = out + l * row_stride;
    for (int64_t k = full; k < n; ++k) row[k] = at(values, k, l);
  }
  _mm_sfence();  // the streamed lines are visible before the task reports done
}
#endif

// (a0, b0, a1, b1, ...): lanes [0, W/2) of a and b interleaved into lo, lanes [W/2, W) into hi.
inline void interleave(V a, V b, V* lo, V* hi) {
#if defined(KF_ISA_AVX512)
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  *lo = (V)_mm512_permutex2var_ps((__m512)a, first, (__m512)b);
  *hi = (V)_mm512_permutex2var_ps((__m512)a, second, (__m512)b);
#elif defined(KF_ISA_AVX2)
  const __m256 t0 = _mm256_unpacklo_ps((__m256)a, (__m256)b);  // a0 b0 a1 b1 | a4 b4 a5 b5
  const __m256 t1 = _mm256_unpackhi_ps((__m256)a, (__m256)b);  // a2 b2 a3 b3 | a6 b6 a7 b7
  *lo = (V)_mm256_permute2f128_ps(t0, t1, 0x20);
  *hi = (V)_mm256_permute2f128_ps(t0, t1, 0x31);
#elif defined(__SSE2__)
  *lo = (V)_mm_unpacklo_ps((__m128)a, (__m128)b);
  *hi = (V)_mm_unpackhi_ps((__m128)a, (__m128)b);
#else
  for (int e = 0; e < kLanes; ++e) {
    V* dst = e < kLanes / 2 ? lo : hi;
    lane(dst, 0, 2 * (e % (kLanes / 2))) = at(&a, 0, e);
    lane(dst, 0, 2 * (e % (kLanes / 2)) + 1) = at(&b, 0, e);
  }
#endif
}

// interleave's inverse: lo, hi holding (a0, b0, a1, b1, ...) give back a and b.
inline void deinterleave(V lo, V hi, V* a, V* b) {
#if defined(KF_ISA_AVX512)
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  *a = (V)_mm512_permutex2var_ps((__m512)lo, even, (__m512)hi);
  *b = (V)_mm512_permutex2var_ps((__m512)lo, odd, (__m512)hi);
#elif defined(KF_ISA_AVX2)
  // shuffle_ps works per 128-bit half: (a0 a1 a4 a5 | a2 a3 a6 a7), then the 64-bit pairs in order.
  *a = (V)_mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps((__m256)lo, (__m256)hi, 0x88)), 0xD8));
  *b = (V)_mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps((__m256)lo, (__m256)hi, 0xDD)), 0xD8));
#elif defined(__SSE2__)
  *a = (V)_mm_shuffle_ps((__m128)lo, (__m128)hi, 0x88);
  *b = (V)_mm_shuffle_ps((__m128)lo, (__m128)hi, 0xDD);
#else
  for (int e = 0; e < kLanes; ++e) {
    const V* src = e < kLanes / 2 ? &lo : &hi;
    lane(a, 0, e) = at(src, 0, 2 * (e % (kLanes / 2)));
    lane(b, 0, e) = at(src, 0, 2 * (e % (kLanes / 2)) + 1);
  }
#endif
}

// The complex spectrum (xr, xi: n bins, W frames in the lanes) to rows out + l * row_stride,
// bin k's (re, im) at k * step. W bins at a time through two register transposes: adjacent
// pairs (step 2: one channel, or channels_first) then interleave, two plain stores a row; pairs
// of up to kMaxMaskedStep / 2 interleaved channels (channels_last) go out as the real parts and
// the imaginary parts, each through StridedStore. A ragged tile's rows, and other layouts, pair
// by pair.
void store_complex_rows(const V* xr, const V* xi, int64_t n, int nvalid, float* out,
                        int64_t row_stride, int64_t step) {
  int64_t k0 = 0;
  if (step % 2 == 0 && step <= kMaxMaskedStep && nvalid == kLanes) {
    const StridedStore strided(static_cast<int>(step));
    V re[kLanes], im[kLanes];
    for (; k0 + kLanes <= n; k0 += kLanes) {
      transpose_block(reinterpret_cast<const float*>(xr + k0), kLanes, re);
      transpose_block(reinterpret_cast<const float*>(xi + k0), kLanes, im);
      for (int l = 0; l < kLanes; ++l) {
        float* dst = out + l * row_stride + step * k0;
        if (step == 2) {
          V pairs[2];
          interleave(re[l], im[l], &pairs[0], &pairs[1]);
          __builtin_memcpy(dst, pairs, sizeof(pairs));
        } else {
          strided(dst, re[l]);
          strided(dst + 1, im[l]);
        }
      }
    }
  }
  for (int l = 0; l < nvalid; ++l) {
    float* row = out + l * row_stride;
    for (int64_t k = k0; k < n; ++k) {
      row[k * step] = at(xr, k, l);
      row[k * step + 1] = at(xi, k, l);
    }
  }
}

// Asks for the samples the next tile of this signal reads first-hand (those past
// this tile's last frame) to be brought into L2 while this tile computes: the
// framing otherwise stalls on them, one new cache line after another.
void prefetch_next_tile(const FrontEndJob& j, const float* sig, int64_t f0) {
  if (j.signal.st != 1) return;
  const int64_t n_used = samples_used(j);
  const int64_t begin = (f0 + kLanes - 1) * j.hop_length - j.pad_begin + n_used;
  int64_t end = begin + kLanes * j.hop_length;
  if (begin < 0) return;
  if (end > j.signal.time) end = j.signal.time;
  for (int64_t i = begin; i < end; i += 64 / sizeof(float)) __builtin_prefetch(sig + i, 0, 2);
}

// One transform's buffers, in this order in a thread's scratch: the packed time
// samples (zr, zi: complex_n vectors each), the spectrum (xr, xi: n / 2 + 1
// each), the FFT's own scratch (fft.scratch vectors), then whatever the caller adds.
struct TileBuffers {
  V* zr;
  V* zi;
  V* xr;
  V* xi;
  V* scr;
};

inline TileBuffers tile_buffers(const RealFftView& fft, void* scratch) {
  const int64_t nc = fft.complex_n(), nf = fft.n / 2 + 1;
  V* zr = static_cast<V*>(scratch);
  return {zr, zr + nc, zr + 2 * nc, zr + 2 * nc + nf, zr + 2 * nc + 2 * nf};
}

// Floats of scratch tile_buffers carves.
int64_t fft_scratch(const RealFftView& fft) {
  return kLanes * (2 * fft.complex_n() + 2 * (fft.n / 2 + 1) + fft.scratch);
}

int64_t frontend_scratch(const FrontEndJob& j) {
  return fft_scratch(*j.fft) + kLanes * j.n_bands + (compacts(j) ? tile_span(j) : 0);
}

// One band's weighted sum over its bins, in bin order, from bin `from` on.
inline V band_sum(const V* mag, const float* w, int32_t from, int32_t length, V acc) {
  for (int32_t i = from; i < length; ++i) acc += mag[i] * w[i];
  return acc;
}

// The filterbank on a tile's magnitudes: feat[band] = sum over the band's bins of mag * weight.
// One band's sum is a chain of dependent adds, bound by the add latency (4 cycles) when the
// band is wide (log-frequency bands: D), so four bands run side by side, their chains
// interleaved over the bins all four have; each band still sums its own bins in bin order, so
// the values are bit for bit those of one band at a time.
void apply_bands(const FrontEndJob& j, const V* mag, V* feat) {
  int64_t band = 0;
  for (; band + 4 <= j.n_bands; band += 4) {
    const V* m[4];
    const float* w[4];
    int32_t length[4];
    int32_t common = INT32_MAX;
    for (int k = 0; k < 4; ++k) {
      m[k] = mag + j.band_start[band + k];
      w[k] = j.band_weights + j.band_offset[band + k];
      length[k] = j.band_length[band + k];
      common = length[k] < common ? length[k] : common;
    }
    V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
    for (int32_t i = 0; i < common; ++i) {
      a0 += m[0][i] * w[0][i];
      a1 += m[1][i] * w[1][i];
      a2 += m[2][i] * w[2][i];
      a3 += m[3][i] * w[3][i];
    }
    feat[band] = band_sum(m[0], w[0], common, length[0], a0);
    feat[band + 1] = band_sum(m[1], w[1], common, length[1], a1);
    feat[band + 2] = band_sum(m[2], w[2], common, length[2], a2);
    feat[band + 3] = band_sum(m[3], w[3], common, length[3], a3);
  }
  for (; band < j.n_bands; ++band) {
    feat[band] = band_sum(mag + j.band_start[band], j.band_weights + j.band_offset[band], 0,
                          j.band_length[band], V{});
  }
}

void frontend_task(const FrontEndJob& j, int64_t task, V* buf, float* task_max) {
  const int64_t sig_index = task / j.tiles_per_signal;
  const int64_t f0 = (task % j.tiles_per_signal) * kLanes;
  const int64_t b = sig_index / j.signal.channels, c = sig_index % j.signal.channels;
  const int nvalid = static_cast<int>(j.n_frames - f0 < kLanes ? j.n_frames - f0 : kLanes);
  const int64_t nf = j.n_fft / 2 + 1;
  const auto [zr, zi, xr, xi, scr] = tile_buffers(*j.fft, buf);
  V* const feat = scr + j.fft->scratch;
  uint64_t clock = stage_clock();
  // Adds the time since the last stamp to `slot` (nothing without KAPRE_FAST_STAGE_TIMING).
  auto stamp = [&clock](int slot) {
    const uint64_t now = stage_clock();
    stage_add(slot, now - clock);
    clock = now;
  };

  const float* sig = j.signal.data + b * j.signal.sb + c * j.signal.sc;
  prefetch_next_tile(j, sig, f0);
  float* compact = compacts(j) ? reinterpret_cast<float*>(feat + j.n_bands) : nullptr;
  const float* frames =
      frames_fuse_into_fft(j) ? interior_frames(j, sig, f0, nvalid, compact) : nullptr;
  auto forward = [&](auto mag, int64_t bins) {
    if (frames != nullptr) {
      FramedColumns columns(j, frames);
      real_forward_loaded(*j.fft, columns, xr, xi, scr, mag, bins);
    } else {
      load_frames(j, sig, f0, nvalid, zr, zi, compact);
      real_forward(*j.fft, zr, zi, xr, xi, scr, mag, bins);
    }
  };
  if (j.output == OutputKind::kMagnitude && j.power == 2) {
    forward(PowerSpectrum{}, j.bins_used);
  } else if (j.output == OutputKind::kMagnitude) {
    forward([](V re, V im) { return vsqrt(re * re + im * im); }, j.bins_used);
  } else {
    forward(NoMagnitude{}, INT64_MAX);
  }
  stamp(kStageTransform);
  const FeatureView& o = j.out;
  const int64_t base = b * o.sb + c * o.sc;
  if (j.output == OutputKind::kComplex) {
    store_complex_rows(xr, xi, nf, nvalid, o.data + base + f0 * o.sf, o.sf, o.sk);
    return;
  }
  if (j.output == OutputKind::kMagPhase) {
    for (int64_t k = 0; k < nf; ++k) {
      const V power = xr[k] * xr[k] + xi[k] * xi[k];
      xi[k] = vatan2(xi[k], xr[k]);
      xr[k] = j.power == 2 ? power : vsqrt(power);
    }
    store_rows(xi, nf, nvalid, o.phase + base + f0 * o.sf, o.sf, o.sk);
  }

  V* values = xr;
  int64_t n_values = nf;
  if (j.n_bands > 0) {
    apply_bands(j, xr, feat);
    values = feat;
    n_values = j.n_bands;
    stamp(kStageFilterbank);
  }
  if (j.decibel) {
    const V amin = splat<V>(j.amin);
    V vmax = splat<V>(-INFINITY);
    // kapre's 10 log10 is never multiplied (scale 1), which keeps its values bit for bit.
    const bool scaled = j.db_scale != 1.0f;
    for (int64_t k = 0; k < n_values; ++k) {
      const V x = values[k];
      const V db = decibel(x < amin ? amin : x);
      const V y = (scaled ? db * j.db_scale : db) - j.db_offset;  // NaN stays NaN
      values[k] = y;
      vmax = (vmax < y) | (y != y) ? y : vmax;  // a NaN, once seen, stays
    }
    float m = -INFINITY;
    for (int l = 0; l < nvalid; ++l) {
      const float v = at(&vmax, 0, l);
      m = (m < v || v != v) ? v : m;
    }
    *task_max = m;
    stamp(kStageDecibel);
  }
#if defined(KF_ISA_AVX512)
  if (j.stream_out && nvalid == kLanes && o.sk == 1) {
    stream_rows(values, n_values, o.data + base + f0 * o.sf, o.sf);
  } else {
    store_rows(values, n_values, nvalid, o.data + base + f0 * o.sf, o.sf, o.sk);
  }
#else
  store_rows(values, n_values, nvalid, o.data + base + f0 * o.sf, o.sf, o.sk);
#endif
  stamp(kStageStore);
  stage_add(kStageTiles, 1);
}

void frontend_tasks(const FrontEndJob& j, int64_t begin, int64_t end, float* scratch,
                    float* task_max) {
  V* buf = reinterpret_cast<V*>(scratch);
  for (int64_t t = begin; t < end; ++t) frontend_task(j, t, buf, task_max + t);
}

// Frames in the lanes: each coefficient is one vector accumulator over the bands, whose rows
// (one tile of frames each) stay in L1 across the coefficients.
void dct_frames(const float* x, int64_t x_stride, int64_t frames, const DctView& dct, float* y,
                int64_t ysf, int64_t ysk) {
  for (int64_t f0 = 0; f0 < frames; f0 += kLanes) {
    const int nvalid = static_cast<int>(frames - f0 < kLanes ? frames - f0 : kLanes);
    auto store = [&](int64_t i, V acc) {
      for (int l = 0; l < nvalid; ++l) y[(f0 + l) * ysf + i * ysk] = at(&acc, 0, l);
    };
    int64_t i = 0;
    // Four coefficients side by side: each still sums the bands in band order (the same bits),
    // but as four independent chains instead of one bound by the add latency, and each band's
    // row is loaded once for the four.
    for (; i + 4 <= dct.n_out; i += 4) {
      V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
      for (int64_t m = 0; m < dct.n_in; ++m) {
        V row;
        __builtin_memcpy(&row, x + m * x_stride + f0, sizeof(V));
        const float* w = dct.matrix + m * dct.n_out + i;
        a0 += row * w[0];
        a1 += row * w[1];
        a2 += row * w[2];
        a3 += row * w[3];
      }
      store(i, a0);
      store(i + 1, a1);
      store(i + 2, a2);
      store(i + 3, a3);
    }
    for (; i < dct.n_out; ++i) {
      V acc = V{};
      for (int64_t m = 0; m < dct.n_in; ++m) {
        V row;
        __builtin_memcpy(&row, x + m * x_stride + f0, sizeof(V));
        acc += row * dct.matrix[m * dct.n_out + i];
      }
      store(i, acc);
    }
  }
}

int64_t istft_scratch(const IstftJob& j) { return fft_scratch(*j.fft); }

// Sample i of lane l of a packed time-domain tile (see real_forward).
inline float packed_sample(const RealFftView& fft, const V* zr, const V* zi, int64_t i, int l) {
  if (!fft.even) return at(zr, i, l);
  return (i & 1) ? at(zi, i >> 1, l) : at(zr, i >> 1, l);
}

// Rows src + l * row_stride of (re, im) pairs, bin k at k * step, into the lanes of (xr, xi):
// store_complex_rows backwards (pairs C channels apart gathered into place first). Lanes from
// nvalid on are zero.
void load_complex_rows(const float* src, int64_t row_stride, int64_t step, int64_t n, int nvalid,
                       V* xr, V* xi) {
  int64_t k0 = 0;
  if (step % 2 == 0 && nvalid == kLanes) {
    V re[kLanes], im[kLanes];
    for (; k0 + kLanes <= n; k0 += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float* row = src + l * row_stride + step * k0;
        V pairs[2];
        if (step == 2) {
          __builtin_memcpy(pairs, row, sizeof(pairs));
        } else {  // interleaved channels: the W pairs gathered 8 bytes at a time
          for (int i = 0; i < kLanes; ++i) {
            __builtin_memcpy(reinterpret_cast<float*>(pairs) + 2 * i, row + i * step, 8);
          }
        }
        deinterleave(pairs[0], pairs[1], &re[l], &im[l]);
      }
      transpose_block(reinterpret_cast<const float*>(re), kLanes, xr + k0);
      transpose_block(reinterpret_cast<const float*>(im), kLanes, xi + k0);
    }
  }
  for (int64_t k = k0; k < n; ++k) xr[k] = xi[k] = V{};
  for (int l = 0; l < nvalid; ++l) {
    const float* row = src + l * row_stride;
    for (int64_t k = k0; k < n; ++k) {
      lane(xr, k, l) = row[k * step];
      lane(xi, k, l) = row[k * step + 1];
    }
  }
}

// real_inverse's packed output (W frames in the lanes) frame-major: frame l's sample i at
// frames[l * n + i]. For even n the packed pairs (x[2m], x[2m+1]) are (re, im) pairs to
// store_complex_rows, each frame a row of n floats.
void unpack_frames(const RealFftView& fft, const V* zr, const V* zi, float* frames) {
  const int64_t n = fft.n;
  if (fft.even) {
    store_complex_rows(zr, zi, fft.complex_n(), kLanes, frames, n, 2);
    return;
  }
  for (int l = 0; l < kLanes; ++l) {
    for (int64_t i = 0; i < n; ++i) frames[l * n + i] = at(zr, i, l);
  }
}

void istft_signals(const IstftJob& j, int64_t begin, int64_t end, float* scratch) {
  const RealFftView& fft = *j.fft;
  const int64_t nf = j.n_fft / 2 + 1;
  const auto [zr, zi, xr, xi, scr] = tile_buffers(fft, scratch);
  // The spectrum's 2 (n/2 + 1) vectors, free once real_inverse has read them, hold the tile's
  // W frames of n samples frame-major for the overlap-add.
  float* frames = reinterpret_cast<float*>(xr);
  const int64_t n_used = j.win_length < j.n_fft ? j.win_length : j.n_fft;
  const int64_t st = j.out.st;
  const ComplexInputView& in = j.in;
  for (int64_t s = begin; s < end; ++s) {
    const int64_t b = s / in.channels, c = s % in.channels;
    float* out = j.out.data + b * j.out.sb + c * j.out.sc;
    for (int64_t t = 0; t < j.out_length; ++t) out[t * st] = 0.0f;
    const float* src = in.data + b * in.sb + c * in.sc;
    for (int64_t f0 = 0; f0 < in.frames; f0 += kLanes) {
      const int nvalid = static_cast<int>(in.frames - f0 < kLanes ? in.frames - f0 : kLanes);
      load_complex_rows(src + f0 * in.sf, in.sf, in.sk, nf, nvalid, xr, xi);
      real_inverse(fft, xr, xi, zr, zi, scr);
      unpack_frames(fft, zr, zi, frames);
      // Overlap-add frame by frame, in order, so the sum does not depend on threads.
      for (int l = 0; l < nvalid; ++l) {
        float* dst = out + (f0 + l) * j.hop_length * st;
        const float* x = frames + l * j.n_fft;
        int64_t i = 0;
        if (st == 1) {
          for (; i + kLanes <= n_used; i += kLanes) {
            V acc, v, w;
            __builtin_memcpy(&acc, dst + i, sizeof(V));
            __builtin_memcpy(&v, x + i, sizeof(V));
            __builtin_memcpy(&w, j.window + i, sizeof(V));
            acc += v * w;
            __builtin_memcpy(dst + i, &acc, sizeof(V));
          }
        }
        for (; i < n_used; ++i) dst[i * st] += x[i] * j.window[i];
      }
    }
  }
}

// Rows of n real samples (row l at rows + l * n) into real_forward's packed lanes: unpack_frames
// backwards (load_complex_rows for even n). Lanes from nvalid on are zero.
void pack_rows(const RealFftView& fft, const float* rows, int nvalid, V* zr, V* zi) {
  const int64_t n = fft.n;
  if (fft.even) {
    load_complex_rows(rows, n, 2, fft.complex_n(), nvalid, zr, zi);
    return;
  }
  for (int64_t i = 0; i < n; ++i) zr[i] = zi[i] = V{};
  for (int l = 0; l < nvalid; ++l) {
    for (int64_t i = 0; i < n; ++i) lane(zr, i, l) = rows[l * n + i];
  }
}

void rfft_rows(const RealFftView& fft, const float* in, int64_t rows, int64_t begin, int64_t end,
               float* out, float* scratch) {
  const int64_t n = fft.n, nf = n / 2 + 1;
  const auto [zr, zi, xr, xi, scr] = tile_buffers(fft, scratch);
  for (int64_t r0 = begin; r0 < end; r0 += kLanes) {
    const int nvalid = static_cast<int>(end - r0 < kLanes ? end - r0 : kLanes);
    pack_rows(fft, in + r0 * n, nvalid, zr, zi);
    real_forward(fft, zr, zi, xr, xi, scr);
    store_complex_rows(xr, xi, nf, nvalid, out + r0 * 2 * nf, 2 * nf, 2);
  }
  (void)rows;
}

void irfft_rows(const RealFftView& fft, const float* in, int64_t rows, int64_t begin, int64_t end,
                float* out, float* scratch) {
  const int64_t n = fft.n, nf = n / 2 + 1;
  const auto [zr, zi, xr, xi, scr] = tile_buffers(fft, scratch);
  for (int64_t r0 = begin; r0 < end; r0 += kLanes) {
    const int nvalid = static_cast<int>(end - r0 < kLanes ? end - r0 : kLanes);
    load_complex_rows(in + r0 * 2 * nf, 2 * nf, 2, nf, nvalid, xr, xi);
    real_inverse(fft, xr, xi, zr, zi, scr);
    if (nvalid == kLanes) {
      unpack_frames(fft, zr, zi, out + r0 * n);
      continue;
    }
    for (int l = 0; l < nvalid; ++l) {
      float* row = out + (r0 + l) * n;
      for (int64_t i = 0; i < n; ++i) row[i] = packed_sample(fft, zr, zi, i, l);
    }
  }
  (void)rows;
}

}  // namespace

extern const IsaKernels kKernels = {
    KF_NAME,       kLanes,    frontend_scratch, frontend_tasks, istft_scratch,
    istft_signals, rfft_rows, irfft_rows,       fft_scratch,    dct_frames,
};

}  // namespace KF_NS
}  // namespace kapre_fast
