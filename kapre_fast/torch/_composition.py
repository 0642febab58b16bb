"""The front ends in differentiable PyTorch ops: the backward pass of the fused ops.

kapre_fast._composition's pipeline (the one the TensorFlow ops' gradients and the JAX VJPs run)
over torch's operations: frames by Tensor.unfold, the overlap-add by F.fold. A preset's
centring is a torch pad before the operator (kapre_fast.torch), which autograd differentiates
itself. Only autograd runs these (kapre_fast/torch/_ops.py recomputes from the operator's own
arguments through TORCH): the forward values come from the fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kapre_fast import _composition


class _SafePhase(torch.autograd.Function):
    """angle(X) whose gradient is (-Im u, Re u) / |X| with u = X / |X|: precise for tiny |X|
    (where |X|^2 underflows) and 0, not NaN, where X is 0 (as the TF gradient)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.angle(x)

    @staticmethod
    def backward(ctx, upstream):
        (x,) = ctx.saved_tensors
        magnitude = x.abs()
        safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
        unit = x / safe
        scale = torch.where(magnitude > 0, upstream / safe, torch.zeros_like(safe))
        # PyTorch's complex gradient convention: d/dRe + i d/dIm of the real loss.
        return torch.complex(-unit.imag * scale, unit.real * scale)


class _Torch(_composition.Namespace):
    """kapre_fast._composition's operations in torch ops."""

    def transpose(self, x, perm):
        return x.permute(*perm)

    def frame(self, waveforms, pad_begin, length, hop, pad_end):
        total = waveforms.shape[-1] + pad_begin
        end = _composition.end_padding(total, length, hop, pad_end)
        if pad_begin or end:
            waveforms = F.pad(waveforms, (pad_begin, end))
        return waveforms.unfold(-1, length, hop)

    def pad_last(self, x, count):
        return F.pad(x, (0, count))

    def rfft(self, x, n):
        return torch.fft.rfft(x, n=n)

    def irfft(self, x, n):
        return torch.fft.irfft(x, n=n)

    def overlap_add(self, frames, hop):
        batch, channels, n_frames, length = frames.shape
        total = (n_frames - 1) * hop + length
        return F.fold(
            frames.reshape(batch * channels, n_frames, length).transpose(1, 2),
            output_size=(1, total),
            kernel_size=(1, length),
            stride=(1, hop),
        ).reshape(batch, channels, total)

    real, imag, abs = staticmethod(torch.real), staticmethod(torch.imag), staticmethod(torch.abs)
    log10 = staticmethod(torch.log10)
    maximum = staticmethod(torch.maximum)

    def phase(self, x):
        return _SafePhase.apply(x)

    def floor(self, x, value):
        return torch.clamp(x, min=value)

    def peak(self, x):
        return x.amax(dim=(1, 2, 3), keepdim=True)

    def concat_channels(self, tensors):
        return torch.cat(tensors, dim=1)


# The namespace kapre_fast.torch._ops hands to kapre_fast._composition for autograd.
TORCH = _Torch()
