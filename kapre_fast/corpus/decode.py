"""Audio file -> float32 (time, channels) samples: decoding (soundfile), a segment, mono,
resampling (soxr) and fixed-length chunks. Samples that are NaN or infinite, and rates that
would need more than MAX_UPSAMPLING times the samples, are refused (DecodeError)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kapre_fast._loader import pip_install_hint

# The most a file may be upsampled (8 kHz to 384 kHz is 48): a header claiming a few Hz would
# otherwise ask soxr for gigabytes.
MAX_UPSAMPLING = 256


class DecodeError(ValueError):
    """A file that gives no samples (missing, unreadable, not audio, corrupt, empty); the message
    starts with its path."""


def _soundfile():
    try:
        import soundfile
    except ImportError as error:
        raise ImportError(
            f'reading audio needs soundfile ({error}); install it with '
            f'`{pip_install_hint("corpus")}` or `pip install soundfile`'
        ) from None
    return soundfile


def read(path, offset=None, duration=None):
    """(float32 (time, channels) samples, sample rate) of an audio file, or of `duration`
    seconds from `offset` seconds; DecodeError if it gives none."""
    soundfile = _soundfile()
    path = Path(path)
    if not path.exists():
        raise DecodeError(f'{path}: no such file')
    if path.is_dir():
        raise DecodeError(f'{path}: is a folder, not an audio file')
    # Bytes on POSIX: a name that is not UTF-8 (os.fsdecode's surrogates) opens as it is.
    name = str(path) if os.name == 'nt' else os.fsencode(path)
    try:
        with soundfile.SoundFile(name) as file:
            rate = file.samplerate
            if offset:
                file.seek(min(round(offset * rate), file.frames))
            frames = -1 if duration is None else max(1, round(duration * rate))
            audio = file.read(frames, dtype='float32', always_2d=True)
    except (
        RuntimeError,
        OSError,
        ValueError,
        TypeError,
        EOFError,
        soundfile.SoundFileError,
    ) as error:
        reason = getattr(error, 'error_string', None) or str(error) or type(error).__name__
        raise DecodeError(f'{path}: cannot read audio: {reason}') from None
    if audio.shape[0] == 0:
        where = f' from {offset} s' if offset else ''
        raise DecodeError(f'{path}: no samples{where} (empty audio)')
    finite = np.isfinite(audio)
    if not finite.all():
        raise DecodeError(
            f'{path}: {audio.size - int(np.count_nonzero(finite))} of {audio.size} '
            'samples are NaN or infinite (not audio)'
        )
    return audio, rate


def to_mono(audio):
    """The channels' mean, as one channel (float32)."""
    return audio if audio.shape[1] == 1 else audio.mean(axis=1, keepdims=True, dtype=np.float32)


def resample(audio, rate, target):
    """`audio` at `rate` resampled to `target` Hz with soxr (its default 'HQ' quality); the
    same array when the rates are equal or `target` is None."""
    if target is None or rate == target:
        return audio
    if target > MAX_UPSAMPLING * rate:  # checked before soxr allocates the result
        raise ValueError(
            f"a sample rate of {rate} Hz (the file's header) cannot be resampled "
            f'to {target} Hz: {target / rate:.3g} times as many samples, at most '
            f'{MAX_UPSAMPLING} (a damaged header?)'
        )
    try:
        import soxr
    except ImportError as error:
        raise ImportError(
            f'resampling needs soxr ({error}); install it with '
            f'`{pip_install_hint("corpus")}` or `pip install soxr`'
        ) from None
    return np.ascontiguousarray(soxr.resample(audio, rate, target), dtype=np.float32)


def chunks(audio, length):
    """`audio` cut into consecutive pieces of `length` samples; the last one is zero-padded to
    that length (a recording shorter than `length` gives one padded piece)."""
    count = -(-audio.shape[0] // length)
    padded = np.zeros((count * length, audio.shape[1]), np.float32)
    padded[: audio.shape[0]] = audio
    return [padded[k * length : (k + 1) * length] for k in range(count)]
