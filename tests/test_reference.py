"""kapre_fast.reference (float64) against kapre 0.4.1 (float32), the oracle.

The comparison grid is drawn with a fixed seed so that every option value appears in every
family of front ends. Tolerances are relative to each example's peak, never per element:
- magnitudes within 1e-5 of the peak;
- decibels within 0.05 dB at the 99.9th percentile over the values at most DECIBEL_RANGE dB below
  the example's maximum, and, everywhere, the magnitudes they stand for within 1e-5 of the peak.
  The split is needed because kapre's dB is 10*log10 of a MAGNITUDE: its default 80 dB dynamic
  range spans 8 decades of magnitude, deeper than float32 FFT rounding (about 1e-7 of the peak).
  At 1e-6 of the peak float32 kapre is off by ~0.1 dB (speech through a Kaiser window: 0.055 dB
  at the 99.9th percentile), which is kapre's rounding, not a difference in semantics;
- phases, where the magnitude is above 1e-3 of the peak, within PHASE_TOLERANCE radians.
The worst figures are printed at the end of the run.
"""

import dataclasses
import random
import subprocess
import sys

import numpy as np
import pytest

from helpers import (
    decibel_error,
    decibel_to_magnitude,
    kapre_output,
    peak_relative_error,
    phase_error,
    record_agreement,
    split_channels,
    to_input_layout,
)
from kapre_fast import reference
from kapre_fast.spec import FrontEnd

pytest.importorskip('kapre')

MAGNITUDE_TOLERANCE = 1e-5  # of the example's peak
DECIBEL_TOLERANCE = 0.05  # dB, 99.9th percentile
DECIBEL_RANGE = 50.0  # dB below the example's maximum: 5 decades of magnitude
# float32 rounding of a bin at 1e-3 of the peak is ~1e-4 relative, i.e. ~1e-4 rad; measured worst
# is reported in the run's summary.
PHASE_TOLERANCE = 1e-3

# ----- the grid ------------------------------------------------------------------------------

COMMON_OPTIONS = {
    'window_name': [None, 'hann_window', 'hamming_window', 'kaiser_window',
                    'kaiser_bessel_derived_window', 'vorbis_window'],
    # (n_fft, win_length): win_length default / equal / below / above n_fft, odd sizes.
    'sizes': [(512, None), (256, 256), (400, 256), (511, 300), (256, 400), (255, 255),
              (128, 97), (1024, 1024)],
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
    'custom_low': dict(return_decibel=True, db_amin=1e-3, db_ref_value=0.25,
                       db_dynamic_range=40.0),
    'custom_high': dict(return_decibel=True, db_amin=1e-7, db_ref_value=3.0,
                        db_dynamic_range=120.0),
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
        kwargs.update(sample_rate=choices['sample_rate'], n_mels=choices['n_mels'],
                      mel_f_min=f_min, mel_f_max=f_max, mel_htk=choices['mel_htk'],
                      mel_norm=choices['mel_norm'])
    if family == 'log_frequency_spectrogram':
        kwargs.update({name: choices[name] for name in LOG_OPTIONS})
    n_samples = window if choices['n_samples'] == 'one_frame' else choices['n_samples']
    return Case(family, index, choices, kwargs, choices['signal'], choices['n_channels'],
                n_samples)


def _grid():
    rng = random.Random(0)
    return [
        _case(family, index, choices)
        for family, (options, n_cases) in FAMILIES.items()
        for index, choices in enumerate(_draw(rng, options, n_cases))
    ]


CASES = _grid()


def test_grid_covers_every_option_value():
    for family, (options, _) in FAMILIES.items():
        drawn = [case.choices for case in CASES if case.family == family]
        for name, values in options.items():
            seen = {repr(choices[name]) for choices in drawn}
            assert seen == {repr(value) for value in values}, (family, name)


# ----- reference against kapre ---------------------------------------------------------------


def _batch(case, speech_batch, noise_batch):
    make = speech_batch if case.signal == 'speech' else noise_batch
    batch = make(n_examples=2, n_samples=case.n_samples, n_channels=case.n_channels,
                 seed=case.index)
    spec = getattr(FrontEnd, case.family)(**case.kwargs)
    return to_input_layout(batch, spec.input_data_format), spec


def _check_magnitudes(name, ours, theirs, decibel):
    if decibel:
        error = decibel_error(theirs, ours, within=DECIBEL_RANGE)
        assert record_agreement(f'{name} dB p99.9 (top 50 dB)', error) <= DECIBEL_TOLERANCE
        error = peak_relative_error(decibel_to_magnitude(theirs), decibel_to_magnitude(ours))
        assert record_agreement(f'{name} dB as |.| / peak', error) <= MAGNITUDE_TOLERANCE
        # Over every value, for the record.
        record_agreement(f'{name} dB p99.9 (all)', decibel_error(theirs, ours))
        record_agreement(f'{name} dB max (all)', decibel_error(theirs, ours, percentile=100))
    else:
        error = record_agreement(f'{name} |.| / peak', peak_relative_error(theirs, ours))
        assert error <= MAGNITUDE_TOLERANCE


@pytest.mark.parametrize('case', CASES, ids=str)
def test_reference_matches_kapre(case, speech_batch, noise_batch):
    x, spec = _batch(case, speech_batch, noise_batch)
    ours = getattr(reference, case.family)(x, **case.kwargs)
    theirs = kapre_output(case.family, x, **case.kwargs)
    assert ours.shape == theirs.shape
    assert ours.dtype == (np.complex128 if case.family == 'stft' else np.float64)

    if case.family == 'stft':
        error = record_agreement('stft complex / peak', peak_relative_error(theirs, ours))
        assert error <= MAGNITUDE_TOLERANCE
    elif case.family == 'stft_mag_phase':
        ours_magnitude, ours_phase = split_channels(ours, 2, spec.output_data_format)
        theirs_magnitude, theirs_phase = split_channels(theirs, 2, spec.output_data_format)
        _check_magnitudes('stft_mag_phase', ours_magnitude, theirs_magnitude, spec.return_decibel)
        magnitude = np.abs(reference.stft(x, **_stft_kwargs(case.kwargs)))
        error = phase_error(theirs_phase, ours_phase, magnitude)
        assert record_agreement('stft_mag_phase phase (rad)', error) <= PHASE_TOLERANCE
    else:
        _check_magnitudes(case.family, ours, theirs, spec.return_decibel)


def _stft_kwargs(kwargs):
    return {name: value for name, value in kwargs.items()
            if not name.startswith('db_') and name != 'return_decibel'}


@pytest.mark.parametrize(
    'family, kwargs',
    [
        ('stft_magnitude', dict(return_decibel=True)),
        ('melspectrogram', dict(return_decibel=True, n_mels=40)),
        ('log_frequency_spectrogram', dict(return_decibel=True, db_dynamic_range=30.0)),
        ('stft_mag_phase', dict(return_decibel=True)),
    ],
)
def test_entirely_silent_example_matches_kapre(family, kwargs, speech_batch):
    # Example 1 is digital silence: every value sits on the amin floor, and the clamp is per
    # example, so example 0 (speech) must not leak into it.
    x = speech_batch(n_examples=2, n_samples=6000, n_channels=2)
    x[1] = 0.0
    x = to_input_layout(x, 'channels_last')
    kwargs = dict(kwargs, n_fft=512, input_data_format='channels_last',
                  output_data_format='channels_last')
    ours = getattr(reference, family)(x, **kwargs)
    theirs = kapre_output(family, x, **kwargs)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=1e-4)
    error = decibel_error(theirs[:1, ..., :2], ours[:1, ..., :2], within=DECIBEL_RANGE)
    assert error <= DECIBEL_TOLERANCE


@pytest.mark.parametrize('n_samples', [1, 99, 399])
def test_audio_shorter_than_a_frame_with_pad_end_matches_kapre(n_samples, noise_batch):
    kwargs = dict(n_fft=400, hop_length=100, pad_end=True, input_data_format='channels_first',
                  output_data_format='channels_first')
    x = noise_batch(n_examples=1, n_samples=n_samples, n_channels=2)
    ours = reference.stft_magnitude(x, **kwargs)
    theirs = kapre_output('stft_magnitude', x, **kwargs)
    assert ours.shape == theirs.shape == (1, 2, -(-n_samples // 100), 201)
    assert peak_relative_error(theirs, ours) <= MAGNITUDE_TOLERANCE


# ----- inverse STFT --------------------------------------------------------------------------


@pytest.mark.parametrize('n_fft, hop_length', [(512, 128), (1024, 256), (400, 200), (511, 100)])
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_stft_istft_round_trip_reconstructs_speech(n_fft, hop_length, data_format, speech_batch):
    # kapre's perfectly reconstructing pair: win_length = n_fft, Hann, pad_begin and pad_end.
    batch = speech_batch(n_examples=2, n_samples=20000, n_channels=2).astype(np.float64)
    x = to_input_layout(batch, data_format)
    spectra = reference.stft(x, n_fft=n_fft, hop_length=hop_length, pad_begin=True,
                             pad_end=True, input_data_format=data_format,
                             output_data_format=data_format)
    y = reference.istft(spectra, n_fft=n_fft, hop_length=hop_length,
                        stft_data_format=data_format, waveform_data_format=data_format)
    y = FrontEnd(input_data_format=data_format).layout_input(y)  # (batch, ch, time)
    trim = n_fft - hop_length
    error = peak_relative_error(y[..., trim : trim + batch.shape[-1]], batch)
    assert record_agreement('istft round trip / peak', error) <= 1e-6


ISTFT_CASES = [
    dict(n_fft=512, hop_length=128),
    dict(n_fft=512, win_length=400, hop_length=100, forward_window_name='hamming_window'),
    dict(n_fft=256, win_length=400, hop_length=100, forward_window_name='vorbis_window'),
    dict(n_fft=511, hop_length=97, forward_window_name='kaiser_window'),
    dict(n_fft=512, win_length=256, hop_length=64,
         forward_window_name='kaiser_bessel_derived_window'),
]


@pytest.mark.parametrize('kwargs', ISTFT_CASES, ids=lambda kw: '-'.join(map(str, kw.values())))
@pytest.mark.parametrize('stft_format, waveform_format',
                         [('channels_last', 'channels_first'), ('channels_first', 'channels_last')])
def test_istft_matches_kapre_inverse_stft(kwargs, stft_format, waveform_format, speech_batch):
    stft_kwargs = dict(n_fft=kwargs['n_fft'], win_length=kwargs.get('win_length'),
                       hop_length=kwargs['hop_length'],
                       window_name=kwargs.get('forward_window_name'),
                       input_data_format='channels_first', output_data_format=stft_format)
    x = speech_batch(n_examples=2, n_samples=8000, n_channels=2)
    spectra = kapre_output('stft', x, **stft_kwargs)  # complex64, as a model would feed it
    layouts = dict(stft_data_format=stft_format, waveform_data_format=waveform_format)
    ours = reference.istft(spectra, **kwargs, **layouts)
    theirs = kapre_output('istft', spectra, **kwargs, input_data_format=stft_format,
                          output_data_format=waveform_format)
    assert ours.shape == theirs.shape and ours.dtype == np.float64
    error = record_agreement('istft vs kapre / peak', peak_relative_error(theirs, ours))
    assert error <= MAGNITUDE_TOLERANCE


def test_istft_of_arbitrary_complex_input_matches_kapre():
    # A network's output need not be a valid spectrum: DC and Nyquist bins with imaginary parts.
    rng = np.random.default_rng(0)
    spectra = (rng.standard_normal((2, 9, 129, 2)) + 1j * rng.standard_normal((2, 9, 129, 2)))
    spectra = spectra.astype(np.complex64)
    kwargs = dict(n_fft=256, hop_length=64)
    ours = reference.istft(spectra, **kwargs, stft_data_format='channels_last',
                           waveform_data_format='channels_last')
    theirs = kapre_output('istft', spectra, **kwargs, input_data_format='channels_last',
                          output_data_format='channels_last')
    assert ours.shape == theirs.shape == (2, 8 * 64 + 256, 2)
    assert peak_relative_error(theirs, ours) <= MAGNITUDE_TOLERANCE


def test_istft_checks_its_input():
    with pytest.raises(ValueError, match=r'4 axes \(batch, frames, freq, channels\)'):
        reference.istft(np.zeros((3, 257, 1), complex), n_fft=512, stft_data_format='channels_last')
    with pytest.raises(ValueError, match='257 frequency bins'):
        reference.istft(np.zeros((1, 1, 3, 256), complex), n_fft=512,
                        stft_data_format='channels_first')


# ----- the reference's own contract ----------------------------------------------------------


def test_compute_dispatches_on_the_spec(noise_batch):
    x = noise_batch(n_examples=1, n_samples=5000, n_channels=2).transpose(0, 2, 1)
    kwargs = dict(n_fft=256, n_mels=32, return_decibel=True)
    spec = FrontEnd.melspectrogram(**kwargs)
    np.testing.assert_array_equal(reference.compute(spec, x), reference.melspectrogram(x, **kwargs))
    assert reference.compute(FrontEnd.stft(n_fft=256), x).dtype == np.complex128


def test_layouts_agree(noise_batch):
    batch = noise_batch(n_examples=2, n_samples=5000, n_channels=2)
    last = reference.stft_mag_phase(batch.transpose(0, 2, 1), n_fft=300,
                                    input_data_format='channels_last',
                                    output_data_format='channels_last')
    first = reference.stft_mag_phase(batch, n_fft=300, input_data_format='channels_first',
                                     output_data_format='channels_first')
    assert first.shape == (2, 4, 1 + (5000 - 300) // 75, 151)
    np.testing.assert_array_equal(last, first.transpose(0, 2, 3, 1))


def test_any_float_dtype_is_computed_in_float64(noise_batch):
    x = noise_batch(n_examples=1, n_samples=3000).transpose(0, 2, 1)
    expected = reference.stft_magnitude(x.astype(np.float64), n_fft=256)
    for dtype in (np.float16, np.float32):
        result = reference.stft_magnitude(x.astype(dtype), n_fft=256)
        assert result.dtype == np.float64
        np.testing.assert_allclose(result, reference.stft_magnitude(
            x.astype(dtype).astype(np.float64), n_fft=256))
    assert expected.dtype == np.float64


def test_bad_audio_is_rejected():
    with pytest.raises(TypeError, match='floating-point'):
        reference.stft_magnitude(np.zeros((1, 1000, 1), np.int16), n_fft=256)
    with pytest.raises(ValueError, match=r'\(batch, time, channels\)'):
        reference.stft_magnitude(np.zeros(1000), n_fft=256, input_data_format='channels_last')
    with pytest.raises(ValueError, match='audio has 200 samples; one frame needs win_length=256'):
        reference.melspectrogram(np.zeros((1, 200, 1)), n_fft=256,
                                 input_data_format='channels_last')
    with pytest.raises(TypeError, match='n_mels'):
        reference.stft_magnitude(np.zeros((1, 1000, 1)), n_mels=40)


def test_importing_the_reference_imports_no_framework():
    code = (
        'import sys, kapre_fast.spec, kapre_fast.reference; '
        "loaded = {'tensorflow', 'keras', 'librosa', 'scipy'} & set(sys.modules); "
        'assert not loaded, loaded'
    )
    subprocess.run([sys.executable, '-c', code], check=True)
