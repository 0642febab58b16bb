// Host emulation of the CUDA launches (g++ only, no CUDA needed).
//
// It runs the very phase code of phases.h with the kernels' launch geometry
// and shared-memory layout: block after block, and inside a block phase after
// phase, every thread of the block before the next phase starts (that is what
// a barrier guarantees). Within a phase the threads run one after another in a
// chosen order; a phase whose result depends on that order (a race, or a
// missing barrier) shows up as a difference between orders. Shared memory and
// global workspace start as NaN bytes, so a read before a write shows up too.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "pcen_phases.h"
#include "phases.h"
#include "plan.h"

namespace kapre_fast {
namespace gpu {

enum class ThreadOrder { kForward, kReverse, kShuffled };

class HostExec {
 public:
  HostExec(int threads, ThreadOrder order, uint64_t seed) : order_(threads) {
    std::iota(order_.begin(), order_.end(), 0);
    if (order == ThreadOrder::kReverse) std::reverse(order_.begin(), order_.end());
    if (order == ThreadOrder::kShuffled) {
      std::mt19937_64 rng(seed);
      std::shuffle(order_.begin(), order_.end(), rng);
    }
  }
  int threads() const { return static_cast<int>(order_.size()); }
  template <class F>
  void run(F&& phase) const {
    for (int t : order_) phase(t);
  }

 private:
  std::vector<int> order_;
};

struct EmulationOptions {
  ThreadOrder order = ThreadOrder::kForward;
  bool reverse_blocks = false;
  uint64_t seed = 0;
};

// Runs one front-end call: p is fully bound (prepare_call + bind_workspace) to host memory.
inline void emulate_frontend(const FrontEndParams& p, const Geometry& g,
                             const EmulationOptions& opt) {
  auto blocks = [&](int64_t grid, auto&& body) {
    for (int64_t i = 0; i < grid; ++i) body(opt.reverse_blocks ? grid - 1 - i : i);
  };
  if (p.decibel && g.init_grid > 0) {
    const HostExec ex(g.small_threads, opt.order, opt.seed);
    blocks(g.init_grid, [&](int64_t b) { init_max_block(ex, p, b, g.init_grid); });
  }
  if (g.grid > 0) {
    std::vector<unsigned char> smem((g.smem_bytes + 15) / 16 * 16);
    blocks(g.grid, [&](int64_t b) {
      std::memset(smem.data(), 0xff, smem.size());  // NaN: what a stale read would see
      const HostExec ex(g.threads, opt.order, opt.seed + static_cast<uint64_t>(b));
      frontend_block(ex, p, b, g.grid, smem.data());
    });
  }
  if (p.decibel && g.clamp_grid > 0) {
    const HostExec ex(g.small_threads, opt.order, opt.seed);
    blocks(g.clamp_grid, [&](int64_t b) { clamp_block(ex, p, b, g.clamp_grid); });
  }
}

// Runs one inverse STFT: the frame kernel, then the overlap-add kernel.
inline void emulate_istft(const FrontEndParams& p, const Geometry& g, const EmulationOptions& opt) {
  auto blocks = [&](int64_t grid, auto&& body) {
    for (int64_t i = 0; i < grid; ++i) body(opt.reverse_blocks ? grid - 1 - i : i);
  };
  if (g.grid > 0) {
    std::vector<unsigned char> smem((g.smem_bytes + 15) / 16 * 16);
    blocks(g.grid, [&](int64_t b) {
      std::memset(smem.data(), 0xff, smem.size());
      const HostExec ex(g.threads, opt.order, opt.seed + static_cast<uint64_t>(b));
      istft_block(ex, p, b, g.grid, smem.data());
    });
  }
  if (g.ola_grid > 0) {
    const HostExec ex(g.small_threads, opt.order, opt.seed);
    blocks(g.ola_grid, [&](int64_t b) { overlap_add_block(ex, p, b, g.ola_grid); });
  }
}

// Runs one PCEN pass (prepare_pcen's p, on host memory).
inline void emulate_pcen(const PcenLaunch& p, const EmulationOptions& opt) {
  const HostExec ex(p.threads, opt.order, opt.seed);
  for (int64_t i = 0; i < p.grid; ++i) {
    pcen_block(ex, p, opt.reverse_blocks ? p.grid - 1 - i : i, p.grid);
  }
}

}  // namespace gpu
}  // namespace kapre_fast
