// GPU kernels for the ops in ops.cc: thin adapters over the launch functions the CuPy path uses
// (csrc/cuda/launch.h), with its plan, geometry and workspace binding (csrc/cuda/plan.h).
// Inputs are checked by op_args.h, the CPU kernels' own code (through the C API, see c_api below).
// The window and filterbank are host-memory inputs: they build the plan, whose tables are copied to
// the GPU once and again only when their values change (kapre_fast.ops passes them as constants).
// The plan takes the node's whole FrontEndConfig, a preset's power and dB multiplier included
// (its centring is the tf.pad kapre_fast.ops adds before the op), so presets run here as on the
// CPU kernels.
//
// Compiled by g++ with GOOGLE_CUDA=1 and EIGEN_USE_GPU (TF's headers never go through nvcc);
// the kernels come from kernels.cu, linked with the static CUDA runtime.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/launch.h"
#include "../cuda/plan.h"
#include "op_args.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace kapre_fast {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using tf_op::OpKind;
namespace errors = ::tensorflow::errors;

// This library is built against one TensorFlow release and loaded only under it, so its kernels
// may hand their C++ contexts to the C API functions of op_args.h, which the CPU kernels share:
// TensorFlow's C kernel API is implemented on exactly these objects (a TF_OpKernelContext* is
// its OpKernelContext*). The attributes, input checks and output allocation are thus written
// once; only the stream, the device and the workspace below use the C++ API.
TF_OpKernelConstruction* c_api(OpKernelConstruction* ctx) {
  return reinterpret_cast<TF_OpKernelConstruction*>(ctx);
}
TF_OpKernelContext* c_api(OpKernelContext* ctx) {
  return reinterpret_cast<TF_OpKernelContext*>(ctx);
}

// Fails the op with `status` and returns false (OP_REQUIRES can only `return;`).
bool fail(OpKernelContext* ctx, const ::tensorflow::Status& status) {
  ctx->CtxFailure(status);
  return false;
}

// A plan and its tables in the GPU memory of the node's device.
struct DeviceTables {
  std::unique_ptr<const gpu::GpuPlan> plan;
  Tensor floats, ints;    // plan->floats(), plan->ints() on the device
  std::vector<char> key;  // the window and filterbank values the plan was built from
};

// Where one call runs: the CUDA device, TF's compute stream and the kernels' limits there.
struct Target {
  int device = -1;
  void* stream = nullptr;
  gpu::DeviceLimits limits;
};

template <class T>
void append_bytes(std::vector<char>* key, const T* data, int64_t n) {
  const char* bytes = reinterpret_cast<const char*>(data);
  key->insert(key->end(), bytes, bytes + n * static_cast<int64_t>(sizeof(T)));
}

// What the three GPU kernels share: the node's attributes, its device's limits (queried once)
// and its current plan on the device.
class GpuOp : public OpKernel {
 protected:
  GpuOp(OpKernelConstruction* ctx, OpKind kind) : OpKernel(ctx) {
    tf_op::read_attrs(c_api(ctx), kind, &a_);
  }

  // One launch with the plan of this window (win_length values) and filterbank:
  // prepare(plan, p, limits) fills p's per-call fields and returns the geometry; the workspace
  // is allocated, bound into p, and launch_fn enqueues the kernels on TF's compute stream.
  template <class Prepare>
  void run(OpKernelContext* ctx, const float* window, const BandView& bands, Prepare&& prepare,
           std::string (*launch_fn)(const gpu::FrontEndParams&, const gpu::Geometry&, int, void*)) {
    Target t;
    if (!target(ctx, &t)) return;
    const std::shared_ptr<const DeviceTables> tables = this->tables(ctx, t, window, bands);
    if (!tables) return;
    gpu::FrontEndParams p = tables->plan->params(static_cast<const float*>(tables->floats.data()),
                                                 static_cast<const int32_t*>(tables->ints.data()));
    const gpu::Geometry g = prepare(*tables->plan, p, t.limits);
    // TF's allocator aligns whole tensors; a misaligned view would poison the CUDA context.
    const std::string misaligned = gpu::alignment_error(p);
    OP_REQUIRES(ctx, misaligned.empty(), errors::InvalidArgument("kapre_fast: ", misaligned));
    Tensor workspace;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_UINT8,
                                           TensorShape({static_cast<int64_t>(g.workspace_bytes())}),
                                           &workspace));
    void* ws = workspace.data();
    OP_REQUIRES(ctx, reinterpret_cast<std::uintptr_t>(ws) % 256 == 0,
                errors::Internal("kapre_fast: TF's GPU allocator returned a workspace that is "
                                 "not 256-byte aligned"));
    gpu::bind_workspace(p, g, ws);
    const std::string err = launch_fn(p, g, t.device, t.stream);
    OP_REQUIRES(ctx, err.empty(), errors::Internal("kapre_fast: ", err));
  }

  tf_op::Attrs a_;

 private:
  // The device and stream of this call and the limits the geometry needs. Fails when our
  // CUDA runtime finds no driver for it or the kernels were not compiled for the GPU.
  bool target(OpKernelContext* ctx, Target* t) {
    const auto* info = ctx->device()->tensorflow_accelerator_device_info();
    if (info == nullptr || info->gpu_id < 0) {
      return fail(ctx, errors::Internal("kapre_fast: ", name(), " runs on ", ctx->device()->name(),
                                        ", not a CUDA GPU"));
    }
    t->device = info->gpu_id;
    t->stream = static_cast<void*>(ctx->eigen_device<Eigen::GpuDevice>().stream());
    std::lock_guard<std::mutex> lock(mu_);
    if (!have_limits_) {
      int count = 0, major = 0, minor = 0;
      std::string err = gpu::cuda_device_count(&count);
      if (err.empty()) err = gpu::cuda_device_limits(t->device, &limits_, &major, &minor);
      if (!err.empty()) return fail(ctx, errors::Internal("kapre_fast: ", err));
      have_limits_ = true;
    }
    t->limits = limits_;
    return true;
  }

  // The plan of this window (win_length values) and filterbank, with its tables on t's device.
  std::shared_ptr<const DeviceTables> tables(OpKernelContext* ctx, const Target& t,
                                             const float* window, const BandView& bands) {
    std::vector<char> key;
    append_bytes(&key, window, a_.cfg.win_length);
    append_bytes(&key, bands.start, bands.n_bands);
    append_bytes(&key, bands.length, bands.n_bands);
    append_bytes(&key, bands.weights, bands.n_weights);
    std::lock_guard<std::mutex> lock(mu_);
    if (tables_ && tables_->key == key) return tables_;
    auto made = std::make_shared<DeviceTables>();
    try {
      made->plan = std::make_unique<gpu::GpuPlan>(a_.cfg, window, a_.cfg.win_length, bands);
    } catch (const std::invalid_argument& e) {
      fail(ctx, errors::InvalidArgument(e.what()));
      return nullptr;
    } catch (const std::exception& e) {
      fail(ctx, errors::Internal("kapre_fast: building the GPU plan failed: ", e.what()));
      return nullptr;
    }
    if (!upload(ctx, t, made->plan->floats(), &made->floats) ||
        !upload(ctx, t, made->plan->ints(), &made->ints)) {
      return nullptr;
    }
    made->key = std::move(key);
    tables_ = made;
    return made;
  }

  template <class T>
  bool upload(OpKernelContext* ctx, const Target& t, const std::vector<T>& host, Tensor* out) {
    const ::tensorflow::Status status =
        ctx->allocate_temp(::tensorflow::DataTypeToEnum<T>::value,
                           TensorShape({static_cast<int64_t>(host.size())}), out);
    if (!status.ok()) return fail(ctx, status);
    const std::string err = gpu::cuda_copy_to_device(out->data(), host.data(),
                                                     host.size() * sizeof(T), t.device, t.stream);
    return err.empty() || fail(ctx, errors::Internal("kapre_fast: ", err));
  }

  std::mutex mu_;
  bool have_limits_ = false;
  gpu::DeviceLimits limits_;
  std::shared_ptr<const DeviceTables> tables_;
};

// KapreFastFrontEnd (kind kFrontEnd) and KapreFastStft (kind kStft).
template <OpKind kind>
class GpuFrontEndOp : public GpuOp {
 public:
  explicit GpuFrontEndOp(OpKernelConstruction* ctx) : GpuOp(ctx, kind) {}

  void Compute(OpKernelContext* ctx) override {
    tf_op::FrontEndCall call;
    if (!tf_op::prepare_front_end(c_api(ctx), a_, &call)) return;
    run(
        ctx, call.window, call.bands,
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_call(plan, p, call.signal, call.out, a_.out_first, limits);
        },
        gpu::cuda_launch_frontend);
  }
};

class GpuInverseStftOp : public GpuOp {
 public:
  explicit GpuInverseStftOp(OpKernelConstruction* ctx) : GpuOp(ctx, OpKind::kInverseStft) {}

  void Compute(OpKernelContext* ctx) override {
    tf_op::InverseStftCall call;
    if (!tf_op::prepare_inverse_stft(c_api(ctx), a_, &call)) return;
    run(
        ctx, call.window_values, BandView{},
        [&](const gpu::GpuPlan& plan, gpu::FrontEndParams& p, const gpu::DeviceLimits& limits) {
          return gpu::prepare_istft(plan, p, call.in, call.out, a_.out_first, limits);
        },
        gpu::cuda_launch_istft);
  }
};

// TensorFlow places an op on a GPU whenever a GPU kernel for it is registered, and these kernels
// run on a static CUDA 13 runtime that needs a driver for CUDA 13 (R580+). So they are registered
// only where the driver can run them; elsewhere the ops stay on their CPU kernels, as in a build
// without CUDA, instead of failing on a GPU TensorFlow itself can use. KAPRE_FAST_TF_GPU=0 never
// registers them, =1 always does (tests of the registration on machines without a GPU).
constexpr int kMinDriverCudaVersion = 13000;

bool gpu_kernels_wanted() {
  const char* choice = std::getenv("KAPRE_FAST_TF_GPU");
  if (choice != nullptr && std::string(choice) == "0") return false;
  if (choice != nullptr && std::string(choice) == "1") return true;
  return gpu::cuda_driver_version() >= kMinDriverCudaVersion;
}

template <class Kernel>
void register_gpu_kernel(::tensorflow::KernelDefBuilder& builder, const char* class_name) {
  // The registrar hands the KernelDef and the factory to TensorFlow's registry.
  ::tensorflow::kernel_factory::OpKernelRegistrar registrar(
      builder.Build(), class_name,
      [](OpKernelConstruction* ctx) -> OpKernel* { return new Kernel(ctx); });
  (void)registrar;
}

// Runs when TensorFlow loads the op library.
const bool kGpuKernelsRegistered = [] {
  if (!gpu_kernels_wanted()) return false;
  using ::tensorflow::DEVICE_GPU;
  using ::tensorflow::register_kernel::Name;
  register_gpu_kernel<GpuFrontEndOp<OpKind::kFrontEnd>>(Name("KapreFastFrontEnd")
                                                            .Device(DEVICE_GPU)
                                                            .HostMemory("window")
                                                            .HostMemory("band_start")
                                                            .HostMemory("band_length")
                                                            .HostMemory("band_weights"),
                                                        "GpuFrontEndOp<kFrontEnd>");
  register_gpu_kernel<GpuFrontEndOp<OpKind::kStft>>(
      Name("KapreFastStft").Device(DEVICE_GPU).HostMemory("window"), "GpuFrontEndOp<kStft>");
  register_gpu_kernel<GpuInverseStftOp>(
      Name("KapreFastInverseStft").Device(DEVICE_GPU).HostMemory("window"), "GpuInverseStftOp");
  return true;
}();

}  // namespace
}  // namespace kapre_fast
