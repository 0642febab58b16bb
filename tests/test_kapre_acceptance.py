"""What kapre 0.4.1 accepts, kapre_fast.composed accepts (issue #22): argument by argument, each
getter is called through kapre and through kapre_fast with the same arguments, on the same
input, and

- where kapre builds and runs, kapre_fast builds and runs with the same output shape (empty
  where kapre's is empty: audio too short for one frame, or a channels_first reading of a
  (time, 1) shape);
- where kapre raises, kapre_fast raises kapre's exception class or a subclass of it.

The values themselves are held to kapre in test_composed.py. A few arguments kapre accepts but
computes nonsense from are refused here on purpose, each with a reason (DEVIATIONS); they are
tested to raise a ValueError naming the argument.
"""

import warnings

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')
kapre_composed = pytest.importorskip('kapre.composed')
keras = pytest.importorskip('keras')
if keras.backend.backend() != 'tensorflow':
    pytest.skip("kapre runs on Keras' TensorFlow backend", allow_module_level=True)

from kapre_fast import composed  # noqa: E402

GETTERS = (
    'get_stft_magnitude_layer',
    'get_melspectrogram_layer',
    'get_log_frequency_spectrogram_layer',
    'get_stft_mag_phase',
)
SHAPE = (2000, 1)
N_FFT = 256

# Arguments tried in every getter (they all take them).
EVERY_GETTER = [
    dict(return_decibel=False, db_amin=None),
    dict(return_decibel=False, db_ref_value=None),
    dict(return_decibel=False, db_dynamic_range=None),
    dict(db_amin=None, db_ref_value=None, db_dynamic_range=None),  # return_decibel's default
    dict(return_decibel=False, db_amin='unused'),
    dict(return_decibel=True, db_amin=None),
    dict(return_decibel=True, db_dynamic_range='80'),
    dict(pad_begin=1),
    dict(pad_end=0),
    dict(return_decibel=1),
    dict(n_fft=256.0),
    dict(hop_length=64.0),
    dict(win_length=None, hop_length=None, window_name=None),
    dict(win_length=300),  # longer than n_fft: the frame is cropped to n_fft
    dict(pad_begin=True, pad_end=True, hop_length=100),
    dict(input_data_format='channels_first'),  # reads (2000, 1) as 2000 channels of 1 sample
    dict(output_data_format='channels_first'),
    dict(input_data_format='wide'),
    dict(window_name='vorbis_window'),
    dict(window_name='blackman_window'),
]
# Arguments of one getter only.
ONE_GETTER = [
    ('get_melspectrogram_layer', dict(mel_norm=None)),
    ('get_melspectrogram_layer', dict(mel_norm=1)),
    ('get_melspectrogram_layer', dict(mel_htk=1)),
    ('get_melspectrogram_layer', dict(mel_f_max=None, sample_rate=16000.0)),
    ('get_melspectrogram_layer', dict(n_mels=32.0)),
    ('get_log_frequency_spectrogram_layer', dict(log_f_min=None, log_n_bins=36)),
    ('get_log_frequency_spectrogram_layer', dict(sample_rate=8000)),
    ('get_log_frequency_spectrogram_layer', dict(log_bins_per_octave=24.0, log_n_bins=48)),
    ('get_log_frequency_spectrogram_layer', dict(log_n_bins=36.0)),
]
# Input shapes too short for one frame (kapre: an empty spectrogram), in every getter.
SHORT_SHAPES = [(1, 8000), (100, 1), (0, 2)]

# kapre accepts these, then computes nonsense: refused, naming the argument.
DEVIATIONS = [
    (
        'get_melspectrogram_layer',
        dict(mel_f_min=100.0, mel_f_max=50.0),
        'mel_f_max',
        "librosa's filterbank for mel_f_min >= mel_f_max has negative (or NaN) weights",
    ),
    (
        'get_melspectrogram_layer',
        dict(n_mels=0),
        'n_mels',
        'a filterbank of no band: every output is empty',
    ),
    (
        'get_melspectrogram_layer',
        dict(n_mels=32.5),
        'n_mels',
        'kapre truncates a fractional band count; a whole float (32.0) is taken',
    ),
]


def _run(module, getter, input_shape, kwargs):
    """('ok', output shape) or ('raised', exception class) for building the getter's model and
    calling it on noise of `input_shape` (one example)."""
    x = np.random.default_rng(0).standard_normal((1,) + input_shape).astype(np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # kapre passes input_shape to a Keras 3 layer
            model = getattr(module, getter)(input_shape=input_shape, **{'n_fft': N_FFT, **kwargs})
            return 'ok', tuple(np.asarray(model(x)).shape)
    except Exception as error:  # the class is the result
        return 'raised', type(error)


def _assert_accepts_as_kapre(getter, input_shape, kwargs):
    theirs, ours = (
        _run(module, getter, input_shape, kwargs) for module in (kapre_composed, composed)
    )
    if theirs[0] == 'ok':
        assert ours == theirs, f'kapre gives {theirs}, kapre_fast {ours}'
    else:
        assert ours[0] == 'raised', f'kapre raises {theirs[1].__name__}, kapre_fast {ours}'
        assert issubclass(ours[1], theirs[1]), (ours[1].__mro__, theirs[1])


@pytest.mark.parametrize('getter', GETTERS)
@pytest.mark.parametrize('kwargs', EVERY_GETTER, ids=repr)
def test_every_getter_accepts_what_kapre_accepts(getter, kwargs):
    _assert_accepts_as_kapre(getter, SHAPE, kwargs)


@pytest.mark.parametrize('getter, kwargs', ONE_GETTER, ids=repr)
def test_getter_arguments_accepted_as_kapre(getter, kwargs):
    _assert_accepts_as_kapre(getter, SHAPE, kwargs)


@pytest.mark.parametrize('getter', GETTERS)
@pytest.mark.parametrize('input_shape', SHORT_SHAPES, ids=repr)
def test_too_short_input_shape_builds_and_returns_no_frames(getter, input_shape):
    _assert_accepts_as_kapre(getter, input_shape, dict(return_decibel=True))
    _assert_accepts_as_kapre(getter, input_shape, dict(pad_end=True))


def test_too_short_audio_warns_and_gives_empty_features_in_both_layouts():
    with pytest.warns(UserWarning, match='too short for one frame'):
        model = composed.get_log_frequency_spectrogram_layer((1, 8000), return_decibel=True)
    assert model(np.zeros((3, 1, 8000), np.float32)).shape == (3, 0, 84, 8000)
    with pytest.warns(UserWarning, match='too short for one frame'):
        model = composed.get_stft_mag_phase(
            (300, 2),
            n_fft=512,
            output_data_format='channels_first',
            input_data_format='channels_last',
        )
    assert model(np.zeros((2, 300, 2), np.float32)).shape == (2, 4, 0, 257)
    with pytest.warns(UserWarning, match='100 samples is too short'):
        mfcc = composed.get_mfcc_layer((100, 1), n_fft=256, n_mels=20, n_mfcc=13)
    assert mfcc(np.zeros((1, 100, 1), np.float32)).shape == (1, 0, 13, 1)


def test_unused_decibel_arguments_leave_the_numbers_unchanged():
    x = np.random.default_rng(1).standard_normal((2, 3000, 1)).astype(np.float32)
    plain = composed.get_melspectrogram_layer((3000, 1), n_fft=256, n_mels=24)
    ignored = composed.get_melspectrogram_layer(
        (3000, 1), n_fft=256, n_mels=24, db_amin=None, db_ref_value=None, db_dynamic_range=None
    )
    np.testing.assert_array_equal(np.asarray(ignored(x)), np.asarray(plain(x)))
    config = ignored.layers[0].get_config()
    assert config['db_amin'] is None  # the argument as given, for kapre-style round trips
    rebuilt = type(ignored.layers[0]).from_config(config)
    np.testing.assert_array_equal(np.asarray(rebuilt(x)), np.asarray(plain(x)))


@pytest.mark.parametrize('getter, kwargs, name, why', DEVIATIONS, ids=repr)
def test_deviations_refuse_naming_the_argument(getter, kwargs, name, why):
    assert _run(kapre_composed, getter, SHAPE, kwargs)[0] == 'ok'  # kapre builds it
    with pytest.raises(ValueError, match=name):
        getattr(composed, getter)(input_shape=SHAPE, n_fft=N_FFT, **kwargs)
