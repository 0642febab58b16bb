"""The front ends in differentiable jnp ops: the backward pass of the fused FFI calls.

The same pipeline as kapre_fast.ops' TensorFlow gradients and kapre_fast/torch/_composition.py:
[pad_begin] -> frames of spec.frame_length -> window -> rFFT of n_fft (each frame cropped or
zero-padded at its end) -> |X| (a preset's power=2: |X|^2) -> filterbank -> dB (spec.decibel);
the inverse STFT as irFFT -> synthesis window -> overlap-add. A preset's centring is a jnp.pad
before the FFI call (kapre_fast.jax.compute), differentiated by jax itself. Only the custom VJPs
run these: the forward values come from the fused kernels.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from kapre_fast.spec import FrontEnd


def _frame_indices(n_frames: int, length: int, hop: int) -> np.ndarray:
    return np.arange(n_frames)[:, None] * hop + np.arange(length)[None, :]


def spectra(spec: FrontEnd, audio):
    """(batch, channels, frames, n_freq) complex64 spectra of the batch `audio`."""
    waveforms = audio if spec.input_data_format == 'channels_first' else audio.transpose(0, 2, 1)
    total = waveforms.shape[-1] + spec.pad_begin_length
    frames = spec.n_frames(waveforms.shape[-1])
    # pad_begin's zeros in front; pad_end's (tf.signal.frame) behind, up to the last frame's end.
    end = max(0, (frames - 1) * spec.hop_length + spec.frame_length - total)
    waveforms = jnp.pad(waveforms, ((0, 0), (0, 0), (spec.pad_begin_length, end)))
    framed = waveforms[..., _frame_indices(frames, spec.frame_length, spec.hop_length)]
    windowed = framed * jnp.asarray(spec.window(), dtype=framed.dtype)
    return jnp.fft.rfft(windowed, n=spec.n_fft)  # n crops or zero-pads each frame at its end


@jax.custom_jvp
def _phase(x):
    """angle(X) whose derivative is (Re u dIm - Im u dRe) / |X| with u = X / |X|: precise for
    tiny |X| (where |X|^2 underflows) and 0, not NaN, where X is 0 (as the TF gradient)."""
    return jnp.angle(x)


@_phase.defjvp
def _phase_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    magnitude = jnp.abs(x)
    nonzero = magnitude > 0
    safe = jnp.where(nonzero, magnitude, 1.0)
    unit = x / safe
    tangent = jnp.where(nonzero, (unit.real * dx.imag - unit.imag * dx.real) / safe, 0.0)
    return jnp.angle(x), tangent


def _decibel(spec: FrontEnd, x):
    multiplier, amin, ref, dynamic_range = spec.decibel  # a preset's top_db may be inf
    log_x = multiplier * jnp.log10(jnp.maximum(x, amin))
    log_x = log_x - multiplier * math.log10(max(amin, ref))
    peak = log_x.max(axis=(1, 2, 3), keepdims=True)
    return jnp.maximum(log_x, peak - dynamic_range)


def _to_output_layout(spec: FrontEnd, features):
    if spec.output_data_format == 'channels_last':
        return features.transpose(0, 2, 3, 1)
    return features


def front_end(spec: FrontEnd, audio):
    """What the fused front end computes for `spec` (every output, the complex STFT too)."""
    X = spectra(spec, audio)
    if spec.output == 'complex':
        return _to_output_layout(spec, X)
    if spec.power_exponent == 2:  # re^2 + im^2: smooth at 0, where |X|'s gradient is not
        features = X.real**2 + X.imag**2
    else:
        features = jnp.abs(X)
    if spec.filterbank != 'none':
        features = features @ jnp.asarray(spec.dense_filterbank(), dtype=features.dtype)
    if spec.return_decibel:
        features = _decibel(spec, features)
    if spec.output == 'mag_phase':
        features = jnp.concatenate([features, _phase(X)], axis=1)
    return _to_output_layout(spec, features)


def inverse_stft(spec: FrontEnd, stft):
    """The waveforms whose STFT by `spec` is `stft` (kapre's InverseSTFT)."""
    X = stft if spec.output_data_format == 'channels_first' else stft.transpose(0, 3, 1, 2)
    frames = jnp.fft.irfft(X, n=spec.n_fft)[..., : spec.win_length]
    if frames.shape[-1] < spec.win_length:
        frames = jnp.pad(frames, ((0, 0),) * 3 + ((0, spec.win_length - frames.shape[-1]),))
    frames = frames * jnp.asarray(spec.inverse_window(), dtype=frames.dtype)
    batch, channels, n_frames, _ = frames.shape
    length = (n_frames - 1) * spec.hop_length + spec.win_length
    index = _frame_indices(n_frames, spec.win_length, spec.hop_length)
    waveforms = jnp.zeros((batch, channels, length), frames.dtype).at[..., index].add(frames)
    return waveforms if spec.input_data_format == 'channels_first' else waveforms.transpose(0, 2, 1)
