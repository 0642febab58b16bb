// What the TF kernels read from TensorFlow through its C kernel API: the attributes (once, in
// the constructor, through the kernel-call contract) and each call's inputs, checked with the
// core's check_* functions before any memory is touched, then the allocated output. The CPU
// kernels (kernels.cc) and the GPU kernels (kernels_gpu.cc, which hands its C++ contexts to these
// functions) share it, so both reject the same inputs with the same InvalidArgument words (eager
// calls skip the shape functions). Only the shapes of the audio / spectrum are read here (on a
// GPU they live in device memory); the window and filterbank values are read on the host (the
// GPU kernels register them as HostMemory).
#pragma once

#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "../core/kernel_args.h"
#include "../core/layout.h"
#include "../core/pipeline.h"
#include "c_api_util.h"

namespace kapre_fast {
namespace tf_op {

enum class OpKind { kFrontEnd, kStft, kInverseStft, kMfcc };

// The attributes of one op node, read once by the kernel's constructor.
struct Attrs {
  FrontEndConfig cfg;
  bool in_first = false, out_first = false;
  bool mfcc = false;  // KapreFastMfcc: decibel magnitudes, then the dct input's matrix
};

// The kernel-call contract (csrc/core/kernel_args.h) from the node's attributes, then its
// FrontEndConfig (to_config). Each argument is the attribute of its name, except the layouts
// (the string attributes input_format / output_format) and output (KapreFastFrontEnd's string
// attribute 'magnitude' / 'mag_phase'). An argument the op has no attribute for keeps the op's
// fixed value: complex output without dB for the STFT and its inverse, dB magnitudes for MFCC,
// FrontEndConfig's defaults for the rest. False (and the construction failed with a message
// naming the attribute) on a missing attribute or a value to_config refuses.
inline bool read_attrs(TF_OpKernelConstruction* ctx, OpKind kind, Attrs* a) {
  const FrontEndConfig defaults;
  KernelArgs args;
  args.output = kind == OpKind::kStft || kind == OpKind::kInverseStft ? 2 : 0;
  args.decibel = kind == OpKind::kMfcc;
  args.power = defaults.power;
  args.amin = defaults.amin;
  args.ref_value = defaults.ref_value;
  args.dynamic_range = defaults.dynamic_range;
  args.db_multiplier = defaults.db_multiplier;
  tf_c::AttrReader attr(ctx);
  auto get = [&attr](const char* name, auto* field) -> std::string {
    const std::string arg = name;
    if (arg == "input_channels_first" || arg == "output_channels_first") {
      std::string format;
      attr.get(arg == "input_channels_first" ? "input_format" : "output_format", &format);
      *field = format == "channels_first";
    } else if (arg == "output") {
      if (attr.has(name)) {
        std::string output;
        attr.get(name, &output);
        *field = output == "mag_phase" ? 1 : 0;
      }
    } else if (attr.has(name)) {
      attr.get(name, field);
    }
    return "";  // TensorFlow's own failures stay in attr, which fails the construction
  };
  read_kernel_args(get, &args);
  if (!attr.ok()) return false;
  const std::string err = to_config(args, &a->cfg);
  if (!err.empty()) {
    attr.invalid(err);
    return false;
  }
  a->in_first = args.input_channels_first;
  a->out_first = args.output_channels_first;
  a->mfcc = kind == OpKind::kMfcc;
  return true;
}

// Runs fn and turns an allocation failure into a TF error instead of a crash.
template <class Fn>
void run_guarded(TF_OpKernelContext* ctx, Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    tf_c::fail(ctx, TF_RESOURCE_EXHAUSTED, "kapre_fast: out of memory for scratch buffers");
  }
}

// The inputs of one front-end call: kept alive until the kernel has run.
struct FrontEndInputs {
  tf_c::Tensor audio, window, starts, lengths, weights, dct, out;
};

// The filterbank inputs 2..4 of KapreFastFrontEnd.
inline bool read_bands(TF_OpKernelContext* ctx, FrontEndInputs* in, BandView* bands) {
  if (!in->starts.input(ctx, 2) || !in->lengths.input(ctx, 3) || !in->weights.input(ctx, 4)) {
    return false;
  }
  if (in->starts.dims() != 1 || in->lengths.dims() != 1 || in->weights.dims() != 1) {
    return tf_c::invalid(ctx, "band_start, band_length and band_weights must be 1-D");
  }
  if (in->starts.dim(0) != in->lengths.dim(0)) {
    return tf_c::invalid(ctx, "band_start has " + std::to_string(in->starts.dim(0)) +
                                  " entries but band_length has " +
                                  std::to_string(in->lengths.dim(0)));
  }
  bands->n_bands = in->starts.dim(0);
  bands->start = in->starts.data<int32_t>();
  bands->length = in->lengths.data<int32_t>();
  bands->weights = in->weights.data<float>();
  bands->n_weights = in->weights.dim(0);
  return true;
}

// The window input against the attributes and the filterbank.
inline bool read_window(TF_OpKernelContext* ctx, const FrontEndConfig& cfg, const BandView& bands,
                        tf_c::Tensor* window) {
  if (!window->input(ctx, 1)) return false;
  if (window->dims() != 1) {
    return tf_c::invalid(ctx, "window must be 1-D, got shape " + window->shape());
  }
  const std::string err = check_config(cfg, window->dim(0), bands);
  return err.empty() || tf_c::invalid(ctx, err);
}

// The audio input 0: its shape against the config (the data is not read here).
inline bool read_audio(TF_OpKernelContext* ctx, const Attrs& a, const BandView& bands,
                       tf_c::Tensor* audio, SignalView* sig) {
  if (!audio->input(ctx, 0)) return false;
  if (audio->dims() != 3) {
    return tf_c::invalid(ctx,
                         std::string("audio must be 3-D ") +
                             (a.in_first ? "(batch, channels, time)" : "(batch, time, channels)") +
                             ", got shape " + audio->shape());
  }
  *sig =
      contiguous_signal(audio->data<const float>(), audio->dim(0), audio->dim(a.in_first ? 1 : 2),
                        audio->dim(a.in_first ? 2 : 1), a.in_first);
  const std::string err = check_signal(a.cfg, bands, *sig);
  return err.empty() || tf_c::invalid(ctx, err);
}

// KapreFastMfcc's (n_mels, n_mfcc) matrix, input 5, against the filterbank.
inline bool read_dct(TF_OpKernelContext* ctx, const Attrs& a, const BandView& bands,
                     tf_c::Tensor* matrix, DctView* dct) {
  if (!matrix->input(ctx, 5)) return false;
  if (matrix->dims() != 2) {
    return tf_c::invalid(ctx, "dct must be 2-D (n_mels, n_mfcc), got shape " + matrix->shape());
  }
  dct->n_in = matrix->dim(0);
  dct->n_out = matrix->dim(1);
  dct->matrix = matrix->data<const float>();
  const std::string err = check_dct(a.cfg, bands, *dct);
  return err.empty() || tf_c::invalid(ctx, err);
}

// One checked KapreFastFrontEnd, KapreFastMfcc or KapreFastStft call (a complex cfg.output is
// the STFT, which has no filterbank inputs) and its allocated output: (batch, out_channels,
// frames, features) or (batch, frames, features, out_channels), float32 or complex64.
struct FrontEndCall {
  FrontEndInputs tensors;
  BandView bands;
  SignalView signal;
  const float* window = nullptr;
  int64_t frames = 0, features = 0, out_channels = 0;
  float* out = nullptr;  // the output's floats (complex: interleaved)
  DctView dct;
};

inline bool prepare_front_end(TF_OpKernelContext* ctx, const Attrs& a, FrontEndCall* call) {
  FrontEndInputs& t = call->tensors;
  if (a.cfg.output != OutputKind::kComplex && !read_bands(ctx, &t, &call->bands)) return false;
  if (!read_window(ctx, a.cfg, call->bands, &t.window)) return false;
  if (a.mfcc && !read_dct(ctx, a, call->bands, &t.dct, &call->dct)) return false;
  if (!read_audio(ctx, a, call->bands, &t.audio, &call->signal)) return false;
  const SignalView& sig = call->signal;
  call->window = t.window.data<const float>();
  const ResultShape shape =
      result_shape(a.cfg, a.mfcc ? call->dct.n_out : feature_count(a.cfg, call->bands),
                   sig.channels, sig.time, a.out_first);
  call->frames = shape.frames;
  call->features = shape.features;
  call->out_channels = shape.channels;
  std::vector<int64_t> dims{sig.batch};
  dims.insert(dims.end(), shape.axes.begin(), shape.axes.end());
  if (!t.out.output(ctx, 0, a.cfg.output == OutputKind::kComplex ? TF_COMPLEX64 : TF_FLOAT, dims)) {
    return false;
  }
  call->out = t.out.data<float>();
  return true;
}

// One checked KapreFastInverseStft call and its allocated waveform (batch, channels, length)
// or (batch, length, channels).
struct InverseStftCall {
  tf_c::Tensor stft, window, output;
  ComplexInputView in;  // strides in floats
  const float* window_values = nullptr;
  int64_t length = 0;
  float* out = nullptr;
};

inline bool prepare_inverse_stft(TF_OpKernelContext* ctx, const Attrs& a, InverseStftCall* call) {
  if (!call->stft.input(ctx, 0) || !call->window.input(ctx, 1)) return false;
  const tf_c::Tensor& stft = call->stft;
  if (stft.dims() != 4) {
    return tf_c::invalid(ctx, std::string("stft must be 4-D ") +
                                  (a.in_first ? "(batch, channels, frames, bins)"
                                              : "(batch, frames, bins, channels)") +
                                  ", got shape " + stft.shape());
  }
  if (call->window.dims() != 1) {
    return tf_c::invalid(ctx, "window must be 1-D, got shape " + call->window.shape());
  }
  const int64_t b = stft.dim(0);
  const int64_t c = stft.dim(a.in_first ? 1 : 3);
  const int64_t f = stft.dim(a.in_first ? 2 : 1);
  const int64_t k = stft.dim(a.in_first ? 3 : 2);
  call->in = contiguous_complex(stft.data<const float>(), b, c, f, k, a.in_first);
  const std::string err = check_istft(a.cfg, call->window.dim(0), call->in);
  if (!err.empty()) return tf_c::invalid(ctx, err);
  call->window_values = call->window.data<const float>();
  call->length = istft_length(a.cfg, f);
  if (!call->output.output(ctx, 0, TF_FLOAT,
                           a.out_first ? std::vector<int64_t>{b, c, call->length}
                                       : std::vector<int64_t>{b, call->length, c})) {
    return false;
  }
  call->out = call->output.data<float>();
  return true;
}

}  // namespace tf_op
}  // namespace kapre_fast
