// pybind11 module kapre_fast._core: NumPy arrays in, NumPy arrays out.
// Every shape, dtype and attribute is checked here or in the core's check_*
// functions before any memory is touched; the GIL is released while computing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <string>

#include "../core/call_checks.h"
#include "../core/fft_plan.h"
#include "../core/layout.h"
#include "../core/pcen.h"
#include "../core/pipeline.h"
#include "../core/stage_timing.h"
#include "numpy_args.h"

namespace py = pybind11;
using namespace kapre_fast;

namespace {

ParallelFor pool(int threads) {
  require(threads >= 0 && threads <= 1024,
          "threads must be in [0, 1024], got " + std::to_string(threads));
  return thread_pool_for(threads);
}

// The caller's output array: exactly the shape and dtype a fresh result would have,
// C-contiguous and writeable (the kernel writes it in that layout, every element once).
py::array checked_out(const py::object& out_arg, const py::dtype& dtype,
                      const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(out_arg)) {
    throw py::type_error("out must be a NumPy array, got " +
                         std::string(py::str(py::type::of(out_arg).attr("__name__"))));
  }
  py::array out = py::reinterpret_borrow<py::array>(out_arg);
  auto shape_text = [](const py::array& a) { return std::string(py::str(a.attr("shape"))); };
  if (!out.dtype().is(dtype)) {
    throw py::type_error("out must have dtype " + std::string(py::str(dtype)) + ", got " +
                         std::string(py::str(out.dtype())));
  }
  bool same_shape = out.ndim() == static_cast<py::ssize_t>(shape.size());
  for (std::size_t d = 0; same_shape && d < shape.size(); ++d)
    same_shape = out.shape(d) == shape[d];
  std::string expected = "(";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    expected += std::to_string(shape[d]) + (d + 1 < shape.size() ? ", " : ")");
  }
  require(same_shape, "out must have shape " + expected + ", got " + shape_text(out));
  require((out.flags() & py::array::c_style) != 0, "out must be C-contiguous");
  require(out.writeable(), "out must be writeable");
  return out;
}

py::array frontend(const py::array& audio, const py::array& window, const py::array& band_start,
                   const py::array& band_length, const py::array& band_weights, int threads,
                   const py::object& out_arg, const py::object& dct_arg, const py::kwargs& kwargs) {
  const ParallelFor parallel = pool(threads);
  KernelArgs args;
  const FrontEndConfig cfg = config_from_keywords(kwargs, true, &args);
  const bool input_channels_first = args.input_channels_first;
  const bool output_channels_first = args.output_channels_first;
  const float* win = contiguous_1d<float>(window, "window", "float32");
  const BandView bands = read_bands(band_start, band_length, band_weights);
  std::string err = check_config(cfg, window.shape(0), bands);
  require(err.empty(), err);
  // MFCC: a C-contiguous float32 (n_mels, n_mfcc) matrix applied after the dB clamp.
  DctView dct;
  if (!dct_arg.is_none()) {
    require(py::isinstance<py::array>(dct_arg), "dct must be a NumPy array or None");
    const py::array matrix = py::reinterpret_borrow<py::array>(dct_arg);
    require_dtype<float>(matrix, "dct", "float32");
    require(matrix.ndim() == 2 && (matrix.flags() & py::array::c_style),
            "dct must be a C-contiguous 2-D (n_mels, n_mfcc) array, got " +
                std::to_string(matrix.ndim()) + " dimensions");
    dct.n_in = matrix.shape(0);
    dct.n_out = matrix.shape(1);
    dct.matrix = static_cast<const float*>(matrix.data());
    err = check_dct(cfg, bands, dct);
    require(err.empty(), err);
  }

  require_dtype<float>(audio, "audio", "float32");
  require(audio.ndim() == 3,
          std::string("audio must be 3-D ") +
              (input_channels_first ? "(batch, channels, time)" : "(batch, time, channels)") +
              ", got " + std::to_string(audio.ndim()) + " dimensions");
  const int64_t item = static_cast<int64_t>(sizeof(float));
  for (int d = 0; d < 3; ++d) {
    require(audio.strides(d) % item == 0, "audio strides must be multiples of 4 bytes");
  }
  SignalView sig;
  sig.data = static_cast<const float*>(audio.data());
  sig.batch = audio.shape(0);
  const int ch_axis = input_channels_first ? 1 : 2, t_axis = input_channels_first ? 2 : 1;
  sig.channels = audio.shape(ch_axis);
  sig.time = audio.shape(t_axis);
  sig.sb = audio.strides(0) / item;
  sig.sc = audio.strides(ch_axis) / item;
  sig.st = audio.strides(t_axis) / item;
  err = check_signal(cfg, bands, sig);
  require(err.empty(), err);

  const ResultShape result_axes =
      result_shape(cfg, dct.matrix != nullptr ? dct.n_out : feature_count(cfg, bands), sig.channels,
                   sig.time, output_channels_first);
  const int64_t frames = result_axes.frames, features = result_axes.features;
  const int64_t out_ch = result_axes.channels;
  std::vector<py::ssize_t> shape{sig.batch};
  shape.insert(shape.end(), result_axes.axes.begin(), result_axes.axes.end());
  const py::dtype dtype = cfg.output == OutputKind::kComplex ? py::dtype::of<std::complex<float>>()
                                                             : py::dtype::of<float>();
  py::array result =
      out_arg.is_none() ? py::array(dtype, shape) : checked_out(out_arg, dtype, shape);
  float* data = static_cast<float*>(result.mutable_data());
  const int64_t floats = cfg.output == OutputKind::kComplex ? 2 : 1;
  FeatureView out =
      contiguous_features(data, out_ch, frames, features, output_channels_first, floats);
  if (cfg.output == OutputKind::kMagPhase) out.phase = data + sig.channels * out.sc;
  {
    py::gil_scoped_release release;
    if (dct.matrix != nullptr) {
      compute_mfcc(cfg, win, bands, dct, sig, out, parallel);
    } else {
      compute_frontend(cfg, win, bands, sig, out, parallel);
    }
  }
  return result;
}

// PCEN of a (batch, frames, features, channels) or (batch, channels, frames, features)
// float32 filterbank output; `out` may be `features` itself (in place).
py::array pcen(const py::array& features, double b, double gain, double bias, double power,
               double eps, bool channels_first, int threads, const py::object& out_arg) {
  const ParallelFor parallel = pool(threads);
  PcenParams params;
  params.b = b;
  params.gain = gain;
  params.bias = bias;
  params.power = power;
  params.eps = eps;
  require_dtype<float>(features, "features", "float32");
  require(features.ndim() == 4, std::string("features must be 4-D ") +
                                    (channels_first ? "(batch, channels, frames, features)"
                                                    : "(batch, frames, features, channels)") +
                                    ", got " + std::to_string(features.ndim()) + " dimensions");
  require(features.flags() & py::array::c_style, "features must be C-contiguous");
  FeatureShape shape;
  shape.batch = features.shape(0);
  shape.channels = features.shape(channels_first ? 1 : 3);
  shape.frames = features.shape(channels_first ? 2 : 1);
  shape.features = features.shape(channels_first ? 3 : 2);
  const std::string err = check_pcen(params, shape);
  require(err.empty(), err);
  std::vector<py::ssize_t> dims(features.shape(), features.shape() + 4);
  const py::dtype dtype = py::dtype::of<float>();
  py::array result = out_arg.is_none() ? py::array(dtype, dims) : checked_out(out_arg, dtype, dims);
  const FeatureView out =
      contiguous_features(static_cast<float*>(result.mutable_data()), shape.channels, shape.frames,
                          shape.features, channels_first, 1);
  {
    py::gil_scoped_release release;
    compute_pcen(params, shape, static_cast<const float*>(features.data()), out, parallel);
  }
  return result;
}

py::array istft(const py::array& stft, const py::array& window, int64_t n_fft, int64_t win_length,
                int64_t hop_length, bool input_channels_first, bool output_channels_first,
                int threads) {
  const ParallelFor parallel = pool(threads);
  InverseStftCall call;  // the framing only; the shared checks (call_checks.h) do the rest
  call.cfg.n_fft = n_fft;
  call.cfg.win_length = win_length;
  call.cfg.hop_length = hop_length;
  require_dtype<std::complex<float>>(stft, "stft", "complex64");
  require(stft.ndim() == 4, std::string("stft must be 4-D ") +
                                (input_channels_first ? "(batch, channels, frames, bins)"
                                                      : "(batch, frames, bins, channels)") +
                                ", got " + std::to_string(stft.ndim()) + " dimensions");
  require(stft.flags() & py::array::c_style, "stft must be C-contiguous");
  const float* win = contiguous_1d<float>(window, "window", "float32");
  const std::vector<int64_t> dims(stft.shape(), stft.shape() + 4);
  const std::string err =
      check_inverse_stft_input(static_cast<const float*>(stft.data()), dims, win, window.shape(0),
                               input_channels_first, output_channels_first, &call);
  require(err.empty(), err);
  py::array result(py::dtype::of<float>(),
                   std::vector<py::ssize_t>(call.out_shape.begin(), call.out_shape.end()));
  const SignalOutView out =
      contiguous_signal_out(static_cast<float*>(result.mutable_data()), call.in.channels,
                            call.length, output_channels_first);
  {
    py::gil_scoped_release release;
    compute_istft(call.cfg, win, call.in, out, parallel);
  }
  return result;
}

py::array rfft(const py::array& x, int threads) {
  const ParallelFor parallel = pool(threads);
  require_dtype<float>(x, "x", "float32");
  require(x.ndim() == 2 && (x.flags() & py::array::c_style), "x must be a C-contiguous 2-D array");
  const int64_t rows = x.shape(0), n = x.shape(1);
  require(
      n >= 1 && n <= kMaxFftLength,
      "FFT length must be in [1, " + std::to_string(kMaxFftLength) + "], got " + std::to_string(n));
  py::array result(py::dtype::of<std::complex<float>>(), std::vector<py::ssize_t>{rows, n / 2 + 1});
  float* out = static_cast<float*>(result.mutable_data());
  const float* in = static_cast<const float*>(x.data());
  {
    py::gil_scoped_release release;
    real_fft_rows(n, in, rows, out, parallel);
  }
  return result;
}

py::array irfft(const py::array& X, int64_t n, int threads) {
  const ParallelFor parallel = pool(threads);
  require_dtype<std::complex<float>>(X, "X", "complex64");
  require(X.ndim() == 2 && (X.flags() & py::array::c_style), "X must be a C-contiguous 2-D array");
  require(n >= 1 && n <= kMaxFftLength,
          "n must be in [1, " + std::to_string(kMaxFftLength) + "], got " + std::to_string(n));
  require(X.shape(1) == n / 2 + 1, "X must have n // 2 + 1 = " + std::to_string(n / 2 + 1) +
                                       " columns, got " + std::to_string(X.shape(1)));
  const int64_t rows = X.shape(0);
  py::array result(py::dtype::of<float>(), std::vector<py::ssize_t>{rows, n});
  float* out = static_cast<float*>(result.mutable_data());
  const float* in = static_cast<const float*>(X.data());
  {
    py::gil_scoped_release release;
    inverse_real_fft_rows(n, in, rows, out, parallel);
  }
  return result;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "kapre_fast's native CPU core (fused framing, window, FFT, filterbank, dB).";
  m.attr("MAX_N_FFT") = kMaxFftLength;
  // The kernel-call contract's arguments (../core/kernel_args.h) as keywords.
  m.def("frontend", &frontend, py::arg("audio"), py::arg("window"), py::arg("band_start"),
        py::arg("band_length"), py::arg("band_weights"), py::kw_only(), py::arg("threads"),
        py::arg("out") = py::none(), py::arg("dct") = py::none());
  m.def("kernel_arg_signature", &kernel_arg_signature,
        "The kernel-call contract's argument names and types, in order.");
  m.def("pcen", &pcen, py::arg("features"), py::arg("b"), py::arg("gain"), py::arg("bias"),
        py::arg("power"), py::arg("eps"), py::arg("channels_first"), py::arg("threads"),
        py::arg("out") = py::none(),
        "librosa.pcen (max_size=1) along the frames of a float32 filterbank output.");
  m.def("istft", &istft, py::arg("stft"), py::arg("window"), py::arg("n_fft"),
        py::arg("win_length"), py::arg("hop_length"), py::arg("input_channels_first"),
        py::arg("output_channels_first"), py::arg("threads"));
  m.def("rfft", &rfft, py::arg("x"), py::arg("threads") = 1);
  m.def("irfft", &irfft, py::arg("X"), py::arg("n"), py::arg("threads") = 1);
  m.def("isa", &active_isa, "Instruction set the kernels run with.");
  m.def("force_isa", &force_isa, py::arg("name"),
        "Use a narrower instruction set ('' restores the default); False if unavailable.");
  m.def("plan_cache_size", &fft_plan_cache_size);
  m.def(
      "stage_counts",
      [](bool reset) -> py::object {
        uint64_t counts[kStageSlots];
        if (!stage_counts(counts, reset)) return py::none();
        py::dict result;
        const char* names[kStageSlots] = {"transform", "filterbank", "decibel", "store", "tiles"};
        for (int slot = 0; slot < kStageSlots; ++slot) result[names[slot]] = counts[slot];
        return result;
      },
      py::arg("reset") = true,
      "Time stamp counts per stage of the front-end kernel and the tiles counted, summed over "
      "threads since the last reset; None unless built with KAPRE_FAST_STAGE_TIMING.");
  m.def("output_limit", &set_output_limit, py::arg("bytes") = 0,
        "Largest output in bytes one call may allocate; a positive value sets it.");
  m.def("stream_bytes", &set_stream_bytes, py::arg("bytes") = -1,
        "Smallest magnitude result (bytes) written with non-temporal stores; a value >= 0 sets "
        "it.");
}
