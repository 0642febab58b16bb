"""A FrontEnd's windows and filterbank as the float32/int32 arrays the native kernels take.

Shared by every native backend (cpu, ops, gpu) so they feed the kernels identical weights.
"""

from __future__ import annotations

import functools

import numpy as np

from kapre_fast import _kernel_args
from kapre_fast import spec as _spec
from kapre_fast.spec import FrontEnd

OUTPUT_CODES = _kernel_args.OUTPUT_CODES
_NO_BANDS = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))


@functools.lru_cache(maxsize=64)
def window(spec: FrontEnd) -> np.ndarray:
    """The analysis window, float32."""
    return _read_only(np.ascontiguousarray(spec.window(), dtype=np.float32))


@functools.lru_cache(maxsize=64)
def inverse_window(spec: FrontEnd) -> np.ndarray:
    """The synthesis window of the inverse STFT, float32."""
    return _read_only(np.ascontiguousarray(spec.inverse_window(), dtype=np.float32))


def time_axis(spec: FrontEnd) -> int:
    """The time axis of audio in spec.input_data_format."""
    return _spec.time_axis(spec.input_data_format)


def kernel_attributes(spec: FrontEnd) -> dict:
    """The kernel arguments (_kernel_args.of) without output and the layouts: what the TF ops
    still take separately until they read the whole contract."""
    args = _kernel_args.of(spec).asdict()
    for name in ('output', *_kernel_args.LAYOUTS):
        del args[name]
    return args


def centred(spec: FrontEnd, audio, pad):
    """A copy of `audio` (in spec.input_data_format) padded by n_fft // 2 samples on both sides of
    its time axis in the preset's pad_mode, made by `pad` (np.pad, cupy.pad, jnp.pad, tf.pad,
    kapre_fast.torch's: np.pad's signature; tf.pad takes the mode in any case): a preset's
    centring before the kernel, which has no reflect mode (one pass over the audio). ValueError
    naming the lengths first when the audio is too short; a length not known yet (a TF graph's
    dynamic axis, a symbolic size under torch.compile) is checked later, by the op or the
    graph."""
    length = audio.shape[time_axis(spec)]
    if isinstance(length, int):
        spec.n_frames(length)
    widths = [(0, 0)] * 3
    widths[time_axis(spec)] = (spec.center_padding, spec.center_padding)
    return pad(audio, widths, mode=spec.pad_mode)


def bands(spec: FrontEnd):
    """(start int32, length int32, weights float32) of the sparse filterbank; empty arrays for
    a plain STFT magnitude (the kernels then output |X| itself)."""
    return spec.sparse_filterbank() or _NO_BANDS


def _read_only(array):
    array.flags.writeable = False
    return array
