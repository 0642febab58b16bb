#include "fft_plan.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <list>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace kapre_fast {
namespace {

constexpr double kPi = 3.14159265358979323846264338327950288;

// exp(-2 pi i num / den) in double, with the index reduced exactly first.
std::complex<double> unit_root(int64_t num, int64_t den) {
  num %= den;
  if (num < 0) num += den;
  const double angle = 2.0 * kPi * static_cast<double>(num) / static_cast<double>(den);
  return {std::cos(angle), -std::sin(angle)};
}

// tw[p][j - 1] = w^(j p), w = exp(-2 pi i / len), for p < m and 1 <= j < radix.
void fill_twiddles(int radix, int64_t m, int64_t len, float* tw_re, float* tw_im) {
  for (int64_t p = 0; p < m; ++p) {
    for (int j = 1; j < radix; ++j) {
      const std::complex<double> w = unit_root(j * p, len);
      tw_re[p * (radix - 1) + (j - 1)] = static_cast<float>(w.real());
      tw_im[p * (radix - 1) + (j - 1)] = static_cast<float>(w.imag());
    }
  }
}

// Radices: 16s as far as they go (fewest passes: on CPUs whose
// vector stores are the bottleneck each pass costs a full store of the data),
// then 8, 4, 2, 3, 5, 7, ...
std::vector<int> factorize(int64_t n, int64_t* leftover) {
  std::vector<int> radices;
  while (n % 16 == 0) {
    radices.push_back(16);
    n /= 16;
  }
  if (n % 8 == 0) {
    radices.push_back(8);
    n /= 8;
  }
  if (n % 4 == 0) {
    radices.push_back(4);
    n /= 4;
  }
  if (n % 2 == 0) {
    radices.push_back(2);
    n /= 2;
  }
  for (int p = 3; p <= kMaxDirectRadix && n > 1; p += 2) {
    while (n % p == 0) {
      radices.push_back(p);
      n /= p;
    }
  }
  *leftover = n;
  // The largest radix goes last: the last pass needs no twiddles (m == 1), so the passes
  // with the most twiddle multiplies per butterfly save the most there.
  std::stable_sort(radices.begin(), radices.end());
  return radices;
}

int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Plain double-precision radix-2 FFT, only for building Bluestein kernels once.
void fft_pow2_double(std::vector<std::complex<double>>& a) {
  const int64_t n = static_cast<int64_t>(a.size());
  for (int64_t i = 1, j = 0; i < n; ++i) {
    int64_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (int64_t len = 2; len <= n; len <<= 1) {
    for (int64_t i = 0; i < n; i += len) {
      for (int64_t k = 0; k < len / 2; ++k) {
        const std::complex<double> w = unit_root(k, len);
        const std::complex<double> u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
      }
    }
  }
}

}  // namespace

ComplexFftPlan::ComplexFftPlan(int64_t n) {
  if (n < 1 || n > 2 * kMaxFftLength) {
    throw std::invalid_argument("FFT length " + std::to_string(n) + " is out of range");
  }
  view_.n = n;
  int64_t leftover = 1;
  factorize(n, &leftover);
  if (leftover == 1) {
    build_passes();
  } else {
    build_bluestein();
  }
}

void ComplexFftPlan::build_passes() {
  const int64_t n = view_.n;
  int64_t leftover = 1;
  const std::vector<int> radices = factorize(n, &leftover);

  // Size the table first so the pointers stored in passes_ stay valid.
  std::size_t table_size = 0;
  int64_t cur = n;
  for (int r : radices) {
    const int64_t m = cur / r;
    table_size += 2 * static_cast<std::size_t>(m) * (r - 1);
    if (r % 2 == 1) table_size += 2 * static_cast<std::size_t>((r / 2) * (r / 2));
    cur = m;
  }
  tables_.assign(table_size, 0.0f);

  std::size_t offset = 0;
  cur = n;
  int64_t stride = 1;
  for (int r : radices) {
    FftPass pass;
    pass.radix = r;
    pass.m = cur / r;
    pass.s = stride;
    float* tre = tables_.data() + offset;
    float* tim = tre + pass.m * (r - 1);
    fill_twiddles(r, pass.m, cur, tre, tim);
    pass.tw_re = tre;
    pass.tw_im = tim;
    offset += 2 * static_cast<std::size_t>(pass.m) * (r - 1);
    if (r % 2 == 1) {
      const int half = r / 2;
      float* ct = tables_.data() + offset;
      float* st = ct + half * half;
      for (int j = 1; j <= half; ++j) {
        for (int k = 1; k <= half; ++k) {
          const std::complex<double> w = unit_root(static_cast<int64_t>(j) * k, r);
          ct[(j - 1) * half + (k - 1)] = static_cast<float>(w.real());
          st[(j - 1) * half + (k - 1)] = static_cast<float>(-w.imag());  // sin(2 pi j k / r)
        }
      }
      pass.cos_tab = ct;
      pass.sin_tab = st;
      offset += 2 * static_cast<std::size_t>(half * half);
    }
    passes_.push_back(pass);
    cur = pass.m;
    stride *= r;
  }
  view_.n_passes = static_cast<int>(passes_.size());
  view_.passes = passes_.data();
  view_.scratch = 2 * n;  // the Stockham ping-pong buffer (re and im)
}

void ComplexFftPlan::build_bluestein() {
  const int64_t n = view_.n;
  const int64_t conv_n = next_pow2(2 * n - 1);
  inner_ = std::make_unique<ComplexFftPlan>(conv_n);

  tables_.assign(2 * static_cast<std::size_t>(n) + 2 * static_cast<std::size_t>(conv_n), 0.0f);
  float* cre = tables_.data();
  float* cim = cre + n;
  float* kre = cim + n;
  float* kim = kre + conv_n;

  std::vector<std::complex<double>> b(conv_n, {0.0, 0.0});
  for (int64_t k = 0; k < n; ++k) {
    // exp(-i pi k^2 / n) = unit_root(k^2 mod 2n, 2n); k^2 < 2^42 fits int64.
    const std::complex<double> c = unit_root((k * k) % (2 * n), 2 * n);
    cre[k] = static_cast<float>(c.real());
    cim[k] = static_cast<float>(c.imag());
    b[k] = std::conj(c);
    if (k > 0) b[conv_n - k] = std::conj(c);
  }
  fft_pow2_double(b);
  for (int64_t k = 0; k < conv_n; ++k) {
    kre[k] = static_cast<float>(b[k].real() / conv_n);
    kim[k] = static_cast<float>(b[k].imag() / conv_n);
  }
  view_.inner = &inner_->view();
  view_.conv_n = conv_n;
  view_.chirp_re = cre;
  view_.chirp_im = cim;
  view_.kernel_re = kre;
  view_.kernel_im = kim;
  view_.scratch = 2 * conv_n + inner_->view().scratch;
}

RealFftPlan::RealFftPlan(int64_t n) {
  if (n < 1 || n > kMaxFftLength) {
    throw std::invalid_argument("FFT length " + std::to_string(n) + " is out of range");
  }
  view_.n = n;
  view_.even = (n % 2 == 0);
  complex_ = get_complex_fft_plan(view_.even ? n / 2 : n);
  view_.complex = &complex_->view();
  view_.scratch = view_.complex->scratch;
  if (view_.even) {
    const int64_t half = n / 2;
    split_.resize(2 * static_cast<std::size_t>(half + 1));
    for (int64_t k = 0; k <= half; ++k) {
      const std::complex<double> w = unit_root(k, n);
      split_[k] = static_cast<float>(w.real());
      split_[half + 1 + k] = static_cast<float>(w.imag());
    }
    view_.split_re = split_.data();
    view_.split_im = split_.data() + half + 1;
    build_blocks();
  }
}

void RealFftPlan::build_blocks() {
  // Radix 16 outside, M = nc / 16 inside: for nc = 1024 a block is 64 lane-vectors
  // (re + im + scratch 16 KiB at 16 lanes), where the Stockham passes run from L1.
  constexpr int kRadix = 16;
  const int64_t nc = view_.complex->n;
  if (nc < 16 * kRadix || nc % kRadix != 0 || view_.complex->inner != nullptr) return;
  const int64_t m = nc / kRadix;
  block_fft_ = get_complex_fft_plan(m);
  block_twiddles_.resize(2 * static_cast<std::size_t>(m) * (kRadix - 1));
  float* tre = block_twiddles_.data();
  float* tim = tre + m * (kRadix - 1);
  fill_twiddles(kRadix, m, nc, tre, tim);
  view_.block_fft = &block_fft_->view();
  view_.block_pass.radix = kRadix;
  view_.block_pass.m = 1;
  view_.block_pass.s = m;
  view_.block_pass.tw_re = tre;
  view_.block_pass.tw_im = tim;
  // 16 padded blocks (re and im) plus the blocks' own Stockham scratch.
  view_.scratch = std::max(view_.scratch, 2 * kRadix * (m + 1) + block_fft_->view().scratch);
}

namespace {

// Least-recently-used cache keyed by length. Plans are immutable once built.
template <class Plan>
class PlanCache {
 public:
  std::shared_ptr<const Plan> get(int64_t n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = index_.find(n);
      if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
      }
    }
    // Build outside the lock: a big plan must not stall other sizes.
    auto plan = std::make_shared<const Plan>(n);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(n);
    if (it != index_.end()) return it->second->second;  // another thread won the race
    order_.emplace_front(n, plan);
    index_[n] = order_.begin();
    while (order_.size() > kPlanCacheCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return plan;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return order_.size();
  }

 private:
  using Entry = std::pair<int64_t, std::shared_ptr<const Plan>>;
  std::mutex mutex_;
  std::list<Entry> order_;
  std::map<int64_t, typename std::list<Entry>::iterator> index_;
};

PlanCache<RealFftPlan>& real_cache() {
  static PlanCache<RealFftPlan> cache;
  return cache;
}
PlanCache<ComplexFftPlan>& complex_cache() {
  static PlanCache<ComplexFftPlan> cache;
  return cache;
}

}  // namespace

std::shared_ptr<const RealFftPlan> get_real_fft_plan(int64_t n) { return real_cache().get(n); }
std::shared_ptr<const ComplexFftPlan> get_complex_fft_plan(int64_t n) {
  return complex_cache().get(n);
}
std::size_t fft_plan_cache_size() { return real_cache().size() + complex_cache().size(); }

}  // namespace kapre_fast
