// The GPU front end, written once as per-block PHASES.
//
// A phase is a function of (params, block state, thread index t, block size T,
// shared-memory pointers). Inside one phase a thread writes only elements no
// other thread of its block reads or writes in that phase; phases are separated
// by a block barrier. A driver (the *_block templates below) runs the phases in
// order through an executor `ex`:
//   - on the GPU (kernels.cu) ex.run(f) is `f(threadIdx.x); __syncthreads();`;
//   - in the host emulation (emulation.h) ex.run(f) calls f for every thread of
//     the block, one after the other, in a chosen order.
// Both compile this same code (KF_HD), with the same launch geometry and the
// same shared-memory layout, so the emulation is the kernel, run serially.
//
// Per block, the fused kernel loops over items (one item = `frames_per_item`
// consecutive frames of one (example, channel) signal):
//   load      frames -> window -> packed complex input (and the Bluestein chirp)
//   passes    Stockham radix passes, ping-pong between two buffers per frame
//  [kernel    Bluestein: times the chirp kernel, conjugated; then passes again]
//   spectrum  split pass (even n_fft) -> complex output, or |X| or |X|^2 (and phase)
//   features  sparse filterbank -> dB (10 or 20 log10) -> output; per-thread max of the dB
//  [reduce    tree max over the block, one atomicMax per item on the example's key]
// then, for dB, a clamp kernel applies kapre's per-example dynamic range.
#pragma once

#include "params.h"

#if defined(__CUDA_ARCH__)
#define KF_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define KF_UNROLL
#else
#define KF_UNROLL _Pragma("GCC unroll 16")
#endif

namespace kapre_fast {
namespace gpu {

// ---- memory helpers (a plain 8-byte access on the GPU; memcpy on the host) ----

KF_HD KF_INLINE Cf load_pair(const float* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Cf*>(p);
#else
  Cf r;
  std::memcpy(&r, p, sizeof r);
  return r;
#endif
}

KF_HD KF_INLINE void store_pair(float* p, Cf v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Cf*>(p) = v;
#else
  std::memcpy(p, &v, sizeof v);
#endif
}

KF_HD KF_INLINE bool aligned8(const float* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 7u) == 0;
}

KF_HD KF_INLINE void atomic_max_key(int32_t* where, int32_t key) {
#if defined(__CUDA_ARCH__)
  atomicMax(where, key);
#else
  if (key > *where) *where = key;
#endif
}

// ---- butterflies: a[0..R) in, R outputs in natural order out (before twiddles) ----

KF_HD KF_INLINE void dft4(Cf& a0, Cf& a1, Cf& a2, Cf& a3) {
  const Cf t0 = add(a0, a2), t1 = sub(a0, a2), t2 = add(a1, a3), t3 = sub(a1, a3);
  a0 = add(t0, t2);
  a1 = cf(t1.x + t3.y, t1.y - t3.x);  // t1 - i t3
  a2 = sub(t0, t2);
  a3 = cf(t1.x - t3.y, t1.y + t3.x);  // t1 + i t3
}

KF_HD KF_INLINE void butterfly8(Cf* a) {
  const float h = 0.70710678118654752f;  // 1/sqrt(2)
  Cf b[4], c[4];
  KF_UNROLL
  for (int k = 0; k < 4; ++k) {
    b[k] = add(a[k], a[k + 4]);
    c[k] = sub(a[k], a[k + 4]);
  }
  // c_k *= exp(-2 pi i k / 8)
  c[1] = cf((c[1].x + c[1].y) * h, (c[1].y - c[1].x) * h);
  c[2] = cf(c[2].y, -c[2].x);
  c[3] = cf((c[3].y - c[3].x) * h, (-c[3].y - c[3].x) * h);
  dft4(b[0], b[1], b[2], b[3]);  // even outputs
  dft4(c[0], c[1], c[2], c[3]);  // odd outputs
  KF_UNROLL
  for (int j = 0; j < 4; ++j) {
    a[2 * j] = b[j];
    a[2 * j + 1] = c[j];
  }
}

// 16 = 4 x 4: DFT4 over k1, inner twiddles exp(-2 pi i j1 k2 / 16), DFT4 over k2.
KF_HD KF_INLINE void butterfly16(Cf* a) {
  // cos and -sin of 2 pi m / 16 for the products m = j1 * k2 (0..9).
  const float kc[10] = {1.0f,  0.92387953251128674f,  0.70710678118654752f,  0.38268343236508977f,
                        0.0f,  -0.38268343236508977f, -0.70710678118654752f, -0.92387953251128674f,
                        -1.0f, -0.92387953251128674f};
  const float ks[10] = {0.0f,  -0.38268343236508977f, -0.70710678118654752f, -0.92387953251128674f,
                        -1.0f, -0.92387953251128674f, -0.70710678118654752f, -0.38268343236508977f,
                        0.0f,  0.38268343236508977f};
  KF_UNROLL
  for (int k2 = 0; k2 < 4; ++k2) dft4(a[k2], a[4 + k2], a[8 + k2], a[12 + k2]);
  KF_UNROLL
  for (int j1 = 1; j1 < 4; ++j1) {
    KF_UNROLL
    for (int k2 = 1; k2 < 4; ++k2) {
      a[4 * j1 + k2] = cmul(a[4 * j1 + k2], cf(kc[j1 * k2], ks[j1 * k2]));
    }
  }
  KF_UNROLL
  for (int j1 = 0; j1 < 4; ++j1) dft4(a[4 * j1], a[4 * j1 + 1], a[4 * j1 + 2], a[4 * j1 + 3]);
  Cf o[16];
  KF_UNROLL
  for (int j = 0; j < 16; ++j) o[j] = a[4 * (j & 3) + (j >> 2)];  // X[j1 + 4 j2] sits at 4 j1 + j2
  KF_UNROLL
  for (int j = 0; j < 16; ++j) a[j] = o[j];
}

// Odd radix P <= kDirectRadix from the symmetric pairs k, P - k:
// y_j = A_j - i B_j, y_{P-j} = A_j + i B_j (A from sums u, B from differences v).
template <int kP>  // 3, 5, 7, or 0: P = radix at run time
KF_HD KF_INLINE void butterfly_odd(Cf* a, int radix, const float* cos_tab, const float* sin_tab) {
  constexpr int kCap = kP > 0 ? kP : kDirectRadix;
  const int P = kP > 0 ? kP : radix;
  const int H = P / 2;
  Cf u[kCap / 2], v[kCap / 2], o[kCap];
  Cf y0 = a[0];
  KF_UNROLL
  for (int k = 1; k <= H; ++k) {
    u[k - 1] = add(a[k], a[P - k]);
    v[k - 1] = sub(a[k], a[P - k]);
    y0 = add(y0, u[k - 1]);
  }
  o[0] = y0;
  KF_UNROLL
  for (int j = 1; j <= H; ++j) {
    Cf A = a[0], B = cf(0.0f, 0.0f);
    const float* c = cos_tab + (j - 1) * H;
    const float* s = sin_tab + (j - 1) * H;
    KF_UNROLL
    for (int k = 0; k < H; ++k) {
      A = cf(fma_(u[k].x, c[k], A.x), fma_(u[k].y, c[k], A.y));
      B = cf(fma_(v[k].x, s[k], B.x), fma_(v[k].y, s[k], B.y));
    }
    o[j] = cf(A.x + B.y, A.y - B.x);
    o[P - j] = cf(A.x - B.y, A.y + B.x);
  }
  KF_UNROLL
  for (int j = 0; j < P; ++j) a[j] = o[j];
}

// The butterfly (p, q) of an odd radix R <= kDirectRadix known only at run time (the rare
// prime factors 11 .. 31 of a length), computed as butterfly_odd does, with the same operations
// in the same order (the same bits), but without its run-time indexed arrays a[R], u, v and o[R],
// which the compiler can only place in local memory: they made a 752-byte stack frame per
// thread in both hot kernels, reserved for every resident thread at the first launch whatever
// the radix. Here the inputs are read again from the pass's buffer (shared or global memory)
// for each output pair, so that pass reads R (R - 1) / 2 values per butterfly instead of R,
// and each output is written to y as soon as it is known. Fixed-size arrays in registers were
// tried: 127 registers for the whole kernel (half the occupancy of every call).
KF_HD KF_INLINE void odd_butterfly_direct(const PassDesc& ps, const Cf* twiddles, const float* trig,
                                          const Cf* xs, Cf* ys, int R, int s, int span, int p,
                                          int q) {
  const int H = R / 2;
  const Cf* in = xs + 0;
  const int first = q + s * p;
  const Cf a0 = in[pidx(first)];
  Cf y0 = a0;
  for (int k = 1; k <= H; ++k) {
    y0 = add(y0, add(in[pidx(first + k * span)], in[pidx(first + (R - k) * span)]));
  }
  const int o = q + s * R * p;
  const Cf* tw = twiddles + ps.twiddle + p * (R - 1);
  const bool last = ps.m == 1;  // the last pass: every twiddle is 1
  ys[pidx(o)] = y0;
  const float* cos_tab = trig + ps.trig;
  const float* sin_tab = cos_tab + H * H;
  for (int j = 1; j <= H; ++j) {
    Cf A = a0, B = cf(0.0f, 0.0f);
    const float* c = cos_tab + (j - 1) * H;
    const float* sn = sin_tab + (j - 1) * H;
    for (int k = 0; k < H; ++k) {
      const Cf lo = in[pidx(first + (k + 1) * span)], hi = in[pidx(first + (R - 1 - k) * span)];
      const Cf u = add(lo, hi), v = sub(lo, hi);
      A = cf(fma_(u.x, c[k], A.x), fma_(u.y, c[k], A.y));
      B = cf(fma_(v.x, sn[k], B.x), fma_(v.y, sn[k], B.y));
    }
    const Cf lo = cf(A.x + B.y, A.y - B.x), hi = cf(A.x - B.y, A.y + B.x);
    ys[pidx(o + j * s)] = last ? lo : cmul(lo, tw[j - 1]);
    ys[pidx(o + (R - j) * s)] = last ? hi : cmul(hi, tw[R - j - 1]);
  }
}

// One Stockham pass over `frames` frames: butterfly (p, q) reads x[q + s p + k s m]
// and writes y[q + s (R p + j)] times w^(j p). Each output has one writer.
template <int kR>  // 2, 3, 4, 5, 7, 8, 16, or 0: an odd radix given at run time
KF_HD KF_INLINE void pass_phase(const PassDesc& ps, const Cf* twiddles, const float* trig,
                                const Cf* x, Cf* y, int frames, int stride, int t, int T) {
  constexpr int kCap = kR > 0 ? kR : kDirectRadix;
  const int R = kR > 0 ? kR : ps.radix;
  const int s = ps.s, span = ps.s * ps.m;  // span = n / R butterflies per frame
  const int total = frames * span;
  for (int w = t; w < total; w += T) {
    const int f = divide(w, span, ps.span_shift), r = w - f * span;
    const int p = divide(r, s, ps.s_shift), q = r - p * s;
    const Cf* xs = x + f * stride;
    Cf* ys = y + f * stride;
    if constexpr (kR == 0) {
      odd_butterfly_direct(ps, twiddles, trig, xs, ys, R, s, span, p, q);
    } else {
      Cf a[kCap];
      KF_UNROLL
      for (int k = 0; k < R; ++k) a[k] = xs[pidx(q + s * p + k * span)];
      if constexpr (kR == 2) {
        const Cf d = sub(a[0], a[1]);
        a[0] = add(a[0], a[1]);
        a[1] = d;
      } else if constexpr (kR == 4) {
        dft4(a[0], a[1], a[2], a[3]);
      } else if constexpr (kR == 8) {
        butterfly8(a);
      } else if constexpr (kR == 16) {
        butterfly16(a);
      } else {
        const int H = R / 2;
        butterfly_odd<kR>(a, R, trig + ps.trig, trig + ps.trig + H * H);
      }
      const int o = q + s * R * p;
      if (ps.m == 1) {  // the last pass: every twiddle is 1
        KF_UNROLL
        for (int j = 0; j < R; ++j) ys[pidx(o + j * s)] = a[j];
      } else {
        const Cf* tw = twiddles + ps.twiddle + p * (R - 1);
        ys[pidx(o)] = a[0];
        KF_UNROLL
        for (int j = 1; j < R; ++j) ys[pidx(o + j * s)] = cmul(a[j], tw[j - 1]);
      }
    }
  }
}

KF_HD KF_INLINE void any_pass_phase(const PassDesc& ps, const Cf* twiddles, const float* trig,
                                    const Cf* x, Cf* y, int frames, int stride, int t, int T) {
  switch (ps.radix) {
    case 2:
      pass_phase<2>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 3:
      pass_phase<3>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 4:
      pass_phase<4>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 5:
      pass_phase<5>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 7:
      pass_phase<7>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 8:
      pass_phase<8>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    case 16:
      pass_phase<16>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
    default:
      pass_phase<0>(ps, twiddles, trig, x, y, frames, stride, t, T);
      break;
  }
}

// ---- the fused front end's phases ----

// Windowed sample i of the frame starting at `start` (zero outside the audio and past n_used).
KF_HD KF_INLINE float sample(const FrontEndParams& p, const float* sig, int64_t start, int i) {
  const int64_t at = start + i;
  if (i >= p.n_used || at < 0 || at >= p.time) return 0.0f;
  return sig[at * p.st] * p.window[i];
}

// Frames f0 .. f0 + F - 1 of `sig` into buffer 0, packed for the complex FFT:
// even n_fft: z_j = x_2j + i x_2j+1; odd: z_j = x_j. Bluestein multiplies by the
// chirp and zero-fills up to the convolution length. Frames past the end are zeros.
KF_HD KF_INLINE void load_phase(const FrontEndParams& p, const float* sig, int64_t f0, Cf* buf,
                                int t, int T) {
  const int L = p.fft.n;
  const int total = p.frames_per_item * L;
  for (int w = t; w < total; w += T) {
    const int fi = divide(w, L, p.fft.n_shift), j = w - fi * L;
    const int64_t frame = f0 + fi;
    Cf z = cf(0.0f, 0.0f);
    if (frame < p.n_frames && j < p.nc) {
      const int64_t start = frame * p.hop_length - p.pad_begin;
      if (p.even) {
        const int i = 2 * j;
        // Interior frame of unit-stride audio at an 8-byte boundary: one 64-bit load of
        // two samples (the window table is 16-byte aligned, i is even).
        if (p.st == 1 && start >= 0 && start + p.n_used <= p.time && i + 1 < p.n_used &&
            aligned8(sig + start)) {
          const Cf s2 = load_pair(sig + start + i);
          const Cf w2 = load_pair(p.window + i);
          z = cf(s2.x * w2.x, s2.y * w2.y);
        } else {
          z = cf(sample(p, sig, start, i), sample(p, sig, start, i + 1));
        }
      } else {
        z.x = sample(p, sig, start, j);
      }
      if (p.bluestein) z = cmul(z, p.chirp[j]);
    }
    buf[fi * p.buf_stride + pidx(j)] = z;
  }
}

// Bluestein: times the kernel (FFT of the conjugate chirp, 1/n included), conjugated,
// so that a second forward FFT computes the inverse transform (conjugated).
KF_HD KF_INLINE void kernel_phase(const FrontEndParams& p, Cf* buf, int t, int T) {
  const int L = p.fft.n;
  const int total = p.frames_per_item * L;
  for (int w = t; w < total; w += T) {
    const int fi = divide(w, L, p.fft.n_shift), k = w - fi * L;
    Cf* v = buf + fi * p.buf_stride + pidx(k);
    const Cf r = cmul(*v, p.kernel[k]);
    *v = cf(r.x, -r.y);
  }
}

// Z_k of the complex FFT of length nc from the pass output z.
KF_HD KF_INLINE Cf fft_value(const FrontEndParams& p, const Cf* z, int k) {
  const Cf v = z[pidx(k)];
  if (!p.bluestein) return v;
  return cmul(cf(v.x, -v.y), p.chirp[k]);  // undo the conjugation, times the chirp
}

// X_k, k <= n_fft / 2, of the real FFT.
KF_HD KF_INLINE Cf spectrum_bin(const FrontEndParams& p, const Cf* z, int k) {
  if (!p.even) return fft_value(p, z, k);
  const int h = p.nc;
  if (k == 0 || k == h) {
    const Cf a = fft_value(p, z, 0);
    return cf(k == 0 ? a.x + a.y : a.x - a.y, 0.0f);
  }
  // E = (Z_k + conj Z_{h-k}) / 2, O = -i (Z_k - conj Z_{h-k}) / 2, X_k = E + w^k O.
  const Cf a = fft_value(p, z, k), b = fft_value(p, z, h - k);
  const float er = (a.x + b.x) * 0.5f, ei = (a.y - b.y) * 0.5f;
  const float orr = (a.y + b.y) * 0.5f, oi = (b.x - a.x) * 0.5f;
  const Cf w = p.split[k];
  return cf(er + fma_(orr, w.x, -(oi * w.y)), ei + fma_(orr, w.y, oi * w.x));
}

// Complex output is written here; otherwise |X_k| goes to `mag` (the other buffer, as
// floats: 2 * buf_stride per frame) and the phase, for mag/phase, to the output.
KF_HD KF_INLINE void spectrum_phase(const FrontEndParams& p, int64_t b, int64_t c, int64_t f0,
                                    const Cf* z, float* mag, int t, int T) {
  const int nf = p.n_freq;
  const int total = p.frames_per_item * nf;
  const int64_t base = b * p.osb + c * p.osc;
  for (int w = t; w < total; w += T) {
    const int fi = w / nf, k = w - fi * nf;
    const int64_t frame = f0 + fi;
    if (frame >= p.n_frames) continue;
    const Cf X = spectrum_bin(p, z + fi * p.buf_stride, k);
    const int64_t at = base + frame * p.osf + k * p.osk;
    if (p.output == kComplex) {
      store_pair(p.out + at, X);
      continue;
    }
    if (p.output == kMagPhase) p.phase[at] = atan2_(X.y, X.x);
    const float power = fma_(X.x, X.x, X.y * X.y);
    mag[fi * 2 * p.buf_stride + k] = p.power == 2 ? power : sqrt_(power);
  }
}

// Filterbank (or |X| itself), dB, output; red[t] gets this thread's largest dB value.
KF_HD KF_INLINE void feature_phase(const FrontEndParams& p, int64_t b, int64_t c, int64_t f0,
                                   const float* mag, float* red, int t, int T) {
  const int nk = p.n_features;
  const int total = p.frames_per_item * nk;
  const int64_t base = b * p.osb + c * p.osc;
  float m = -kInf;
  for (int w = t; w < total; w += T) {
    const int fi = w / nk, i = w - fi * nk;
    const int64_t frame = f0 + fi;
    if (frame >= p.n_frames) continue;
    const float* row = mag + fi * 2 * p.buf_stride;
    float v;
    if (p.n_bands > 0) {
      const int32_t* band = p.bands + 3 * i;
      const float* bins = row + band[0];
      const float* wt = p.weights + band[2];
      float acc = 0.0f;
      for (int j = 0; j < band[1]; ++j) acc = fma_(bins[j], wt[j], acc);
      v = acc;
    } else {
      v = row[i];
    }
    if (p.decibel) {
      const float db = ten_log10(v < p.amin ? p.amin : v);
      v = (p.db_scale != 1.0f ? db * p.db_scale : db) - p.db_offset;  // NaN stays NaN
      m = nan_max(m, v);
    }
    p.out[base + frame * p.osf + i * p.osk] = v;
  }
  if (p.decibel) red[t] = m;
}

// One step of the block's tree max; the last step (s == 1) publishes it for example b.
KF_HD KF_INLINE void reduce_phase(const FrontEndParams& p, int64_t b, float* red, int s, int t) {
  if (t >= s) return;
  const float m = nan_max(red[t], red[t + s]);
  red[t] = m;
  if (s == 1) atomic_max_key(p.example_max + b, ordered_key(m));
}

// ---- the inverse STFT's phases (tf.signal.inverse_stft: irfft, window, overlap-add) ----

// X_k of frame `frame` of signal (b, c); the imaginary parts of DC and Nyquist are ignored.
KF_HD KF_INLINE Cf spectrum_in(const FrontEndParams& p, const float* row, int k) {
  const Cf v = load_pair(row + k * p.isk);
  return (k == 0 || 2 * k == p.n_fft) ? cf(v.x, 0.0f) : v;
}

// The conjugated input of the inverse-by-forward transform, packed as the forward load packs:
// even n_fft: Z_j = conj(E_j + i O_j) from X_j and X_{h-j} (the split pass run backwards);
// odd n_fft: the conjugated full Hermitian spectrum. Bluestein multiplies by the chirp.
KF_HD KF_INLINE void inverse_load_phase(const FrontEndParams& p, int64_t b, int64_t c, int64_t f0,
                                        Cf* buf, int t, int T) {
  const int L = p.fft.n;
  const int total = p.frames_per_item * L;
  for (int w = t; w < total; w += T) {
    const int fi = divide(w, L, p.fft.n_shift), j = w - fi * L;
    const int64_t frame = f0 + fi;
    Cf z = cf(0.0f, 0.0f);
    if (frame < p.n_frames && j < p.nc) {
      const float* row = p.spectrum + b * p.isb + c * p.isc + frame * p.isf;
      if (p.even) {
        const Cf a = spectrum_in(p, row, j), bb = spectrum_in(p, row, p.nc - j);
        const float er = (a.x + bb.x) * 0.5f, ei = (a.y - bb.y) * 0.5f;
        const float dr = (a.x - bb.x) * 0.5f, di = (a.y + bb.y) * 0.5f;
        const Cf ws = p.split[j];
        const float wr = ws.x, wi = -ws.y;  // conj(w^j)
        const float orr = fma_(dr, wr, -(di * wi)), oi = fma_(dr, wi, di * wr);
        z = cf(er - oi, -(ei + orr));
      } else if (j == 0) {
        z = cf(spectrum_in(p, row, 0).x, 0.0f);
      } else if (2 * j <= p.n_fft) {
        const Cf v = spectrum_in(p, row, j);
        z = cf(v.x, -v.y);
      } else {
        z = spectrum_in(p, row, p.n_fft - j);
      }
      if (p.bluestein) z = cmul(z, p.chirp[j]);
    }
    buf[fi * p.buf_stride + pidx(j)] = z;
  }
}

// Samples i < n_used of each frame (conjugated back, scaled by 1/nc), times the synthesis
// window, into the frame buffer.
KF_HD KF_INLINE void inverse_store_phase(const FrontEndParams& p, int64_t sig, int64_t f0,
                                         const Cf* z, int t, int T) {
  const int n = p.n_used;
  const int total = p.frames_per_item * n;
  for (int w = t; w < total; w += T) {
    const int fi = w / n, i = w - fi * n;
    const int64_t frame = f0 + fi;
    if (frame >= p.n_frames) continue;
    const Cf* zf = z + fi * p.buf_stride;
    float x;
    if (p.even) {
      const Cf v = fft_value(p, zf, i >> 1);
      x = (i & 1) ? -v.y * p.inverse_scale : v.x * p.inverse_scale;
    } else {
      x = fft_value(p, zf, i).x * p.inverse_scale;
    }
    p.frames[(sig * p.n_frames + frame) * n + i] = x * p.window[i];
  }
}

// Overlap-add, gathered: output sample t sums its frames in increasing order, from 0.0f (the
// order the CPU core adds them in).
KF_HD KF_INLINE void overlap_add_phase(const FrontEndParams& p, int64_t block, int64_t grid, int t,
                                       int T) {
  const int64_t len = p.out_length, n = p.n_used, hop = p.hop_length;
  const int64_t total = p.batch * p.channels * len;
  for (int64_t e = block * T + t; e < total; e += grid * T) {
    const int64_t sig = e / len, at = e - sig * len;
    const int64_t b = sig / p.channels, c = sig - b * p.channels;
    int64_t last = at / hop;
    if (last > p.n_frames - 1) last = p.n_frames - 1;
    const int64_t first = at >= n ? (at - n) / hop + 1 : 0;
    const float* frames = p.frames + sig * p.n_frames * n;
    float acc = 0.0f;
    for (int64_t f = first; f <= last; ++f) acc += frames[f * n + (at - f * hop)];
    p.out[b * p.osb + c * p.osc + at * p.ost] = acc;
  }
}

// ---- block drivers: the same control flow for every thread (uniform branches only) ----

// The two ping-pong FFT buffers, picked by a select: an array of two pointers indexed by the
// run-time `cur` would be placed in local memory (a 16-byte stack frame per thread).
struct BufferPair {
  Cf* b0;
  Cf* b1;
  KF_HD KF_INLINE Cf* operator[](int i) const { return i ? b1 : b0; }
};

template <class Exec>
KF_HD KF_INLINE int fft_passes(Exec& ex, const FrontEndParams& p, const BufferPair& buf, int cur) {
  const int T = ex.threads();
  for (int i = 0; i < p.fft.n_passes; ++i) {
    const PassDesc& ps = p.fft.pass[i];
    const Cf* x = buf[cur];
    Cf* y = buf[cur ^ 1];
    ex.run([&](int t) {
      any_pass_phase(ps, p.twiddles, p.trig, x, y, p.frames_per_item, p.buf_stride, t, T);
    });
    cur ^= 1;
  }
  return cur;
}

// Shared memory of the fused kernel: [2 * frames_per_item * buf_stride complex, unless the
// buffers are in global workspace][threads floats for the reduction].
KF_HD KF_INLINE std::size_t frontend_smem_bytes(const FrontEndParams& p, bool global) {
  const std::size_t buffers =
      global ? 0 : 2 * static_cast<std::size_t>(p.frames_per_item) * p.buf_stride * sizeof(Cf);
  return buffers + static_cast<std::size_t>(p.threads) * sizeof(float);
}

template <class Exec>
KF_HD void frontend_block(Exec& ex, const FrontEndParams& p, int64_t block, int64_t grid,
                          unsigned char* smem) {
  const int T = ex.threads();
  Cf* ws;
  float* red;
  if (p.global_ws != nullptr) {
    ws = p.global_ws + block * p.ws_block_stride;
    red = reinterpret_cast<float*>(smem);
  } else {
    ws = reinterpret_cast<Cf*>(smem);
    red = reinterpret_cast<float*>(ws + 2 * p.frames_per_item * p.buf_stride);
  }
  const BufferPair buf{ws, ws + p.frames_per_item * p.buf_stride};
  for (int64_t item = block; item < p.n_items; item += grid) {
    const int64_t sig = item / p.items_per_signal;
    const int64_t f0 = (item - sig * p.items_per_signal) * p.frames_per_item;
    const int64_t b = sig / p.channels, c = sig - b * p.channels;
    const float* audio = p.audio + b * p.sb + c * p.sc;
    ex.run([&](int t) { load_phase(p, audio, f0, buf[0], t, T); });
    int cur = fft_passes(ex, p, buf, 0);
    if (p.bluestein) {
      Cf* const z = buf[cur];
      ex.run([&](int t) { kernel_phase(p, z, t, T); });
      cur = fft_passes(ex, p, buf, cur);
    }
    const Cf* const z = buf[cur];
    float* const mag = reinterpret_cast<float*>(buf[cur ^ 1]);
    ex.run([&](int t) { spectrum_phase(p, b, c, f0, z, mag, t, T); });
    if (p.output == kComplex) continue;
    ex.run([&](int t) { feature_phase(p, b, c, f0, mag, red, t, T); });
    if (!p.decibel) continue;
    for (int s = T / 2; s >= 1; s /= 2) {
      ex.run([&](int t) { reduce_phase(p, b, red, s, t); });
    }
  }
}

// The inverse STFT's first kernel: spectra -> windowed frames in the frame buffer.
template <class Exec>
KF_HD void istft_block(Exec& ex, const FrontEndParams& p, int64_t block, int64_t grid,
                       unsigned char* smem) {
  const int T = ex.threads();
  Cf* const ws = p.global_ws != nullptr ? p.global_ws + block * p.ws_block_stride
                                        : reinterpret_cast<Cf*>(smem);
  const BufferPair buf{ws, ws + p.frames_per_item * p.buf_stride};
  for (int64_t item = block; item < p.n_items; item += grid) {
    const int64_t sig = item / p.items_per_signal;
    const int64_t f0 = (item - sig * p.items_per_signal) * p.frames_per_item;
    const int64_t b = sig / p.channels, c = sig - b * p.channels;
    ex.run([&](int t) { inverse_load_phase(p, b, c, f0, buf[0], t, T); });
    int cur = fft_passes(ex, p, buf, 0);
    if (p.bluestein) {
      Cf* const z = buf[cur];
      ex.run([&](int t) { kernel_phase(p, z, t, T); });
      cur = fft_passes(ex, p, buf, cur);
    }
    const Cf* const z = buf[cur];
    ex.run([&](int t) { inverse_store_phase(p, sig, f0, z, t, T); });
  }
}

// The inverse STFT's second kernel: overlap-add of the frames into the waveform.
template <class Exec>
KF_HD void overlap_add_block(Exec& ex, const FrontEndParams& p, int64_t block, int64_t grid) {
  const int T = ex.threads();
  ex.run([&](int t) { overlap_add_phase(p, block, grid, t, T); });
}

// Every example's maximum starts at -inf.
template <class Exec>
KF_HD void init_max_block(Exec& ex, const FrontEndParams& p, int64_t block, int64_t grid) {
  const int T = ex.threads();
  ex.run([&](int t) {
    for (int64_t i = block * T + t; i < p.batch; i += grid * T) p.example_max[i] = kMinusInfKey;
  });
}

// kapre's clamp: y = max(y, example max - dynamic_range) over the magnitude channels,
// visited in memory order of the output layout.
template <class Exec>
KF_HD void clamp_block(Exec& ex, const FrontEndParams& p, int64_t block, int64_t grid) {
  const int T = ex.threads();
  ex.run([&](int t) {
    const int64_t C = p.channels, nf = p.n_frames, nk = p.n_features;
    const int64_t per_example = C * nf * nk;
    const int64_t total = p.batch * per_example;
    for (int64_t e = block * T + t; e < total; e += grid * T) {
      const int64_t b = e / per_example;
      int64_t r = e - b * per_example, c, f, k;
      if (p.out_channels_last) {
        c = r % C;
        r /= C;
        k = r % nk;
        f = r / nk;
      } else {
        k = r % nk;
        r /= nk;
        f = r % nf;
        c = r / nf;
      }
      // A NaN maximum makes the whole example NaN, as np.maximum / tf.maximum propagate it.
      const float floor = ordered_value(p.example_max[b]) - p.dynamic_range;
      float* v = p.out + b * p.osb + c * p.osc + f * p.osf + k * p.osk;
      if (*v < floor || floor != floor) *v = floor;
    }
  });
}

}  // namespace gpu
}  // namespace kapre_fast
