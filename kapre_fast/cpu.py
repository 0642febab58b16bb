"""The fused native front end on NumPy arrays (C++ core through pybind11).

Same functions and keyword arguments as `kapre_fast.reference`, plus `threads` (None: all cores)
and `out` (a preallocated result array, filled and returned; see `compute`).
Input: a float32 batch in `input_data_format` (other real floating dtypes and integers are
converted to float32, integers unscaled as kapre does);
output: float32 (complex64 for `stft`) in `output_data_format`, as kapre returns it.
"""

from __future__ import annotations

import numpy as np

from kapre_fast import _api, _kernel_args, _loader, _weights
from kapre_fast.spec import FrontEnd, check_audio_dtype

__all__ = list(_api.PUBLIC)

# kapre's keyword arguments plus threads and out, signatures and docstrings: kapre_fast._api;
# each calls `compute` (istft: `inverse`).
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = (
    _api.front_end_functions(__name__)
)
mfcc, pcen, istft = _api.backend_functions(__name__)


def compute(spec: FrontEnd, x, *, threads=None, out=None) -> np.ndarray:
    """Runs the front end `spec` on the waveform batch `x` with the native fused kernel.

    out: None (a new array) or a C-contiguous, writeable array of the result's shape and dtype
    (float32; complex64 for the STFT) that does not overlap `x`; it is filled and returned.
    Repeated calls into one buffer skip the page faults of a fresh output (large outputs)."""
    return _run(spec, x, threads, out, None)


def compute_mfcc(spec: FrontEnd, matrix, x, *, threads=None) -> np.ndarray:
    """MFCCs of `x`: the dB mel spectrogram `spec` (return_decibel) times `matrix`, the
    (n_mels, n_mfcc) spec.mfcc_matrix, applied by the native pass to each example's clamped dB
    mel rows while they are in cache. Output: spec's layout with n_mfcc features."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return _run(spec, x, threads, None, matrix)


def _run(spec, x, threads, out, dct):
    audio = as_float32_audio(x)
    if audio.ndim != 3:
        spec.layout_input(audio)  # raises the ValueError that names the axes and the reshape
    if out is not None and isinstance(out, np.ndarray) and np.may_share_memory(out, audio):
        raise ValueError('out must not overlap the audio it is computed from')
    if spec.center_padding:
        audio = _weights.centred(spec, audio, np.pad)  # the kernel has no reflect mode
    start, length, weights = _weights.bands(spec)
    return _loader.core().frontend(
        audio,
        _weights.window(spec),
        start,
        length,
        weights,
        **_kernel_args.of(spec).asdict(),
        threads=thread_count(threads),
        out=out,
        dct=dct,
    )


def apply_pcen(mel, constants, time_axis: int, *, threads=None) -> np.ndarray:
    """librosa.pcen (see kapre_fast.reference.apply_pcen) of a 4-D float32 filterbank output
    along `time_axis` (1: channels_last, 2: channels_first), computed in place by the native
    pass, one (example, channel) row per task. `constants`: spec.pcen_constants(...)."""
    if time_axis not in (1, 2):
        raise ValueError(
            f'time_axis must be 1 (channels_last) or 2 (channels_first), got {time_axis!r}'
        )
    b, gain, bias, power, eps = constants
    return _loader.core().pcen(
        mel,
        b,
        gain,
        bias,
        power,
        eps,
        channels_first=time_axis == 2,
        threads=thread_count(threads),
        out=mel,
    )


def inverse(spec: FrontEnd, X, *, threads=None) -> np.ndarray:
    """Inverse STFT of the complex batch X for the forward STFT `spec` (its output layout is
    X's, its input layout the waveform's), as kapre's `InverseSTFT` layer (see
    `kapre_fast.reference.inverse`): what istft computes once it has built `spec`."""
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
    """x as a float32 array (no copy when it already is one); TypeError for dtypes outside the
    policy of spec.check_audio_dtype."""
    array = np.asarray(x)
    check_audio_dtype(array.dtype)
    return array.astype(np.float32, copy=False)


def thread_count(threads) -> int:
    """None means every core (0 to the native code); otherwise an int >= 1."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f'threads must be None or an int >= 1, got {threads!r}')
    return int(threads)
