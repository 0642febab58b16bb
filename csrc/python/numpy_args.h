// Argument checks and conversions shared by the pybind11 modules (_core here, _cuda and
// _gpu_emulation in csrc/cuda): one checker, one set of messages.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "../core/pipeline.h"

namespace kapre_fast {

inline void require(bool ok, const std::string& message) {
  if (!ok) throw pybind11::value_error(message);
}

template <class T>
void require_dtype(const pybind11::array& a, const char* name, const char* dtype) {
  namespace py = pybind11;
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>())) {
    throw py::type_error(std::string(name) + " must be a " + dtype + " array, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  }
}

template <class T>
const T* contiguous_1d(const pybind11::array& a, const char* name, const char* dtype) {
  require_dtype<T>(a, name, dtype);
  require(a.ndim() == 1,
          std::string(name) + " must be 1-D, got " + std::to_string(a.ndim()) + " dimensions");
  require(a.flags() & pybind11::array::c_style, std::string(name) + " must be contiguous");
  return static_cast<const T*>(a.data());
}

inline FrontEndConfig make_config(int64_t n_fft, int64_t win_length, int64_t hop_length,
                                  int64_t pad_begin, bool pad_end, int output, bool decibel,
                                  float amin, float ref_value, float dynamic_range, int power = 1,
                                  float db_multiplier = 10.0f) {
  require(output >= 0 && output <= 2,
          "output kind must be 0, 1 or 2, got " + std::to_string(output));
  FrontEndConfig cfg;
  cfg.n_fft = n_fft;
  cfg.win_length = win_length;
  cfg.hop_length = hop_length;
  cfg.pad_begin = pad_begin;
  cfg.pad_end = pad_end;
  cfg.output = static_cast<OutputKind>(output);
  cfg.decibel = decibel;
  cfg.amin = amin;
  cfg.ref_value = ref_value;
  cfg.dynamic_range = dynamic_range;
  cfg.power = power;
  cfg.db_multiplier = db_multiplier;
  return cfg;
}

// The sparse filterbank arrays (int32 starts and lengths, float32 weights) as a BandView.
inline BandView read_bands(const pybind11::array& start, const pybind11::array& length,
                           const pybind11::array& weights) {
  BandView bands;
  bands.start = contiguous_1d<int32_t>(start, "band_start", "int32");
  bands.length = contiguous_1d<int32_t>(length, "band_length", "int32");
  bands.weights = contiguous_1d<float>(weights, "band_weights", "float32");
  require(start.shape(0) == length.shape(0),
          "band_start and band_length must have the same length");
  bands.n_bands = start.shape(0);
  bands.n_weights = weights.shape(0);
  return bands;
}

}  // namespace kapre_fast
