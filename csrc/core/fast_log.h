// Cephes' logf polynomial (float32 natural log, about 1 ulp), written once for the dB stage of
// the fused kernels (isa_kernels.cc, GCC lane vectors) and the PCEN pass (pcen.cc, scalar
// float in loops GCC vectorises).
//
// Callers do their own range reduction (how they split a float into mantissa and exponent,
// and what they do with zeros, denormals, infinities and NaN, differs), then call
// log_of_reduced. The same operations in the same order for float and for a vector of floats,
// lane by lane, so both give the bits the code they replace gave.
//
// Included inside each user's anonymous namespace (as fft_kernels.h): every per-ISA build keeps
// its own copy, so the linker never picks an AVX-512 one for a machine without it.
#pragma once

// The mantissa m of x = m 2^e, m in [0.5, 1), below this is doubled (and e lowered by one), so
// that the polynomial sees 1 + m in [sqrt(1/2), sqrt(2)).
constexpr float kLogSqrtHalf = 0.707106781186547524f;

// ln((1 + m) 2^e) for a reduced mantissa m (1 + m in [sqrt(1/2), sqrt(2))) and the exponent e
// as a float (or a vector of them). ln 2 is split in two (0.693359375 is exact in 9 bits) so
// that e ln 2 adds no rounding of its own.
template <class T>
inline T log_of_reduced(T m, T e) {
  const T z = m * m;
  T y = m * 7.0376836292e-2f - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += e * -2.12194440e-4f;
  y -= 0.5f * z;
  return m + y + e * 0.693359375f;
}
