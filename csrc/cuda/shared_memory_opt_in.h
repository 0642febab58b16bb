// When a kernel may use more than the default 48 KiB of dynamic shared memory.
//
// The limit (cudaFuncAttributeMaxDynamicSharedMemorySize) belongs to the kernel function on
// each device, not to a launch, and every thread of the process shares it. Setting it to each
// call's own size lets a concurrent call with a smaller size lower it between another call's
// set and launch, and that launch fails (cudaErrorInvalidValue). So it is raised once per device,
// to the device's opt-in maximum, and never lowered. No CUDA header here: kernels.cu passes the
// real setter, the host emulation a simulated one, and both run this same logic.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace kapre_fast {
namespace gpu {

constexpr std::size_t kDefaultSharedMemory = 48 * 1024;

class SharedMemoryOptIn {
 public:
  // Makes launches with `bytes` of dynamic shared memory legal on `device`. The first call on a
  // device that needs more than the default runs raise_to_maximum() (returns "" or an error);
  // once it succeeded, later calls do nothing. After a failure the next call tries again.
  template <class Raise>
  std::string allow(int device, std::size_t bytes, Raise&& raise_to_maximum) {
    if (bytes <= kDefaultSharedMemory) return {};
    if (device < 0) return "device must be >= 0, got " + std::to_string(device);
    // Held across the raise: a second thread needing the opt-in must wait until it is set.
    std::lock_guard<std::mutex> lock(mu_);
    const std::size_t d = static_cast<std::size_t>(device);
    if (d < raised_.size() && raised_[d]) return {};
    std::string err = raise_to_maximum();
    if (!err.empty()) return err;
    if (raised_.size() <= d) raised_.resize(d + 1, false);
    raised_[d] = true;
    return {};
  }

 private:
  std::mutex mu_;
  std::vector<bool> raised_;  // by device
};

}  // namespace gpu
}  // namespace kapre_fast
