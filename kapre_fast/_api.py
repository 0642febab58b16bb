"""The public front-end functions of the backends (reference, cpu, gpu), written once.

Each backend module gets its five functions (stft_magnitude, melspectrogram,
log_frequency_spectrogram, stft_mag_phase, stft) from `front_end_functions(__name__)`:

    function(x, *, <kapre's keyword arguments>, <the backend's extras>)
        == <module>.compute(FrontEnd.<function>(**kapre keywords), x, **extras)

(mfcc calls the module's compute_mfcc, istft its inverse, pcen its melspectrogram then its
apply_pcen: the Backend protocol of kapre_fast._backends, each looked up there per call.)
Their signatures come from `FrontEnd.kapre_signature` (kapre's arguments, order and defaults)
and their docstrings from the one table of argument descriptions below, so `help()` and
`inspect.signature` show the same arguments in every backend.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import numpy as np

from kapre_fast import _backends
from kapre_fast.spec import (
    MAX_N_FFT,
    PCEN_DEFAULTS,
    PRESET_WINDOWS,
    WINDOW_NAMES,
    FrontEnd,
    fills_library_defaults,
    front_end_of,
    mfcc_matrix,
    pcen_constants,
    time_axis,
)

# In the order the backend modules unpack them.
FUNCTIONS = (
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
)
# What every backend module exports (its __all__ adds its own extras): the Backend protocol
# (kapre_fast._backends.PROTOCOL: compute, inverse, compute_mfcc, apply_pcen) and the functions
# built here.
PUBLIC = (*_backends.PROTOCOL, *FUNCTIONS, 'istft', 'mfcc', 'pcen')

ARGUMENTS = {
    'n_fft': f'FFT size, 2 to {MAX_N_FFT}: each frame is zero-padded (or cropped) to n_fft '
    'points; n_fft // 2 + 1 frequency bins.',
    'win_length': 'Frame (window) length in samples; None: n_fft.',
    'hop_length': 'Samples between the starts of consecutive frames; None: win_length // 4.',
    'window_name': 'Analysis window, as tf.signal builds it: '
    f"{', '.join(map(repr, WINDOW_NAMES))}; None: 'hann_window'.",
    'pad_begin': 'Prepend n_fft - hop_length zeros (n_fft, as kapre does).',
    'pad_end': 'Pad the end with zeros so that the last frame reaches past the last sample '
    "(tf.signal.stft's pad_end).",
    'sample_rate': 'Sampling rate of the audio in Hz, which places the filterbank.',
    'n_mels': 'Number of mel bands.',
    'mel_f_min': 'Lowest frequency of the mel filterbank, Hz.',
    'mel_f_max': 'Highest frequency of the mel filterbank, Hz; None: sample_rate / 2.',
    'mel_htk': "HTK's mel scale instead of Slaney's.",
    'mel_norm': "'slaney' (each filter of constant area), None, or p > 0: each filter divided "
    "by its p-norm (librosa's norm).",
    'log_n_bins': 'Number of log-frequency bins.',
    'log_f_min': 'Centre frequency of the lowest bin, Hz; None: 32.70319566 (C1). The top bin, '
    'log_f_min * 2**(log_n_bins / log_bins_per_octave), must not exceed '
    'sample_rate // 2.',
    'log_bins_per_octave': 'Bins per octave.',
    'log_spread': "Width of each log-normal filter, in bins (kapre's spread).",
    'return_decibel': "Return 10 * log10 of the magnitudes (kapre's MagnitudeToDecibel), "
    "clamped to db_dynamic_range below each example's maximum.",
    'db_amin': 'Floor of the magnitudes before the logarithm (> 0).',
    'db_ref_value': 'The magnitude that becomes 0 dB (> 0).',
    'db_dynamic_range': "dB kept below each example's maximum (> 0); lower values are raised "
    'to that floor.',
    'input_data_format': "Layout of x: 'channels_last' (batch, time, channels), "
    "'channels_first' (batch, channels, time), or 'default': Keras' "
    "image_data_format() when Keras is imported, else 'channels_last'.",
    'output_data_format': "Layout of the result: 'channels_last' (batch, frames, features, "
    "channels), 'channels_first' (batch, channels, frames, features), or "
    "'default' (as for input_data_format).",
    'compat': "Whose numbers to reproduce: 'kapre' (default; every argument above as kapre), "
    "'librosa' (librosa.stft / feature.melspectrogram / power_to_db or "
    "amplitude_to_db) or 'torchaudio' (transforms.Spectrogram / MelSpectrogram / "
    'AmplitudeToDB). A preset takes the arguments below, window_name '
    f'{" or ".join(map(repr, PRESET_WINDOWS))} (periodic, zero-padded on both sides '
    "to n_fft; win_length <= n_fft), and neither pad_begin, pad_end nor kapre's db_* "
    'arguments. Its mel filterbank is evaluated at its own FFT bin frequencies. '
    "Arguments left out take the preset library's defaults (spec.LIBRARY_DEFAULTS: "
    "torchaudio's n_fft 400, hop_length win_length // 2, sample_rate 16000, "
    "mel_htk=True, mel_norm=None; librosa's are kapre's).",
    'center': 'Preset only: pad n_fft // 2 samples on both sides (pad_mode) so that frame t is '
    'centred on sample t * hop_length; None: True (both presets).',
    'pad_mode': "Preset only: 'constant' (zeros) or 'reflect'; None: the preset's (librosa "
    "'constant', torchaudio 'reflect').",
    'power': 'Preset only: 1 (magnitude) or 2 (power spectrum); None: 2 (both presets). The dB '
    'of power is 10 log10 (power_to_db, stype power), of a magnitude 20 log10.',
    'amin': 'Preset only: floor (> 0) before the logarithm; None: 1e-10 (librosa power_to_db, '
    'torchaudio), 1e-5 for librosa with power=1 (amplitude_to_db).',
    'ref': 'Preset only: the value (> 0) that becomes 0 dB; None: 1.0.',
    'top_db': "Preset only: dB kept below each example's maximum (> 0; math.inf: no clamp); "
    'None: 80 (librosa), math.inf (torchaudio, whose top_db=None does not clamp).',
    'threads': 'None (every core) or an int >= 1: the worker threads.',
    'out': "None (a new array), or a C-contiguous, writeable NumPy array of the result's shape "
    'and dtype that does not overlap x: it is filled and returned (repeated calls into '
    'one buffer skip the page faults of a fresh output).',
}

# Per function: what it computes, the size of the features axis, the channels of the result.
_OUTPUTS = {
    'stft_magnitude': (
        '|STFT| (or its dB), as kapre.composed.get_stft_magnitude_layer.',
        'n_fft // 2 + 1',
        'channels',
    ),
    'melspectrogram': (
        'Mel spectrogram (or its dB), as kapre.composed.get_melspectrogram_layer: '
        "STFT magnitudes through librosa's mel filterbank.",
        'n_mels',
        'channels',
    ),
    'log_frequency_spectrogram': (
        'Log-frequency spectrogram (or its dB), as '
        "kapre.composed.get_log_frequency_spectrogram_layer: STFT magnitudes through kapre's "
        'log-normal filterbank.',
        'log_n_bins',
        'channels',
    ),
    'stft_mag_phase': (
        '[magnitude (or dB), phase], as kapre.composed.get_stft_mag_phase: the '
        'magnitudes of every channel, then their phases in radians, along the '
        'channel axis.',
        'n_fft // 2 + 1',
        '2 * channels',
    ),
    'stft': (
        "The complex STFT, as kapre's STFT layer (kapre.time_frequency.STFT).",
        'n_fft // 2 + 1',
        'channels',
    ),
}


@dataclasses.dataclass(frozen=True)
class Backend:
    """What the docstrings say about one backend module, and its keyword arguments beyond
    kapre's (each None by default, described in ARGUMENTS)."""

    arrays: str  # what x is
    result: str  # what is returned
    how: str  # one sentence: where and how it computes
    real: str  # result dtype
    complex: str  # result dtype of `stft`
    extras: tuple = ()


BACKENDS = {
    'kapre_fast.reference': Backend(
        arrays='NumPy array (or anything np.asarray takes)',
        result='NumPy array',
        how='Computed in float64 with NumPy: slow and simple, the truth the other backends are '
        'tested against.',
        real='float64',
        complex='complex128',
    ),
    'kapre_fast.cpu': Backend(
        arrays='NumPy array (or anything np.asarray takes)',
        result='NumPy array',
        how='Computed by the fused C++ kernel (the GIL released), in float32 as kapre.',
        real='float32',
        complex='complex64',
        extras=('threads', 'out'),
    ),
    'kapre_fast.gpu': Backend(
        arrays='CuPy array (or any object exposing __cuda_array_interface__, taken without a copy)',
        result='CuPy array',
        how="Computed by the fused CUDA kernel, asynchronously on CuPy's current stream; the "
        "result is a new CuPy array on x's device.",
        real='float32',
        complex='complex64',
    ),
    'kapre_fast.torch': Backend(
        arrays='torch.Tensor (or anything torch.as_tensor takes) on the CPU or a CUDA device',
        result='torch.Tensor',
        how='A PyTorch custom operator (torch.ops.kapre_fast.front_end) over the fused C++ '
        "kernel (CPU tensors) or CUDA kernel (CUDA tensors, on torch's current stream), "
        'without copies; differentiable with respect to x; torch.compile traces it whole.',
        real='float32',
        complex='complex64',
        extras=('threads',),
    ),
    'kapre_fast.jax': Backend(
        arrays='jax array (a tracer under jit/vmap, or anything jnp.asarray takes)',
        result='jax array',
        how='An XLA FFI custom call (jax.ffi) to the fused C++ kernel, fused inside jax.jit '
        'programs; vmap maps over leading axes without a loop; differentiable with respect '
        'to x (a custom VJP).',
        real='float32',
        complex='complex64',
        extras=('threads',),
    ),
}


def front_end_functions(module: str) -> tuple:
    """The functions of FUNCTIONS, in that order, for the backend module named `module` (a key
    of BACKENDS); each calls that module's `compute`."""
    return tuple(_front_end_function(module, name) for name in FUNCTIONS)


def _front_end_function(module, name):
    backend = BACKENDS[module]
    registered = _backends.name_of(module)
    kapre = FrontEnd.kapre_signature(name).parameters.values()
    presets = FrontEnd.preset_signature().parameters.values()
    extras = [
        inspect.Parameter(extra, inspect.Parameter.KEYWORD_ONLY, default=None)
        for extra in backend.extras
    ]
    x = inspect.Parameter('x', inspect.Parameter.POSITIONAL_OR_KEYWORD)
    signature = inspect.Signature([x, *kapre, *presets, *extras])
    accepted = list(signature.parameters)[1:]

    def function(x, *args, **kwargs):
        if args:
            raise TypeError(
                f'{module}.{name}() takes the audio as its only positional argument, got '
                f'{1 + len(args)}; pass the others by keyword ({", ".join(accepted[:3])}, ...)'
            )
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise TypeError(
                f'{module}.{name}() got unexpected keyword argument(s) {", ".join(unknown)}; '
                f'it takes {", ".join(accepted)}'
            )
        extra_values = {extra: kwargs.pop(extra) for extra in backend.extras if extra in kwargs}
        # Looked up per call: the module defines `compute` after taking these functions.
        return _backends.get(registered).compute(front_end_of(name, kwargs), x, **extra_values)

    function.__name__ = function.__qualname__ = name
    function.__module__ = module
    function.__signature__ = signature
    function.__doc__ = _docstring(name, backend, signature)
    return function


def mfcc_function(module: str):
    """`mfcc` for the backend module named `module`: its compute_mfcc (the Backend protocol)
    on the dB mel spectrogram's spec and the DCT matrix."""
    registered = _backends.name_of(module)

    @fills_library_defaults(mfcc=True)
    def mfcc(x, *, n_mfcc=20, lifter=0, **kwargs):
        """MFCCs: the orthonormal DCT-II (scipy.fft.dct(type=2, norm='ortho')) of the dB mel
        spectrogram, its first n_mfcc coefficients, liftered as librosa when lifter > 0.

        Takes melspectrogram's keyword arguments (return_decibel is implied) plus n_mfcc
        (1 <= n_mfcc <= n_mels) and lifter (>= 0). With compat='librosa' (power 2,
        power_to_db, top_db 80) this is librosa.feature.mfcc; with compat='torchaudio' and no
        other argument, torchaudio.transforms.MFCC() (n_mfcc 40, top_db 80, MelSpectrogram's
        defaults: spec.MFCC_LIBRARY_DEFAULTS); with the default compat='kapre',
        the DCT of kapre's dB of the magnitude mel spectrogram. The DCT runs after the
        per-example dB clamp, which needs every frame of the example first: kapre_fast.cpu
        applies it in the native pass to each example's dB mel rows while they are in cache
        (compute_mfcc); the reference multiplies the (batch, ..., n_mels) result, and
        kapre_fast.gpu does so as a second step on the device (a CuPy matrix product after the
        fused kernel). Output: (batch, frames, n_mfcc, channels) or (batch, channels, frames,
        n_mfcc).
        """
        for refused in ('return_decibel', 'out'):
            if refused in kwargs:
                raise TypeError(
                    f'{module}.mfcc() got unexpected keyword argument {refused!r}: '
                    'MFCCs are always computed from the dB mel spectrogram, into a '
                    'new array'
                )
        spec_kwargs = {k: v for k, v in kwargs.items() if k not in BACKENDS[module].extras}
        spec = FrontEnd.melspectrogram(return_decibel=True, **spec_kwargs)
        matrix = mfcc_matrix(n_mfcc, spec.n_mels, lifter)  # ValueError before any work
        extras = {k: v for k, v in kwargs.items() if k in BACKENDS[module].extras}
        return _backends.get(registered).compute_mfcc(spec, matrix, x, **extras)

    mfcc.__module__ = module
    return mfcc


def dct_mfcc_function(module: str):
    """`compute_mfcc(spec, matrix, x)` for the backend module named `module` whose kernels have
    no DCT (reference, gpu): its compute of the dB mel spectrogram `spec`, then its `apply_dct`
    if it has one (gpu: on the device), else this module's (NumPy)."""
    registered = _backends.name_of(module)

    def compute_mfcc(spec, matrix, x):
        """MFCCs: the dB mel spectrogram `spec` of `x`, then times `matrix` (spec.mfcc_matrix,
        (n_mels, n_mfcc)) along its features axis. Output: spec's layout with n_mfcc
        features."""
        backend = _backends.get(registered)
        mel = backend.compute(spec, x)
        dct = getattr(backend, 'apply_dct', apply_dct)
        return dct(mel, matrix, spec.output_data_format == 'channels_last')

    compute_mfcc.__module__ = module
    return compute_mfcc


def apply_dct(mel, matrix, channels_last):
    """The DCT step of `mfcc` on a NumPy dB mel: mel times the (n_mels, n_mfcc) `matrix` in the
    mel's dtype, along the features axis of either layout."""
    matrix = matrix.astype(mel.dtype)
    if channels_last:  # (batch, frames, n_mels, channels)
        return np.ascontiguousarray(np.einsum('bfmc,mk->bfkc', mel, matrix))
    return mel @ matrix  # (batch, channels, frames, n_mels)


def pcen_function(module: str):
    """`pcen` for the backend module named `module`: its melspectrogram, then its `apply_pcen`
    along the frames axis."""
    registered = _backends.name_of(module)

    def pcen(
        x,
        *,
        gain=PCEN_DEFAULTS['gain'],
        bias=PCEN_DEFAULTS['bias'],
        pcen_power=PCEN_DEFAULTS['pcen_power'],
        time_constant=PCEN_DEFAULTS['time_constant'],
        eps=PCEN_DEFAULTS['eps'],
        b=PCEN_DEFAULTS['b'],
        **kwargs,
    ):
        """Per-channel energy normalisation (librosa.pcen, max_size=1) of the mel spectrogram.

        Takes melspectrogram's keyword arguments except return_decibel (PCEN replaces the dB
        scaling), plus librosa.pcen's constants: gain (>= 0), bias (>= 0), pcen_power (>= 0;
        librosa's `power`, renamed because `power` is the spectrum's exponent of the presets),
        time_constant (> 0, seconds), eps (> 0) and b (None: from time_constant with librosa's
        sr = sample_rate and hop_length = hop_length). PCEN runs on the mel spectrogram exactly
        as melspectrogram(x, **kwargs) returns it, without rescaling: kapre's magnitude mel by
        default, the power mel with compat='librosa' (power=1: magnitudes). librosa's
        recommended pcen(S * 2**31) of a magnitude mel is pcen(x * 2**31, compat='librosa',
        power=1) (the mel is linear in the audio's scale). Output: the mel's shape.
        """
        constants_args = {k: v for k, v in locals().items() if k in PCEN_DEFAULTS}
        if 'return_decibel' in kwargs:
            raise TypeError(
                f'{module}.pcen() got unexpected keyword argument '
                "'return_decibel': PCEN replaces the dB scaling"
            )
        spec = FrontEnd.melspectrogram(
            **{k: v for k, v in kwargs.items() if k not in BACKENDS[module].extras}
        )
        # ValueError before any work
        constants = pcen_constants(spec.sample_rate, spec.hop_length, **constants_args)
        # The public melspectrogram, not compute(spec, ...): kapre_fast.torch's builds its spec
        # outside torch.compile's tracing.
        backend = _backends.get(registered)
        mel = backend.melspectrogram(x, **kwargs)
        frames_axis = time_axis(spec.output_data_format)
        threads = {'threads': kwargs['threads']} if 'threads' in kwargs else {}
        return backend.apply_pcen(mel, constants, frames_axis, **threads)

    pcen.__module__ = module
    return pcen


def _docstring(name, backend, signature):
    summary, features, channels = _OUTPUTS[name]
    dtype = backend.complex if name == 'stft' else backend.real
    arguments = []
    for parameter in list(signature.parameters.values())[1:]:
        text = f'{ARGUMENTS[parameter.name]} Default {parameter.default!r}.'
        arguments.append(_item(parameter.name, text))
    x = (
        f'The waveform batch, a {backend.arrays}: (batch, time, channels) for '
        "input_data_format 'channels_last', (batch, channels, time) for 'channels_first'. "
        'Real floating point of any width, or integers taken unscaled as kapre does (int16 '
        f'samples stay in [-32768, 32767]), computed as {backend.real}; bool, complex and '
        'non-numeric dtypes raise TypeError, fewer or more than 3 axes ValueError.'
    )
    result = (
        f'A {backend.result} of {dtype}: (batch, frames, {features}, '
        f"{channels}) for output_data_format 'channels_last', (batch, {channels}, frames, "
        f"{features}) for 'channels_first'. frames = 1 + (time + pad - win_length) // "
        'hop_length, or ceil((time + pad) / hop_length) with pad_end, where pad = '
        'n_fft - hop_length with pad_begin, else 0.'
    )
    return '\n'.join(
        [
            summary,
            '',
            backend.how,
            '',
            'Args:',
            _item('x', x),
            *arguments,
            '',
            'Returns:',
            textwrap.fill(result, 88, initial_indent='    ', subsequent_indent='    '),
            '',
            'Raises:',
            textwrap.fill(
                'TypeError or ValueError naming the argument and its value for a bad '
                'argument, an unknown keyword, or audio of a bad dtype or shape; '
                'ValueError for audio too short for one frame.',
                88,
                initial_indent='    ',
                subsequent_indent='    ',
            ),
        ]
    )


def _item(name, text):
    return textwrap.fill(f'{name}: {text}', 88, initial_indent='    ', subsequent_indent='        ')


def istft_function(module: str, inverse_of_arguments=None):
    """`istft` for the backend module named `module`, which has `inverse(spec, X, **extras)`:
    kapre's InverseSTFT arguments (FrontEnd.inverted_by_istft's signature) plus the backend's
    extras but `out` (threads), the spec built once here, the module's inverse called. With
    `inverse_of_arguments(arguments, X, **extras)` (torch), istft hands it kapre's arguments as
    a tuple of (name, value) pairs instead, so that the spec is built outside a tracer."""
    backend = BACKENDS[module]
    registered = _backends.name_of(module)
    extras = tuple(extra for extra in backend.extras if extra != 'out')
    kapre = list(inspect.signature(FrontEnd.inverted_by_istft).parameters.values())
    names = tuple(parameter.name for parameter in kapre)
    defaults = {**{p.name: p.default for p in kapre}, **dict.fromkeys(extras)}
    keyword_only = [
        inspect.Parameter(e, inspect.Parameter.KEYWORD_ONLY, default=None) for e in extras
    ]
    X = inspect.Parameter('X', inspect.Parameter.POSITIONAL_OR_KEYWORD)
    signature = inspect.Signature([X, *kapre, *keyword_only])

    # Bound by hand, not by signature.bind: torch.compile traces this function.
    def istft(X, *args, **kwargs):
        positional = names[: len(args)]
        if len(args) > len(names) or set(kwargs) - set(defaults) or set(kwargs) & set(positional):
            raise TypeError(
                f'{module}.istft() takes X, then {", ".join(names)} (positional or keyword) '
                f'and {", ".join(extras) or "nothing else"} (keyword), got '
                f'{1 + len(args)} positional argument(s) and keyword(s) {sorted(kwargs)}'
            )
        arguments = {**defaults, **dict(zip(positional, args)), **kwargs}
        extra_values = {extra: arguments.pop(extra) for extra in extras}
        if inverse_of_arguments is not None:
            pairs = tuple((name, arguments[name]) for name in names)
            return inverse_of_arguments(pairs, X, **extra_values)
        spec = FrontEnd.inverted_by_istft(**arguments)
        return _backends.get(registered).inverse(spec, X, **extra_values)

    istft.__module__ = module
    istft.__signature__ = signature
    istft.__doc__ = (
        f"Inverse STFT of the complex {backend.arrays} X, as kapre's InverseSTFT "
        'layer (see kapre_fast.reference.inverse): irfft of n_fft, the synthesis window, '
        f'overlap-add; {backend.real} waveforms in waveform_data_format, a {backend.result}.'
    )
    return istft


def backend_functions(module: str) -> tuple:
    """(mfcc, pcen, istft) of the backend module named `module` (see mfcc_function,
    pcen_function, istft_function)."""
    return mfcc_function(module), pcen_function(module), istft_function(module)
