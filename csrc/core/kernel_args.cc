#include "kernel_args.h"

#include <cmath>
#include <type_traits>

namespace kapre_fast {
namespace {

template <class T>
const char* type_name() {
  if (std::is_same<T, bool>::value) return "bool";
  if (std::is_same<T, float>::value) return "float32";
  return "int64";
}

}  // namespace

std::string kernel_arg_signature() {
  std::string text;
#define KAPRE_FAST_NAME(type, name) \
  text += std::string(text.empty() ? "" : " ") + #name + ":" + type_name<type>();
  KAPRE_FAST_KERNEL_ARGS(KAPRE_FAST_NAME)
#undef KAPRE_FAST_NAME
  return text;
}

std::string narrow_float(double value, const char* name, float* out) {
  const float narrowed = static_cast<float>(value);
  if (std::isfinite(value) && !std::isfinite(narrowed)) {
    return std::string(name) + " is out of float32 range, got " + std::to_string(value);
  }
  *out = narrowed;
  return "";
}

std::string to_config(const KernelArgs& args, FrontEndConfig* cfg) {
  if (args.output < 0 || args.output > 2) {
    return "output must be 0 (magnitude), 1 (mag_phase) or 2 (complex), got " +
           std::to_string(args.output);
  }
  if (args.power != 1 && args.power != 2) {
    return "power must be 1 or 2, got " + std::to_string(args.power);
  }
  cfg->n_fft = args.n_fft;
  cfg->win_length = args.win_length;
  cfg->hop_length = args.hop_length;
  cfg->pad_begin = args.pad_begin;
  cfg->pad_end = args.pad_end;
  cfg->output = static_cast<OutputKind>(args.output);
  cfg->power = static_cast<int>(args.power);
  cfg->decibel = args.decibel;
  cfg->db_multiplier = args.db_multiplier;
  cfg->amin = args.amin;
  cfg->ref_value = args.ref_value;
  cfg->dynamic_range = args.dynamic_range;
  return "";
}

}  // namespace kapre_fast
