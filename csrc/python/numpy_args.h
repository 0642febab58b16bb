// Argument checks and conversions shared by the pybind11 modules (_core here, _cuda and
// _gpu_emulation in csrc/cuda): one checker, one set of messages.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/kernel_args.h"
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

// The kernel-call contract (../core/kernel_args.h) from Python keywords: every argument by its
// name, nothing else. with_layouts false: the two layout flags are not among them (the GPU
// plan takes its layouts per launch). TypeError for a missing, unknown or mistyped keyword,
// ValueError for a value out of range.
inline FrontEndConfig config_from_keywords(const pybind11::kwargs& kwargs, bool with_layouts,
                                           KernelArgs* args) {
  namespace py = pybind11;
  // The contract's names as interned Python strings, in its order, made once (never freed: a
  // static's destructor would run without the GIL).
  static const std::vector<PyObject*>* const keys = [] {
    auto* made = new std::vector<PyObject*>;
    const std::string signature = kernel_arg_signature();  // "name:type name:type ..."
    for (std::size_t start = 0; start < signature.size();) {
      const std::size_t colon = signature.find(':', start);
      made->push_back(PyUnicode_InternFromString(signature.substr(start, colon - start).c_str()));
      const std::size_t space = signature.find(' ', colon);
      start = space == std::string::npos ? signature.size() : space + 1;
    }
    return made;
  }();
  std::size_t used = 0, index = 0;
  auto get = [&](const char* name, auto* value) -> std::string {
    using T = std::remove_pointer_t<decltype(value)>;
    PyObject* const key = (*keys)[index++];  // read_kernel_args asks in the contract's order
    if (!with_layouts && std::strstr(name, "channels_first") != nullptr) return "";
    PyObject* const found = PyDict_GetItemWithError(kwargs.ptr(), key);  // borrowed
    if (found == nullptr) {
      if (PyErr_Occurred()) throw py::error_already_set();
      throw py::type_error(std::string("missing keyword argument ") + name);
    }
    const py::handle item(found);
    ++used;
    try {
      if constexpr (std::is_same_v<T, float>) {
        const std::string err = narrow_float(item.cast<double>(), name, value);
        require(err.empty(), err);
      } else {
        *value = item.cast<T>();
      }
    } catch (const py::cast_error&) {
      throw py::type_error(std::string(name) + " must be " +
                           (std::is_same_v<T, bool> ? "a bool" : "a number") + ", got " +
                           py::str(py::type::of(item).attr("__name__")).cast<std::string>());
    }
    return "";
  };
  read_kernel_args(get, args);
  if (used != kwargs.size()) {
    const std::string signature = " " + kernel_arg_signature();
    for (const auto& item : kwargs) {
      const std::string name = py::str(item.first);
      if (signature.find(" " + name + ":") == std::string::npos ||
          (!with_layouts && name.find("channels_first") != std::string::npos)) {
        throw py::type_error("unexpected keyword argument " + name);
      }
    }
  }
  FrontEndConfig cfg;
  const std::string err = to_config(*args, &cfg);
  require(err.empty(), err);
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
