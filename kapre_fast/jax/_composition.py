"""The front ends in differentiable jnp ops: the backward pass of the fused FFI calls.

kapre_fast._composition's pipeline (the one the TensorFlow ops' gradients and the torch
operators' backward run) over jnp: frames by gathering index arrays, the overlap-add by
.at[].add. A preset's centring is a jnp.pad before the FFI call (kapre_fast.jax.compute),
differentiated by jax itself. Only the custom VJPs run these: the forward values come from the
fused kernels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kapre_fast import _composition
from kapre_fast.spec import FrontEnd, frame_count


def _frame_indices(n_frames: int, length: int, hop: int) -> np.ndarray:
    return np.arange(n_frames)[:, None] * hop + np.arange(length)[None, :]


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


class _Jax(_composition.Namespace):
    """kapre_fast._composition's operations in jnp."""

    def transpose(self, x, perm):
        return x.transpose(*perm)

    def frame(self, waveforms, pad_begin, length, hop, pad_end):
        total = waveforms.shape[-1] + pad_begin
        end = _composition.end_padding(total, length, hop, pad_end)
        waveforms = jnp.pad(waveforms, ((0, 0), (0, 0), (pad_begin, end)))
        frames = frame_count(total, length, hop, pad_end)
        return waveforms[..., _frame_indices(frames, length, hop)]

    def pad_last(self, x, count):
        return jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((0, count),))

    def rfft(self, x, n):
        return jnp.fft.rfft(x, n=n)

    def irfft(self, x, n):
        return jnp.fft.irfft(x, n=n)

    def overlap_add(self, frames, hop):
        batch, channels, n_frames, length = frames.shape
        total = (n_frames - 1) * hop + length
        index = _frame_indices(n_frames, length, hop)
        return jnp.zeros((batch, channels, total), frames.dtype).at[..., index].add(frames)

    real, imag, abs = staticmethod(jnp.real), staticmethod(jnp.imag), staticmethod(jnp.abs)
    log10, floor, maximum = (
        staticmethod(jnp.log10),
        staticmethod(jnp.maximum),
        staticmethod(jnp.maximum),
    )
    phase = staticmethod(_phase)

    def peak(self, x):
        return x.max(axis=(1, 2, 3), keepdims=True)

    def concat_channels(self, tensors):
        return jnp.concatenate(tensors, axis=1)


_JAX = _Jax()


def front_end(spec: FrontEnd, audio):
    """What the fused front end computes for `spec` (every output, the complex STFT too)."""
    window = jnp.asarray(spec.window(), dtype=audio.dtype)

    def filterbank(magnitude):
        return magnitude @ jnp.asarray(spec.dense_filterbank(), dtype=magnitude.dtype)

    bands = filterbank if spec.filterbank != 'none' else None
    return _composition.front_end(_JAX, _composition.attributes(spec), audio, window, bands)


def inverse_stft(spec: FrontEnd, stft):
    """The waveforms whose STFT by `spec` is `stft` (kapre's InverseSTFT)."""
    window = jnp.asarray(spec.inverse_window(), dtype=jnp.real(stft).dtype)
    return _composition.inverse_stft(_JAX, _composition.inverse_attributes(spec), stft, window)
