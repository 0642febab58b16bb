// The per-instruction-set kernels and the table that picks one at run time.
//
// isa_kernels.cc is compiled once per instruction set (AVX-512, AVX2+FMA and
// the x86-64 baseline) into its own namespace; pipeline.cc calls whichever the
// CPU supports through IsaKernels. Everything here is plain data.
#pragma once

#include <cstdint>

#include "fft_plan.h"
#include "pipeline.h"

namespace kapre_fast {

struct FrontEndJob {
  int64_t n_fft, win_length, hop_length, pad_begin;
  OutputKind output;
  bool decibel;
  float amin;
  float db_scale;   // db_multiplier / 10: 1 for kapre (no multiply), 2 for 20 log10
  float db_offset;  // db_multiplier * log10(max(amin, ref_value))
  int power;        // 1: |X|, 2: |X|^2
  const float* window;
  int64_t n_bands;
  const int32_t* band_start;
  const int32_t* band_length;
  const int64_t* band_offset;
  const float* band_weights;
  int64_t bins_used;  // bins [0, bins_used) the filterbank reads; n_fft / 2 + 1 without one
  const RealFftView* fft;
  SignalView signal;
  FeatureView out;
  int64_t n_frames, n_features, tiles_per_signal;
  // Non-temporal stores for the features (a large result written once and not read back by the
  // kernel: no dB clamp pass); the AVX-512 kernels honour it for rows with step 1.
  bool stream_out = false;
};

struct IstftJob {
  int64_t n_fft, win_length, hop_length;
  const float* window;
  const RealFftView* fft;
  ComplexInputView in;
  SignalOutView out;
  int64_t out_length;
};

struct IsaKernels {
  const char* name;
  int lanes;
  // Floats of scratch one thread needs (aligned to 64 bytes by the caller).
  int64_t (*frontend_scratch)(const FrontEndJob& job);
  // Tasks are (signal, tile of `lanes` frames); task_max[t] gets the task's largest dB value.
  void (*frontend_tasks)(const FrontEndJob& job, int64_t begin, int64_t end, float* scratch,
                         float* task_max);
  int64_t (*istft_scratch)(const IstftJob& job);
  void (*istft_signals)(const IstftJob& job, int64_t begin, int64_t end, float* scratch);
  // Rows [begin, end) of a batched real FFT; in/out as in pipeline.h's real_fft_rows.
  void (*rfft_rows)(const RealFftView& fft, const float* in, int64_t rows, int64_t begin,
                    int64_t end, float* out, float* scratch);
  void (*irfft_rows)(const RealFftView& fft, const float* in, int64_t rows, int64_t begin,
                     int64_t end, float* out, float* scratch);
  int64_t (*fft_scratch)(const RealFftView& fft);
  // MFCC's DCT of one signal: x holds its (clamped) dB bands band-major, x[m * x_stride + f]
  // for frames [0, frames) (x_stride >= frames rounded up to `lanes`, the rest readable);
  // y[f * ysf + i * ysk] = sum over m in order of x[m, f] * matrix[m * n_out + i].
  void (*dct_frames)(const float* x, int64_t x_stride, int64_t frames, const DctView& dct, float* y,
                     int64_t ysf, int64_t ysk);
};

namespace isa_avx512 {
extern const IsaKernels kKernels;
}
namespace isa_avx2 {
extern const IsaKernels kKernels;
}
namespace isa_sse2 {
extern const IsaKernels kKernels;
}

// The widest kernels this CPU runs; KAPRE_FAST_ISA=avx512|avx2|sse2 narrows it (tests use it).
const IsaKernels& isa_kernels();

}  // namespace kapre_fast
