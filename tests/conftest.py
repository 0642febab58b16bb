"""Shared fixtures: real speech and synthetic test batches. Helpers live in helpers.py."""

import os

# Before any native library loads: tests never need outputs near the 4 GiB default, and the fuzz
# tests must see huge requests refused rather than allocated.
os.environ.setdefault('KAPRE_FAST_MAX_OUTPUT_BYTES', str(256 << 20))

import tempfile
from pathlib import Path

import pytest

import helpers

# Where the full list of agreement figures goes (build/ is git-ignored).
FIGURES_FILE = Path(__file__).resolve().parents[1] / 'build' / 'accuracy-figures.txt'


@pytest.fixture(scope='session')
def speech():
    """The real speech recording: float32 mono, shape (132076,), peak about 0.21; without the
    file (a clone without ../shared), synthesised voiced audio of that size (helpers.load_speech;
    the terminal summary says which)."""
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
    """Says which speech the tests used, and summarises the worst agreement figures they
    recorded (helpers.record_agreement); the full list goes to FIGURES_FILE."""
    source = helpers.SPEECH_SOURCE
    if source and source['path'] is None:
        terminalreporter.write_line(
            f'speech: {source["looked_at"]} not found, so the speech cases ran on synthesised '
            f'voiced audio (helpers.synthetic_speech); set {helpers.SPEECH_VARIABLE} to the '
            'recording to use it',
            yellow=True,
        )
    elif source:
        terminalreporter.write_line(f'speech: the recording {source["path"]}')
    if not helpers.AGREEMENT:
        return
    lines = helpers.agreement_lines(helpers.AGREEMENT, helpers.AGREEMENT_MODULE)
    try:
        FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
        FIGURES_FILE.write_text('\n'.join(lines) + '\n')
        where = FIGURES_FILE
    except OSError:  # a read-only checkout
        with tempfile.NamedTemporaryFile(
            'w', prefix='kapre_fast_accuracy_', suffix='.txt', delete=False
        ) as file:
            file.write('\n'.join(lines) + '\n')
            where = file.name
    terminalreporter.section('worst agreement figures')
    for line in helpers.agreement_summary(helpers.AGREEMENT, helpers.AGREEMENT_MODULE, where):
        terminalreporter.write_line(line)
