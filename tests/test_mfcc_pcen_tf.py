"""MFCC and PCEN under TensorFlow (issue #15): the fused ops KapreFastMfcc and KapreFastPcen
(kapre_fast.ops) against the native NumPy backend, their registered gradients against float64
finite differences of kapre_fast.reference, the Keras layers (fused and builtin), a SavedModel
round trip, and the builtin/export path (SavedModel without the op library, TFLite, ONNX)."""

import numpy as np
import pytest

from helpers import peak_relative_error, to_input_layout
from kapre_fast import cpu, reference
from kapre_fast.spec import FrontEnd, mfcc_matrix, pcen_constants

tf = pytest.importorskip('tensorflow')
keras = pytest.importorskip('keras')
if keras.backend.backend() != 'tensorflow':
    pytest.skip(
        "the fused TF ops back the layers on Keras' TensorFlow backend only",
        allow_module_level=True,
    )

from kapre_fast import builtin, composed, export, layers, ops  # noqa: E402

SAMPLE_RATE = 16000
MEL = dict(n_fft=512, win_length=400, hop_length=160, sample_rate=SAMPLE_RATE, n_mels=40)
# PCEN's constants reach the op as float32 attributes (the NumPy binding takes float64).
PCEN_TOLERANCE = 1e-6
# The builtin path: float32 matmul DFT and (PCEN) a matrix smoother, shares of the peak.
BUILTIN_TOLERANCE = 1e-5


def _layout(data_format):
    return dict(input_data_format=data_format, output_data_format=data_format)


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
@pytest.mark.parametrize('compat', ['kapre', 'librosa'])
def test_mfcc_op_is_cpu_mfcc_bit_for_bit(data_format, compat, noise_batch):
    x = to_input_layout(
        noise_batch(n_examples=3, n_samples=4000, n_channels=2, seed=1), data_format
    )
    kwargs = dict(MEL, compat=compat, **_layout(data_format))
    if compat == 'librosa':
        kwargs.pop('win_length')
    spec = FrontEnd.melspectrogram(return_decibel=True, **kwargs)
    ours = ops.mfcc(x, spec, mfcc_matrix(13, 40, 22)).numpy()
    np.testing.assert_array_equal(ours, cpu.mfcc(x, n_mfcc=13, lifter=22, **kwargs))


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_pcen_op_is_the_native_pass(data_format, speech_batch):
    x = to_input_layout(speech_batch(n_examples=2, n_samples=4000, n_channels=2), data_format)
    mel = cpu.melspectrogram(x, **MEL, **_layout(data_format))
    constants = pcen_constants(SAMPLE_RATE, 160, gain=0.9, bias=3.0, pcen_power=0.4)
    time_axis = 1 if data_format == 'channels_last' else 2
    expected = cpu.apply_pcen(mel.copy(), constants, time_axis)
    ours = ops.pcen(mel, constants, data_format).numpy()
    assert peak_relative_error(ours, expected) <= PCEN_TOLERANCE


def test_mfcc_gradient_matches_finite_differences():
    """d sum(w * mfcc(x)) / d x at a few samples (the recomputation's float32 gradient) against
    central differences of the float64 reference; d / d dct is exactly mel^T w."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3000, 1)).astype(np.float32)
    kwargs = dict(MEL, **_layout('channels_last'))
    spec = FrontEnd.melspectrogram(return_decibel=True, **kwargs)
    matrix = mfcc_matrix(13, 40)
    weights = rng.standard_normal(cpu.mfcc(x, n_mfcc=13, **kwargs).shape)
    audio, dct = tf.constant(x), tf.Variable(matrix.astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(audio)
        loss = tf.reduce_sum(ops.mfcc(audio, spec, dct) * weights.astype(np.float32))
    gradient = tape.gradient(loss, audio).numpy()
    mel = cpu.melspectrogram(x, return_decibel=True, **kwargs).astype(np.float64)
    np.testing.assert_allclose(
        tape.gradient(loss, dct).numpy(),
        np.einsum('bfmc,bfkc->mk', mel, weights),
        rtol=1e-4,
        atol=1e-2,
    )
    x64 = x.astype(np.float64)
    for index in [(0, 700, 0), (1, 1234, 0), (0, 2900, 0)]:
        step = np.zeros_like(x64)
        step[index] = 1e-3
        plus = reference.mfcc(x64 + step, n_mfcc=13, **kwargs)
        minus = reference.mfcc(x64 - step, n_mfcc=13, **kwargs)
        numeric = ((plus - minus) * weights).sum() / 2e-3
        np.testing.assert_allclose(gradient[index], numeric, rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
@pytest.mark.parametrize('constants', [dict(), dict(pcen_power=0.0), dict(bias=0.0)], ids=str)
def test_pcen_gradient_matches_finite_differences(data_format, constants):
    rng = np.random.default_rng(4)
    shape = (2, 30, 8, 2) if data_format == 'channels_last' else (2, 2, 30, 8)
    mel = rng.uniform(0.05, 3.0, shape)
    c = pcen_constants(SAMPLE_RATE, 160, **constants)
    weights = rng.standard_normal(shape)
    s = tf.constant(mel.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = tf.reduce_sum(ops.pcen(s, c, data_format) * weights.astype(np.float32))
    gradient = tape.gradient(loss, s).numpy()
    time_axis = 1 if data_format == 'channels_last' else 2
    for index in [(0, 0, 3, 1), (1, 17, 7, 0), (0, 29, 0, 1)]:
        if data_format == 'channels_first':
            index = (index[0], index[3], index[1], index[2])
        step = np.zeros_like(mel)
        step[index] = 1e-5
        plus = reference.apply_pcen(mel + step, c, time_axis)
        minus = reference.apply_pcen(mel - step, c, time_axis)
        numeric = ((plus - minus) * weights).sum() / 2e-5
        np.testing.assert_allclose(gradient[index], numeric, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_pcen_gradient_on_a_long_input_and_an_unknown_length(data_format):
    """KapreFastPcen's gradient (kapre_fast._pcen's doubling scan, recomputed) on 3000 frames
    with b small (a memory longer than the input): its derivative along a random direction
    against a float64 central difference of reference.apply_pcen; and the same values and
    gradient from a tf.function of unknown batch and length (the scan's passes not knowing
    the frame count), and pcen_in_tf_ops' values there as eagerly (within graph-mode TF math's
    roundings)."""
    rng = np.random.default_rng(9)
    shape = (2, 3000, 6, 2) if data_format == 'channels_last' else (2, 2, 3000, 6)
    time_axis = 1 if data_format == 'channels_last' else 2
    mel = rng.uniform(0.0, 3.0, shape) ** 4
    c = pcen_constants(SAMPLE_RATE, 160, b=0.002)
    weights, direction = rng.standard_normal(shape), rng.standard_normal(shape)
    mel += 1e-3 * np.abs(direction)  # mel - step * direction stays positive

    def values_and_gradient(s, w):
        with tf.GradientTape() as tape:
            tape.watch(s)
            y = ops.pcen(s, c, data_format)
            loss = tf.reduce_sum(y * w)
        return y, tape.gradient(loss, s)

    s, w = tf.constant(mel.astype(np.float32)), tf.constant(weights.astype(np.float32))
    values, gradient = (t.numpy() for t in values_and_gradient(s, w))
    step = 1e-4
    plus = reference.apply_pcen(mel + step * direction, c, time_axis)
    minus = reference.apply_pcen(mel - step * direction, c, time_axis)
    numeric = ((plus - minus) * weights).sum() / (2 * step)
    np.testing.assert_allclose((gradient * direction).sum(), numeric, rtol=1e-4)

    unknown = [None, None, 6, 2] if data_format == 'channels_last' else [None, 2, None, 6]
    signature = [tf.TensorSpec(unknown, tf.float32)] * 2
    graph_values, graph_gradient = tf.function(values_and_gradient, input_signature=signature)(s, w)
    np.testing.assert_allclose(graph_values.numpy(), values, rtol=1e-5, atol=0)
    np.testing.assert_allclose(graph_gradient.numpy(), gradient, rtol=1e-5, atol=1e-7)
    in_tf_ops = tf.function(
        lambda x: ops.pcen_in_tf_ops(x, c, data_format), input_signature=signature[:1]
    )
    eager = ops.pcen_in_tf_ops(s, c, data_format).numpy()
    np.testing.assert_allclose(in_tf_ops(s).numpy(), eager, rtol=1e-5, atol=0)


def test_ops_refuse_bad_inputs_by_name():
    library = ops.library()
    spec = FrontEnd.melspectrogram(return_decibel=True, **MEL)
    x = np.zeros((1, 4000, 1), np.float32)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match='MFCC matrix has 39 rows but the filterbank has 40 bands',
    ):
        ops.mfcc(x, spec, np.zeros((39, 13), np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'n_mfcc must be in \[1, 40\]'):
        ops.mfcc(x, spec, np.zeros((40, 41), np.float32))
    with pytest.raises(ValueError, match='mfcc needs a dB filterbank spectrogram'):
        ops.mfcc(x, FrontEnd.melspectrogram(**MEL), mfcc_matrix(13, 40))
    with pytest.raises(tf.errors.InvalidArgumentError, match='b must be in'):
        library.kapre_fast_pcen(
            np.ones((1, 5, 4, 1), np.float32), b=2.0, gain=0.98, bias=2.0, power=0.5, eps=1e-6
        )
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match='rank 4|4-D'):
        library.kapre_fast_pcen(
            np.ones((5, 4, 1), np.float32), b=0.1, gain=0.98, bias=2.0, power=0.5, eps=1e-6
        )


@pytest.fixture(scope='module')
def model():
    """Stereo audio (4000 samples) > [MFCC (fused op), PCEN of the mel (fused ops)] along the
    feature axis: one model, so each conversion below runs once."""
    kwargs = dict(MEL, **_layout('channels_last'))  # kapre's numerics: the builtin path's
    inputs = keras.Input((4000, 2), name='audio')
    mfcc = composed.get_mfcc_layer(n_mfcc=13, lifter=22, **kwargs)(inputs)
    pcen = composed.get_pcen_layer(**kwargs)(inputs * 100.0)
    return keras.Model(inputs, keras.layers.Concatenate(axis=2)([mfcc, pcen]), name='m')


@pytest.fixture(scope='module')
def audio(speech):
    import helpers

    return to_input_layout(
        helpers.speech_batch(speech, 2, 4000, n_channels=2, seed=5), 'channels_last'
    )


def _split(y):
    return y[:, :, :13], y[:, :, 13:]  # (mfcc, pcen)


def _assert_close(actual, expected, tolerance):
    for a, e in zip(_split(actual), _split(expected)):
        assert peak_relative_error(a, e) <= tolerance


def test_layers_are_the_fused_ops_and_builtin_equals_fused(model, audio):
    kwargs = dict(MEL, **_layout('channels_last'))
    mfcc, pcen = _split(model(audio).numpy())
    np.testing.assert_array_equal(mfcc, cpu.mfcc(audio, n_mfcc=13, lifter=22, **kwargs))
    assert peak_relative_error(pcen, cpu.pcen(audio * 100.0, **kwargs)) <= PCEN_TOLERANCE
    assert [type(layer).__name__ for layer in export.portable(model).layers[1].layers] == ['MFCC']
    _assert_close(export.portable(model)(audio).numpy(), model(audio).numpy(), BUILTIN_TOLERANCE)
    spec = FrontEnd.melspectrogram(return_decibel=True, **kwargs)
    np.testing.assert_allclose(
        builtin.mfcc(audio, spec, mfcc_matrix(13, 40, 22)).numpy(),
        mfcc,
        atol=BUILTIN_TOLERANCE * np.abs(mfcc).max(),
    )
    with pytest.raises(ValueError, match="filterbank must be 'mel', got 'log'"):
        layers.MFCC(filterbank='log')
    with pytest.raises(ValueError, match='implementation must be one of'):
        layers.PCEN(implementation='scan')


def test_savedmodel_round_trip(model, audio, tmp_path):
    """The fused model as a SavedModel (needs the op library: its graph holds the fused ops)
    and the portable one (builtin ops only), both giving the model's numbers."""
    model.export(str(tmp_path / 'fused'), verbose=False)
    export.to_savedmodel(model, tmp_path / 'portable')
    assert b'KapreFastMfcc' in (tmp_path / 'fused' / 'saved_model.pb').read_bytes()
    assert b'KapreFastPcen' in (tmp_path / 'fused' / 'saved_model.pb').read_bytes()
    assert b'KapreFast' not in (tmp_path / 'portable' / 'saved_model.pb').read_bytes()
    expected = model(audio).numpy()
    served = tf.saved_model.load(str(tmp_path / 'fused')).serve(tf.constant(audio)).numpy()
    np.testing.assert_array_equal(served, expected)
    portable = export.run_savedmodel(tmp_path / 'portable', audio)
    _assert_close(portable, expected, BUILTIN_TOLERANCE)


def test_tflite_and_onnx_run_mfcc_and_pcen(model, audio):
    pytest.importorskip('ai_edge_litert')
    expected = model(audio).numpy()
    _assert_close(export.run_tflite(export.to_tflite(model), audio), expected, BUILTIN_TOLERANCE)
    pytest.importorskip('tf2onnx')
    pytest.importorskip('onnxruntime')
    _assert_close(export.run_onnx(export.to_onnx(model), audio), expected, BUILTIN_TOLERANCE)


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_builtin_pcen_of_unknown_length_converts_and_runs(data_format):
    """A PCEN layer of unknown length exported (the doubling scan's passes without a frame
    count: slices past the end of short inputs) runs in LiteRT and onnxruntime at 7 and 2000
    frames, equal to the native pass."""
    pytest.importorskip('ai_edge_litert')
    channels_last = data_format == 'channels_last'
    layer = layers.PCEN(SAMPLE_RATE, 160, data_format=data_format, b=0.01)
    model = keras.Sequential(
        [keras.Input((None, 40, 2) if channels_last else (2, None, 40)), layer]
    )
    inputs = []
    for frames in (7, 2000):
        shape = (1, frames, 40, 2) if channels_last else (1, 2, frames, 40)
        x = np.random.default_rng(frames).uniform(0, 2, shape).astype(np.float32)
        inputs.append((x, cpu.apply_pcen(x.copy(), layer.constants, 1 if channels_last else 2)))
    flatbuffer = export.to_tflite(model)
    for x, expected in inputs:
        assert peak_relative_error(export.run_tflite(flatbuffer, x), expected) <= BUILTIN_TOLERANCE
    pytest.importorskip('tf2onnx')
    pytest.importorskip('onnxruntime')
    onnx_model = export.to_onnx(model)
    for x, expected in inputs:
        assert peak_relative_error(export.run_onnx(onnx_model, x), expected) <= BUILTIN_TOLERANCE


def test_trainable_mfcc_layer_passes_gradients_to_its_window_and_filterbank():
    x = np.random.default_rng(6).standard_normal((2, 3000, 1)).astype(np.float32)
    layer = layers.MFCC(
        n_mfcc=13,
        trainable_window=True,
        trainable_filterbank=True,
        **MEL,
        **_layout('channels_last'),
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    gradients = tape.gradient(loss, [layer.window, layer.band_weights])
    for gradient in gradients:
        assert np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).max() > 0
    np.testing.assert_array_equal(
        layer(x).numpy(), cpu.mfcc(x, n_mfcc=13, **MEL, **_layout('channels_last'))
    )


def test_pcen_layer_under_xla_predicts_and_fits(audio):
    """PCEN inside an XLA compilation (issue #22; it failed with a RecursionError in Keras'
    associative_scan): tf.function(jit_compile=True) traces no custom op and equals the fused
    op; a model compiled with jit_compile=True predicts the same and fit lowers its loss."""
    kwargs = dict(MEL, **_layout('channels_last'))
    pcen = composed.get_pcen_layer(input_shape=(4000, 2), **kwargs)
    x = audio * 100.0
    expected = pcen(x).numpy()
    function = tf.function(pcen, jit_compile=True)
    graph = function.get_concrete_function(tf.TensorSpec([None, 4000, 2])).graph
    assert not {op.type for op in graph.get_operations()} & {'KapreFastPcen', 'KapreFastFrontEnd'}
    assert peak_relative_error(function(x).numpy(), expected) <= 1e-5
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4000, 2)), pcen, keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss='mse', jit_compile=True)
    assert model.jit_compile is True
    predicted = model.predict(x, verbose=0)
    np.testing.assert_allclose(predicted, model(x).numpy(), rtol=1e-4, atol=1e-4)
    target = np.ones((len(x), 1), np.float32)
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=5, verbose=0)
    assert model.jit_compile is True
    assert model.evaluate(x, target, verbose=0) < before
