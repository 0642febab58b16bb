"""Shared test helpers: test signals, error measures against a reference, and the kapre oracle.

Every error measure is per example (axis 0 is the batch in every layout) and returns the worst
example. `record_agreement` keeps the worst figure seen per name; at the end of the run conftest
prints a short summary (agreement_summary) and writes all of them to a file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

# The checkout's parent folder holds shared/ in this project's sessions; the data is never copied
# into the repository. KAPRE_FAST_SPEECH names another file (or a missing one, to test without).
SPEECH_VARIABLE = 'KAPRE_FAST_SPEECH'
DEFAULT_SPEECH_PATH = (
    Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'speech_test_file.npz'
)
# The file stores no rate. At 22050 Hz its spectrum ends sharply at 8.0 kHz (a band-limited
# recording resampled to 22050 Hz); at 16 kHz that edge would sit at an odd 5.8 kHz.
SPEECH_SAMPLES, SPEECH_PEAK, SPEECH_RATE = 132076, 0.21, 22050

# The five front-end families of every backend (kapre_fast._api.FUNCTIONS' order), small
# framing that runs fast, and each family's own arguments at that size (test_torch, test_jax).
FAMILIES = [
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
]
SMALL = dict(n_fft=64, win_length=48, hop_length=20, pad_begin=True)
FAMILY_ARGS = {
    'stft_magnitude': dict(return_decibel=True),
    'melspectrogram': dict(sample_rate=8000, n_mels=12),
    'log_frequency_spectrogram': dict(sample_rate=8000, log_n_bins=12, log_f_min=300.0),
    'stft_mag_phase': dict(return_decibel=True),
    'stft': {},
}
# Config A's dB mel spectrogram (bench/configs.py): 16 kHz speech, 25 ms frames, 10 ms hop.
MEL_DB = dict(
    n_fft=512, win_length=400, hop_length=160, sample_rate=16000, n_mels=64, return_decibel=True
)
# The arguments of FrontEnd.stft (and kapre's get_stft_magnitude_layer) that every family has.
STFT_ARGS = (
    'n_fft',
    'win_length',
    'hop_length',
    'window_name',
    'pad_begin',
    'pad_end',
    'input_data_format',
    'output_data_format',
)


def stft_of(spec):
    """The complex STFT FrontEnd with `spec`'s framing, window and layouts."""
    return type(spec).stft(**{name: getattr(spec, name) for name in STFT_ARGS})


def kernel_arguments(n_fft, win_length, hop_length, **changes):
    """The framing and dB keywords of a raw native kernel call (pybind11 frontend, the GPU
    emulation's Plan; the kernel-call contract's names): no padding, magnitude output (0), kapre's
    dB (amin 1e-5, ref 1, 80 dB, 10 log10 of |X|); `changes` replace or add keywords."""
    arguments = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        pad_begin=0,
        pad_end=False,
        output=0,
        decibel=True,
        amin=1e-5,
        ref_value=1.0,
        dynamic_range=80.0,
        power=1,
        db_multiplier=10.0,
    )
    arguments.update(changes)
    return arguments


AGREEMENT: dict = {}
AGREEMENT_MODULE: dict = {}  # name -> the test module that first recorded it ('backends', ...)
# What load_speech returned: {'path': the file read, or None for the synthesised stand-in,
# 'looked_at': the path it tried}. conftest's terminal summary reports it.
SPEECH_SOURCE: dict = {}


def record_agreement(name: str, value: float) -> float:
    """Remembers the worst (largest) `value` seen under `name`; returns `value`."""
    AGREEMENT[name] = max(AGREEMENT.get(name, -np.inf), float(value))
    # pytest names the running test as 'tests/test_backends.py::test_x[...] (call)'.
    test = os.environ.get('PYTEST_CURRENT_TEST', '').split('::')[0]
    AGREEMENT_MODULE.setdefault(name, Path(test).stem.removeprefix('test_') or '?')
    return value


# A figure whose name divides by its allowance ('... / (2 kapre + floor)'): the share of the
# allowed error used, which must stay <= 1.
_SHARE_NAME = re.compile(r'/ \(2\b')


def agreement_summary(figures: dict, modules: dict, full_list: str, max_groups=12) -> list:
    """A few lines for the end of the run: per test module and the first word of the figure's
    name (its backend or front end), the worst share of the allowed error; the worst groups
    first, at most `max_groups` of them. `full_list` says where every figure is."""
    worst = {}
    for name, value in figures.items():
        if _SHARE_NAME.search(name):
            group = (modules.get(name, '?'), name.split()[0])
            if group not in worst or value > worst[group][0]:
                worst[group] = (value, name)
    lines = [f'{len(figures)} figures; all of them in {full_list}']
    if worst:
        lines.append(
            'share of the allowed error used (<= 1 passes), worst per test module and '
            'backend/front end:'
        )
        ranked = sorted(worst.items(), key=lambda item: -item[1][0])
        lines += [
            f'  {value:6.3f}  {module}: {name}'
            for (module, _), (value, name) in ranked[:max_groups]
        ]
        if len(ranked) > max_groups:
            lines.append(
                f'  ... {len(ranked) - max_groups} more groups (each at most '
                f'{ranked[max_groups - 1][1][0]:.3f}) in the full list'
            )
    return lines


def agreement_lines(figures: dict, modules: dict) -> list:
    """Every figure, one per line, sorted by name: '<name>: <value> (<module>)'."""
    return [
        f'{name}: {value:.3g} ({modules.get(name, "?")})' for name, value in sorted(figures.items())
    ]


# ----- signals -------------------------------------------------------------------------------


def speech_path() -> Path:
    """The speech recording's file: $KAPRE_FAST_SPEECH, else ../shared/data beside the checkout."""
    return Path(os.environ.get(SPEECH_VARIABLE) or DEFAULT_SPEECH_PATH)


def load_speech() -> np.ndarray:
    """The real speech recording as float32 mono, shape (132076,), peak about 0.21; where the
    file is missing (a clone without ../shared), synthetic_speech() of the same length and peak.
    Records which in SPEECH_SOURCE."""
    path = speech_path()
    SPEECH_SOURCE.update(looked_at=str(path), path=str(path) if path.exists() else None)
    if not path.exists():
        return synthetic_speech()
    with np.load(path) as data:
        return data['audio_data'].astype(np.float32)


# Formants (F1, F2, F3 in Hz) of five vowels, and their bandwidths.
_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
)
_FORMANT_BANDWIDTHS = (80.0, 100.0, 120.0)


def synthetic_speech(
    n_samples=SPEECH_SAMPLES, sample_rate=SPEECH_RATE, peak=SPEECH_PEAK, seed=0
) -> np.ndarray:
    """Voiced stand-in for the speech recording, float32 mono (n_samples,), peak `peak`.

    Syllables of 0.12-0.35 s: a glottal pulse train (pitch 95-180 Hz, gliding down, with
    jitter) with spectral tilt, through a cascade of three formant resonators of one vowel, plus a
    little breath noise, under a half-sine envelope. Between syllables, short pauses of
    faint noise; every ~1.3 s a stretch of 0.15-0.3 s of digital silence (exact zeros), which
    exercises the dB floor and the silent-frame paths as the real file's pauses do.
    """
    from scipy import signal

    rng = np.random.default_rng(seed)
    audio = np.zeros(n_samples)
    position, next_silence = 0, int(0.4 * sample_rate)
    while position < n_samples:
        if position >= next_silence:
            position += int(rng.uniform(0.15, 0.3) * sample_rate)  # left at exact zeros
            next_silence = position + int(rng.uniform(1.0, 1.6) * sample_rate)
            continue
        length = min(int(rng.uniform(0.12, 0.35) * sample_rate), n_samples - position)
        t = np.arange(length) / sample_rate
        f0 = rng.uniform(95, 180) * (1 - 0.15 * t / t[-1]) * (1 + 0.01 * rng.standard_normal())
        cycles = np.cumsum(f0 / sample_rate)
        source = np.diff(np.floor(cycles), prepend=0.0)  # one impulse per glottal cycle
        source = signal.lfilter([1.0], [1.0, -0.96], source)  # glottal spectral tilt
        for frequency, bandwidth in zip(_VOWELS[rng.integers(len(_VOWELS))], _FORMANT_BANDWIDTHS):
            radius = np.exp(-np.pi * bandwidth / sample_rate)
            theta = 2 * np.pi * frequency / sample_rate
            source = signal.lfilter(
                [1 - radius], [1.0, -2 * radius * np.cos(theta), radius**2], source
            )
        envelope = np.sin(np.pi * np.arange(length) / length) * rng.uniform(0.5, 1.0)
        breath = 0.01 * rng.standard_normal(length)  # keeps the top octaves above the floor
        audio[position : position + length] = envelope * (source / np.abs(source).max() + breath)
        position += length
        pause = min(int(rng.uniform(0.03, 0.12) * sample_rate), n_samples - position)
        audio[position : position + pause] = 1e-3 * rng.standard_normal(pause)
        position += pause
    return (audio * (peak / np.abs(audio).max())).astype(np.float32)


def speech_batch(speech, n_examples=2, n_samples=16000, n_channels=1, seed=0) -> np.ndarray:
    """float32 (batch, channels, time) slices of `speech`; a second channel is another slice of
    the same recording, shifted and scaled, so channels differ. An example that would be all
    digital silence (a short slice inside a pause of the synthesised stand-in; never in the
    recording) is drawn again: whole silent examples have tests of their own."""
    rng = np.random.default_rng(seed)
    longest = len(speech) - n_samples - 5000
    batch = np.empty((n_examples, n_channels, n_samples), np.float32)
    for example in range(n_examples):
        for _ in range(100):
            start = int(rng.integers(0, longest))
            for channel in range(n_channels):
                shift = 3001 * channel
                piece = speech[start + shift : start + shift + n_samples]
                batch[example, channel] = (0.6**channel) * piece
            if batch[example].any():
                break
        else:
            raise ValueError(f'speech_batch: no slice of {n_samples} samples with sound in it')
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


def contract_keywords(*values) -> dict:
    """The kernel-call contract's arguments (kapre_fast/_kernel_args.py), given in its order,
    as the keywords the native modules take: for fuzzers that draw them positionally."""
    from kapre_fast import _kernel_args

    return dict(zip(_kernel_args.NAMES, values, strict=True))


def check_keras_copy_and_gradient(model, x, ours):
    """A serialised and deserialised copy of the Keras `model` gives `ours` (model(x)) bit for
    bit, and the sum of squares of model(x) has a finite, nonzero gradient in x (TensorFlow)."""
    import keras
    import tensorflow as tf

    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    np.testing.assert_array_equal(copy(x).numpy(), ours)
    audio = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(audio)
        loss = tf.reduce_sum(model(audio) ** 2)
    gradient = tape.gradient(loss, audio).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0
