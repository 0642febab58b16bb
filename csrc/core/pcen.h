// Per-channel energy normalisation (librosa.pcen with max_size=1) as a separate pass over
// a filterbank output: the IIR smoother runs along frames, so each (example, channel) row
// is one sequential task; rows run in parallel. Kept apart from the fused tile kernel on
// purpose: it needs every frame of a row in order, which the tile kernel does not visit.
#pragma once

#include <cstdint>
#include <string>

#include "pipeline.h"

namespace kapre_fast {

// librosa.pcen's constants (b already resolved from time_constant by the caller).
struct PcenParams {
  double b = 0.025;
  double gain = 0.98;
  double bias = 2.0;
  double power = 0.5;
  double eps = 1e-6;
};

struct FeatureShape {
  int64_t batch = 0, channels = 0, frames = 0, features = 0;
};

// An empty string when fine, else a message naming the constant or size and its value.
std::string check_pcen(const PcenParams& p, const FeatureShape& shape);

// out = PCEN(in) with
//   M[t] = (1 - b) M[t - 1] + b S[t],  M[-1] = 1 (librosa's zi: lfilter_zi, unscaled)
//   P[t] = bias^power * expm1(power * log1p(S[t] / (eps + M[t])^gain / bias))
// and librosa's cases power == 0 (log1p(S / (eps + M)^gain)) and bias == 0
// ((S / (eps + M)^gain)^power). `in` is read through out's strides (FeatureView sb, sc,
// sf, sk); in == out.data computes in place. check_pcen must have passed.
void compute_pcen(const PcenParams& p, const FeatureShape& shape, const float* in,
                  const FeatureView& out, const ParallelFor& parallel);

}  // namespace kapre_fast
