// What the CPU handlers (handlers.cc) and the CUDA handlers (handlers_cuda.cc) share: the
// attributes, decoded into one struct per target, and the checks of every attribute, shape and
// dtype (the operand's, and the result buffer XLA allocated from the caller's declared shape)
// with the core's check_* functions. Both therefore reject exactly the same calls with the same
// INVALID_ARGUMENT messages, and the CPU tests (test_jax.py, test_fuzz_jax.py) cover the checks
// of both. Only the buffers' shapes and addresses are read here, never their contents (on a GPU
// they are device memory); the window and filterbank are attributes, in host memory.
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "../core/call_checks.h"
#include "../core/kernel_args.h"
#include "../core/pipeline.h"
#include "xla/ffi/api/ffi.h"

namespace kapre_fast {
namespace jax_ffi {

namespace ffi = ::xla::ffi;

// kapre_fast_front_end's attributes: the kernel-call contract's (../core/kernel_args.h, named
// and ordered as there; kapre_fast/jax/_ops.py passes them), then the threads and the tables.
struct FrontEndAttrs {
#define KAPRE_FAST_FIELD(type, name) type name;
  KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_FIELD)
#undef KAPRE_FAST_FIELD
  int64_t threads;  // 0: every core; the CUDA handlers check it and ignore it
  ffi::Span<const float> window;
  ffi::Span<const int32_t> band_start, band_length;
  ffi::Span<const float> band_weights;
};

// kapre_fast_inverse_stft's attributes.
struct InverseStftAttrs {
  int64_t n_fft, win_length, hop_length;
  bool input_channels_first, output_channels_first;
  int64_t threads;
  ffi::Span<const float> window;
};

// The checked calls (FrontEndCall, InverseStftCall) and the framework-free checks are shared with
// the PyTorch operators: csrc/core/call_checks.h.

// INVALID_ARGUMENT "kapre_fast: <message>".
ffi::Error invalid(const std::string& message);

// ffi::Error::Success() or INVALID_ARGUMENT naming the attribute, operand or result at fault.
ffi::Error check_front_end(const FrontEndAttrs& attrs, const ffi::AnyBuffer& audio,
                           const ffi::AnyBuffer& result, FrontEndCall* call);
ffi::Error check_inverse_stft(const InverseStftAttrs& attrs, const ffi::AnyBuffer& stft,
                              const ffi::AnyBuffer& result, InverseStftCall* call);

// Runs fn, turning an exception (a failed host allocation above all) into an FFI error: an
// exception must not cross the C boundary into XLA.
template <class Fn>
ffi::Error run_guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "kapre_fast: out of memory for scratch buffers");
  } catch (const std::exception& error) {
    return ffi::Error::Internal(std::string("kapre_fast: ") + error.what());
  }
}

}  // namespace jax_ffi
}  // namespace kapre_fast

// Decoding of the attribute dictionaries into the structs above: each handler binds one struct
// (.Attrs<...>()), so the CPU and CUDA handlers cannot drift apart in names, order or types.
#define KAPRE_FAST_MEMBER(type, name) ::xla::ffi::StructMember<type>(#name),
XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(
    kapre_fast::jax_ffi::FrontEndAttrs,
    KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_MEMBER)::xla::ffi::StructMember<int64_t>("threads"),
    ::xla::ffi::StructMember<::xla::ffi::Span<const float>>("window"),
    ::xla::ffi::StructMember<::xla::ffi::Span<const int32_t>>("band_start"),
    ::xla::ffi::StructMember<::xla::ffi::Span<const int32_t>>("band_length"),
    ::xla::ffi::StructMember<::xla::ffi::Span<const float>>("band_weights"));
#undef KAPRE_FAST_MEMBER

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(
    kapre_fast::jax_ffi::InverseStftAttrs, ::xla::ffi::StructMember<int64_t>("n_fft"),
    ::xla::ffi::StructMember<int64_t>("win_length"),
    ::xla::ffi::StructMember<int64_t>("hop_length"),
    ::xla::ffi::StructMember<bool>("input_channels_first"),
    ::xla::ffi::StructMember<bool>("output_channels_first"),
    ::xla::ffi::StructMember<int64_t>("threads"),
    ::xla::ffi::StructMember<::xla::ffi::Span<const float>>("window"));
