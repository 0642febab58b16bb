// The fused front end: pad > frame > window > real FFT > |X| (and phase) >
// sparse filterbank > dB, then kapre's per-example dynamic-range clamp.
//
// Framework-free: pointers, sizes and strides only. The pybind11 module and the
// TensorFlow kernels are thin adapters over these functions.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace kapre_fast {

enum class OutputKind : int { kMagnitude = 0, kMagPhase = 1, kComplex = 2 };

struct FrontEndConfig {
  int64_t n_fft = 2048;
  int64_t win_length = 2048;
  int64_t hop_length = 512;
  int64_t pad_begin = 0;  // zeros prepended (kapre: n_fft - hop_length when pad_begin)
  bool pad_end = false;
  OutputKind output = OutputKind::kMagnitude;
  int power = 1;  // 1: |X| (kapre); 2: |X|^2 (the librosa/torchaudio presets' power spectrum)
  bool decibel = false;
  float db_multiplier = 10.0f;  // y = db_multiplier * log10(..): 10 (kapre, power), 20 (amplitude)
  float amin = 1e-5f;
  float ref_value = 1.0f;
  float dynamic_range = 80.0f;
};

// Sparse filterbank: band b has weights[offset_b .. offset_b + length[b]) over
// frequency bins start[b] ...; n_bands == 0 means "no filterbank" (|X| itself).
struct BandView {
  int64_t n_bands = 0;
  const int32_t* start = nullptr;
  const int32_t* length = nullptr;
  const float* weights = nullptr;
  int64_t n_weights = 0;
};

// Element (b, c, t) lives at data[b * sb + c * sc + t * st].
struct SignalView {
  const float* data = nullptr;
  int64_t batch = 0, channels = 0, time = 0;
  int64_t sb = 0, sc = 0, st = 0;
};

// Feature (b, c, frame, k) lives at data[b * sb + c * sc + frame * sf + k * sk].
// For complex output the strides count floats and the imaginary part is at +1.
// For mag/phase output the phase goes to `phase` with the same strides.
struct FeatureView {
  float* data = nullptr;
  float* phase = nullptr;
  int64_t sb = 0, sc = 0, sf = 0, sk = 0;
};

// Runs fn(begin, end) over [0, n) split into ranges; cost is a per-item hint in
// nanoseconds. The default runs everything on the calling thread.
using ParallelFor =
    std::function<void(int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)>& fn)>;
ParallelFor serial_for();
// threads: the worker count; 0 for every core of the machine (the bindings' `threads=0`).
ParallelFor thread_pool_for(int threads);

// Validation: an empty string when fine, else a message naming the argument.
std::string check_config(const FrontEndConfig& cfg, int64_t window_length, const BandView& bands);
std::string check_signal(const FrontEndConfig& cfg, const BandView& bands,
                         const SignalView& signal);

int64_t frame_count(const FrontEndConfig& cfg, int64_t time);  // 0: too short for one frame
int64_t feature_count(const FrontEndConfig& cfg, const BandView& bands);

// The result of a front-end call on `channels` x `time` signals (check_signal passed):
// frames, `features` (feature_count, or an MFCC's n_mfcc), the output channels (twice the
// signal's for mag/phase) and the four result axes after the batch's in out_first's layout:
// (channels, frames, features) or (frames, features, channels). Every adapter's output shape
// (call_checks, the NumPy module, the TF kernels, the CUDA plan).
struct ResultShape {
  int64_t frames = 0, features = 0, channels = 0;
  std::array<int64_t, 3> axes{};
};
ResultShape result_shape(const FrontEndConfig& cfg, int64_t features, int64_t channels,
                         int64_t time, bool out_first);

// All checks must have passed. The output must hold (batch, channels, frames, features).
void compute_frontend(const FrontEndConfig& cfg, const float* window, const BandView& bands,
                      const SignalView& signal, const FeatureView& out,
                      const ParallelFor& parallel);

// MFCC: each frame's clamped dB filterbank row x (n_in = the bands) times a row-major
// (n_in, n_out) matrix (the orthonormal DCT-II with any lifter folded in): y = x @ matrix.
struct DctView {
  int64_t n_in = 0, n_out = 0;
  const float* matrix = nullptr;
};
// Needs check_config first; an empty string when `dct` fits `bands` (1 <= n_out <= n_in).
std::string check_dct(const FrontEndConfig& cfg, const BandView& bands, const DctView& dct);
// compute_frontend with the DCT applied per example after the clamp; the output holds
// (batch, channels, frames, n_out). Examples run in parallel (one per task).
void compute_mfcc(const FrontEndConfig& cfg, const float* window, const BandView& bands,
                  const DctView& dct, const SignalView& signal, const FeatureView& out,
                  const ParallelFor& parallel);

// Inverse STFT as tf.signal.inverse_stft: irfft per frame, crop or zero-pad to
// win_length, multiply by `window` (the synthesis window), overlap-add.
// Input is complex (b, c, frame, bin) through FeatureView strides (in floats);
// output (b, c, t) of length (frames - 1) * hop + win_length.
struct ComplexInputView {
  const float* data = nullptr;
  int64_t batch = 0, channels = 0, frames = 0, bins = 0;
  int64_t sb = 0, sc = 0, sf = 0, sk = 0;
};
struct SignalOutView {
  float* data = nullptr;
  int64_t sb = 0, sc = 0, st = 0;
};
std::string check_istft(const FrontEndConfig& cfg, int64_t window_length,
                        const ComplexInputView& in);
int64_t istft_length(const FrontEndConfig& cfg, int64_t frames);
void compute_istft(const FrontEndConfig& cfg, const float* window, const ComplexInputView& in,
                   const SignalOutView& out, const ParallelFor& parallel);

// Batched real FFT of rows (for tests of the transform itself).
void real_fft_rows(int64_t n, const float* in, int64_t rows, float* out_interleaved,
                   const ParallelFor& parallel);
void inverse_real_fft_rows(int64_t n, const float* in_interleaved, int64_t rows, float* out,
                           const ParallelFor& parallel);

// Name of the instruction set the kernels run with ("avx512", "avx2", "sse2").
const char* active_isa();
// Largest output (bytes) one call may produce; returns the limit in force. A value <= 0 only
// reads it. Default 4 GiB, or KAPRE_FAST_MAX_OUTPUT_BYTES from the environment.
int64_t set_output_limit(int64_t bytes);
// Smallest magnitude result (bytes, no dB) written with non-temporal stores; returns the value in
// force. A negative value only reads it. Default 16 MiB; tests set 0 (always) and a huge value
// (never) to compare the two paths bit for bit.
int64_t set_stream_bytes(int64_t bytes);

// Runs the kernels of a narrower instruction set (tests compare them); "" restores
// the default. False when the name is unknown or the CPU lacks that set.
bool force_isa(const std::string& name);

}  // namespace kapre_fast
