"""Models with kapre_fast layers for targets without kapre_fast's op library (imports TensorFlow).

- `portable(model)`: the same Keras model (same layer names and weights) whose kapre_fast layers
  compute with `implementation='builtin'` (kapre_fast.builtin: plain TensorFlow ops). After it,
  stock tooling takes the model: `model.export(path)` (a SavedModel any TensorFlow serves),
  TFLite with `TFLITE_BUILTINS` only, tf2onnx.
- `to_savedmodel`, `to_tflite`, `to_onnx`: those conversions, with the model's input signature
  (unknown batch, and unknown time where the model leaves it unknown), and `run_savedmodel`,
  `run_tflite`, `run_onnx` to run what they wrote (the `kapre-fast export` command and the tests
  use them). TFLite runs in the LiteRT interpreter (ai-edge-litert), ONNX in onnxruntime; both
  converters are the optional extra `export` (pyproject.toml).
"""

from __future__ import annotations

import contextlib
import copy
import io
import re

import keras
import numpy as np
import tensorflow as tf

from kapre_fast import _loader, builtin
from kapre_fast import layers as _layers

__all__ = [
    'portable',
    'kapre_fast_layers',
    'to_savedmodel',
    'to_tflite',
    'to_onnx',
    'run_savedmodel',
    'run_tflite',
    'run_onnx',
    'ONNX_OPSET',
    'QUANTIZE_CHOICES',
    'MissingConverterError',
]

ONNX_OPSET = 17
_SWITCHED = {
    f'kapre_fast>{cls.__name__}'
    for cls in (_layers.FrontEnd, _layers.STFT, _layers.InverseSTFT, _layers.MFCC, _layers.PCEN)
}


class MissingConverterError(ImportError):
    """A converter or runtime of the `export` extra is not installed."""


def _require(module, package):
    try:
        return __import__(module, fromlist=['_'])
    except ImportError as error:
        raise MissingConverterError(
            f'{package} is not installed ({error}); install the export extra: '
            f'{_loader.pip_install_hint("export")}'
        ) from None


def kapre_fast_layers(model) -> list:
    """The kapre_fast op-backed layers (FrontEnd, STFT, InverseSTFT) in `model`, nested models
    included."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (_layers._WaveformLayer, _layers.InverseSTFT)):
            found.append(layer)
    return found


def _switch_to_builtin(config):
    """Sets implementation='builtin' in every serialised kapre_fast op layer of a model config
    (a nested structure of dicts and lists)."""
    if isinstance(config, dict):
        if config.get('registered_name') in _SWITCHED and isinstance(config.get('config'), dict):
            config['config']['implementation'] = 'builtin'
        for value in config.values():
            _switch_to_builtin(value)
    elif isinstance(config, list):
        for value in config:
            _switch_to_builtin(value)


def portable(model: keras.Model) -> keras.Model:
    """A copy of `model` (same layer names and weights) whose kapre_fast layers use the builtin
    TensorFlow ops, so that it exports, converts and serves without kapre_fast. A model without
    kapre_fast layers is copied as it is. The model is rebuilt from its config (functional and
    Sequential models, or subclasses that implement get_config/from_config)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f'model must be a keras.Model, got {type(model).__name__}')
    config = copy.deepcopy(keras.saving.serialize_keras_object(model))
    _switch_to_builtin(config)
    config.pop('compile_config', None)  # an exported model is run, not trained
    try:
        clone = keras.saving.deserialize_keras_object(config)
    except Exception as error:
        raise TypeError(
            f'portable() rebuilds a model from its config; {model.name!r} '
            f'({type(model).__name__}) could not be rebuilt: {error}'
        ) from error
    clone.set_weights(model.get_weights())
    return clone


def _input_signature(model):
    """One TensorSpec per model input: the Keras input shape with an unknown batch."""
    specs = []
    for tensor in tf.nest.flatten(model.inputs):
        shape = [None] + list(tensor.shape[1:])
        specs.append(tf.TensorSpec(shape, tensor.dtype, name=tensor.name.split(':')[0]))
    return specs


def _serving_function(model):
    signature = _input_signature(model)

    def serve(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    return tf.function(serve, input_signature=signature)


def to_savedmodel(model, path):
    """Writes portable(model) as a SavedModel (endpoint 'serve') to the folder `path`."""
    portable(model).export(str(path), verbose=False)


# to_tflite's weight formats besides float32: TFLite's dynamic-range quantisation (int8
# weights, float activations) and float16 weights (half the size; LiteRT computes in float32).
QUANTIZE_CHOICES = ('dynamic', 'float16')


def to_tflite(model, quantize=None) -> bytes:
    """portable(model) as a TFLite flatbuffer of builtin ops only. quantize: None (float32
    weights), 'dynamic' (int8 weights, float activations: TFLite's dynamic-range quantisation)
    or 'float16' (float16 weights, the DFT tables included, dequantised to float32 when LiteRT
    loads the model: half the file, errors of a few 1e-3 dB instead of float32 rounding)."""
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ValueError(
            f'quantize must be None or one of {", ".join(map(repr, QUANTIZE_CHOICES))}, '
            f'got {quantize!r}'
        )
    # from_keras_model (not from_concrete_functions, which froze Keras 3 variables wrongly in
    # TF 2.20: garbage weights in the flatbuffer).
    converter = tf.lite.TFLiteConverter.from_keras_model(portable(model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == 'float16':
        converter.target_spec.supported_types = [tf.float16]
    # The frames as the last axis of the FFT's stages: faster on LiteRT, as on onnxruntime;
    # and the framing and batch laid out for XNNPACK (LiteRT only).
    with builtin.frames_last_stages(), builtin.xnnpack_stages():
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()  # traces the model (the "Saved artifact" listing muted)


def to_onnx(model, path=None, opset=ONNX_OPSET):
    """portable(model) converted by tf2onnx; written to `path` when given. Returns the ONNX
    ModelProto."""
    tf2onnx = _require('tf2onnx', 'tf2onnx')
    clone = portable(model)
    function = _serving_function(clone)
    # The frames as the last axis of the FFT's stages (the default, kept whatever the caller's
    # context): faster on onnxruntime, as on LiteRT and TensorFlow.
    with builtin.frames_last_stages():
        proto, _ = tf2onnx.convert.from_function(
            function,
            input_signature=function.input_signature,
            opset=opset,
            output_path=None if path is None else str(path),
        )
    return proto


def run_savedmodel(path, x):
    """The 'serve' endpoint of the SavedModel at `path` on `x`: an array, or a list of arrays in
    the model's output order for a model with several outputs."""
    loaded = tf.saved_model.load(str(path))  # must outlive the call: it owns the variables
    return _one_or_list(
        [tensor.numpy() for tensor in tf.nest.flatten(loaded.serve(tf.constant(x)))]
    )


def run_tflite(flatbuffer: bytes, x):
    """Runs a one-input TFLite model on `x` in the LiteRT interpreter, resizing its input to
    x's shape (any batch, and any length where the model was converted with an unknown one).
    An array, or a list of arrays in the model's output order (the signature's output_0,
    output_1, ...; the interpreter's own list of outputs is in another order)."""
    interpreter_module = _require('ai_edge_litert.interpreter', 'ai-edge-litert')
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
    signatures = interpreter.get_signature_list()
    if not signatures:  # a flatbuffer without a signature: the interpreter's order
        (tensor,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(tensor['index'], list(np.shape(x)), strict=True)
        interpreter.allocate_tensors()
        interpreter.set_tensor(tensor['index'], np.asarray(x, tensor['dtype']))
        interpreter.invoke()
        return _one_or_list(
            [interpreter.get_tensor(detail['index']) for detail in interpreter.get_output_details()]
        )
    key = next(iter(signatures))
    runner = interpreter.get_signature_runner(key)
    (name,) = signatures[key]['inputs']
    dtype = runner.get_input_details()[name]['dtype']
    outputs = runner(**{name: np.asarray(x, dtype)})
    return _one_or_list([outputs[name] for name in _in_model_order(signatures[key]['outputs'])])


def run_onnx(model_or_path, x):
    """Runs a one-input ONNX model (a path or a ModelProto) on `x` in onnxruntime (CPU): an
    array, or a list of arrays in the model's output order."""
    onnxruntime = _require('onnxruntime', 'onnxruntime')
    source = model_or_path
    if not isinstance(source, (str, bytes)) and hasattr(source, 'SerializeToString'):
        source = source.SerializeToString()
    session = onnxruntime.InferenceSession(
        source if isinstance(source, bytes) else str(source), providers=['CPUExecutionProvider']
    )
    (node,) = session.get_inputs()
    return _one_or_list(session.run(None, {node.name: np.asarray(x, np.float32)}))


def _in_model_order(names):
    """Signature output names sorted as the model's outputs: output_0, output_1, ..., output_10
    (by number, not as text); other names as listed."""
    numbers = [re.fullmatch(r'output_(\d+)', name) for name in names]
    if all(numbers):
        return [name for _, name in sorted(zip((int(m[1]) for m in numbers), names))]
    return list(names)


def _one_or_list(arrays):
    return arrays[0] if len(arrays) == 1 else list(arrays)
