"""The benchmark configurations (A-D), their work model, and the synthetic input they run on.

A configuration is a kapre.composed call (which get_* function, with which keyword arguments) and
an input batch size and duration. Everything a method needs to reproduce the features (FFT size,
framing, filterbank, decibel settings) is read from those kapre keyword arguments, so each method
is configured from one place.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# kapre.composed function, kapre_fast.cpu function and FrontEnd constructor, by feature kind.
KAPRE_FUNCTIONS = {
    'mel': 'get_melspectrogram_layer',
    'stft': 'get_stft_magnitude_layer',
    'log': 'get_log_frequency_spectrogram_layer',
}
FAST_FUNCTIONS = {
    'mel': 'melspectrogram',
    'stft': 'stft_magnitude',
    'log': 'log_frequency_spectrogram',
}

INPUT_SEED = 20240601


@dataclasses.dataclass(frozen=True)
class Config:
    """One benchmark configuration: what to compute and on how much audio."""

    name: str  # 'A'
    title: str  # one line for tables
    kind: str  # 'mel', 'stft' or 'log'
    sample_rate: int
    batch: int
    seconds: float
    quick_batch: int
    quick_seconds: float
    kapre_kwargs: dict  # keyword arguments of the kapre.composed function (no input_shape)

    # ----- derived settings, all read from kapre_kwargs ------------------------------------------

    @property
    def n_fft(self) -> int:
        return self.kapre_kwargs['n_fft']

    @property
    def win_length(self) -> int:
        return self.kapre_kwargs.get('win_length') or self.n_fft

    @property
    def hop_length(self) -> int:
        return self.kapre_kwargs.get('hop_length') or self.win_length // 4

    @property
    def decibel(self) -> bool:
        return bool(self.kapre_kwargs.get('return_decibel', False))

    @property
    def db_amin(self) -> float:
        return self.kapre_kwargs.get('db_amin', 1e-5)

    @property
    def db_ref_value(self) -> float:
        return self.kapre_kwargs.get('db_ref_value', 1.0)

    @property
    def db_dynamic_range(self) -> float:
        return self.kapre_kwargs.get('db_dynamic_range', 80.0)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def sized(self, quick: bool) -> 'Sized':
        """This configuration with its input size fixed (quick: the smoke-test size)."""
        if quick:
            return Sized(self, self.quick_batch, self.quick_seconds)
        return Sized(self, self.batch, self.seconds)


@dataclasses.dataclass(frozen=True)
class Sized:
    """A configuration at one input size, with the work model of that input."""

    config: Config
    batch: int
    seconds: float

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.config.sample_rate))

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio in one batch (what x-realtime divides by the wall time)."""
        return self.batch * self.n_samples / self.config.sample_rate

    @property
    def n_frames(self) -> int:
        """Frames per example, as tf.signal.frame counts them (no padding)."""
        c = self.config
        return 1 + (self.n_samples - c.win_length) // c.hop_length

    def work(self) -> dict:
        """The work model: sizes, bytes moved at the boundary and the FFT flop count.

        FFT flops use the usual 5 N log2 N / 2 for one real transform of N points, so the
        'GFLOP/s' of every method are comparable with each other and with FFT libraries.
        """
        c = self.config
        frames = self.batch * self.n_frames
        fft_flops = frames * 2.5 * c.n_fft * math.log2(c.n_fft)
        n_features = {
            'mel': c.kapre_kwargs.get('n_mels', 128),
            'log': c.kapre_kwargs.get('log_n_bins', 84),
            'stft': c.n_freq,
        }[c.kind]
        return {
            'batch': self.batch,
            'seconds_per_example': self.seconds,
            'samples_per_example': self.n_samples,
            'audio_seconds': self.audio_seconds,
            'frames_per_example': self.n_frames,
            'frames_total': frames,
            'n_fft': c.n_fft,
            'n_freq': c.n_freq,
            'n_features': n_features,
            'fft_flops': fft_flops,
            'input_bytes': 4 * self.batch * self.n_samples,
            'output_bytes': 4 * frames * n_features,
            'windowed_frames_bytes': 4 * frames * c.n_fft,
            'spectrum_bytes': 8 * frames * c.n_freq,
        }


def _kapre(**kwargs) -> dict:
    # Every method gets the same layouts, stated rather than left to Keras' 'default'.
    return dict(kwargs, input_data_format='channels_last', output_data_format='channels_last')


CONFIGS = {
    'A': Config(
        name='A',
        title='16 x 10 s @ 22.05 kHz, n_fft 2048, hop 512, 128 mels, dB',
        kind='mel',
        sample_rate=22050,
        batch=16,
        seconds=10.0,
        quick_batch=2,
        quick_seconds=2.0,
        kapre_kwargs=_kapre(
            n_fft=2048, hop_length=512, sample_rate=22050, n_mels=128, return_decibel=True
        ),
    ),
    'B': Config(
        name='B',
        title='64 x 1 s @ 16 kHz, n_fft 512, win 400, hop 160, 64 mels, dB',
        kind='mel',
        sample_rate=16000,
        batch=64,
        seconds=1.0,
        quick_batch=8,
        quick_seconds=1.0,
        kapre_kwargs=_kapre(
            n_fft=512,
            win_length=400,
            hop_length=160,
            sample_rate=16000,
            n_mels=64,
            return_decibel=True,
        ),
    ),
    'C': Config(
        name='C',
        title='4 x 60 s @ 44.1 kHz, n_fft 4096, hop 1024, STFT magnitude',
        kind='stft',
        sample_rate=44100,
        batch=4,
        seconds=60.0,
        quick_batch=1,
        quick_seconds=4.0,
        kapre_kwargs=_kapre(n_fft=4096, hop_length=1024),
    ),
    'D': Config(
        name='D',
        title='32 x 3 s @ 16 kHz, n_fft 1024, hop 256, log-frequency, dB',
        kind='log',
        sample_rate=16000,
        batch=32,
        seconds=3.0,
        quick_batch=4,
        quick_seconds=1.0,
        kapre_kwargs=_kapre(n_fft=1024, hop_length=256, sample_rate=16000, return_decibel=True),
    ),
}


def synthesize(sized: Sized, seed: int = INPUT_SEED) -> np.ndarray:
    """The input batch: float32 (batch, time, 1), each example an exponential chirp plus noise.

    Example i sweeps from 40 Hz to 0.45 * sample_rate over its duration, starting at a phase and
    amplitude of its own, with white noise 40 dB below the chirp. Fixed seed: every run and every
    method sees the same samples.
    """
    rng = np.random.default_rng(seed)
    sr = sized.config.sample_rate
    t = np.arange(sized.n_samples, dtype=np.float64) / sr
    duration = sized.n_samples / sr
    f0, f1 = 40.0, 0.45 * sr
    rate = math.log(f1 / f0) / duration
    sweep_phase = 2 * math.pi * f0 * np.expm1(rate * t) / rate
    audio = np.empty((sized.batch, sized.n_samples, 1), dtype=np.float32)
    for i in range(sized.batch):
        amplitude = rng.uniform(0.3, 0.9)
        start = rng.uniform(0, 2 * math.pi)
        noise = rng.standard_normal(sized.n_samples) * amplitude * 0.01
        audio[i, :, 0] = amplitude * np.sin(sweep_phase + start) + noise
    return audio


def parse_names(text: str | None) -> list[str]:
    """'A,C' -> ['A', 'C']; None or 'all' -> every configuration. Unknown names raise."""
    if text is None or text.strip().lower() == 'all':
        return list(CONFIGS)
    names = [part.strip().upper() for part in text.split(',') if part.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        raise ValueError(
            f'unknown configuration(s) {", ".join(unknown)}; choose from {", ".join(CONFIGS)}'
        )
    return names


def parse_counts(text: str, what: str, named: dict | None = None) -> list[int]:
    """'1,16,128' -> [1, 16, 128]: whole numbers >= 1 in the order given, repeats dropped;
    `named` maps words to numbers ({'all': cores}). ValueError naming `what` otherwise."""
    counts = []
    for part in text.split(','):
        part = part.strip().lower()
        if not part:
            continue
        if named and part in named:
            count = named[part]
        else:
            try:
                count = int(part)
            except ValueError:
                raise ValueError(f'{what}s are whole numbers, got {part!r}') from None
        if count < 1:
            raise ValueError(f'{what}s must be >= 1, got {count}')
        if count not in counts:
            counts.append(count)
    if not counts:
        raise ValueError(f'no {what} given')
    return counts
