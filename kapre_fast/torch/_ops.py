"""The fused front ends as PyTorch operators: a C++ operator library on LibTorch's stable ABI
(csrc/torch).

    kapre_fast::front_end(Tensor audio, Tensor window, Tensor band_start, Tensor band_length,
                          Tensor band_weights, int n_fft, ..., int threads) -> Tensor
    kapre_fast::inverse_stft(Tensor stft, Tensor window, int n_fft, ..., int threads) -> Tensor

The compiled library kapre_fast/_torch_ops.so defines them (STABLE_TORCH_LIBRARY) with a CPU
kernel over the same C++ core as kapre_fast.cpu and, in builds with the CUDA kernels, a CUDA
kernel over the same kernels as kapre_fast.gpu, on torch's current stream. Both work on the
tensors' own memory: no copy in (contiguous float32 / complex64 inputs) or out (torch allocates
the result). Built against the stable ABI for the lowest torch it supports, the one binary loads
in that torch and every later one (kapre_fast._loader.torch_ops checks the release).

Each call carries everything the kernel needs, as the JAX and TF bindings do: the window and the
filterbank's bands as 1-D CPU tensors (float32 window and weights, int32 band starts and
lengths), then the kernel-call contract's scalar arguments (kapre_fast._kernel_args: its names in
its order, FRONT_END_SCALARS; the inverse STFT: INVERSE_STFT_SCALARS after its synthesis
window), then `threads` (0 for every core). front_end_arguments
/ inverse_stft_arguments build them once per spec; nothing is kept in the library between calls,
so a torch.export program holds the tables as its constants and runs in a fresh process.

Also here, in Python over the C++-defined operators: the fake (meta) implementations, so
torch.compile(fullgraph=True) and torch.export trace through them, which get the kernels' own
checks and result shapes from kapre_fast::front_end_shape / inverse_stft_shape for concrete sizes
(on meta tensors: everything but what only the bands' values decide); and the autograd formulas:
the backward pass recomputes the front end in differentiable torch ops from the operator's own
arguments (front_end_composition, inverse_stft_composition: kapre_fast._composition's one
pipeline over torch's adapter, the tables tensors there, real or traced) and takes its
vector-Jacobian product, as the TensorFlow ops' gradients do,
differentiably under create_graph (double backward).

There is no Python fallback on purpose: a second implementation of the forward operators would be
a second code path to keep bit-identical with the kernels, and it would run silently slower.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import _disable_current_modes

from kapre_fast import _composition, _kernel_args, _loader, _weights
from kapre_fast.spec import FrontEnd
from kapre_fast.torch import _composition as _torch_composition

# The operators' scalar arguments after their tensors, in the schemas' order: front_end's are
# the kernel-call contract's (csrc/core/kernel_args.h), inverse_stft's csrc/torch/tensor_args.h's
# KF_TORCH_INVERSE_STFT_SCALARS.
FRONT_END_SCALARS = _kernel_args.NAMES
INVERSE_STFT_SCALARS = (
    'n_fft',
    'win_length',
    'hop_length',
    'input_channels_first',
    'output_channels_first',
)
_COMPLEX = _kernel_args.OUTPUT_CODES['complex']
_MAG_PHASE = _kernel_args.OUTPUT_CODES['mag_phase']

LIBRARY: Path = _loader.torch_ops()


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a writeable copy: the weights' cache is read-only


def traced(arguments: tuple) -> tuple:
    """The operator arguments for a traced call (torch.compile, torch.export): empty tables (no
    filterbank) made in the graph rather than held as the program's constants (torch.export
    files constants by storage, and empty tensors share the null one: saving fails)."""
    return tuple(
        torch.empty(0, dtype=value.dtype)
        if isinstance(value, torch.Tensor) and value.numel() == 0
        else value
        for value in arguments
    )


# The tables are real CPU tensors even when the first call comes under a tensor mode
# (FakeTensorMode, torch.compile's tracing): the active modes are suspended while making them.
@functools.lru_cache(maxsize=256)
def front_end_arguments(spec: FrontEnd) -> tuple:
    """kapre_fast::front_end's arguments between the audio and `threads` for `spec` (a spec
    without centring: kapre_fast.torch pads first): (window, band_start, band_length,
    band_weights, *the kernel arguments of _kernel_args.of(spec)). Cached per spec."""
    start, length, weights = _weights.bands(spec)
    with _disable_current_modes():
        tables = tuple(map(_tensor, (_weights.window(spec), start, length, weights)))
    return tables + tuple(_kernel_args.of(spec).asdict().values())


@functools.lru_cache(maxsize=256)
def inverse_stft_arguments(spec: FrontEnd) -> tuple:
    """kapre_fast::inverse_stft's arguments between the STFT and `threads` for the inverse of
    the forward STFT `spec`: (synthesis window, *INVERSE_STFT_SCALARS). Cached per spec."""
    # The STFT kapre's InverseSTFT inverts, rebuilt from its arguments as kapre_fast.cpu.istft
    # does: its synthesis window and sizes.
    inverse = FrontEnd.inverted_by_istft(**spec.istft_arguments())
    scalars = dict(
        n_fft=inverse.n_fft,
        win_length=inverse.win_length,
        hop_length=inverse.hop_length,
        input_channels_first=inverse.output_data_format == 'channels_first',
        output_channels_first=inverse.input_data_format == 'channels_first',
    )
    with _disable_current_modes():
        window = _tensor(_weights.inverse_window(inverse))
    return (window,) + tuple(scalars[name] for name in INVERSE_STFT_SCALARS)


def _meta(tensor: torch.Tensor) -> torch.Tensor:
    return torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device='meta')


def _checked_shape(shape_op, tensors, rest):
    """What shape_op (kapre_fast::front_end_shape: (shape, complex); inverse_stft_shape: shape)
    says of `tensors` (meta or fake) and the scalar arguments `rest` if every size, stride and
    scalar is concrete: the result the kernel would give, after the kernels' own checks (the
    same ValueError). None when some are symbolic (torch.compile's dynamic shapes; the compiled
    program's kernel checks the real sizes)."""
    concrete = [value for tensor in tensors for value in (*tensor.shape, *tensor.stride())]
    if not all(isinstance(value, (int, float, bool)) for value in [*concrete, *rest]):
        return None
    with _disable_current_modes():  # meta tensors and plain numbers to a plain operator
        return shape_op(*map(_meta, tensors), *rest)


def _frame_count(time, pad_begin, pad_end, win_length, hop_length):
    # The kernels' frame count (check_front_end_audio) on symbolic sizes.
    total = time + pad_begin
    return (
        (total + hop_length - 1) // hop_length
        if pad_end
        else 1 + (total - win_length) // hop_length
    )


@torch.library.register_fake('kapre_fast::front_end')
def _front_end_fake(audio, window, band_start, band_length, band_weights, *rest):
    tables = (window, band_start, band_length, band_weights)
    checked = _checked_shape(torch.ops.kapre_fast.front_end_shape, (audio, *tables), rest)
    if checked is not None:
        shape, complex_result = checked
        return audio.new_empty(shape, dtype=torch.complex64 if complex_result else torch.float32)
    # Symbolic sizes: the kernels' shape formula (check_front_end_audio) on them.
    s = dict(zip(FRONT_END_SCALARS, rest))
    batch = audio.shape[0]
    if s['input_channels_first']:
        channels, time = audio.shape[1:]
    else:
        time, channels = audio.shape[1:]
    frames = _frame_count(time, s['pad_begin'], s['pad_end'], s['win_length'], s['hop_length'])
    features = band_start.shape[0] or s['n_fft'] // 2 + 1
    if s['output'] == _MAG_PHASE:
        channels = 2 * channels
    shape = (
        (batch, channels, frames, features)
        if s['output_channels_first']
        else (batch, frames, features, channels)
    )
    return audio.new_empty(
        shape, dtype=torch.complex64 if s['output'] == _COMPLEX else torch.float32
    )


@torch.library.register_fake('kapre_fast::inverse_stft')
def _inverse_stft_fake(stft, window, *rest):
    shape = _checked_shape(torch.ops.kapre_fast.inverse_stft_shape, (stft, window), rest)
    if shape is not None:
        return stft.new_empty(shape, dtype=torch.float32)
    # Symbolic sizes: the kernels' shape formula (check_inverse_stft_input) on them.
    s = dict(zip(INVERSE_STFT_SCALARS, rest))
    if s['input_channels_first']:
        batch, channels, frames, _ = stft.shape
    else:
        batch, frames, _, channels = stft.shape
    length = (frames - 1) * s['hop_length'] + s['win_length']
    shape = (batch, channels, length) if s['output_channels_first'] else (batch, length, channels)
    return stft.new_empty(shape, dtype=torch.float32)


# ----- the backward: the operators recomputed in differentiable torch ops --------------------


def _dense_filterbank(band_start, band_length, band_weights, n_freq, like):
    """The (n_freq, n_bands) matrix of the bands (band j: band_weights[offset_j : offset_j +
    band_length[j]] at bins band_start[j]...), on like's device and dtype; works on traced
    (fake) tables too (no value is read on the host)."""
    n_bands, n_weights = band_start.shape[0], band_weights.shape[0]
    length = band_length.long()
    band = torch.repeat_interleave(torch.arange(n_bands), length, output_size=n_weights)
    offset = torch.cumsum(length, 0) - length
    bins = band_start.long()[band] + torch.arange(n_weights) - offset[band]
    dense = torch.zeros(n_freq, n_bands, dtype=like.dtype, device=like.device)
    index = (bins.to(like.device), band.to(like.device))
    return dense.index_put(index, band_weights.to(like.device, like.dtype))


def _layout(channels_first: bool) -> str:
    return 'channels_first' if channels_first else 'channels_last'


_OUTPUT_NAMES = {code: name for name, code in _kernel_args.OUTPUT_CODES.items()}


def front_end_composition(audio, window, band_start, band_length, band_weights, *scalars):
    """What kapre_fast::front_end computes for these arguments (FRONT_END_SCALARS; `threads`
    ignored), in differentiable torch ops: kapre_fast._composition's pipeline over torch's
    namespace adapter, with the operator's own window and bands (tensors, real or traced)."""
    s = dict(zip(FRONT_END_SCALARS, scalars))
    attributes = dict(
        s,
        output=_OUTPUT_NAMES[s['output']],
        input_format=_layout(s['input_channels_first']),
        output_format=_layout(s['output_channels_first']),
    )
    filterbank = None
    if band_start.shape[0]:
        n_freq = s['n_fft'] // 2 + 1

        def filterbank(magnitude):
            dense = _dense_filterbank(band_start, band_length, band_weights, n_freq, magnitude)
            # A real copy before the product: torch 2.11's traced backward (torch.compile)
            # flattens the operand with a view its actual strides do not allow.
            return magnitude.clone(memory_format=torch.contiguous_format) @ dense

    return _composition.front_end(
        _torch_composition.TORCH, attributes, audio, _like(window, audio), filterbank
    )


def inverse_stft_composition(stft, window, *scalars):
    """What kapre_fast::inverse_stft computes (INVERSE_STFT_SCALARS; `threads` ignored), in
    differentiable torch ops: kapre_fast._composition's inverse STFT over torch's adapter."""
    s = dict(zip(INVERSE_STFT_SCALARS, scalars))
    attributes = dict(
        s,
        input_format=_layout(s['input_channels_first']),
        output_format=_layout(s['output_channels_first']),
    )
    return _composition.inverse_stft(
        _torch_composition.TORCH, attributes, stft, _like(window, stft)
    )


def _like(table, x):
    """A table on x's device in x's real dtype."""
    return table.to(x.device, x.real.dtype)


def _save_inputs(ctx, inputs, output):
    tensors = [value for value in inputs if isinstance(value, torch.Tensor)]
    ctx.save_for_backward(*tensors)
    ctx.scalars = inputs[len(tensors) : -1]  # without threads
    ctx.n_inputs = len(inputs)


def _vjp(recompute):
    """The backward of an operator whose forward `recompute(input, *tables, *scalars)`
    reproduces in torch ops: the gradient of the input only (None for the tables and scalars).

    Under create_graph (autograd runs the backward with grad mode on: a gradient penalty,
    higher-order gradients) the recomputation starts from the saved input itself and the
    vector-Jacobian product is taken with create_graph, so the gradient is a differentiable
    function of both the input and `grad`, as torch.stft's would be. Otherwise no graph is kept:
    the recomputation starts from a detached copy."""

    def backward(ctx, grad):
        source, *tables = ctx.saved_tensors
        rest = (None,) * (ctx.n_inputs - 1)
        if torch.is_grad_enabled():
            output = recompute(source, *tables, *ctx.scalars)
            (gradient,) = torch.autograd.grad(output, source, grad, create_graph=True)
            return (gradient, *rest)
        with torch.enable_grad():
            watched = source.detach().requires_grad_(True)
            output = recompute(watched, *tables, *ctx.scalars)
            (gradient,) = torch.autograd.grad(output, watched, grad)
        return (gradient, *rest)

    return backward


torch.library.register_autograd(
    'kapre_fast::front_end', _vjp(front_end_composition), setup_context=_save_inputs
)
torch.library.register_autograd(
    'kapre_fast::inverse_stft', _vjp(inverse_stft_composition), setup_context=_save_inputs
)
