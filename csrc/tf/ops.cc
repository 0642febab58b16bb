// TensorFlow op definitions and shape functions through TensorFlow's C op API
// (tensorflow/c/ops.h), registered with the CPU kernels (kernels.cc) when TensorFlow loads the
// library. Only C functions exported by every supported release's libtensorflow_framework.so.2
// are used (tools/tf_c_api_symbols.py), so one binary serves TensorFlow 2.16 to 2.21.
//
// Shape functions: the C API's TF_ShapeInferenceContext gives input shapes but no attribute
// values (only TF_ShapeInferenceContext_GetAttrType), so these functions check the inputs' ranks
// and pass on the batch axis; the axes that depend on attributes (frames, features, channels,
// layout) are left unknown here and set by the Python side from the same attributes
// (kapre_fast/_tf_shapes.py, applied by kapre_fast/_loader.py to every op the library builds in a
// graph). The kernels check every input again at run time (op_args.h).
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <vector>

#include "tensorflow/c/ops.h"
#include "tensorflow/c/tf_status.h"

namespace kapre_fast {

void register_cpu_kernels();  // kernels.cc

namespace {

// Owned shape handles of one shape function.
class Shapes {
 public:
  explicit Shapes(TF_ShapeInferenceContext* ctx) : ctx_(ctx) {}
  ~Shapes() {
    for (TF_ShapeHandle* h : owned_) TF_DeleteShapeHandle(h);
  }
  TF_ShapeHandle* own(TF_ShapeHandle* h) {
    owned_.push_back(h);
    return h;
  }
  TF_ShapeHandle* make() { return own(TF_NewShapeHandle()); }

  // Input i checked to have `rank` axes; nullptr (and status set) otherwise.
  TF_ShapeHandle* input(int i, int64_t rank, TF_Status* status) {
    TF_ShapeHandle* in = make();
    TF_ShapeInferenceContextGetInput(ctx_, i, in, status);
    if (TF_GetCode(status) != TF_OK) return nullptr;
    TF_ShapeHandle* ranked = make();
    TF_ShapeInferenceContextWithRank(ctx_, in, rank, ranked, status);
    return TF_GetCode(status) == TF_OK ? ranked : nullptr;
  }

  // Output 0: the first axis of `leading` followed by `unknown` axes of unknown size.
  void set_batch_then_unknown(TF_ShapeHandle* leading, int unknown, TF_Status* status) {
    TF_ShapeHandle* shape = make();
    TF_ShapeInferenceContextSubshape(ctx_, leading, 0, 1, shape, status);
    for (int i = 0; i < unknown && TF_GetCode(status) == TF_OK; ++i) {
      // A 1-D shape whose one axis is unknown (-1 is the C++ API's kUnknownDim).
      TF_ShapeHandle* axis =
          own(TF_ShapeInferenceContextVectorFromSize(ctx_, static_cast<size_t>(-1)));
      TF_ShapeHandle* joined = make();
      TF_ShapeInferenceContextConcatenateShapes(ctx_, shape, axis, joined, status);
      shape = joined;
    }
    if (TF_GetCode(status) == TF_OK) TF_ShapeInferenceContextSetOutput(ctx_, 0, shape, status);
  }

 private:
  TF_ShapeInferenceContext* ctx_;
  std::vector<TF_ShapeHandle*> owned_;
};

// KapreFastFrontEnd, KapreFastStft and KapreFastMfcc: audio (3-D), window and the filterbank
// (1-D), the DCT matrix (2-D) -> (batch, ?, ?, ?).
template <int kVectors, bool kDct>
void front_end_shape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  Shapes s(ctx);
  TF_ShapeHandle* audio = s.input(0, 3, status);
  if (audio == nullptr) return;
  for (int i = 1; i <= kVectors; ++i) {
    if (s.input(i, 1, status) == nullptr) return;
  }
  if (kDct && s.input(kVectors + 1, 2, status) == nullptr) return;
  s.set_batch_then_unknown(audio, 3, status);
}

// KapreFastPcen: the features' own shape (rank 4).
void pcen_shape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  Shapes s(ctx);
  TF_ShapeHandle* features = s.input(0, 4, status);
  if (features != nullptr) TF_ShapeInferenceContextSetOutput(ctx, 0, features, status);
}

// KapreFastInverseStft: stft (4-D), window (1-D) -> (batch, ?, ?).
void inverse_stft_shape(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  Shapes s(ctx);
  TF_ShapeHandle* stft = s.input(0, 4, status);
  if (stft == nullptr || s.input(1, 1, status) == nullptr) return;
  s.set_batch_then_unknown(stft, 2, status);
}

const char* const kFramingAttrs[] = {
    "n_fft: int",
    "win_length: int",
    "hop_length: int",
    "pad_begin: int = 0",
    "pad_end: bool = false",
    "input_format: {'channels_last', 'channels_first'} = 'channels_last'",
    "output_format: {'channels_last', 'channels_first'} = 'channels_last'",
};
const char* const kDbAttrs[] = {
    "amin: float = 1e-5", "ref_value: float = 1.0",      "dynamic_range: float = 80.0",
    "power: int = 1",     "db_multiplier: float = 10.0",
};

struct OpSpec {
  const char* name;
  std::vector<const char*> inputs, outputs, attrs;
  void (*shape)(TF_ShapeInferenceContext*, TF_Status*);
};

std::vector<const char*> joined(std::initializer_list<std::vector<const char*>> parts) {
  std::vector<const char*> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

const std::vector<const char*> kFraming(std::begin(kFramingAttrs), std::end(kFramingAttrs));
const std::vector<const char*> kDb(std::begin(kDbAttrs), std::end(kDbAttrs));
const std::vector<const char*> kFrontEndInputs = {"audio: float", "window: float",
                                                  "band_start: int32", "band_length: int32",
                                                  "band_weights: float"};

bool register_op(const OpSpec& op) {
  TF_OpDefinitionBuilder* builder = TF_NewOpDefinitionBuilder(op.name);
  for (const char* in : op.inputs) TF_OpDefinitionBuilderAddInput(builder, in);
  for (const char* out : op.outputs) TF_OpDefinitionBuilderAddOutput(builder, out);
  for (const char* attr : op.attrs) TF_OpDefinitionBuilderAddAttr(builder, attr);
  TF_OpDefinitionBuilderSetShapeInferenceFunction(builder, op.shape);
  TF_Status* status = TF_NewStatus();
  TF_RegisterOpDefinition(builder, status);  // takes the builder
  const bool ok = TF_GetCode(status) == TF_OK;
  if (!ok) {
    std::fprintf(stderr, "kapre_fast: registering the op %s failed: %s\n", op.name,
                 TF_Message(status));
  }
  TF_DeleteStatus(status);
  return ok;
}

// Runs when TensorFlow loads the library (tf.load_op_library), before it reads the ops.
const bool kRegistered = [] {
  const OpSpec ops[] = {
      {"KapreFastFrontEnd",
       kFrontEndInputs,
       {"features: float"},
       joined({kFraming,
               {"output: {'magnitude', 'mag_phase'} = 'magnitude'", "decibel: bool = false"},
               kDb}),
       front_end_shape<4, false>},
      {"KapreFastMfcc",
       joined({kFrontEndInputs, {"dct: float"}}),
       {"mfcc: float"},
       joined({kFraming, kDb}),
       front_end_shape<4, true>},
      {"KapreFastPcen",
       {"features: float"},
       {"pcen: float"},
       {"b: float", "gain: float", "bias: float", "power: float", "eps: float",
        "data_format: {'channels_last', 'channels_first'} = 'channels_last'"},
       pcen_shape},
      {"KapreFastStft",
       {"audio: float", "window: float"},
       {"stft: complex64"},
       kFraming,
       front_end_shape<1, false>},
      {"KapreFastInverseStft",
       {"stft: complex64", "window: float"},
       {"audio: float"},
       {"n_fft: int", "win_length: int", "hop_length: int",
        "input_format: {'channels_last', 'channels_first'} = 'channels_last'",
        "output_format: {'channels_last', 'channels_first'} = 'channels_last'"},
       inverse_stft_shape},
  };
  bool ok = true;
  for (const OpSpec& op : ops) ok = register_op(op) && ok;
  register_cpu_kernels();
  return ok;
}();

}  // namespace
}  // namespace kapre_fast
