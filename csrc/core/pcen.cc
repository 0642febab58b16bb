#include "pcen.h"

#include <algorithm>
#include <cmath>
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

// The compression of one element: s the input, m its smoothed value.
struct Compress {
  float neg_gain, eps, power, bias, inv_bias, bias_pow;
  int kind;  // 0: log1p (power == 0); 1: plain power (bias == 0); 2: librosa's general form

  float operator()(float s, float m) const {
    const float scaled = s * std::exp(neg_gain * std::log(eps + m));
    switch (kind) {
      case 0: return std::log1p(scaled);
      case 1: return std::pow(scaled, power);
      default: {
        // (1 + v)^power - 1: log/exp (a third of log1p/expm1's time) where the subtraction
        // loses at most a few bits (v >= 1/16); log1p/expm1 below, where it would cancel.
        const float v = scaled * inv_bias;
        if (v >= 0.0625f) return bias_pow * (std::exp(power * std::log(1.0f + v)) - 1.0f);
        return bias_pow * std::expm1(power * std::log1p(v));
      }
    }
  }
};

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
  compress.bias = static_cast<float>(p.bias);
  compress.inv_bias = p.bias > 0 ? static_cast<float>(1.0 / p.bias) : 0.0f;
  compress.bias_pow = static_cast<float>(std::pow(p.bias, p.power));
  compress.kind = p.power == 0 ? 0 : (p.bias == 0 ? 1 : 2);
  const int64_t rows = shape.batch * shape.channels, n = shape.features;
  // Per row: frames * features elements at about 20 ns each (four transcendentals).
  const int64_t cost = std::max<int64_t>(1, shape.frames * n * 20);
  parallel(rows, cost, [&](int64_t begin, int64_t end) {
    // One frame's inputs, contiguous (channels_last strides them), and the smoother state.
    std::vector<float> frame(static_cast<std::size_t>(n)), state(static_cast<std::size_t>(n));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = (row / shape.channels) * out.sb + (row % shape.channels) * out.sc;
      std::fill(state.begin(), state.end(), 1.0f);
      for (int64_t t = 0; t < shape.frames; ++t) {
        const float* s = in + base + t * out.sf;
        float* y = out.data + base + t * out.sf;
        for (int64_t k = 0; k < n; ++k) frame[k] = s[k * out.sk];  // before y: in may be out
        for (int64_t k = 0; k < n; ++k) state[k] = keep * state[k] + b * frame[k];
        for (int64_t k = 0; k < n; ++k) y[k * out.sk] = compress(frame[k], state[k]);
      }
    }
  });
}

}  // namespace kapre_fast
