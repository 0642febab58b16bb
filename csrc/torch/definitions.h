// The front ends the PyTorch operators know, by name. torch.library schemas carry no arrays as
// attributes, so a FrontEnd's window and filterbank cannot travel with each call as they do in
// the JAX and TF bindings; instead kapre_fast/torch/_ops.py defines each front end once
// (kapre_fast::define_front_end / define_inverse_stft, eagerly, outside any tracing) under its
// canonical JSON key, and kapre_fast::front_end(audio, key, threads) names it. The key is a
// string constant to torch.compile, and the result a pure function of (audio, key): a key names
// one definition for the life of the process (redefining it differently is an error). A kernel
// given a key with no definition asks Python to define it from the key (tensor_args.cc,
// kapre_fast::define_from_key), as a torch.export program loaded in a fresh process needs. Entries
// are never freed: a process defines a handful (a few KB to a few MB each).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/pipeline.h"

namespace kapre_fast {
namespace torch_ops {

// What kapre_fast::front_end computes: the core's config and arrays (checked when defined).
struct FrontEndDefinition {
  FrontEndConfig cfg;
  std::vector<float> window;
  std::vector<int32_t> band_start, band_length;
  std::vector<float> band_weights;
  bool input_channels_first = false, output_channels_first = false;

  BandView bands() const;
  bool operator==(const FrontEndDefinition& other) const;
};

// What kapre_fast::inverse_stft computes (cfg: n_fft, win_length, hop_length).
struct InverseStftDefinition {
  FrontEndConfig cfg;
  std::vector<float> window;  // the synthesis window
  bool input_channels_first = false, output_channels_first = false;

  bool operator==(const InverseStftDefinition& other) const;
};

// "" when stored (or already stored with equal contents), else why not.
std::string define(const std::string& key, std::shared_ptr<const FrontEndDefinition> definition);
std::string define(const std::string& key, std::shared_ptr<const InverseStftDefinition> definition);

// The definition of `key`; null when there is none.
std::shared_ptr<const FrontEndDefinition> find_front_end(const std::string& key);
std::shared_ptr<const InverseStftDefinition> find_inverse_stft(const std::string& key);

}  // namespace torch_ops
}  // namespace kapre_fast
