// CPU kernels for the ops in ops.cc: thin adapters over csrc/core.
// Inputs are validated by op_args.h (shared with the GPU kernels in kernels_gpu.cc) before the
// core touches any memory; work is split over TF's intra-op thread pool.
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

// KapreFastFrontEnd (kind kFrontEnd) and KapreFastStft (kind kStft).
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
      compute_frontend(a_.cfg, call.window, call.bands, call.signal, out, tf_parallel(ctx));
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
    tf_op::run_guarded(ctx, [&] {
      compute_istft(a_.cfg, call.window, call.in, out, tf_parallel(ctx));
    });
  }

 private:
  tf_op::Attrs a_;
};

REGISTER_KERNEL_BUILDER(Name("KapreFastFrontEnd").Device(::tensorflow::DEVICE_CPU),
                        FrontEndOp<OpKind::kFrontEnd>);
REGISTER_KERNEL_BUILDER(Name("KapreFastStft").Device(::tensorflow::DEVICE_CPU),
                        FrontEndOp<OpKind::kStft>);
REGISTER_KERNEL_BUILDER(Name("KapreFastInverseStft").Device(::tensorflow::DEVICE_CPU),
                        InverseStftOp);

}  // namespace
}  // namespace kapre_fast
