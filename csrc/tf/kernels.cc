// CPU kernels for the ops in ops.cc: thin adapters over csrc/core, written against TensorFlow's
// C kernel API only (tensorflow/c/kernels.h), so this library loads in every supported release.
// Inputs are validated by op_args.h before the core touches any memory.
//
// Threads: the C API does not reach TensorFlow's intra-op thread pool, so the work is split over
// the core's own worker pool (csrc/core/worker_pool.h, thread_pool_for) with as many threads as
// TensorFlow's intra-op setting: kapre_fast/_loader.py passes
// tf.config.threading.get_intra_op_parallelism_threads() through KapreFastTfSetThreads when it
// loads the library (0, TensorFlow's default, is every core).
#include <atomic>
#include <cstdio>
#include <string>

#include "../core/pcen.h"
#include "op_args.h"

namespace kapre_fast {
namespace {

using tf_op::OpKind;

std::atomic<int> g_threads{0};

ParallelFor tf_parallel() { return thread_pool_for(g_threads.load(std::memory_order_relaxed)); }

// KapreFastFrontEnd (kind kFrontEnd), KapreFastMfcc (kMfcc) and KapreFastStft (kStft).
template <OpKind kind>
struct FrontEndKernel {
  tf_op::Attrs a;

  static void* create(TF_OpKernelConstruction* ctx) {
    auto* k = new FrontEndKernel;
    tf_op::read_attrs(ctx, kind, &k->a);
    return k;
  }

  static void compute(void* self, TF_OpKernelContext* ctx) {
    const tf_op::Attrs& a = static_cast<FrontEndKernel*>(self)->a;
    tf_op::FrontEndCall call;
    if (!tf_op::prepare_front_end(ctx, a, &call)) return;
    const bool complex = a.cfg.output == OutputKind::kComplex;
    FeatureView out = contiguous_features(call.out, call.out_channels, call.frames, call.features,
                                          a.out_first, complex ? 2 : 1);
    if (a.cfg.output == OutputKind::kMagPhase) out.phase = call.out + call.signal.channels * out.sc;
    tf_op::run_guarded(ctx, [&] {
      if (a.mfcc) {
        compute_mfcc(a.cfg, call.window, call.bands, call.dct, call.signal, out, tf_parallel());
      } else {
        compute_frontend(a.cfg, call.window, call.bands, call.signal, out, tf_parallel());
      }
    });
  }
};

struct InverseStftKernel {
  tf_op::Attrs a;

  static void* create(TF_OpKernelConstruction* ctx) {
    auto* k = new InverseStftKernel;
    tf_op::read_attrs(ctx, OpKind::kInverseStft, &k->a);
    return k;
  }

  static void compute(void* self, TF_OpKernelContext* ctx) {
    const tf_op::Attrs& a = static_cast<InverseStftKernel*>(self)->a;
    tf_op::InverseStftCall call;
    if (!tf_op::prepare_inverse_stft(ctx, a, &call)) return;
    const SignalOutView out =
        contiguous_signal_out(call.out, call.in.channels, call.length, a.out_first);
    tf_op::run_guarded(
        ctx, [&] { compute_istft(a.cfg, call.window_values, call.in, out, tf_parallel()); });
  }
};

// KapreFastPcen: csrc/core/pcen over a contiguous 4-D float tensor in its data_format.
struct PcenKernel {
  PcenParams p;
  bool first = false;

  static void* create(TF_OpKernelConstruction* ctx) {
    auto* k = new PcenKernel;
    tf_c::AttrReader attr(ctx);
    for (auto [name, field] : {std::pair<const char*, double*>{"b", &k->p.b},
                               {"gain", &k->p.gain},
                               {"bias", &k->p.bias},
                               {"power", &k->p.power},
                               {"eps", &k->p.eps}}) {
      float value = 0.0f;
      attr.get(name, &value);
      *field = value;
    }
    std::string format;
    attr.get("data_format", &format);
    k->first = format == "channels_first";
    return k;
  }

  static void compute(void* self, TF_OpKernelContext* ctx) {
    const PcenKernel& k = *static_cast<PcenKernel*>(self);
    tf_c::Tensor in, output;
    if (!in.input(ctx, 0)) return;
    if (in.dims() != 4) {
      tf_c::invalid(ctx, std::string("features must be 4-D ") +
                             (k.first ? "(batch, channels, frames, features)"
                                      : "(batch, frames, features, channels)") +
                             ", got shape " + in.shape());
      return;
    }
    FeatureShape shape;
    shape.batch = in.dim(0);
    shape.channels = in.dim(k.first ? 1 : 3);
    shape.frames = in.dim(k.first ? 2 : 1);
    shape.features = in.dim(k.first ? 3 : 2);
    const std::string err = check_pcen(k.p, shape);
    if (!err.empty()) {
      tf_c::invalid(ctx, err);
      return;
    }
    if (!output.output(ctx, 0, TF_FLOAT, {in.dim(0), in.dim(1), in.dim(2), in.dim(3)})) return;
    const FeatureView out = contiguous_features(output.data<float>(), shape.channels, shape.frames,
                                                shape.features, k.first, 1);
    tf_op::run_guarded(
        ctx, [&] { compute_pcen(k.p, shape, in.data<const float>(), out, tf_parallel()); });
  }
};

template <class Kernel>
void delete_kernel(void* kernel) {
  delete static_cast<Kernel*>(kernel);
}

template <class Kernel>
void register_cpu_kernel(const char* op_name) {
  TF_KernelBuilder* builder = TF_NewKernelBuilder(op_name, "CPU", &Kernel::create, &Kernel::compute,
                                                  &delete_kernel<Kernel>);
  tf_c::Status status;
  // The builder is TensorFlow's afterwards (TF_RegisterKernelBuilder takes it).
  TF_RegisterKernelBuilder((std::string(op_name) + "Cpu").c_str(), builder, status.get());
  if (!status.ok()) {
    std::fprintf(stderr, "kapre_fast: registering the CPU kernel of %s failed: %s\n", op_name,
                 TF_Message(status.get()));
  }
}

}  // namespace

// Called by ops.cc's registration, once, when TensorFlow loads the library.
void register_cpu_kernels() {
  register_cpu_kernel<FrontEndKernel<OpKind::kFrontEnd>>("KapreFastFrontEnd");
  register_cpu_kernel<FrontEndKernel<OpKind::kMfcc>>("KapreFastMfcc");
  register_cpu_kernel<FrontEndKernel<OpKind::kStft>>("KapreFastStft");
  register_cpu_kernel<InverseStftKernel>("KapreFastInverseStft");
  register_cpu_kernel<PcenKernel>("KapreFastPcen");
}

}  // namespace kapre_fast

// The worker threads of the kernels: TensorFlow's intra-op setting (0: every core), set by
// kapre_fast/_loader.py through ctypes. Returns the value in force; a negative value only reads.
extern "C" __attribute__((visibility("default"))) int KapreFastTfSetThreads(int threads) {
  if (threads >= 0) kapre_fast::g_threads.store(threads, std::memory_order_relaxed);
  return kapre_fast::g_threads.load(std::memory_order_relaxed);
}
