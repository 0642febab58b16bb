"""The fused front ends as PyTorch operators: a torch.library extension in C++ (csrc/torch).

    kapre_fast::front_end(Tensor audio, str spec, int threads) -> Tensor
    kapre_fast::inverse_stft(Tensor stft, str spec, int threads) -> Tensor

The compiled library kapre_fast/_torch_ops.so defines them (TORCH_LIBRARY) with a CPU kernel
over the same C++ core as kapre_fast.cpu and, in builds with the CUDA kernels, a CUDA kernel over
the same kernels as kapre_fast.gpu, on torch's current stream. Both work on the tensors' own
memory: no copy in (contiguous float32 / complex64 inputs) or out (torch allocates the result).

`spec` is a FrontEnd's canonical JSON (a string constant to torch.compile), `threads` 0 for every
core. torch.library schemas have no array attributes, so the window and filterbank are handed to
the library once per front end, eagerly (spec_key / inverse_key call kapre_fast::define_front_end
/ define_inverse_stft, outside any tracing); the operators then find them by that key
(csrc/torch/definitions.h). A key the library does not know yet (a torch.export program loaded
in a fresh process) is defined from the key itself: the kernels call kapre_fast::define_from_key,
whose kernel is _define_from_key here. Also here, in Python over the C++-defined operators: the
fake (meta) implementations, so torch.compile(fullgraph=True) and torch.export trace through
them, which get the kernels' own checks and result shapes from kapre_fast::front_end_shape /
inverse_stft_shape for concrete sizes; and the autograd formulas: the backward pass recomputes
the pipeline in differentiable torch ops (_composition.py) and takes its vector-Jacobian product,
as the TensorFlow ops' gradients do, differentiably under create_graph (double backward).

Another torch: the library is a C++ extension of the torch it was compiled beside (its C++ ABI;
_build_info.json records that version). Importing this module under another torch release, or
with a kapre_fast built without torch, raises ImportError naming both versions and how to
rebuild. There is no Python fallback on purpose: a second implementation of the operators would
be a second code path to keep bit-identical with the kernels, and it would run silently slower.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import _disable_current_modes

from kapre_fast import _loader, _weights
from kapre_fast.spec import FrontEnd
from kapre_fast.torch import _composition

LIBRARY_NAME = '_torch_ops.so'


def _release(version: str) -> str:
    """'2.13.0' of '2.13.0+cpu': CPU and CUDA builds of one release share the C++ ABI."""
    return version.split('+')[0]


def check_build(built_for: str, installed: str) -> None:
    """ImportError unless the library was built (for torch `built_for`, '' when not at all) for
    the `installed` torch release."""
    rebuild = (
        'reinstall kapre_fast with `pip install --no-build-isolation .` (or `make install`)'
        ' in this environment'
    )
    if not built_for:
        raise ImportError(
            'kapre_fast was built without its PyTorch operators (torch was not importable at '
            f'build time). Install torch first (`{_loader.pip_install_hint("torch")}`), then '
            f'{rebuild}.'
        )
    if _release(built_for) != _release(installed):
        raise ImportError(
            f"kapre_fast's PyTorch operators were built for torch {built_for} but torch "
            f'{installed} is installed; a C++ extension only loads in the torch release it was '
            f'built against. Install torch=={_release(built_for)}, or {rebuild}.'
        )


def load_library() -> Path:
    """Loads kapre_fast/_torch_ops.so into torch (the operators' schemas and kernels) after the
    build checks; its real path (a source checkout links the installed one, link_build.py)."""
    shadowed = _loader.source_checkout_note()
    if shadowed:
        raise ImportError(f"kapre_fast's PyTorch operators are missing: {shadowed}")
    check_build(_loader.build_info().get('torch', ''), torch.__version__)
    path = Path(__file__).resolve().parent.parent / LIBRARY_NAME
    if not path.exists():
        raise ImportError(f"kapre_fast's PyTorch operator library is missing at {path}")
    torch.ops.load_library(str(path.resolve()))
    return path.resolve()


LIBRARY = load_library()


def _canonical(spec: FrontEnd) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def spec_key(spec: FrontEnd) -> str:
    """The canonical JSON of a FrontEnd (its resolved fields), as kapre_fast::front_end takes it;
    defines the front end in the library the first time (ValueError naming a bad attribute)."""
    key = _canonical(spec)
    _define_front_end(key)
    return key


def inverse_key(spec: FrontEnd) -> str:
    """The key of the inverse STFT of `spec` (a forward STFT), as kapre_fast::inverse_stft
    takes it; defines it the first time."""
    key = _canonical(spec)
    _define_inverse_stft(key)
    return key


@functools.lru_cache(maxsize=256)
def spec_of(key: str) -> FrontEnd:
    return FrontEnd(**json.loads(key))


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a writeable copy: the weights' cache is read-only


# The library keeps every definition for the life of the process, so each key is defined once.
# The tables are real CPU tensors even when the first call comes under a tensor mode
# (FakeTensorMode, torch.compile's tracing): the active modes are suspended while defining.
@functools.lru_cache(maxsize=None)
def _define_front_end(key: str) -> None:
    spec = spec_of(key)
    with _disable_current_modes():
        _define_front_end_now(key, spec)


def _define_front_end_now(key: str, spec: FrontEnd) -> None:
    start, length, weights = _weights.bands(spec)
    torch.ops.kapre_fast.define_front_end(
        key,
        _tensor(_weights.window(spec)),
        _tensor(start),
        _tensor(length),
        _tensor(weights),
        output=_weights.OUTPUT_CODES[spec.output],
        input_channels_first=spec.input_data_format == 'channels_first',
        output_channels_first=spec.output_data_format == 'channels_first',
        **_weights.kernel_attributes(spec),
    )


@functools.lru_cache(maxsize=None)
def _define_inverse_stft(key: str) -> None:
    # The STFT kapre's InverseSTFT inverts, rebuilt from its arguments as kapre_fast.cpu.istft
    # does: its synthesis window and sizes.
    spec = FrontEnd.inverted_by_istft(**spec_of(key).istft_arguments())
    with _disable_current_modes():
        torch.ops.kapre_fast.define_inverse_stft(
            key,
            _tensor(_weights.inverse_window(spec)),
            n_fft=spec.n_fft,
            win_length=spec.win_length,
            hop_length=spec.hop_length,
            input_channels_first=spec.output_data_format == 'channels_first',
            output_channels_first=spec.input_data_format == 'channels_first',
        )


def _define_from_key(spec: str, inverse: bool) -> bool:
    """kapre_fast::define_from_key, which the kernels call on a key the library has no
    definition for (a torch.export program loaded in a fresh process names its front ends by key
    only): defines it when `spec` is a FrontEnd's canonical JSON, as spec_key / inverse_key make
    them (the key is the whole spec); False for any other string."""
    try:
        front = spec_of(spec)
    except (TypeError, ValueError):  # not JSON, not an object, or not a valid FrontEnd
        return False
    if _canonical(front) != spec:
        return False
    (_define_inverse_stft if inverse else _define_front_end)(spec)
    return True


_IMPLEMENTATIONS = torch.library.Library('kapre_fast', 'IMPL')
_IMPLEMENTATIONS.impl('define_from_key', _define_from_key, 'CompositeExplicitAutograd')


def _checked_shape(shape_op, tensor, spec, threads):
    """What shape_op (kapre_fast::front_end_shape: (shape, complex); inverse_stft_shape: shape)
    says of `tensor` (meta or fake) if every size, stride and `threads` is concrete: the result
    the kernel would give, after the kernels' own checks (the same ValueError/TypeError). None
    when some are symbolic (torch.compile's dynamic shapes; the compiled program's kernel checks
    the real sizes)."""
    concrete = [*tensor.shape, *tensor.stride(), threads]
    if not all(isinstance(value, int) for value in concrete):
        return None
    with _disable_current_modes():  # plain integers to a plain operator
        return shape_op(
            spec,
            list(tensor.shape),
            list(tensor.stride()),
            tensor.is_contiguous(),
            tensor.dtype,
            threads,
        )


@torch.library.register_fake('kapre_fast::front_end')
def _front_end_fake(audio, spec, threads):
    checked = _checked_shape(torch.ops.kapre_fast.front_end_shape, audio, spec, threads)
    if checked is not None:
        shape, complex_result = checked
        return audio.new_empty(shape, dtype=torch.complex64 if complex_result else torch.float32)
    # Symbolic sizes: the kernels' shape formula (check_front_end_audio) on them.
    front = spec_of(spec)
    dtype = torch.complex64 if front.output == 'complex' else torch.float32
    channels_last = front.input_data_format == 'channels_last'
    batch = audio.shape[0]
    channels, time = (audio.shape[2], audio.shape[1]) if channels_last else audio.shape[1:]
    total = time + front.pad_begin_length
    hop = front.hop_length
    frame = front.frame_length
    frames = (total + hop - 1) // hop if front.pad_end else 1 + (total - frame) // hop
    if front.output == 'mag_phase':
        channels = 2 * channels
    shape = (
        (batch, frames, front.n_features, channels)
        if front.output_data_format == 'channels_last'
        else (batch, channels, frames, front.n_features)
    )
    return audio.new_empty(shape, dtype=dtype)


def _save_input(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.spec = inputs[1]


def _vjp(recompute):
    """The backward of an operator whose forward `recompute(spec, input)` reproduces in torch
    ops: the gradient of the input only (spec and threads get None).

    Under create_graph (autograd runs the backward with grad mode on: a gradient penalty,
    higher-order gradients) the recomputation starts from the saved input itself and the
    vector-Jacobian product is taken with create_graph, so the gradient is a differentiable
    function of both the input and `grad`, as torch.stft's would be. Otherwise no graph is kept:
    the recomputation starts from a detached copy."""

    def backward(ctx, grad):
        (source,) = ctx.saved_tensors
        spec = spec_of(ctx.spec)
        if torch.is_grad_enabled():
            output = recompute(spec, source)
            (gradient,) = torch.autograd.grad(output, source, grad, create_graph=True)
            return gradient, None, None
        with torch.enable_grad():
            watched = source.detach().requires_grad_(True)
            output = recompute(spec, watched)
            (gradient,) = torch.autograd.grad(output, watched, grad)
        return gradient, None, None

    return backward


torch.library.register_autograd(
    'kapre_fast::front_end', _vjp(_composition.front_end), setup_context=_save_input
)


@torch.library.register_fake('kapre_fast::inverse_stft')
def _inverse_stft_fake(stft, spec, threads):
    shape = _checked_shape(torch.ops.kapre_fast.inverse_stft_shape, stft, spec, threads)
    if shape is not None:
        return stft.new_empty(shape, dtype=torch.float32)
    # Symbolic sizes: the kernels' shape formula (check_inverse_stft_input) on them.
    front = spec_of(spec)
    if front.output_data_format == 'channels_last':
        batch, frames, _, channels = stft.shape
    else:
        batch, channels, frames, _ = stft.shape
    length = (frames - 1) * front.hop_length + front.win_length
    shape = (
        (batch, length, channels)
        if front.input_data_format == 'channels_last'
        else (batch, channels, length)
    )
    return stft.new_empty(shape, dtype=torch.float32)


torch.library.register_autograd(
    'kapre_fast::inverse_stft', _vjp(_composition.inverse_stft), setup_context=_save_input
)
