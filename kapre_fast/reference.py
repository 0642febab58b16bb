"""Float64 NumPy truth for kapre's composed front ends.

Each function takes the keyword arguments of the matching `kapre.composed` function (minus
`input_shape` and `name`), builds a `FrontEnd`, and computes the same pipeline as kapre in float64:

    waveform -> [pad_begin] -> frame -> window -> rFFT(n_fft) -> |.| -> [filterbank] -> [dB]
             -> layout

It is slow and simple on purpose: every faster backend is checked against it. Inputs are NumPy
arrays in the front end's `input_data_format`, of any real floating dtype or integers (taken
unscaled, as kapre does).
"""

from __future__ import annotations

import numpy as np

from kapre_fast import _api, _composition, _pcen
from kapre_fast.spec import FrontEnd, check_audio_dtype

__all__ = list(_api.PUBLIC)

# kapre's keyword arguments, signatures and docstrings: kapre_fast._api; each calls `compute`
# (istft: `inverse`).
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = (
    _api.front_end_functions(__name__)
)
mfcc, pcen, istft = _api.backend_functions(__name__)
# The Backend protocol's MFCC: compute's dB mel spectrogram times the DCT matrix, in NumPy.
compute_mfcc = _api.dct_mfcc_function(__name__)


def compute(spec: FrontEnd, x) -> np.ndarray:
    """Runs the front end `spec` on the waveform batch `x`, in float64 (complex128 for
    output='complex'). The result is laid out in `spec.output_data_format`."""
    waveforms = _float64_waveforms(spec, x)
    spectra = _complex_spectra(spec, waveforms)  # (batch, channels, frames, n_freq)
    if spec.output == 'complex':
        return np.ascontiguousarray(spec.layout_output(spectra))

    features = np.abs(spectra) ** spec.power_exponent
    filterbank = spec.dense_filterbank()
    if filterbank is not None:
        features = features @ filterbank
    if spec.return_decibel:
        features = _decibel(spec, features)
    if spec.output == 'mag_phase':
        # Magnitudes first, then phases: 2 * channels channels.
        features = np.concatenate([features, np.angle(spectra)], axis=1)
    return np.ascontiguousarray(spec.layout_output(features))


def inverse(spec: FrontEnd, X) -> np.ndarray:
    """Inverse STFT, as kapre's `InverseSTFT` layer computes it (tf.signal.inverse_stft with
    tf.signal.inverse_stft_window_fn(hop_length, forward window)), in float64; istft(X, **kapre's
    InverseSTFT arguments) builds `spec`, the forward transform this inverts (its window, sizes
    and layouts: FrontEnd.inverted_by_istft), and calls this.

    `X` is a complex batch laid out as spec.output_data_format (istft's stft_data_format) with
    n_fft // 2 + 1 frequency bins; the result is (frames - 1) * hop_length + win_length samples
    laid out as spec.input_data_format (waveform_data_format). After a forward STFT with
    pad_begin and pad_end, trimming n_fft - hop_length samples at the start gives back the input.
    """
    X = np.asarray(X)
    channels_last = spec.output_data_format == 'channels_last'
    if channels_last:
        expected = '(batch, frames, freq, channels)'
    else:
        expected = '(batch, channels, frames, freq)'
    if X.ndim != 4:
        raise ValueError(
            f'X must have 4 axes {expected} for stft_data_format={spec.output_data_format!r}, '
            f'got shape {X.shape}'
        )
    spectra = X.transpose(0, 3, 1, 2) if channels_last else X  # (batch, ch, frames, freq)
    batch, channels, n_frames, n_freq = spectra.shape
    if n_freq != spec.n_freq or n_frames < 1:
        raise ValueError(
            f'X must have n_fft // 2 + 1 = {spec.n_freq} frequency bins and at least one frame '
            f'(layout {expected}), got shape {X.shape}'
        )

    # irfft of n_fft points (like TF's, it ignores the imaginary parts of the DC and Nyquist
    # bins), then cropped or zero-padded at the end to win_length.
    frames = np.fft.irfft(spectra.astype(np.complex128), n=spec.n_fft, axis=-1)
    frames = frames[..., : spec.win_length]
    if spec.n_fft < spec.win_length:
        frames = np.pad(frames, [(0, 0)] * 3 + [(0, spec.win_length - spec.n_fft)])
    frames = frames * spec.inverse_window()

    hop = spec.hop_length
    waveforms = np.zeros((batch, channels, (n_frames - 1) * hop + spec.win_length))
    for index in range(n_frames):
        waveforms[..., index * hop : index * hop + spec.win_length] += frames[:, :, index]
    if spec.input_data_format == 'channels_last':  # the waveform layout
        waveforms = waveforms.transpose(0, 2, 1)
    return np.ascontiguousarray(waveforms)


def _float64_waveforms(spec, x):
    x = np.asarray(x)
    check_audio_dtype(x.dtype)
    return spec.layout_input(x).astype(np.float64)  # (batch, channels, time)


def centred(spec, waveforms):
    """(batch, channels, time) waveforms padded by n_fft // 2 on both sides in spec.pad_mode
    when the preset centres its frames (librosa.stft's and torch.stft's center=True); else as
    they are. NumPy or anything np.pad takes; the native backends pad the same way."""
    pad = spec.center_padding
    if not pad:
        return waveforms
    spec.n_frames(waveforms.shape[-1])  # the ValueError naming the lengths, before np.pad's
    return np.pad(waveforms, [(0, 0), (0, 0), (pad, pad)], mode=spec.pad_mode)


def _complex_spectra(spec, waveforms):
    """(batch, channels, frames, n_freq) complex128 spectra of (batch, channels, time) audio."""
    n_frames = spec.n_frames(waveforms.shape[-1])  # raises when the audio is too short
    waveforms = centred(spec, waveforms)
    needed = (n_frames - 1) * spec.hop_length + spec.frame_length
    padded_length = waveforms.shape[-1] + spec.pad_begin_length
    # pad_begin zeros in front; pad_end zeros behind, just enough for the last frame.
    pad_after = max(0, needed - padded_length)
    waveforms = np.pad(waveforms, [(0, 0), (0, 0), (spec.pad_begin_length, pad_after)])
    frames = np.lib.stride_tricks.sliding_window_view(waveforms, spec.frame_length, axis=-1)
    frames = frames[:, :, :: spec.hop_length][:, :, :n_frames]
    # rfft crops (n_fft < win_length) or zero-pads at the END (n_fft > win_length), as TF's
    # rfft does: the window is not centred in the FFT frame.
    return np.fft.rfft(frames * spec.window(), n=spec.n_fft, axis=-1)


def _decibel(spec, x):
    """kapre's magnitude_to_decibel: 10 * log10 of a MAGNITUDE, floored at amin, relative to
    ref_value, then clamped to dynamic_range below each example's maximum (over every non-batch
    axis: frames, features and channels together). The presets change the multiplier and the
    constants only (FrontEnd.decibel): librosa's power_to_db / amplitude_to_db, torchaudio's
    AmplitudeToDB."""
    return _composition.decibel(_NUMPY, x, *spec.decibel)


class _NumPy(_composition.Namespace):
    """The NumPy operations of kapre_fast._composition.decibel."""

    log10, floor, maximum = np.log10, np.maximum, np.maximum

    def peak(self, x):
        # `initial` makes an empty example (no frames or channels) reduce without error.
        return x.max(axis=tuple(range(1, x.ndim)), keepdims=True, initial=-np.inf)


_NUMPY = _NumPy()


def apply_pcen(mel, constants, time_axis: int) -> np.ndarray:
    """librosa.pcen (max_size=1) of a mel spectrogram along `time_axis`, in float64:

        M[t] = (1 - b) M[t - 1] + b S[t],  M[-1] = 1 (librosa's zi = lfilter_zi, unscaled)
        P = bias**power * expm1(power * log1p(S / (eps + M)**gain / bias))

    with librosa's special cases power == 0 (log1p(S / (eps + M)**gain)) and bias == 0
    ((S / (eps + M)**gain)**power). `constants`: spec.pcen_constants(...)."""
    b = constants[0]  # the compression reads the rest
    mel = np.moveaxis(np.asarray(mel, dtype=np.float64), time_axis, 0)
    smooth = _pcen.smooth_frames(mel, b, 1 - b, np.ones(mel.shape[1:]))
    smooth = np.array(smooth, dtype=np.float64).reshape(mel.shape)  # no frames: empty
    with np.errstate(divide='ignore'):  # bias == 0 takes log(0) = -inf for silent bins: 0 out
        out = _pcen.compress(np, mel, smooth, constants)
    return np.ascontiguousarray(np.moveaxis(out, 0, time_axis))
