// What the CUDA kernels and their host emulation share below the algorithm:
// the KF_HD marker, a complex type, and float math built only from operations
// that IEEE 754 rounds exactly (+ - * / sqrt fma), so a phase computes the same
// bits under nvcc on the GPU and under g++ in the emulation.
//
// Rules that keep the two bit-identical (see cmake/cuda.cmake):
//   - device code is compiled with --fmad=false and host emulation with
//     -ffp-contract=off: no multiply-add is fused unless written as fma_();
//   - no libm/CUDA transcendental is called from a phase: log10 and atan2 are
//     the polynomial versions below;
//   - denormals are kept on both sides (no -ftz, no fast math).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define KF_HD __host__ __device__
#define KF_INLINE __forceinline__
#else
#define KF_HD
#define KF_INLINE inline
#endif

namespace kapre_fast {
namespace gpu {

// A complex float, 8-byte aligned so the GPU moves it with one 64-bit access.
struct alignas(8) Cf {
  float x, y;
};

KF_HD KF_INLINE Cf cf(float x, float y) {
  Cf r;
  r.x = x;
  r.y = y;
  return r;
}
KF_HD KF_INLINE Cf add(Cf a, Cf b) { return cf(a.x + b.x, a.y + b.y); }
KF_HD KF_INLINE Cf sub(Cf a, Cf b) { return cf(a.x - b.x, a.y - b.y); }
KF_HD KF_INLINE Cf scale(Cf a, float s) { return cf(a.x * s, a.y * s); }

KF_HD KF_INLINE float fma_(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

KF_HD KF_INLINE float sqrt_(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

KF_HD KF_INLINE float div_(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// a * w, each part as one product plus one fused multiply-add.
KF_HD KF_INLINE Cf cmul(Cf a, Cf w) {
  return cf(fma_(a.x, w.x, -(a.y * w.y)), fma_(a.x, w.y, a.y * w.x));
}

KF_HD KF_INLINE int32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
#endif
}

KF_HD KF_INLINE float bits_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

constexpr float kInf = __builtin_huge_valf();

// ln(x): Cephes-style natural log (mantissa in [sqrt(1/2), sqrt(2)), degree-9 polynomial,
// about 1 ulp). +0 gives -inf, negative or NaN input gives NaN, +inf gives +inf, subnormals
// are handled.
KF_HD KF_INLINE float ln_(float x) {
  if (x != x) return x;
  if (x <= 0.0f) return x == 0.0f ? -kInf : bits_float(0x7fc00000);
  if (x == kInf) return x;
  int32_t e = 0;
  if (x < 1.17549435e-38f) {  // subnormal: scale by 2^23 first
    x = x * 8388608.0f;
    e = -23;
  }
  const int32_t bits = float_bits(x);
  e += ((bits >> 23) & 0xff) - 126;
  float m = bits_float((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  if (m < 0.70710678118654752f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = fma_(y, m, -1.1514610310e-1f);
  y = fma_(y, m, 1.1676998740e-1f);
  y = fma_(y, m, -1.2420140846e-1f);
  y = fma_(y, m, 1.4249322787e-1f);
  y = fma_(y, m, -1.6668057665e-1f);
  y = fma_(y, m, 2.0000714765e-1f);
  y = fma_(y, m, -2.4999993993e-1f);
  y = fma_(y, m, 3.3333331174e-1f);
  y = y * m * z;
  const float ef = static_cast<float>(e);
  y = fma_(ef, -2.12194440e-4f, y);
  y = fma_(-0.5f, z, y);
  return fma_(ef, 0.693359375f, m + y);
}

// 10 * log10(x) from ln_ (its special cases: -inf, NaN, +inf).
KF_HD KF_INLINE float ten_log10(float x) { return ln_(x) * 4.342944819032518f; }  // 10 / ln(10)

// exp(x): Cephes' expf (x = n ln 2 + r, |r| <= ln(2) / 2, degree-6 polynomial, about 1 ulp).
// Above 88: +inf; below -87: 0 (the denormal range is flushed, as the CPU's PCEN pass does);
// NaN stays NaN.
KF_HD KF_INLINE float exp_(float x) {
  if (x != x) return x;
  if (x > 88.0f) return kInf;
  if (x < -87.0f) return 0.0f;
  // Round to nearest by adding and removing 1.5 * 2^23 (exact for |t| < 2^22).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = fma_(n, -0.693359375f, x);
  r = fma_(n, 2.12194440e-4f, r);
  float y = 1.9875691500e-4f;
  y = fma_(y, r, 1.3981999507e-3f);
  y = fma_(y, r, 8.3334519073e-3f);
  y = fma_(y, r, 4.1665795894e-2f);
  y = fma_(y, r, 1.6666665459e-1f);
  y = fma_(y, r, 5.0000001201e-1f);
  y = fma_(y * r, r, r) + 1.0f;
  return y * bits_float((static_cast<int32_t>(n) + 127) << 23);
}

// atan(t) for t in [0, 1] (Cephes atanf: reduction around tan(pi/8), then a
// degree-7 odd polynomial), about 2 ulp.
KF_HD KF_INLINE float atan_unit(float t) {
  float base = 0.0f, base_lo = 0.0f;
  if (t > 0.41421356237309505f) {
    base = 7.853981853e-01f;  // pi/4 split in two floats
    base_lo = -2.185569414e-08f;
    t = div_(t - 1.0f, t + 1.0f);
  }
  const float z = t * t;
  float p = 8.05374449538e-2f;
  p = fma_(p, z, -1.38776856032e-1f);
  p = fma_(p, z, 1.99777106478e-1f);
  p = fma_(p, z, -3.33329491539e-1f);
  p = fma_(p * z, t, t);
  return base + (p + base_lo);
}

// atan2(y, x) with C's special cases (signed zeros, infinities, NaN).
KF_HD KF_INLINE float atan2_(float y, float x) {
  if (x != x || y != y) return x + y;
  const float ax = bits_float(float_bits(x) & 0x7fffffff);
  const float ay = bits_float(float_bits(y) & 0x7fffffff);
  const bool steep = ay > ax;
  const float num = steep ? ax : ay, den = steep ? ay : ax;
  float t;
  if (den == 0.0f) {
    t = 0.0f;  // both zero
  } else if (num == kInf) {
    t = 1.0f;  // both infinite
  } else {
    t = div_(num, den);
  }
  float a = atan_unit(t);
  if (steep) a = 1.570796371e+00f - (a - -4.371138829e-08f);              // pi/2 - a
  if (float_bits(x) < 0) a = 3.141592741e+00f - (a - -8.742277657e-08f);  // pi - a
  return float_bits(y) < 0 ? -a : a;
}

// Order-preserving int image of a float, for atomicMax: larger float, larger
// int; every NaN maps to INT32_MAX, above +inf, so a NaN anywhere wins.
KF_HD KF_INLINE int32_t ordered_key(float v) {
  if (v != v) return 0x7fffffff;
  const int32_t i = float_bits(v);
  return i >= 0 ? i : (i ^ 0x7fffffff);
}
KF_HD KF_INLINE float ordered_value(int32_t key) {
  return bits_float(key >= 0 ? key : (key ^ 0x7fffffff));
}
constexpr int32_t kMinusInfKey = static_cast<int32_t>(0x807fffff);  // ordered_key(-inf)

// max that lets NaN through: a NaN anywhere in an example makes its maximum NaN.
KF_HD KF_INLINE float nan_max(float m, float v) { return (m < v || v != v) ? v : m; }

}  // namespace gpu
}  // namespace kapre_fast
