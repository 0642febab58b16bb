"""Trainable front ends (issue #15): layers.FrontEnd(trainable_window=True,
trainable_filterbank=True) and the composed getters' options. The window and the filterbank's
nonzero weights (each band keeps its initial support) are layer weights fed to the fused op,
whose registered gradient (kapre_fast.ops) reaches them. Checked against the same front end
composed here from stock TensorFlow ops (tape gradients in float32) and against central finite
differences of that composition in float64."""

import numpy as np
import pytest

from helpers import to_input_layout

tf = pytest.importorskip('tensorflow')
keras = pytest.importorskip('keras')

from kapre_fast import composed, layers  # noqa: E402

CASES = {
    'mel': dict(
        n_fft=256,
        win_length=200,
        hop_length=64,
        filterbank='mel',
        sample_rate=16000,
        n_mels=24,
        input_data_format='channels_last',
        output_data_format='channels_last',
    ),
    'log_db': dict(
        n_fft=512,
        hop_length=128,
        pad_begin=True,
        filterbank='log',
        sample_rate=16000,
        log_n_bins=30,
        log_f_min=100.0,
        return_decibel=True,
        input_data_format='channels_first',
        output_data_format='channels_first',
    ),
}


def _composed(layer, audio, window, band_weights):
    """The layer's front end from stock TF ops, in the dtype of `audio`: kapre's framing,
    window, |rFFT|, a dense filterbank scattered from the sparse weights, kapre's dB."""
    spec = layer.spec
    if spec.input_data_format == 'channels_last':
        audio = tf.transpose(audio, [0, 2, 1])
    audio = tf.pad(audio, [[0, 0], [0, 0], [spec.pad_begin_length, 0]])
    frames = tf.signal.frame(audio, spec.win_length, spec.hop_length) * window
    spectrum = tf.abs(tf.signal.rfft(frames, fft_length=[spec.n_fft]))
    start, length, _ = spec.sparse_filterbank()
    band = np.repeat(np.arange(len(start)), length)
    row = start[band] + np.arange(len(band)) - np.cumsum(length)[band] + length[band]
    matrix = tf.scatter_nd(np.stack([row, band], 1), band_weights, [spec.n_freq, len(start)])
    features = tf.tensordot(spectrum, matrix, [[3], [0]])
    if spec.return_decibel:
        multiplier, amin, ref, dynamic_range = spec.decibel
        log10 = np.log(10.0).astype(features.dtype.as_numpy_dtype)
        features = multiplier * (
            tf.math.log(tf.maximum(features, amin)) / log10 - np.log10(max(amin, ref))
        )
        peak = tf.reduce_max(features, axis=[1, 2, 3], keepdims=True)
        features = tf.maximum(features, peak - dynamic_range)
    if spec.output_data_format == 'channels_last':
        features = tf.transpose(features, [0, 2, 3, 1])
    return features


def _trainable_layer(case, **extra):
    layer = layers.FrontEnd(
        **CASES[case], trainable_window=True, trainable_filterbank=True, **extra
    )
    return layer


@pytest.mark.parametrize('case', list(CASES))
def test_gradients_match_tf_composition_and_finite_differences(case, speech_batch):
    layer = _trainable_layer(case)
    x = to_input_layout(
        speech_batch(n_examples=2, n_samples=3000, n_channels=2, seed=4),
        layer.spec.input_data_format,
    )
    layer.build(x.shape)
    assert [w.name for w in layer.trainable_weights] == ['window', 'band_weights']
    weights = np.random.default_rng(1).standard_normal(layer(x).shape)

    def loss(features):
        return tf.reduce_sum(features * tf.cast(weights, features.dtype))

    audio = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(audio)
        ours_loss = loss(layer(audio))
    ours = tape.gradient(ours_loss, [audio, layer.window, layer.band_weights])

    window = tf.Variable(layer.window.numpy())
    band_weights = tf.Variable(layer.band_weights.numpy())
    with tf.GradientTape() as tape:
        tape.watch(audio)
        theirs_loss = loss(_composed(layer, audio, window, band_weights))
    theirs = tape.gradient(theirs_loss, [audio, window, band_weights])
    np.testing.assert_allclose(ours_loss.numpy(), theirs_loss.numpy(), rtol=1e-4)
    for name, a, b in zip(['audio', 'window', 'band_weights'], ours, theirs):
        peak = np.abs(b.numpy()).max()
        assert peak > 0, name
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-4 * peak, err_msg=name)

    # Central differences of the float64 composition, at a few window and band weights.
    x64, w64, b64 = (
        np.asarray(v, np.float64) for v in (x, layer.window.numpy(), layer.band_weights.numpy())
    )
    rng = np.random.default_rng(2)
    for name, values, gradient in (('window', w64, ours[1]), ('band_weights', b64, ours[2])):
        for index in rng.choice(values.size, 4, replace=False):
            step = np.zeros_like(values)
            step[index] = 1e-6
            args = {'window': w64, 'band_weights': b64}
            plus = loss(_composed(layer, x64, **{**args, name: values + step})).numpy()
            minus = loss(_composed(layer, x64, **{**args, name: values - step})).numpy()
            numeric = (plus - minus) / 2e-6
            scale = np.abs(gradient.numpy()).max()
            assert abs(gradient.numpy()[index] - numeric) <= 2e-4 * scale, (name, index)


def test_xla_path_gives_the_same_gradients(noise_batch):
    """Inside jit_compile the layer runs the TF-ops recomputation with its weights as inputs."""
    layer = _trainable_layer('mel')
    x = tf.constant(to_input_layout(noise_batch(n_examples=2, n_samples=3000), 'channels_last'))
    layer.build(x.shape)

    def gradients(audio):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(audio) ** 2)
        return tape.gradient(loss, layer.trainable_weights)

    eager = gradients(x)
    compiled = tf.function(gradients, jit_compile=True)(x)
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(
            a.numpy(), b.numpy(), rtol=0, atol=1e-4 * np.abs(a.numpy()).max()
        )


def test_small_model_trains_its_filterbank_and_the_loss_falls(noise_batch):
    """A trainable mel front end learns a teacher's filter weights (the same sparse support,
    other values) from its outputs: the loss falls, the support and sizes stay."""
    keras.utils.set_random_seed(0)
    x = to_input_layout(noise_batch(n_examples=16, n_samples=3000, seed=5), 'channels_last')
    spec = dict(CASES['mel'])
    teacher = layers.FrontEnd(**spec, trainable_filterbank=True)
    teacher.build(x.shape)
    initial = teacher.band_weights.numpy()
    teacher.band_weights.assign(initial * np.random.default_rng(3).uniform(0.5, 1.5, initial.shape))
    target = teacher(x).numpy()

    model = composed.get_melspectrogram_layer(
        input_shape=x.shape[1:],
        **{k: v for k, v in spec.items() if k != 'filterbank'},
        trainable_window=True,
        trainable_filterbank=True,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='mse')
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=40, batch_size=8, verbose=0)
    after = model.evaluate(x, target, verbose=0)
    assert after < 0.2 * before, (before, after)
    learned = model.layers[0].band_weights.numpy()
    assert learned.shape == initial.shape
    assert np.abs(learned - initial).max() > 0


def test_trainable_layer_round_trips_with_its_weights(tmp_path, noise_batch):
    x = to_input_layout(noise_batch(n_examples=1, n_samples=3000), 'channels_last')
    model = keras.Sequential([keras.Input(x.shape[1:]), _trainable_layer('mel', name='fe')])
    layer = model.layers[0]
    layer.window.assign(layer.window.numpy() * 0.5)
    config = layer.get_config()
    assert config['trainable_window'] is True and config['trainable_filterbank'] is True
    path = tmp_path / 'trainable.keras'
    model.save(path)
    copy = keras.saving.load_model(path)
    np.testing.assert_array_equal(copy.layers[0].window.numpy(), layer.window.numpy())
    np.testing.assert_array_equal(copy(x).numpy(), model(x).numpy())


def test_not_trainable_by_default_and_weights_change_the_output(noise_batch):
    x = to_input_layout(noise_batch(n_examples=1, n_samples=3000), 'channels_last')
    plain = layers.FrontEnd(**CASES['mel'])
    plain.build(x.shape)
    assert plain.trainable_weights == []
    layer = _trainable_layer('mel')
    np.testing.assert_array_equal(layer(x).numpy(), plain(x).numpy())
    layer.band_weights.assign(layer.band_weights.numpy() * 2)
    np.testing.assert_allclose(layer(x).numpy(), 2 * plain(x).numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (
            dict(compat='librosa', trainable_window=True),
            "trainable_window=True needs compat='kapre', got compat='librosa'",
        ),
        (
            dict(compat='torchaudio', filterbank='mel', trainable_filterbank=True),
            "trainable_filterbank=True needs compat='kapre', got compat='torchaudio'",
        ),
        (
            dict(filterbank='none', trainable_filterbank=True),
            "trainable_filterbank=True needs a filterbank .*got filterbank='none'",
        ),
        (
            dict(implementation='builtin', trainable_window=True),
            "trainable_window=True needs implementation='fused', got implementation='builtin'",
        ),
    ],
)
def test_bad_trainable_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.FrontEnd(n_fft=256, **kwargs)


def test_trainable_options_must_be_bools():
    with pytest.raises(
        TypeError, match=r"trainable_window must be a bool \(or 0 or 1\), got str 'yes'"
    ):
        layers.FrontEnd(n_fft=256, trainable_window='yes')
    with pytest.raises(ValueError, match="needs compat='kapre'"):
        composed.get_melspectrogram_layer(compat='librosa', trainable_filterbank=True)


def test_mixed_precision_keeps_float32_weights_and_gradients(noise_batch):
    x = to_input_layout(noise_batch(n_examples=1, n_samples=3000), 'channels_last')
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy('mixed_float16')
    try:
        layer = _trainable_layer('mel')
        with tf.GradientTape() as tape:
            features = layer(x)
            loss = tf.reduce_sum(tf.cast(features, tf.float32))
        gradients = tape.gradient(loss, layer.trainable_weights)
    finally:
        keras.config.set_dtype_policy(before)
    assert features.dtype == tf.float16
    assert [w.dtype for w in layer.trainable_weights] == ['float32', 'float32']
    assert all(g.dtype == tf.float32 and np.isfinite(g.numpy()).all() for g in gradients)
