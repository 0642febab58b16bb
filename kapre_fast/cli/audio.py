"""Reading audio and computing features on the chosen device."""

from __future__ import annotations

import numpy as np

from kapre_fast._loader import pip_install_hint
from kapre_fast.cli.options import CliError, KINDS


def _soundfile():
    try:
        import soundfile
    except ImportError as error:
        raise CliError(
            f'reading audio needs soundfile ({error}); install it with '
            f'`{pip_install_hint("cli")}` or `pip install soundfile`'
        ) from None
    return soundfile


def read_audio(path):
    """(float32 (time, channels) samples, sample rate) of an audio file; CliError if unreadable."""
    _soundfile()
    from kapre_fast.corpus import decode

    try:
        return decode.read(path)
    except decode.DecodeError as error:
        raise CliError(str(error)) from None


def load_backend(device):
    """kapre_fast.cpu, or kapre_fast.gpu when --device gpu (a CliError saying why it is not
    available otherwise)."""
    if device == 'cpu':
        from kapre_fast import cpu

        return cpu
    try:
        import kapre_fast.gpu as gpu
    except Exception as error:  # ImportError, or CuPy/CUDA failing while the module loads
        # kapre_fast.gpu's own message says what is missing (CuPy, the CUDA build, a driver or
        # a GPU) and what to install: it is not repeated here.
        raise CliError(
            f'kapre_fast.gpu is not available ({type(error).__name__}: {error}); '
            'use --device cpu meanwhile'
        ) from None
    return gpu


def compute_features(backend, kind, audio, kwargs, threads=None):
    """Features of one (time, channels) float32 recording: (frames, features, channels)."""
    function = getattr(backend, KINDS[kind][0])
    batch = np.ascontiguousarray(audio[np.newaxis])
    if backend.__name__.endswith('.cpu'):
        return function(batch, threads=threads, **kwargs)[0]
    import cupy

    result = function(cupy.asarray(batch), **kwargs)
    return cupy.asnumpy(result)[0]


def synthesize(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A chirp from 100 Hz to 8 kHz plus a little noise and a silent gap: (1, time, 1) float32."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0, f1 = 100.0, min(8000.0, sample_rate / 2.5)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    audio = 0.5 * np.sin(phase) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    audio[int(0.45 * t.size) : int(0.55 * t.size)] = 0.0
    return audio.astype(np.float32)[None, :, None]
