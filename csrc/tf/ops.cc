// TensorFlow op declarations and shape functions only; kernels live in kernels.cc.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace kapre_fast {
namespace {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Frames as tf.signal.frame counts them, or unknown when the time axis is.
Status frames_dim(InferenceContext* c, DimensionHandle time, DimensionHandle* out) {
  int64_t win = 0, hop = 0, pad_begin = 0;
  bool pad_end = false;
  TF_RETURN_IF_ERROR(c->GetAttr("win_length", &win));
  TF_RETURN_IF_ERROR(c->GetAttr("hop_length", &hop));
  TF_RETURN_IF_ERROR(c->GetAttr("pad_begin", &pad_begin));
  TF_RETURN_IF_ERROR(c->GetAttr("pad_end", &pad_end));
  if (win < 1 || hop < 1 || pad_begin < 0) {
    return tensorflow::errors::InvalidArgument(
        "win_length and hop_length must be >= 1 and "
        "pad_begin >= 0, got ",
        win, ", ", hop, ", ", pad_begin);
  }
  if (!c->ValueKnown(time)) {
    *out = c->UnknownDim();
    return Status();
  }
  const int64_t t = c->Value(time) + pad_begin;
  int64_t frames = 0;
  if (pad_end) {
    frames = (t + hop - 1) / hop;
  } else if (t >= win) {
    frames = 1 + (t - win) / hop;
  }
  if (frames < 1) {
    return tensorflow::errors::InvalidArgument("audio has ", c->Value(time), " samples (", t,
                                               " after pad_begin); one frame needs win_length=",
                                               win, " samples: pass longer audio or pad_end=True");
  }
  *out = c->MakeDim(frames);
  return Status();
}

// (batch, ch, time) dims of the audio input in its format.
Status audio_dims(InferenceContext* c, int input, const char* format_attr, DimensionHandle* batch,
                  DimensionHandle* ch, DimensionHandle* time) {
  ShapeHandle audio;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(input), 3, &audio));
  std::string format;
  TF_RETURN_IF_ERROR(c->GetAttr(format_attr, &format));
  const bool first = format == "channels_first";
  *batch = c->Dim(audio, 0);
  *ch = c->Dim(audio, first ? 1 : 2);
  *time = c->Dim(audio, first ? 2 : 1);
  return Status();
}

ShapeHandle feature_shape(InferenceContext* c, bool channels_first, DimensionHandle batch,
                          DimensionHandle ch, DimensionHandle frames, DimensionHandle feat) {
  return channels_first ? c->MakeShape({batch, ch, frames, feat})
                        : c->MakeShape({batch, frames, feat, ch});
}

Status front_end_shape(InferenceContext* c) {
  DimensionHandle batch, ch, time, frames;
  TF_RETURN_IF_ERROR(audio_dims(c, 0, "input_format", &batch, &ch, &time));
  TF_RETURN_IF_ERROR(frames_dim(c, time, &frames));
  ShapeHandle window, starts, lengths, weights;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &window));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &starts));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &lengths));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(4), 1, &weights));
  int64_t n_fft = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("n_fft", &n_fft));
  if (n_fft < 2) return tensorflow::errors::InvalidArgument("n_fft must be >= 2, got ", n_fft);
  DimensionHandle bands = c->Dim(starts, 0);
  DimensionHandle feat = c->UnknownDim();
  if (c->ValueKnown(bands))
    feat = c->MakeDim(c->Value(bands) > 0 ? c->Value(bands) : n_fft / 2 + 1);
  std::string output, format;
  TF_RETURN_IF_ERROR(c->GetAttr("output", &output));
  TF_RETURN_IF_ERROR(c->GetAttr("output_format", &format));
  if (output == "mag_phase") TF_RETURN_IF_ERROR(c->Multiply(ch, 2, &ch));
  c->set_output(0, feature_shape(c, format == "channels_first", batch, ch, frames, feat));
  return Status();
}

// KapreFastMfcc: the front end's (batch, frames, n_mels, ch) with n_mfcc = dct's columns.
Status mfcc_shape(InferenceContext* c) {
  DimensionHandle batch, ch, time, frames;
  TF_RETURN_IF_ERROR(audio_dims(c, 0, "input_format", &batch, &ch, &time));
  TF_RETURN_IF_ERROR(frames_dim(c, time, &frames));
  ShapeHandle vector, dct;
  for (int i = 1; i <= 4; ++i) TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 1, &vector));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(5), 2, &dct));
  std::string format;
  TF_RETURN_IF_ERROR(c->GetAttr("output_format", &format));
  c->set_output(0, feature_shape(c, format == "channels_first", batch, ch, frames, c->Dim(dct, 1)));
  return Status();
}

// KapreFastPcen: the features' own shape (rank 4).
Status pcen_shape(InferenceContext* c) {
  ShapeHandle features;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &features));
  c->set_output(0, features);
  return Status();
}

Status stft_shape(InferenceContext* c) {
  DimensionHandle batch, ch, time, frames;
  TF_RETURN_IF_ERROR(audio_dims(c, 0, "input_format", &batch, &ch, &time));
  TF_RETURN_IF_ERROR(frames_dim(c, time, &frames));
  ShapeHandle window;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &window));
  int64_t n_fft = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("n_fft", &n_fft));
  if (n_fft < 2) return tensorflow::errors::InvalidArgument("n_fft must be >= 2, got ", n_fft);
  std::string format;
  TF_RETURN_IF_ERROR(c->GetAttr("output_format", &format));
  c->set_output(0, feature_shape(c, format == "channels_first", batch, ch, frames,
                                 c->MakeDim(n_fft / 2 + 1)));
  return Status();
}

Status inverse_stft_shape(InferenceContext* c) {
  ShapeHandle stft, window;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &stft));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &window));
  std::string in_format, out_format;
  TF_RETURN_IF_ERROR(c->GetAttr("input_format", &in_format));
  TF_RETURN_IF_ERROR(c->GetAttr("output_format", &out_format));
  int64_t win = 0, hop = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("win_length", &win));
  TF_RETURN_IF_ERROR(c->GetAttr("hop_length", &hop));
  const bool in_first = in_format == "channels_first";
  DimensionHandle batch = c->Dim(stft, 0);
  DimensionHandle ch = c->Dim(stft, in_first ? 1 : 3);
  DimensionHandle frames = c->Dim(stft, in_first ? 2 : 1);
  DimensionHandle time = c->UnknownDim();
  if (c->ValueKnown(frames) && c->Value(frames) >= 1) {
    time = c->MakeDim((c->Value(frames) - 1) * hop + win);
  }
  c->set_output(0, out_format == "channels_first" ? c->MakeShape({batch, ch, time})
                                                  : c->MakeShape({batch, time, ch}));
  return Status();
}

}  // namespace
}  // namespace kapre_fast

#define KF_FRAMING_ATTRS                                                           \
  Attr("n_fft: int")                                                               \
      .Attr("win_length: int")                                                     \
      .Attr("hop_length: int")                                                     \
      .Attr("pad_begin: int = 0")                                                  \
      .Attr("pad_end: bool = false")                                               \
      .Attr("input_format: {'channels_last', 'channels_first'} = 'channels_last'") \
      .Attr("output_format: {'channels_last', 'channels_first'} = 'channels_last'")

REGISTER_OP("KapreFastFrontEnd")
    .Input("audio: float")
    .Input("window: float")
    .Input("band_start: int32")
    .Input("band_length: int32")
    .Input("band_weights: float")
    .Output("features: float")
    .KF_FRAMING_ATTRS.Attr("output: {'magnitude', 'mag_phase'} = 'magnitude'")
    .Attr("decibel: bool = false")
    .Attr("amin: float = 1e-5")
    .Attr("ref_value: float = 1.0")
    .Attr("dynamic_range: float = 80.0")
    .Attr("power: int = 1")
    .Attr("db_multiplier: float = 10.0")
    .SetShapeFn(kapre_fast::front_end_shape)
    .Doc("Fused pad > frame > window > |rFFT| (> phase) > sparse filterbank > dB (kapre).");

REGISTER_OP("KapreFastMfcc")
    .Input("audio: float")
    .Input("window: float")
    .Input("band_start: int32")
    .Input("band_length: int32")
    .Input("band_weights: float")
    .Input("dct: float")
    .Output("mfcc: float")
    .KF_FRAMING_ATTRS.Attr("amin: float = 1e-5")
    .Attr("ref_value: float = 1.0")
    .Attr("dynamic_range: float = 80.0")
    .Attr("power: int = 1")
    .Attr("db_multiplier: float = 10.0")
    .SetShapeFn(kapre_fast::mfcc_shape)
    .Doc(
        "KapreFastFrontEnd's dB filterbank output (magnitude, decibel) times the (n_mels, "
        "n_mfcc) `dct` matrix, applied per example after the clamp.");

REGISTER_OP("KapreFastPcen")
    .Input("features: float")
    .Output("pcen: float")
    .Attr("b: float")
    .Attr("gain: float")
    .Attr("bias: float")
    .Attr("power: float")
    .Attr("eps: float")
    .Attr("data_format: {'channels_last', 'channels_first'} = 'channels_last'")
    .SetShapeFn(kapre_fast::pcen_shape)
    .Doc(
        "librosa.pcen (max_size=1) along the frames of (batch, frames, features, ch) or "
        "(batch, ch, frames, features) filterbank features.");

REGISTER_OP("KapreFastStft")
    .Input("audio: float")
    .Input("window: float")
    .Output("stft: complex64")
    .KF_FRAMING_ATTRS.SetShapeFn(kapre_fast::stft_shape)
    .Doc("Complex STFT with kapre's padding and layouts.");

REGISTER_OP("KapreFastInverseStft")
    .Input("stft: complex64")
    .Input("window: float")
    .Output("audio: float")
    .Attr("n_fft: int")
    .Attr("win_length: int")
    .Attr("hop_length: int")
    .Attr("input_format: {'channels_last', 'channels_first'} = 'channels_last'")
    .Attr("output_format: {'channels_last', 'channels_first'} = 'channels_last'")
    .SetShapeFn(kapre_fast::inverse_stft_shape)
    .Doc("tf.signal.inverse_stft with a given synthesis window, in kapre's layouts.");
