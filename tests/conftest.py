"""Shared fixtures: real speech and synthetic test batches. Helpers live in helpers.py."""

import os

# Before any native library loads: tests never need outputs near the 4 GiB default, and the fuzz
# tests must see huge requests refused rather than allocated.
os.environ.setdefault('KAPRE_FAST_MAX_OUTPUT_BYTES', str(256 << 20))

import pytest

import helpers


@pytest.fixture(scope='session')
def speech():
    """The real speech recording: float32 mono, shape (132076,), peak about 0.21."""
    return helpers.load_speech()


@pytest.fixture
def speech_batch(speech):
    """Factory: speech_batch(n_examples, n_samples, n_channels, seed) -> float32 (batch, ch, time)
    slices of the speech recording."""

    def make(n_examples=2, n_samples=16000, n_channels=1, seed=0):
        return helpers.speech_batch(speech, n_examples, n_samples, n_channels, seed)

    return make


@pytest.fixture
def noise_batch():
    """Factory: noise_batch(n_examples, n_samples, n_channels, seed) -> float32 (batch, ch, time)
    noise plus a tone, with a chunk of digital silence in every example."""
    return helpers.noise_batch


def pytest_terminal_summary(terminalreporter):
    """Prints the worst agreement figures the tests recorded (helpers.record_agreement)."""
    if helpers.AGREEMENT:
        terminalreporter.section('worst agreement figures')
        for name, value in sorted(helpers.AGREEMENT.items()):
            terminalreporter.write_line(f'{name}: {value:.3g}')
