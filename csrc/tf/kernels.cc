// CPU kernels for the ops in ops.cc: thin adapters over csrc/core.
// Inputs are validated here (eager calls skip the shape functions) before the
// core touches any memory; work is split over TF's intra-op thread pool.
#include <complex>
#include <new>
#include <string>

#include "../core/layout.h"
#include "../core/pipeline.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace kapre_fast {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

ParallelFor tf_parallel(OpKernelContext* ctx) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [workers](int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    workers->ParallelFor(n, tsl::thread::ThreadPool::SchedulingParams::Adaptive(cost), fn);
  };
}

// Reads the attributes shared by every framing op.
void read_framing(OpKernelConstruction* ctx, FrontEndConfig* cfg, bool* in_first,
                  bool* out_first) {
  OP_REQUIRES_OK(ctx, ctx->GetAttr("n_fft", &cfg->n_fft));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("win_length", &cfg->win_length));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("hop_length", &cfg->hop_length));
  std::string in_format, out_format;
  OP_REQUIRES_OK(ctx, ctx->GetAttr("input_format", &in_format));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("output_format", &out_format));
  *in_first = in_format == "channels_first";
  *out_first = out_format == "channels_first";
}

// Fails the op with `status` and returns false (OP_REQUIRES can only `return;`).
bool fail(OpKernelContext* ctx, const ::tensorflow::Status& status) {
  ctx->CtxFailure(status);
  return false;
}

// Runs the core and turns an allocation failure into a TF error instead of a crash.
template <class Fn>
void run_guarded(OpKernelContext* ctx, Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    ctx->CtxFailure(errors::ResourceExhausted("kapre_fast: out of memory for scratch buffers"));
  }
}

bool read_audio(OpKernelContext* ctx, const FrontEndConfig& cfg, const BandView& bands,
                bool in_first, SignalView* sig) {
  const Tensor& audio = ctx->input(0);
  if (audio.dims() != 3) {
    return fail(ctx, errors::InvalidArgument(
                         "audio must be 3-D ",
                         in_first ? "(batch, channels, time)" : "(batch, time, channels)",
                         ", got shape ", audio.shape().DebugString()));
  }
  *sig = contiguous_signal(audio.flat<float>().data(), audio.dim_size(0),
                           audio.dim_size(in_first ? 1 : 2), audio.dim_size(in_first ? 2 : 1),
                           in_first);
  const std::string err = check_signal(cfg, bands, *sig);
  return err.empty() || fail(ctx, errors::InvalidArgument(err));
}

bool read_window(OpKernelContext* ctx, int index, const FrontEndConfig& cfg, const BandView& bands) {
  const Tensor& window = ctx->input(index);
  if (window.dims() != 1) {
    return fail(ctx, errors::InvalidArgument("window must be 1-D, got shape ",
                                             window.shape().DebugString()));
  }
  const std::string err = check_config(cfg, window.dim_size(0), bands);
  return err.empty() || fail(ctx, errors::InvalidArgument(err));
}

class FrontEndOp : public OpKernel {
 public:
  explicit FrontEndOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    read_framing(ctx, &cfg_, &in_first_, &out_first_);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_begin", &cfg_.pad_begin));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_end", &cfg_.pad_end));
    std::string output;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output", &output));
    cfg_.output = output == "mag_phase" ? OutputKind::kMagPhase : OutputKind::kMagnitude;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("decibel", &cfg_.decibel));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("amin", &cfg_.amin));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("ref_value", &cfg_.ref_value));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dynamic_range", &cfg_.dynamic_range));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& starts = ctx->input(2);
    const Tensor& lengths = ctx->input(3);
    const Tensor& weights = ctx->input(4);
    OP_REQUIRES(ctx, starts.dims() == 1 && lengths.dims() == 1 && weights.dims() == 1,
                errors::InvalidArgument("band_start, band_length and band_weights must be 1-D"));
    OP_REQUIRES(ctx, starts.dim_size(0) == lengths.dim_size(0),
                errors::InvalidArgument("band_start has ", starts.dim_size(0),
                                        " entries but band_length has ", lengths.dim_size(0)));
    BandView bands;
    bands.n_bands = starts.dim_size(0);
    bands.start = starts.flat<int32_t>().data();
    bands.length = lengths.flat<int32_t>().data();
    bands.weights = weights.flat<float>().data();
    bands.n_weights = weights.dim_size(0);
    if (!read_window(ctx, 1, cfg_, bands)) return;
    SignalView sig;
    if (!read_audio(ctx, cfg_, bands, in_first_, &sig)) return;

    const int64_t frames = frame_count(cfg_, sig.time);
    const int64_t features = feature_count(cfg_, bands);
    const int64_t out_ch = cfg_.output == OutputKind::kMagPhase ? 2 * sig.channels : sig.channels;
    const TensorShape shape = out_first_ ? TensorShape({sig.batch, out_ch, frames, features})
                                         : TensorShape({sig.batch, frames, features, out_ch});
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &output));
    float* data = output->flat<float>().data();
    FeatureView out = contiguous_features(data, out_ch, frames, features, out_first_, 1);
    if (cfg_.output == OutputKind::kMagPhase) out.phase = data + sig.channels * out.sc;
    const float* window = ctx->input(1).flat<float>().data();
    run_guarded(ctx, [&] { compute_frontend(cfg_, window, bands, sig, out, tf_parallel(ctx)); });
  }

 private:
  FrontEndConfig cfg_;
  bool in_first_ = false, out_first_ = false;
};

class StftOp : public OpKernel {
 public:
  explicit StftOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    read_framing(ctx, &cfg_, &in_first_, &out_first_);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_begin", &cfg_.pad_begin));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_end", &cfg_.pad_end));
    cfg_.output = OutputKind::kComplex;
  }

  void Compute(OpKernelContext* ctx) override {
    const BandView none;
    if (!read_window(ctx, 1, cfg_, none)) return;
    SignalView sig;
    if (!read_audio(ctx, cfg_, none, in_first_, &sig)) return;
    const int64_t frames = frame_count(cfg_, sig.time);
    const int64_t bins = cfg_.n_fft / 2 + 1;
    const TensorShape shape = out_first_ ? TensorShape({sig.batch, sig.channels, frames, bins})
                                         : TensorShape({sig.batch, frames, bins, sig.channels});
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &output));
    float* data = reinterpret_cast<float*>(output->flat<std::complex<float>>().data());
    const FeatureView out = contiguous_features(data, sig.channels, frames, bins, out_first_, 2);
    const float* window = ctx->input(1).flat<float>().data();
    run_guarded(ctx, [&] { compute_frontend(cfg_, window, none, sig, out, tf_parallel(ctx)); });
  }

 private:
  FrontEndConfig cfg_;
  bool in_first_ = false, out_first_ = false;
};

class InverseStftOp : public OpKernel {
 public:
  explicit InverseStftOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    read_framing(ctx, &cfg_, &in_first_, &out_first_);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& stft = ctx->input(0);
    const Tensor& window = ctx->input(1);
    OP_REQUIRES(ctx, stft.dims() == 4,
                errors::InvalidArgument("stft must be 4-D ",
                                        in_first_ ? "(batch, channels, frames, bins)"
                                                  : "(batch, frames, bins, channels)",
                                        ", got shape ", stft.shape().DebugString()));
    OP_REQUIRES(ctx, window.dims() == 1,
                errors::InvalidArgument("window must be 1-D, got shape ",
                                        window.shape().DebugString()));
    const int64_t b = stft.dim_size(0);
    const int64_t c = stft.dim_size(in_first_ ? 1 : 3);
    const int64_t f = stft.dim_size(in_first_ ? 2 : 1);
    const int64_t k = stft.dim_size(in_first_ ? 3 : 2);
    const ComplexInputView in = contiguous_complex(
        reinterpret_cast<const float*>(stft.flat<std::complex<float>>().data()), b, c, f, k,
        in_first_);
    const std::string err = check_istft(cfg_, window.dim_size(0), in);
    OP_REQUIRES(ctx, err.empty(), errors::InvalidArgument(err));
    const int64_t length = istft_length(cfg_, f);
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0,
                                             out_first_ ? TensorShape({b, c, length})
                                                        : TensorShape({b, length, c}),
                                             &output));
    const SignalOutView out =
        contiguous_signal_out(output->flat<float>().data(), c, length, out_first_);
    const float* win = window.flat<float>().data();
    run_guarded(ctx, [&] { compute_istft(cfg_, win, in, out, tf_parallel(ctx)); });
  }

 private:
  FrontEndConfig cfg_;
  bool in_first_ = false, out_first_ = false;
};

REGISTER_KERNEL_BUILDER(Name("KapreFastFrontEnd").Device(::tensorflow::DEVICE_CPU), FrontEndOp);
REGISTER_KERNEL_BUILDER(Name("KapreFastStft").Device(::tensorflow::DEVICE_CPU), StftOp);
REGISTER_KERNEL_BUILDER(Name("KapreFastInverseStft").Device(::tensorflow::DEVICE_CPU),
                        InverseStftOp);

}  // namespace
}  // namespace kapre_fast
