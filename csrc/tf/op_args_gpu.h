// What the CPU kernels (kernels.cc) and the GPU kernels (kernels_gpu.cc) share: reading the
// attributes, checking every input with the core's check_* functions and allocating the output.
// Both therefore reject exactly the same inputs with the same InvalidArgument messages (eager
// calls skip the shape functions). Only the shapes of the audio / spectrum are read here (on a
// GPU they live in device memory); the window and filterbank values are read on the host (the
// GPU kernels register them as HostMemory).
#pragma once

#include <cstdint>
#include <new>
#include <string>

#include "../core/layout.h"
#include "../core/pipeline.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace kapre_fast {
namespace tf_op {

using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

enum class OpKind { kFrontEnd, kStft, kInverseStft, kMfcc };

// The attributes of one op node, read once by the kernel's constructor.
struct Attrs {
  FrontEndConfig cfg;
  bool in_first = false, out_first = false;
  bool mfcc = false;  // KapreFastMfcc: decibel magnitudes, then the dct input's matrix
};

inline void read_attrs(OpKernelConstruction* ctx, OpKind kind, Attrs* a) {
  FrontEndConfig& cfg = a->cfg;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("n_fft", &cfg.n_fft));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("win_length", &cfg.win_length));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("hop_length", &cfg.hop_length));
  std::string in_format, out_format;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("input_format", &in_format));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("output_format", &out_format));
  a->in_first = in_format == "channels_first";
  a->out_first = out_format == "channels_first";
  // The STFT's output; the inverse STFT's input (its check forces complex anyway).
  cfg.output = OutputKind::kComplex;
  if (kind == OpKind::kInverseStft) return;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_begin", &cfg.pad_begin));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_end", &cfg.pad_end));
  if (kind == OpKind::kStft) return;
  a->mfcc = kind == OpKind::kMfcc;
  std::string output = "magnitude";
  if (!a->mfcc) OP_REQUIRES_OK(ctx, ctx->GetAttr("output", &output));
  cfg.output = output == "mag_phase" ? OutputKind::kMagPhase : OutputKind::kMagnitude;
  cfg.decibel = a->mfcc;
  if (!a->mfcc) OP_REQUIRES_OK(ctx, ctx->GetAttr("decibel", &cfg.decibel));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("amin", &cfg.amin));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("ref_value", &cfg.ref_value));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("dynamic_range", &cfg.dynamic_range));
  int64_t power = 1;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("power", &power));
  // check_config names a bad value; one beyond int's range becomes -1 (never 1 or 2 by wrapping).
  cfg.power = power >= INT32_MIN && power <= INT32_MAX ? static_cast<int>(power) : -1;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("db_multiplier", &cfg.db_multiplier));
}

// Fails the op with `status` and returns false (OP_REQUIRES can only `return;`).
inline bool fail(OpKernelContext* ctx, const ::tensorflow::Status& status) {
  ctx->CtxFailure(status);
  return false;
}

// Runs fn and turns an allocation failure into a TF error instead of a crash.
template <class Fn>
void run_guarded(OpKernelContext* ctx, Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    ctx->CtxFailure(errors::ResourceExhausted("kapre_fast: out of memory for scratch buffers"));
  }
}

// The filterbank inputs 2..4 of KapreFastFrontEnd (host memory).
inline bool read_bands(OpKernelContext* ctx, BandView* bands) {
  const Tensor& starts = ctx->input(2);
  const Tensor& lengths = ctx->input(3);
  const Tensor& weights = ctx->input(4);
  if (starts.dims() != 1 || lengths.dims() != 1 || weights.dims() != 1) {
    return fail(ctx,
                errors::InvalidArgument("band_start, band_length and band_weights must be 1-D"));
  }
  if (starts.dim_size(0) != lengths.dim_size(0)) {
    return fail(ctx, errors::InvalidArgument("band_start has ", starts.dim_size(0),
                                             " entries but band_length has ", lengths.dim_size(0)));
  }
  bands->n_bands = starts.dim_size(0);
  bands->start = starts.flat<int32_t>().data();
  bands->length = lengths.flat<int32_t>().data();
  bands->weights = weights.flat<float>().data();
  bands->n_weights = weights.dim_size(0);
  return true;
}

// The window input (host memory) against the attributes and the filterbank.
inline bool read_window(OpKernelContext* ctx, const FrontEndConfig& cfg, const BandView& bands) {
  const Tensor& window = ctx->input(1);
  if (window.dims() != 1) {
    return fail(ctx, errors::InvalidArgument("window must be 1-D, got shape ",
                                             window.shape().DebugString()));
  }
  const std::string err = check_config(cfg, window.dim_size(0), bands);
  return err.empty() || fail(ctx, errors::InvalidArgument(err));
}

// The audio input 0: its shape only (the data pointer is not dereferenced).
inline bool read_audio(OpKernelContext* ctx, const Attrs& a, const BandView& bands,
                       SignalView* sig) {
  const Tensor& audio = ctx->input(0);
  if (audio.dims() != 3) {
    return fail(ctx, errors::InvalidArgument(
                         "audio must be 3-D ",
                         a.in_first ? "(batch, channels, time)" : "(batch, time, channels)",
                         ", got shape ", audio.shape().DebugString()));
  }
  *sig = contiguous_signal(static_cast<const float*>(audio.data()), audio.dim_size(0),
                           audio.dim_size(a.in_first ? 1 : 2), audio.dim_size(a.in_first ? 2 : 1),
                           a.in_first);
  const std::string err = check_signal(a.cfg, bands, *sig);
  return err.empty() || fail(ctx, errors::InvalidArgument(err));
}

// One checked KapreFastFrontEnd or KapreFastStft call (a complex cfg.output is the STFT, which
// has no filterbank inputs) and its allocated output: (batch, out_channels, frames, features)
// or (batch, frames, features, out_channels), float32 or complex64.
struct FrontEndCall {
  BandView bands;
  SignalView signal;
  const float* window = nullptr;  // host memory
  int64_t frames = 0, features = 0, out_channels = 0;
  float* out = nullptr;  // the output's floats (complex: interleaved)
  DctView dct;           // KapreFastMfcc's input 5 (host memory)
};

// KapreFastMfcc's (n_mels, n_mfcc) matrix, input 5, against the filterbank.
inline bool read_dct(OpKernelContext* ctx, const Attrs& a, const BandView& bands, DctView* dct) {
  const Tensor& matrix = ctx->input(5);
  if (matrix.dims() != 2) {
    return fail(ctx, errors::InvalidArgument("dct must be 2-D (n_mels, n_mfcc), got shape ",
                                             matrix.shape().DebugString()));
  }
  dct->n_in = matrix.dim_size(0);
  dct->n_out = matrix.dim_size(1);
  dct->matrix = matrix.flat<float>().data();
  const std::string err = check_dct(a.cfg, bands, *dct);
  return err.empty() || fail(ctx, errors::InvalidArgument(err));
}

inline bool prepare_front_end(OpKernelContext* ctx, const Attrs& a, FrontEndCall* call) {
  if (a.cfg.output != OutputKind::kComplex && !read_bands(ctx, &call->bands)) return false;
  if (!read_window(ctx, a.cfg, call->bands)) return false;
  if (a.mfcc && !read_dct(ctx, a, call->bands, &call->dct)) return false;
  if (!read_audio(ctx, a, call->bands, &call->signal)) return false;
  const SignalView& sig = call->signal;
  call->window = ctx->input(1).flat<float>().data();
  call->frames = frame_count(a.cfg, sig.time);
  call->features = a.mfcc ? call->dct.n_out : feature_count(a.cfg, call->bands);
  call->out_channels = a.cfg.output == OutputKind::kMagPhase ? 2 * sig.channels : sig.channels;
  const TensorShape shape =
      a.out_first ? TensorShape({sig.batch, call->out_channels, call->frames, call->features})
                  : TensorShape({sig.batch, call->frames, call->features, call->out_channels});
  Tensor* output = nullptr;
  const ::tensorflow::Status status = ctx->allocate_output(0, shape, &output);
  if (!status.ok()) return fail(ctx, status);
  call->out = static_cast<float*>(output->data());
  return true;
}

// One checked KapreFastInverseStft call and its allocated waveform (batch, channels, length)
// or (batch, length, channels).
struct InverseStftCall {
  ComplexInputView in;            // strides in floats
  const float* window = nullptr;  // host memory
  int64_t length = 0;
  float* out = nullptr;
};

inline bool prepare_inverse_stft(OpKernelContext* ctx, const Attrs& a, InverseStftCall* call) {
  const Tensor& stft = ctx->input(0);
  const Tensor& window = ctx->input(1);
  if (stft.dims() != 4) {
    return fail(ctx, errors::InvalidArgument("stft must be 4-D ",
                                             a.in_first ? "(batch, channels, frames, bins)"
                                                        : "(batch, frames, bins, channels)",
                                             ", got shape ", stft.shape().DebugString()));
  }
  if (window.dims() != 1) {
    return fail(ctx, errors::InvalidArgument("window must be 1-D, got shape ",
                                             window.shape().DebugString()));
  }
  const int64_t b = stft.dim_size(0);
  const int64_t c = stft.dim_size(a.in_first ? 1 : 3);
  const int64_t f = stft.dim_size(a.in_first ? 2 : 1);
  const int64_t k = stft.dim_size(a.in_first ? 3 : 2);
  call->in = contiguous_complex(static_cast<const float*>(stft.data()), b, c, f, k, a.in_first);
  const std::string err = check_istft(a.cfg, window.dim_size(0), call->in);
  if (!err.empty()) return fail(ctx, errors::InvalidArgument(err));
  call->window = window.flat<float>().data();
  call->length = istft_length(a.cfg, f);
  Tensor* output = nullptr;
  const ::tensorflow::Status status = ctx->allocate_output(
      0, a.out_first ? TensorShape({b, c, call->length}) : TensorShape({b, call->length, c}),
      &output);
  if (!status.ok()) return fail(ctx, status);
  call->out = output->flat<float>().data();
  return true;
}

}  // namespace tf_op
}  // namespace kapre_fast
