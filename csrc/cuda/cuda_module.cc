// pybind11 module kapre_fast._cuda: the CUDA front end on device memory given
// as raw pointers (kapre_fast/gpu.py passes CuPy arrays' pointers and CuPy's
// current stream). Compiled by g++; the kernels come from kernels.cu (nvcc).
// It imports on machines without a GPU or driver: only calls fail, with a
// message that says what is missing.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "launch.h"

#ifndef KF_CUDA_ARCHS
#define KF_CUDA_ARCHS ""
#endif

namespace kapre_fast {
namespace gpu {
namespace {

int device_count() {
  int n = 0;
  const std::string err = cuda_device_count(&n);
  if (!err.empty()) throw std::runtime_error(err);
  return n;
}

py::dict device_limits(int device) {
  require(device >= 0, "device must be >= 0, got " + std::to_string(device));
  DeviceLimits limits;
  int major = 0, minor = 0;
  const std::string err = cuda_device_limits(device, &limits, &major, &minor);
  if (!err.empty()) throw std::runtime_error(err);
  py::dict d;
  d["smem_per_block"] = limits.smem_per_block;
  d["sm_count"] = limits.sm_count;
  d["compute_capability"] = py::make_tuple(major, minor);
  return d;
}

void frontend(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints, std::uintptr_t audio,
              int64_t batch, int64_t channels, int64_t time, int64_t sb, int64_t sc, int64_t st,
              std::uintptr_t out, bool output_channels_first, std::uintptr_t workspace,
              int64_t workspace_bytes, int64_t smem_per_block, int sm_count, int device,
              std::uintptr_t stream) {
  const RawCall call = raw_call(plan, floats, ints, audio, batch, channels, time, sb, sc, st, out,
                                output_channels_first, workspace, workspace_bytes,
                                limits(smem_per_block, sm_count, 0));
  std::string err;
  {
    py::gil_scoped_release release;
    err = cuda_launch_frontend(call.p, call.g, device, reinterpret_cast<void*>(stream));
  }
  if (!err.empty()) throw std::runtime_error(err);
}

void istft(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints, std::uintptr_t stft,
           int64_t batch, int64_t channels, int64_t frames, int64_t bins, int64_t sb, int64_t sc,
           int64_t sf, int64_t sk, std::uintptr_t out, bool output_channels_first,
           std::uintptr_t workspace, int64_t workspace_bytes, int64_t smem_per_block, int sm_count,
           int device, std::uintptr_t stream) {
  const RawCall call = raw_istft(plan, floats, ints, stft, batch, channels, frames, bins, sb, sc,
                                 sf, sk, out, output_channels_first, workspace, workspace_bytes,
                                 limits(smem_per_block, sm_count, 0));
  std::string err;
  {
    py::gil_scoped_release release;
    err = cuda_launch_istft(call.p, call.g, device, reinterpret_cast<void*>(stream));
  }
  if (!err.empty()) throw std::runtime_error(err);
}

void pcen(std::uintptr_t mel, int64_t batch, int64_t channels, int64_t frames, int64_t features,
          int64_t sb, int64_t sc, int64_t sf, int64_t sk, double b, double gain, double bias,
          double power, double eps, int sm_count, int device, std::uintptr_t stream) {
  const PcenLaunch p = raw_pcen(mel, batch, channels, frames, features, sb, sc, sf, sk, b, gain,
                                bias, power, eps, sm_count);
  std::string err;
  {
    py::gil_scoped_release release;
    err = cuda_launch_pcen(p, device, reinterpret_cast<void*>(stream));
  }
  if (!err.empty()) throw std::runtime_error(err);
}

}  // namespace
}  // namespace gpu
}  // namespace kapre_fast

PYBIND11_MODULE(_cuda, m) {
  namespace py = pybind11;
  using namespace kapre_fast::gpu;
  m.doc() = "kapre_fast's CUDA kernels (fused front end) on device pointers.";
  m.attr("CUDA_ARCHITECTURES") = KF_CUDA_ARCHS;
  m.attr("CUDA_RUNTIME_VERSION") = cuda_runtime_version();
  bind_plan(m);
  m.def("driver_version", &cuda_driver_version,
        "Newest CUDA version the NVIDIA driver supports (e.g. 13000); 0 without a driver.");
  m.def("device_count", &device_count,
        "Number of CUDA GPUs; RuntimeError saying what is missing (driver, GPU) otherwise.");
  m.def("device_limits", &device_limits, py::arg("device"),
        "{'smem_per_block', 'sm_count', 'compute_capability'} of a GPU; RuntimeError when "
        "the kernels were not compiled for it.");
  m.def("frontend", &frontend, py::arg("plan"), py::arg("floats"), py::arg("ints"),
        py::arg("audio"), py::arg("batch"), py::arg("channels"), py::arg("time"), py::arg("sb"),
        py::arg("sc"), py::arg("st"), py::arg("out"), py::arg("output_channels_first"),
        py::arg("workspace"), py::arg("workspace_bytes"), py::arg("smem_per_block"),
        py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "Launches the front end of `plan` on `stream`. Pointers are device addresses: the "
        "plan's tables (plan.floats, plan.ints copied to the device), the audio (element "
        "(b, c, t) at audio + 4 * (b * sb + c * sc + t * st)), the contiguous output of "
        "plan.output_shape(...) and a workspace of plan.geometry(...)['workspace_bytes'].");
  m.def("istft", &istft, py::arg("plan"), py::arg("floats"), py::arg("ints"), py::arg("stft"),
        py::arg("batch"), py::arg("channels"), py::arg("frames"), py::arg("bins"), py::arg("sb"),
        py::arg("sc"), py::arg("sf"), py::arg("sk"), py::arg("out"),
        py::arg("output_channels_first"), py::arg("workspace"), py::arg("workspace_bytes"),
        py::arg("smem_per_block"), py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "Launches an inverse STFT on `stream`: complex64 spectrum (b, c, frame, bin) at stft + "
        "4 * (b * sb + c * sc + frame * sf + bin * sk) (strides in floats), contiguous output of "
        "plan.istft_shape(...), workspace of plan.istft_geometry(...)['workspace_bytes'].");
  m.def("pcen", &pcen, py::arg("mel"), py::arg("batch"), py::arg("channels"), py::arg("frames"),
        py::arg("features"), py::arg("sb"), py::arg("sc"), py::arg("sf"), py::arg("sk"),
        py::arg("b"), py::arg("gain"), py::arg("bias"), py::arg("power"), py::arg("eps"),
        py::arg("sm_count"), py::arg("device"), py::arg("stream"),
        "Launches PCEN (librosa.pcen, max_size=1) in place on `stream` over the float32 device "
        "array at `mel`: element (b, c, frame, k) at mel + 4 * (b * sb + c * sc + frame * sf + "
        "k * sk), smoothed along frames. ValueError naming a bad constant, size or pointer.");
}
