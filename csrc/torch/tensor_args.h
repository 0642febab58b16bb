// The arguments of the PyTorch operators and their checks, written once for the CPU and CUDA
// kernels (ops_cpu.cc, ops_cuda.cc) and the shape operators of the fake implementations
// (library.cc). Everything a call needs travels with it: the audio, the window and the
// filterbank's bands as tensors, and the kernel-call contract's scalar arguments
// (../core/kernel_args.h: KAPRE_FAST_KERNEL_ARGS, its names, types and order, generate
// front_end's schema and its decoding). No state outlives a call.
//
// Written against LibTorch's stable ABI only (torch/csrc/stable, the C shim), built for the
// lowest torch it supports (TORCH_TARGET_VERSION, CMakeLists.txt): one binary loads in that torch
// and every later one. The checks run before any memory is touched; a failure raises ValueError
// (a std::invalid_argument: the stable ABI has no TypeError) whose message starts with
// "kapre_fast: " and names the argument.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/call_checks.h"
#include "../core/kernel_args.h"

// kapre_fast::inverse_stft's scalar arguments after the STFT and the synthesis window, in the
// schema's order: (C++ type, schema type, name); kapre_fast/torch/_ops.py's INVERSE_STFT_SCALARS.
#define KF_TORCH_INVERSE_STFT_SCALARS(X) \
  X(int64_t, "int", n_fft)               \
  X(int64_t, "int", win_length)          \
  X(int64_t, "int", hop_length)          \
  X(bool, "bool", input_channels_first)  \
  X(bool, "bool", output_channels_first)

namespace kapre_fast {
namespace torch_ops {

using torch::stable::Tensor;

#define KF_TORCH_FIELD(type, schema, name) type name;
struct InverseStftScalars {
  KF_TORCH_INVERSE_STFT_SCALARS(KF_TORCH_FIELD)
};
#undef KF_TORCH_FIELD

// ", int n_fft, int win_length, ...": the scalars' part of a schema (front_end's: the contract's
// arguments, float32 ones as torch's float).
std::string front_end_schema_scalars();
std::string inverse_stft_schema_scalars();

// The operators' arguments as popped off a boxed kernel's stack (the stack's references taken).
struct FrontEndArgs {
  Tensor audio, window, band_start, band_length, band_weights;
  KernelArgs kernel;
  int64_t threads;
};
struct InverseStftArgs {
  Tensor stft, window;
  InverseStftScalars scalars;
  int64_t threads;
};
FrontEndArgs pop_front_end_args(StableIValue* stack, uint64_t num_args);
InverseStftArgs pop_inverse_stft_args(StableIValue* stack, uint64_t num_args);

// ValueError "kapre_fast: <message>" (a std::invalid_argument, which torch raises as ValueError);
// check: unless ok (build costly messages only on failure: fail).
[[noreturn]] void fail(const std::string& message);
void check(bool ok, const std::string& message);

// The checked call: the tables' and the audio's dtypes, ranks and layouts, then the shared
// checks of csrc/core/call_checks.h. `contents`: false for tensors without memory (the shape
// operators' meta tensors): the bands' values are then not read (each band taken as empty), so
// only what their sizes and the audio's decide is checked. `scratch` holds those empty bands.
void check_front_end(const FrontEndArgs& args, bool contents, FrontEndCall* call,
                     std::vector<int32_t>* scratch);
void check_inverse_stft(const InverseStftArgs& args, bool contents, InverseStftCall* call);

// The result tensors of checked calls, on the input's device (torch's allocator), with
// call->out pointing at their memory.
Tensor allocate_features(const Tensor& audio, FrontEndCall* call);
Tensor allocate_waveforms(const Tensor& stft, InverseStftCall* call);

// The boxed kernels' result: stack[0] = tensor.
void push_result(StableIValue* stack, const Tensor& result);

}  // namespace torch_ops
}  // namespace kapre_fast
