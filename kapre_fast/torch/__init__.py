"""kapre_fast for PyTorch: the fused front ends on tensors, without Keras.

    import kapre_fast.torch as kft
    mel = kft.melspectrogram(audio, n_fft=1024, hop_length=256, n_mels=64)   # a torch.Tensor
    layer = kft.MelSpectrogram(n_fft=1024, hop_length=256, n_mels=64)         # a torch.nn.Module

The functions of `kapre_fast.cpu` (kapre's keyword arguments, defaults and layouts; `threads`) on
tensors: CPU tensors run the fused C++ kernel, CUDA tensors the fused CUDA kernel (in a CUDA
build of kapre_fast), both without copying the audio or the result. They are the operators of a
compiled operator library (`torch.ops.kapre_fast.front_end`, `.inverse_stft`;
kapre_fast/torch/_ops.py: on LibTorch's stable ABI, one binary for torch 2.10 and later; the
window and filterbank travel with each call as tensors) with autograd (gradients
with respect to the waveform, and to the complex STFT for `istft`; differentiable again under
create_graph=True) and fake implementations, so `torch.compile(fullgraph=True)` (dynamic shapes
too) and `torch.export` take them whole; an exported program (the tables are its constants)
runs in a fresh process after `import kapre_fast.torch`.

The presets (compat='librosa' / 'torchaudio') run here too: their centring is a torch pad of the
audio (reflect or constant) before the operator, which autograd differentiates; the power
spectrum and the preset's dB reach the kernel as its attributes. `mfcc` and `pcen` take
kapre_fast.cpu's arguments: the DCT of the fused dB mel in torch, and PCEN in torch ops
(differentiable; its smoother kapre_fast._pcen's doubling scan over the frames).

The Backend protocol of kapre_fast._backends (registry name 'torch', what the Keras layers call
under KERAS_BACKEND=torch): compute(spec, x), inverse(spec, X), compute_mfcc(spec, matrix, x),
apply_pcen(mel, constants, time_axis), and recompute(spec, x) / recompute_inverse(spec, X), the
same values from the pipeline autograd's backward differentiates, in torch ops.

Needs torch 2.10 or later (the release the operator library targets, checked at import by
kapre_fast._loader.torch_ops with an ImportError that says what to do); `import kapre_fast` alone
never imports it.
"""

from __future__ import annotations

import functools
import inspect
import itertools

import numpy as np

from kapre_fast import _loader

try:
    import torch
except ImportError as _error:
    raise ImportError(
        f'kapre_fast.torch needs PyTorch: `{_loader.pip_install_hint("torch")}` '
        f'(importing torch failed: {_error})'
    ) from _error

import torch.nn.functional as F  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402

from kapre_fast import _api, _pcen, _weights, cpu  # noqa: E402
from kapre_fast.spec import FrontEnd, check_audio_dtype, front_end_of  # noqa: E402
from kapre_fast.torch import _ops  # noqa: E402  (registers the operators)

# The operators' overloads themselves: a call skips the overload packet's resolution.
_FRONT_END = torch.ops.kapre_fast.front_end.default
_INVERSE_STFT = torch.ops.kapre_fast.inverse_stft.default

__all__ = [
    'compute',
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
    'istft',
    'inverse',
    'mfcc',
    'pcen',
    'apply_pcen',
    'compute_mfcc',
    'recompute',
    'recompute_inverse',
    'STFTMagnitude',
    'MelSpectrogram',
    'LogFrequencySpectrogram',
    'STFTMagPhase',
    'STFT',
    'InverseSTFT',
    'MFCC',
    'PCEN',
]


def _front_end_function(template):
    """kapre_fast.torch.<name>: `template`'s signature and docstring (kapre_fast._api), with the
    spec resolved outside torch.compile's tracing (_plan_of_arguments)."""

    @functools.wraps(template)
    def function(x, **kwargs):
        threads = kwargs.pop('threads', None)
        plan = _plan_of_arguments(template.__name__, tuple(sorted(kwargs.items())))
        return _run(plan, x, threads)

    return function


# kapre's keyword arguments plus threads, signatures and docstrings: kapre_fast._api.
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = map(
    _front_end_function, _api.front_end_functions(__name__)
)


class _Slots:
    """What the operators take beside the audio, per plan: attribute `s<slot>` holds (operator
    arguments, spec). A plan names its slot rather than holding the tensors, so torch.compile
    reads them as attributes of this module's _SLOTS, each when first needed (tensors with a
    source: the compiled program's constants, guarded, never symbolic; a list would be read
    whole, before a plan made during the trace adds its entry)."""


_SLOTS = _Slots()
_SLOT_NUMBERS = itertools.count()  # next() is atomic: threads making plans get distinct slots


def _slot(entry: tuple) -> str:
    name = f's{next(_SLOT_NUMBERS)}'
    setattr(_SLOTS, name, entry)
    return name


@functools.lru_cache(maxsize=None)
def _plan(spec: FrontEnd) -> tuple:
    """(slot, centring pad, pad_mode, time axis): the operator runs the spec without its
    centring (spec.without_centring), which _run applies first as a torch pad; its arguments
    (the window and bands as tensors, then the kernel's scalars: _ops.front_end_arguments) are
    made once per spec, in _SLOTS with the spec."""
    arguments = _ops.front_end_arguments(spec.without_centring())
    return (
        _slot((arguments, spec)),
        spec.center_padding,
        spec.pad_mode or 'constant',
        _weights.time_axis(spec),
    )


@functools.lru_cache(maxsize=None)
def _inverse_plan(arguments: tuple) -> tuple:
    """(slot, STFT layout) of kapre's InverseSTFT `arguments`, its operator arguments
    (_ops.inverse_stft_arguments) in _SLOTS."""
    spec = FrontEnd.inverted_by_istft(**dict(arguments))
    return _slot((_ops.inverse_stft_arguments(spec), spec)), spec.output_data_format


@torch.compiler.assume_constant_result
def _plan_of_arguments(function: str, arguments: tuple) -> tuple:
    # FrontEnd's validation is plain Python that torch.compile cannot trace (and need not: the
    # spec is a constant of the compiled program); TypeError/ValueError name bad arguments.
    return _plan(front_end_of(function, dict(arguments)))


@torch.compiler.assume_constant_result
def _plan_of(spec: FrontEnd) -> tuple:
    return _plan(spec)


@torch.compiler.assume_constant_result
def _inverse_plan_of(arguments: tuple) -> tuple:
    # (operator arguments, STFT layout) from kapre's InverseSTFT arguments, not from a spec: a
    # spec built inside traced code is traced (FrontEnd's validation fails under dynamic=True),
    # and dynamo hands such an object to a constant function wrongly (n_fft=2048 seen).
    return _inverse_plan(arguments)


def compute(spec: FrontEnd, x, *, threads=None) -> torch.Tensor:
    """Runs the front end `spec` on the waveform batch `x` (a tensor, or anything
    torch.as_tensor takes) with the fused kernel of x's device; differentiable in x."""
    if not isinstance(spec, FrontEnd):
        raise TypeError(f'spec must be a kapre_fast.FrontEnd, got {type(spec).__name__}')
    return _run(_plan_of(spec), x, threads)


def _run(plan: tuple, x, threads) -> torch.Tensor:
    slot, pad, pad_mode, axis = plan
    arguments, spec = getattr(_SLOTS, slot)
    audio = as_audio_tensor(x, spec)
    if not torch.compiler.is_compiling():
        # ValueError naming the lengths in the spec's terms (a preset's n_fft and centring).
        spec.n_frames(audio.shape[axis])
    elif pad and pad_mode == 'reflect':
        # A symbolic length: torch's own check, kept as a runtime assert by the compiled program
        # (the operator checks the frame count itself; the mirrored pad would fail in indexing).
        torch._check(
            audio.shape[axis] > pad,
            lambda: (
                f"audio is too short for pad_mode='reflect': it pads n_fft // 2 = {pad} samples "
                f'mirrored from inside the audio, which needs more than {pad} samples'
            ),
        )
    if pad:
        audio = _weights.centred(spec, audio, _pad)
    if type(audio) is not torch.Tensor or torch.compiler.is_compiling():
        arguments = _tables_like(audio, arguments)
    # The operators take dense tensors (no copy when audio already is one).
    return _call(_FRONT_END, audio.contiguous(), arguments, threads)


def _call(operator, x, arguments: tuple, threads):
    """operator(x, *arguments, threads). Where no gradient can be recorded (grad mode off, or x
    a plain tensor that does not require one, outside torch.compile/export, forward AD and
    torch.func's transforms), the call skips the autograd kernel that
    torch.library.register_autograd put in Python (~12 us a call, most of the eager overhead
    above kapre_fast.cpu), as torch.autograd.Function's forward runs below autograd too."""
    threads = cpu.thread_count(threads)
    if forward_ad._current_level >= 0 and forward_ad.unpack_dual(x).tangent is not None:
        # The operators have a backward (the composition's VJP) but no forward-mode formula:
        # torch would return the result without a tangent.
        raise RuntimeError(
            'kapre_fast.torch has no forward-mode AD (torch.autograd.forward_ad, torch.func.jvp):'
            ' use reverse mode (backward, torch.autograd.grad, torch.func.vjp)'
        )
    if (
        type(x) is torch.Tensor
        and not (x.requires_grad and torch.is_grad_enabled())
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
        and forward_ad._current_level < 0
        and not torch._C._are_functorch_transforms_active()
    ):
        with torch._C._AutoDispatchBelowAutograd():
            return operator(x, *arguments, threads)
    return operator(x, *arguments, threads)


def recompute(spec: FrontEnd, x) -> torch.Tensor:
    """compute's values from torch ops (kapre_fast._composition's pipeline over the operator's
    own arguments, the one autograd's backward differentiates), run forward: differentiable,
    without the operator."""
    if not isinstance(spec, FrontEnd):
        raise TypeError(f'spec must be a kapre_fast.FrontEnd, got {type(spec).__name__}')
    slot, pad, pad_mode, axis = _plan_of(spec)
    arguments, spec = getattr(_SLOTS, slot)
    audio = as_audio_tensor(x, spec)
    spec.n_frames(audio.shape[axis])  # the ValueError compute raises for too-short audio
    if pad:
        audio = _weights.centred(spec, audio, _pad)
    return _ops.front_end_composition(audio, *arguments)


def _tables_like(x, arguments: tuple) -> tuple:
    """The operator arguments for x, which is not a plain tensor: under torch.compile or
    torch.export, with empty tables made in the graph (_ops.traced); for a fake tensor of a
    user's FakeTensorMode (which allows no real tensor as an input), with the tables as its fake
    tensors; else unchanged."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return _ops.traced(arguments)
    mode = getattr(x, 'fake_mode', None)
    if mode is None:
        return arguments
    return tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in arguments)


def _pad(audio: torch.Tensor, widths, mode: str):
    """np.pad's signature for _weights.centred's one padded axis: zeros ('constant', F.pad)
    or mirrored samples without the edge ('reflect', one index_select, for either layout)."""
    axis = next(i for i, width in enumerate(widths) if tuple(width) != (0, 0))
    before, after = widths[axis]
    if mode == 'constant':
        return F.pad(audio, (before, after) if axis == audio.dim() - 1 else (0, 0, before, after))
    time = audio.shape[axis]
    index = torch.arange(-before, time + after, device=audio.device).abs()
    return audio.index_select(axis, (time - 1) - ((time - 1) - index).abs())


def _inverse_of_arguments(arguments: tuple, X, *, threads=None) -> torch.Tensor:
    return _inverse(_inverse_plan_of(arguments), X, threads)


# kapre's InverseSTFT arguments, the spec built from them outside torch.compile's tracing.
istft = _api.istft_function(__name__, _inverse_of_arguments)
# kapre_fast.cpu's signatures; mfcc calls compute_mfcc, pcen melspectrogram then apply_pcen.
mfcc = _api.mfcc_function(__name__)
pcen = _api.pcen_function(__name__)


_DCT: dict = {}  # CUDA copies of the DCT matrices by (bytes, shape, device), kept for good


def _dct_on(matrix, device) -> torch.Tensor:
    """The float32 DCT matrix on `device`; on a GPU uploaded once (from pinned memory, without a
    stream sync) and kept, so a call copies nothing and a captured CUDA graph never reads freed
    memory. Until the copy is known to be done, each call's stream waits on its event (the host
    does inside a capture). RuntimeError for a first use inside a graph capture."""
    host = torch.as_tensor(np.array(matrix, dtype=np.float32))
    if device.type != 'cuda':
        return host.to(device)
    key = (host.numpy().tobytes(), tuple(host.shape), device.index)
    with torch.cuda.device(device):
        stream = torch.cuda.current_stream()
        capturing = torch.cuda.is_current_stream_capturing()
        entry = _DCT.get(key)
        if entry is None:
            if capturing:
                raise RuntimeError(
                    'kapre_fast: the first mfcc call with this DCT on this GPU '
                    'is inside a CUDA graph capture, where the matrix cannot be '
                    'uploaded: call it once before capturing'
                )
            copied = torch.cuda.Event()
            entry = [host.pin_memory().to(device, non_blocking=True), copied]
            copied.record(stream)
            entry = _DCT.setdefault(key, entry)
        done = entry[1]
        if done is not None:
            if done.query():
                entry[1] = None
            elif capturing:
                done.synchronize()
                entry[1] = None
            else:
                stream.wait_event(done)
    return entry[0]


def compute_mfcc(spec: FrontEnd, matrix, x, *, threads=None) -> torch.Tensor:
    """MFCCs: the fused dB mel spectrogram `spec` times `matrix` (spec.mfcc_matrix, float64
    (n_mels, n_mfcc)) in torch after the per-example clamp; differentiable in x."""
    mel = compute(spec, x, threads=threads)
    dct = _dct_on(matrix, mel.device)
    if spec.output_data_format == 'channels_last':  # (batch, frames, n_mels, channels)
        return torch.einsum('bfmc,mk->bfkc', mel, dct)
    return mel @ dct


def apply_pcen(mel, constants, time_axis: int, *, threads=None) -> torch.Tensor:
    """librosa.pcen (kapre_fast.reference.apply_pcen) of a 4-D filterbank output along
    `time_axis` (1: channels_last, 2: channels_first) in torch ops, differentiable (threads:
    accepted for kapre_fast.cpu's signature; torch's own threads run it)."""
    if time_axis not in (1, 2):
        raise ValueError(
            f'time_axis must be 1 (channels_last) or 2 (channels_first), got {time_axis!r}'
        )
    cpu.thread_count(threads)
    # The smoother as kapre_fast._pcen's doubling scan (torch has NumPy's names for it; the
    # Keras PCEN layer's under PyTorch).
    return _pcen.apply(torch, mel, constants, time_axis)


def inverse(spec: FrontEnd, X, *, threads=None) -> torch.Tensor:
    """The inverse STFT of X for the forward STFT `spec` (its output layout is X's, its input
    layout the waveform's): what istft computes once it has built `spec`."""
    return _inverse(_inverse_plan_of(tuple(spec.istft_arguments().items())), X, threads)


def recompute_inverse(spec: FrontEnd, X) -> torch.Tensor:
    """inverse's values from torch ops (kapre_fast._composition's inverse STFT over the
    operator's own arguments), run forward: differentiable, without the operator."""
    slot, stft_data_format = _inverse_plan_of(tuple(spec.istft_arguments().items()))
    X = _stft_tensor(X, stft_data_format)
    return _ops.inverse_stft_composition(X.to(torch.complex64), *getattr(_SLOTS, slot)[0])


def _inverse(plan: tuple, X, threads) -> torch.Tensor:
    slot, stft_data_format = plan
    arguments = getattr(_SLOTS, slot)[0]
    X = _stft_tensor(X, stft_data_format)
    if type(X) is not torch.Tensor or torch.compiler.is_compiling():
        arguments = _tables_like(X, arguments)
    return _call(_INVERSE_STFT, X.to(torch.complex64).contiguous(), arguments, threads)


def _stft_tensor(X, stft_data_format: str) -> torch.Tensor:
    """X as a tensor; TypeError unless complex, ValueError naming the layout unless 4-D."""
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if not X.is_complex():
        raise TypeError(f'X must be a complex tensor, got dtype {X.dtype}')
    if X.ndim != 4:
        expected = (
            '(batch, channels, frames, freq)'
            if stft_data_format == 'channels_first'
            else '(batch, frames, freq, channels)'
        )
        raise ValueError(
            f'X must have 4 axes {expected} for stft_data_format='
            f'{stft_data_format!r}, got shape {tuple(X.shape)}'
        )
    return X


def as_audio_tensor(x, spec: FrontEnd) -> torch.Tensor:
    """x as a float32 tensor of 3 axes for the front end `spec`, under every backend's dtype
    policy (spec.check_audio_dtype: real floating point, or integers unscaled as kapre;
    TypeError otherwise)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        check_audio_dtype(np.int64)  # integers: accepted, unscaled
    elif not x.is_floating_point():
        check_audio_dtype(str(x.dtype).removeprefix('torch.'))  # raises TypeError naming it
    if x.ndim != 3:
        spec.layout_input(x)  # ValueError naming the axes and the reshape
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
        self._plan = _plan(self.spec)

    def forward(self, x):
        return _run(self._plan, x, self.threads)

    def __setstate__(self, state):
        # A plan names a slot of this process: an unpickled module (torch.load, copy.deepcopy)
        # makes its own.
        super().__setstate__(state)
        self._plan = _plan(self.spec)

    def extra_repr(self):
        return ', '.join(f'{name}={value!r}' for name, value in self._arguments.items())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kapre = FrontEnd.kapre_signature(cls.function).parameters.values()
        presets = FrontEnd.preset_signature().parameters.values()
        threads = inspect.Parameter('threads', inspect.Parameter.KEYWORD_ONLY, default=None)
        cls.__signature__ = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kapre]
            + list(presets)
            + [threads]
        )


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

    def __init__(
        self,
        n_fft=2048,
        win_length=None,
        hop_length=None,
        forward_window_name=None,
        stft_data_format='default',
        waveform_data_format='default',
        *,
        threads=None,
    ):
        super().__init__()
        self._arguments = dict(
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            forward_window_name=forward_window_name,
            stft_data_format=stft_data_format,
            waveform_data_format=waveform_data_format,
        )
        FrontEnd.inverted_by_istft(
            n_fft,
            win_length,
            hop_length,
            forward_window_name,
            stft_data_format=stft_data_format,
            waveform_data_format=waveform_data_format,
        )  # checks them now
        self.threads = cpu.thread_count(threads) or None

    def forward(self, X):
        return istft(X, threads=self.threads, **self._arguments)

    def extra_repr(self):
        return ', '.join(f'{name}={value!r}' for name, value in self._arguments.items())


class _FunctionModule(torch.nn.Module):
    """forward(x) == kapre_fast.torch.<function>(x, **the arguments given at construction)."""

    function = None

    def __init__(self, **kwargs):
        super().__init__()
        self._arguments = kwargs

    def forward(self, x):
        return type(self).function(x, **self._arguments)

    def extra_repr(self):
        return ', '.join(f'{name}={value!r}' for name, value in self._arguments.items())


class MFCC(_FunctionModule):
    """MFCCs as a module: kapre_fast.torch.mfcc's keyword arguments at construction."""

    function = staticmethod(mfcc)


class PCEN(_FunctionModule):
    """PCEN of the mel spectrogram as a module: kapre_fast.torch.pcen's keyword arguments at
    construction."""

    function = staticmethod(pcen)
