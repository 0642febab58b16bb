#include "call_checks.h"

#include "layout.h"

namespace kapre_fast {
namespace {

// The product of the leading axes dims[0 .. rank - trailing): kapre's batch axis and any in
// front of it (JAX's vmap). False when it overflows or an axis is negative.
bool folded_batch(const std::vector<int64_t>& dims, std::size_t trailing, int64_t* batch) {
  for (int64_t d : dims) {
    if (d < 0) return false;  // no framework makes these; a raw caller might
  }
  int64_t product = 1;
  for (std::size_t i = 0; i + trailing < dims.size(); ++i) {
    if (dims[i] < 0 || __builtin_mul_overflow(product, dims[i], &product)) return false;
  }
  *batch = product;
  return true;
}

}  // namespace

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    text += std::to_string(dims[i]) + (i + 1 < dims.size() ? ", " : "");
  }
  return text + (dims.size() == 1 ? ",)" : ")");
}

std::string check_threads(int64_t threads) {
  if (threads < 0 || threads > 1024) {
    return "threads must be in [0, 1024], got " + std::to_string(threads);
  }
  return "";
}

std::string check_front_end_config(const float* window, int64_t window_length,
                                   const int32_t* band_start, int64_t n_start,
                                   const int32_t* band_length, int64_t n_length,
                                   const float* band_weights, int64_t n_weights,
                                   FrontEndCall* call) {
  if (n_start != n_length) {
    return "band_start has " + std::to_string(n_start) + " entries but band_length has " +
           std::to_string(n_length);
  }
  BandView& bands = call->bands;
  bands.n_bands = n_start;
  bands.start = band_start;
  bands.length = band_length;
  bands.weights = band_weights;
  bands.n_weights = n_weights;
  call->window = window;
  return check_config(call->cfg, window_length, bands);
}

std::string check_front_end_audio(const float* audio, const std::vector<int64_t>& dims,
                                  bool in_first, bool out_first, FrontEndCall* call) {
  const std::size_t rank = dims.size();
  int64_t batch = 0;
  if (rank < 3 || !folded_batch(dims, 2, &batch)) {
    return "audio shape " + shape_text(dims) + " is too large";
  }
  call->signal = contiguous_signal(audio, batch, dims[in_first ? rank - 2 : rank - 1],
                                   dims[in_first ? rank - 1 : rank - 2], in_first);
  std::string err = check_signal(call->cfg, call->bands, call->signal);
  if (!err.empty()) return err;
  const ResultShape shape = result_shape(call->cfg, feature_count(call->cfg, call->bands),
                                         call->signal.channels, call->signal.time, out_first);
  call->frames = shape.frames;
  call->features = shape.features;
  call->out_channels = shape.channels;
  call->out_first = out_first;
  call->out_shape.assign(dims.begin(), dims.end() - 2);
  call->out_shape.insert(call->out_shape.end(), shape.axes.begin(), shape.axes.end());
  return "";
}

std::string check_inverse_stft_input(const float* stft, const std::vector<int64_t>& dims,
                                     const float* window, int64_t window_length, bool in_first,
                                     bool out_first, InverseStftCall* call) {
  const std::size_t rank = dims.size();
  int64_t batch = 0;
  if (rank < 4 || !folded_batch(dims, 3, &batch)) {
    return "stft shape " + shape_text(dims) + " is too large";
  }
  call->cfg.output = OutputKind::kComplex;
  const int64_t channels = dims[in_first ? rank - 3 : rank - 1];
  const int64_t frames = dims[in_first ? rank - 2 : rank - 3];
  const int64_t bins = dims[in_first ? rank - 1 : rank - 2];
  call->in = contiguous_complex(stft, batch, channels, frames, bins, in_first);
  std::string err = check_istft(call->cfg, window_length, call->in);
  if (!err.empty()) return err;
  call->window = window;
  call->length = istft_length(call->cfg, frames);
  call->out_first = out_first;
  call->out_shape.assign(dims.begin(), dims.end() - 3);
  if (out_first) {
    call->out_shape.insert(call->out_shape.end(), {channels, call->length});
  } else {
    call->out_shape.insert(call->out_shape.end(), {call->length, channels});
  }
  return "";
}

}  // namespace kapre_fast
