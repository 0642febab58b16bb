"""The test harness itself: the speech stand-in used where the recording is missing (a clone
without ../shared), and the short end-of-run summary of the agreement figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

import helpers

TESTS = Path(__file__).resolve().parent


def longest_run(mask) -> int:
    """Length of the longest run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max(initial=0))


def pitch_strength(piece, sample_rate, low_hz=60.0, high_hz=400.0):
    """(normalised autocorrelation peak, its frequency in Hz) over the lags of a voice's pitch."""
    piece = piece.astype(np.float64) - piece.mean()
    correlation = np.correlate(piece, piece, 'full')[len(piece) - 1 :]
    correlation /= correlation[0]
    low, high = int(sample_rate / high_hz), int(sample_rate / low_hz)
    lag = low + int(np.argmax(correlation[low:high]))
    return float(correlation[lag]), sample_rate / lag


def test_missing_recording_falls_back_to_the_synthesised_speech(monkeypatch, tmp_path):
    monkeypatch.setenv(helpers.SPEECH_VARIABLE, str(tmp_path / 'nonexistent.npz'))
    monkeypatch.setattr(helpers, 'SPEECH_SOURCE', {})  # the session's own record stays as it is
    audio = helpers.load_speech()
    assert helpers.SPEECH_SOURCE == {'looked_at': str(tmp_path / 'nonexistent.npz'), 'path': None}
    np.testing.assert_array_equal(audio, helpers.synthetic_speech())  # deterministic


def test_synthesised_speech_looks_like_the_recording():
    audio = helpers.synthetic_speech()
    rate = helpers.SPEECH_RATE
    assert audio.dtype == np.float32 and audio.shape == (helpers.SPEECH_SAMPLES,)
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() == pytest.approx(helpers.SPEECH_PEAK, rel=1e-6)
    # Digital silence: stretches of exact zeros of at least 0.1 s.
    assert longest_run(audio == 0) >= 0.1 * rate
    # Voiced: around its loudest point, a strong periodicity at a speaking pitch.
    middle = int(np.argmax(np.abs(audio)))
    piece = audio[max(0, middle - 1024) :][:2048]
    strength, pitch = pitch_strength(piece, rate)
    assert strength > 0.6 and 90 <= pitch <= 190, (strength, pitch)
    # Not one tone: as in the recording, most power is below 500 Hz, but the formants put some
    # between 500 Hz and 4 kHz, and breath some above (the recording: 98.5%, 1.4%, 0.04%).
    frequencies, power = signal.welch(audio, rate, nperseg=2048)
    share = [
        power[(frequencies >= low) & (frequencies < high)].sum() / power.sum()
        for low, high in ((0, 500), (500, 4000), (4000, rate))
    ]
    assert share[0] > 0.5 and share[1] > 0.01 and share[2] > 1e-5, share
    # Another seed gives other audio.
    assert not np.array_equal(audio, helpers.synthetic_speech(seed=1))


def test_speech_batch_draws_no_silent_example():
    # Mostly digital silence: most slices of 300 samples would be all zeros.
    speech = np.zeros(60000, np.float32)
    speech[20000:24000] = np.sin(np.arange(4000) / 5.0)
    for seed in range(5):
        batch = helpers.speech_batch(speech, n_examples=3, n_samples=300, n_channels=2, seed=seed)
        assert batch.reshape(3, -1).any(axis=1).all()
    with pytest.raises(ValueError, match='no slice of 300 samples'):
        helpers.speech_batch(np.zeros(60000, np.float32), n_samples=300)


def test_real_recording_is_used_when_present(monkeypatch, tmp_path):
    recording = (0.2 * np.sin(np.arange(5000) / 7.0)).astype(np.float64)
    path = tmp_path / 'speech.npz'
    np.savez(path, audio_data=recording)
    monkeypatch.setenv(helpers.SPEECH_VARIABLE, str(path))
    monkeypatch.setattr(helpers, 'SPEECH_SOURCE', {})
    audio = helpers.load_speech()
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, recording.astype(np.float32))
    assert helpers.SPEECH_SOURCE['path'] == str(path)


def test_speech_tests_pass_without_the_recording_and_the_summary_says_so(tmp_path):
    # A few speech cases (NumPy only, no TensorFlow) in a pytest of their own, file missing.
    env = dict(os.environ, **{helpers.SPEECH_VARIABLE: str(tmp_path / 'nonexistent.npz')})
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            '-q',
            '-p',
            'no:cacheprovider',
            'test_reference.py',
            '-k',
            'round_trip_reconstructs_speech',
        ],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    outcome = result.stdout.strip().splitlines()[-1]  # '3 passed, 100 deselected in 2.1s'
    assert ' passed' in outcome and 'failed' not in outcome and 'error' not in outcome, outcome
    assert 'not found, so the speech cases ran on synthesised voiced audio' in result.stdout
    assert str(tmp_path / 'nonexistent.npz') in result.stdout


def test_agreement_summary_is_short_and_names_the_worst_share_per_group():
    figures, modules = {}, {}
    for backend in ('cpu', 'tf_op', 'builtin'):
        for family in ('stft', 'melspectrogram', 'log_frequency_spectrogram', 'stft_mag_phase'):
            for index, label in enumerate(('max', 'p99.9')):
                share = 0.1 * index + {'cpu': 0.5, 'tf_op': 0.3, 'builtin': 0.7}[backend]
                figures[f'{backend} {family} {label}'] = 1e-7
                figures[f'{backend} {family} {label} / (2 kapre + floor)'] = share
    for number in range(30):  # more groups than are shown
        figures[f'family{number} error vs reference / (2 x kapre + floor)'] = number / 100
    for name in figures:
        modules[name] = 'backends' if name.split()[0] in ('cpu', 'tf_op', 'builtin') else 'x'
    lines = helpers.agreement_summary(figures, modules, 'build/figures.txt')
    assert len(lines) <= 20
    assert lines[0] == f'{len(figures)} figures; all of them in build/figures.txt'
    rows = [line.split() for line in lines if line.startswith('  ') and '...' not in line]
    # Worst first, one row per group: builtin's worst (0.8), cpu's, tf_op's, family29's ...
    assert [(row[0], row[2]) for row in rows[:4]] == [
        ('0.800', 'builtin'),
        ('0.600', 'cpu'),
        ('0.400', 'tf_op'),
        ('0.290', 'family29'),
    ]
    assert len(rows) == 12 and rows[-1][2] == 'family21'
    assert lines[-1] == '  ... 21 more groups (each at most 0.210) in the full list'
    assert len(helpers.agreement_lines(figures, modules)) == len(figures)
