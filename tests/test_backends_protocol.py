"""kapre_fast._backends: every registered backend has the Backend protocol's methods with the same
parameters in the same order, and the Keras layers compute through the registry's entry (under
TensorFlow inside an XLA compilation: the TF-ops recomputation, IN_TF_OPS)."""

from __future__ import annotations

import importlib
import inspect
import sys

import numpy as np
import pytest

from helpers import noise_batch, peak_relative_error, to_input_layout
from kapre_fast import _backends, spec as _spec
from kapre_fast.spec import FrontEnd

# The frameworks each registered backend imports (the registry's entries load on first use).
NEEDS = {
    'reference': (),
    'cpu': (),
    'gpu': (),  # imported against test_gpu_emulation's fake CuPy and CUDA module
    'torch': ('torch',),
    'jax': ('jax',),
    'tensorflow': ('tensorflow',),
    'tensorflow-xla': ('tensorflow',),
    'builtin': ('tensorflow',),
}
# The backends whose kernels have a differentiable recomputation in their own array ops.
RECOMPUTING = {'tensorflow', 'torch', 'jax'}


def test_every_registered_backend_is_named_here():
    assert set(NEEDS) == set(_backends.REGISTRY)
    import kapre_fast

    # The package's public backends (the five with the kapre functions) are registered ones.
    assert set(kapre_fast.BACKENDS) <= set(_backends.REGISTRY)


@pytest.fixture
def load(monkeypatch):
    """load(name): the registered backend `name`; kapre_fast.gpu against fake CuPy and CUDA
    modules (no GPU here); skips where a framework it needs is missing."""

    def loaded(name):
        for module in NEEDS[name]:
            pytest.importorskip(module)
        if name == 'gpu':
            import kapre_fast
            from test_gpu_emulation import fake_cuda_module, fake_cupy

            monkeypatch.setitem(sys.modules, 'cupy', fake_cupy())
            monkeypatch.setitem(sys.modules, 'kapre_fast._cuda', fake_cuda_module())
            monkeypatch.setitem(sys.modules, 'kapre_fast.gpu', None)
            monkeypatch.setitem(vars(kapre_fast), 'gpu', None)
            del sys.modules['kapre_fast.gpu']
            importlib.import_module('kapre_fast.gpu')  # the registry finds it in sys.modules
        return _backends.get(name)

    return loaded


def _positional(function):
    """(names of the positional parameters, {keyword-only name: default}); AssertionError for
    *args, **kwargs or a keyword-only parameter without a default."""
    positional, keywords = [], {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            assert not keywords, f'{function}: {parameter.name} after a keyword-only parameter'
            positional.append(parameter.name)
        else:
            assert parameter.kind is parameter.KEYWORD_ONLY, f'{function}: {parameter}'
            assert parameter.default is not parameter.empty, f'{function}: {parameter}'
            keywords[parameter.name] = parameter.default
    return tuple(positional), keywords


@pytest.mark.parametrize('name', sorted(_backends.REGISTRY))
def test_every_backend_has_the_protocol_with_the_same_parameters(load, name):
    backend = load(name)
    methods = dict(_backends.PROTOCOL)
    if name in RECOMPUTING:
        methods.update(_backends.RECOMPUTATION)
    else:
        assert not any(hasattr(backend, method) for method in _backends.RECOMPUTATION), name
    for method, parameters in methods.items():
        function = getattr(backend, method, None)
        assert callable(function), f'{name} has no {method}'
        positional, keywords = _positional(function)
        assert positional == parameters, (name, method, positional)
        # Extras are optional keywords: None (threads, out, window, band_weights).
        assert all(default is None for default in keywords.values()), (name, method, keywords)


def test_get_loads_once_and_names_what_is_registered():
    assert _backends.get('cpu') is _backends.get('cpu') is importlib.import_module('kapre_fast.cpu')
    assert _backends.name_of('kapre_fast.reference') == 'reference'
    with pytest.raises(ValueError, match="backend must be one of 'reference', .* got 'numpy'"):
        _backends.get('numpy')
    with pytest.raises(ValueError, match="'kapre_fast.ops2' is no registered backend module"):
        _backends.name_of('kapre_fast.ops2')


def test_the_public_functions_call_their_backend_through_the_registry(monkeypatch):
    """cpu.melspectrogram, mfcc and istft reach whatever the registry holds for 'cpu'."""
    from kapre_fast import cpu

    calls = []

    class Recording:
        def __getattr__(self, method):
            def record(*args, **kwargs):
                calls.append(method)
                return getattr(cpu, method)(*args, **kwargs)

            return record

    x = to_input_layout(noise_batch(2, 3000, 1, seed=3), 'channels_last')
    expected = cpu.melspectrogram(x, n_fft=256, n_mels=16)
    expected_mfcc = cpu.mfcc(x, n_fft=256, n_mels=16, n_mfcc=5)
    X = cpu.stft(x, n_fft=256)
    expected_istft = cpu.istft(X, n_fft=256)
    monkeypatch.setitem(_backends._REPLACED, 'cpu', Recording())
    np.testing.assert_array_equal(cpu.melspectrogram(x, n_fft=256, n_mels=16), expected)
    np.testing.assert_array_equal(cpu.mfcc(x, n_fft=256, n_mels=16, n_mfcc=5), expected_mfcc)
    np.testing.assert_array_equal(cpu.istft(X, n_fft=256), expected_istft)
    assert calls == ['compute', 'compute_mfcc', 'inverse']


def test_apply_pcen_names_a_bad_time_axis():
    from kapre_fast import _checks

    assert _checks.time_axis_layout(1) == 'channels_last'
    assert _checks.time_axis_layout(2) == 'channels_first'
    for bad in (0, 3, True, 'channels_last'):
        with pytest.raises(ValueError, match=f'time_axis must be 1 .* got {bad!r}'):
            _checks.time_axis_layout(bad)


def test_reference_compute_mfcc_is_the_dct_of_its_db_mel():
    from kapre_fast import reference

    x = to_input_layout(noise_batch(2, 3000, 2, seed=5), 'channels_last')
    spec = FrontEnd.melspectrogram(n_fft=256, n_mels=16, return_decibel=True)
    matrix = _spec.mfcc_matrix(6, 16, 0)
    mel = reference.compute(spec, x)  # (batch, frames, n_mels, ch)
    expected = np.einsum('bfmc,mk->bfkc', mel, matrix)
    np.testing.assert_allclose(reference.compute_mfcc(spec, matrix, x), expected, rtol=1e-12)
    np.testing.assert_array_equal(
        reference.compute_mfcc(spec, matrix, x), reference.mfcc(x, n_fft=256, n_mels=16, n_mfcc=6)
    )


# ----- the Keras layers pick the registry's entry -----------------------------------------------


class _Recording:
    """A registry entry that records each protocol call, then runs the real backend's."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __getattr__(self, method):
        function = getattr(self.backend, method)

        def record(*args, **kwargs):
            self.calls.append(method)
            return function(*args, **kwargs)

        return record


@pytest.fixture
def keras_tf():
    pytest.importorskip('tensorflow')
    keras = pytest.importorskip('keras')
    if keras.backend.backend() != 'tensorflow':
        pytest.skip("TensorFlow's registry entries are chosen under Keras' TensorFlow backend")
    return keras


def test_keras_name_follows_implementation_and_the_xla_context(keras_tf):
    import tensorflow as tf

    assert _backends.keras_name('fused') == 'tensorflow'
    assert _backends.keras_name('builtin') == 'builtin'
    seen = {}

    @tf.function(jit_compile=True)
    def compiled(x):
        seen['fused'] = _backends.keras_name('fused')
        seen['builtin'] = _backends.keras_name('builtin')
        return x + 1.0

    @tf.function
    def graph(x):
        seen['graph'] = _backends.keras_name('fused')
        return x + 1.0

    compiled(tf.constant(1.0))
    graph(tf.constant(1.0))
    assert seen == {'fused': 'tensorflow-xla', 'builtin': 'builtin', 'graph': 'tensorflow'}
    from kapre_fast import ops

    assert _backends.for_keras('fused') is ops and _backends.get('tensorflow-xla') is ops.IN_TF_OPS


def _layer_cases(implementation):
    from kapre_fast import layers

    x = noise_batch(2, 2000, 1, seed=7)
    mel = dict(
        n_fft=128,
        hop_length=32,
        filterbank='mel',
        n_mels=12,
        sample_rate=8000,
        implementation=implementation,
    )
    stft = layers.STFT(
        n_fft=128,
        hop_length=32,
        input_data_format='channels_last',
        output_data_format='channels_last',
        implementation=implementation,
    )
    X = stft(to_input_layout(x, 'channels_last'))
    return {
        'FrontEnd': (layers.FrontEnd(**mel, return_decibel=True), x, 'compute'),
        'STFT': (stft, x, 'compute'),
        'InverseSTFT': (
            layers.InverseSTFT(
                n_fft=128,
                hop_length=32,
                input_data_format='channels_last',
                output_data_format='channels_last',
                implementation=implementation,
            ),
            X,
            'inverse',
        ),
        'MFCC': (
            layers.MFCC(n_mfcc=5, **{k: v for k, v in mel.items() if k != 'filterbank'}),
            x,
            'compute_mfcc',
        ),
        'PCEN': (
            layers.PCEN(
                sample_rate=8000,
                hop_length=32,
                data_format='channels_last',
                implementation=implementation,
            ),
            np.abs(np.asarray(X)).astype(np.float32),
            'apply_pcen',
        ),
    }


@pytest.mark.parametrize('layer_name', ['FrontEnd', 'STFT', 'InverseSTFT', 'MFCC', 'PCEN'])
@pytest.mark.parametrize('name', ['tensorflow', 'tensorflow-xla', 'builtin'])
def test_keras_layers_compute_through_the_registry_entry(keras_tf, monkeypatch, layer_name, name):
    """Each op-backed layer calls its protocol method on the registry's entry: 'tensorflow'
    eagerly, 'tensorflow-xla' inside jit_compile, 'builtin' for implementation='builtin'; the
    result is that entry's own."""
    import tensorflow as tf

    implementation = 'builtin' if name == 'builtin' else 'fused'
    layer, x, method = _layer_cases(implementation)[layer_name]
    if layer_name != 'InverseSTFT' and layer_name != 'PCEN':
        x = to_input_layout(x, 'channels_last')
    x = tf.constant(x)
    run = tf.function(layer, jit_compile=True) if name == 'tensorflow-xla' else layer
    expected = run(x).numpy()
    recording = _Recording(_backends.get(name))
    monkeypatch.setitem(_backends._REPLACED, name, recording)
    run = tf.function(layer, jit_compile=True) if name == 'tensorflow-xla' else layer
    np.testing.assert_array_equal(run(x).numpy(), expected)
    assert recording.calls == [method]


def _as_numpy(array):
    return array.numpy() if hasattr(array, 'numpy') else np.asarray(array)


@pytest.mark.parametrize('name', sorted(RECOMPUTING))
def test_recompute_gives_compute_values_in_the_framework_ops(load, name):
    """recompute / recompute_inverse (the differentiable composition run forward) agree with the
    fused compute / inverse: kapre's mel dB, a librosa preset (reflect centring) and the complex
    STFT, then its inverse."""
    backend = load(name)
    from kapre_fast import cpu

    x = to_input_layout(noise_batch(2, 3000, 2, seed=11), 'channels_last')
    specs = [
        FrontEnd.melspectrogram(n_fft=256, hop_length=64, n_mels=20, return_decibel=True),
        FrontEnd.melspectrogram(
            n_fft=256, hop_length=64, n_mels=20, compat='librosa', pad_mode='reflect'
        ),
        FrontEnd.stft(n_fft=256, hop_length=64, output_data_format='channels_first'),
    ]
    for spec in specs:
        fused = _as_numpy(backend.compute(spec, x))
        ours = _as_numpy(backend.recompute(spec, x))
        assert ours.shape == fused.shape and ours.dtype == fused.dtype, spec
        np.testing.assert_array_equal(fused, cpu.compute(spec, x, threads=1))  # the kernel's
        if spec.return_decibel:
            np.testing.assert_allclose(ours, fused, rtol=0, atol=2e-3)  # dB
        else:
            assert peak_relative_error(ours, fused) <= 1e-5, spec
    X = backend.compute(specs[2], x)
    fused = _as_numpy(backend.inverse(specs[2], X))
    ours = _as_numpy(backend.recompute_inverse(specs[2], X))
    assert ours.shape == fused.shape
    assert peak_relative_error(ours, fused) <= 1e-5


def test_keras_name_refuses_other_keras_backends_by_name(monkeypatch):
    keras = pytest.importorskip('keras')
    monkeypatch.setattr(keras.backend, 'backend', lambda: 'numpy')
    with pytest.raises(
        RuntimeError, match="TensorFlow, PyTorch or JAX backend, but Keras uses 'numpy'"
    ):
        _backends.keras_name('fused')
