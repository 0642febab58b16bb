"""The fused front ends as PyTorch custom operators (torch.library).

    kapre_fast::front_end(Tensor audio, str spec, int threads) -> Tensor
    kapre_fast::inverse_stft(Tensor stft, str spec, int threads) -> Tensor

`spec` is a FrontEnd's canonical JSON (a constant to torch.compile), `threads` 0 for every core.
On the CPU the tensors go to the C++ core through NumPy views (no copy in or out); on a CUDA
device, to the CUDA kernels through kapre_fast.gpu on the tensor's current stream (CuPy views of
the same memory). Each operator has a fake (meta) implementation, so torch.compile(fullgraph=True)
traces through it, and an autograd formula: the backward pass recomputes the pipeline in
differentiable torch ops (_composition.py) and takes its vector-Jacobian product, as the
TensorFlow ops' gradients do.

A Python binding over the framework-free modules, not a C++ extension: it ties kapre_fast to no
PyTorch ABI, so one build serves every PyTorch release with torch.library.custom_op (2.4+).
"""

from __future__ import annotations

import dataclasses
import functools
import json

import torch

from kapre_fast import cpu
from kapre_fast.spec import FrontEnd
from kapre_fast.torch import _composition


def spec_key(spec: FrontEnd) -> str:
    """The canonical JSON of a FrontEnd (its resolved fields), as the operators take it."""
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


@functools.lru_cache(maxsize=256)
def spec_of(key: str) -> FrontEnd:
    return FrontEnd(**json.loads(key))


def _on_gpu(tensor: torch.Tensor, compute):
    """compute(cupy array) on a CuPy view of the CUDA `tensor`, on torch's current stream; the
    result (a CuPy array) comes back as a tensor on the same memory."""
    import cupy

    from kapre_fast import gpu  # ImportError naming CuPy or the CUDA build when either is missing

    with cupy.cuda.Device(tensor.device.index), cupy.cuda.ExternalStream(
            torch.cuda.current_stream(tensor.device).cuda_stream):
        result = compute(gpu, cupy.asarray(tensor))
    return torch.as_tensor(result, device=tensor.device)


def _device_error(tensor, name):
    return ValueError(f'{name} must be on the CPU or a CUDA device, got device {tensor.device}')


@torch.library.custom_op('kapre_fast::front_end', mutates_args=())
def front_end(audio: torch.Tensor, spec: str, threads: int) -> torch.Tensor:
    front = spec_of(spec)
    if audio.device.type == 'cpu':
        return torch.from_numpy(cpu.compute(front, audio.detach().numpy(), threads=threads or None))
    if audio.device.type == 'cuda':
        return _on_gpu(audio.detach(), lambda gpu, x: gpu.compute(front, x))
    raise _device_error(audio, 'audio')


@front_end.register_fake
def _front_end_fake(audio, spec, threads):
    front = spec_of(spec)
    channels_last = front.input_data_format == 'channels_last'
    batch = audio.shape[0]
    channels, time = (audio.shape[2], audio.shape[1]) if channels_last else audio.shape[1:]
    total = time + front.pad_begin_length
    hop = front.hop_length
    frames = (total + hop - 1) // hop if front.pad_end else 1 + (total - front.win_length) // hop
    if front.output == 'mag_phase':
        channels = 2 * channels
    shape = ((batch, frames, front.n_features, channels)
             if front.output_data_format == 'channels_last'
             else (batch, channels, frames, front.n_features))
    dtype = torch.complex64 if front.output == 'complex' else torch.float32
    return audio.new_empty(shape, dtype=dtype)


def _save_input(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])
    ctx.spec = inputs[1]


def _vjp(recompute):
    """The backward of an operator whose forward `recompute(spec, input)` reproduces in torch
    ops: the gradient of the input only (spec and threads get None)."""

    def backward(ctx, grad):
        (source,) = ctx.saved_tensors
        with torch.enable_grad():
            watched = source.detach().requires_grad_(True)
            output = recompute(spec_of(ctx.spec), watched)
            (gradient,) = torch.autograd.grad(output, watched, grad)
        return gradient, None, None

    return backward


torch.library.register_autograd('kapre_fast::front_end', _vjp(_composition.front_end),
                                setup_context=_save_input)


@torch.library.custom_op('kapre_fast::inverse_stft', mutates_args=())
def inverse_stft(stft: torch.Tensor, spec: str, threads: int) -> torch.Tensor:
    front = spec_of(spec)
    if stft.device.type == 'cpu':
        return torch.from_numpy(cpu.istft(stft.detach().numpy(), threads=threads or None,
                                          **front.istft_arguments()))
    if stft.device.type == 'cuda':
        return _on_gpu(stft.detach(), lambda gpu, X: gpu.istft(X, **front.istft_arguments()))
    raise _device_error(stft, 'X')


@inverse_stft.register_fake
def _inverse_stft_fake(stft, spec, threads):
    front = spec_of(spec)
    if front.output_data_format == 'channels_last':
        batch, frames, _, channels = stft.shape
    else:
        batch, channels, frames, _ = stft.shape
    length = (frames - 1) * front.hop_length + front.win_length
    shape = ((batch, length, channels) if front.input_data_format == 'channels_last'
             else (batch, channels, length))
    return stft.new_empty(shape, dtype=torch.float32)


torch.library.register_autograd('kapre_fast::inverse_stft', _vjp(_composition.inverse_stft),
                                setup_context=_save_input)
