// The checks every framework binding runs on one call before touching memory, written once:
// the JAX FFI handlers (csrc/jax/call_args.cc) and the PyTorch operators (csrc/torch) decode
// their framework's arguments, then hand sizes and addresses to these functions, so both reject
// the same calls with the same words. Only shapes and addresses are read, never the contents
// (on a GPU they are device memory). Every function returns "" or a message naming the argument.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline.h"

namespace kapre_fast {

// A checked front-end call: views into the audio and result (kapre's contiguous layouts).
struct FrontEndCall {
  FrontEndConfig cfg;
  const float* window = nullptr;  // win_length values
  BandView bands;
  SignalView signal;
  float* out = nullptr;
  int64_t out_channels = 0, frames = 0, features = 0;
  bool out_first = false;
  std::vector<int64_t> out_shape;  // the audio's leading axes, then the feature axes
};

// A checked inverse STFT.
struct InverseStftCall {
  FrontEndConfig cfg;
  const float* window = nullptr;  // win_length values
  ComplexInputView in;
  float* out = nullptr;
  int64_t length = 0;
  bool out_first = false;
  std::vector<int64_t> out_shape;  // the STFT's leading axes, then the waveform axes
};

// "(2, 3)", "(5,)": shapes in messages, as Python prints them.
std::string shape_text(const std::vector<int64_t>& dims);

// threads: 0 for every core, else the worker count, at most 1024.
std::string check_threads(int64_t threads);

// Sets call->bands from the three arrays and call->window, then runs the core's check_config on
// the whole config (call->cfg set by the caller, from the kernel arguments: kernel_args.h's
// to_config, which checks the output code).
std::string check_front_end_config(const float* window, int64_t window_length,
                                   const int32_t* band_start, int64_t n_start,
                                   const int32_t* band_length, int64_t n_length,
                                   const float* band_weights, int64_t n_weights,
                                   FrontEndCall* call);

// Audio of shape dims (at least 3 axes: kapre's 3, the leading ones folded into the batch) at
// `audio`, in the layout in_first says; fills the signal view, frames, features, out_channels,
// out_first and out_shape. call->cfg, bands and window must have passed check_front_end_config.
std::string check_front_end_audio(const float* audio, const std::vector<int64_t>& dims,
                                  bool in_first, bool out_first, FrontEndCall* call);

// The complex64 STFT of shape dims (at least 4 axes, leading ones folded into the batch) at
// `stft` (floats), for call->cfg's n_fft, win_length and hop_length and the synthesis window of
// window_length values; fills the input view, length, out_first and out_shape.
std::string check_inverse_stft_input(const float* stft, const std::vector<int64_t>& dims,
                                     const float* window, int64_t window_length, bool in_first,
                                     bool out_first, InverseStftCall* call);

}  // namespace kapre_fast
