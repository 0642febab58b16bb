"""The argument grid every backend is checked on against kapre 0.4.1 and the float64 reference.

Drawn with a fixed seed so that every option value appears in every family of front ends
(not the full product: that would take hours)."""

import dataclasses
import random

from helpers import to_input_layout
from kapre_fast.spec import FrontEnd

COMMON_OPTIONS = {
    'window_name': [
        None,
        'hann_window',
        'hamming_window',
        'kaiser_window',
        'kaiser_bessel_derived_window',
        'vorbis_window',
    ],
    # (n_fft, win_length): win_length default / equal / below / above n_fft, odd sizes.
    'sizes': [
        (512, None),
        (256, 256),
        (400, 256),
        (511, 300),
        (256, 400),
        (255, 255),
        (128, 97),
        (1024, 1024),
    ],
    'hop': [None, 'half', 'odd', 'beyond_window'],
    'pad_begin': [False, True],
    'pad_end': [False, True],
    'input_data_format': ['default', 'channels_last', 'channels_first'],
    'output_data_format': ['default', 'channels_last', 'channels_first'],
    'n_channels': [1, 2],
    'signal': ['speech', 'noise'],
    'n_samples': [4000, 20001, 'one_frame'],  # 'one_frame': exactly win_length samples
}
DECIBEL_OPTIONS = {
    'decibel': [None, 'defaults', 'custom_low', 'custom_high'],
}
MEL_OPTIONS = {
    'sample_rate': [16000, 22050, 44100],
    'n_mels': [20, 64, 128],
    'mel_htk': [False, True],
    'mel_norm': ['slaney', None, 1, 2],
    'mel_range': [(0.0, None), (50.0, None), (300.0, 4000.0), (0.0, 8000.0)],
}
LOG_OPTIONS = {
    'sample_rate': [16000, 22050, 44100],
    'log_n_bins': [24, 60, 84],
    'log_bins_per_octave': [12, 24],
    'log_f_min': [None, 55.0],
    'log_spread': [0.125, 0.3],
}
DECIBEL_ARGS = {
    None: dict(return_decibel=False),
    'defaults': dict(return_decibel=True),
    'custom_low': dict(return_decibel=True, db_amin=1e-3, db_ref_value=0.25, db_dynamic_range=40.0),
    'custom_high': dict(
        return_decibel=True, db_amin=1e-7, db_ref_value=3.0, db_dynamic_range=120.0
    ),
}
FAMILIES = {  # family: (options, number of cases)
    'stft_magnitude': ({**COMMON_OPTIONS, **DECIBEL_OPTIONS}, 16),
    'melspectrogram': ({**COMMON_OPTIONS, **DECIBEL_OPTIONS, **MEL_OPTIONS}, 20),
    'log_frequency_spectrogram': ({**COMMON_OPTIONS, **DECIBEL_OPTIONS, **LOG_OPTIONS}, 12),
    'stft_mag_phase': ({**COMMON_OPTIONS, **DECIBEL_OPTIONS}, 12),
    'stft': (COMMON_OPTIONS, 10),
}


@dataclasses.dataclass(frozen=True)
class Case:
    family: str
    index: int
    choices: dict  # the drawn option values
    kwargs: dict  # the kapre keyword arguments they make
    signal: str
    n_channels: int
    n_samples: int

    def __str__(self):
        return f'{self.family}-{self.index:02d}'


def _draw(rng, options, n_cases):
    """n_cases combinations in which every value of every option appears (n_cases is at least
    the longest list): each option's values are repeated to n_cases and shuffled."""
    columns = {}
    for name, values in options.items():
        column = [values[i % len(values)] for i in range(n_cases)]
        rng.shuffle(column)
        columns[name] = column
    return [{name: column[i] for name, column in columns.items()} for i in range(n_cases)]


def _case(family, index, choices):
    n_fft, win_length = choices['sizes']
    window_name = choices['window_name']
    window = n_fft if win_length is None else win_length
    if window_name == 'kaiser_bessel_derived_window' and window % 2:
        window += 1  # TF cannot build an odd KBD window
        win_length = window
    hop = {
        None: window // 4,
        'half': window // 2,
        'odd': (window // 3) | 1,
        'beyond_window': window + 17,  # frames with gaps between them
    }[choices['hop']]
    if choices['pad_begin']:
        hop = min(hop, n_fft)  # pad_begin prepends n_fft - hop zeros
    kwargs = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=None if choices['hop'] is None else hop,
        window_name=window_name,
        pad_begin=choices['pad_begin'],
        pad_end=choices['pad_end'],
        input_data_format=choices['input_data_format'],
        output_data_format=choices['output_data_format'],
    )
    if 'decibel' in choices:
        kwargs.update(DECIBEL_ARGS[choices['decibel']])
    if family == 'melspectrogram':
        f_min, f_max = choices['mel_range']
        kwargs.update(
            sample_rate=choices['sample_rate'],
            n_mels=choices['n_mels'],
            mel_f_min=f_min,
            mel_f_max=f_max,
            mel_htk=choices['mel_htk'],
            mel_norm=choices['mel_norm'],
        )
    if family == 'log_frequency_spectrogram':
        kwargs.update({name: choices[name] for name in LOG_OPTIONS})
    n_samples = window if choices['n_samples'] == 'one_frame' else choices['n_samples']
    return Case(family, index, choices, kwargs, choices['signal'], choices['n_channels'], n_samples)


def _grid():
    rng = random.Random(0)
    return [
        _case(family, index, choices)
        for family, (options, n_cases) in FAMILIES.items()
        for index, choices in enumerate(_draw(rng, options, n_cases))
    ]


CASES = _grid()


def make_batch(case, speech_batch, noise_batch):
    """The case's audio in its input layout, and its FrontEnd."""
    make = speech_batch if case.signal == 'speech' else noise_batch
    batch = make(
        n_examples=2, n_samples=case.n_samples, n_channels=case.n_channels, seed=case.index
    )
    spec = getattr(FrontEnd, case.family)(**case.kwargs)
    return to_input_layout(batch, spec.input_data_format), spec
