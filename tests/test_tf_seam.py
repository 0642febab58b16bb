"""The TensorFlow op library on TensorFlow's C API (csrc/tf): what makes one binary load in every
supported release, and that it computes there what the reference computes.

Runs in any venv with a supported TensorFlow: the release check (tools/tf_c_api_symbols.py, a
venv per release) runs this file with the library built beside another release, e.g.
`PYTHONPATH=/path/to/checkout /work/venvs/tf-2.18/bin/python -m pytest tests/test_tf_seam.py`.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')

from kapre_fast import FrontEnd, _loader, _tf_shapes, ops, reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import tf_c_api_symbols  # noqa: E402

MEL = FrontEnd.melspectrogram(
    n_fft=512, hop_length=128, n_mels=40, sample_rate=16000, return_decibel=True
)


def _library_path() -> Path:
    import kapre_fast

    return Path(kapre_fast.__file__).resolve().parent / '_tf_ops.so'


def _audio(batch=2, time=4000, ch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, time, ch)).astype(np.float32)


def test_the_library_takes_only_c_api_functions_from_tensorflow():
    c_api, cxx = tf_c_api_symbols.tensorflow_symbols(_library_path())
    assert not cxx, f'C++ symbols tie _tf_ops.so to one TensorFlow release: {sorted(cxx)[:5]}'
    assert {'TF_NewKernelBuilder', 'TF_RegisterOpDefinition', 'TF_GetInput'} <= c_api


def test_the_running_tensorflow_exports_every_function_the_library_needs():
    framework = Path(tf.sysconfig.get_lib()) / tf_c_api_symbols.FRAMEWORK
    c_api, _ = tf_c_api_symbols.tensorflow_symbols(_library_path())
    exported = tf_c_api_symbols.framework_exports(framework)[str(framework)]
    assert c_api - exported == set()
    assert _loader.tf_version_problem(tf.__version__) == ''


def test_symbol_check_reports_a_missing_function(tmp_path, capsys):
    # A framework library that exports nothing the op library needs: the tool must say so.
    stub = tmp_path / 'stub.c'
    stub.write_text('int TF_SomethingElse(void) { return 0; }\n')
    lib = tmp_path / tf_c_api_symbols.FRAMEWORK
    subprocess.run(['cc', '-shared', '-fPIC', str(stub), '-o', str(lib)], check=True)
    assert tf_c_api_symbols.main(['--library', str(_library_path()), str(lib)]) == 1
    out = capsys.readouterr().out
    assert 'MISSING' in out and 'TF_GetInput' in out


@pytest.mark.parametrize('formats', [('channels_last', 'channels_last'), ('channels_first',) * 2])
def test_front_end_equals_the_reference_within_float32_rounding(formats):
    spec = FrontEnd.melspectrogram(
        n_fft=512,
        hop_length=128,
        n_mels=40,
        sample_rate=16000,
        return_decibel=True,
        input_data_format=formats[0],
        output_data_format=formats[1],
    )
    x = _audio()
    if formats[0] == 'channels_first':
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    ours = ops.front_end(x, spec).numpy()
    theirs = reference.compute(spec, x)
    assert ours.shape == theirs.shape
    # dB values: float32 rounding of the magnitudes is < 1e-3 dB here.
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_stft_pcen_and_inverse_run_through_the_c_kernels():
    spec = FrontEnd.stft(n_fft=256, hop_length=64, pad_begin=True, pad_end=True)
    x = _audio(time=3000)
    stft = ops.front_end(x, spec)
    np.testing.assert_allclose(stft.numpy(), reference.compute(spec, x), atol=2e-4, rtol=1e-4)
    y = ops.inverse_stft(stft, spec).numpy()
    np.testing.assert_allclose(y[:, 192 : 192 + 3000], x, atol=3e-6)
    mel = ops.front_end(x, FrontEnd.melspectrogram(n_fft=256, hop_length=64, n_mels=20))
    constants = (0.025, 0.98, 2.0, 0.5, 1e-6)
    np.testing.assert_allclose(
        ops.pcen(mel, constants, 'channels_last').numpy(),
        reference.apply_pcen(mel.numpy(), constants, time_axis=1),
        rtol=1e-4,
        atol=1e-5,
    )


def test_a_tf_function_gets_static_shapes_and_the_kernel_values():
    f = tf.function(lambda x: ops.front_end(x, MEL))
    assert f.get_concrete_function(tf.TensorSpec([3, 4000, 2])).output_shapes == [3, 28, 40, 2]
    unknown = f.get_concrete_function(tf.TensorSpec([None, None, 1]))
    assert unknown.output_shapes.as_list() == [None, None, 40, 1]
    x = _audio(ch=1)
    np.testing.assert_array_equal(unknown(tf.constant(x)).numpy(), ops.front_end(x, MEL).numpy())
    with pytest.raises(ValueError, match='one frame needs win_length=512'):
        # A fresh function: f would reuse its relaxed (None, None, 1) trace.
        tf.function(lambda x: ops.front_end(x, MEL)).get_concrete_function(
            tf.TensorSpec([1, 100, 1])
        )


def test_python_shapes_agree_with_the_kernels_for_every_op():
    spec = FrontEnd.stft_mag_phase(
        n_fft=256, hop_length=100, input_data_format='channels_first', pad_end=True
    )
    x = np.ones((2, 3, 999), np.float32)
    stft = FrontEnd.stft(n_fft=256, hop_length=64, input_data_format='channels_first')
    for fn in (lambda t: ops.front_end(t, spec), lambda t: ops.front_end(t, stft)):
        graph_shape = tf.function(fn).get_concrete_function(tf.TensorSpec(x.shape)).output_shapes
        assert graph_shape.as_list() == list(fn(x).shape)


def test_the_gradient_reaches_the_waveform():
    x = tf.constant(_audio(batch=1, time=2000, ch=1))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(ops.front_end(x, MEL))
        theirs = tf.reduce_sum(ops.recompute(MEL, x))
    mine, expected = tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy()
    assert np.abs(mine).max() > 0
    np.testing.assert_allclose(mine, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_kernels_use_tensorflows_intra_op_thread_count():
    library = ops.library()
    library.threads.sync(tf)
    assert library.threads.current() == tf.config.threading.get_intra_op_parallelism_threads()
    code = (
        'import tensorflow as tf; tf.config.threading.set_intra_op_parallelism_threads(3); '
        'import numpy as np; from kapre_fast import ops, FrontEnd; '
        'ops.front_end(np.ones((1, 1000, 1), np.float32), FrontEnd.stft(n_fft=256)); '
        'print(ops.library().threads.current())'
    )
    out = subprocess.run(
        [sys.executable, '-c', code], check=True, capture_output=True, text=True
    ).stdout
    assert out.split()[-1] == '3'


def test_output_shape_leaves_other_ops_alone():
    graph = tf.Graph()
    with graph.as_default():
        op = tf.constant(1.0).op
    assert _tf_shapes.output_shape(op) is None


@pytest.mark.parametrize('sees_gpu', [True, False])
def test_gpu_kernels_of_another_release_are_not_loaded(sees_gpu, monkeypatch, tmp_path):
    # GPU kernels built for a release that is never the running one here (2.15).
    (tmp_path / '_tf_ops_gpu.so').write_bytes(b'not a library: it must not be loaded')
    monkeypatch.setattr(_loader, 'build_info', lambda: {'tensorflow': '2.15.0', 'tf_gpu': True})
    monkeypatch.setattr(_loader, '_package_file', lambda name: tmp_path / name)
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind: ['GPU:0'] * sees_gpu)
    _loader.tf_gpu_ops.cache_clear()
    try:
        if sees_gpu:
            with pytest.warns(RuntimeWarning, match=r'built for TensorFlow 2\.15\.0.*CPU kernels'):
                assert _loader.tf_gpu_ops() is None
        else:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter('error')
                assert _loader.tf_gpu_ops() is None
    finally:
        _loader.tf_gpu_ops.cache_clear()
