// FFT plans: factorisation and twiddle tables, built once per size and shared.
//
// A plan is plain data (no ISA-specific code), so one plan serves the AVX-512,
// AVX2 and portable kernels alike. Twiddles are computed in double precision
// and stored as float (pocketfft's habit: accuracy ~ log2(n) * eps, no drift).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace kapre_fast {

// Largest transform length the core accepts (documented in the README).
constexpr int64_t kMaxFftLength = int64_t{1} << 16;
// Prime factors above this go through Bluestein instead of a direct O(p^2) pass.
constexpr int kMaxDirectRadix = 31;

// One Stockham pass: current sub-length radix * m, stride s (see fft_kernels.h).
struct FftPass {
  int radix = 0;
  int64_t m = 0;
  int64_t s = 0;
  const float* tw_re = nullptr;  // [m][radix - 1]: w^(j p), w = exp(-2 pi i / (radix m))
  const float* tw_im = nullptr;
  const float* cos_tab = nullptr;  // odd radix: cos(2 pi j k / radix), [half][half]
  const float* sin_tab = nullptr;
};

// A complex forward transform of length n, as plain pointers for the kernels.
struct ComplexFftView {
  int64_t n = 0;
  int n_passes = 0;
  const FftPass* passes = nullptr;
  // Bluestein (chirp-z) for lengths with a large prime factor; `inner` has length conv_n.
  const ComplexFftView* inner = nullptr;
  int64_t conv_n = 0;
  const float* chirp_re = nullptr;  // exp(-i pi k^2 / n), k < n
  const float* chirp_im = nullptr;
  const float* kernel_re = nullptr;  // FFT of the conjugate chirp, already scaled by 1/conv_n
  const float* kernel_im = nullptr;
  // Lane-vectors of scratch the kernels need beyond the input and output buffers.
  int64_t scratch = 0;
};

class ComplexFftPlan {
 public:
  explicit ComplexFftPlan(int64_t n);
  ComplexFftPlan(const ComplexFftPlan&) = delete;
  ComplexFftPlan& operator=(const ComplexFftPlan&) = delete;
  const ComplexFftView& view() const { return view_; }

 private:
  void build_passes();
  void build_bluestein();

  ComplexFftView view_;
  std::vector<FftPass> passes_;
  std::vector<float> tables_;
  std::unique_ptr<ComplexFftPlan> inner_;
};

// A real transform of length n: even n runs a complex FFT of n/2 plus a split
// pass; odd n runs a complex FFT of n on zero-imaginary input.
struct RealFftView {
  int64_t n = 0;
  bool even = false;
  const ComplexFftView* complex = nullptr;  // length n/2 (even) or n (odd)
  const float* split_re = nullptr;          // even n: w^k = exp(-2 pi i k / n), k <= n/2
  const float* split_im = nullptr;
  // Even n with a long complex FFT (see fft_kernels.h, complex_forward_blocked): the
  // complex transform as one radix-16 pass, then 16 sub-FFTs of length M = block_fft->n,
  // each on a block that fits L1. Null when the plan has no such form.
  const ComplexFftView* block_fft = nullptr;
  FftPass block_pass;  // radix 16, m = 1, s = M; twiddles w^(j q), q < M, j < 16
  // Lane-vectors of scratch real_forward needs (complex FFT or blocks, whichever is used).
  int64_t scratch = 0;
  int64_t complex_n() const { return complex->n; }
};

class RealFftPlan {
 public:
  explicit RealFftPlan(int64_t n);
  RealFftPlan(const RealFftPlan&) = delete;
  RealFftPlan& operator=(const RealFftPlan&) = delete;
  const RealFftView& view() const { return view_; }

 private:
  void build_blocks();

  RealFftView view_;
  std::shared_ptr<const ComplexFftPlan> complex_;
  std::shared_ptr<const ComplexFftPlan> block_fft_;
  std::vector<float> split_;
  std::vector<float> block_twiddles_;
};

// Thread-safe, bounded (least recently used plans are dropped) cache of real plans.
// Callers keep the returned shared_ptr while they use the plan.
std::shared_ptr<const RealFftPlan> get_real_fft_plan(int64_t n);
std::shared_ptr<const ComplexFftPlan> get_complex_fft_plan(int64_t n);
// Number of plans currently cached (for tests of the bound).
std::size_t fft_plan_cache_size();
constexpr std::size_t kPlanCacheCapacity = 32;

}  // namespace kapre_fast
