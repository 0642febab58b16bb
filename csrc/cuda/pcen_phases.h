// PCEN on the GPU (librosa.pcen, max_size=1; the definition of csrc/core/pcen.h), written once
// for the CUDA kernel (kernels.cu) and the host emulation (emulation.h), as phases.h is.
//
// The smoother M[t] = (1 - b) M[t - 1] + b S[t] is a recurrence along frames: one thread owns
// one (example, channel, mel band) row and walks its frames in order, so no thread reads what
// another writes and the pass runs in place. Neighbouring threads take neighbouring bands,
// whose values sit next to each other in the channels_first layout (coalesced loads).
// Same float32 constants and order of operations as the CPU pass (pcen.cc): its exp and log
// are the same Cephes polynomials (hd.h's exp_ and ln_), so the two agree to a few ulp (the
// CPU build may fuse a multiply-add the GPU rounds twice, or the reverse).
#pragma once

#include "params.h"

namespace kapre_fast {
namespace gpu {

// log(1 + v) with the rounding of 1 + v corrected (Goldberg), accurate for tiny v.
KF_HD KF_INLINE float log1p_(float v) {
  const float u = 1.0f + v;
  const float d = u - 1.0f;
  return d == 0.0f ? v : ln_(u) - div_(d - v, u);
}

// exp(z) - 1: its Taylor series where the subtraction would cancel (|z| < 1/16), else
// exp(z) - 1 (the CPU pass's split).
KF_HD KF_INLINE float expm1_(float z) {
  if (!(z < 0.0625f && z > -0.0625f)) return exp_(z) - 1.0f;
  float s = 1.0f / 720;
  s = fma_(z, s, 1.0f / 120);
  s = fma_(z, s, 1.0f / 24);
  s = fma_(z, s, 1.0f / 6);
  s = fma_(z, s, 0.5f);
  s = fma_(z, s, 1.0f);
  return z * s;
}

// PCEN of one value s against its smoothed value m.
KF_HD KF_INLINE float pcen_value(const PcenLaunch& p, float s, float m) {
  const float scaled = s * exp_(p.neg_gain * ln_(p.eps + m));
  if (p.kind == 0) return log1p_(scaled);
  if (p.kind == 1) return exp_(p.power * ln_(scaled));
  return p.bias_pow * expm1_(p.power * log1p_(scaled * p.inv_bias));
}

// Rows row = block * T + t, block + grid, ...: (b, c, k) with k fastest.
KF_HD KF_INLINE void pcen_phase(const PcenLaunch& p, int64_t block, int64_t grid, int t, int T) {
  const int64_t rows = p.batch * p.channels * p.features;
  for (int64_t row = block * T + t; row < rows; row += grid * T) {
    const int64_t k = row % p.features, signal = row / p.features;
    const int64_t b = signal / p.channels, c = signal - b * p.channels;
    float* at = p.mel + b * p.sb + c * p.sc + k * p.sk;
    float m = 1.0f;  // librosa's initial state (lfilter_zi, unscaled)
    for (int64_t f = 0; f < p.frames; ++f, at += p.sf) {
      const float s = *at;
      m = p.keep * m + p.b * s;
      *at = pcen_value(p, s, m);
    }
  }
}

template <class Exec>
KF_HD void pcen_block(Exec& ex, const PcenLaunch& p, int64_t block, int64_t grid) {
  const int T = ex.threads();
  ex.run([&](int t) { pcen_phase(p, block, grid, t, T); });
}

}  // namespace gpu
}  // namespace kapre_fast
