"""Drop-in replacement for `kapre.composed`: its six functions with the same arguments and
defaults (plus get_mfcc_layer and get_pcen_layer: eight), returning Keras models whose layers
run kapre_fast's fused ops.

Where kapre chains STFT > Magnitude > ApplyFilterbank > MagnitudeToDecibel layers, the models
returned here hold one fused `kapre_fast.layers.FrontEnd` layer. As in kapre:

- The functions return `keras.Sequential` models (`keras.Model` for get_stft_mag_phase) named by
  their `name` argument; get_perfectly_reconstructing_stft_istft returns two layers named
  `stft_name` and `istft_name`.
- The returned layers can be moved into another model one by one
  (`for layer in composed.layers: model.add(layer)`); when `input_shape` is given, the first
  layer carries it, so a Sequential model it is added to gets that input shape.
- After kapre's arguments, keyword-only: `compat` ('kapre', 'librosa' or 'torchaudio') and the
  presets' `center`, `pad_mode`, `power`, `amin`, `ref`, `top_db` (kapre_fast.spec.FrontEnd):
  kapre's calls are unchanged, and the same getters give librosa's or torchaudio's numbers.
- Invalid arguments raise kapre's exception types (TypeError/ValueError for data formats,
  NotImplementedError for window names, RuntimeError for a log filterbank above Nyquist or a
  hop that does not divide the window evenly, ValueError for group convolution); the kapre_fast
  exceptions that carry those types are also ValueErrors.

Importing this module loads the TensorFlow op library (see kapre_fast.ops), so SavedModels
exported from these layers load after `import kapre_fast.composed`.
"""

from __future__ import annotations

import inspect
import numbers

import keras

from kapre_fast import layers as _layers
from kapre_fast import spec as _spec

__all__ = [
    'get_stft_magnitude_layer',
    'get_melspectrogram_layer',
    'get_log_frequency_spectrogram_layer',
    'get_perfectly_reconstructing_stft_istft',
    'get_stft_mag_phase',
    'get_frequency_aware_conv2d',
    'get_mfcc_layer',
    'get_pcen_layer',
    'ReconstructionHopError',
]

# Position of `groups` among keras.layers.Conv2D's positional arguments (filters, kernel_size,
# strides, padding, data_format, dilation_rate, groups).
_CONV2D_GROUPS_POSITION = 6


class ReconstructionHopError(RuntimeError, ValueError):
    """win_length / hop_length is not an even number, so the STFT/ISTFT pair would not
    reconstruct (kapre 0.3.7 raises RuntimeError; this is also a ValueError)."""


def _with_input_shape(layer, input_shape, argument='input_shape'):
    """Makes `layer` carry `input_shape` the way a Keras layer built with `input_shape=` does.

    Keras 3 turns a layer's `input_shape` argument into `_input_shape_arg` (and warns that
    keras.Input is preferred); Sequential.add reads it to put an InputLayer first. kapre passes
    input_shape to its first layer, so a user who moves the layers into their own Sequential
    gets that input. Setting the attribute keeps that behaviour without the warning.
    """
    if input_shape is not None:
        if not _is_shape(input_shape):
            raise TypeError(
                f'{argument} must be a shape tuple or None, got '
                f'{type(input_shape).__name__} {input_shape!r}'
            )
        layer._input_shape_arg = tuple(input_shape)
    return layer


def _positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _front_end(arguments, **fixed):
    """The fused layer of a composed function: its own arguments (bound, or `locals()` taken
    first thing), less those of the model around the layer, plus what the function fixes."""
    own = {k: v for k, v in arguments.items() if k not in ('input_shape', 'name')}
    return _layers.FrontEnd(**own, **fixed)


def _sequential(layer, input_shape, name):
    return keras.Sequential([_with_input_shape(layer, input_shape)], name=name)


_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _getter(family, name, doc, trainable=(), *, model=False, **fixed):
    """The composed getter of `family` (a FrontEnd constructor) named `name`: kapre's signature
    (input_shape, kapre's arguments of FrontEnd.kapre_signature(family) in kapre's order and
    defaults, name=family), then keyword-only the presets' arguments and the `trainable`
    options (False). It builds one fused layers.FrontEnd with `fixed` (filterbank, output) and
    returns it in a keras.Sequential, or (model=True, input_shape required, as kapre's
    get_stft_mag_phase) a functional keras.Model. With a preset, the arguments left out take
    that library's defaults (spec.fills_library_defaults)."""
    kapre = _spec.FrontEnd.kapre_signature(family).parameters.values()
    presets = _spec.FrontEnd.preset_signature().parameters.values()
    shape_default = inspect.Parameter.empty if model else None
    signature = inspect.Signature(
        [
            inspect.Parameter('input_shape', _POSITIONAL, default=shape_default),
            *(parameter.replace(kind=_POSITIONAL) for parameter in kapre),
            inspect.Parameter('name', _POSITIONAL, default=family),
            *presets,
            *(
                inspect.Parameter(t, inspect.Parameter.KEYWORD_ONLY, default=False)
                for t in trainable
            ),
        ]
    )

    def getter(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f'{name}() {error}') from None
        bound.apply_defaults()
        arguments = bound.arguments
        front_end = _front_end(arguments, **fixed)
        input_shape = arguments['input_shape']
        if not model:
            return _sequential(front_end, input_shape, arguments['name'])
        waveforms = keras.Input(shape=input_shape)
        return keras.Model(inputs=waveforms, outputs=front_end(waveforms), name=arguments['name'])

    getter.__name__ = getter.__qualname__ = name
    getter.__module__ = __name__
    getter.__doc__ = doc
    getter.__signature__ = signature
    return _spec.fills_library_defaults(getter)


get_stft_magnitude_layer = _getter(
    'stft_magnitude',
    'get_stft_magnitude_layer',
    """A `keras.Sequential` named `name` computing |STFT| (or its dB), as kapre's function of
    the same name. Output: (batch, frames, n_fft // 2 + 1, ch) for channels_last output,
    (batch, ch, frames, n_fft // 2 + 1) for channels_first. `input_shape` (without the batch
    axis) is needed only when the layer is the first of a model. trainable_window: the window
    becomes a layer weight (layers.FrontEnd).""",
    ('trainable_window',),
)


get_melspectrogram_layer = _getter(
    'melspectrogram',
    'get_melspectrogram_layer',
    """A `keras.Sequential` named `name` computing a mel spectrogram of STFT magnitudes (or its
    dB), as kapre's function of the same name: librosa's mel filterbank (sample_rate, n_mels,
    mel_f_min, mel_f_max (None: sample_rate / 2), mel_htk, mel_norm). Output:
    (batch, frames, n_mels, ch) or (batch, ch, frames, n_mels). trainable_window,
    trainable_filterbank: the window, the filters' nonzero weights (each band keeps its support)
    become layer weights (layers.FrontEnd).""",
    ('trainable_window', 'trainable_filterbank'),
    filterbank='mel',
)


get_log_frequency_spectrogram_layer = _getter(
    'log_frequency_spectrogram',
    'get_log_frequency_spectrogram_layer',
    """A `keras.Sequential` named `name` computing a log-frequency spectrogram (or its dB), as
    kapre's function of the same name: log_n_bins log-normal filters from log_f_min (None:
    32.70319566 Hz) with log_bins_per_octave bins per octave and spread log_spread. Raises
    RuntimeError (FilterbankRangeError) when the top filter is above sample_rate // 2. Output:
    (batch, frames, log_n_bins, ch) or (batch, ch, frames, log_n_bins). trainable_window,
    trainable_filterbank: as get_melspectrogram_layer's.""",
    ('trainable_window', 'trainable_filterbank'),
    filterbank='log',
)


def get_perfectly_reconstructing_stft_istft(*args, **kwargs):
    """A pair `(stft, istft)` of layers that reconstruct their input: an `STFT` with pad_begin
    and pad_end and an `InverseSTFT` with the same sizes and forward window.

    Two signatures are accepted, told apart by the first positional argument:

    - kapre 0.3.7's (the one `inspect.signature` shows; every call by keyword, or a first
      positional argument that is a shape tuple or None): `stft_input_shape=None,
      istft_input_shape=None, n_fft=2048, win_length=None (n_fft), hop_length=None
      (win_length // 4), forward_window_name=None ('hann_window'),
      waveform_data_format='default', stft_data_format='default', stft_name='stft',
      istft_name='istft'`. Raises RuntimeError (ReconstructionHopError) unless
      win_length / hop_length is an even number. `stft_input_shape` / `istft_input_shape` are
      needed only when the layer is the first of a Sequential model.
    - kapre 0.4.1's (a first positional argument that is an int): `(n_fft, hop_length,
      waveform_data_format, stft_data_format, stft_name=None, istft_name=None)`, e.g.
      `get_perfectly_reconstructing_stft_istft(1024, 256, 'channels_last', 'channels_last')`.
      As in kapre 0.4.1: win_length = n_fft, Hann window, no check of the hop, and
      stft_name/istft_name None give Keras' automatic names ('stft', 'inverse_stft').
      Arguments of kapre 0.3.7 only (win_length, forward_window_name, the input shapes) raise
      TypeError there.

    Any other first positional argument (a float, a string, a bool) raises TypeError.
    istft(stft(x)) equals x after dropping its first n_fft - hop_length samples (and keeping
    len(x) of the rest).
    """
    if not args:
        return _seed_reconstructing_pair(**kwargs)
    first = args[0]
    if isinstance(first, numbers.Integral) and not isinstance(first, bool):
        try:
            bound = _KAPRE_041_SIGNATURE.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(
                f'get_perfectly_reconstructing_stft_istft({first!r}, ...) was read as kapre '
                f"0.4.1's signature {_KAPRE_041_SIGNATURE} because its first positional argument "
                f"is an int (n_fft): {error}. For kapre 0.3.7's signature pass n_fft by keyword"
            ) from None
        return _kapre_041_reconstructing_pair(*bound.args, **bound.kwargs)
    if first is None or _is_shape(first):
        return _seed_reconstructing_pair(*args, **kwargs)
    raise TypeError(
        'the first positional argument of get_perfectly_reconstructing_stft_istft must be '
        "stft_input_shape (a shape tuple or None: kapre 0.3.7's signature) or n_fft (an int: "
        f"kapre 0.4.1's signature), got {type(first).__name__} {first!r}"
    )


def _is_shape(value):
    return isinstance(value, (tuple, list)) or (
        hasattr(value, '__iter__') and not isinstance(value, (str, bytes))
    )


def _seed_reconstructing_pair(
    stft_input_shape=None,
    istft_input_shape=None,
    n_fft=2048,
    win_length=None,
    hop_length=None,
    forward_window_name=None,
    waveform_data_format='default',
    stft_data_format='default',
    stft_name='stft',
    istft_name='istft',
):
    """kapre 0.3.7's get_perfectly_reconstructing_stft_istft (see the public function)."""
    # kapre 0.3.7's order: data formats first, then the ratio. Sizes that are not positive ints
    # skip the ratio check and are reported by the layers' own validation.
    _check_pair_data_formats(waveform_data_format, stft_data_format)
    resolved_win_length = n_fft if win_length is None else win_length
    resolved_hop_length = resolved_win_length // 4 if hop_length is None else hop_length
    if (
        _positive_int(resolved_win_length)
        and _positive_int(resolved_hop_length)
        and (resolved_win_length / resolved_hop_length) % 2 != 0
    ):
        raise ReconstructionHopError(
            'win_length / hop_length must be an even number for the STFT and inverse STFT to '
            f'reconstruct the input, got win_length={resolved_win_length}, hop_length='
            f'{resolved_hop_length} (ratio {resolved_win_length / resolved_hop_length:g})'
        )
    stft, istft = _reconstructing_pair(
        n_fft,
        resolved_win_length,
        resolved_hop_length,
        forward_window_name,
        waveform_data_format,
        stft_data_format,
        stft_name,
        istft_name,
    )
    _with_input_shape(stft, stft_input_shape, 'stft_input_shape')
    _with_input_shape(istft, istft_input_shape, 'istft_input_shape')
    return stft, istft


def _kapre_041_reconstructing_pair(
    n_fft, hop_length, waveform_data_format, stft_data_format, stft_name=None, istft_name=None
):
    """kapre 0.4.1's get_perfectly_reconstructing_stft_istft: win_length = n_fft, Hann window,
    no check of the hop; names None are Keras' automatic ones."""
    _check_pair_data_formats(waveform_data_format, stft_data_format)
    return _reconstructing_pair(
        n_fft,
        n_fft,
        hop_length,
        'hann_window',
        waveform_data_format,
        stft_data_format,
        stft_name,
        istft_name,
    )


_KAPRE_041_SIGNATURE = inspect.signature(_kapre_041_reconstructing_pair)
# help() and inspect show the seed's signature, the one kapre_fast promises.
get_perfectly_reconstructing_stft_istft.__signature__ = inspect.signature(_seed_reconstructing_pair)


def _check_pair_data_formats(waveform_data_format, stft_data_format):
    _spec._check_data_format('waveform_data_format', waveform_data_format)
    _spec._check_data_format('stft_data_format', stft_data_format)


def _reconstructing_pair(
    n_fft,
    win_length,
    hop_length,
    window_name,
    waveform_data_format,
    stft_data_format,
    stft_name,
    istft_name,
):
    stft = _layers.STFT(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window_name=window_name,
        pad_begin=True,
        pad_end=True,
        input_data_format=waveform_data_format,
        output_data_format=stft_data_format,
        name=stft_name,
    )
    istft = _layers.InverseSTFT(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        forward_window_name=window_name,
        input_data_format=stft_data_format,
        output_data_format=waveform_data_format,
        name=istft_name,
    )
    return stft, istft


@_spec.fills_library_defaults(mfcc=True)
def get_mfcc_layer(input_shape=None, n_mfcc=20, lifter=0, name='mfcc', **kwargs):
    """A `keras.Sequential` named `name` computing MFCCs: one `kapre_fast.layers.MFCC` layer
    (get_melspectrogram_layer's keyword arguments, presets included; return_decibel is implied),
    the dB mel spectrogram and its orthonormal DCT-II after the per-example dB clamp, one fused
    op under TensorFlow. compat='librosa' gives librosa.feature.mfcc's numbers.
    Output: (batch, frames, n_mfcc, ch) or (batch, ch, frames, n_mfcc)."""
    if 'return_decibel' in kwargs:
        raise TypeError(
            "get_mfcc_layer() got unexpected keyword argument 'return_decibel': "
            'MFCCs are always computed from the dB mel spectrogram'
        )
    layer = _layers.MFCC(n_mfcc=n_mfcc, lifter=lifter, **kwargs)
    return _sequential(layer, input_shape, name)


# input_shape, librosa.pcen's constants (spec.PCEN_DEFAULTS, in their order), name, then the
# front end's keyword arguments.
_PCEN_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter('input_shape', _POSITIONAL, default=None),
        *(inspect.Parameter(k, _POSITIONAL, default=v) for k, v in _spec.PCEN_DEFAULTS.items()),
        inspect.Parameter('name', _POSITIONAL, default='pcen'),
        inspect.Parameter('kwargs', inspect.Parameter.VAR_KEYWORD),
    ]
)


def get_pcen_layer(*args, **kwargs):
    """A `keras.Sequential` named `name` computing PCEN: the fused mel spectrogram layer
    (get_melspectrogram_layer's keyword arguments, presets included, without return_decibel,
    which PCEN replaces) then `kapre_fast.layers.PCEN` (under TensorFlow the native pass as one
    op, kapre_fast.ops.pcen) with librosa.pcen's constants (its
    sample_rate and hop_length are the front end's). The mel is taken as the front end returns
    it: kapre's magnitudes by default, the power mel with compat='librosa' (power=1: magnitudes;
    librosa's pcen(S * 2**31) scales the audio by 2**31). Equal to kapre_fast.cpu.pcen with the
    same arguments. Output: (batch, frames, n_mels, ch) or (batch, ch, frames, n_mels)."""
    try:
        arguments = _PCEN_SIGNATURE.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f'get_pcen_layer() {error}') from None
    arguments.apply_defaults()
    input_shape, name = arguments.arguments['input_shape'], arguments.arguments['name']
    kwargs = arguments.arguments['kwargs']
    constants = {k: arguments.arguments[k] for k in _spec.PCEN_DEFAULTS}
    if 'return_decibel' in kwargs:
        raise TypeError(
            "get_pcen_layer() got unexpected keyword argument 'return_decibel': PCEN "
            'replaces the dB scaling'
        )
    front_end = _front_end(kwargs, filterbank='mel')
    pcen = _layers.PCEN(
        front_end.spec.sample_rate,
        front_end.spec.hop_length,
        **constants,
        data_format=front_end.spec.output_data_format,
        name=f'{name}_pcen',
    )
    return keras.Sequential([_with_input_shape(front_end, input_shape), pcen], name=name)


get_pcen_layer.__signature__ = _PCEN_SIGNATURE


get_stft_mag_phase = _getter(
    'stft_mag_phase',
    'get_stft_mag_phase',
    """A functional `keras.Model` named `name` whose output concatenates the STFT magnitude
    (or its dB) and phase (atan2(imag, real)) along the channel axis: 2 * ch channels,
    magnitudes first, as kapre's function of the same name. `input_shape` (without the batch
    axis) is required, as in kapre.""",
    model=True,
    output='mag_phase',
)


def get_frequency_aware_conv2d(
    data_format='default', freq_aware_name='frequency_aware_conv2d', *args, **kwargs
):
    """A `keras.Sequential` named `freq_aware_name`: `ConcatenateFrequencyMap(data_format)`
    followed by `keras.layers.Conv2D(*args, **kwargs)` (which gets `data_format` unless it is
    'default'), as kapre's function of the same name. Group convolution (groups > 1) raises
    ValueError: only the last group would see the frequency map."""
    groups = kwargs.get('groups', 1)
    if len(args) > _CONV2D_GROUPS_POSITION:
        groups = args[_CONV2D_GROUPS_POSITION]
    if groups is not None and groups > 1:
        raise ValueError(
            f'Group convolution (groups={groups}) is not supported with frequency-aware '
            'convolution: only the last group would see the frequency map'
        )
    frequency_map = _layers.ConcatenateFrequencyMap(data_format=data_format)
    if data_format != 'default':
        kwargs['data_format'] = data_format
    conv2d = keras.layers.Conv2D(*args, **kwargs)
    return keras.Sequential([frequency_map, conv2d], name=freq_aware_name)
