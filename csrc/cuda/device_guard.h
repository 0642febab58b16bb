// The calling thread's current CUDA device, left as the caller had it.
//
// Every host entry point of csrc/cuda (launches, uploads, frees, the device limits) works on an
// explicit device and must not leave that device current afterwards: a torch operator on cuda:1
// would otherwise make cuda:1 the process's current device. Restoring is not always harmless
// either: since CUDA 12, cudaSetDevice(d) creates d's primary context, so restoring "device 0"
// on a thread that never touched CUDA (cudaGetDevice reports 0 there) would create a context on
// GPU 0 in a process meant to use only GPU k. So the previous device is restored only when its
// primary context is already active (as torch's own MaybeSetDevice decides); otherwise the
// thread keeps `device`, which is then the only device it has a context on.
//
// No CUDA header: kernels.cu passes the CUDA runtime, the host emulation a simulated one (its
// tests run this same logic), as shared_memory_opt_in.h does.
#pragma once

#include <string>

namespace kapre_fast {
namespace gpu {

// Api: int current() (cudaGetDevice, -1 on failure); std::string set(int device) (cudaSetDevice:
// "" or the error); bool active(int device) (the device's primary context exists).
template <class Api>
class ScopedDevice {
 public:
  ScopedDevice(Api& api, int device) : api_(api), previous_(api.current()) {
    if (previous_ != device) {
      error_ = api_.set(device);
      switched_ = error_.empty();
    }
  }
  ~ScopedDevice() {
    if (switched_ && previous_ >= 0 && api_.active(previous_)) api_.set(previous_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

  // "" or why `device` could not be made current (then nothing was changed).
  const std::string& error() const { return error_; }

 private:
  Api& api_;
  const int previous_;
  bool switched_ = false;
  std::string error_;
};

}  // namespace gpu
}  // namespace kapre_fast
