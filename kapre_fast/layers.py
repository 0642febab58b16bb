"""Keras 3 layers on kapre_fast's fused kernels, on Keras' TensorFlow, PyTorch and JAX
backends: under TensorFlow the fused TF ops (kapre_fast.ops), under PyTorch and JAX the
kapre_fast.torch operators and kapre_fast.jax custom calls. Each layer calls the Backend protocol
(compute, inverse, compute_mfcc, apply_pcen) of the backend that kapre_fast._backends.for_keras
picks from Keras' backend, the XLA context and `implementation`.

- `FrontEnd`: waveform -> |STFT| / mel / log-frequency spectrogram (optionally in dB), or
  [magnitude, phase] channels, in one fused op. Its arguments are those of
  `kapre_fast.spec.FrontEnd` (the names kapre.composed uses).
- `STFT`: the complex64 spectrum, as kapre's `STFT` layer.
- `InverseSTFT`: waveforms from a complex spectrum, as kapre's `InverseSTFT` layer.
- `MFCC`: the dB mel spectrogram and its DCT in one op; `CepstralCoefficients`: the DCT alone.
- `PCEN`: per-channel energy normalisation of a filterbank spectrogram.
- `ConcatenateFrequencyMap`: appends a 0..1 frequency ramp as the last channel, as kapre's layer
  of that name (plain keras.ops).

Common behaviour of the five op-backed layers (FrontEnd, STFT, InverseSTFT, MFCC, PCEN):
- Serializable under the package name 'kapre_fast'; `get_config` returns every constructor
  argument as given ('default' data formats stay 'default' and are resolved again, from
  keras.config.image_data_format(), when the layer is rebuilt, as in kapre).
- Batch and time may be unknown; any number of channels; both data formats.
- `implementation='fused'` (default) runs the fused ops; `'builtin'` computes the same front end
  in plain TensorFlow ops (kapre_fast.builtin: TFLite builtins, ONNX, SavedModels without our op
  library; n_fft up to builtin.MAX_N_FFT). Stored in the config.
- XLA: `supports_jit = True`. XLA cannot compile the custom ops, so inside an XLA compilation
  (`jit_compile=True`, or Keras' 'auto' on a GPU) the fused layers trace the same pipeline in
  TensorFlow's own ops (ops.IN_TF_OPS, the ops' recomputation: tf.signal framing and FFT, which
  XLA compiles, as it compiles kapre's layers); builtin layers keep the builtin ops. Outside XLA
  the chosen implementation runs. (Those paths return no frames for too-short audio at run
  time, where the fused kernels raise.)
- Mixed precision: waveforms are taken as float32 (float16/bfloat16 inputs are upcast, float32
  inputs are not rounded down to the compute dtype); the op computes in float32 and the layer
  casts its real output to the layer's compute dtype. The STFT stays complex64.
- Bad input: a wrong rank raises ValueError when the layer is built. Audio of a known length
  too short for one frame gives, as kapre's layers do, an empty spectrogram (0 frames; a
  warning when the layer is built); with compat presets it raises ValueError. Where the length
  is unknown until run time (a graph with time None), the kernels raise
  tf.errors.InvalidArgumentError naming the lengths instead.
"""

from __future__ import annotations

import warnings

import keras

from kapre_fast import _backends
from kapre_fast import spec as _spec

__all__ = [
    'FrontEnd',
    'STFT',
    'InverseSTFT',
    'ConcatenateFrequencyMap',
    'CepstralCoefficients',
    'MFCC',
    'PCEN',
]

if keras.backend.backend() == 'tensorflow':
    # Loads the op library now: tf.saved_model.load needs the op types registered before it
    # reads a SavedModel that uses them (importing kapre_fast.layers is enough for that).
    from kapre_fast import ops  # noqa: F401

_PACKAGE = 'kapre_fast'
BACKENDS = ('tensorflow', 'torch', 'jax')
IMPLEMENTATIONS = ('fused', 'builtin')


def _require_supported_backend(layer_name):
    if keras.backend.backend() not in BACKENDS:
        raise RuntimeError(
            f"kapre_fast.layers.{layer_name} runs on Keras' TensorFlow, PyTorch or JAX backend, "
            f'but Keras uses {keras.backend.backend()!r}; set KERAS_BACKEND before importing '
            'keras'
        )


class _Implementation:
    """The `implementation` argument of the op-backed layers and what it picks."""

    def _set_implementation(self, implementation, spec):
        self.implementation = _spec._check_choice('implementation', implementation, IMPLEMENTATIONS)
        if implementation == 'builtin':
            if keras.backend.backend() != 'tensorflow':
                raise ValueError(
                    "implementation='builtin' computes in TensorFlow ops and needs Keras' "
                    f'TensorFlow backend; Keras uses {keras.backend.backend()!r}'
                )
            from kapre_fast import builtin

            builtin.check_spec(spec)
        # XLA (TensorFlow) compiles the TF-ops pipeline or the builtin ops; torch.compile and
        # jax.jit take the PyTorch and JAX bindings whole.
        self.supports_jit = True

    def _backend(self):
        """The backend that computes the layer now (kapre_fast._backends.for_keras)."""
        return _backends.for_keras(self.implementation)


def _waveform_layout(data_format):
    if data_format == 'channels_last':
        return '(batch, time, channels)'
    return '(batch, channels, time)'


def _spectrum_layout(data_format):
    if data_format == 'channels_last':
        return '(batch, frames, freq, channels)'
    return '(batch, channels, frames, freq)'


def _shape_tuple(shape):
    return tuple(None if d is None else int(d) for d in shape)


class _WaveformLayer(_Implementation, keras.layers.Layer):
    """Shared behaviour of the layers that take waveforms and run a kapre_fast op."""

    def __init__(self, arguments: dict, spec_function, **kwargs):
        _require_supported_backend(type(self).__name__)
        super().__init__(**kwargs)
        self._arguments = dict(arguments)
        spec_arguments = {k: v for k, v in arguments.items() if k != 'implementation'}
        self.spec = spec_function(**spec_arguments)
        self._set_implementation(arguments['implementation'], self.spec)

    @property
    def input_dtype(self):
        # Keras casts floating inputs to this dtype before call(). The op computes in float32,
        # so keep float32 waveforms as they are under a mixed-precision policy.
        return 'float32'

    def _audio_dims(self, shape):
        """(batch, channels, time) of a waveform shape; ValueError naming the layout if it does
        not have 3 axes."""
        data_format = self.spec.input_data_format
        if len(shape) != 3:
            raise ValueError(
                f'Layer {self.name!r} takes audio with 3 axes {_waveform_layout(data_format)} '
                f'(input_data_format={data_format!r}), got shape {_shape_tuple(shape)}'
            )
        shape = _shape_tuple(shape)
        if data_format == 'channels_last':
            return shape[0], shape[2], shape[1]
        return shape

    def _n_frames(self, time):
        """Frames for a time axis of `time` samples (None: unknown); 0 where kapre's layers
        count none (audio too short for one frame, kapre's numerics)."""
        if time is None:
            return None
        try:
            return self.spec.n_frames(time, allow_empty=True)
        except ValueError as error:
            raise ValueError(f'Layer {self.name!r}: {error}') from None

    def build(self, input_shape):
        _, _, time = self._audio_dims(input_shape)
        if self._n_frames(time) == 0:
            warnings.warn(
                f'Layer {self.name!r}: audio of {time} samples is too short for one frame '
                f'(win_length={self.spec.win_length}, input_data_format='
                f'{self.spec.input_data_format!r}); the layer returns an empty spectrogram (0 '
                'frames), as kapre does',
                stacklevel=2,
            )
        self.built = True

    def _empty_output(self, inputs, n_features=None, dtype=None):
        """kapre's result for audio whose known length is too short for one frame: zeros of
        spec.output_shape (0 frames); None otherwise (the kernels run)."""
        _, _, time = self._audio_dims(inputs.shape)
        if self._n_frames(time) != 0:
            return None
        shape = self.spec.output_shape(tuple(keras.ops.shape(inputs)), n_features, True)
        return keras.ops.zeros(shape, dtype=dtype or self.compute_dtype)

    def _feature_shape(self, input_shape, n_features=None):
        """spec.output_shape of a waveform shape (kapre's empty spectrogram for short audio);
        ValueErrors name the layer."""
        self._audio_dims(input_shape)
        try:
            return self.spec.output_shape(_shape_tuple(input_shape), n_features, allow_empty=True)
        except ValueError as error:
            raise ValueError(f'Layer {self.name!r}: {error}') from None

    def _check_call_input(self, inputs):
        # Keras calls build() only once; a later call may bring another rank.
        self._audio_dims(inputs.shape)

    def get_config(self):
        config = super().get_config()
        config.update(self._arguments)
        return config


def _own_arguments(frame_locals):
    """A layer's own constructor arguments, from `locals()` taken before any other local is
    assigned: everything but self, the Keras layer keywords and super()'s class cell."""
    return {k: v for k, v in frame_locals.items() if k not in ('self', 'kwargs', '__class__')}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FrontEnd(_WaveformLayer):
    """A fused kapre front end: waveform -> [pad_begin] -> frames -> window -> |rFFT| ->
    [mel or log-frequency filterbank] -> [decibel] (or [magnitude, phase] channels).

    Arguments are those of `kapre_fast.spec.FrontEnd` (and of kapre.composed's functions):
    n_fft, win_length, hop_length, window_name, pad_begin, pad_end, output ('magnitude' or
    'mag_phase'), filterbank ('none', 'mel' or 'log'), sample_rate, n_mels, mel_f_min,
    mel_f_max, mel_htk, mel_norm, log_n_bins, log_f_min, log_bins_per_octave, log_spread,
    return_decibel, db_amin, db_ref_value, db_dynamic_range, input_data_format,
    output_data_format; implementation ('fused' or 'builtin', see the module docstring);
    compat ('kapre', 'librosa' or 'torchaudio') with the presets' center, pad_mode, power, amin,
    ref, top_db (kapre_fast.spec.FrontEnd; fused only); trainable_window and
    trainable_filterbank (default False, as kapre); plus Keras layer arguments (name, dtype,
    ...).

    Trainable front ends: trainable_window=True makes the analysis window (spec.frame_length
    values, initialised to spec.window()) a layer weight 'window'; trainable_filterbank=True
    makes the filterbank's nonzero weights a layer weight 'band_weights', initialised to the
    mel/log filters, in their sparse layout: each band keeps its initial support (first bin
    and length, spec.sparse_filterbank()) and only the weights inside it train, so the fused
    kernel's sparse product stays as fast. The weights are the op's window / band_weights
    inputs, and the op's gradient (kapre_fast.ops) reaches them. TensorFlow backend, fused
    implementation, compat='kapre' only; anything else raises ValueError naming the option.

    Input: (batch, time, ch) or (batch, ch, time). Output: (batch, frames, features, ch') or
    (batch, ch', frames, features), where features is n_fft // 2 + 1, n_mels or log_n_bins and
    ch' is ch (2 * ch for output='mag_phase': magnitudes, then phases).
    """

    @_spec.fills_library_defaults
    def __init__(
        self,
        n_fft=2048,
        win_length=None,
        hop_length=None,
        window_name=None,
        pad_begin=False,
        pad_end=False,
        output='magnitude',
        filterbank='none',
        sample_rate=22050,
        n_mels=128,
        mel_f_min=0.0,
        mel_f_max=None,
        mel_htk=False,
        mel_norm='slaney',
        log_n_bins=84,
        log_f_min=None,
        log_bins_per_octave=12,
        log_spread=0.125,
        return_decibel=False,
        db_amin=1e-5,
        db_ref_value=1.0,
        db_dynamic_range=80.0,
        input_data_format='default',
        output_data_format='default',
        implementation='fused',
        compat='kapre',
        center=None,
        pad_mode=None,
        power=None,
        amin=None,
        ref=None,
        top_db=None,
        trainable_window=False,
        trainable_filterbank=False,
        **kwargs,
    ):
        arguments = _own_arguments(locals())
        if output == 'complex':
            raise ValueError(
                "FrontEnd outputs real features; for the complex spectrum (output='complex') "
                'use kapre_fast.layers.STFT'
            )
        trainable = {
            'trainable_window': arguments.pop('trainable_window'),
            'trainable_filterbank': arguments.pop('trainable_filterbank'),
        }
        super().__init__(arguments, _spec.FrontEnd, **kwargs)
        self._arguments.update(trainable)
        # Not `_trainable`: Keras 3.15 keeps the layer's own trainable flag under that name.
        self._trainable_parts = [
            name for name, value in trainable.items() if _spec._check_bool(name, value)
        ]
        for name in self._trainable_parts:
            self._check_trainable(name)

    def _check_trainable(self, name):
        """ValueError naming `name` and what keeps it from training."""
        if self.spec.compat != 'kapre':
            raise ValueError(
                f"{name}=True needs compat='kapre', got compat={self.spec.compat!r}: a preset "
                "reproduces another library's fixed window and filterbank (its window is "
                'zero-padded to n_fft, which training would move)'
            )
        if name == 'trainable_filterbank' and self.spec.filterbank == 'none':
            raise ValueError(
                "trainable_filterbank=True needs a filterbank ('mel' or 'log'), "
                "got filterbank='none'"
            )
        if self.implementation != 'fused':
            raise ValueError(
                f"{name}=True needs implementation='fused', got "
                f'implementation={self.implementation!r}'
            )
        if keras.backend.backend() != 'tensorflow':
            raise ValueError(
                f"{name}=True needs Keras' TensorFlow backend (the fused op's "
                f'registered gradient); Keras uses {keras.backend.backend()!r}'
            )

    def build(self, input_shape):
        super().build(input_shape)
        from kapre_fast import _weights

        # float32 whatever the dtype policy: the op takes float32 weights (autocast=False).
        if 'trainable_window' in self._trainable_parts:
            self.window = self.add_weight(
                shape=(self.spec.frame_length,),
                name='window',
                dtype='float32',
                autocast=False,
                initializer=keras.initializers.Constant(_weights.window(self.spec)),
            )
        if 'trainable_filterbank' in self._trainable_parts:
            initial = _weights.bands(self.spec)[2]
            self.band_weights = self.add_weight(
                shape=initial.shape,
                name='band_weights',
                dtype='float32',
                autocast=False,
                initializer=keras.initializers.Constant(initial),
            )

    def _op_weights(self):
        """The trainable weights as the fused op's keyword inputs (window, band_weights)."""
        weights = {}
        if 'trainable_window' in self._trainable_parts:
            weights['window'] = self.window
        if 'trainable_filterbank' in self._trainable_parts:
            weights['band_weights'] = self.band_weights
        return weights

    def compute_output_shape(self, input_shape):
        return self._feature_shape(input_shape)

    def call(self, inputs):
        self._check_call_input(inputs)
        empty = self._empty_output(inputs)
        if empty is not None:
            return empty
        weights = self._op_weights()
        features = self._backend().compute(self.spec, inputs, **weights)
        return keras.ops.cast(features, self.compute_dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class STFT(_WaveformLayer):
    """The complex64 short-time Fourier transform, as kapre's `STFT` layer.

    Arguments (kapre's): n_fft=2048, win_length=None (n_fft), hop_length=None
    (win_length // 4), window_name=None ('hann_window'), pad_begin=False (prepends
    n_fft - hop_length zeros), pad_end=False, input_data_format='default',
    output_data_format='default'; implementation='fused' ('builtin': plain TF ops); plus Keras
    layer arguments.

    Output: (batch, frames, n_fft // 2 + 1, ch) or (batch, ch, frames, n_fft // 2 + 1),
    complex64 whatever the dtype policy.
    """

    def __init__(
        self,
        n_fft=2048,
        win_length=None,
        hop_length=None,
        window_name=None,
        pad_begin=False,
        pad_end=False,
        input_data_format='default',
        output_data_format='default',
        implementation='fused',
        **kwargs,
    ):
        arguments = _own_arguments(locals())
        super().__init__(arguments, _spec.FrontEnd.stft, **kwargs)

    def compute_output_shape(self, input_shape):
        return self._feature_shape(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype='complex64')

    def call(self, inputs):
        self._check_call_input(inputs)
        empty = self._empty_output(inputs, dtype='complex64')
        if empty is not None:
            return empty
        return self._backend().compute(self.spec, inputs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InverseSTFT(_Implementation, keras.layers.Layer):
    """Waveforms from a complex STFT, as kapre's `InverseSTFT` layer: tf.signal.inverse_stft with
    tf.signal.inverse_stft_window_fn(hop_length, forward window).

    Arguments (kapre's): n_fft=2048, win_length=None (n_fft), hop_length=None
    (win_length // 4), forward_window_name=None ('hann_window', the window of the forward STFT),
    input_data_format='default' (the STFT's layout), output_data_format='default' (the
    waveform's); implementation='fused' ('builtin': plain TF ops); plus Keras layer arguments.

    Input: complex (batch, frames, n_fft // 2 + 1, ch) or (batch, ch, frames, n_fft // 2 + 1).
    Output: (batch, (frames - 1) * hop_length + win_length, ch) or (batch, ch, that many), in the
    layer's compute dtype. After an STFT with pad_begin and pad_end, dropping the first
    n_fft - hop_length samples gives the input back.
    """

    def __init__(
        self,
        n_fft=2048,
        win_length=None,
        hop_length=None,
        forward_window_name=None,
        input_data_format='default',
        output_data_format='default',
        implementation='fused',
        **kwargs,
    ):
        _require_supported_backend('InverseSTFT')
        super().__init__(**kwargs)
        self._arguments = _own_arguments(locals())
        # The forward transform this inverts: its input is our output and vice versa.
        self.spec = _spec.FrontEnd.inverted_by_istft(
            n_fft,
            win_length,
            hop_length,
            forward_window_name,
            stft_data_format=input_data_format,
            waveform_data_format=output_data_format,
        )
        self._set_implementation(implementation, self.spec)

    def _spectrum_dims(self, shape):
        """(batch, channels, frames, freq) of an STFT shape; ValueError naming the layout when it
        is not 4 axes with n_fft // 2 + 1 frequency bins and at least one frame."""
        data_format = self.spec.output_data_format
        layout = _spectrum_layout(data_format)
        if len(shape) != 4:
            raise ValueError(
                f'Layer {self.name!r} takes a complex STFT with 4 axes {layout} '
                f'(input_data_format={data_format!r}), got shape {_shape_tuple(shape)}'
            )
        shape = _shape_tuple(shape)
        if data_format == 'channels_last':
            batch, frames, freq, channels = shape
        else:
            batch, channels, frames, freq = shape
        if freq is not None and freq != self.spec.n_freq:
            raise ValueError(
                f'Layer {self.name!r} takes n_fft // 2 + 1 = {self.spec.n_freq} frequency bins '
                f'(n_fft={self.spec.n_fft}) on the freq axis of {layout}, got shape {shape}'
            )
        if frames is not None and frames < 1:
            raise ValueError(
                f'Layer {self.name!r} needs at least one frame on the frames axis of {layout}, '
                f'got shape {shape}'
            )
        return batch, channels, frames, freq

    def build(self, input_shape):
        self._spectrum_dims(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        batch, channels, frames, _ = self._spectrum_dims(input_shape)
        time = _spec.istft_length(frames, self.spec.hop_length, self.spec.win_length)
        if self.spec.input_data_format == 'channels_last':
            return (batch, time, channels)
        return (batch, channels, time)

    def call(self, inputs):
        self._spectrum_dims(inputs.shape)
        return keras.ops.cast(self._backend().inverse(self.spec, inputs), self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(self._arguments)
        return config


def _apply_dct(mel, matrix, data_format):
    """(batch, frames, n_mels, ch) or (batch, ch, frames, n_mels) times (n_mels, n_mfcc)."""
    matrix = keras.ops.convert_to_tensor(matrix, dtype=mel.dtype)
    if data_format == 'channels_last':
        return keras.ops.einsum('bfmc,mk->bfkc', mel, matrix)
    return keras.ops.matmul(mel, matrix)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MFCC(FrontEnd):
    """MFCCs of a waveform batch in one layer: FrontEnd's dB mel spectrogram (its arguments;
    filterbank='mel' and return_decibel=True are implied) and its first n_mfcc orthonormal
    DCT-II coefficients, liftered as librosa when lifter > 0 (kapre_fast.spec.mfcc_matrix).
    The backend's compute_mfcc (kapre_fast._backends.for_keras): under TensorFlow, fused
    implementation, outside XLA, one fused op (kapre_fast.ops.compute_mfcc, the DCT inside the
    native pass); otherwise (builtin ops, XLA's TF-ops recomputation, PyTorch, JAX) the layer's
    front end then the DCT as a matrix product in that framework.
    Output: (batch, frames, n_mfcc, ch) or (batch, ch, frames, n_mfcc).
    """

    @_spec.fills_library_defaults(mfcc=True)
    def __init__(self, n_mfcc=20, lifter=0, **kwargs):
        for name, fixed in (
            ('filterbank', 'mel'),
            ('return_decibel', True),
            ('output', 'magnitude'),
        ):
            if kwargs.setdefault(name, fixed) != fixed:
                raise ValueError(
                    f'MFCC computes from the dB mel spectrogram: {name} must be '
                    f'{fixed!r}, got {kwargs[name]!r}'
                )
        super().__init__(**kwargs)
        self._matrix = _spec.mfcc_matrix(n_mfcc, self.spec.n_mels, lifter)
        self._arguments.update({'n_mfcc': n_mfcc, 'lifter': lifter})

    def compute_output_shape(self, input_shape):
        return self._feature_shape(input_shape, self._matrix.shape[1])

    def call(self, inputs):
        self._check_call_input(inputs)
        empty = self._empty_output(inputs, self._matrix.shape[1])
        if empty is not None:
            return empty
        weights = self._op_weights()
        features = self._backend().compute_mfcc(self.spec, self._matrix, inputs, **weights)
        return keras.ops.cast(features, self.compute_dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CepstralCoefficients(keras.layers.Layer):
    """MFCCs from a dB mel spectrogram: its first n_mfcc orthonormal DCT-II coefficients along
    the mel axis, liftered as librosa when lifter > 0 (kapre_fast.spec.mfcc_matrix), as a
    constant matrix product (differentiable; any backend's keras.ops).
    (batch, frames, n_mels, ch) -> (batch, frames, n_mfcc, ch) for channels_last,
    (batch, ch, frames, n_mels) -> (batch, ch, frames, n_mfcc) for channels_first.

    Arguments: n_mels, n_mfcc=20, lifter=0, data_format='default'; plus Keras layer arguments.
    """

    def __init__(self, n_mels, n_mfcc=20, lifter=0, data_format='default', **kwargs):
        super().__init__(**kwargs)
        self._arguments = dict(n_mels=n_mels, n_mfcc=n_mfcc, lifter=lifter, data_format=data_format)
        self._matrix = _spec.mfcc_matrix(n_mfcc, _spec._check_int('n_mels', n_mels, 1), lifter)
        self.data_format = _spec._check_data_format('data_format', data_format)

    def compute_output_shape(self, input_shape):
        shape = list(_shape_tuple(input_shape))
        shape[2 if self.data_format == 'channels_last' else 3] = self._matrix.shape[1]
        return tuple(shape)

    def call(self, inputs):
        axis = 2 if self.data_format == 'channels_last' else 3
        if inputs.shape[axis] != self._matrix.shape[0]:
            raise ValueError(
                f'Layer {self.name!r} takes {self._matrix.shape[0]} mel bands on '
                f'axis {axis}, got shape {_shape_tuple(inputs.shape)}'
            )
        return _apply_dct(inputs, self._matrix, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(self._arguments)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PCEN(keras.layers.Layer):
    """Per-channel energy normalisation of a mel (or any filterbank) spectrogram along its
    frames, as librosa.pcen (max_size=1; kapre_fast.reference.apply_pcen): the apply_pcen of
    the backend kapre_fast._backends.for_keras picks. Under TensorFlow with
    implementation='fused' (default), outside XLA: the native pass as one op
    (kapre_fast.ops.pcen, with a registered gradient); implementation='builtin' (which
    kapre_fast.export.portable sets): kapre_fast.builtin.pcen, TFLite/ONNX-convertible ops;
    fused inside an XLA compilation (jit_compile=True): the op's recomputation in TensorFlow
    ops (kapre_fast.ops.pcen_in_tf_ops), which XLA compiles; under PyTorch and JAX
    kapre_fast.torch.apply_pcen / kapre_fast.jax.apply_pcen, in torch and jnp ops, which run and
    differentiate there. Every one but the native pass runs the smoother M[t] = (1 - b) M[t - 1]
    + b S[t] (M[-1] = 1, librosa's zi) as kapre_fast._pcen's doubling scan over frames
    (ceil(log2(frames + 1)) vectorised passes), exact, with gradients to S through M too.

    Arguments: sample_rate and hop_length (of the spectrogram: they turn time_constant into
    b), gain=0.98, bias=2.0, pcen_power=0.5 (librosa's `power`), time_constant=0.4, eps=1e-6,
    b=None (kapre_fast.spec.pcen_constants: ValueError naming a bad constant),
    data_format='default', implementation='fused'; plus Keras layer arguments. Input and output:
    (batch, frames, features, ch) for channels_last, (batch, ch, frames, features) for
    channels_first.
    """

    def __init__(
        self,
        sample_rate=22050,
        hop_length=512,
        gain=_spec.PCEN_DEFAULTS['gain'],
        bias=_spec.PCEN_DEFAULTS['bias'],
        pcen_power=_spec.PCEN_DEFAULTS['pcen_power'],
        time_constant=_spec.PCEN_DEFAULTS['time_constant'],
        eps=_spec.PCEN_DEFAULTS['eps'],
        b=_spec.PCEN_DEFAULTS['b'],
        data_format='default',
        implementation='fused',
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._arguments = _own_arguments(locals())
        self.implementation = _spec._check_choice('implementation', implementation, IMPLEMENTATIONS)
        self.constants = _spec.pcen_constants(
            _spec._check_positive('sample_rate', sample_rate),
            _spec._check_int('hop_length', hop_length, 1),
            **{name: self._arguments[name] for name in _spec.PCEN_DEFAULTS},
        )
        self.data_format = _spec._check_data_format('data_format', data_format)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs):
        if len(inputs.shape) != 4:
            raise ValueError(
                f'Layer {self.name!r} takes 4 axes '
                f'{_spectrum_layout(self.data_format)}, got shape '
                f'{_shape_tuple(inputs.shape)}'
            )
        axis = _spec.time_axis(self.data_format)
        backend = _backends.for_keras(self.implementation)
        return keras.ops.cast(backend.apply_pcen(inputs, self.constants, axis), inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(self._arguments)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConcatenateFrequencyMap(keras.layers.Layer):
    """Appends a frequency map as the last channel of a spectrogram batch, as kapre's layer of
    that name: linspace(0, 1, n_freq) along the frequency axis, the same for every example and
    frame. (batch, frames, freq, ch) -> (batch, frames, freq, ch + 1) for channels_last,
    (batch, ch, frames, freq) -> (batch, ch + 1, frames, freq) for channels_first.

    Arguments: data_format='default' (keras.config.image_data_format()); plus Keras layer
    arguments.
    """

    def __init__(self, data_format='default', **kwargs):
        super().__init__(**kwargs)
        self._data_format_argument = data_format
        self.data_format = _spec._check_data_format('data_format', data_format)

    def _dims(self, shape):
        if len(shape) != 4:
            raise ValueError(
                f'Layer {self.name!r} takes spectrograms with 4 axes '
                f'{_spectrum_layout(self.data_format)} (data_format={self.data_format!r}), '
                f'got shape {_shape_tuple(shape)}'
            )
        return _shape_tuple(shape)

    def build(self, input_shape):
        self._dims(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = list(self._dims(input_shape))
        axis = 3 if self.data_format == 'channels_last' else 1
        if shape[axis] is not None:
            shape[axis] += 1
        return tuple(shape)

    def call(self, inputs):
        self._dims(inputs.shape)
        channels_last = self.data_format == 'channels_last'
        freq_axis, channel_axis = (2, 3) if channels_last else (3, 1)
        n_freq = inputs.shape[freq_axis]  # static but for a graph with unknown frequencies
        n_freq = keras.ops.shape(inputs)[freq_axis] if n_freq is None else n_freq
        ramp = keras.ops.cast(keras.ops.linspace(0.0, 1.0, n_freq), inputs.dtype)
        ramp = keras.ops.reshape(ramp, (1, 1, -1, 1) if channels_last else (1, 1, 1, -1))
        # Broadcasting against one input channel keeps every static dimension known (a layer
        # after this one, e.g. Conv2D, needs the channel count when it is traced).
        one_channel = inputs[..., :1] if channels_last else inputs[:, :1]
        return keras.ops.concatenate(
            [inputs, keras.ops.zeros_like(one_channel) + ramp], axis=channel_axis
        )

    def get_config(self):
        config = super().get_config()
        config['data_format'] = self._data_format_argument
        return config
