#include "definitions.h"

#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace kapre_fast {
namespace torch_ops {
namespace {

// Bitwise, so a NaN attribute (unchecked where unused) still equals itself.
bool same(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_config(const FrontEndConfig& a, const FrontEndConfig& b) {
  return a.n_fft == b.n_fft && a.win_length == b.win_length && a.hop_length == b.hop_length &&
         a.pad_begin == b.pad_begin && a.pad_end == b.pad_end && a.output == b.output &&
         a.power == b.power && a.decibel == b.decibel && same(a.db_multiplier, b.db_multiplier) &&
         same(a.amin, b.amin) && same(a.ref_value, b.ref_value) &&
         same(a.dynamic_range, b.dynamic_range);
}

// Definitions of one kind by key: read by every call (shared lock), written once per key.
template <class Definition>
class Table {
 public:
  std::string define(const std::string& key, std::shared_ptr<const Definition> definition) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto [at, inserted] = entries_.emplace(key, definition);
    if (!inserted && !(*at->second == *definition)) {
      return "spec " + key + " is already defined with other attributes";
    }
    return "";
  }

  std::shared_ptr<const Definition> find(const std::string& key) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto at = entries_.find(key);
    return at == entries_.end() ? nullptr : at->second;
  }

 private:
  std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<const Definition>> entries_;
};

// Never destroyed: a call on another thread may still be looking up while the process exits.
Table<FrontEndDefinition>& front_ends() {
  static auto* table = new Table<FrontEndDefinition>;
  return *table;
}

Table<InverseStftDefinition>& inverse_stfts() {
  static auto* table = new Table<InverseStftDefinition>;
  return *table;
}

}  // namespace

BandView FrontEndDefinition::bands() const {
  BandView view;
  view.n_bands = static_cast<int64_t>(band_start.size());
  view.start = band_start.data();
  view.length = band_length.data();
  view.weights = band_weights.data();
  view.n_weights = static_cast<int64_t>(band_weights.size());
  return view;
}

bool FrontEndDefinition::operator==(const FrontEndDefinition& other) const {
  return same_config(cfg, other.cfg) && same(window, other.window) &&
         same(band_start, other.band_start) && same(band_length, other.band_length) &&
         same(band_weights, other.band_weights) &&
         input_channels_first == other.input_channels_first &&
         output_channels_first == other.output_channels_first;
}

bool InverseStftDefinition::operator==(const InverseStftDefinition& other) const {
  return same_config(cfg, other.cfg) && same(window, other.window) &&
         input_channels_first == other.input_channels_first &&
         output_channels_first == other.output_channels_first;
}

std::string define(const std::string& key, std::shared_ptr<const FrontEndDefinition> definition) {
  return front_ends().define(key, std::move(definition));
}

std::string define(const std::string& key,
                   std::shared_ptr<const InverseStftDefinition> definition) {
  return inverse_stfts().define(key, std::move(definition));
}

std::shared_ptr<const FrontEndDefinition> find_front_end(const std::string& key) {
  return front_ends().find(key);
}

std::shared_ptr<const InverseStftDefinition> find_inverse_stft(const std::string& key) {
  return inverse_stfts().find(key);
}

}  // namespace torch_ops
}  // namespace kapre_fast
