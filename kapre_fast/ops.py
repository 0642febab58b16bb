"""TensorFlow ops on the fused C++ core (imports TensorFlow).

The Backend protocol of kapre_fast._backends (registry name 'tensorflow'): `compute(spec, x)`
runs any FrontEnd in a graph or eagerly; `inverse(spec, X)` is kapre's InverseSTFT,
`compute_mfcc(spec, matrix, x)` the MFCC op, `apply_pcen(mel, constants, time_axis)` the PCEN
op, and `recompute(spec, x)` / `recompute_inverse(spec, X)` the same pipelines in TensorFlow's
own ops, which `IN_TF_OPS` (registry name 'tensorflow-xla') serves as a backend for XLA.
`front_end(audio, spec)`, `inverse_stft(stft, spec)`, `mfcc(audio, spec, matrix)` and
`pcen(features, constants, data_format)` are the same ops under their earlier names and argument
orders, kept as aliases. Windows and filterbanks enter the graph as constants computed by
`kapre_fast.spec`, so one op serves every pipeline. Attributes are validated by `FrontEnd`
before the op is built; the kernels check shapes again (raw calls bypass this module) and raise
tf.errors.InvalidArgumentError.

Importing this module loads the op library. That registers the op types with TensorFlow, which
`tf.saved_model.load` needs before it can read a SavedModel that uses them; importing
`kapre_fast.layers` or `kapre_fast.composed` (which import this module) is therefore enough to
load such a SavedModel in a fresh process.

Gradients
---------
Each op has a registered gradient (below its wrapper). The fused kernels compute no derivative;
the gradient function recomputes the op's pipeline with TensorFlow's own differentiable ops
(tf.signal.frame, tf.signal.rfft/irfft, abs, a dense filterbank, the dB formula) from the op's
own inputs and attributes, and returns the vector-Jacobian product of that recomputation. This is
the gradient kapre's layers have (they are built from the same TensorFlow ops), at the cost of one
unfused forward pass per backward pass.

- `KapreFastFrontEnd`: gradients with respect to the waveform, the window and band_weights
  (the nonzero filterbank weights; band_start/band_length are int32 and fixed), each computed
  only when something watches that input (a trainable layer weight: layers.FrontEnd's
  trainable_window / trainable_filterbank), all from one recomputation.
- `KapreFastStft`: gradient of the complex spectrum with respect to the waveform (TensorFlow's
  convention for complex outputs, as tf.signal.stft) and the window.
- `KapreFastInverseStft`: gradient with respect to the complex STFT and the synthesis window.
- `KapreFastMfcc`: the front end's recomputation (magnitude, dB) times the DCT matrix: with
  respect to the waveform, window, band_weights and the matrix.
- `KapreFastPcen`: with respect to the features, through the smoother (kapre_fast._pcen's
  doubling scan over frames) and librosa's compression.

Phase (output='mag_phase'): its gradient is that of atan2(imag, real), i.e. (real * d imag -
imag * d real) / |X|^2, the same as tf.math.angle's. It is defined as 0 where |X| is 0 (a bin of
exactly zero energy, e.g. digital silence), where the phase itself is arbitrary and
tf.math.angle's gradient is NaN. The decibel clamp passes gradient to each example's peak, as
kapre's tf.math.maximum / reduce_max do, and magnitudes below db_amin get gradient 0.
"""

from __future__ import annotations

import types

import tensorflow as tf

from kapre_fast import _checks, _composition, _loader, _pcen, _weights
from kapre_fast.spec import FrontEnd, PCENConstants, time_axis

__all__ = [
    'compute',
    'inverse',
    'compute_mfcc',
    'apply_pcen',
    'recompute',
    'recompute_inverse',
    'IN_TF_OPS',
    'front_end',
    'inverse_stft',
    'mfcc',
    'pcen',
    'pcen_in_tf_ops',
    'library',
]


def library():
    """The loaded op library (tf.load_op_library), loaded on first use."""
    return _loader.tf_ops()


def _float32_audio(audio):
    audio = tf.convert_to_tensor(audio)
    if not audio.dtype.is_floating:
        raise TypeError(f'audio must be a floating-point tensor, got dtype {audio.dtype.name}')
    return tf.cast(audio, tf.float32)


def _centred(audio, spec: FrontEnd):
    """A preset's centring (n_fft // 2 samples on both sides, spec.pad_mode) as tf.pad before
    the op, as kapre_fast.cpu pads a copy; tf.pad's own gradient carries it back. A static time
    length is checked here (FrontEnd.n_frames' ValueError); a dynamic one by the op."""
    return _weights.centred(spec, audio, tf.pad) if spec.center_padding else audio


def _front_end_call(audio, spec: FrontEnd, window=None, band_weights=None):
    """(inputs, attributes) of the front-end op for `spec` (KapreFastStft for complex output).
    window / band_weights: None (spec's, as constants) or float32 tensors or variables of the
    same sizes that replace them (a trainable layer's weights; the op checks their sizes)."""
    start, length, weights = _weights.bands(spec)
    window = _weights.window(spec) if window is None else window
    inputs = [_centred(_float32_audio(audio), spec), tf.convert_to_tensor(window, tf.float32)]
    attrs = _composition.attributes(spec)
    if spec.output == 'complex':
        for name in _composition.FEATURES:
            del attrs[name]
    else:
        weights = weights if band_weights is None else band_weights
        inputs += [
            tf.constant(start),
            tf.constant(length),
            tf.convert_to_tensor(weights, tf.float32),
        ]
    return inputs, attrs


def _inverse_stft_call(stft, spec: FrontEnd):
    inputs = [
        tf.cast(tf.convert_to_tensor(stft), tf.complex64),
        tf.constant(_weights.inverse_window(spec)),
    ]
    attrs = _composition.inverse_attributes(spec)
    return inputs, attrs


def compute(spec: FrontEnd, x, *, window=None, band_weights=None) -> tf.Tensor:
    """Features of the waveform batch `x` (float32; complex64 when spec.output == 'complex'),
    laid out as kapre lays them out. Other float dtypes are computed in float32.
    window, band_weights: None (the spec's), or tensors/variables replacing the window
    (spec.frame_length values) and the nonzero filterbank weights (the spec's sparse layout,
    spec.sparse_filterbank()); the op's gradient reaches them."""
    inputs, attrs = _front_end_call(x, spec, window, band_weights)
    if spec.output == 'complex':
        return library().kapre_fast_stft(*inputs, **attrs)
    return library().kapre_fast_front_end(*inputs, **attrs)


def front_end(audio, spec: FrontEnd, *, window=None, band_weights=None) -> tf.Tensor:
    """compute(spec, audio, ...) under its earlier name and argument order (an alias)."""
    return compute(spec, audio, window=window, band_weights=band_weights)


def _mfcc_call(spec: FrontEnd, matrix, x, window, band_weights):
    """(inputs, attributes) of the MFCC op (KapreFastMfcc); ValueError unless `spec` is a dB
    filterbank spectrogram."""
    if spec.output != 'magnitude' or not spec.return_decibel or spec.filterbank == 'none':
        raise ValueError(
            "mfcc needs a dB filterbank spectrogram (output='magnitude', "
            f'return_decibel=True, a filterbank), got output={spec.output!r}, '
            f'return_decibel={spec.return_decibel!r}, '
            f'filterbank={spec.filterbank!r}'
        )
    inputs, attrs = _front_end_call(x, spec, window, band_weights)
    del attrs['output'], attrs['decibel']
    inputs.append(tf.convert_to_tensor(matrix, tf.float32))
    return inputs, attrs


def compute_mfcc(spec: FrontEnd, matrix, x, *, window=None, band_weights=None) -> tf.Tensor:
    """MFCCs from one fused op (KapreFastMfcc): the dB mel spectrogram `spec`
    (return_decibel=True, a filterbank, magnitude output) of `x` times `matrix`, the
    (n_mels, n_mfcc) spec.mfcc_matrix, applied to each example's clamped dB rows in the native
    pass. window, band_weights: as compute's."""
    inputs, attrs = _mfcc_call(spec, matrix, x, window, band_weights)
    return library().kapre_fast_mfcc(*inputs, **attrs)


def mfcc(audio, spec: FrontEnd, matrix, *, window=None, band_weights=None) -> tf.Tensor:
    """compute_mfcc(spec, matrix, audio, ...) under its earlier name and argument order (an
    alias)."""
    return compute_mfcc(spec, matrix, audio, window=window, band_weights=band_weights)


def _pcen_call(features, constants: PCENConstants, data_format: str):
    b, gain, bias, power, eps = constants
    return (
        [tf.cast(tf.convert_to_tensor(features), tf.float32)],
        dict(b=b, gain=gain, bias=bias, power=power, eps=eps, data_format=data_format),
    )


def pcen(features, constants: PCENConstants, data_format: str) -> tf.Tensor:
    """librosa.pcen (max_size=1) along the frames of 4-D float32 filterbank features in
    `data_format`, by the native pass (csrc/core/pcen) as one op (KapreFastPcen).
    `constants`: spec.pcen_constants(...); they become float32 attributes."""
    inputs, attrs = _pcen_call(features, constants, data_format)
    return library().kapre_fast_pcen(*inputs, **attrs)


def apply_pcen(mel, constants: PCENConstants, time_axis: int) -> tf.Tensor:
    """pcen of the 4-D filterbank output `mel` along its frames axis `time_axis` (1:
    channels_last, 2: channels_first; ValueError otherwise), the protocol's form of pcen."""
    return pcen(mel, constants, _checks.time_axis_layout(time_axis))


def inverse(spec: FrontEnd, X) -> tf.Tensor:
    """Waveforms from the complex STFT batch `X`, as tf.signal.inverse_stft with
    inverse_stft_window_fn(hop_length, forward window). `spec` describes the forward STFT:
    its output_data_format is X's layout, its input_data_format the waveform's."""
    inputs, attrs = _inverse_stft_call(X, spec)
    return library().kapre_fast_inverse_stft(*inputs, **attrs)


def inverse_stft(stft, spec: FrontEnd) -> tf.Tensor:
    """inverse(spec, stft) under its earlier name and argument order (an alias)."""
    return inverse(spec, stft)


# ----- the same pipelines in stock TensorFlow ops, for XLA ------------------------------------


class _Recipe:
    """An op's inputs and attributes without the op: what the gradient recomputations below read
    (op.inputs, op.get_attr), for running them forward."""

    def __init__(self, inputs, attrs):
        self.inputs, self._attrs = inputs, attrs

    def get_attr(self, name):
        return self._attrs[name]


def recompute(spec: FrontEnd, x, *, window=None, band_weights=None) -> tf.Tensor:
    """compute's values from TensorFlow's own ops (tf.signal.frame, rfft, abs, a dense
    filterbank, dB): the recomputation the gradients run, run forward. XLA compiles it, with its
    own FFT, where it cannot compile the custom ops: the layers run it inside jit_compile
    (IN_TF_OPS), as kapre's layers (built from the same ops) run there."""
    recipe = _Recipe(*_front_end_call(x, spec, window, band_weights))
    if spec.output == 'complex':
        return _stft(recipe, recipe.inputs[0])
    return _front_end_features(recipe, recipe.inputs[0])


def pcen_in_tf_ops(features, constants: PCENConstants, data_format: str) -> tf.Tensor:
    """pcen's values from TensorFlow's own ops (kapre_fast._pcen: the smoother as a doubling
    scan, then the compression): the gradient's recomputation run forward, which XLA compiles
    (the PCEN layer runs it inside jit_compile)."""
    recipe = _Recipe(*_pcen_call(features, constants, data_format))
    return _pcen_features(recipe, recipe.inputs[0])


def recompute_inverse(spec: FrontEnd, X) -> tf.Tensor:
    """inverse's values from TensorFlow's own ops (irfft, window, overlap-add), for XLA."""
    recipe = _Recipe(*_inverse_stft_call(X, spec))
    return _inverse_stft(recipe, recipe.inputs[0])


class _InTFOps:
    """The Backend protocol (kapre_fast._backends) in TensorFlow's own ops: each op's
    recomputation (the one its gradient runs) run forward, which XLA compiles where it cannot
    compile the custom ops. Registry name 'tensorflow-xla': the Keras layers' fused
    implementation inside an XLA compilation."""

    def compute(self, spec: FrontEnd, x, *, window=None, band_weights=None) -> tf.Tensor:
        return recompute(spec, x, window=window, band_weights=band_weights)

    def inverse(self, spec: FrontEnd, X) -> tf.Tensor:
        return recompute_inverse(spec, X)

    def compute_mfcc(self, spec: FrontEnd, matrix, x, *, window=None, band_weights=None):
        recipe = _Recipe(*_mfcc_call(spec, matrix, x, window, band_weights))
        return _mfcc(recipe, recipe.inputs[0])

    def apply_pcen(self, mel, constants: PCENConstants, time_axis: int) -> tf.Tensor:
        return pcen_in_tf_ops(mel, constants, _checks.time_axis_layout(time_axis))


IN_TF_OPS = _InTFOps()


# ----- gradients: the same pipelines in differentiable TensorFlow ops --------------------------


def _attr(op, name):
    value = op.get_attr(name)
    # Graph ops and eager mock ops both return string attributes as bytes.
    return value.decode() if isinstance(value, bytes) else value


class _TensorFlow(_composition.Namespace):
    """kapre_fast._composition's operations in TensorFlow ops."""

    def transpose(self, x, perm):
        return tf.transpose(x, perm)

    def frame(self, waveforms, pad_begin, length, hop, pad_end):
        if pad_begin:
            waveforms = tf.pad(waveforms, [[0, 0], [0, 0], [pad_begin, 0]])
        return tf.signal.frame(waveforms, frame_length=length, frame_step=hop, pad_end=pad_end)

    def pad_last(self, x, count):
        return tf.pad(x, [[0, 0]] * (x.shape.rank - 1) + [[0, count]])

    def rfft(self, x, n):
        return tf.signal.rfft(x, fft_length=[n])

    def irfft(self, x, n):
        return tf.signal.irfft(x, fft_length=[n])

    def overlap_add(self, frames, hop):
        return tf.signal.overlap_and_add(frames, hop)

    real, imag, abs = staticmethod(tf.math.real), staticmethod(tf.math.imag), staticmethod(tf.abs)

    def phase(self, x):
        return _phase(x)

    def log10(self, x):
        return tf.math.log(x) / tf.math.log(10.0)

    def floor(self, x, value):
        return tf.maximum(x, value)

    def maximum(self, x, y):
        return tf.maximum(x, y)

    def peak(self, x):
        return tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)

    def concat_channels(self, tensors):
        return tf.concat(tensors, axis=1)


_TF = _TensorFlow()


def _attrs(op, names):
    return {name: _attr(op, name) for name in names}


def _spectra(op, audio):
    """(batch, ch, frames, n_freq) complex64 spectra of `audio`, as the op computes them."""
    attrs = _attrs(op, _composition.FRAMING)
    return _composition.spectra(_TF, attrs, audio, op.inputs[1])


def _dense_filterbank(start, length, weights, n_freq):
    """The (n_freq, n_bands) matrix whose column j holds weights[offset_j : offset_j + length[j]]
    at rows start[j] : start[j] + length[j] (offset_j = sum(length[:j]))."""
    n_bands = tf.shape(start)[0]
    band = tf.repeat(tf.range(n_bands), length)
    offset = tf.cumsum(length, exclusive=True)
    row = tf.gather(start, band) + tf.range(tf.shape(weights)[0]) - tf.gather(offset, band)
    indices = tf.stack([row, band], axis=1)
    return tf.scatter_nd(indices, weights, tf.stack([n_freq, n_bands]))


def _apply_filterbank(op, magnitude):
    start, length, weights = op.inputs[2], op.inputs[3], op.inputs[4]
    n_freq = _attr(op, 'n_fft') // 2 + 1

    def with_bands():
        matrix = _dense_filterbank(start, length, weights, n_freq)
        return tf.tensordot(magnitude, matrix, axes=[[3], [0]])

    n_bands = start.shape[0]
    if n_bands is None:  # only for raw calls with a band tensor of unknown size
        return tf.cond(tf.size(start) > 0, with_bands, lambda: magnitude)
    return with_bands() if n_bands > 0 else magnitude


@tf.custom_gradient
def _phase(spectra):
    """atan2(imag, real) of complex spectra, with the gradient (-imag, real) / |X|^2 computed
    as (-Im(u), Re(u)) / |X| with u = X / |X|, which keeps its precision for tiny |X| (where
    |X|^2 would underflow), and which is 0 (not NaN) where |X| is 0."""

    def gradient(upstream):
        magnitude = tf.abs(spectra)
        nonzero = magnitude > 0.0
        safe = tf.where(nonzero, magnitude, tf.ones_like(magnitude))
        unit = spectra / tf.complex(safe, tf.zeros_like(safe))
        scale = tf.where(nonzero, upstream / safe, tf.zeros_like(safe))
        return tf.complex(-tf.math.imag(unit) * scale, tf.math.real(unit) * scale)

    return tf.math.angle(spectra), gradient


def _front_end_features(op, audio):
    attrs = _attrs(op, ('output_format', *_composition.FEATURES))
    features = _composition.features(
        _TF, attrs, _spectra(op, audio), lambda magnitude: _apply_filterbank(op, magnitude)
    )
    return _composition.to_output_layout(_TF, attrs, features)


class _AsFrontEnd:
    """A KapreFastMfcc op read as the KapreFastFrontEnd it extends (magnitude, decibel)."""

    _FIXED = {'output': 'magnitude', 'decibel': True}

    def __init__(self, op):
        self.inputs, self._op = op.inputs, op

    def get_attr(self, name):
        return self._FIXED[name] if name in self._FIXED else self._op.get_attr(name)


def _mfcc(op, audio):
    features = _front_end_features(_AsFrontEnd(op), audio)
    if _attr(op, 'output_format') == 'channels_last':
        return tf.einsum('bfmc,mk->bfkc', features, op.inputs[5])
    return tf.tensordot(features, op.inputs[5], axes=[[3], [0]])


# kapre_fast._pcen's namespace (NumPy's names) in TensorFlow ops.
_PCEN_OPS = types.SimpleNamespace(
    exp=tf.math.exp,
    log=tf.math.log,
    log1p=tf.math.log1p,
    expm1=tf.math.expm1,
    zeros_like=tf.zeros_like,
    ones_like=tf.ones_like,
    concatenate=tf.concat,
)


def _pcen_features(op, features):
    """The smoother M[t] = (1 - b) M[t - 1] + b S[t] (M[-1] = 1) as kapre_fast._pcen's
    doubling scan over frames, then librosa's compression."""
    constants = PCENConstants(*(_attr(op, name) for name in ('b', 'gain', 'bias', 'power', 'eps')))
    axis = time_axis(_attr(op, 'data_format'))
    return _pcen.apply(_PCEN_OPS, features, constants, axis)


def _stft(op, audio):
    return _composition.to_output_layout(_TF, _attrs(op, ('output_format',)), _spectra(op, audio))


def _inverse_stft(op, stft):
    """tf.signal.inverse_stft's pipeline with the op's synthesis window."""
    attrs = _attrs(op, _composition.INVERSE)
    return _composition.inverse_stft(_TF, attrs, stft, op.inputs[1])


def _vjp(recompute, op, grad, differentiable):
    """Gradients of op.outputs[0] with respect to the inputs at indices `differentiable`, less
    those TensorFlow says nobody needs (skip_input_indices: e.g. a constant window), from one
    recomputation of the op with differentiable TensorFlow ops (which read op.inputs, so
    watching them here tracks them); None for every other input."""
    skipped = set(getattr(op, 'skip_input_indices', None) or ())
    wanted = [index for index in differentiable if index not in skipped]
    gradients = [None] * len(op.inputs)
    if not wanted:
        return gradients
    sources = [op.inputs[index] for index in wanted]
    with tf.GradientTape() as tape:
        tape.watch(sources)
        output = recompute(op, op.inputs[0])
    for index, gradient in zip(wanted, tape.gradient(output, sources, output_gradients=grad)):
        gradients[index] = gradient
    return gradients


@tf.RegisterGradient('KapreFastFrontEnd')
def _front_end_grad(op, grad):
    """d features / d (audio, window, band_weights); band_start and band_length get none."""
    return _vjp(_front_end_features, op, grad, differentiable=(0, 1, 4))


@tf.RegisterGradient('KapreFastMfcc')
def _mfcc_grad(op, grad):
    """d mfcc / d (audio, window, band_weights, dct)."""
    return _vjp(_mfcc, op, grad, differentiable=(0, 1, 4, 5))


@tf.RegisterGradient('KapreFastPcen')
def _pcen_grad(op, grad):
    """d pcen / d features, through the smoother too."""
    return _vjp(_pcen_features, op, grad, differentiable=(0,))


@tf.RegisterGradient('KapreFastStft')
def _stft_grad(op, grad):
    """d stft / d (audio, window)."""
    return _vjp(_stft, op, grad, differentiable=(0, 1))


@tf.RegisterGradient('KapreFastInverseStft')
def _inverse_stft_grad(op, grad):
    """d audio / d (stft (complex), window)."""
    return _vjp(_inverse_stft, op, grad, differentiable=(0, 1))


# Register the op types now (see the module docstring: SavedModels need them before loading).
library()
