// pybind11 glue shared by kapre_fast._cuda and kapre_fast._gpu_emulation: the
// Plan class (a checked GpuPlan and its tables) and argument checks. Each module
// registers its own module-local Plan type.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../python/numpy_args.h"
#include "plan.h"

namespace kapre_fast {
namespace gpu {
namespace py = pybind11;

// The contract's arguments as keywords, without the layouts (given per launch).
inline std::unique_ptr<GpuPlan> make_plan(const py::array& window, const py::array& band_start,
                                          const py::array& band_length,
                                          const py::array& band_weights, const py::kwargs& kwargs) {
  KernelArgs args;
  const FrontEndConfig cfg = config_from_keywords(kwargs, false, &args);
  const float* win = contiguous_1d<float>(window, "window", "float32");
  const BandView bands = read_bands(band_start, band_length, band_weights);
  try {
    return std::make_unique<GpuPlan>(cfg, win, window.shape(0), bands);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

template <class T>
py::array_t<T> read_only_copy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

inline py::dict geometry_dict(const Geometry& g) {
  py::dict d;
  d["threads"] = g.threads;
  d["frames_per_item"] = g.frames_per_item;
  d["items"] = g.n_items;
  d["grid"] = g.grid;
  d["shared_memory_bytes"] = g.smem_bytes;
  d["global_buffers"] = g.global;
  d["workspace_bytes"] = g.workspace_bytes();
  d["init_grid"] = g.init_grid;
  d["clamp_grid"] = g.clamp_grid;
  d["overlap_add_grid"] = g.ola_grid;
  return d;
}

inline DeviceLimits limits(int64_t smem_per_block, int sm_count, int64_t max_grid) {
  require(smem_per_block >= 1024,
          "smem_per_block must be >= 1024 bytes, got " + std::to_string(smem_per_block));
  require(sm_count >= 1, "sm_count must be >= 1, got " + std::to_string(sm_count));
  require(max_grid >= 0, "max_grid must be >= 0, got " + std::to_string(max_grid));
  DeviceLimits l;
  l.smem_per_block = smem_per_block;
  l.sm_count = sm_count;
  l.max_grid = max_grid;
  return l;
}

// (shape, dtype name) of the output of one call, or ValueError naming the lengths.
inline OutputShape checked_output_shape(const GpuPlan& plan, int64_t batch, int64_t channels,
                                        int64_t time, bool output_channels_first) {
  OutputShape shape;
  const std::string err = output_shape(plan, batch, channels, time, output_channels_first, &shape);
  require(err.empty(), err);
  return shape;
}

// One call on raw addresses, as kapre_fast.gpu makes it (device memory for _cuda, host memory
// for the emulation's raw entry point): checks everything that can be checked without reading
// the memory, and returns the bound parameters and geometry.
struct RawCall {
  FrontEndParams p;
  Geometry g;
};

// ValueError naming the misaligned address before anything is launched (plan.h).
inline void require_aligned(const FrontEndParams& p) {
  const std::string err = alignment_error(p);
  require(err.empty(), err);
}

inline void require_ok(const std::string& err) { require(err.empty(), err); }

// ValueError naming a table base the kernels cannot read wide (plan.h).
inline void require_aligned_tables(std::uintptr_t floats, std::uintptr_t ints) {
  require_ok(table_alignment_error(reinterpret_cast<const void*>(floats),
                                   reinterpret_cast<const void*>(ints)));
}

// Binds the caller's workspace into call.p once it is known to be large enough.
inline void bind_checked_workspace(RawCall* call, std::uintptr_t workspace,
                                   int64_t workspace_bytes) {
  const std::size_t needed = call->g.workspace_bytes();
  require(workspace_bytes >= 0 && static_cast<std::size_t>(workspace_bytes) >= needed,
          "workspace has " + std::to_string(workspace_bytes) + " bytes but the call needs " +
              std::to_string(needed));
  require(needed == 0 || workspace != 0, "workspace must not be a null pointer");
  if (needed > 0) require_ok(workspace_alignment_error(reinterpret_cast<const void*>(workspace)));
  bind_workspace(call->p, call->g, reinterpret_cast<void*>(workspace));
}

inline RawCall raw_call(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints,
                        std::uintptr_t audio, int64_t batch, int64_t channels, int64_t time,
                        int64_t sb, int64_t sc, int64_t st, std::uintptr_t out,
                        bool output_channels_first, std::uintptr_t workspace,
                        int64_t workspace_bytes, const DeviceLimits& lim) {
  const OutputShape shape =
      checked_output_shape(plan, batch, channels, time, output_channels_first);
  require(floats != 0 && ints != 0, "the plan's tables are missing (null pointers)");
  require_aligned_tables(floats, ints);
  int64_t elements = 1;
  for (int64_t d : shape.shape) elements *= d;
  require(elements == 0 || (audio != 0 && out != 0), "audio and out must not be null pointers");
  SignalView sig;
  sig.data = reinterpret_cast<const float*>(audio);
  sig.batch = batch;
  sig.channels = channels;
  sig.time = time;
  sig.sb = sb;
  sig.sc = sc;
  sig.st = st;
  RawCall call;
  call.p =
      plan.params(reinterpret_cast<const float*>(floats), reinterpret_cast<const int32_t*>(ints));
  call.g =
      prepare_call(plan, call.p, sig, reinterpret_cast<float*>(out), output_channels_first, lim);
  require_aligned(call.p);
  bind_checked_workspace(&call, workspace, workspace_bytes);
  return call;
}

// The complex input view of an inverse STFT: (b, c, frame, bin) strides in floats.
inline ComplexInputView checked_istft_input(const GpuPlan& plan, int64_t batch, int64_t channels,
                                            int64_t frames, int64_t bins, int64_t sb, int64_t sc,
                                            int64_t sf, int64_t sk) {
  ComplexInputView in;
  in.batch = batch;
  in.channels = channels;
  in.frames = frames;
  in.bins = bins;
  in.sb = sb;
  in.sc = sc;
  in.sf = sf;
  in.sk = sk;
  const std::string err = istft_check(plan, in);
  require(err.empty(), err);
  return in;
}

inline std::vector<int64_t> istft_shape(const GpuPlan& plan, const ComplexInputView& in,
                                        bool output_channels_first) {
  const int64_t len = istft_length(plan.config(), in.frames);
  return output_channels_first ? std::vector<int64_t>{in.batch, in.channels, len}
                               : std::vector<int64_t>{in.batch, len, in.channels};
}

inline RawCall raw_istft(const GpuPlan& plan, std::uintptr_t floats, std::uintptr_t ints,
                         std::uintptr_t spectrum, int64_t batch, int64_t channels, int64_t frames,
                         int64_t bins, int64_t sb, int64_t sc, int64_t sf, int64_t sk,
                         std::uintptr_t out, bool output_channels_first, std::uintptr_t workspace,
                         int64_t workspace_bytes, const DeviceLimits& lim) {
  ComplexInputView in = checked_istft_input(plan, batch, channels, frames, bins, sb, sc, sf, sk);
  require(floats != 0 && ints != 0, "the plan's tables are missing (null pointers)");
  require_aligned_tables(floats, ints);
  require(batch * channels == 0 || (spectrum != 0 && out != 0),
          "stft and out must not be null pointers");
  require(sb % 2 == 0 && sc % 2 == 0 && sf % 2 == 0 && sk % 2 == 0,
          "stft strides must be whole complex64 elements (even numbers of floats)");
  in.data = reinterpret_cast<const float*>(spectrum);
  RawCall call;
  call.p =
      plan.params(reinterpret_cast<const float*>(floats), reinterpret_cast<const int32_t*>(ints));
  call.g =
      prepare_istft(plan, call.p, in, reinterpret_cast<float*>(out), output_channels_first, lim);
  require_aligned(call.p);
  bind_checked_workspace(&call, workspace, workspace_bytes);
  return call;
}

// One PCEN pass on a raw address, as kapre_fast.gpu.apply_pcen makes it: ValueError naming the
// bad constant, size or pointer before anything runs. max_grid: the emulation's grid cap
// (0: none, as on a device).
inline PcenLaunch raw_pcen(std::uintptr_t mel, int64_t batch, int64_t channels, int64_t frames,
                           int64_t features, int64_t sb, int64_t sc, int64_t sf, int64_t sk,
                           double b, double gain, double bias, double power, double eps,
                           int sm_count, int max_grid = 0) {
  PcenParams constants;
  constants.b = b;
  constants.gain = gain;
  constants.bias = bias;
  constants.power = power;
  constants.eps = eps;
  FeatureShape shape;
  shape.batch = batch;
  shape.channels = channels;
  shape.frames = frames;
  shape.features = features;
  PcenLaunch p;
  const std::string err = prepare_pcen(constants, shape, reinterpret_cast<float*>(mel), sb, sc, sf,
                                       sk, limits(1024, sm_count, max_grid), &p);
  require(err.empty(), err);
  return p;
}

inline void bind_plan(py::module_& m) {
  py::class_<GpuPlan>(m, "Plan", py::module_local(),
                      "A checked front end and its tables (FFT passes, window, filterbank).")
      .def(py::init(&make_plan), py::arg("window"), py::arg("band_start"), py::arg("band_length"),
           py::arg("band_weights"))
      .def_property_readonly("floats", [](const GpuPlan& p) { return read_only_copy(p.floats()); })
      .def_property_readonly("ints", [](const GpuPlan& p) { return read_only_copy(p.ints()); })
      .def_property_readonly("n_features", &GpuPlan::n_features)
      .def_property_readonly("bluestein",
                             [](const GpuPlan& p) { return p.params(nullptr, nullptr).bluestein; })
      .def(
          "output_shape",
          [](const GpuPlan& plan, int64_t batch, int64_t channels, int64_t time,
             bool output_channels_first) {
            const OutputShape s =
                checked_output_shape(plan, batch, channels, time, output_channels_first);
            return py::make_tuple(py::tuple(py::cast(s.shape)),
                                  s.complex ? "complex64" : "float32");
          },
          py::arg("batch"), py::arg("channels"), py::arg("time"), py::arg("output_channels_first"),
          "(shape, dtype) of the output; ValueError when the audio is too short.")
      .def(
          "geometry",
          [](const GpuPlan& plan, int64_t batch, int64_t channels, int64_t time,
             bool output_channels_first, int64_t smem_per_block, int sm_count, int64_t max_grid) {
            checked_output_shape(plan, batch, channels, time, output_channels_first);
            SignalView sig;
            sig.batch = batch;
            sig.channels = channels;
            sig.time = time;
            FrontEndParams p = plan.params(nullptr, nullptr);
            return geometry_dict(prepare_call(plan, p, sig, nullptr, output_channels_first,
                                              limits(smem_per_block, sm_count, max_grid)));
          },
          py::arg("batch"), py::arg("channels"), py::arg("time"), py::arg("output_channels_first"),
          py::arg("smem_per_block"), py::arg("sm_count"), py::arg("max_grid") = 0,
          "Launch geometry of one call: threads, frames per item, grid, shared memory, "
          "whether the FFT buffers live in global memory, workspace bytes.")
      .def(
          "istft_shape",
          [](const GpuPlan& plan, int64_t batch, int64_t channels, int64_t frames, int64_t bins,
             bool output_channels_first) {
            const ComplexInputView in =
                checked_istft_input(plan, batch, channels, frames, bins, 0, 0, 0, 0);
            return py::tuple(py::cast(istft_shape(plan, in, output_channels_first)));
          },
          py::arg("batch"), py::arg("channels"), py::arg("frames"), py::arg("bins"),
          py::arg("output_channels_first"),
          "Shape of the inverse STFT's waveform; ValueError for a bad spectrum shape.")
      .def(
          "istft_geometry",
          [](const GpuPlan& plan, int64_t batch, int64_t channels, int64_t frames, int64_t bins,
             bool output_channels_first, int64_t smem_per_block, int sm_count, int64_t max_grid) {
            const ComplexInputView in =
                checked_istft_input(plan, batch, channels, frames, bins, 0, 0, 0, 0);
            FrontEndParams p = plan.params(nullptr, nullptr);
            return geometry_dict(prepare_istft(plan, p, in, nullptr, output_channels_first,
                                               limits(smem_per_block, sm_count, max_grid)));
          },
          py::arg("batch"), py::arg("channels"), py::arg("frames"), py::arg("bins"),
          py::arg("output_channels_first"), py::arg("smem_per_block"), py::arg("sm_count"),
          py::arg("max_grid") = 0, "Launch geometry of one inverse STFT.");
}

}  // namespace gpu
}  // namespace kapre_fast
