"""A FrontEnd's windows and filterbank as the float32/int32 arrays the native kernels take.

Shared by every native backend (cpu, ops, gpu) so they feed the kernels identical weights.
"""

from __future__ import annotations

import functools

import numpy as np

from kapre_fast.spec import FrontEnd

OUTPUT_CODES = {'magnitude': 0, 'mag_phase': 1, 'complex': 2}
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
    return 1 if spec.input_data_format == 'channels_last' else 2


def kernel_attributes(spec: FrontEnd) -> dict:
    """The framing and dB settings every native front-end entry point takes (the pybind11
    function's keywords; the TF op's attributes), for audio already centred (see
    reference.centred: a preset's centring is a padded copy made before the kernel, which has
    no reflect mode; the kernel then cuts frames of frame_length = n_fft)."""
    multiplier, amin, ref, dynamic_range = spec.decibel
    return dict(
        n_fft=spec.n_fft,
        win_length=spec.frame_length,
        hop_length=spec.hop_length,
        pad_begin=spec.pad_begin_length,
        pad_end=spec.pad_end,
        power=spec.power_exponent,
        decibel=spec.return_decibel,
        amin=amin,
        ref_value=ref,
        dynamic_range=dynamic_range,
        db_multiplier=multiplier,
    )


def centred(spec: FrontEnd, audio, pad):
    """A copy of `audio` (in spec.input_data_format) padded by n_fft // 2 samples on both sides of
    its time axis in the preset's pad_mode, made by `pad` (np.pad, cupy.pad, tf.pad: np.pad's
    signature; tf.pad takes the mode in any case): a preset's centring before the kernel, which
    has no reflect mode (one pass over the audio). ValueError naming the lengths first when the
    audio is too short; a length not known yet (a TF graph's dynamic axis) is checked later, by
    the op or the graph."""
    length = audio.shape[time_axis(spec)]
    if length is not None:
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
