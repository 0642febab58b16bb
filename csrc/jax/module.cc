// pybind11 module kapre_fast._jax_ffi: the FFI handlers of handlers.cc (and handlers_cuda.cc
// where built) as PyCapsules, for jax.ffi.register_ffi_target (kapre_fast/jax/_ops.py). No JAX
// or XLA code runs here.
#include <pybind11/pybind11.h>

#include "../core/pipeline.h"
#include "handlers.h"

namespace py = pybind11;

namespace {

template <class Fn>
py::capsule handler_capsule(Fn* fn) {
  return py::capsule(reinterpret_cast<void*>(fn));  // unnamed, as jax.ffi.pycapsule makes them
}

}  // namespace

PYBIND11_MODULE(_jax_ffi, m) {
  m.doc() =
      "kapre_fast's XLA FFI handlers (CPU; CUDA where built) over the fused kernels, as "
      "PyCapsules.";
  m.def(
      "cpu_targets",
      [] {
        py::dict targets;
        targets["kapre_fast_front_end"] = handler_capsule(KapreFastFrontEndCpu);
        targets["kapre_fast_inverse_stft"] = handler_capsule(KapreFastInverseStftCpu);
        return targets;
      },
      "{FFI target name: handler capsule} of the CPU handlers.");
#ifdef KF_JAX_CUDA
  // Only in builds with the CUDA kernels (_build_info.json: "jax_cuda": true). Importing the
  // module still needs no GPU or driver: the static CUDA runtime loads nothing until a call.
  m.def(
      "cuda_targets",
      [] {
        py::dict targets;
        targets["kapre_fast_front_end"] = handler_capsule(KapreFastFrontEndCuda);
        targets["kapre_fast_inverse_stft"] = handler_capsule(KapreFastInverseStftCuda);
        return targets;
      },
      "{FFI target name: handler capsule} of the CUDA handlers (XLA platform 'CUDA').");
#endif
  // The FFI C API version these handlers were compiled with (the headers' XLA_FFI_API_MAJOR and
  // _MINOR) and the jax release those headers came from: a jaxlib implementing an older API
  // refuses the handlers when its backend starts, so kapre_fast/jax/_ops.py checks first.
  m.attr("ffi_api_version") = py::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
  m.attr("built_with_jax") = KF_JAX_VERSION;
  // This module links its own copy of the core: its own output limit and ISA choice.
  m.def("isa", &kapre_fast::active_isa, "Instruction set the kernels run with.");
  m.def("output_limit", &kapre_fast::set_output_limit, py::arg("bytes") = 0,
        "Largest output in bytes one call may produce; a positive value sets it.");
}
