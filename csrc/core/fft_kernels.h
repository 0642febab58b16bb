// FFT execution, written once for a "lane vector" type V.
//
// V is float (one frame) or a GCC vector of W floats (W frames side by side:
// lane l of every element belongs to frame l). The code looks scalar and every
// radix vectorises the same way, with no shuffles (pocketfft's multi_iter idea).
//
// This header is included by one translation unit per instruction set, inside
// a namespace named after it (see isa_kernels.h), so no inline function compiled
// for AVX-512 can be picked by the linker for a machine without it. For the
// same reason it uses no standard-library templates.
#pragma once

#include <cstdint>
#include <type_traits>

#include "fft_plan.h"

// Butterflies keep their values in register arrays (V r[16]); every loop over
// them must be unrolled, or GCC indexes them in memory: a radix-16 pass then
// spills and reloads all 32 outputs (twice its own stores).
#define KF_UNROLL _Pragma("GCC unroll 16")

template <class V>
inline V splat(float f) {
  return V{} + f;
}

// y = b * w for complex b (br, bi) and twiddle w (wr, wi) broadcast to lanes.
// As KF_CMUL_STORE, but a plain store when kTw is false (the last pass, m == 1,
// where every twiddle is exactly 1).
#define KF_TW_STORE(YR, YI, BR, BI, WR, WI)  \
  do {                                       \
    if constexpr (kTw) {                     \
      KF_CMUL_STORE(YR, YI, BR, BI, WR, WI); \
    } else {                                 \
      (YR) = (BR);                           \
      (YI) = (BI);                           \
    }                                        \
  } while (0)

#define KF_CMUL_STORE(YR, YI, BR, BI, WR, WI) \
  do {                                        \
    const V br_ = (BR), bi_ = (BI);           \
    (YR) = br_ * (WR) - bi_ * (WI);           \
    (YI) = br_ * (WI) + bi_ * (WR);           \
  } while (0)

template <class V, bool kTw>
void pass_radix2(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const int64_t m = ps.m, s = ps.s;
  for (int64_t p = 0; p < m; ++p) {
    const float wr = ps.tw_re[p], wi = ps.tw_im[p];
    for (int64_t q = 0; q < s; ++q) {
      const int64_t i0 = q + s * p, i1 = i0 + s * m;
      const V ar = xr[i0], ai = xi[i0], br = xr[i1], bi = xi[i1];
      const int64_t o = q + s * 2 * p;
      yr[o] = ar + br;
      yi[o] = ai + bi;
      KF_TW_STORE(yr[o + s], yi[o + s], ar - br, ai - bi, wr, wi);
    }
  }
}

template <class V, bool kTw>
void pass_radix4(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const int64_t m = ps.m, s = ps.s;
  for (int64_t p = 0; p < m; ++p) {
    const float* twr = ps.tw_re + 3 * p;
    const float* twi = ps.tw_im + 3 * p;
    for (int64_t q = 0; q < s; ++q) {
      const int64_t i0 = q + s * p, st = s * m;
      const V a0r = xr[i0], a0i = xi[i0];
      const V a1r = xr[i0 + st], a1i = xi[i0 + st];
      const V a2r = xr[i0 + 2 * st], a2i = xi[i0 + 2 * st];
      const V a3r = xr[i0 + 3 * st], a3i = xi[i0 + 3 * st];
      const V t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
      const V t2r = a1r + a3r, t2i = a1i + a3i, t3r = a1r - a3r, t3i = a1i - a3i;
      const int64_t o = q + s * 4 * p;
      yr[o] = t0r + t2r;
      yi[o] = t0i + t2i;
      // y1 = t1 - i t3, y2 = t0 - t2, y3 = t1 + i t3 (forward DFT of length 4).
      KF_TW_STORE(yr[o + s], yi[o + s], t1r + t3i, t1i - t3r, twr[0], twi[0]);
      KF_TW_STORE(yr[o + 2 * s], yi[o + 2 * s], t0r - t2r, t0i - t2i, twr[1], twi[1]);
      KF_TW_STORE(yr[o + 3 * s], yi[o + 3 * s], t1r - t3i, t1i + t3r, twr[2], twi[2]);
    }
  }
}

template <class V, bool kTw>
void pass_radix8(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const int64_t m = ps.m, s = ps.s, st = s * m;
  const float h = 0.70710678118654752440f;  // 1/sqrt(2)
  for (int64_t p = 0; p < m; ++p) {
    const float* twr = ps.tw_re + 7 * p;
    const float* twi = ps.tw_im + 7 * p;
    for (int64_t q = 0; q < s; ++q) {
      const int64_t i0 = q + s * p;
      V br[4], bi[4], cr[4], ci[4];
      KF_UNROLL
      for (int k = 0; k < 4; ++k) {
        const V ar = xr[i0 + k * st], ai = xi[i0 + k * st];
        const V er = xr[i0 + (k + 4) * st], ei = xi[i0 + (k + 4) * st];
        br[k] = ar + er;
        bi[k] = ai + ei;
        cr[k] = ar - er;
        ci[k] = ai - ei;
      }
      // c_k *= exp(-2 pi i k / 8)
      V t = (cr[1] + ci[1]) * h;
      ci[1] = (ci[1] - cr[1]) * h;
      cr[1] = t;
      t = ci[2];
      ci[2] = -cr[2];
      cr[2] = t;
      t = (ci[3] - cr[3]) * h;
      ci[3] = (-ci[3] - cr[3]) * h;
      cr[3] = t;
      const int64_t o = q + s * 8 * p;
      // Two length-4 DFTs: b gives the even outputs, c the odd ones.
      KF_UNROLL
      for (int half = 0; half < 2; ++half) {
        const V* pr = half ? cr : br;
        const V* pi = half ? ci : bi;
        const V t0r = pr[0] + pr[2], t0i = pi[0] + pi[2], t1r = pr[0] - pr[2], t1i = pi[0] - pi[2];
        const V t2r = pr[1] + pr[3], t2i = pi[1] + pi[3], t3r = pr[1] - pr[3], t3i = pi[1] - pi[3];
        const V outr[4] = {t0r + t2r, t1r + t3i, t0r - t2r, t1r - t3i};
        const V outi[4] = {t0i + t2i, t1i - t3r, t0i - t2i, t1i + t3r};
        KF_UNROLL
        for (int j4 = 0; j4 < 4; ++j4) {
          const int j = 2 * j4 + half;
          if (j == 0) {
            yr[o] = outr[0];
            yi[o] = outi[0];
          } else {
            KF_TW_STORE(yr[o + j * s], yi[o + j * s], outr[j4], outi[j4], twr[j - 1], twi[j - 1]);
          }
        }
      }
    }
  }
}

// Forward DFT of length 4 on (r[k * stride], i[k * stride]), in place.
template <class V>
inline void dft4(V* r, V* i, int stride) {
  const V t0r = r[0] + r[2 * stride], t0i = i[0] + i[2 * stride];
  const V t1r = r[0] - r[2 * stride], t1i = i[0] - i[2 * stride];
  const V t2r = r[stride] + r[3 * stride], t2i = i[stride] + i[3 * stride];
  const V t3r = r[stride] - r[3 * stride], t3i = i[stride] - i[3 * stride];
  r[0] = t0r + t2r;
  i[0] = t0i + t2i;
  r[stride] = t1r + t3i;
  i[stride] = t1i - t3r;
  r[2 * stride] = t0r - t2r;
  i[2 * stride] = t0i - t2i;
  r[3 * stride] = t1r - t3i;
  i[3 * stride] = t1i + t3r;
}

// cos and -sin of 2 pi m / 16 for m = 0..9 (the products j1 * k2 of dft16's inner twiddles).
constexpr float kDft16C[10] = {
    1.0f,  0.92387953251128674f,  0.70710678118654752f,  0.38268343236508977f,
    0.0f,  -0.38268343236508977f, -0.70710678118654752f, -0.92387953251128674f,
    -1.0f, -0.92387953251128674f};
constexpr float kDft16S[10] = {
    0.0f,  -0.38268343236508977f, -0.70710678118654752f, -0.92387953251128674f,
    -1.0f, -0.92387953251128674f, -0.70710678118654752f, -0.38268343236508977f,
    0.0f,  0.38268343236508977f};

// One radix-16 butterfly: a DFT of length 16 as 4 x 4 with the inner twiddles
// exp(-2 pi i j1 k2 / 16), of inputs x[k * st], k < 16; output j goes to y[j * os],
// times (tw_re, tw_im)[j - 1] when kTw. The order is the registers' budget: each first-stage
// DFT loads its own 4 inputs, and each second-stage DFT's 4 outputs are stored at once, so
// at most the 32 values between the stages are live (loading all 32 inputs first, then
// storing all 32 outputs, made GCC spill about 30 vectors a butterfly on AVX-512). Kept out of
// line: inlined into a caller's loop, GCC's allocator spilled as much again (12-15% slower).
template <class V, bool kTw>
__attribute__((noinline)) void radix16_butterfly(const V* xr, const V* xi, int64_t st, V* yr, V* yi,
                                                 int64_t os, const float* twr, const float* twi) {
  // After the first stage r[4 * j1 + k2]; the second stage makes it X[j1 + 4 j2] at 4 j1 + j2.
  V r[16], im[16];
  KF_UNROLL
  for (int k2 = 0; k2 < 4; ++k2) {
    V a[4], b[4];
    KF_UNROLL
    for (int k1 = 0; k1 < 4; ++k1) {
      a[k1] = xr[(k2 + 4 * k1) * st];
      b[k1] = xi[(k2 + 4 * k1) * st];
    }
    dft4(a, b, 1);
    r[k2] = a[0];
    im[k2] = b[0];
    KF_UNROLL
    for (int j1 = 1; j1 < 4; ++j1) {
      if (k2 == 0) {
        r[4 * j1] = a[j1];
        im[4 * j1] = b[j1];
      } else {
        const int mm = j1 * k2;
        r[4 * j1 + k2] = a[j1] * kDft16C[mm] - b[j1] * kDft16S[mm];
        im[4 * j1 + k2] = a[j1] * kDft16S[mm] + b[j1] * kDft16C[mm];
      }
    }
  }
  KF_UNROLL
  for (int j1 = 0; j1 < 4; ++j1) {
    dft4(r + 4 * j1, im + 4 * j1, 1);
    KF_UNROLL
    for (int j2 = 0; j2 < 4; ++j2) {
      const int j = j1 + 4 * j2;
      if (j == 0) {
        yr[0] = r[0];
        yi[0] = im[0];
      } else {
        KF_TW_STORE(yr[j * os], yi[j * os], r[4 * j1 + j2], im[4 * j1 + j2], twr[j - 1],
                    twi[j - 1]);
      }
    }
  }
}

// Radix 16, all in registers: one load and one store of the data per pass.
template <class V, bool kTw>
void pass_radix16(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const int64_t m = ps.m, s = ps.s, st = s * m;
  for (int64_t p = 0; p < m; ++p) {
    const float* twr = ps.tw_re + 15 * p;
    const float* twi = ps.tw_im + 15 * p;
    for (int64_t q = 0; q < s; ++q) {
      const int64_t i0 = q + s * p, o = q + s * 16 * p;
      radix16_butterfly<V, kTw>(xr + i0, xi + i0, st, yr + o, yi + o, s, twr, twi);
    }
  }
}

// Odd radix P (prime up to kMaxDirectRadix), using the symmetric pairs k, P-k:
// y_j = A_j - i B_j and y_{P-j} = A_j + i B_j with A from sums, B from differences.
template <class V, int kFixedP>
void pass_odd(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const int P = kFixedP > 0 ? kFixedP : ps.radix;
  const int H = P / 2;
  const int64_t m = ps.m, s = ps.s;
  constexpr int kMaxHalf = kMaxDirectRadix / 2;
  V ur[kMaxHalf], ui[kMaxHalf], vr[kMaxHalf], vi[kMaxHalf];
  for (int64_t p = 0; p < m; ++p) {
    const float* twr = ps.tw_re + (P - 1) * p;
    const float* twi = ps.tw_im + (P - 1) * p;
    for (int64_t q = 0; q < s; ++q) {
      const int64_t i0 = q + s * p, st = s * m;
      const V a0r = xr[i0], a0i = xi[i0];
      V y0r = a0r, y0i = a0i;
      for (int k = 1; k <= H; ++k) {
        const V akr = xr[i0 + k * st], aki = xi[i0 + k * st];
        const V bkr = xr[i0 + (P - k) * st], bki = xi[i0 + (P - k) * st];
        ur[k - 1] = akr + bkr;
        ui[k - 1] = aki + bki;
        vr[k - 1] = akr - bkr;
        vi[k - 1] = aki - bki;
        y0r += ur[k - 1];
        y0i += ui[k - 1];
      }
      const int64_t o = q + s * P * p;
      yr[o] = y0r;
      yi[o] = y0i;
      for (int j = 1; j <= H; ++j) {
        V Ar = a0r, Ai = a0i, Br = V{}, Bi = V{};
        const float* c = ps.cos_tab + (j - 1) * H;
        const float* sn = ps.sin_tab + (j - 1) * H;
        for (int k = 0; k < H; ++k) {
          Ar += ur[k] * c[k];
          Ai += ui[k] * c[k];
          Br += vr[k] * sn[k];
          Bi += vi[k] * sn[k];
        }
        KF_CMUL_STORE(yr[o + j * s], yi[o + j * s], Ar + Bi, Ai - Br, twr[j - 1], twi[j - 1]);
        KF_CMUL_STORE(yr[o + (P - j) * s], yi[o + (P - j) * s], Ar - Bi, Ai + Br, twr[P - j - 1],
                      twi[P - j - 1]);
      }
    }
  }
}

template <class V>
void run_pass(const FftPass& ps, const V* xr, const V* xi, V* yr, V* yi) {
  const bool tw = ps.m > 1;
  switch (ps.radix) {
    case 2:
      tw ? pass_radix2<V, true>(ps, xr, xi, yr, yi) : pass_radix2<V, false>(ps, xr, xi, yr, yi);
      break;
    case 3:
      pass_odd<V, 3>(ps, xr, xi, yr, yi);
      break;
    case 4:
      tw ? pass_radix4<V, true>(ps, xr, xi, yr, yi) : pass_radix4<V, false>(ps, xr, xi, yr, yi);
      break;
    case 5:
      pass_odd<V, 5>(ps, xr, xi, yr, yi);
      break;
    case 7:
      pass_odd<V, 7>(ps, xr, xi, yr, yi);
      break;
    case 8:
      tw ? pass_radix8<V, true>(ps, xr, xi, yr, yi) : pass_radix8<V, false>(ps, xr, xi, yr, yi);
      break;
    case 16:
      tw ? pass_radix16<V, true>(ps, xr, xi, yr, yi) : pass_radix16<V, false>(ps, xr, xi, yr, yi);
      break;
    default:
      pass_odd<V, 0>(ps, xr, xi, yr, yi);
      break;
  }
}

// Forward complex FFT of (re, im), length f.n. The result lands either in
// (re, im) or in the scratch buffers; re/im are updated to point at it, which
// saves the copy after an odd number of Stockham passes. Scratch holds f.scratch vectors.
template <class V>
void complex_forward(const ComplexFftView& f, V*& re, V*& im, V* scratch);

// The same, with the result always back in (re, im).
template <class V>
void complex_forward_inplace(const ComplexFftView& f, V* re, V* im, V* scratch) {
  V* r = re;
  V* i = im;
  complex_forward(f, r, i, scratch);
  if (r != re) {
    for (int64_t k = 0; k < f.n; ++k) {
      re[k] = r[k];
      im[k] = i[k];
    }
  }
}

template <class V>
void complex_forward(const ComplexFftView& f, V*& re, V*& im, V* scratch) {
  const int64_t n = f.n;
  if (f.inner != nullptr) {
    // Bluestein: X_k = c_k * sum_j (x_j c_j) conj(c_{k-j}), a convolution done by FFTs.
    const int64_t cn = f.conv_n;
    V* ar = scratch;
    V* ai = scratch + cn;
    V* inner_scratch = scratch + 2 * cn;
    for (int64_t k = 0; k < n; ++k) {
      KF_CMUL_STORE(ar[k], ai[k], re[k], im[k], f.chirp_re[k], f.chirp_im[k]);
    }
    for (int64_t k = n; k < cn; ++k) ar[k] = ai[k] = V{};
    complex_forward_inplace(*f.inner, ar, ai, inner_scratch);
    // Multiply by the kernel, then inverse FFT as conj(FFT(conj(.))); 1/cn is in the kernel.
    for (int64_t k = 0; k < cn; ++k) {
      V tr, ti;
      KF_CMUL_STORE(tr, ti, ar[k], ai[k], f.kernel_re[k], f.kernel_im[k]);
      ar[k] = tr;
      ai[k] = -ti;
    }
    complex_forward_inplace(*f.inner, ar, ai, inner_scratch);
    for (int64_t k = 0; k < n; ++k) {
      KF_CMUL_STORE(re[k], im[k], ar[k], -ai[k], f.chirp_re[k], f.chirp_im[k]);
    }
    return;
  }
  V* sr = re;
  V* si = im;
  V* dr = scratch;
  V* di = scratch + n;
  for (int i = 0; i < f.n_passes; ++i) {
    run_pass(f.passes[i], sr, si, dr, di);
    V* t = sr;
    sr = dr;
    dr = t;
    t = si;
    si = di;
    di = t;
  }
  re = sr;
  im = si;
}

// The complex FFT of length nc = 16 M as in RealFftView::block_fft. A radix-16
// pass reads (re, im) in natural order and writes block j (outputs j, twiddled
// by w^(j q)) to scratch at j * (M + 1): the spare vector keeps the 16 stores of
// a butterfly, and each block's later passes, off a single L1 set. Then every
// block is transformed on its own, in L1; Z_k ends at (k % 16) * (M + 1) + k / 16
// of (scratch, scratch + 16 (M + 1)). The plain Stockham order instead sweeps
// all nc vectors per pass, from L2 once they outgrow L1.
template <class V>
void blocked_sub_ffts(const RealFftView& f, V* scratch) {
  const int64_t bs = f.block_fft->n + 1;
  V* br = scratch;
  V* bi = scratch + 16 * bs;
  V* sub = bi + 16 * bs;
  for (int j = 0; j < 16; ++j) complex_forward_inplace(*f.block_fft, br + j * bs, bi + j * bs, sub);
}

template <class V>
void complex_forward_blocked(const RealFftView& f, const V* re, const V* im, V* scratch) {
  const FftPass& a = f.block_pass;
  const int64_t m = a.s, bs = m + 1;
  for (int64_t q = 0; q < m; ++q) {
    radix16_butterfly<V, true>(re + q, im + q, m, scratch + q, scratch + 16 * bs + q, bs,
                               a.tw_re + 15 * q, a.tw_im + 15 * q);
  }
  blocked_sub_ffts(f, scratch);
}

// The same transform with its inputs made on the fly: load(q, r, i) fills r[k], i[k] with
// z_(q + k M), k < 16, for q = 0, 1, ..., M - 1 in that order. A caller that builds the inputs
// anyway (framing and windowing) then hands each butterfly 16 values from L1 instead of
// writing all nc of them out and reading them back, from L2 for the long transforms.
template <class V, class Load>
void complex_forward_blocked_loaded(const RealFftView& f, Load& load, V* scratch) {
  const FftPass& a = f.block_pass;
  const int64_t m = a.s, bs = m + 1;
  V r[16], i[16];
  for (int64_t q = 0; q < m; ++q) {
    load(q, r, i);
    radix16_butterfly<V, true>(r, i, 1, scratch + q, scratch + 16 * bs + q, bs, a.tw_re + 15 * q,
                               a.tw_im + 15 * q);
  }
  blocked_sub_ffts(f, scratch);
}

// Whether the blocked order pays: the buffers of one transform (input, output,
// scratch) outgrow a 32 KiB L1.
template <class V>
bool use_blocks(const RealFftView& f) {
  return f.block_fft != nullptr && 4 * f.complex->n * static_cast<int64_t>(sizeof(V)) > 32768;
}

// A real transform with only |X_k| wanted (see real_forward) takes a magnitude function `mag`
// (V(V re, V im)); NoMagnitude asks for the complex X_k.
struct NoMagnitude {};
// |X_k|^2 as `mag`: the even-n split pass hands it 2 X_k, so its result is scaled by 1/4 where a
// magnitude is scaled by 1/2 (both exact powers of two).
struct PowerSpectrum {
  template <class V>
  V operator()(V re, V im) const {
    return re * re + im * im;
  }
};

// Where Z_k lies after the complex transform: index (k & mask) * bm + (k >> shift) of
// (zr, zi); the identity (mask 0, shift 0, bm 0) unless the blocked order ran.
template <class V>
struct ComplexResult {
  const V* zr;
  const V* zi;
  int shift;
  int64_t mask;
  int64_t bm;
};

template <class V>
ComplexResult<V> blocked_result(const RealFftView& f, const V* scratch) {
  const int64_t bm = f.block_fft->n + 1;
  return {scratch, scratch + 16 * bm, 4, 15, bm};
}

// The even-n split pass: X_k, k <= n/2, from the complex transform Z of the packed input.
// `bins`: with `mag`, only |X_k| for k < bins is needed (a filterbank that ends below Nyquist);
// the magnitudes above are left unwritten.
template <class V, class Mag>
void real_split(const RealFftView& f, const ComplexResult<V>& z, V* xr, V* xi, Mag mag,
                int64_t bins) {
  constexpr bool kMag = !std::is_same<Mag, NoMagnitude>::value;
  const V* zr = z.zr;
  const V* zi = z.zi;
  const int shift = z.shift;
  const int64_t mask = z.mask, bm = z.bm;
  const int64_t h = f.n / 2;
  const V half = splat<V>(0.5f);
  if constexpr (kMag) {
    xr[0] = mag(zr[0] + zi[0], V{});
    xr[h] = mag(zr[0] - zi[0], V{});
  } else {
    xr[0] = zr[0] + zi[0];
    xi[0] = V{};
    xr[h] = zr[0] - zi[0];
    xi[h] = V{};
  }
  // X_k and X_(h-k) from one pair: with E = (Z_k + conj Z_(h-k)) / 2,
  // O = -i (Z_k - conj Z_(h-k)) / 2, X_k = E + w^k O and X_(h-k) = conj(E - w^k O).
  // er..oi below are 2E and 2O; the halving is exact, so it can come last.
  // Pairs [1, k_pair) need X_k only (X_(h-k) >= bins), [k_pair, k_end) both; a loop per range
  // keeps the per-pair code free of tests.
  const int64_t k_end = bins <= h / 2 ? bins : h / 2 + 1;
  const int64_t k_pair = bins > h ? 1 : (h - bins + 1 < k_end ? h - bins + 1 : k_end);
  auto pair = [&](int64_t k, auto both) {
    const int64_t a = (k & mask) * bm + (k >> shift);
    const int64_t b = ((h - k) & mask) * bm + ((h - k) >> shift);
    const V ar = zr[a], ai = zi[a], br = zr[b], bi = zi[b];
    const V er = ar + br, ei = ai - bi, orr = ai + bi, oi = br - ar;
    const float wr = f.split_re[k], wi = f.split_im[k];
    const V tr = orr * wr - oi * wi, ti = orr * wi + oi * wr;
    if constexpr (kMag) {
      constexpr float kScale = std::is_same<Mag, PowerSpectrum>::value ? 0.25f : 0.5f;
      const V scale = splat<V>(kScale);
      xr[k] = mag(er + tr, ei + ti) * scale;
      // |conj(z)| = |z|
      if (decltype(both)::value && 2 * k < h) xr[h - k] = mag(er - tr, ei - ti) * scale;
    } else {
      xr[k] = (er + tr) * half;
      xi[k] = (ei + ti) * half;
      if (2 * k < h) {
        xr[h - k] = (er - tr) * half;
        xi[h - k] = (ti - ei) * half;
      }
    }
  };
  for (int64_t k = 1; k < k_pair; ++k) pair(k, std::false_type{});
  for (int64_t k = k_pair; k < k_end; ++k) pair(k, std::true_type{});
}

// Forward real FFT. Input packed in (zr, zi): even n holds x[2j] + i x[2j+1]
// (n/2 entries), odd n holds x[j] + 0i (n entries). Output X_k, k <= n/2, in
// (xr, xi), which must not alias z or scratch (z may be clobbered). The imaginary parts at DC
// and Nyquist are 0. With a magnitude function `mag` (V(V re, V im)), only |X_k|
// is written, to xr: the split pass and the magnitude share one trip through the spectrum.
template <class V, class Mag = NoMagnitude>
void real_forward(const RealFftView& f, V* zr, V* zi, V* xr, V* xi, V* scratch, Mag mag = {},
                  int64_t bins = INT64_MAX) {
  constexpr bool kMag = !std::is_same<Mag, NoMagnitude>::value;
  const int64_t n = f.n;
  if (!f.even) {
    complex_forward(*f.complex, zr, zi, scratch);
    for (int64_t k = 0; k <= n / 2; ++k) {
      if constexpr (kMag) {
        xr[k] = mag(zr[k], zi[k]);
      } else {
        xr[k] = zr[k];
        xi[k] = zi[k];
      }
    }
    return;
  }
  if (use_blocks<V>(f)) {
    complex_forward_blocked(f, zr, zi, scratch);
    real_split(f, blocked_result<V>(f, scratch), xr, xi, mag, bins);
  } else {
    complex_forward(*f.complex, zr, zi, scratch);
    real_split(f, ComplexResult<V>{zr, zi, 0, 0, 0}, xr, xi, mag, bins);
  }
}

// real_forward for even n where use_blocks holds, its packed input made by `load` (see
// complex_forward_blocked_loaded) instead of read from (zr, zi).
template <class V, class Load, class Mag = NoMagnitude>
void real_forward_loaded(const RealFftView& f, Load& load, V* xr, V* xi, V* scratch, Mag mag = {},
                         int64_t bins = INT64_MAX) {
  complex_forward_blocked_loaded(f, load, scratch);
  real_split(f, blocked_result<V>(f, scratch), xr, xi, mag, bins);
}

// Inverse real FFT, normalised so real_inverse(real_forward(x)) == x (as numpy's
// irfft). Input X_k, k <= n/2 (imaginary parts at DC and Nyquist are ignored);
// output packed as real_forward's input. xr/xi are clobbered for odd n.
template <class V>
void real_inverse(const RealFftView& f, V* xr, V* xi, V* zr, V* zi, V* scratch) {
  const int64_t n = f.n;
  const int64_t nc = f.complex->n;
  if (f.even) {
    const int64_t h = n / 2;
    const V half = splat<V>(0.5f);
    for (int64_t k = 0; k < h; ++k) {
      const V ar = xr[k], ai = (k == 0) ? V{} : xi[k];
      const V br = xr[h - k], bi = (k == 0) ? V{} : xi[h - k];
      // E = (X_k + conj X_{h-k}) / 2, O = (X_k - conj X_{h-k}) conj(w^k) / 2, Z = E + iO.
      const V er = (ar + br) * half, ei = (ai - bi) * half;
      const V dr = (ar - br) * half, di = (ai + bi) * half;
      const float wr = f.split_re[k], wi = -f.split_im[k];
      const V orr = dr * wr - di * wi, oi = dr * wi + di * wr;
      zr[k] = er - oi;
      zi[k] = -(ei + orr);  // conjugated for the inverse-by-forward trick
    }
  } else {
    // Rebuild the full Hermitian spectrum (conjugated), DC imaginary part dropped.
    zr[0] = xr[0];
    zi[0] = V{};
    for (int64_t k = 1; k <= n / 2; ++k) {
      zr[k] = xr[k];
      zi[k] = -xi[k];
      zr[n - k] = xr[k];
      zi[n - k] = xi[k];
    }
  }
  complex_forward_inplace(*f.complex, zr, zi, scratch);
  const V scale = splat<V>(1.0f / static_cast<float>(nc));
  for (int64_t k = 0; k < nc; ++k) {
    zr[k] = zr[k] * scale;
    zi[k] = -zi[k] * scale;
  }
}

#undef KF_CMUL_STORE
#undef KF_TW_STORE
#undef KF_UNROLL
