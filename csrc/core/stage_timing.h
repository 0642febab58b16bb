// Per-stage time stamp counts of the front-end tile kernel (bench/stages.py, issue #29).
//
// Compiled in only with KAPRE_FAST_STAGE_TIMING defined (CMake -DKAPRE_FAST_STAGE_TIMING=ON, a
// benchmark build); otherwise stage_clock() is 0 and stage_add() does nothing, so the kernel is
// unchanged. The helpers are `static inline` and use builtins, no templates: this header is
// included by the per-ISA translation units, and an inline function with external linkage
// compiled for AVX-512 could be the one the linker keeps for a machine without it.
#pragma once

#include <cstdint>

#if defined(KAPRE_FAST_STAGE_TIMING) && (defined(__x86_64__) || defined(_M_X64))
#include <x86intrin.h>
#define KF_STAGE_TIMING 1
#else
#define KF_STAGE_TIMING 0
#endif

namespace kapre_fast {

// The stages of one tile: framing + FFT + magnitude (fused in the transform's last pass),
// filterbank, decibels (and the tile's maximum), the store of the tile's features; and the
// number of tiles counted.
enum StageIndex : int {
  kStageTransform = 0,
  kStageFilterbank = 1,
  kStageDecibel = 2,
  kStageStore = 3,
  kStageTiles = 4,
  kStageSlots = 5,
};

// The counters (pipeline.cc), summed over every thread with relaxed atomic adds.
extern uint64_t g_stage_counts[kStageSlots];

static inline uint64_t stage_clock() {
#if KF_STAGE_TIMING
  return __rdtsc();
#else
  return 0;
#endif
}

static inline void stage_add(int slot, uint64_t count) {
#if KF_STAGE_TIMING
  __atomic_fetch_add(&g_stage_counts[slot], count, __ATOMIC_RELAXED);
#else
  (void)slot;
  (void)count;
#endif
}

// True in a build with stage timing; copies the counters into `out` and, with `reset`, zeroes
// them.
bool stage_counts(uint64_t out[kStageSlots], bool reset);

}  // namespace kapre_fast
