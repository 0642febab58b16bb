// CPU kernels for the ops in ops.cc: thin adapters over csrc/core.
// Inputs are validated by op_args.h (shared with the GPU kernels in kernels_gpu.cc) before the
// core touches any memory; work is split over TF's intra-op thread pool.
#include "../core/pcen.h"
#include "op_args.h"

namespace kapre_fast {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using tf_op::OpKind;

ParallelFor tf_parallel(OpKernelContext* ctx) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [workers](int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    workers->ParallelFor(n, tsl::thread::ThreadPool::SchedulingParams::Adaptive(cost), fn);
  };
}

// KapreFastFrontEnd (kind kFrontEnd), KapreFastMfcc (kMfcc) and KapreFastStft (kStft).
template <OpKind kind>
class FrontEndOp : public OpKernel {
 public:
  explicit FrontEndOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    tf_op::read_attrs(ctx, kind, &a_);
  }

  void Compute(OpKernelContext* ctx) override {
    tf_op::FrontEndCall call;
    if (!tf_op::prepare_front_end(ctx, a_, &call)) return;
    const bool complex = a_.cfg.output == OutputKind::kComplex;
    FeatureView out = contiguous_features(call.out, call.out_channels, call.frames, call.features,
                                          a_.out_first, complex ? 2 : 1);
    if (a_.cfg.output == OutputKind::kMagPhase) {
      out.phase = call.out + call.signal.channels * out.sc;
    }
    tf_op::run_guarded(ctx, [&] {
      if (a_.mfcc) {
        compute_mfcc(a_.cfg, call.window, call.bands, call.dct, call.signal, out, tf_parallel(ctx));
      } else {
        compute_frontend(a_.cfg, call.window, call.bands, call.signal, out, tf_parallel(ctx));
      }
    });
  }

 private:
  tf_op::Attrs a_;
};

class InverseStftOp : public OpKernel {
 public:
  explicit InverseStftOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    tf_op::read_attrs(ctx, OpKind::kInverseStft, &a_);
  }

  void Compute(OpKernelContext* ctx) override {
    tf_op::InverseStftCall call;
    if (!tf_op::prepare_inverse_stft(ctx, a_, &call)) return;
    const SignalOutView out =
        contiguous_signal_out(call.out, call.in.channels, call.length, a_.out_first);
    tf_op::run_guarded(ctx,
                       [&] { compute_istft(a_.cfg, call.window, call.in, out, tf_parallel(ctx)); });
  }

 private:
  tf_op::Attrs a_;
};

// KapreFastPcen: csrc/core/pcen over a contiguous 4-D float tensor in its data_format.
class PcenOp : public OpKernel {
 public:
  explicit PcenOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    float value = 0.0f;
    for (auto [name, field] : {std::pair<const char*, double*>{"b", &p_.b},
                               {"gain", &p_.gain},
                               {"bias", &p_.bias},
                               {"power", &p_.power},
                               {"eps", &p_.eps}}) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr(name, &value));
      *field = value;
    }
    std::string format;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("data_format", &format));
    first_ = format == "channels_first";
  }

  void Compute(OpKernelContext* ctx) override {
    const ::tensorflow::Tensor& in = ctx->input(0);
    OP_REQUIRES(
        ctx, in.dims() == 4,
        ::tensorflow::errors::InvalidArgument(
            "features must be 4-D ",
            first_ ? "(batch, channels, frames, features)" : "(batch, frames, features, channels)",
            ", got shape ", in.shape().DebugString()));
    FeatureShape shape;
    shape.batch = in.dim_size(0);
    shape.channels = in.dim_size(first_ ? 1 : 3);
    shape.frames = in.dim_size(first_ ? 2 : 1);
    shape.features = in.dim_size(first_ ? 3 : 2);
    const std::string err = check_pcen(p_, shape);
    OP_REQUIRES(ctx, err.empty(), ::tensorflow::errors::InvalidArgument(err));
    ::tensorflow::Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.shape(), &output));
    const FeatureView out = contiguous_features(output->flat<float>().data(), shape.channels,
                                                shape.frames, shape.features, first_, 1);
    tf_op::run_guarded(
        ctx, [&] { compute_pcen(p_, shape, in.flat<float>().data(), out, tf_parallel(ctx)); });
  }

 private:
  PcenParams p_;
  bool first_ = false;
};

REGISTER_KERNEL_BUILDER(Name("KapreFastMfcc").Device(::tensorflow::DEVICE_CPU),
                        FrontEndOp<OpKind::kMfcc>);
REGISTER_KERNEL_BUILDER(Name("KapreFastPcen").Device(::tensorflow::DEVICE_CPU), PcenOp);
REGISTER_KERNEL_BUILDER(Name("KapreFastFrontEnd").Device(::tensorflow::DEVICE_CPU),
                        FrontEndOp<OpKind::kFrontEnd>);
REGISTER_KERNEL_BUILDER(Name("KapreFastStft").Device(::tensorflow::DEVICE_CPU),
                        FrontEndOp<OpKind::kStft>);
REGISTER_KERNEL_BUILDER(Name("KapreFastInverseStft").Device(::tensorflow::DEVICE_CPU),
                        InverseStftOp);

}  // namespace
}  // namespace kapre_fast
