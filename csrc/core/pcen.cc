#include "pcen.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

namespace kapre_fast {

namespace {

std::string named(const char* name, double value, const char* rule) {
  std::ostringstream message;
  message << name << " must be " << rule << ", got " << value;
  return message.str();
}

#include "fast_log.h"

// float32 exp and log (Cephes' expf polynomial; its logf one in fast_log.h; within 2 ulp) with
// arithmetic, bit casts and selects only, so that the per-frame loops below vectorise; libm's
// scalar calls made this pass as slow as librosa's NumPy (12 ns an element; here 5 with AVX2).
inline float bits_to_float(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline int32_t float_to_bits(float value) {
  int32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float fast_log(float x) {
  // Denormals (a tiny S / (eps + M)^gain) scaled into the normals first: 2^25, then - 25 ln 2.
  const bool denormal = x < std::numeric_limits<float>::min();
  const int32_t bits = float_to_bits(denormal ? x * 33554432.0f : x);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126);  // x = m 2^e, m in [0.5, 1)
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);
  const bool low = m < kLogSqrtHalf;
  e = low ? e - 1.0f : e;
  m = low ? m + m - 1.0f : m - 1.0f;
  e = denormal ? e - 25.0f : e;
  float result = log_of_reduced(m, e);
  // Positive finite x above; one-level selects, which GCC if-converts: 0 -> -inf, < 0 -> NaN,
  // inf and NaN as they are.
  result = x == 0.0f ? -std::numeric_limits<float>::infinity() : result;
  result = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : result;
  result = x > std::numeric_limits<float>::max() ? x : result;
  return x != x ? x : result;
}

inline float fast_exp(float x) {
  const float clamped = std::min(std::max(x, -87.0f), 88.0f);
  // Round to nearest by the 1.5 * 2^23 trick (exact for |t| < 2^22; no -ffast-math here).
  const float fn = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = clamped - fn * 0.693359375f;
  r -= fn * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  float result = y * bits_to_float((static_cast<int32_t>(fn) + 127) << 23);
  // Beyond the clamp: inf above float's range, 0 below its normals (flushed), NaN as NaN.
  result = x > 88.0f ? std::numeric_limits<float>::infinity() : result;
  result = x < -87.0f ? 0.0f : result;
  return x != x ? x : result;
}

// log(1 + v) with the rounding of 1 + v corrected (Goldberg), accurate for tiny v.
inline float fast_log1p(float v) {
  const float u = 1.0f + v;
  const float d = u - 1.0f;
  const float corrected = fast_log(u) - (d - v) / u;
  return d == 0.0f ? v : corrected;
}

// exp(z) - 1: its Taylor series where the subtraction would cancel (|z| < 1/16; the first
// term left out is below 1e-13 of the result), exp(z) - 1 elsewhere.
inline float fast_expm1(float z) {
  const float series =
      z *
      (1.0f + z * (0.5f + z * (1.0f / 6 + z * (1.0f / 24 + z * (1.0f / 120 + z * (1.0f / 720))))));
  const float direct = fast_exp(z) - 1.0f;
  return std::fabs(z) < 0.0625f ? series : direct;
}

// PCEN of one frame's values s[k] against their smoothed values m[k], into y[k] (contiguous).
struct Compress {
  float neg_gain, eps, power, inv_bias, bias_pow;
  int kind;  // 0: log1p (power == 0); 1: plain power (bias == 0); 2: librosa's general form
};

template <int kKind>
inline void compress_frame(const Compress& c, const float* s, const float* m, float* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const float scaled = s[k] * fast_exp(c.neg_gain * fast_log(c.eps + m[k]));
    if (kKind == 0) {
      y[k] = fast_log1p(scaled);
    } else if (kKind == 1) {
      y[k] = fast_exp(c.power * fast_log(scaled));
    } else {
      y[k] = c.bias_pow * fast_expm1(c.power * fast_log1p(scaled * c.inv_bias));
    }
  }
}

inline void compress_any(const Compress& c, const float* s, const float* m, float* y, int64_t n) {
  if (c.kind == 0) compress_frame<0>(c, s, m, y, n);
  if (c.kind == 1) compress_frame<1>(c, s, m, y, n);
  if (c.kind == 2) compress_frame<2>(c, s, m, y, n);
}

void compress_baseline(const Compress& c, const float* s, const float* m, float* y, int64_t n) {
  compress_any(c, s, m, y, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same loops built for AVX2 + FMA (8 lanes, blends): 3x the SSE2 build, which is slower
// than libm's scalar calls; picked when the fused kernel's ISA (active_isa(), which follows
// force_isa) is wider than SSE2.
__attribute__((target("avx2,fma"))) void compress_avx2(const Compress& c, const float* s,
                                                       const float* m, float* y, int64_t n) {
  compress_any(c, s, m, y, n);
}
#endif

using CompressFn = void (*)(const Compress&, const float*, const float*, float*, int64_t);

CompressFn compress_for_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::strcmp(active_isa(), "sse2") != 0) return compress_avx2;
#endif
  return compress_baseline;
}

}  // namespace

std::string check_pcen(const PcenParams& p, const FeatureShape& shape) {
  // !(x >= 0) also refuses NaN.
  if (!(p.b >= 0.0 && p.b <= 1.0)) return named("b", p.b, "in [0, 1]");
  if (!(p.gain >= 0.0) || !std::isfinite(p.gain)) return named("gain", p.gain, "finite and >= 0");
  if (!(p.bias >= 0.0) || !std::isfinite(p.bias)) return named("bias", p.bias, "finite and >= 0");
  if (!(p.power >= 0.0) || !std::isfinite(p.power)) {
    return named("power", p.power, "finite and >= 0");
  }
  // float32 arithmetic: eps must stay a positive normal float.
  if (!(p.eps >= std::numeric_limits<float>::min()) || !std::isfinite(static_cast<float>(p.eps))) {
    return named("eps", p.eps, "a positive, finite float32 (>= 1.18e-38)");
  }
  if (shape.batch < 0 || shape.channels < 0 || shape.frames < 0 || shape.features < 0) {
    return "PCEN sizes must be >= 0";
  }
  return "";
}

void compute_pcen(const PcenParams& p, const FeatureShape& shape, const float* in,
                  const FeatureView& out, const ParallelFor& parallel) {
  const float b = static_cast<float>(p.b), keep = static_cast<float>(1.0 - p.b);
  Compress compress;
  compress.neg_gain = static_cast<float>(-p.gain);
  compress.eps = static_cast<float>(p.eps);
  compress.power = static_cast<float>(p.power);
  compress.inv_bias = p.bias > 0 ? static_cast<float>(1.0 / p.bias) : 0.0f;
  compress.bias_pow = static_cast<float>(std::pow(p.bias, p.power));
  compress.kind = p.power == 0 ? 0 : (p.bias == 0 ? 1 : 2);
  const CompressFn compress_frames = compress_for_isa();
  const int64_t rows = shape.batch * shape.channels, n = shape.features;
  // Per row: frames * features elements at about 5 ns each (AVX2; 15 on SSE2).
  const int64_t cost = std::max<int64_t>(1, shape.frames * n * 5);
  parallel(rows, cost, [&](int64_t begin, int64_t end) {
    // One frame's inputs and outputs, contiguous (channels_last strides them), and the
    // smoother state: each loop below runs over contiguous floats and vectorises.
    const std::size_t size = static_cast<std::size_t>(n);
    std::vector<float> frame(size), state(size), result(size);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = (row / shape.channels) * out.sb + (row % shape.channels) * out.sc;
      std::fill(state.begin(), state.end(), 1.0f);
      for (int64_t t = 0; t < shape.frames; ++t) {
        const float* s = in + base + t * out.sf;
        float* y = out.data + base + t * out.sf;
        for (int64_t k = 0; k < n; ++k) frame[k] = s[k * out.sk];  // before y: in may be out
        for (int64_t k = 0; k < n; ++k) state[k] = keep * state[k] + b * frame[k];
        compress_frames(compress, frame.data(), state.data(), result.data(), n);
        for (int64_t k = 0; k < n; ++k) y[k * out.sk] = result[k];
      }
    }
  });
}

}  // namespace kapre_fast
