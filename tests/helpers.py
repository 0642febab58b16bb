"""Shared test helpers: test signals, error measures against a reference, and the kapre oracle.

Every error measure is per example (axis 0 is the batch in every layout) and returns the worst
example. `record_agreement` keeps the worst figure seen per name; conftest prints them at the end
of the run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

# The checkout's parent folder holds shared/; the data is never copied into the repository.
SPEECH_PATH = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'speech_test_file.npz'

AGREEMENT: dict = {}


def record_agreement(name: str, value: float) -> float:
    """Remembers the worst (largest) `value` seen under `name`; returns `value`."""
    AGREEMENT[name] = max(AGREEMENT.get(name, -np.inf), float(value))
    return value


# ----- signals -------------------------------------------------------------------------------


def load_speech() -> np.ndarray:
    """The real speech recording as float32 mono, shape (132076,)."""
    if not SPEECH_PATH.exists():
        raise FileNotFoundError(f'speech test data not found at {SPEECH_PATH}')
    with np.load(SPEECH_PATH) as data:
        return data['audio_data'].astype(np.float32)


def speech_batch(speech, n_examples=2, n_samples=16000, n_channels=1, seed=0) -> np.ndarray:
    """float32 (batch, channels, time) slices of `speech`; a second channel is another slice of
    the same recording, shifted and scaled, so channels differ."""
    rng = np.random.default_rng(seed)
    longest = len(speech) - n_samples - 5000
    batch = np.empty((n_examples, n_channels, n_samples), np.float32)
    for example in range(n_examples):
        start = int(rng.integers(0, longest))
        for channel in range(n_channels):
            shift = 3001 * channel
            piece = speech[start + shift : start + shift + n_samples]
            batch[example, channel] = (0.6**channel) * piece
    return batch


def noise_batch(n_examples=2, n_samples=16000, n_channels=1, seed=0) -> np.ndarray:
    """float32 (batch, channels, time) noise plus a tone, with a chunk of digital silence (exact
    zeros) in every example: the middle third of the first, the first quarter of the others."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16000.0
    batch = 0.1 * rng.standard_normal((n_examples, n_channels, n_samples))
    batch += 0.3 * np.sin(2 * np.pi * 441.0 * t)
    for example in range(n_examples):
        if example == 0:
            batch[example, :, n_samples // 3 : 2 * n_samples // 3] = 0.0
        else:
            batch[example, :, : n_samples // 4] = 0.0
    return batch.astype(np.float32)


def to_input_layout(batch_bct: np.ndarray, data_format: str) -> np.ndarray:
    """A (batch, channels, time) batch in a resolved input data format."""
    if data_format == 'channels_last':
        return np.ascontiguousarray(batch_bct.transpose(0, 2, 1))
    return batch_bct


# ----- error measures ------------------------------------------------------------------------


def _per_example(a):
    return np.asarray(a).reshape(len(a), -1)


def peak_relative_error(actual, reference) -> float:
    """Worst example's max |actual - reference| divided by that example's peak |reference|
    (never per element). An all-zero example is measured in absolute terms."""
    actual, reference = _per_example(actual), _per_example(reference)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    if actual.size == 0:
        return 0.0
    error = np.abs(actual.astype(np.complex128) - reference).max(axis=1)
    peak = np.abs(reference).max(axis=1)
    return float((error / np.where(peak > 0, peak, 1.0)).max())


def decibel_error(actual, reference, percentile=99.9, within=None) -> float:
    """Worst example's `percentile` of |actual - reference| in dB; with `within`, only over the
    elements whose reference is at most `within` dB below that example's maximum."""
    actual, reference = _per_example(actual), _per_example(reference)
    difference = np.abs(actual.astype(np.float64) - reference)
    if within is not None:
        keep = reference >= reference.max(axis=1, keepdims=True) - within
        return max(float(np.percentile(d[k], percentile)) for d, k in zip(difference, keep))
    return float(np.percentile(difference, percentile, axis=1).max())


def decibel_to_magnitude(db) -> np.ndarray:
    """Undoes kapre's 10 * log10 up to its constant factor max(amin, ref_value), which cancels in
    peak-relative errors. The amin floor and the dynamic-range clamp stay applied."""
    return 10.0 ** (np.asarray(db, np.float64) / 10.0)


def phase_error(actual, reference, magnitude, floor=1e-3) -> float:
    """Worst |actual - reference| phase difference wrapped to (-pi, pi], only where `magnitude`
    is above `floor` times its example's peak (phase is ill-defined near zero)."""
    actual, reference = _per_example(actual), _per_example(reference)
    magnitude = _per_example(magnitude)
    difference = np.angle(np.exp(1j * (actual.astype(np.float64) - reference)))
    keep = magnitude > floor * magnitude.max(axis=1, keepdims=True)
    return float(np.abs(difference[keep]).max(initial=0.0))


def split_channels(y, n_groups, data_format) -> list:
    """Splits an output into `n_groups` equal groups of channels (e.g. [magnitude, phase])."""
    axis = -1 if data_format == 'channels_last' else 1
    return np.split(y, n_groups, axis=axis)


# ----- the kapre oracle ----------------------------------------------------------------------

_COMPOSED = {
    'stft_magnitude': 'get_stft_magnitude_layer',
    'melspectrogram': 'get_melspectrogram_layer',
    'log_frequency_spectrogram': 'get_log_frequency_spectrogram_layer',
    'stft_mag_phase': 'get_stft_mag_phase',
}


def kapre_output(function: str, x: np.ndarray, **kwargs) -> np.ndarray:
    """What kapre 0.4.1 computes for `function` (a kapre_fast.reference name) on `x`.

    The composed functions are built with input_shape=x.shape[1:]; 'stft' is kapre's STFT layer
    and 'istft' its InverseSTFT layer. Imports TensorFlow on first use.
    """
    import tensorflow as tf
    from kapre import composed, time_frequency

    with warnings.catch_warnings():
        # Keras warns about input_shape on a layer; librosa about empty mel filters.
        warnings.simplefilter('ignore')
        if function == 'stft':
            layer = time_frequency.STFT(**kwargs)
        elif function == 'istft':
            layer = time_frequency.InverseSTFT(**kwargs)
        else:
            layer = getattr(composed, _COMPOSED[function])(input_shape=x.shape[1:], **kwargs)
        return layer(tf.constant(x)).numpy()
