// Host side of the GPU front end (g++ only, shared by the CUDA module and the
// host emulation): the checked plan with its tables, the per-call shapes and
// the launch geometry. Validation is the core's (check_config, check_signal),
// so the CPU and GPU paths reject exactly the same inputs with the same words.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/pcen.h"
#include "../core/pipeline.h"
#include "params.h"

namespace kapre_fast {
namespace gpu {

// Bytes of global workspace the large-transform path may use for its buffers.
constexpr int64_t kWorkspaceBudget = int64_t{256} << 20;

class GpuPlan {
 public:
  // Throws std::invalid_argument with check_config's message.
  GpuPlan(const FrontEndConfig& cfg, const float* window, int64_t window_length,
          const BandView& bands);

  const FrontEndConfig& config() const { return cfg_; }
  int64_t n_features() const { return n_features_; }
  int64_t n_bands() const { return n_bands_; }
  // The tables to copy to the device once: floats (complex tables as pairs, every
  // section 16-byte aligned) and int32 band descriptors [n_bands][3].
  const std::vector<float>& floats() const { return floats_; }
  const std::vector<int32_t>& ints() const { return ints_; }
  // Launch parameters whose table pointers point into copies of floats() and ints()
  // at `floats_base` and `ints_base` (device or host memory).
  FrontEndParams params(const float* floats_base, const int32_t* ints_base) const;

 private:
  FrontEndConfig cfg_;
  int64_t n_features_ = 0, n_bands_ = 0;
  std::vector<float> floats_;
  std::vector<int32_t> ints_;
  FrontEndParams proto_;  // sizes and offsets; pointers are offsets from null
  int64_t off_twiddles_ = 0, off_trig_ = 0, off_window_ = 0, off_split_ = 0, off_chirp_ = 0,
          off_kernel_ = 0, off_weights_ = 0;
};

// The output tensor of one call: shape and float-counting strides.
struct OutputShape {
  std::vector<int64_t> shape;  // (batch, ch, frames, features) or (batch, frames, features, ch)
  bool complex = false;        // complex64 elements
  int64_t out_channels = 0;    // 2 * channels for mag/phase
  int64_t frames = 0;
};

// Checks the audio shape (check_signal) and returns "" or the error message.
std::string output_shape(const GpuPlan& plan, int64_t batch, int64_t channels, int64_t time,
                         bool output_channels_first, OutputShape* shape);

// Fills p's signal, output and geometry fields for one call. `audio` and `out` may be any
// pointers (device or host); the workspace is bound later by bind_workspace.
// The output is the contiguous tensor of output_shape().
Geometry prepare_call(const GpuPlan& plan, FrontEndParams& p, const SignalView& signal, float* out,
                      bool output_channels_first, const DeviceLimits& limits);

// Inverse STFT (the plan: output=2, no dB, no bands, the synthesis window): "" or the core's
// check_istft message for the complex input view (strides in floats).
std::string istft_check(const GpuPlan& plan, const ComplexInputView& in);

// Fills p for one inverse STFT of `in` (checked) into the contiguous waveform `out`
// ((batch, channels, length) or (batch, length, channels)).
Geometry prepare_istft(const GpuPlan& plan, FrontEndParams& p, const ComplexInputView& in,
                       float* out, bool output_channels_first, const DeviceLimits& limits);

// "" or which of p's bound input and output pointers the kernels cannot use: a float must sit
// at a 4-byte boundary, a complex64 at an 8-byte one. On a GPU a misaligned load raises
// cudaErrorMisalignedAddress, which is sticky and breaks the CUDA context of the whole process,
// so every entry point checks before launching. Null pointers (empty calls) pass.
std::string alignment_error(const FrontEndParams& p);

// "" or which table base the kernels cannot read: the kernels read the float tables as complex64
// pairs (8 bytes at a time) and the plan lays their sections out at 16-byte offsets, so `floats`
// must sit at a 16-byte boundary; `ints` at a 4-byte one. Checked by the raw entry points, whose
// callers pass the tables' device addresses (the caches allocate them 256-byte aligned).
std::string table_alignment_error(const void* floats, const void* ints);

// "" or why the kernels cannot use `workspace` (its sections sit at 256-byte offsets from it and
// are read 8 bytes at a time: the start must sit at an 8-byte boundary).
std::string workspace_alignment_error(const void* workspace);

// One PCEN pass in place over the float32 4-D array at `mel` (element (b, c, frame, k) at
// mel + b * sb + c * sc + frame * sf + k * sk floats), with librosa's constants: "" and *out
// filled (constants in float32 as the CPU pass takes them, geometry), or the message naming
// the bad constant, size or pointer (the core's check_pcen, then the pointer's alignment).
std::string prepare_pcen(const PcenParams& constants, const FeatureShape& shape, float* mel,
                         int64_t sb, int64_t sc, int64_t sf, int64_t sk, const DeviceLimits& limits,
                         PcenLaunch* out);

// Points p at a workspace of geometry.workspace_bytes() bytes (256-byte aligned).
void bind_workspace(FrontEndParams& p, const Geometry& g, void* workspace);

}  // namespace gpu
}  // namespace kapre_fast
