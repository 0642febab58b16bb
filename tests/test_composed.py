"""kapre_fast.composed against kapre 0.4.1's kapre.composed and the float64 reference.

Every front end is run through the composed function, on real speech and on noise with digital
silence, over a grid drawn with a fixed seed in which every option value appears. Tolerances
(per example, relative to its peak, never per element):
- magnitudes within 1e-4 of the example's peak against kapre;
- decibels within 0.05 dB of kapre at the 99.9th percentile over the values at most
  DECIBEL_RANGE dB below the example's maximum, and everywhere the magnitudes they stand for
  within 1e-4 of the peak. (kapre's dB is 10*log10 of a magnitude: its 80 dB range reaches 1e-8 of
  the peak, far below float32 FFT rounding, where two float32 implementations differ by a tenth
  of a dB; tests/test_reference.py explains the same split for kapre against float64.)
- accuracy: kapre_fast's error against kapre_fast.reference is at most twice kapre's own error
  against it, plus a floor (so two near-exact results cannot fail on noise): RELATIVE_FLOOR of
  the peak, or for decibels one float32 ULP of the largest |dB| value (as a magnitude ratio),
  the rounding of the stored dB value itself.
The worst figures are printed at the end of the run (conftest).
"""

from __future__ import annotations

import inspect
import random
import re
import warnings

import numpy as np
import pytest

from helpers import (
    STFT_ARGS,
    decibel_error,
    decibel_to_magnitude,
    kapre_output,
    peak_relative_error,
    phase_error,
    record_agreement,
    split_channels,
    to_input_layout,
)

tf = pytest.importorskip('tensorflow')
kapre_composed = pytest.importorskip('kapre.composed')
keras = pytest.importorskip('keras')

from kapre_fast import composed, layers, reference  # noqa: E402  (after the importorskips)
from kapre_fast.spec import FrontEnd  # noqa: E402

MAGNITUDE_TOLERANCE = 1e-4  # of the example's peak
DECIBEL_TOLERANCE = 0.05  # dB, 99.9th percentile over the top DECIBEL_RANGE dB
DECIBEL_RANGE = 50.0
PHASE_TOLERANCE = 1e-3  # rad, where |X| > 1e-3 of the peak
RELATIVE_FLOOR = 1e-7  # of the peak, added to 2x kapre's error against the reference
PHASE_FLOOR = 1e-6  # rad

FUNCTION_NAMES = {  # family (kapre_fast.reference's name): composed function
    'stft_magnitude': 'get_stft_magnitude_layer',
    'melspectrogram': 'get_melspectrogram_layer',
    'log_frequency_spectrogram': 'get_log_frequency_spectrogram_layer',
    'stft_mag_phase': 'get_stft_mag_phase',
}
FUNCTIONS = {family: getattr(composed, name) for family, name in FUNCTION_NAMES.items()}

# ----- the grid ------------------------------------------------------------------------------

COMMON = {
    'window_name': [
        None,
        'hann_window',
        'hamming_window',
        'kaiser_window',
        'kaiser_bessel_derived_window',
        'vorbis_window',
    ],
    # (n_fft, win_length): default, equal, shorter and longer window, odd sizes.
    'sizes': [(512, None), (256, 256), (400, 256), (255, 300), (511, 511), (128, 97)],
    'hop': [None, 'half', 'odd', 'gap'],
    'pad_begin': [False, True],
    'pad_end': [False, True],
    'input_data_format': ['default', 'channels_last', 'channels_first'],
    'output_data_format': ['default', 'channels_last', 'channels_first'],
    'n_channels': [1, 2],
    'signal': ['speech', 'noise'],
    'n_samples': [6000, 9001, 'one_frame'],
}
DECIBEL = {'decibel': [None, 'defaults', 'custom']}
MEL = {
    'sample_rate': [16000, 22050, 44100],
    'n_mels': [20, 64],
    'mel_htk': [False, True],
    'mel_norm': ['slaney', None, 1],
    'mel_range': [(0.0, None), (60.0, 7000.0)],
}
LOG = {
    'sample_rate': [16000, 44100],
    'log_n_bins': [24, 72],
    'log_bins_per_octave': [12, 24],
    'log_f_min': [None, 55.0],
    'log_spread': [0.125, 0.3],
}
DECIBEL_ARGS = {
    None: {},
    'defaults': dict(return_decibel=True),
    'custom': dict(return_decibel=True, db_amin=1e-7, db_ref_value=0.5, db_dynamic_range=60.0),
}
FAMILIES = {  # family: (options, number of cases)
    'stft_magnitude': ({**COMMON, **DECIBEL}, 8),
    'melspectrogram': ({**COMMON, **DECIBEL, **MEL}, 8),
    'log_frequency_spectrogram': ({**COMMON, **DECIBEL, **LOG}, 6),
    'stft_mag_phase': ({**COMMON, **DECIBEL}, 6),
}


def _draw(rng, options, n_cases):
    """n_cases option combinations covering every value of every option: each option's values
    are cycled up to n_cases and shuffled independently."""
    columns = {}
    for name, values in options.items():
        column = [values[i % len(values)] for i in range(n_cases)]
        rng.shuffle(column)
        columns[name] = column
    return [{name: columns[name][i] for name in options} for i in range(n_cases)]


def _kwargs(family, choices):
    n_fft, win_length = choices['sizes']
    window = n_fft if win_length is None else win_length
    if choices['window_name'] == 'kaiser_bessel_derived_window' and window % 2:
        window = win_length = window + 1  # TensorFlow has no odd-length KBD window
    hop = {None: None, 'half': window // 2, 'odd': (window // 3) | 1, 'gap': window + 13}
    hop_length = hop[choices['hop']]
    if choices['pad_begin'] and hop_length is not None:
        hop_length = min(hop_length, n_fft)  # pad_begin prepends n_fft - hop_length zeros
    kwargs = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window_name=choices['window_name'],
        pad_begin=choices['pad_begin'],
        pad_end=choices['pad_end'],
        input_data_format=choices['input_data_format'],
        output_data_format=choices['output_data_format'],
        **DECIBEL_ARGS[choices['decibel']],
    )
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
        kwargs.update({name: choices[name] for name in LOG})
    n_samples = window if choices['n_samples'] == 'one_frame' else choices['n_samples']
    return kwargs, n_samples


def _grid():
    rng = random.Random(2024)
    cases = []
    for family, (options, n_cases) in FAMILIES.items():
        for index, choices in enumerate(_draw(rng, options, n_cases)):
            kwargs, n_samples = _kwargs(family, choices)
            cases.append(
                pytest.param(family, index, choices, kwargs, n_samples, id=f'{family}-{index}')
            )
    return cases


CASES = _grid()


def test_grid_covers_every_option_value():
    for family, (options, _) in FAMILIES.items():
        drawn = [param.values[2] for param in CASES if param.values[0] == family]
        for name, values in options.items():
            assert {repr(c[name]) for c in drawn} == {repr(v) for v in values}, (family, name)


# ----- agreement with kapre and the reference -------------------------------------------------


def _check_magnitudes(name, ours, theirs, truth, decibel):
    floor = RELATIVE_FLOOR
    if decibel:
        error = decibel_error(ours, theirs, within=DECIBEL_RANGE)
        assert record_agreement(f'{name} vs kapre dB p99.9 (top 50 dB)', error) <= DECIBEL_TOLERANCE
        record_agreement(f'{name} vs kapre dB p99.9 (all)', decibel_error(ours, theirs))
        # A float32 dB value is itself rounded: one ULP at the largest |dB| value, as a
        # relative magnitude (d|.| / |.| = ln(10) / 10 * d dB), is an irreducible difference.
        largest = np.float32(np.abs(truth).max())
        floor = max(floor, float(np.spacing(largest)) * np.log(10.0) / 10.0)
        ours, theirs, truth = map(decibel_to_magnitude, (ours, theirs, truth))
        label = f'{name} vs kapre dB as |.| / peak'
    else:
        label = f'{name} vs kapre |.| / peak'
    assert record_agreement(label, peak_relative_error(ours, theirs)) <= MAGNITUDE_TOLERANCE
    ours_error = peak_relative_error(ours, truth)
    kapre_error = peak_relative_error(theirs, truth)
    record_agreement(
        f'{name} error vs reference / (2 x kapre error vs reference + floor)',
        ours_error / (2.0 * kapre_error + floor),
    )
    assert ours_error <= 2.0 * kapre_error + floor, (ours_error, kapre_error, floor)


@pytest.mark.parametrize('family, index, choices, kwargs, n_samples', CASES)
def test_composed_matches_kapre(
    family, index, choices, kwargs, n_samples, speech_batch, noise_batch
):
    make = speech_batch if choices['signal'] == 'speech' else noise_batch
    spec = getattr(FrontEnd, family)(**kwargs)
    batch = make(n_examples=2, n_samples=n_samples, n_channels=choices['n_channels'], seed=index)
    x = to_input_layout(batch, spec.input_data_format)

    model = FUNCTIONS[family](input_shape=x.shape[1:], **kwargs)
    ours = model(tf.constant(x)).numpy()
    theirs = kapre_output(family, x, **kwargs)
    truth = getattr(reference, family)(x, **kwargs)
    assert ours.shape == theirs.shape == model.output_shape[:0] + (2,) + model.output_shape[1:]
    assert ours.dtype == np.float32

    if family == 'stft_mag_phase':
        ours, ours_phase = split_channels(ours, 2, spec.output_data_format)
        theirs, theirs_phase = split_channels(theirs, 2, spec.output_data_format)
        truth, true_phase = split_channels(truth, 2, spec.output_data_format)
        stft_kwargs = {name: kwargs[name] for name in STFT_ARGS}
        magnitude = np.abs(reference.stft(x, **stft_kwargs))
        error = phase_error(ours_phase, theirs_phase, magnitude)
        assert record_agreement('stft_mag_phase phase vs kapre (rad)', error) <= PHASE_TOLERANCE
        ours_error = phase_error(ours_phase, true_phase, magnitude)
        kapre_error = phase_error(theirs_phase, true_phase, magnitude)
        assert ours_error <= 2.0 * kapre_error + PHASE_FLOOR, (ours_error, kapre_error)
    _check_magnitudes(family, ours, theirs, truth, spec.return_decibel)


@pytest.mark.parametrize('family', list(FUNCTIONS))
def test_silent_example_and_clamp_match_kapre(family, speech_batch):
    # Example 1 is digital silence (everything on the amin floor); example 0 is speech whose
    # quiet frames hit the 30 dB clamp. The clamp is per example.
    x = to_input_layout(speech_batch(n_examples=2, n_samples=5000, n_channels=2), 'channels_last')
    x[1] = 0.0
    kwargs = dict(
        n_fft=256,
        return_decibel=True,
        db_dynamic_range=30.0,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    ours = FUNCTIONS[family](input_shape=x.shape[1:], **kwargs)(tf.constant(x)).numpy()
    theirs = kapre_output(family, x, **kwargs)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=1e-4)
    magnitude_channels = slice(0, 2)
    error = decibel_error(ours[:1, ..., magnitude_channels], theirs[:1, ..., magnitude_channels])
    assert error <= DECIBEL_TOLERANCE


# ----- the functions' signatures, names and structure -----------------------------------------

# The seed's (kapre 0.3.7's) signature; kapre 0.4.1 changed this one function.
SEED_RECONSTRUCTING_SIGNATURE = [
    ('stft_input_shape', None),
    ('istft_input_shape', None),
    ('n_fft', 2048),
    ('win_length', None),
    ('hop_length', None),
    ('forward_window_name', None),
    ('waveform_data_format', 'default'),
    ('stft_data_format', 'default'),
    ('stft_name', 'stft'),
    ('istft_name', 'istft'),
]


TRAINABLE_OPTIONS = {
    'get_stft_magnitude_layer': ('trainable_window',),
    'get_melspectrogram_layer': ('trainable_window', 'trainable_filterbank'),
    'get_log_frequency_spectrogram_layer': ('trainable_window', 'trainable_filterbank'),
}


def _parameters(function):
    return [(p.name, p.default, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    'name',
    [
        'get_stft_magnitude_layer',
        'get_melspectrogram_layer',
        'get_log_frequency_spectrogram_layer',
        'get_stft_mag_phase',
        'get_frequency_aware_conv2d',
    ],
)
def test_signature_is_kapres(name):
    ours, kapres = _parameters(getattr(composed, name)), _parameters(getattr(kapre_composed, name))
    # kapre's parameters, in kapre's order; then, keyword-only, the presets' and the trainable
    # options (issue #15; the window for every |STFT| getter, the filterbank where there is one).
    assert ours[: len(kapres)] == kapres
    presets = [(p.name, p.default, p.kind) for p in FrontEnd.preset_signature().parameters.values()]
    trainable = [
        (option, False, inspect.Parameter.KEYWORD_ONLY)
        for option in TRAINABLE_OPTIONS.get(name, ())
    ]
    assert ours[len(kapres) :] == (
        [] if name == 'get_frequency_aware_conv2d' else presets + trainable
    )


def test_reconstructing_pair_has_the_seed_signature():
    parameters = inspect.signature(composed.get_perfectly_reconstructing_stft_istft).parameters
    assert [(p.name, p.default) for p in parameters.values()] == SEED_RECONSTRUCTING_SIGNATURE


@pytest.mark.parametrize(
    'family', ['stft_magnitude', 'melspectrogram', 'log_frequency_spectrogram']
)
def test_sequential_models_are_named_and_decompose(family, noise_batch):
    x = to_input_layout(noise_batch(n_examples=2, n_samples=3000, n_channels=2), 'channels_last')
    function = FUNCTIONS[family]
    kwargs = dict(n_fft=256, return_decibel=True, input_data_format='channels_last')
    default_name = inspect.signature(function).parameters['name'].default
    model = function(input_shape=(3000, 2), **kwargs)
    assert isinstance(model, keras.Sequential) and model.name == default_name == family
    assert function(name='custom', **kwargs).name == 'custom'
    assert model.output_shape[0] is None

    # The seed's recipe: move the layers into your own model; the input shape comes along.
    mine = keras.Sequential(name='mine')
    for layer in model.layers:
        mine.add(layer)
    mine.add(keras.layers.GlobalAveragePooling2D())
    assert mine.built and mine.input_shape == (None, 3000, 2)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(mine(x)), np.mean(model(x).numpy(), axis=(1, 2))
    )
    # Without input_shape, nothing is attached and the model builds on its first call.
    unbuilt = function(**kwargs)
    assert not unbuilt.built
    np.testing.assert_array_equal(unbuilt(x).numpy(), model(x).numpy())


def test_two_composed_layers_fit_in_one_model(noise_batch):
    # Auto-generated layer names, as kapre's, so two front ends can share a model.
    x = to_input_layout(noise_batch(n_examples=1, n_samples=3000), 'channels_last')
    inputs = keras.Input((3000, 1))
    kwargs = dict(n_fft=256, n_mels=32, input_data_format='channels_last')
    first = composed.get_melspectrogram_layer(**kwargs)
    second = composed.get_melspectrogram_layer(**kwargs)
    assert first.layers[0].name != second.layers[0].name
    model = keras.Model(inputs, [first.layers[0](inputs), second.layers[0](inputs)])
    a, b = model(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_mag_phase_is_a_functional_model(noise_batch):
    model = composed.get_stft_mag_phase(
        (4000, 3),
        n_fft=512,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    assert model.name == 'stft_mag_phase' and isinstance(model, keras.Model)
    assert not isinstance(model, keras.Sequential)
    assert model.output_shape == (None, 1 + (4000 - 512) // 128, 257, 6)
    assert composed.get_stft_mag_phase(
        (3, 4000),
        n_fft=512,
        name='mp',
        input_data_format='channels_first',
        output_data_format='channels_first',
    ).output_shape == (None, 6, 1 + (4000 - 512) // 128, 257)


# ----- frequency-aware convolution ------------------------------------------------------------


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_frequency_aware_conv2d_matches_kapre(data_format):
    rng = np.random.default_rng(0)
    shape = (2, 9, 40, 3) if data_format == 'channels_last' else (2, 3, 9, 40)
    spectrogram = rng.standard_normal(shape).astype(np.float32)
    conv_kwargs = dict(filters=4, kernel_size=(3, 5), padding='same')
    ours = composed.get_frequency_aware_conv2d(data_format, 'fa', **conv_kwargs)
    theirs = kapre_composed.get_frequency_aware_conv2d(data_format, 'fa', **conv_kwargs)
    assert ours.name == theirs.name == 'fa'
    assert [type(layer).__name__ for layer in ours.layers] == ['ConcatenateFrequencyMap', 'Conv2D']
    ours_out = ours(spectrogram)
    theirs(spectrogram)
    theirs.layers[1].set_weights(ours.layers[1].get_weights())
    np.testing.assert_allclose(ours_out.numpy(), theirs(spectrogram).numpy(), rtol=0, atol=1e-5)

    # The map itself: linspace(0, 1, n_freq) as the LAST channel.
    mapped = ours.layers[0](spectrogram).numpy()
    last = mapped[..., -1] if data_format == 'channels_last' else mapped[:, -1]
    np.testing.assert_array_equal(
        last, np.broadcast_to(np.linspace(0, 1, 40, dtype=np.float32), last.shape)
    )
    assert ours.layers[1].data_format == data_format


def test_frequency_map_keeps_static_shapes_in_a_graph():
    # Conv2D needs a known channel count when traced (Keras falls back to XLA without one).
    layer = layers.ConcatenateFrequencyMap(data_format='channels_last')
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None, None, 40, 3]))
    assert traced.structured_outputs.shape.as_list() == [None, None, 40, 4]


def test_frequency_aware_conv2d_default_format_and_names():
    model = composed.get_frequency_aware_conv2d(filters=2, kernel_size=3)
    assert model.name == 'frequency_aware_conv2d'
    assert model.layers[0].data_format == keras.config.image_data_format()
    assert model(np.zeros((1, 5, 6, 1), np.float32)).shape == (1, 3, 4, 2)


@pytest.mark.parametrize(
    'args, kwargs',
    [
        ((), dict(filters=4, kernel_size=3, groups=2)),
        ((4, 3, (1, 1), 'valid', None, (1, 1), 2), {}),  # groups given positionally
    ],
)
def test_group_convolution_is_refused(args, kwargs):
    with pytest.raises(ValueError, match='groups=2'):
        composed.get_frequency_aware_conv2d('channels_last', 'fa', *args, **kwargs)
    if kwargs:
        with pytest.raises(ValueError):
            kapre_composed.get_frequency_aware_conv2d('channels_last', 'fa', *args, **kwargs)


# ----- the perfectly reconstructing pair ------------------------------------------------------


@pytest.mark.parametrize(
    'n_fft, win_length, hop_length, window',
    [
        (512, None, None, None),
        (512, 256, 64, 'hamming_window'),
        (400, 400, 200, 'vorbis_window'),
        (
            511,
            None,
            127,
            'kaiser_bessel_derived_window',
        ),  # win_length = n_fft = 511: made even below
    ],
)
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_reconstructing_pair_gives_speech_back(
    n_fft, win_length, hop_length, window, data_format, speech_batch
):
    if window == 'kaiser_bessel_derived_window':
        n_fft, hop_length = 512, 128
    batch = speech_batch(n_examples=2, n_samples=12345, n_channels=2)
    x = to_input_layout(batch, data_format)
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(
        stft_input_shape=x.shape[1:],
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        forward_window_name=window,
        waveform_data_format=data_format,
        stft_data_format=data_format,
    )
    assert (stft.name, istft.name) == ('stft', 'istft')
    assert isinstance(stft, layers.STFT) and isinstance(istft, layers.InverseSTFT)
    model = keras.Sequential([stft, istft])
    y = model(tf.constant(x)).numpy()
    assert y.shape == model.output_shape[:0] + (2,) + model.output_shape[1:]
    y = FrontEnd(input_data_format=data_format).layout_input(y)  # (batch, ch, time)
    trim = n_fft - stft.spec.hop_length
    error = peak_relative_error(y[..., trim : trim + batch.shape[-1]], batch)
    assert record_agreement('reconstructing pair round trip / peak', error) <= 2e-6


def test_reconstructing_pair_layers_match_kapre_layers(speech_batch):
    x = to_input_layout(speech_batch(n_examples=2, n_samples=7000, n_channels=2), 'channels_last')
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(
        n_fft=256,
        hop_length=64,
        waveform_data_format='channels_last',
        stft_data_format='channels_first',
        stft_name='analysis',
        istft_name='synthesis',
    )
    assert (stft.name, istft.name) == ('analysis', 'synthesis')
    spectra = stft(tf.constant(x)).numpy()
    expected = kapre_output(
        'stft',
        x,
        n_fft=256,
        win_length=256,
        hop_length=64,
        pad_begin=True,
        pad_end=True,
        input_data_format='channels_last',
        output_data_format='channels_first',
    )
    assert peak_relative_error(spectra, expected) <= MAGNITUDE_TOLERANCE
    waveforms = istft(tf.constant(expected)).numpy()
    expected = kapre_output(
        'istft',
        expected,
        n_fft=256,
        hop_length=64,
        input_data_format='channels_first',
        output_data_format='channels_last',
    )
    assert peak_relative_error(waveforms, expected) <= MAGNITUDE_TOLERANCE


def test_reconstructing_pair_input_shapes_are_attached():
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(
        stft_input_shape=(2048, 2),
        istft_input_shape=(13, 257, 2),
        n_fft=512,
        waveform_data_format='channels_last',
        stft_data_format='channels_last',
    )
    assert keras.Sequential([stft]).output_shape == (None, 1 + (2048 + 384 - 1) // 128, 257, 2)
    assert keras.Sequential([istft]).output_shape == (None, 12 * 128 + 512, 2)
    bare, _ = composed.get_perfectly_reconstructing_stft_istft(n_fft=512)
    assert getattr(bare, '_input_shape_arg', None) is None


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(n_fft=512, hop_length=96),  # 512 / 96 is not an integer
        dict(n_fft=512, hop_length=512),  # ratio 1
        dict(n_fft=600, win_length=600, hop_length=200),  # ratio 3
    ],
)
def test_reconstructing_pair_refuses_uneven_hops(kwargs):
    with pytest.raises(RuntimeError, match='win_length / hop_length must be an even') as info:
        composed.get_perfectly_reconstructing_stft_istft(**kwargs)
    assert isinstance(info.value, ValueError)


def _auto_name_stem(name):
    # Keras numbers automatic names per process ('stft', 'stft_1', ...); kapre's layers and ours
    # share the counter, so compare the stems.
    return re.sub(r'_[0-9]+$', '', name)


@pytest.mark.parametrize(
    'n_fft, hop_length',
    [
        (256, 64),
        (512, 96),  # win_length / hop_length = 5.33: kapre 0.4.1 does not check; the seed refuses
    ],
)
@pytest.mark.parametrize(
    'waveform_format, stft_format',
    [
        ('channels_last', 'channels_last'),
        ('channels_first', 'channels_last'),
    ],
)
def test_reconstructing_pair_takes_kapre_041_positional_call(
    n_fft, hop_length, waveform_format, stft_format, speech_batch
):
    batch = speech_batch(n_examples=2, n_samples=7000, n_channels=2)
    x = tf.constant(to_input_layout(batch, waveform_format))
    args = (n_fft, hop_length, waveform_format, stft_format)
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(*args)
    kapre_stft, kapre_istft = kapre_composed.get_perfectly_reconstructing_stft_istft(*args)

    assert isinstance(stft, layers.STFT) and isinstance(istft, layers.InverseSTFT)
    assert [_auto_name_stem(layer.name) for layer in (stft, istft)] == [
        _auto_name_stem(layer.name) for layer in (kapre_stft, kapre_istft)
    ]
    # kapre 0.4.1's semantics: window n_fft long, Hann, both paddings, the hop as given.
    assert (stft.spec.win_length, stft.spec.hop_length, stft.spec.window_name) == (
        kapre_stft.win_length,
        kapre_stft.hop_length,
        'hann_window',
    )
    assert (stft.spec.pad_begin, stft.spec.pad_end) == (kapre_stft.pad_begin, kapre_stft.pad_end)
    assert (istft.spec.win_length, istft.spec.hop_length) == (
        kapre_istft.win_length,
        kapre_istft.hop_length,
    )

    spectra, expected_spectra = stft(x).numpy(), kapre_stft(x).numpy()
    assert peak_relative_error(spectra, expected_spectra) <= MAGNITUDE_TOLERANCE
    waveforms = istft(tf.constant(expected_spectra)).numpy()
    expected_waveforms = kapre_istft(tf.constant(expected_spectra)).numpy()
    assert peak_relative_error(waveforms, expected_waveforms) <= MAGNITUDE_TOLERANCE
    if (n_fft / hop_length) % 2 != 0:
        # The same sizes by keyword are the seed's call, which checks the hop.
        with pytest.raises(composed.ReconstructionHopError):
            composed.get_perfectly_reconstructing_stft_istft(
                n_fft=n_fft,
                hop_length=hop_length,
                waveform_data_format=waveform_format,
                stft_data_format=stft_format,
            )


@pytest.mark.parametrize(
    'args, kwargs',
    [
        ((256, 64, 'channels_last', 'channels_first', 'analysis', 'synthesis'), {}),
        (
            (256,),
            dict(
                hop_length=64,
                waveform_data_format='channels_last',
                stft_data_format='channels_first',
                istft_name='synthesis',
            ),
        ),
    ],
)
def test_reconstructing_pair_kapre_041_names_and_keywords(args, kwargs):
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(*args, **kwargs)
    kapre_stft, kapre_istft = kapre_composed.get_perfectly_reconstructing_stft_istft(
        *args, **kwargs
    )
    assert [_auto_name_stem(layer.name) for layer in (stft, istft)] == [
        _auto_name_stem(layer.name) for layer in (kapre_stft, kapre_istft)
    ]
    assert (stft.spec.hop_length, stft.spec.output_data_format) == (64, 'channels_first')


@pytest.mark.parametrize(
    'args, kwargs',
    [
        (((2048, 2),), dict(n_fft=512)),
        ((None, (13, 257, 2), 512), {}),
    ],
)
def test_reconstructing_pair_positional_shapes_are_the_seed_call(args, kwargs):
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(*args, **kwargs)
    assert (stft.name, istft.name) == ('stft', 'istft')  # the seed's default names
    assert (stft.spec.n_fft, stft.spec.hop_length) == (512, 128)
    expected_shapes = [None if shape is None else tuple(shape) for shape in (args + (None,))[:2]]
    assert [getattr(layer, '_input_shape_arg', None) for layer in (stft, istft)] == expected_shapes


@pytest.mark.parametrize(
    'args, kwargs, error, match',
    [
        ((1024, 256), {}, TypeError, "missing a required argument: 'waveform_data_format'"),
        (
            (1024, 256, 'channels_last', 'channels_last'),
            dict(win_length=512),
            TypeError,
            "unexpected keyword argument 'win_length'",
        ),
        (
            (1024, 256, 'channels_last', 'channels_last', 'a', 'b', 'c'),
            {},
            TypeError,
            'too many positional arguments',
        ),
        ((1024, 256, 'channels_middle', 'channels_last'), {}, ValueError, 'waveform_data_format'),
        (
            (1024.0, 256, 'channels_last', 'channels_last'),
            {},
            TypeError,
            'stft_input_shape .* or n_fft .* got float 1024.0',
        ),
        ((True,), {}, TypeError, 'got bool True'),
        (('channels_last',), {}, TypeError, "got str 'channels_last'"),
        ((), dict(stft_input_shape=1024), TypeError, 'stft_input_shape must be a shape tuple'),
    ],
)
def test_reconstructing_pair_ambiguous_or_bad_calls_are_refused(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        composed.get_perfectly_reconstructing_stft_istft(*args, **kwargs)


# ----- invalid arguments raise kapre's exception types ---------------------------------------

BAD_ARGUMENTS = [
    ('stft_magnitude', dict(input_data_format='channels_middle'), ValueError),
    ('melspectrogram', dict(output_data_format=1), TypeError),
    ('stft_magnitude', dict(window_name='blackman_window'), NotImplementedError),
    ('stft_mag_phase', dict(window_name='hann'), NotImplementedError),
    ('log_frequency_spectrogram', dict(sample_rate=8000, log_n_bins=96), RuntimeError),
    ('stft_magnitude', dict(return_decibel=True, db_amin=0.0), ValueError),
    ('melspectrogram', dict(return_decibel=True, db_dynamic_range=-10.0), ValueError),
]


@pytest.mark.parametrize('family, kwargs, error', BAD_ARGUMENTS)
def test_invalid_arguments_raise_kapres_exception_types(family, kwargs, error):
    input_shape = (4096, 1)
    kapre_function = getattr(kapre_composed, FUNCTION_NAMES[family])
    with pytest.raises(error):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # kapre passes input_shape to a Keras 3 layer
            layer = kapre_function(input_shape=input_shape, n_fft=256, **kwargs)
        # kapre checks the decibel arguments only when the layer runs.
        layer(np.zeros((1,) + input_shape, np.float32))
    with pytest.raises(error):
        FUNCTIONS[family](input_shape=input_shape, n_fft=256, **kwargs)


def test_reconstructing_pair_checks_data_formats_first():
    with pytest.raises(ValueError, match='waveform_data_format'):
        composed.get_perfectly_reconstructing_stft_istft(hop_length=96, waveform_data_format='wide')
    with pytest.raises(TypeError, match='stft_data_format'):
        composed.get_perfectly_reconstructing_stft_istft(stft_data_format=None)
