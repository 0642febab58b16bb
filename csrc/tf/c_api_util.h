// Small RAII helpers over TensorFlow's C kernel API (tensorflow/c/kernels.h, tf_tensor.h,
// tf_status.h): the only TensorFlow interface _tf_ops.so is compiled against, so that one binary
// loads in every TensorFlow the package supports (docs/backends.md). Every function used here
// must be exported by libtensorflow_framework.so.2 of each supported release:
// tools/tf_c_api_symbols.py checks that against the releases' wheels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensorflow/c/kernels.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"

namespace kapre_fast {
namespace tf_c {

// An owned TF_Status.
class Status {
 public:
  Status() : s_(TF_NewStatus()) {}
  ~Status() { TF_DeleteStatus(s_); }
  Status(const Status&) = delete;
  Status& operator=(const Status&) = delete;
  TF_Status* get() const { return s_; }
  bool ok() const { return TF_GetCode(s_) == TF_OK; }

 private:
  TF_Status* s_;
};

// Fails the kernel call with `code` and `message`; returns false (for `return fail(...)`).
inline bool fail(TF_OpKernelContext* ctx, TF_Code code, const std::string& message) {
  Status status;
  TF_SetStatus(status.get(), code, message.c_str());
  TF_OpKernelContext_Failure(ctx, status.get());
  return false;
}
inline bool invalid(TF_OpKernelContext* ctx, const std::string& message) {
  return fail(ctx, TF_INVALID_ARGUMENT, message);
}
// Passes a failed status on to the call; true when it is fine.
inline bool check(TF_OpKernelContext* ctx, const Status& status) {
  if (status.ok()) return true;
  TF_OpKernelContext_Failure(ctx, status.get());
  return false;
}

// "[2,3]": shapes in the kernels' messages, as TensorShape::DebugString writes them.
inline std::string shape_text(const TF_Tensor* t) {
  std::string text = "[";
  for (int i = 0; i < TF_NumDims(t); ++i) {
    if (i > 0) text += ",";
    text += std::to_string(TF_Dim(t, i));
  }
  return text + "]";
}

// One input or output tensor of a call, released with the call's wrapper.
class Tensor {
 public:
  Tensor() = default;
  ~Tensor() {
    if (t_ != nullptr) TF_DeleteTensor(t_);
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  // Input i of the call; false (and the call failed) when TensorFlow cannot hand it over.
  bool input(TF_OpKernelContext* ctx, int i) {
    Status status;
    TF_GetInput(ctx, i, &t_, status.get());
    return check(ctx, status);
  }
  // Allocates output `index` of `dims` and dtype; false (and the call failed) on error.
  bool output(TF_OpKernelContext* ctx, int index, TF_DataType dtype,
              const std::vector<int64_t>& dims) {
    int64_t elements = 1;
    for (int64_t d : dims) elements *= d;
    Status status;
    t_ = TF_AllocateOutput(ctx, index, dtype, dims.data(), static_cast<int>(dims.size()),
                           static_cast<size_t>(elements) * TF_DataTypeSize(dtype), status.get());
    return check(ctx, status);
  }

  int dims() const { return TF_NumDims(t_); }
  int64_t dim(int i) const { return TF_Dim(t_, i); }
  std::string shape() const { return shape_text(t_); }
  template <class T = float>
  T* data() const {
    return static_cast<T*>(TF_TensorData(t_));
  }

 private:
  TF_Tensor* t_ = nullptr;
};

// Attribute getters by name, for the kernels' constructors: each records the first failure in
// `status` and leaves later reads alone.
class AttrReader {
 public:
  explicit AttrReader(TF_OpKernelConstruction* ctx) : ctx_(ctx) {}
  ~AttrReader() {
    if (!status_.ok()) TF_OpKernelConstruction_Failure(ctx_, status_.get());
  }
  bool ok() const { return status_.ok(); }

  // Whether the node has the attribute (false after a failure).
  bool has(const char* name) {
    return ok() && TF_OpKernelConstruction_HasAttr(ctx_, name, status_.get()) && ok();
  }
  // Fails the construction with InvalidArgument (unless it failed already).
  void invalid(const std::string& message) {
    if (ok()) TF_SetStatus(status_.get(), TF_INVALID_ARGUMENT, message.c_str());
  }

  void get(const char* name, int64_t* value) {
    if (ok()) TF_OpKernelConstruction_GetAttrInt64(ctx_, name, value, status_.get());
  }
  void get(const char* name, float* value) {
    if (ok()) TF_OpKernelConstruction_GetAttrFloat(ctx_, name, value, status_.get());
  }
  void get(const char* name, bool* value) {
    TF_Bool b = *value ? 1 : 0;
    if (ok()) TF_OpKernelConstruction_GetAttrBool(ctx_, name, &b, status_.get());
    *value = b != 0;
  }
  void get(const char* name, std::string* value) {
    if (!ok()) return;
    int32_t list_size = 0;
    int32_t total_size = 0;
    TF_OpKernelConstruction_GetAttrSize(ctx_, name, &list_size, &total_size, status_.get());
    if (!ok()) return;
    std::string text(static_cast<size_t>(total_size > 0 ? total_size : 0), '\0');
    TF_OpKernelConstruction_GetAttrString(ctx_, name, text.data(), text.size(), status_.get());
    if (ok()) *value = text;
  }

 private:
  TF_OpKernelConstruction* ctx_;
  Status status_;
};

}  // namespace tf_c
}  // namespace kapre_fast
