"""Streaming in TensorFlow and Keras, and its export as stateful TFLite and ONNX models (imports
TensorFlow).

- `StreamingStep`: a Keras layer with explicit state, one fixed-size chunk per call
  (`StreamingInverseStep`: the inverse STFT's overlap-add, complex frames as real and imag):
  `frames, valid, *new_state = layer([chunk, *state])`, state as `layer.initial_state(batch,
  channels)` gives it (history, received, then maximum for dB outputs and smooth for PCEN: the
  arrays of kapre_fast.streaming.FixedStep, whose framing it runs).
- `step_function(layer, batch, channels)`: that step as a tf.function with a fixed input
  signature; `to_tflite` / `to_onnx` convert it (state as explicit input and output tensors),
  `run_tflite_step` / `run_onnx_step` run one step of what they wrote.

The frames are computed by kapre_fast.builtin (plain TensorFlow ops that TFLite's builtin set and
ONNX have), so the exported step needs no kapre_fast native code; they equal the Python stream
within builtin's accuracy grid (its DFT is a matmul, not the fused kernel's FFT), and the
exported models equal the layer within the converters' float32 roundings.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kapre_fast import builtin, export
from kapre_fast.streaming import FixedStep

__all__ = [
    'StreamingStep',
    'StreamingInverseStep',
    'step_function',
    'to_tflite',
    'to_onnx',
    'run_tflite_step',
    'run_onnx_step',
    'STATE_NAMES',
]

# The state tensors, in the order the layer and the exported models take and return them.
STATE_NAMES = ('history', 'received', 'maximum', 'smooth')


class _TFOps:
    """The array namespace FixedStep needs, in TensorFlow ops with kapre_fast.builtin's front
    end (static shapes: the fixed step's)."""

    # builtin's log1p/expm1 written in ops that ONNX has (no Log1p/Expm1 there); private to
    # kapre_fast.builtin, used as it is (not edited).
    math = builtin._CONVERTIBLE_MATH

    @staticmethod
    def zeros(shape):
        return tf.zeros(shape, tf.float32)

    @staticmethod
    def full(shape, value):
        return tf.fill(shape, tf.constant(value, tf.float32))

    @staticmethod
    def counts(batch):
        return tf.zeros((batch,), tf.int32)

    @staticmethod
    def shape(x):
        return tuple(x.shape)

    @staticmethod
    def concat(arrays, axis):
        return tf.concat(arrays, axis)

    @staticmethod
    def stack(arrays, axis):
        return tf.stack(arrays, axis)

    @staticmethod
    def arange(start, stop, step):
        return tf.range(start, stop, step, dtype=tf.int32)

    @staticmethod
    def where(condition, a, b):
        return tf.where(condition, a, b)

    @staticmethod
    def maximum(a, b):
        return tf.maximum(a, b)

    @staticmethod
    def amax(x, axes):
        return tf.reduce_max(x, axis=axes)

    # builtin's Backend protocol methods (kapre_fast._backends), as they are.
    compute, inverse = staticmethod(builtin.compute), staticmethod(builtin.inverse)

    @staticmethod
    def dct(mel, matrix, channels_last):
        # One 2-D MatMul (TFLite FULLY_CONNECTED) over the flattened leading axes; the fixed
        # step's shapes are static.
        matrix = np.asarray(matrix, np.float32)
        rows = tf.transpose(mel, [0, 1, 3, 2]) if channels_last else mel  # n_mels last
        product = tf.matmul(tf.reshape(rows, [-1, matrix.shape[0]]), tf.constant(matrix))
        product = tf.reshape(product, list(rows.shape[:3]) + [matrix.shape[1]])
        return tf.transpose(product, [0, 1, 3, 2]) if channels_last else product


@keras.saving.register_keras_serializable('kapre_fast')
class StreamingStep(keras.layers.Layer):
    """One step of a streaming front end with explicit state (TensorFlow backend of Keras).

    StreamingStep(front_end, chunk_samples, **the front end's keyword arguments): inputs
    [chunk (batch, chunk_samples, channels), *state]; outputs [frames (chunk_samples //
    hop_length frames, in output_data_format), valid (bool (batch, frames): the frames of the
    signal, the same for every example), *new state]. The state
    names are `state_names` (a subset of STATE_NAMES), `initial_state(batch, channels)` gives
    their starting values. flush: call `flush_step` on the state."""

    def __init__(self, front_end, chunk_samples, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.front_end, self.chunk_samples = front_end, int(chunk_samples)
        self.arguments = dict(arguments or {})
        self.fixed = FixedStep(front_end, self.chunk_samples, **self.arguments)
        probe = self.fixed.init(_NumpyStateOps, 1, 1)
        self.state_names = tuple(name for name in STATE_NAMES if name in probe)

    def get_config(self):
        return dict(
            super().get_config(),
            front_end=self.front_end,
            chunk_samples=self.chunk_samples,
            arguments=self.arguments,
        )

    def initial_state(self, batch, channels) -> list:
        """The state of a new signal, NumPy arrays in state_names' order."""
        state = self.fixed.init(_NumpyStateOps, batch, channels)
        return [state[name] for name in self.state_names]

    def call(self, inputs):
        chunk, *state = inputs
        chunk = tf.convert_to_tensor(chunk, tf.float32)
        new, frames, valid = self.fixed.step(_TFOps, self._state(state), chunk)
        return [frames, self._per_example(valid, chunk), *(new[name] for name in self.state_names)]

    def flush_step(self, state):
        """[frames, valid, *new state] of the end padding (FixedStep.flush)."""
        state = self._state(state)
        new, frames, valid = self.fixed.flush(_TFOps, state)
        return [
            frames,
            self._per_example(valid, state['history']),
            *(new[name] for name in self.state_names),
        ]

    @staticmethod
    def _per_example(valid, like):
        # (batch, frames): every Keras output has the batch axis (the rows are equal).
        return tf.broadcast_to(valid[None], [tf.shape(like)[0], tf.shape(valid)[0]])

    def _state(self, state):
        if len(state) != len(self.state_names):
            raise ValueError(
                f'StreamingStep takes [chunk, {", ".join(self.state_names)}], got '
                f'{1 + len(state)} inputs'
            )
        dtypes = {'received': tf.int32}
        return {
            name: tf.convert_to_tensor(value, dtypes.get(name, tf.float32))
            for name, value in zip(self.state_names, state)
        }


@keras.saving.register_keras_serializable('kapre_fast')
class StreamingInverseStep(keras.layers.Layer):
    """One step of the streaming inverse STFT (kapre_fast.streaming.FixedInverse) with explicit
    state: StreamingInverseStep(frames_per_step, {kapre's InverseSTFT arguments}); inputs
    [real, imag, tail] (the complex frames as two float32 tensors in stft_data_format: TFLite
    and ONNX take no complex input), outputs [samples (batch, frames_per_step * hop_length,
    channels), new tail]. flush: `flush_step([tail])` returns [tail, tail]."""

    state_names = ('tail',)

    def __init__(self, frames_per_step, arguments=None, **kwargs):
        super().__init__(**kwargs)
        from kapre_fast.streaming import FixedInverse

        self.frames_per_step = int(frames_per_step)
        self.arguments = dict(arguments or {})
        self.fixed = FixedInverse(self.frames_per_step, **self.arguments)

    def get_config(self):
        return dict(
            super().get_config(), frames_per_step=self.frames_per_step, arguments=self.arguments
        )

    def initial_state(self, batch, channels) -> list:
        return [self.fixed.init(_NumpyStateOps, batch, channels)['tail']]

    def call(self, inputs):
        real, imag, tail = inputs
        frames = tf.complex(
            tf.convert_to_tensor(real, tf.float32), tf.convert_to_tensor(imag, tf.float32)
        )
        new, samples = self.fixed.step(_TFOps, dict(tail=tf.convert_to_tensor(tail)), frames)
        return [samples, new['tail']]

    def flush_step(self, state):
        (tail,) = state
        return [tf.convert_to_tensor(tail), tf.convert_to_tensor(tail)]


class _NumpyStateOps:
    """The constructors FixedStep.init needs, in NumPy (initial states handed to a model)."""

    @staticmethod
    def zeros(shape):
        return np.zeros(shape, np.float32)

    @staticmethod
    def full(shape, value):
        return np.full(shape, value, np.float32)

    @staticmethod
    def counts(batch):
        return np.zeros((batch,), np.int32)


def step_function(layer, batch: int, channels: int, flush: bool = False):
    """layer's step as a tf.function with a fixed signature: for a StreamingStep, of (chunk,
    *state) returning {frames, valid (int32 0/1), new_<state>} (with flush, of (*state): the
    frames of the end padding, StreamingStep.flush_step); for a StreamingInverseStep, of
    (real, imag, tail) returning {samples, new_tail} (its flush is the tail itself). The graph
    the converters take."""
    initial = layer.initial_state(batch, channels)
    if isinstance(layer, StreamingInverseStep):
        if flush:
            raise ValueError(
                'the inverse step has no flush model: its flush returns the tail state as it is'
            )
        spec = layer.fixed.spec
        frames = (
            (batch, layer.frames_per_step, spec.n_freq, channels)
            if spec.output_data_format == 'channels_last'
            else (batch, channels, layer.frames_per_step, spec.n_freq)
        )

        @tf.function(
            input_signature=[
                tf.TensorSpec(frames, tf.float32, name='real'),
                tf.TensorSpec(frames, tf.float32, name='imag'),
                tf.TensorSpec(np.shape(initial[0]), tf.float32, name='tail'),
            ]
        )
        def inverse_step(real, imag, tail):
            samples, new_tail = layer([real, imag, tail])
            return {'samples': samples, 'new_tail': new_tail}

        return inverse_step
    state_signature = [
        tf.TensorSpec(np.shape(value), tf.as_dtype(np.asarray(value).dtype), name=name)
        for name, value in zip(layer.state_names, initial)
    ]

    def outputs(frames, valid, new):
        named = {'frames': frames, 'valid': tf.cast(valid, tf.int32)}
        named.update({f'new_{name}': value for name, value in zip(layer.state_names, new)})
        return named

    if flush:

        @tf.function(input_signature=state_signature)
        def flush_step(*state):
            frames, valid, *new = layer.flush_step(list(state))
            return outputs(frames, valid, new)

        return flush_step

    chunk = tf.TensorSpec((batch, layer.chunk_samples, channels), tf.float32, name='chunk')

    @tf.function(input_signature=[chunk, *state_signature])
    def step(chunk, *state):
        frames, valid, *new = layer([chunk, *state])
        return outputs(frames, valid, new)

    return step


def to_tflite(layer, batch: int = 1, channels: int = 1, flush: bool = False) -> bytes:
    """The stateful step as a TFLite flatbuffer of builtin ops: inputs chunk and the state,
    outputs frames, valid (int32 0/1) and new_<state>; with flush, the flush model (inputs the
    state only)."""
    module = tf.Module()
    module.step = step_function(layer, batch, channels, flush)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.step.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def to_onnx(
    layer,
    batch: int = 1,
    channels: int = 1,
    path=None,
    opset=export.ONNX_OPSET,
    flush: bool = False,
):
    """The stateful step converted by tf2onnx (inputs chunk and the state, outputs frames, valid
    and new_<state>; with flush, the flush model, inputs the state only); written to `path`
    when given. Returns the ModelProto."""
    tf2onnx = export._require('tf2onnx', 'tf2onnx')
    function = step_function(layer, batch, channels, flush)
    proto, _ = tf2onnx.convert.from_function(
        function,
        input_signature=function.input_signature,
        opset=opset,
        output_path=None if path is None else str(path),
    )
    return proto


def run_tflite_step(flatbuffer: bytes, inputs: dict) -> dict:
    """One step of a to_tflite model in the LiteRT interpreter: `inputs` by name (chunk and the
    state names), the outputs by name (frames, valid, new_<state>)."""
    interpreter_module = export._require('ai_edge_litert.interpreter', 'ai-edge-litert')
    runner = interpreter_module.Interpreter(model_content=flatbuffer).get_signature_runner()
    return {name: np.asarray(value) for name, value in runner(**inputs).items()}


def run_onnx_step(model, inputs: dict) -> dict:
    """One step of a to_onnx model in onnxruntime (CPU): `inputs` by name, outputs by name."""
    onnxruntime = export._require('onnxruntime', 'onnxruntime')
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider']
    )
    feeds = {
        node.name: np.asarray(inputs[node.name.split(':')[0]]) for node in session.get_inputs()
    }
    names = [node.name for node in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))
