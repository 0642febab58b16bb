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
from grid import CASES, FAMILIES, make_batch
from kapre_fast import reference
from kapre_fast.spec import FrontEnd

pytest.importorskip('kapre')

MAGNITUDE_TOLERANCE = 1e-5  # of the example's peak
DECIBEL_TOLERANCE = 0.05  # dB, 99.9th percentile
DECIBEL_RANGE = 50.0  # dB below the example's maximum: 5 decades of magnitude
# float32 rounding of a bin at 1e-3 of the peak is ~1e-4 relative, i.e. ~1e-4 rad; measured worst
# is reported in the run's summary.
PHASE_TOLERANCE = 1e-3


def test_grid_covers_every_option_value():
    for family, (options, _) in FAMILIES.items():
        drawn = [case.choices for case in CASES if case.family == family]
        for name, values in options.items():
            seen = {repr(choices[name]) for choices in drawn}
            assert seen == {repr(value) for value in values}, (family, name)


# ----- reference against kapre ---------------------------------------------------------------


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
    x, spec = make_batch(case, speech_batch, noise_batch)
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
    return {
        name: value
        for name, value in kwargs.items()
        if not name.startswith('db_') and name != 'return_decibel'
    }


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
    kwargs = dict(
        kwargs, n_fft=512, input_data_format='channels_last', output_data_format='channels_last'
    )
    ours = getattr(reference, family)(x, **kwargs)
    theirs = kapre_output(family, x, **kwargs)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=1e-4)
    error = decibel_error(theirs[:1, ..., :2], ours[:1, ..., :2], within=DECIBEL_RANGE)
    assert error <= DECIBEL_TOLERANCE


@pytest.mark.parametrize('n_samples', [1, 99, 399])
def test_audio_shorter_than_a_frame_with_pad_end_matches_kapre(n_samples, noise_batch):
    kwargs = dict(
        n_fft=400,
        hop_length=100,
        pad_end=True,
        input_data_format='channels_first',
        output_data_format='channels_first',
    )
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
    spectra = reference.stft(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        pad_begin=True,
        pad_end=True,
        input_data_format=data_format,
        output_data_format=data_format,
    )
    y = reference.istft(
        spectra,
        n_fft=n_fft,
        hop_length=hop_length,
        stft_data_format=data_format,
        waveform_data_format=data_format,
    )
    y = FrontEnd(input_data_format=data_format).layout_input(y)  # (batch, ch, time)
    trim = n_fft - hop_length
    error = peak_relative_error(y[..., trim : trim + batch.shape[-1]], batch)
    assert record_agreement('istft round trip / peak', error) <= 1e-6


ISTFT_CASES = [
    dict(n_fft=512, hop_length=128),
    dict(n_fft=512, win_length=400, hop_length=100, forward_window_name='hamming_window'),
    dict(n_fft=256, win_length=400, hop_length=100, forward_window_name='vorbis_window'),
    dict(n_fft=511, hop_length=97, forward_window_name='kaiser_window'),
    dict(
        n_fft=512, win_length=256, hop_length=64, forward_window_name='kaiser_bessel_derived_window'
    ),
]


@pytest.mark.parametrize('kwargs', ISTFT_CASES, ids=lambda kw: '-'.join(map(str, kw.values())))
@pytest.mark.parametrize(
    'stft_format, waveform_format',
    [('channels_last', 'channels_first'), ('channels_first', 'channels_last')],
)
def test_istft_matches_kapre_inverse_stft(kwargs, stft_format, waveform_format, speech_batch):
    stft_kwargs = dict(
        n_fft=kwargs['n_fft'],
        win_length=kwargs.get('win_length'),
        hop_length=kwargs['hop_length'],
        window_name=kwargs.get('forward_window_name'),
        input_data_format='channels_first',
        output_data_format=stft_format,
    )
    x = speech_batch(n_examples=2, n_samples=8000, n_channels=2)
    spectra = kapre_output('stft', x, **stft_kwargs)  # complex64, as a model would feed it
    layouts = dict(stft_data_format=stft_format, waveform_data_format=waveform_format)
    ours = reference.istft(spectra, **kwargs, **layouts)
    theirs = kapre_output(
        'istft',
        spectra,
        **kwargs,
        input_data_format=stft_format,
        output_data_format=waveform_format,
    )
    assert ours.shape == theirs.shape and ours.dtype == np.float64
    error = record_agreement('istft vs kapre / peak', peak_relative_error(theirs, ours))
    assert error <= MAGNITUDE_TOLERANCE


def test_istft_of_arbitrary_complex_input_matches_kapre():
    # A network's output need not be a valid spectrum: DC and Nyquist bins with imaginary parts.
    rng = np.random.default_rng(0)
    spectra = rng.standard_normal((2, 9, 129, 2)) + 1j * rng.standard_normal((2, 9, 129, 2))
    spectra = spectra.astype(np.complex64)
    kwargs = dict(n_fft=256, hop_length=64)
    ours = reference.istft(
        spectra, **kwargs, stft_data_format='channels_last', waveform_data_format='channels_last'
    )
    theirs = kapre_output(
        'istft',
        spectra,
        **kwargs,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    assert ours.shape == theirs.shape == (2, 8 * 64 + 256, 2)
    assert peak_relative_error(theirs, ours) <= MAGNITUDE_TOLERANCE


def test_istft_checks_its_input():
    with pytest.raises(ValueError, match=r'4 axes \(batch, frames, freq, channels\)'):
        reference.istft(np.zeros((3, 257, 1), complex), n_fft=512, stft_data_format='channels_last')
    with pytest.raises(ValueError, match='257 frequency bins'):
        reference.istft(
            np.zeros((1, 1, 3, 256), complex), n_fft=512, stft_data_format='channels_first'
        )


# ----- the reference's own contract ----------------------------------------------------------


def test_compute_dispatches_on_the_spec(noise_batch):
    x = noise_batch(n_examples=1, n_samples=5000, n_channels=2).transpose(0, 2, 1)
    kwargs = dict(n_fft=256, n_mels=32, return_decibel=True)
    spec = FrontEnd.melspectrogram(**kwargs)
    np.testing.assert_array_equal(reference.compute(spec, x), reference.melspectrogram(x, **kwargs))
    assert reference.compute(FrontEnd.stft(n_fft=256), x).dtype == np.complex128


def test_layouts_agree(noise_batch):
    batch = noise_batch(n_examples=2, n_samples=5000, n_channels=2)
    last = reference.stft_mag_phase(
        batch.transpose(0, 2, 1),
        n_fft=300,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    first = reference.stft_mag_phase(
        batch, n_fft=300, input_data_format='channels_first', output_data_format='channels_first'
    )
    assert first.shape == (2, 4, 1 + (5000 - 300) // 75, 151)
    np.testing.assert_array_equal(last, first.transpose(0, 2, 3, 1))


def test_any_float_dtype_is_computed_in_float64(noise_batch):
    x = noise_batch(n_examples=1, n_samples=3000).transpose(0, 2, 1)
    expected = reference.stft_magnitude(x.astype(np.float64), n_fft=256)
    for dtype in (np.float16, np.float32):
        result = reference.stft_magnitude(x.astype(dtype), n_fft=256)
        assert result.dtype == np.float64
        np.testing.assert_allclose(
            result, reference.stft_magnitude(x.astype(dtype).astype(np.float64), n_fft=256)
        )
    assert expected.dtype == np.float64


def test_bad_audio_is_rejected():
    with pytest.raises(TypeError, match='audio must be a real array.*got dtype complex128'):
        reference.stft_magnitude(np.zeros((1, 1000, 1), np.complex128), n_fft=256)
    with pytest.raises(ValueError, match=r'\(batch, time, channels\)'):
        reference.stft_magnitude(np.zeros(1000), n_fft=256, input_data_format='channels_last')
    with pytest.raises(ValueError, match='audio has 200 samples; one frame needs win_length=256'):
        reference.melspectrogram(
            np.zeros((1, 200, 1)), n_fft=256, input_data_format='channels_last'
        )
    with pytest.raises(TypeError, match='n_mels'):
        reference.stft_magnitude(np.zeros((1, 1000, 1)), n_mels=40)


def test_importing_the_reference_imports_no_framework():
    code = (
        'import sys, kapre_fast.spec, kapre_fast.reference; '
        "loaded = {'tensorflow', 'keras', 'librosa', 'scipy'} & set(sys.modules); "
        'assert not loaded, loaded'
    )
    subprocess.run([sys.executable, '-c', code], check=True)
