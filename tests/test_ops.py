"""The TensorFlow op library: shape inference, graphs with unknown dimensions, and raw calls
that bypass the Python wrappers (every bad input must end in InvalidArgumentError)."""

import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')

from kapre_fast import FrontEnd, _weights, cpu, ops  # noqa: E402

lib = ops.library()
MEL = FrontEnd.melspectrogram(
    n_fft=512, hop_length=128, n_mels=40, sample_rate=16000, return_decibel=True
)


def _audio(batch=2, time=4000, ch=2):
    return np.random.default_rng(0).standard_normal((batch, time, ch)).astype(np.float32)


def test_static_shapes_are_inferred():
    f = tf.function(lambda x: ops.front_end(x, MEL))
    assert f.get_concrete_function(tf.TensorSpec([3, 4000, 2])).output_shapes == [3, 28, 40, 2]
    assert f.get_concrete_function(tf.TensorSpec([None, None, 1])).output_shapes.as_list() == [
        None,
        None,
        40,
        1,
    ]
    first = FrontEnd.stft_mag_phase(
        n_fft=256, input_data_format='channels_first', output_data_format='channels_first'
    )
    g = tf.function(lambda x: ops.front_end(x, first))
    assert g.get_concrete_function(tf.TensorSpec([None, 3, 1000])).output_shapes.as_list() == [
        None,
        6,
        12,
        129,
    ]


def test_unknown_dimensions_in_a_graph_match_eager_and_cpu():
    f = tf.function(
        lambda x: ops.front_end(x, MEL),
        input_signature=[tf.TensorSpec([None, None, None], tf.float32)],
    )
    for time in (1000, 4321):
        x = _audio(time=time)
        np.testing.assert_array_equal(f(x).numpy(), cpu.compute(MEL, x))


def test_shape_function_rejects_too_short_static_audio():
    f = tf.function(lambda x: ops.front_end(x, MEL))
    with pytest.raises(ValueError, match='win_length=512'):
        f.get_concrete_function(tf.TensorSpec([1, 100, 1]))


def test_inverse_stft_round_trip():
    spec = FrontEnd.stft(n_fft=256, hop_length=64, pad_begin=True, pad_end=True)
    x = _audio(time=3000)
    y = ops.inverse_stft(ops.front_end(x, spec), spec).numpy()
    np.testing.assert_allclose(y[:, 192 : 192 + 3000], x, atol=3e-6)


def _raw_front_end(**changes):
    start, length, weights = _weights.bands(MEL)
    args = dict(
        audio=_audio(),
        window=_weights.window(MEL),
        band_start=start,
        band_length=length,
        band_weights=weights,
        n_fft=512,
        win_length=512,
        hop_length=128,
        decibel=True,
    )
    args.update(changes)
    return lib.kapre_fast_front_end(**args)


@pytest.mark.parametrize(
    'changes, message',
    [
        (dict(n_fft=0), 'n_fft'),
        (dict(n_fft=1 << 40), 'n_fft'),
        (dict(hop_length=0), 'hop_length'),
        (dict(win_length=100), 'window'),
        (dict(pad_begin=-5), 'pad_begin'),
        (dict(window=np.ones((2, 512), np.float32)), 'window'),
        (dict(band_start=np.full(40, 9999, np.int32)), 'band'),
        (dict(band_length=np.ones(3, np.int32)), 'band_length'),
        (dict(band_weights=np.ones(7, np.float32)), 'weights'),
        (dict(amin=-1.0), 'db_amin'),
        (dict(dynamic_range=0.0), 'db_dynamic_range'),
        (dict(audio=np.ones((4, 4000), np.float32)), '3-D'),
        (dict(audio=np.ones((1, 10, 1), np.float32)), 'win_length=512'),
    ],
)
def test_raw_op_rejects_bad_input(changes, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _raw_front_end(**changes)


def test_raw_stft_and_inverse_reject_bad_input():
    window = np.ones(64, np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match='window'):
        lib.kapre_fast_stft(_audio(), window, n_fft=64, win_length=32, hop_length=16)
    with pytest.raises(tf.errors.InvalidArgumentError, match='frequency bins'):
        lib.kapre_fast_inverse_stft(
            np.ones((1, 4, 10, 1), np.complex64), window, n_fft=64, win_length=64, hop_length=16
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match='4-D'):
        lib.kapre_fast_inverse_stft(
            np.ones((4, 33), np.complex64), window, n_fft=64, win_length=64, hop_length=16
        )


def test_front_end_rejects_non_float_audio():
    with pytest.raises(TypeError, match='floating'):
        ops.front_end(tf.constant([[[1]]], tf.int32), MEL)


def test_importing_kapre_fast_and_cpu_does_not_import_tensorflow():
    code = (
        'import sys, numpy as np, kapre_fast, kapre_fast.cpu as c; '
        'c.stft_magnitude(np.ones((1, 512, 1), np.float32), n_fft=256); '
        'assert "tensorflow" not in sys.modules, "tensorflow imported"'
    )
    subprocess.run([sys.executable, '-c', code], check=True)


def test_loader_explains_a_build_without_tensorflow(monkeypatch):
    from kapre_fast import _loader

    monkeypatch.setattr(_loader, 'build_info', lambda: {'tensorflow': ''})
    _loader.tf_ops.cache_clear()
    try:
        with pytest.raises(ImportError, match='built without its TensorFlow ops'):
            _loader.tf_ops()
    finally:
        _loader.tf_ops.cache_clear()


@pytest.mark.parametrize('running', ['2.15.1', '2.22.0', '3.0.0'])
def test_loader_refuses_tensorflow_outside_the_supported_range(running, monkeypatch):
    from kapre_fast import _loader

    monkeypatch.setattr(tf, '__version__', running)
    _loader.tf_ops.cache_clear()
    try:
        with pytest.raises(ImportError, match=rf'support TensorFlow 2.16 to 2.21.*{running}'):
            _loader.tf_ops()
    finally:
        _loader.tf_ops.cache_clear()


def test_loader_loads_the_c_api_library_whatever_release_it_was_built_beside(monkeypatch):
    # The CPU op library is on TensorFlow's C API: built beside 2.19, it serves the running one.
    from kapre_fast import _loader

    monkeypatch.setattr(_loader, 'build_info', lambda: {'tensorflow': '2.19.0'})
    _loader.tf_ops.cache_clear()
    try:
        x = _audio(batch=1, time=1000, ch=1)
        np.testing.assert_array_equal(
            _loader.tf_ops()
            .kapre_fast_front_end(
                x,
                _weights.window(MEL),
                *_weights.bands(MEL),
                n_fft=512,
                win_length=512,
                hop_length=128,
                decibel=True,
            )
            .numpy(),
            cpu.compute(MEL, x),
        )
    finally:
        _loader.tf_ops.cache_clear()


def test_raw_op_refuses_outputs_over_the_limit():
    # conftest.py caps outputs at 256 MiB for the test run: this asks for about 1 GiB.
    with pytest.raises(tf.errors.InvalidArgumentError, match='KAPRE_FAST_MAX_OUTPUT_BYTES'):
        lib.kapre_fast_stft(
            np.ones((8, 200000, 1), np.float32),
            np.ones(4096, np.float32),
            n_fft=4096,
            win_length=4096,
            hop_length=8,
        )
