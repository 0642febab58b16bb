"""kapre_fast.layers and kapre_fast.ops in Keras: configuration, shapes, gradients, training,
saving, graphs, mixed precision and errors.

Gradients are checked against central finite differences of the float64 reference
(kapre_fast.reference) on small inputs, and against kapre's own autograd on speech where the
decibel clamp is active. Saved models are loaded in fresh Python processes that import only
kapre_fast (and TensorFlow/Keras), as a user's serving process would.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import kapre_output, peak_relative_error, record_agreement, to_input_layout

tf = pytest.importorskip('tensorflow')
keras = pytest.importorskip('keras')

import kapre_fast  # noqa: E402  (after the importorskips)
from kapre_fast import composed, layers, ops, reference  # noqa: E402
from kapre_fast.spec import FrontEnd  # noqa: E402

GRADIENT_TOLERANCE = 1e-4  # of the largest |gradient| entry
MAGNITUDE_TOLERANCE = 1e-4  # of the example's peak

# ----- configuration --------------------------------------------------------------------------

# Every constructor argument with a non-default value.
LAYER_ARGUMENTS = {
    layers.FrontEnd: dict(
        n_fft=300,
        win_length=256,
        hop_length=77,
        window_name='hamming_window',
        pad_begin=True,
        pad_end=True,
        output='magnitude',
        filterbank='mel',
        sample_rate=16000,
        n_mels=40,
        mel_f_min=30.0,
        mel_f_max=7000.0,
        mel_htk=True,
        mel_norm=2,
        log_n_bins=60,
        log_f_min=50.0,
        log_bins_per_octave=24,
        log_spread=0.2,
        return_decibel=True,
        db_amin=1e-6,
        db_ref_value=0.5,
        db_dynamic_range=70.0,
        input_data_format='channels_first',
        output_data_format='channels_last',
        implementation='builtin',
    ),
    layers.STFT: dict(
        n_fft=300,
        win_length=256,
        hop_length=77,
        window_name='vorbis_window',
        pad_begin=True,
        pad_end=True,
        input_data_format='channels_last',
        output_data_format='channels_first',
        implementation='builtin',
    ),
    layers.InverseSTFT: dict(
        n_fft=300,
        win_length=256,
        hop_length=64,
        forward_window_name='kaiser_window',
        input_data_format='channels_first',
        output_data_format='channels_last',
        implementation='builtin',
    ),
    layers.ConcatenateFrequencyMap: dict(data_format='channels_first'),
}
INPUTS = {  # an input for each layer with LAYER_ARGUMENTS
    layers.FrontEnd: (2, 3, 2000),
    layers.STFT: (2, 2000, 3),
    layers.InverseSTFT: (2, 3, 7, 151),
    layers.ConcatenateFrequencyMap: (2, 3, 7, 20),
}


def _random_input(shape, seed=0):
    rng = np.random.default_rng(seed)
    if len(shape) == 4 and shape[-1] == 151:
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize('cls', list(LAYER_ARGUMENTS), ids=lambda cls: cls.__name__)
def test_config_round_trips_every_argument(cls):
    arguments = LAYER_ARGUMENTS[cls]
    parameters = set(inspect.signature(cls.__init__).parameters) - {'self', 'kwargs'}
    # The preset arguments (which exclude kapre's pad_begin/db_* and the builtin path) round-trip
    # in test_presets.py::test_preset_layer_config_round_trips, the trainable options (fused
    # only) in test_trainable.py::test_trainable_layer_round_trips_with_its_weights.
    assert set(arguments) == (
        parameters
        - set(FrontEnd.preset_signature().parameters)
        - {'trainable_window', 'trainable_filterbank'}
    )
    layer = cls(**arguments, name='configured')
    config = layer.get_config()
    assert {name: config[name] for name in arguments} == arguments
    json.dumps(config)  # the .keras format stores it as JSON

    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized['registered_name'] == f'kapre_fast>{cls.__name__}'
    copy = keras.saving.deserialize_keras_object(serialized)
    assert type(copy) is cls and copy.get_config() == config
    x = _random_input(INPUTS[cls])
    np.testing.assert_array_equal(np.asarray(copy(x)), np.asarray(layer(x)))


def test_default_data_formats_stay_default_in_the_config():
    layer = layers.FrontEnd(n_fft=256)
    assert layer.get_config()['input_data_format'] == 'default'
    assert layer.spec.input_data_format == keras.config.image_data_format()
    assert layers.FrontEnd(n_fft=256).get_config()['implementation'] == 'fused'


def test_configs_without_implementation_load_as_fused():
    for cls in (layers.FrontEnd, layers.STFT, layers.InverseSTFT):
        config = cls(n_fft=256).get_config()
        del config['implementation']  # as written before the argument existed
        assert cls.from_config(config).implementation == 'fused'


@pytest.mark.parametrize('value, error', [('xla', ValueError), (None, TypeError)])
def test_bad_implementation_names_the_argument(value, error):
    with pytest.raises(error, match='implementation'):
        layers.FrontEnd(n_fft=256, implementation=value)


def test_supports_jit_for_any_size_and_builtin_refuses_what_it_cannot_compute():
    from kapre_fast import builtin

    assert layers.FrontEnd(n_fft=256).supports_jit and layers.InverseSTFT().supports_jit
    assert layers.STFT(n_fft=2 * builtin.MAX_N_FFT).supports_jit  # XLA: tf.signal's FFT
    with pytest.raises(ValueError, match='MAX_N_FFT'):
        layers.STFT(n_fft=2 * builtin.MAX_N_FFT, implementation='builtin')


def test_front_end_refuses_complex_output():
    with pytest.raises(ValueError, match='STFT'):
        layers.FrontEnd(output='complex')


# ----- output shapes --------------------------------------------------------------------------

SHAPE_CASES = [
    (layers.FrontEnd, dict(n_fft=256, filterbank='mel', n_mels=30), (2, 3000, 2)),
    (
        layers.FrontEnd,
        dict(
            n_fft=255,
            hop_length=100,
            output='mag_phase',
            pad_end=True,
            input_data_format='channels_first',
            output_data_format='channels_first',
        ),
        (1, 3, 1001),
    ),
    (
        layers.FrontEnd,
        dict(
            n_fft=512,
            filterbank='log',
            log_n_bins=40,
            pad_begin=True,
            output_data_format='channels_first',
        ),
        (3, 2048, 1),
    ),
    (layers.STFT, dict(n_fft=128, win_length=100, hop_length=30), (2, 999, 3)),
    (layers.STFT, dict(n_fft=128, input_data_format='channels_first', pad_end=True), (2, 3, 999)),
    (layers.InverseSTFT, dict(n_fft=128, hop_length=32), (2, 11, 65, 3)),
    (
        layers.InverseSTFT,
        dict(n_fft=128, input_data_format='channels_first', output_data_format='channels_first'),
        (2, 3, 11, 65),
    ),
]


@pytest.mark.parametrize('cls, kwargs, shape', SHAPE_CASES)
def test_compute_output_shape_matches_the_output(cls, kwargs, shape):
    x = _random_input(shape)
    if cls is layers.InverseSTFT:
        x = (x + 1j * x[::-1]).astype(np.complex64)
    layer = cls(**kwargs)
    y = layer(x)
    assert layer.compute_output_shape(shape) == tuple(y.shape)
    # Unknown batch and time (or frames) give None there and nothing else unknown.
    unknown = list(shape)
    unknown[0] = None
    time_axis = {
        3: 1 if layer.spec.input_data_format == 'channels_last' else 2,
        4: 1 if layer.spec.output_data_format == 'channels_last' else 2,
    }[len(shape)]
    unknown[time_axis] = None
    expected = list(y.shape)
    expected[0] = None
    out_time_axis = (
        1
        if (cls is layers.InverseSTFT and layer.spec.input_data_format == 'channels_last')
        or (cls is not layers.InverseSTFT and layer.spec.output_data_format == 'channels_last')
        else 2
    )
    expected[out_time_axis] = None
    assert layer.compute_output_shape(tuple(unknown)) == tuple(expected)
    # A symbolic call agrees, dtype included.
    symbolic = layer(keras.Input(batch_shape=tuple(unknown), dtype=x.dtype.name))
    assert tuple(symbolic.shape) == tuple(expected)
    assert symbolic.dtype == ('complex64' if cls is layers.STFT else 'float32')


# ----- single layers against kapre ------------------------------------------------------------


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(n_fft=512, hop_length=128),
        dict(n_fft=400, win_length=256, hop_length=100, window_name='kaiser_window', pad_end=True),
        dict(n_fft=256, win_length=400, hop_length=97, window_name='vorbis_window', pad_begin=True),
    ],
    ids=['default', 'kaiser-pad_end', 'vorbis-pad_begin'],
)
@pytest.mark.parametrize(
    'formats', [('channels_last', 'channels_first'), ('channels_first', 'channels_last')]
)
def test_stft_and_inverse_stft_match_kapre(kwargs, formats, speech_batch):
    waveform_format, stft_format = formats
    x = to_input_layout(speech_batch(n_examples=2, n_samples=9000, n_channels=2), waveform_format)
    stft_kwargs = dict(kwargs, input_data_format=waveform_format, output_data_format=stft_format)
    spectra = layers.STFT(**stft_kwargs)(x).numpy()
    theirs = kapre_output('stft', x, **stft_kwargs)
    assert spectra.dtype == np.complex64 and spectra.shape == theirs.shape
    truth = reference.stft(x, **stft_kwargs)
    error = record_agreement('STFT layer vs kapre / peak', peak_relative_error(spectra, theirs))
    assert error <= MAGNITUDE_TOLERANCE
    ours_error = peak_relative_error(spectra, truth)
    kapre_error = peak_relative_error(theirs, truth)
    assert ours_error <= 2 * kapre_error + 1e-7, (ours_error, kapre_error)

    istft_kwargs = dict(
        n_fft=kwargs['n_fft'],
        win_length=kwargs.get('win_length'),
        hop_length=kwargs['hop_length'],
        forward_window_name=kwargs.get('window_name'),
        input_data_format=stft_format,
        output_data_format=waveform_format,
    )
    waveforms = layers.InverseSTFT(**istft_kwargs)(theirs).numpy()
    expected = kapre_output('istft', theirs, **istft_kwargs)
    error = peak_relative_error(waveforms, expected)
    assert record_agreement('InverseSTFT layer vs kapre / peak', error) <= MAGNITUDE_TOLERANCE


# ----- gradients ------------------------------------------------------------------------------


def _finite_difference_vjp(function, x, weights, step=1e-4, wrap=None):
    """sum(weights * d function / d x_i) for every element x_i of the single example x (shape
    (1, ...)), by central differences in float64. Complex outputs are weighted as TensorFlow
    does (real * Re(weights) + imag * Im(weights)); `wrap` marks output elements that are angles
    whose differences are wrapped to (-pi, pi]."""
    size = x.size
    basis = np.eye(size).reshape((size,) + x.shape[1:])
    difference = function(x + step * basis) - function(x - step * basis)
    if wrap is not None:
        difference = np.where(wrap, np.angle(np.exp(1j * difference)), difference)
    difference = difference / (2 * step)
    if np.iscomplexobj(difference):
        product = difference.real * weights.real + difference.imag * weights.imag
    else:
        product = difference * weights
    return product.reshape(size, -1).sum(axis=1).reshape(x.shape)


def _tape_vjp(layer, x, weights, graph):
    weights = tf.constant(weights.astype(np.complex64 if np.iscomplexobj(weights) else np.float32))

    def vjp(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            if outputs.dtype.is_complex:
                loss = tf.reduce_sum(
                    tf.math.real(outputs) * tf.math.real(weights)
                    + tf.math.imag(outputs) * tf.math.imag(weights)
                )
            else:
                loss = tf.reduce_sum(outputs * weights)
        return tape.gradient(loss, inputs)

    if graph:
        vjp = tf.function(vjp)
    return vjp(tf.constant(x)).numpy()


GRADIENT_CASES = {
    'magnitude': dict(n_fft=32, hop_length=8),
    'magnitude-odd-padded': dict(
        n_fft=33,
        win_length=24,
        hop_length=7,
        pad_begin=True,
        pad_end=True,
        window_name='hamming_window',
        input_data_format='channels_first',
        output_data_format='channels_first',
    ),
    'mel-dB': dict(
        n_fft=64,
        win_length=80,
        hop_length=16,
        filterbank='mel',
        sample_rate=8000,
        n_mels=8,
        return_decibel=True,
    ),
    'log-dB': dict(
        n_fft=64,
        hop_length=16,
        filterbank='log',
        sample_rate=8000,
        log_n_bins=8,
        log_f_min=200.0,
        log_bins_per_octave=6,
        return_decibel=True,
        output_data_format='channels_first',
    ),
    'mag_phase-dB': dict(n_fft=32, hop_length=8, output='mag_phase', return_decibel=True),
    'stft': dict(n_fft=31, hop_length=8, pad_end=True, window_name='vorbis_window'),
}


@pytest.mark.parametrize('graph', [False, True], ids=['eager', 'tf.function'])
@pytest.mark.parametrize('name', list(GRADIENT_CASES))
def test_gradient_matches_finite_differences_of_the_reference(name, graph):
    kwargs = dict(GRADIENT_CASES[name])
    if name == 'stft':
        layer, spec = layers.STFT(**kwargs), FrontEnd.stft(**kwargs)
    else:
        layer, spec = layers.FrontEnd(**kwargs), FrontEnd(**kwargs)
    rng = np.random.default_rng(1)
    shape = (1, 90, 2) if spec.input_data_format == 'channels_last' else (1, 2, 90)
    x = rng.standard_normal(shape)
    y = reference.compute(spec, x)
    weights = rng.standard_normal(y.shape)
    if np.iscomplexobj(y):
        weights = weights + 1j * rng.standard_normal(y.shape)
    wrap = None
    if spec.output == 'mag_phase':
        wrap = np.zeros(y.shape, bool)
        wrap[..., 2:] = True  # channels_last: channels [magnitude x2, phase x2]
    expected = _finite_difference_vjp(lambda a: reference.compute(spec, a), x, weights, wrap=wrap)
    actual = _tape_vjp(layer, x.astype(np.float32), weights, graph)
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert record_agreement('gradient vs finite differences / max', error) <= GRADIENT_TOLERANCE


@pytest.mark.parametrize('graph', [False, True], ids=['eager', 'tf.function'])
def test_inverse_stft_gradient_matches_finite_differences(graph):
    kwargs = dict(
        n_fft=32,
        win_length=24,
        hop_length=6,
        forward_window_name='hann_window',
        input_data_format='channels_last',
        output_data_format='channels_first',
    )
    layer = layers.InverseSTFT(**kwargs)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 7, 17, 2)) + 1j * rng.standard_normal((1, 7, 17, 2))

    def function(spectra):
        return reference.istft(
            spectra,
            n_fft=32,
            win_length=24,
            hop_length=6,
            stft_data_format='channels_last',
            waveform_data_format='channels_first',
        )

    weights = rng.standard_normal(function(x).shape)
    expected = _finite_difference_vjp(function, x, weights) + 1j * _finite_difference_vjp(
        lambda a: function(x + 1j * (a - x.real)), x.real, weights
    )
    actual = _tape_vjp(layer, x.astype(np.complex64), weights, graph)
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert record_agreement('gradient vs finite differences / max', error) <= GRADIENT_TOLERANCE


@pytest.mark.parametrize(
    'family, kwargs',
    [
        ('melspectrogram', dict(n_mels=40, return_decibel=True, db_dynamic_range=30.0)),
        ('stft_mag_phase', dict(return_decibel=True, db_dynamic_range=30.0)),
    ],
)
def test_gradient_on_speech_is_as_accurate_as_kapres(family, kwargs, speech_batch):
    """On speech with a silent stretch, many values sit on the per-example decibel clamp (whose
    gradient goes to each example's peak) and high-frequency bins sit near float32 rounding,
    where |X|'s direction, hence d|X|/dx and the phase gradient, is ill-conditioned in float32.
    So both float32 gradients (ours and kapre's autograd) are compared with the float64 truth
    (central differences of the reference) at sampled positions: ours may be at most twice as
    far from it as kapre's."""
    from kapre import composed as kapre_composed

    batch = speech_batch(n_examples=2, n_samples=4000, n_channels=2)
    batch[1, :, 1000:2500] = 0.0
    x = to_input_layout(batch, 'channels_last')
    kwargs = dict(
        kwargs, n_fft=256, input_data_format='channels_last', output_data_format='channels_last'
    )
    name = {'melspectrogram': 'get_melspectrogram_layer', 'stft_mag_phase': 'get_stft_mag_phase'}
    ours = getattr(composed, name[family])(input_shape=x.shape[1:], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # kapre passes input_shape to a Keras 3 layer
        theirs = getattr(kapre_composed, name[family])(input_shape=x.shape[1:], **kwargs)
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((1,) + ours.output_shape[1:])
    gradients = []
    for model in (ours, theirs):
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(model(inputs) * weights.astype(np.float32))
        gradients.append(tape.gradient(loss, inputs).numpy())
    # Ours is finite everywhere; kapre's phase gradient is NaN where |X| = 0 (the silence).
    assert np.isfinite(gradients[0]).all()

    # Sampled positions, away from the silence (where the phase itself is undefined). A tiny
    # step: bins near zero make the phase change fast.
    positions = [
        (0, int(t), int(c)) for t, c in zip(rng.integers(0, 4000, 40), rng.integers(0, 2, 40))
    ]
    positions += [
        (1, int(t), int(c)) for t, c in zip(rng.integers(2800, 4000, 40), rng.integers(0, 2, 40))
    ]
    step = 1e-9
    perturbed = np.repeat(x[None].astype(np.float64), 2 * len(positions), axis=0)
    for index, position in enumerate(positions):
        perturbed[(2 * index,) + position] += step
        perturbed[(2 * index + 1,) + position] -= step
    outputs = getattr(reference, family)(perturbed.reshape((-1,) + x.shape[1:]), **kwargs)
    outputs = outputs.reshape((len(perturbed), 2) + outputs.shape[1:])  # (copy, example, ...)
    differences = outputs[0::2] - outputs[1::2]  # (position, example, ...)
    if family == 'stft_mag_phase':
        differences[..., 2:] = np.angle(np.exp(1j * differences[..., 2:]))  # phase channels
    truth = (differences * weights).reshape(len(positions), -1).sum(axis=1) / (2 * step)
    # Where a frame holds an exactly-zero bin (digital silence in the recording), the phase has
    # no derivative: kapre's gradient is NaN there, ours 0. Compare elsewhere.
    sampled = [np.array([g[p] for p in positions]) for g in gradients]
    defined = np.isfinite(sampled[1])
    assert defined.sum() >= len(positions) // 2
    scale = np.abs(truth[defined]).max()
    errors = [np.abs(g[defined] - truth[defined]).max() / scale for g in sampled]
    record_agreement('speech gradient vs float64 / max: ours', errors[0])
    record_agreement('speech gradient vs float64 / max: kapre', errors[1])
    assert errors[0] <= 2 * errors[1] + 1e-5, errors


def test_the_float_inputs_get_gradients_the_band_layout_none():
    """Waveform, window and band_weights (issue #15: trainable front ends; values checked in
    test_trainable.py); band_start/band_length are int32 and get none."""
    spec = FrontEnd.melspectrogram(n_fft=64, n_mels=8, sample_rate=8000)
    x = tf.constant(np.random.default_rng(0).standard_normal((1, 200, 1)), tf.float32)
    window = tf.constant(spec.window(), tf.float32)
    start, length, weights = (tf.constant(a) for a in spec.sparse_filterbank())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, window, weights, start, length])
        y = ops.library().kapre_fast_front_end(
            x,
            window,
            start,
            length,
            weights,
            n_fft=64,
            win_length=64,
            hop_length=16,
            input_format='channels_last',
            output_format='channels_last',
        )
    for tensor in (x, window, weights):
        assert tape.gradient(y, tensor).shape == tensor.shape
    assert tape.gradient(y, start) is None and tape.gradient(y, length) is None


# ----- training, saving, serving --------------------------------------------------------------

SAMPLE_RATE = 8000
N_SAMPLES = 4000
FRONT_ENDS = {
    'stft_magnitude': lambda: composed.get_stft_magnitude_layer(
        n_fft=256,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    ),
    'melspectrogram': lambda: composed.get_melspectrogram_layer(
        n_fft=256,
        sample_rate=SAMPLE_RATE,
        n_mels=32,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    ),
    'log_frequency_spectrogram': lambda: composed.get_log_frequency_spectrogram_layer(
        n_fft=512,
        sample_rate=SAMPLE_RATE,
        log_n_bins=48,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_first',
    ),
    'stft_mag_phase': lambda: composed.get_stft_mag_phase(
        (N_SAMPLES, 1),
        n_fft=256,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    ),
}


def _labelled_audio(n_examples, seed):
    """Two classes: a tone near 400 Hz or near 1800 Hz, random phase and level, in noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n_examples)
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    frequencies = np.where(labels == 0, 400.0, 1800.0) * rng.uniform(0.9, 1.1, n_examples)
    tones = np.sin(2 * np.pi * frequencies[:, None] * t + rng.uniform(0, 6.3, (n_examples, 1)))
    audio = rng.uniform(0.2, 0.5, (n_examples, 1)) * tones
    audio += 0.01 * rng.standard_normal((n_examples, N_SAMPLES))
    return audio[..., None].astype(np.float32), labels.astype(np.int32)


def _classifier(front_end):
    inputs = keras.Input((N_SAMPLES, 1))
    # A trainable gain before the front end: fit must differentiate through the op.
    gain = keras.layers.Dense(1, use_bias=False, kernel_initializer='ones', name='gain')
    features = front_end(gain(inputs))
    features = keras.layers.Rescaling(1.0 / 40.0, offset=1.0)(features)  # dB to about [-1, 1]
    data_format = front_end.layers[-1].spec.output_data_format
    n_features = front_end.output_shape[-1 if data_format == 'channels_first' else -2]
    # Spectral templates spanning every frequency (and the frequency map), averaged over time.
    hidden = composed.get_frequency_aware_conv2d(
        data_format, filters=4, kernel_size=(1, n_features)
    )(features)
    hidden = keras.layers.GlobalAveragePooling2D(data_format=data_format)(hidden)
    outputs = keras.layers.Dense(2, activation='softmax')(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss='sparse_categorical_crossentropy')
    return model


@pytest.fixture(scope='module')
def trained():
    """{front end: (model, loss before, loss after, gain before, gain after)}, each model fit
    for one epoch on synthetic labelled audio."""
    keras.utils.set_random_seed(0)
    x, y = _labelled_audio(96, seed=0)
    results = {}
    for name, make in FRONT_ENDS.items():
        model = _classifier(make())
        before = model.evaluate(x, y, batch_size=32, verbose=0)
        gain_before = float(model.get_layer('gain').get_weights()[0].squeeze())
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        after = model.evaluate(x, y, batch_size=32, verbose=0)
        gain_after = float(model.get_layer('gain').get_weights()[0].squeeze())
        results[name] = (model, before, after, gain_before, gain_after)
    return results


@pytest.mark.parametrize('name', list(FRONT_ENDS))
def test_fit_reduces_the_loss_through_the_front_end(name, trained):
    _, before, after, gain_before, gain_after = trained[name]
    assert np.isfinite(after) and after < before
    # The gain sits before the front end, so it learns only through the op's gradient.
    assert np.isfinite(gain_after) and gain_after != gain_before


def _run_fresh(code, *args):
    """Runs `code` in a new Python process importing this checkout's kapre_fast."""
    package_root = str(Path(kapre_fast.__file__).resolve().parents[1])
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    environment['PYTHONPATH'] = os.pathsep.join(
        [package_root] + [p for p in environment.get('PYTHONPATH', '').split(os.pathsep) if p]
    )
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def test_saved_models_predict_the_same_in_a_fresh_process(trained, tmp_path):
    x, _ = _labelled_audio(6, seed=1)
    np.save(tmp_path / 'x.npy', x)
    expected = {}
    for name, (model, *_) in trained.items():
        model.save(tmp_path / f'{name}.keras')
        model.export(str(tmp_path / f'{name}_savedmodel'), verbose=False)
        expected[name] = model(x, training=False).numpy()

    _run_fresh(
        """
        import sys, pathlib, numpy as np
        import kapre_fast.composed
        import keras
        folder = pathlib.Path(sys.argv[1])
        x = np.load(folder / 'x.npy')
        for path in sorted(folder.glob('*.keras')):
            model = keras.models.load_model(path)
            np.save(folder / f'{path.stem}_keras.npy', model(x, training=False).numpy())
    """,
        str(tmp_path),
    )
    _run_fresh(
        """
        import sys, pathlib, numpy as np
        import kapre_fast.layers
        import tensorflow as tf
        folder = pathlib.Path(sys.argv[1])
        x = np.load(folder / 'x.npy')
        for path in sorted(folder.glob('*_savedmodel')):
            loaded = tf.saved_model.load(str(path))
            name = path.name[:-len('_savedmodel')]
            np.save(folder / f'{name}_served.npy', loaded.serve(tf.constant(x)).numpy())
    """,
        str(tmp_path),
    )
    for name, predictions in expected.items():
        for how in ('keras', 'served'):
            np.testing.assert_array_equal(
                np.load(tmp_path / f'{name}_{how}.npy'), predictions, err_msg=f'{name} {how}'
            )


def test_jit_compile_is_kept_and_fit_lowers_the_loss():
    # pytest turns Keras' "Proceeding with jit_compile=False" warning into an error.
    keras.utils.set_random_seed(0)
    model = _classifier(FRONT_ENDS['melspectrogram']())
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss='sparse_categorical_crossentropy',
        jit_compile=True,
    )
    assert model.jit_compile is True
    x, y = _labelled_audio(64, seed=2)
    before = model.evaluate(x, y, batch_size=32, verbose=0)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert model.jit_compile is True
    assert model.evaluate(x, y, batch_size=32, verbose=0) < before


def _traced_op_types(layer, jit_compile):
    function = tf.function(layer, jit_compile=jit_compile)
    graph = function.get_concrete_function(tf.TensorSpec([None, None, 1])).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize('implementation', ['fused', 'builtin'])
def test_xla_traces_compilable_ops_and_other_graphs_the_chosen_ones(implementation):
    """Inside XLA: no custom op; a fused layer traces tf.signal's FFT (XLA's own, as kapre's
    layers), a builtin layer its matrix DFT (no FFT op). Outside: the chosen implementation."""
    layer = layers.FrontEnd(
        n_fft=256,
        filterbank='mel',
        n_mels=20,
        return_decibel=True,
        input_data_format='channels_last',
        implementation=implementation,
    )
    under_xla = _traced_op_types(layer, jit_compile=True)
    assert 'KapreFastFrontEnd' not in under_xla
    assert ('RFFT' in under_xla) == (implementation == 'fused')
    fused = 'KapreFastFrontEnd' in _traced_op_types(layer, jit_compile=False)
    assert fused == (implementation == 'fused')
    x = _random_input((2, 3000, 1))
    xla = tf.function(layer, jit_compile=True)(x).numpy()
    np.testing.assert_allclose(xla, layer(x).numpy(), atol=1e-3)  # dB; eager: not XLA
    if implementation == 'fused':
        stft = layers.STFT(n_fft=256, input_data_format='channels_last')
        inverse = layers.InverseSTFT(
            n_fft=256, input_data_format='channels_last', output_data_format='channels_last'
        )
        X = stft(x)
        np.testing.assert_allclose(
            tf.function(stft, jit_compile=True)(x).numpy(), X.numpy(), atol=1e-4
        )
        np.testing.assert_allclose(
            tf.function(inverse, jit_compile=True)(X).numpy(), inverse(X).numpy(), atol=1e-5
        )


# ----- graphs with unknown sizes --------------------------------------------------------------


def test_tf_function_with_unknown_batch_and_time():
    front_end = layers.FrontEnd(
        n_fft=256,
        filterbank='mel',
        n_mels=20,
        return_decibel=True,
        input_data_format='channels_last',
    )
    stft = layers.STFT(
        n_fft=256,
        pad_begin=True,
        pad_end=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    istft = layers.InverseSTFT(
        n_fft=256, input_data_format='channels_last', output_data_format='channels_last'
    )

    @tf.function(input_signature=[tf.TensorSpec([None, None, 2], tf.float32)])
    def features(audio):
        return front_end(audio), istft(stft(audio))

    concrete = features.get_concrete_function()
    assert concrete.structured_outputs[0].shape.as_list() == [None, None, 20, 2]
    assert concrete.structured_outputs[1].shape.as_list() == [None, None, 2]
    for batch, time in [(1, 300), (3, 2049)]:
        x = np.random.default_rng(time).standard_normal((batch, time, 2)).astype(np.float32)
        graph_features, graph_waveforms = features(x)
        np.testing.assert_array_equal(graph_features.numpy(), front_end(x).numpy())
        np.testing.assert_array_equal(graph_waveforms.numpy(), istft(stft(x)).numpy())


def test_tf_data_map_over_clips_of_different_lengths():
    layer = layers.FrontEnd(
        n_fft=128,
        filterbank='log',
        sample_rate=8000,
        log_n_bins=30,
        log_f_min=60.0,
        input_data_format='channels_last',
    )
    clips = [
        np.random.default_rng(n).standard_normal((n, 1)).astype(np.float32)
        for n in (128, 500, 1777)
    ]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(clips), output_signature=tf.TensorSpec([None, 1], tf.float32)
    )
    dataset = dataset.map(lambda clip: layer(clip[tf.newaxis])[0])
    for clip, features in zip(clips, dataset):
        np.testing.assert_array_equal(features.numpy(), layer(clip[None]).numpy()[0])


# ----- mixed precision ------------------------------------------------------------------------


@pytest.fixture
def mixed_precision():
    """Sets a global mixed-precision policy for the test, then restores the previous one."""
    previous = keras.mixed_precision.global_policy()
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize(
    'policy, dtype', [('mixed_float16', 'float16'), ('mixed_bfloat16', 'bfloat16')]
)
def test_mixed_precision(policy, dtype, mixed_precision, speech_batch):
    x = to_input_layout(speech_batch(n_examples=2, n_samples=4000, n_channels=2), 'channels_last')
    kwargs = dict(
        n_fft=256,
        filterbank='mel',
        n_mels=32,
        return_decibel=True,
        input_data_format='channels_last',
    )
    exact = layers.FrontEnd(**kwargs)(x).numpy()
    mixed_precision(policy)
    layer = layers.FrontEnd(**kwargs)
    assert layer.compute_dtype == dtype
    # float32 audio is computed as it is; the output is rounded to the compute dtype.
    y = layer(x)
    assert y.dtype == dtype
    resolution = 2.0 ** -(11 if dtype == 'float16' else 8)
    np.testing.assert_allclose(np.asarray(y, np.float32), exact, rtol=resolution, atol=1e-3)
    # Half-precision audio is accepted (computed in float32 from the rounded samples).
    assert layer(tf.cast(x, dtype)).dtype == dtype
    assert layers.STFT(n_fft=256)(x).dtype == 'complex64'
    assert layers.InverseSTFT(n_fft=256)(layers.STFT(n_fft=256)(x)).dtype == dtype

    # Training: the loss is scaled, the gradient goes through the op in float32.
    keras.utils.set_random_seed(0)
    model = _classifier(FRONT_ENDS['melspectrogram']())
    audio, labels = _labelled_audio(16, seed=3)
    history = model.fit(audio, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history['loss']).all()


# ----- errors ---------------------------------------------------------------------------------


def test_too_short_audio_is_empty_as_in_kapre_and_named_where_unknown():
    """As kapre's layers: audio of a known length too short for one frame gives no frames (a
    warning when the layer is built); where the length is unknown until run time the kernel
    names the lengths; a preset (librosa / torch.stft semantics) refuses by name."""
    layer = layers.FrontEnd(n_fft=512, input_data_format='channels_last')
    with pytest.warns(UserWarning, match=r'300 samples is too short for one frame'):
        assert layer(np.zeros((1, 300, 1), np.float32)).shape == (1, 0, 257, 1)
    assert layer(np.zeros((1, 600, 1), np.float32)).shape == (1, 1, 257, 1)
    assert layer(np.zeros((2, 300, 3), np.float32)).shape == (2, 0, 257, 3)  # built
    # Unknown time in a graph: the kernel's check at run time.
    run = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 1], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'audio has 100 samples.*512'):
        run(np.zeros((2, 100, 1), np.float32))
    with pytest.warns(UserWarning, match=r'500 samples is too short'):
        stft = layers.STFT(
            n_fft=512, hop_length=512, pad_begin=True, input_data_format='channels_first'
        )
        X = stft(np.zeros((1, 2, 500), np.float32))
    assert X.shape == (1, 0, 257, 2) and X.dtype == tf.complex64
    with pytest.raises(ValueError, match=r"pad_mode='reflect' pads n_fft // 2 = 256"):
        layers.FrontEnd(n_fft=512, compat='torchaudio')(np.zeros((1, 200, 1), np.float32))


@pytest.mark.parametrize(
    'data_format, layout',
    [
        ('channels_last', r'\(batch, time, channels\)'),
        ('channels_first', r'\(batch, channels, time\)'),
    ],
)
def test_wrong_rank_names_the_layout(data_format, layout):
    layer = layers.FrontEnd(n_fft=256, input_data_format=data_format)
    with pytest.raises(ValueError, match=f'3 axes {layout}'):
        layer(np.zeros((2, 1000), np.float32))
    layer(np.zeros((1, 1000, 1000), np.float32))  # built
    with pytest.raises(ValueError, match=f'3 axes {layout}.*got shape \\(1000,\\)'):
        layer(np.zeros(1000, np.float32))
    with pytest.raises(ValueError, match=r'4 axes \(batch, frames, freq, channels\)'):
        layers.InverseSTFT(n_fft=256, input_data_format='channels_last')(
            np.zeros((2, 5, 129), np.complex64)
        )


def test_inverse_stft_checks_the_frequency_bins():
    with pytest.raises(ValueError, match=r'n_fft // 2 \+ 1 = 129 frequency bins'):
        layers.InverseSTFT(n_fft=256, input_data_format='channels_first')(
            np.zeros((1, 1, 5, 128), np.complex64)
        )


def test_integer_audio_is_refused():
    with pytest.raises(TypeError, match='floating-point'):
        layers.FrontEnd(n_fft=256, input_data_format='channels_last')(
            np.zeros((1, 500, 1), np.int16)
        )
