// Strides for kapre's layouts of contiguous tensors, shared by the adapters.
//   audio:    channels_last (batch, time, ch)      channels_first (batch, ch, time)
//   features: channels_last (batch, frame, k, ch)  channels_first (batch, ch, frame, k)
#pragma once

#include <cstdint>

#include "pipeline.h"

namespace kapre_fast {

inline SignalView contiguous_signal(const float* data, int64_t batch, int64_t channels,
                                    int64_t time, bool channels_first) {
  SignalView s;
  s.data = data;
  s.batch = batch;
  s.channels = channels;
  s.time = time;
  s.sb = channels * time;
  s.sc = channels_first ? time : 1;
  s.st = channels_first ? 1 : channels;
  return s;
}

// `channels` is the channel count of the whole output tensor (2x the audio's for
// mag/phase); `floats` is 2 for complex elements.
inline FeatureView contiguous_features(float* data, int64_t channels, int64_t frames,
                                       int64_t features, bool channels_first, int64_t floats) {
  FeatureView f;
  f.data = data;
  f.sb = channels * frames * features * floats;
  if (channels_first) {
    f.sc = frames * features * floats;
    f.sf = features * floats;
    f.sk = floats;
  } else {
    f.sc = floats;
    f.sf = features * channels * floats;
    f.sk = channels * floats;
  }
  return f;
}

inline ComplexInputView contiguous_complex(const float* data, int64_t batch, int64_t channels,
                                           int64_t frames, int64_t bins, bool channels_first) {
  const FeatureView f = contiguous_features(nullptr, channels, frames, bins, channels_first, 2);
  ComplexInputView v;
  v.data = data;
  v.batch = batch;
  v.channels = channels;
  v.frames = frames;
  v.bins = bins;
  v.sb = f.sb;
  v.sc = f.sc;
  v.sf = f.sf;
  v.sk = f.sk;
  return v;
}

inline SignalOutView contiguous_signal_out(float* data, int64_t channels, int64_t time,
                                           bool channels_first) {
  const SignalView s = contiguous_signal(nullptr, 0, channels, time, channels_first);
  SignalOutView o;
  o.data = data;
  o.sb = s.sb;
  o.sc = s.sc;
  o.st = s.st;
  return o;
}

}  // namespace kapre_fast
