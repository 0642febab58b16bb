"""kapre_fast for PyTorch: the fused front ends on tensors, without Keras.

    import kapre_fast.torch as kft
    mel = kft.melspectrogram(audio, n_fft=1024, hop_length=256, n_mels=64)   # a torch.Tensor
    layer = kft.MelSpectrogram(n_fft=1024, hop_length=256, n_mels=64)         # a torch.nn.Module

The functions of `kapre_fast.cpu` (kapre's keyword arguments, defaults and layouts; `threads`) on
tensors: CPU tensors run the fused C++ kernel, CUDA tensors the fused CUDA kernel (with CuPy and
a CUDA build of kapre_fast), both without copying the audio or the result. They are PyTorch
custom operators (`torch.ops.kapre_fast.front_end`, `.inverse_stft`) with autograd (gradients
with respect to the waveform, and to the complex STFT for `istft`) and fake implementations, so
`torch.compile(fullgraph=True)` takes them whole.

Needs PyTorch 2.4 or newer (`pip install "kapre_fast[torch]"`); `import kapre_fast` alone never
imports it.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

try:
    import torch
except ImportError as _error:
    raise ImportError(
        'kapre_fast.torch needs PyTorch 2.4 or newer: `pip install "kapre_fast[torch]"` '
        f'(importing torch failed: {_error})') from _error
if not hasattr(torch.library, 'custom_op'):
    raise ImportError(f'kapre_fast.torch needs PyTorch 2.4 or newer (torch.library.custom_op); '
                      f'torch {torch.__version__} is installed')

from kapre_fast import _api, cpu  # noqa: E402
from kapre_fast.spec import FrontEnd, check_audio_dtype, require_kapre_numerics  # noqa: E402
from kapre_fast.torch import _ops  # noqa: E402  (registers the operators)

__all__ = [
    'compute',
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
    'istft',
    'inverse',
    'STFTMagnitude',
    'MelSpectrogram',
    'LogFrequencySpectrogram',
    'STFTMagPhase',
    'STFT',
    'InverseSTFT',
]

def _front_end_function(template):
    """kapre_fast.torch.<name>: `template`'s signature and docstring (kapre_fast._api), with the
    spec resolved outside torch.compile's tracing (_spec_key_of)."""

    @functools.wraps(template)
    def function(x, **kwargs):
        threads = kwargs.pop('threads', None)
        key = _spec_key_of(template.__name__, tuple(sorted(kwargs.items())))
        return _run(key, x, threads)

    return function


# kapre's keyword arguments plus threads, signatures and docstrings: kapre_fast._api.
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = map(
    _front_end_function, _api.front_end_functions(__name__))


@torch.compiler.assume_constant_result
def _spec_key_of(function: str, arguments: tuple) -> str:
    # FrontEnd's validation is plain Python that torch.compile cannot trace (and need not: the
    # spec is a constant of the compiled program); TypeError/ValueError name bad arguments.
    return _ops.spec_key(getattr(FrontEnd, function)(**dict(arguments)))


@torch.compiler.assume_constant_result
def _key_of(spec: FrontEnd) -> str:
    return _ops.spec_key(spec)


@torch.compiler.assume_constant_result
def _inverse_key_of(spec: FrontEnd) -> str:
    return _ops.inverse_key(spec)


def compute(spec: FrontEnd, x, *, threads=None) -> torch.Tensor:
    """Runs the front end `spec` on the waveform batch `x` (a tensor, or anything
    torch.as_tensor takes) with the fused kernel of x's device; differentiable in x."""
    if not isinstance(spec, FrontEnd):
        raise TypeError(f'spec must be a kapre_fast.FrontEnd, got {type(spec).__name__}')
    require_kapre_numerics(spec, 'kapre_fast.torch')
    return _run(_key_of(spec), x, threads)


def _run(key: str, x, threads) -> torch.Tensor:
    audio = as_audio_tensor(x, key)
    # The operators take dense tensors (no copy when audio already is one).
    return torch.ops.kapre_fast.front_end(audio.contiguous(), key, cpu.thread_count(threads))


istft = _api.istft_function(__name__)  # builds the spec, then calls inverse()


def inverse(spec: FrontEnd, X, *, threads=None) -> torch.Tensor:
    """The inverse STFT of X for the forward STFT `spec` (its output layout is X's, its input
    layout the waveform's): what istft computes once it has built `spec`."""
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if not X.is_complex():
        raise TypeError(f'X must be a complex tensor, got dtype {X.dtype}')
    if X.ndim != 4:
        expected = ('(batch, channels, frames, freq)' if spec.output_data_format == 'channels_first'
                    else '(batch, frames, freq, channels)')
        raise ValueError(f'X must have 4 axes {expected} for stft_data_format='
                         f'{spec.output_data_format!r}, got shape {tuple(X.shape)}')
    return torch.ops.kapre_fast.inverse_stft(X.to(torch.complex64).contiguous(),
                                             _inverse_key_of(spec), cpu.thread_count(threads))


def as_audio_tensor(x, key: str) -> torch.Tensor:
    """x as a float32 tensor of 3 axes for the front end of `key`, under every backend's dtype
    policy (spec.check_audio_dtype: real floating point, or integers unscaled as kapre;
    TypeError otherwise)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        check_audio_dtype(np.int64)  # integers: accepted, unscaled
    elif not x.is_floating_point():
        check_audio_dtype(str(x.dtype).removeprefix('torch.'))  # raises TypeError naming it
    if x.ndim != 3:
        _ops.spec_of(key).layout_input(x)  # ValueError naming the axes and the reshape
    return x if x.dtype == torch.float32 else x.to(torch.float32)


class _FrontEndModule(torch.nn.Module):
    """A front end as a module: kapre's keyword arguments (and threads) at construction,
    forward(x) == kapre_fast.torch.<function>(x, **those arguments)."""

    function = ''

    def __init__(self, *, threads=None, **kwargs):
        super().__init__()
        self.spec = getattr(FrontEnd, self.function)(**kwargs)
        self.threads = cpu.thread_count(threads) or None
        self._arguments = kwargs
        self._key = _ops.spec_key(self.spec)

    def forward(self, x):
        return _run(self._key, x, self.threads)

    def extra_repr(self):
        return ', '.join(f'{name}={value!r}' for name, value in self._arguments.items())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kapre = FrontEnd.kapre_signature(cls.function).parameters.values()
        threads = inspect.Parameter('threads', inspect.Parameter.KEYWORD_ONLY, default=None)
        cls.__signature__ = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kapre] + [threads])


class STFTMagnitude(_FrontEndModule):
    """|STFT| (or its dB), as kapre.composed.get_stft_magnitude_layer."""

    function = 'stft_magnitude'


class MelSpectrogram(_FrontEndModule):
    """Mel spectrogram (or its dB), as kapre.composed.get_melspectrogram_layer."""

    function = 'melspectrogram'


class LogFrequencySpectrogram(_FrontEndModule):
    """Log-frequency spectrogram, as kapre.composed.get_log_frequency_spectrogram_layer."""

    function = 'log_frequency_spectrogram'


class STFTMagPhase(_FrontEndModule):
    """[magnitude (or dB), phase] along the channel axis, as kapre.composed.get_stft_mag_phase."""

    function = 'stft_mag_phase'


class STFT(_FrontEndModule):
    """The complex64 STFT, as kapre's STFT layer."""

    function = 'stft'


class InverseSTFT(torch.nn.Module):
    """kapre's InverseSTFT: forward(X) == kapre_fast.torch.istft(X, **arguments)."""

    def __init__(self, n_fft=2048, win_length=None, hop_length=None, forward_window_name=None,
                 stft_data_format='default', waveform_data_format='default', *, threads=None):
        super().__init__()
        self._arguments = dict(n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                               forward_window_name=forward_window_name,
                               stft_data_format=stft_data_format,
                               waveform_data_format=waveform_data_format)
        FrontEnd.inverted_by_istft(n_fft, win_length, hop_length, forward_window_name,
                                   stft_data_format=stft_data_format,
                                   waveform_data_format=waveform_data_format)  # checks them now
        self.threads = cpu.thread_count(threads) or None

    def forward(self, X):
        return istft(X, threads=self.threads, **self._arguments)

    def extra_repr(self):
        return ', '.join(f'{name}={value!r}' for name, value in self._arguments.items())
