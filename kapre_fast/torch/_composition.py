"""The front ends in differentiable PyTorch ops: the backward pass of the fused ops.

The same pipeline as kapre_fast.ops' TensorFlow gradients (and kapre): [pad_begin] -> frames of
spec.frame_length -> window -> rFFT of n_fft (each frame cropped or zero-padded at its end) ->
|X| (a preset's power=2: |X|^2) -> filterbank -> dB (spec.decibel: kapre's or the preset's);
the inverse STFT as irFFT -> synthesis window -> overlap-add. A preset's centring is a torch pad
before the operator (kapre_fast.torch), which autograd differentiates itself, so these see the
spec without it. Only autograd runs these: the forward values come from the fused kernels.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from kapre_fast.spec import FrontEnd


@functools.lru_cache(maxsize=64)
def _window_array(spec: FrontEnd, inverse: bool) -> np.ndarray:
    # A writeable float32 copy (the spec's cache is read-only; torch warns on those).
    return np.array(spec.inverse_window() if inverse else spec.window(), dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _filterbank_array(spec: FrontEnd) -> np.ndarray:
    return np.array(spec.dense_filterbank(), dtype=np.float32)


def _constant(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    # A fresh tensor per call, never a cached one: under torch.compile a cached tensor would be
    # the tracer's fake tensor, not a real one.
    return torch.as_tensor(array, device=like.device).to(like.real.dtype)


def spectra(spec: FrontEnd, audio: torch.Tensor) -> torch.Tensor:
    """(batch, channels, frames, n_freq) complex64 spectra of the batch `audio`."""
    waveforms = audio if spec.input_data_format == 'channels_first' else audio.transpose(1, 2)
    if spec.pad_begin_length:
        waveforms = F.pad(waveforms, (spec.pad_begin_length, 0))
    total = waveforms.shape[-1]
    if spec.pad_end:  # tf.signal.frame's pad_end: ceil(total / hop) frames
        frames = -(-total // spec.hop_length)
        waveforms = F.pad(
            waveforms, (0, (frames - 1) * spec.hop_length + spec.frame_length - total)
        )
    frames = waveforms.unfold(-1, spec.frame_length, spec.hop_length)
    windowed = frames * _constant(_window_array(spec, False), frames)
    return torch.fft.rfft(windowed, n=spec.n_fft)  # n crops or zero-pads each frame at its end


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


def _decibel(spec: FrontEnd, x: torch.Tensor) -> torch.Tensor:
    multiplier, amin, ref, dynamic_range = spec.decibel  # a preset's top_db may be inf
    log_x = multiplier * torch.log10(torch.clamp(x, min=amin))
    log_x = log_x - multiplier * math.log10(max(amin, ref))
    peak = log_x.amax(dim=(1, 2, 3), keepdim=True)
    return torch.maximum(log_x, peak - dynamic_range)


def _to_output_layout(spec: FrontEnd, features: torch.Tensor) -> torch.Tensor:
    if spec.output_data_format == 'channels_last':
        return features.permute(0, 2, 3, 1)
    return features


def front_end(spec: FrontEnd, audio: torch.Tensor) -> torch.Tensor:
    """What the fused front end computes for `spec` (every output but the complex STFT)."""
    X = spectra(spec, audio)
    if spec.output == 'complex':
        return _to_output_layout(spec, X)
    if spec.power_exponent == 2:  # re^2 + im^2: smooth at 0, where |X|'s gradient is not
        features = X.real**2 + X.imag**2
    else:
        features = X.abs()
    if spec.filterbank != 'none':
        features = features @ _constant(_filterbank_array(spec), features)
    if spec.return_decibel:
        features = _decibel(spec, features)
    if spec.output == 'mag_phase':
        features = torch.cat([features, _SafePhase.apply(X)], dim=1)
    return _to_output_layout(spec, features)


def inverse_stft(spec: FrontEnd, stft: torch.Tensor) -> torch.Tensor:
    """The waveforms whose STFT by `spec` is `stft` (kapre's InverseSTFT)."""
    X = stft if spec.output_data_format == 'channels_first' else stft.permute(0, 3, 1, 2)
    frames = torch.fft.irfft(X, n=spec.n_fft)[..., : spec.win_length]
    if frames.shape[-1] < spec.win_length:
        frames = F.pad(frames, (0, spec.win_length - frames.shape[-1]))
    frames = frames * _constant(_window_array(spec, True), frames)
    batch, channels, n_frames, _ = frames.shape
    length = (n_frames - 1) * spec.hop_length + spec.win_length
    waveforms = F.fold(
        frames.reshape(batch * channels, n_frames, -1).transpose(1, 2),
        output_size=(1, length),
        kernel_size=(1, spec.win_length),
        stride=(1, spec.hop_length),
    ).reshape(batch, channels, length)
    return waveforms if spec.input_data_format == 'channels_first' else waveforms.transpose(1, 2)
