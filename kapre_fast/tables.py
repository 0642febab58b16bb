"""The weights a front end computes with, in float64 and without TensorFlow or librosa: the
analysis and synthesis windows exactly as tf.signal builds them (and the presets' periodic
windows centred in n_fft), the mel and log-frequency filterbanks exactly as kapre builds them
(librosa's filters.mel, kapre's filterbank_log), dense and as sparse runs, the MFCC's DCT-II
matrix and librosa.pcen's constants. Every array is cached and read-only. kapre_fast.spec's
FrontEnd asks for its own (FrontEnd.window(), dense_filterbank(), ...); only NumPy is imported.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from kapre_fast._checks import _check_int, _check_positive, _check_real
from kapre_fast.errors import UnsupportedWindowError

# tf.signal's default beta for kaiser_window and kaiser_bessel_derived_window (kapre passes none).
KAISER_BETA = 12.0
# librosa.filters.mel builds its weights in float32, so util.normalize leaves a filter whose
# p-norm is below float32's smallest normal number (in practice: an all-zero filter) untouched.
_MEL_NORM_THRESHOLD = float(np.finfo(np.float32).tiny)


# ----- windows (float64 versions of tf.signal's formulas) -------------------------------------


def _read_only(array):
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=64)
def window(name, length):
    n = np.arange(length, dtype=np.float64)
    if name in ('hann_window', 'hamming_window'):
        # tf.signal's "periodic" raised-cosine window divides by L only for even L; for odd L it
        # divides by L - 1, i.e. it is the symmetric window. Length 1 is [1].
        a, b = (0.5, 0.5) if name == 'hann_window' else (0.54, 0.46)
        if length == 1:
            return _read_only(np.ones(1))
        denominator = length if length % 2 == 0 else length - 1
        return _read_only(a - b * np.cos(2.0 * np.pi * n / denominator))
    if name == 'kaiser_window':
        # Symmetric; tf.signal's formula is numpy.kaiser's, rearranged with bessel_i0e.
        return _read_only(np.kaiser(length, KAISER_BETA))
    if name == 'kaiser_bessel_derived_window':
        # Half window: square root of the normalised running sum of a Kaiser window of
        # length L/2 + 1, dropping its last point; then mirrored. (Even length: checked in spec.)
        running = np.cumsum(np.kaiser(length // 2 + 1, KAISER_BETA))
        half = np.sqrt(running[:-1] / running[-1])
        return _read_only(np.concatenate([half, half[::-1]]))
    if name == 'vorbis_window':
        return _read_only(np.sin(np.pi / 2.0 * np.sin(np.pi * (n + 0.5) / length) ** 2))
    raise UnsupportedWindowError(f'window_name {name!r} is not supported')


@functools.lru_cache(maxsize=64)
def preset_window(name, length, n_fft):
    # scipy.signal.get_window(..., fftbins=True) and torch.hann_window/hamming_window(periodic):
    # the cosine over `length` points for every length (tf.signal's odd lengths are symmetric).
    a, b = (0.5, 0.5) if name == 'hann_window' else (0.54, 0.46)
    window = a - b * np.cos(2.0 * np.pi * np.arange(length) / length)
    left = (n_fft - length) // 2
    return _read_only(np.pad(window, (left, n_fft - length - left)))


@functools.lru_cache(maxsize=64)
def inverse_window(name, length, hop_length):
    forward = window(name, length)
    # Sum of the squared forward window over every frame overlapping a sample, periodic in hop.
    overlaps = -(-length // hop_length)
    squared = np.zeros(overlaps * hop_length)
    squared[:length] = forward**2
    denominator = np.tile(squared.reshape(overlaps, hop_length).sum(axis=0), overlaps)[:length]
    safe = np.where(denominator == 0.0, 1.0, denominator)
    return _read_only(np.where(denominator == 0.0, 0.0, forward / safe))


# ----- filterbanks -------------------------------------------------------------------------------

# Slaney's auditory-toolbox mel scale (librosa's default): linear below 1 kHz, log above.
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(hz, htk):
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # The maximum only keeps log() away from the values the linear branch handles.
    above = np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, _SLANEY_BREAK_MEL + above, hz / _SLANEY_HZ_PER_MEL)


def mel_to_hz(mel, htk):
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    above = _SLANEY_BREAK_HZ * np.exp(
        _SLANEY_LOG_STEP * (np.maximum(mel, _SLANEY_BREAK_MEL) - _SLANEY_BREAK_MEL)
    )
    return np.where(mel >= _SLANEY_BREAK_MEL, above, mel * _SLANEY_HZ_PER_MEL)


def _fft_frequencies(sample_rate, n_freq, frequencies='kapre'):
    # kapre hands librosa n_fft = (n_freq - 1) * 2, so an odd n_fft gets the bin frequencies of
    # n_fft - 1 points. Kept on purpose: that is what kapre computes. librosa's own melspectrogram
    # (compat='librosa') passes its n_fft (the spec's n_fft has n_freq = n_fft // 2 + 1: recover
    # it from n_freq and the parity kept in `frequencies`); torchaudio's melscale_fbanks spaces
    # n_freq points from 0 to sample_rate // 2.
    if frequencies == 'linspace':
        return np.linspace(0.0, float(sample_rate // 2), n_freq)
    if isinstance(frequencies, int):  # the true n_fft
        return np.fft.rfftfreq(frequencies, 1.0 / sample_rate)
    return np.fft.rfftfreq((n_freq - 1) * 2, 1.0 / sample_rate)


def _mel_matrix(sample_rate, n_freq, n_mels, f_min, f_max, htk, norm, frequencies='kapre'):
    """(n_mels, n_freq) triangles of librosa.filters.mel (torchaudio's melscale_fbanks for
    frequencies='linspace'), in float64."""
    freqs = _fft_frequencies(sample_rate, n_freq, frequencies)
    # n_mels + 2 edges evenly spaced in mel; filter i rises from edge i to i + 1, falls to i + 2.
    mel_edges = np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2)
    edges = mel_to_hz(mel_edges, htk)
    widths = np.diff(edges)
    offsets = edges[:, np.newaxis] - freqs[np.newaxis, :]
    rising = -offsets[:-2] / widths[:-1, np.newaxis]
    falling = offsets[2:] / widths[1:, np.newaxis]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == 'slaney':
        # Constant area: scale each triangle by 2 / (its width in Hz).
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, np.newaxis]
    elif norm is not None:
        weights = _normalize_rows(weights, norm, _MEL_NORM_THRESHOLD)
    return weights


def _normalize_rows(matrix, p, threshold):
    """Divides each row by its p-norm (p = inf: max |.|), as librosa.util.normalize: a row whose
    norm is below `threshold` is left as it is."""
    magnitude = np.abs(matrix)
    if p == math.inf:
        norms = magnitude.max(axis=1, keepdims=True)
    else:
        norms = np.sum(magnitude**p, axis=1, keepdims=True) ** (1.0 / p)
    norms[norms < threshold] = 1.0
    return matrix / norms


def _log_matrix(sample_rate, n_freq, n_bins, bins_per_octave, f_min, spread):
    """(n_bins, n_freq) log-normal filters of kapre.backend.filterbank_log, in float64."""
    sigma = spread / bins_per_octave
    # DC (bin 0) has no log frequency; its row stays zero.
    log_freqs = np.log2(_fft_frequencies(sample_rate, n_freq)[1:])
    centres = f_min * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    z = (log_freqs[np.newaxis, :] - np.log2(centres)[:, np.newaxis]) / sigma
    weights = np.zeros((n_bins, n_freq))
    # kapre's formula as it stands: log2 terms inside a natural exp. The constant -log2(sigma)
    # cancels in the normalisation; -log_freqs tilts each filter toward low frequencies.
    weights[:, 1:] = np.exp(-0.5 * z**2 - np.log2(sigma) - log_freqs[np.newaxis, :])
    # librosa.util.normalize(norm=1) on a float64 matrix: threshold is float64's tiny.
    return _normalize_rows(weights, 1, np.finfo(np.float64).tiny)


@functools.lru_cache(maxsize=16)
def dense_filterbank(key):
    kind, *args = key
    matrix = _mel_matrix(*args) if kind == 'mel' else _log_matrix(*args)
    return _read_only(np.ascontiguousarray(matrix.T))


@functools.lru_cache(maxsize=16)
def sparse_filterbank(key):
    dense = dense_filterbank(key).astype(np.float32)
    n_freq, n_features = dense.shape
    nonzero = dense != 0
    used = nonzero.any(axis=0)
    first = np.argmax(nonzero, axis=0)
    last = n_freq - 1 - np.argmax(nonzero[::-1], axis=0)
    start = np.where(used, first, 0).astype(np.int32)
    length = np.where(used, last - first + 1, 0).astype(np.int32)
    runs = [dense[s : s + n, j] for j, (s, n) in enumerate(zip(start, length))]
    weights = np.concatenate(runs) if runs else np.zeros(0, np.float32)
    return _read_only(start), _read_only(length), _read_only(weights.astype(np.float32))


def mfcc_matrix(n_mfcc, n_mels, lifter=0) -> np.ndarray:
    """(n_mels, n_mfcc) float64: the first n_mfcc rows of the orthonormal DCT-II
    (scipy.fft.dct(type=2, norm='ortho'), as librosa.feature.mfcc), transposed, with librosa's
    liftering 1 + (lifter / 2) sin(pi (k + 1) / lifter) folded into coefficient k when lifter > 0.
    ValueError naming n_mfcc or lifter when out of range. Cached and read-only."""
    n_mfcc = _check_int('n_mfcc', n_mfcc, minimum=1)
    if n_mfcc > n_mels:
        raise ValueError(
            f'n_mfcc must be <= n_mels = {n_mels} (a DCT of n_mels values has '
            f'n_mels coefficients), got n_mfcc={n_mfcc}'
        )
    lifter = _check_real('lifter', lifter)
    if lifter < 0:
        raise ValueError(f'lifter must be >= 0 (0: no liftering), got {lifter!r}')
    return _mfcc_matrix(n_mfcc, n_mels, float(lifter))


@functools.lru_cache(maxsize=16)
def _mfcc_matrix(n_mfcc, n_mels, lifter):
    n, k = np.arange(n_mels)[:, np.newaxis], np.arange(n_mfcc)[np.newaxis, :]
    matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    matrix[:, 0] /= math.sqrt(2.0)
    if lifter > 0:
        matrix *= 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(1, n_mfcc + 1) / lifter)
    return _read_only(matrix)


# librosa.pcen's defaults (librosa 0.11); its `power` is pcen_power here, since `power` already
# names the spectrum's exponent of the presets.
PCEN_DEFAULTS = dict(gain=0.98, bias=2.0, pcen_power=0.5, time_constant=0.4, eps=1e-6, b=None)


class PCENConstants(NamedTuple):
    """librosa.pcen's constants, validated, with the smoother coefficient b resolved."""

    b: float
    gain: float
    bias: float
    power: float
    eps: float


def pcen_constants(
    sample_rate,
    hop_length,
    *,
    gain=0.98,
    bias=2.0,
    pcen_power=0.5,
    time_constant=0.4,
    eps=1e-6,
    b=None,
) -> PCENConstants:
    """librosa.pcen's checks (ValueError naming the constant and its value; TypeError for a
    non-number) and its smoother coefficient: b = (sqrt(1 + 4 T**2) - 1) / (2 T**2) with
    T = time_constant * sample_rate / hop_length frames, unless b is given (0 <= b <= 1)."""
    values = dict(gain=gain, bias=bias, pcen_power=pcen_power)
    for name, value in values.items():
        if _check_real(name, value) < 0:
            raise ValueError(f'{name} must be >= 0, got {value!r}')
    eps = _check_positive('eps', eps)
    time_constant = _check_positive('time_constant', time_constant)
    if b is None:
        frames = time_constant * sample_rate / float(hop_length)
        b = (math.sqrt(1 + 4 * frames**2) - 1) / (2 * frames**2)
    elif not 0 <= _check_real('b', b) <= 1:
        raise ValueError(f'b must be in [0, 1] (None: from time_constant), got {b!r}')
    return PCENConstants(float(b), float(gain), float(bias), float(pcen_power), eps)
