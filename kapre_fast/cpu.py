"""The fused native front end on NumPy arrays (C++ core through pybind11).

Same functions and keyword arguments as `kapre_fast.reference`, plus `threads` (None: all cores)
and `out` (a preallocated result array, filled and returned; see `compute`).
Input: a float32 batch in `input_data_format` (other real dtypes are converted to float32);
output: float32 (complex64 for `stft`) in `output_data_format`, as kapre returns it.
"""

from __future__ import annotations

import numpy as np

from kapre_fast import _loader, _weights
from kapre_fast.spec import FrontEnd

__all__ = [
    'compute',
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
    'istft',
]


def stft_magnitude(x, *, threads=None, out=None, **kwargs) -> np.ndarray:
    """|STFT| (or its dB), as `kapre.composed.get_stft_magnitude_layer(**kwargs)`."""
    return compute(FrontEnd.stft_magnitude(**kwargs), x, threads=threads, out=out)


def melspectrogram(x, *, threads=None, out=None, **kwargs) -> np.ndarray:
    """Mel spectrogram (or its dB), as `kapre.composed.get_melspectrogram_layer(**kwargs)`."""
    return compute(FrontEnd.melspectrogram(**kwargs), x, threads=threads, out=out)


def log_frequency_spectrogram(x, *, threads=None, out=None, **kwargs) -> np.ndarray:
    """Log-frequency spectrogram, as `kapre.composed.get_log_frequency_spectrogram_layer`."""
    return compute(FrontEnd.log_frequency_spectrogram(**kwargs), x, threads=threads, out=out)


def stft_mag_phase(x, *, threads=None, out=None, **kwargs) -> np.ndarray:
    """[magnitude (or dB), phase] along the channel axis, as `kapre.composed.get_stft_mag_phase`."""
    return compute(FrontEnd.stft_mag_phase(**kwargs), x, threads=threads, out=out)


def stft(x, *, threads=None, out=None, **kwargs) -> np.ndarray:
    """The complex64 STFT, as kapre's `STFT` layer."""
    return compute(FrontEnd.stft(**kwargs), x, threads=threads, out=out)


def compute(spec: FrontEnd, x, *, threads=None, out=None) -> np.ndarray:
    """Runs the front end `spec` on the waveform batch `x` with the native fused kernel.

    out: None (a new array) or a C-contiguous, writeable array of the result's shape and dtype
    (float32; complex64 for the STFT) that does not overlap `x`; it is filled and returned.
    Repeated calls into one buffer skip the page faults of a fresh output (large outputs)."""
    audio = as_float32_audio(x)
    if out is not None and isinstance(out, np.ndarray) and np.may_share_memory(out, audio):
        raise ValueError('out must not overlap the audio it is computed from')
    start, length, weights = _weights.bands(spec)
    return _loader.core().frontend(
        audio,
        _weights.window(spec),
        start,
        length,
        weights,
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        pad_begin=spec.pad_begin_length,
        pad_end=spec.pad_end,
        output=_weights.OUTPUT_CODES[spec.output],
        decibel=spec.return_decibel,
        amin=spec.db_amin,
        ref_value=spec.db_ref_value,
        dynamic_range=spec.db_dynamic_range,
        input_channels_first=spec.input_data_format == 'channels_first',
        output_channels_first=spec.output_data_format == 'channels_first',
        threads=thread_count(threads),
        out=out,
    )


def istft(
    X,
    n_fft=2048,
    win_length=None,
    hop_length=None,
    forward_window_name=None,
    stft_data_format='default',
    waveform_data_format='default',
    *,
    threads=None,
) -> np.ndarray:
    """Inverse STFT, as kapre's `InverseSTFT` layer (see `kapre_fast.reference.istft`)."""
    spec = FrontEnd.inverted_by_istft(
        n_fft, win_length, hop_length, forward_window_name,
        stft_data_format=stft_data_format, waveform_data_format=waveform_data_format)
    X = np.asarray(X)
    if not np.iscomplexobj(X):
        raise TypeError(f'X must be a complex array, got dtype {X.dtype}')
    return _loader.core().istft(
        np.ascontiguousarray(X, dtype=np.complex64),
        _weights.inverse_window(spec),
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        input_channels_first=spec.output_data_format == 'channels_first',
        output_channels_first=spec.input_data_format == 'channels_first',
        threads=thread_count(threads),
    )


def as_float32_audio(x) -> np.ndarray:
    """x as a float32 array (no copy when it already is one); TypeError for non-real input."""
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f'audio must be a real floating-point array, got dtype {array.dtype}')
    return array.astype(np.float32, copy=False)


def thread_count(threads) -> int:
    """None means every core (0 to the native code); otherwise an int >= 1."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f'threads must be None or an int >= 1, got {threads!r}')
    return int(threads)

