// The typed kernel-call contract: the scalar arguments of one front-end kernel call, listed
// ONCE here with their types and names. Every adapter reads them by these names (the NumPy and
// CuPy modules from keywords, the TensorFlow ops from attributes, the XLA FFI handlers from
// their attribute dictionary, the torch operators from their schema), and Python builds them
// once per spec in kapre_fast/_kernel_args.py, whose KernelArgs has the same fields in the same
// order (tests/test_kernel_args.py compares the two through _core.kernel_arg_signature()).
// The arrays of a call (window, filterbank bands, DCT matrix) and the audio travel beside them;
// call_checks.h checks them against the configuration that to_config makes from these.
#pragma once

#include <cstdint>
#include <string>

#include "pipeline.h"

// X(type, name) for each argument, in the contract's order.
//   pad_begin: zeros prepended, in samples (the spec's pad_begin_length);
//   output: 0 magnitude, 1 mag_phase, 2 complex; power: 1 |X| (kapre), 2 |X|^2 (presets);
//   decibel: whether dB follows (db_multiplier * log10(max(x, amin) / ref_value), then kapre's
//   per-example clamp to dynamic_range below the maximum).
#define KAPRE_FAST_KERNEL_ARGS(X) \
  X(int64_t, n_fft)               \
  X(int64_t, win_length)          \
  X(int64_t, hop_length)          \
  X(int64_t, pad_begin)           \
  X(bool, pad_end)                \
  X(int64_t, output)              \
  X(bool, decibel)                \
  X(float, amin)                  \
  X(float, ref_value)             \
  X(float, dynamic_range)         \
  X(bool, input_channels_first)   \
  X(bool, output_channels_first)  \
  X(int64_t, power)               \
  X(float, db_multiplier)

namespace kapre_fast {

struct KernelArgs {
#define KAPRE_FAST_FIELD(type, name) type name{};
  KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_FIELD)
#undef KAPRE_FAST_FIELD
};

// "n_fft:int64 win_length:int64 ... output_channels_first:bool": the names and types in order.
std::string kernel_arg_signature();

// Reads every argument through the adapter's by-name getter, in order: get(name, &field) with
// field an int64_t*, bool* or float*, returning "" or a message naming the argument. Returns the
// first message, or "".
template <class Getter>
std::string read_kernel_args(Getter&& get, KernelArgs* args) {
  std::string err;
#define KAPRE_FAST_READ(type, name) \
  if (err.empty()) err = get(#name, &args->name);
  KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_READ)
#undef KAPRE_FAST_READ
  return err;
}

// The arguments of any struct that declares fields of the same names (the XLA FFI handlers'
// decoded attribute structs).
template <class Holder>
KernelArgs kernel_args_of(const Holder& holder) {
  KernelArgs args;
#define KAPRE_FAST_COPY(type, name) args.name = holder.name;
  KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_COPY)
#undef KAPRE_FAST_COPY
  return args;
}

// A float argument given as a double (Python, torch schemas): "" and *out, or a message naming
// it when the value does not survive the cast (never rounded to infinity).
std::string narrow_float(double value, const char* name, float* out);

// cfg from args: "" or a message naming the argument at fault (the output code, the power).
// The framing, window, bands and dB values are checked with them later (check_config through
// call_checks.h), where the window's length and the bands are known.
std::string to_config(const KernelArgs& args, FrontEndConfig* cfg);

}  // namespace kapre_fast
