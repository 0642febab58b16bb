"""kapre_fast.jax: the fused front ends as XLA FFI custom calls, under jit, vmap and grad.

Its numbers are on the accuracy grid with the other backends (test_backends.py, backend 'jax');
here: the same bits as kapre_fast.cpu (the same core), jax.jit (the custom call inside the
compiled program), vmap, gradients against finite differences and against the TensorFlow op's,
the inverse STFT, errors, and import hygiene. The raw FFI targets are fuzzed in test_fuzz.py.
"""

import inspect
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip('jax')

import jax.numpy as jnp  # noqa: E402

import kapre_fast.jax as kfj  # noqa: E402
from helpers import FAMILIES, FAMILY_ARGS, SMALL, noise_batch, to_input_layout  # noqa: E402
from kapre_fast import FrontEnd, cpu, reference  # noqa: E402

LAYOUTS = [('channels_last', 'channels_first'), ('channels_first', 'channels_last')]


def audio(n_samples=400, n_channels=2, layout='channels_last', seed=0):
    return to_input_layout(noise_batch(2, n_samples, n_channels, seed), layout)


def family_kwargs(family, layouts, **extra):
    return dict(
        FAMILY_ARGS[family], input_data_format=layouts[0], output_data_format=layouts[1], **extra
    )


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('layouts', LAYOUTS)
def test_functions_give_the_cpu_backends_bits(family, layouts):
    kwargs = family_kwargs(family, layouts, n_fft=256, hop_length=100, pad_end=True)
    x = audio(3000, 2, layouts[0], seed=1)
    ours = getattr(kfj, family)(jnp.asarray(x), **kwargs)
    assert isinstance(ours, jax.Array)
    assert ours.dtype == (jnp.complex64 if family == 'stft' else jnp.float32)
    np.testing.assert_array_equal(np.asarray(ours), getattr(cpu, family)(x, **kwargs))


def test_signatures_are_the_cpu_backends_with_threads_and_no_out():
    for family in FAMILIES:
        ours = inspect.signature(getattr(kfj, family)).parameters
        theirs = inspect.signature(getattr(cpu, family)).parameters
        assert list(ours) == [name for name in theirs if name != 'out']
        assert all(ours[name].default == theirs[name].default for name in ours)
        assert 'jax.jit' in getattr(kfj, family).__doc__


def test_dtype_policy():
    x = audio(2000, 1, seed=2)
    expected = cpu.stft_magnitude(x, n_fft=128)
    for as_given in (x, x.astype(np.float64), jnp.asarray(x), x.tolist()):
        np.testing.assert_array_equal(np.asarray(kfj.stft_magnitude(as_given, n_fft=128)), expected)
    ints = np.round(x * 1000).astype(np.int16)  # unscaled, as kapre
    np.testing.assert_array_equal(
        np.asarray(kfj.stft_magnitude(jnp.asarray(ints), n_fft=128)),
        cpu.stft_magnitude(ints, n_fft=128),
    )
    half = jnp.asarray(x, dtype=jnp.bfloat16)  # mixed precision: computed in float32
    np.testing.assert_array_equal(
        np.asarray(kfj.stft_magnitude(half, n_fft=128)),
        cpu.stft_magnitude(np.asarray(half.astype(jnp.float32)), n_fft=128),
    )


def test_bad_inputs_are_named():
    x = jnp.zeros((1, 1000, 1))
    with pytest.raises(TypeError, match='complex64'):
        kfj.melspectrogram(x.astype(jnp.complex64))
    with pytest.raises(TypeError, match='bool'):
        kfj.melspectrogram(x.astype(bool))
    with pytest.raises(TypeError, match='<U'):
        kfj.melspectrogram(np.array([['a']]))
    with pytest.raises(ValueError, match=r'x\[None, :, None\]'):
        kfj.melspectrogram(jnp.zeros(1000), n_fft=256)
    with pytest.raises(ValueError, match=r'x\[None, None, :\]'):
        kfj.melspectrogram(jnp.zeros(1000), n_fft=256, input_data_format='channels_first')
    with pytest.raises(TypeError, match='n_mel'):
        kfj.melspectrogram(x, n_mel=12)
    with pytest.raises(TypeError, match='only positional'):
        kfj.melspectrogram(x, 256)
    with pytest.raises(ValueError, match='n_fft'):
        kfj.melspectrogram(x, n_fft=1)
    with pytest.raises(ValueError, match=r'300 samples.*win_length=512'):
        kfj.stft_magnitude(jnp.zeros((1, 300, 1)), n_fft=512)
    with pytest.raises(ValueError, match='threads'):
        kfj.stft_magnitude(x, n_fft=256, threads=0)
    with pytest.raises(TypeError, match='FrontEnd'):
        kfj.compute({'n_fft': 256}, x)
    with pytest.raises(ValueError, match=r"pad_mode='reflect' pads n_fft // 2 = 128 samples"):
        kfj.melspectrogram(jnp.zeros((1, 100, 1)), n_fft=256, compat='torchaudio')
    with pytest.raises(ValueError, match="pad_mode must be one of 'constant', 'reflect'"):
        kfj.melspectrogram(x, n_fft=256, compat='librosa', pad_mode='wrap')
    with pytest.raises(TypeError, match='complex'):
        kfj.istft(jnp.zeros((1, 4, 33, 1)), n_fft=64)
    with pytest.raises(ValueError, match='4 axes'):
        kfj.istft(jnp.zeros((4, 33, 1), jnp.complex64), n_fft=64)
    with pytest.raises(ValueError, match='33 frequency bins but n_fft=128'):
        kfj.istft(jnp.zeros((1, 4, 33, 1), jnp.complex64), n_fft=128)


# ----- jit and vmap ------------------------------------------------------------------------------


def test_jit_keeps_the_fused_call_in_the_compiled_program():
    kwargs = dict(n_fft=256, hop_length=64, sample_rate=8000, n_mels=16, return_decibel=True)
    x = audio(2000, 2, seed=3)
    compiled = jax.jit(lambda a: kfj.melspectrogram(a, **kwargs)).lower(x).compile()
    text = compiled.as_text()
    assert 'kapre_fast_front_end' in text
    assert 'fft' not in text.replace('n_fft', '').lower()  # no unfused FFT beside it
    np.testing.assert_array_equal(np.asarray(compiled(x)), cpu.melspectrogram(x, **kwargs))

    @jax.jit
    def loss(a):  # the kernel inside a larger program, and the gradient compiled with it
        return jnp.mean(kfj.melspectrogram(a * 0.5, **kwargs) ** 2)

    value, gradient = jax.jit(jax.value_and_grad(loss))(x)
    np.testing.assert_allclose(
        float(value), np.mean(cpu.melspectrogram(x * 0.5, **kwargs) ** 2), rtol=1e-6
    )
    assert gradient.shape == x.shape and np.isfinite(np.asarray(gradient)).all()


@pytest.mark.parametrize('family', FAMILIES)
def test_vmap_maps_leading_axes_without_a_loop(family):
    kwargs = family_kwargs(family, LAYOUTS[0], n_fft=128, hop_length=50)
    xs = np.stack([audio(900, 2, seed=seed) for seed in range(3)])  # (3, batch 2, 900, 2)
    function = lambda a: getattr(kfj, family)(a, **kwargs)
    mapped = jax.vmap(function)(xs)
    twice = jax.vmap(jax.vmap(lambda a: function(a[None])[0]))(xs)  # nested, batch axis mapped
    for i in range(3):
        expected = getattr(cpu, family)(xs[i], **kwargs)
        np.testing.assert_array_equal(np.asarray(mapped[i]), expected)
        np.testing.assert_array_equal(np.asarray(twice[i]), expected)
    jaxpr = str(jax.make_jaxpr(jax.vmap(function))(xs))
    assert jaxpr.count('ffi_call') == 1 and 'while' not in jaxpr and 'scan' not in jaxpr


# ----- gradients -------------------------------------------------------------------------------


def _as_real(y):
    return np.stack([y.real, y.imag], axis=-1) if np.iscomplexobj(y) else y


@pytest.mark.parametrize('family', FAMILIES)
def test_gradient_matches_finite_differences_of_the_float64_reference(family):
    """The custom VJP (float32, from the jnp recomputation) against central differences of
    kapre_fast.reference (float64, an independent forward pass). Noise without digital silence:
    the phase of a zero bin has no derivative."""
    spec = getattr(FrontEnd, family)(**SMALL, **FAMILY_ARGS[family])
    x = (0.3 * np.random.default_rng(4).standard_normal((2, 180, 1))).astype(np.float32)
    weights = np.random.default_rng(3).standard_normal(_as_real(reference.compute(spec, x)).shape)

    def loss(a):
        y = kfj.compute(spec, a)
        y = jnp.stack([y.real, y.imag], axis=-1) if jnp.iscomplexobj(y) else y
        return jnp.sum(y * weights.astype(np.float32))

    gradient = np.asarray(jax.grad(loss)(jnp.asarray(x)), dtype=np.float64)
    numeric_loss = lambda z: float((_as_real(reference.compute(spec, z)) * weights).sum())
    rng = np.random.default_rng(5)
    for _ in range(3):
        direction = rng.standard_normal(x.shape)
        step = 1e-6
        numeric = (numeric_loss(x + step * direction) - numeric_loss(x - step * direction)) / (
            2 * step
        )
        analytic = float((gradient * direction).sum())
        assert abs(numeric - analytic) <= 1e-3 * abs(numeric) + 1e-4, (numeric, analytic)


@pytest.mark.parametrize('family', ['stft_mag_phase', 'melspectrogram', 'stft'])
@pytest.mark.parametrize('layouts', LAYOUTS)
def test_gradient_is_the_tensorflow_ops(family, layouts):
    tf = pytest.importorskip('tensorflow')
    from kapre_fast import ops

    spec = getattr(FrontEnd, family)(**SMALL, **family_kwargs(family, layouts))
    x = audio(180, 2, layouts[0], seed=6)
    y = kfj.compute(spec, x)
    rng = np.random.default_rng(7)
    upstream = rng.standard_normal(y.shape).astype(np.float32)
    if family == 'stft':
        upstream = (upstream + 1j * rng.standard_normal(y.shape)).astype(np.complex64)
    _, vjp = jax.vjp(lambda a: kfj.compute(spec, a), jnp.asarray(x))
    # jax's cotangents of complex outputs are conjugated relative to TensorFlow's.
    (ours,) = vjp(jnp.conj(upstream) if family == 'stft' else upstream)
    x_tf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tf)
        y_tf = ops.front_end(x_tf, spec)
    theirs = tape.gradient(y_tf, x_tf, output_gradients=tf.constant(upstream)).numpy()
    np.testing.assert_allclose(
        np.asarray(ours), theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max()
    )


def test_istft_inverts_the_stft_and_has_a_gradient():
    kwargs = dict(n_fft=64, hop_length=16)
    x = audio(640, 2, seed=8)
    X = kfj.stft(x, pad_begin=True, pad_end=True, **kwargs)
    waveform = kfj.istft(X, **kwargs)
    np.testing.assert_array_equal(np.asarray(waveform), cpu.istft(np.asarray(X), **kwargs))
    np.testing.assert_array_equal(  # what the Keras layers call
        np.asarray(kfj.inverse(FrontEnd.inverted_by_istft(**kwargs), X)), np.asarray(waveform)
    )
    begin = 64 - 16  # pad_begin's zeros come back in front
    np.testing.assert_allclose(np.asarray(waveform)[:, begin : begin + 640], x, atol=1e-5)
    channels_first = dict(
        kwargs, stft_data_format='channels_first', waveform_data_format='channels_first'
    )
    X_first = jnp.transpose(X, (0, 3, 1, 2))
    np.testing.assert_array_equal(
        np.asarray(kfj.istft(X_first, **channels_first)),
        cpu.istft(np.asarray(X_first), **channels_first),
    )
    mapped = jax.vmap(lambda Y: kfj.istft(Y, **kwargs))(jnp.stack([X, 2 * X]))
    np.testing.assert_allclose(
        np.asarray(mapped[1]), 2 * np.asarray(waveform), rtol=1e-6, atol=1e-6
    )

    loss = lambda Y: jnp.sum(kfj.istft(Y, **kwargs) ** 2)
    gradient = jax.jit(jax.grad(loss))(X)
    direction = jnp.asarray(
        (
            np.random.default_rng(0).standard_normal(X.shape)
            + 1j * np.random.default_rng(1).standard_normal(X.shape)
        ).astype(np.complex64)
    )
    step = 1e-2
    numeric = (float(loss(X + step * direction)) - float(loss(X - step * direction))) / (2 * step)
    # jax's convention for a real loss of a complex input: the gradient is dL/dRe - i dL/dIm.
    analytic = float(jnp.sum(gradient.real * direction.real - gradient.imag * direction.imag))
    assert abs(numeric - analytic) <= 1e-2 * abs(analytic)


def test_training_step_lowers_the_loss():
    """Two tones told apart by a linear read-out of jitted mel frames, trained by jax.grad."""
    t = np.arange(2048) / 8000
    labels = np.arange(16) % 2
    tones = np.sin(2 * np.pi * np.where(labels[:, None] == 1, 1500.0, 300.0) * t)
    batch = (tones + 0.1 * np.random.default_rng(9).standard_normal((16, 2048)))[:, :, None]
    kwargs = dict(n_fft=256, hop_length=128, sample_rate=8000, n_mels=16, return_decibel=True)

    def loss(w, x):
        features = kfj.melspectrogram(x, **kwargs).reshape(len(x), -1) / 80.0
        logits = features @ w
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(x)), labels])

    step = jax.jit(jax.value_and_grad(loss))
    w = jnp.zeros((15 * 16, 2))
    losses = []
    for _ in range(20):
        value, gradient = step(w, batch.astype(np.float32))
        w = w - 0.5 * gradient
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0]


# ----- the raw target, imports -----------------------------------------------------------------


def test_raw_call_with_a_wrong_result_shape_is_refused():
    spec = FrontEnd.stft_magnitude(n_fft=64)
    x = jnp.zeros((1, 640, 1))
    call = jax.ffi.ffi_call(
        'kapre_fast_front_end', jax.ShapeDtypeStruct((1, 2, 33, 1), jnp.float32)
    )
    from kapre_fast.jax import _ops

    with pytest.raises(
        jax.errors.JaxRuntimeError,
        match=r'result must be float32 of shape '
        r'\(1, 37, 33, 1\)',
    ):
        attrs = _ops._framing(spec, 1)
        call(
            x,
            **attrs,
            pad_begin=np.int64(0),
            pad_end=np.bool_(False),
            output=np.int64(0),
            power=np.int64(1),
            decibel=np.bool_(False),
            db_multiplier=np.float32(10.0),
            amin=np.float32(1e-5),
            ref_value=np.float32(1.0),
            dynamic_range=np.float32(80.0),
            input_channels_first=np.bool_(False),
            output_channels_first=np.bool_(False),
            window=np.hanning(64).astype(np.float32),
            band_start=np.zeros(0, np.int32),
            band_length=np.zeros(0, np.int32),
            band_weights=np.zeros(0, np.float32),
        ).block_until_ready()


def test_cuda_handlers_are_registered_exactly_when_built():
    # Their checks are the CPU handlers' (csrc/jax/call_args.h), tested above and by the fuzz
    # tests; the handlers themselves need a jaxlib with CUDA and a GPU (README, JAX).
    from kapre_fast import _loader
    from kapre_fast.jax import _ops

    handlers = _ops.module()
    if _loader.build_info().get('jax_cuda', False):
        assert (
            set(handlers.cuda_targets())
            == set(handlers.cpu_targets())
            == {_ops.FRONT_END_TARGET, _ops.INVERSE_STFT_TARGET}
        )
        # This jaxlib holds the registration until a CUDA plugin loads (jax 0.10 defers it).
        assert _ops.cuda_registration == 'registered'
    else:
        assert not hasattr(handlers, 'cuda_targets')
        assert _ops.cuda_registration == 'not built'


def test_a_refused_cuda_registration_leaves_the_cpu_handlers(monkeypatch):
    from kapre_fast import _loader
    from kapre_fast.jax import _ops

    class Handlers:
        def cpu_targets(self):
            return {'front': 'cpu capsule'}

        def cuda_targets(self):
            return {'front': 'cuda capsule'}

    registered = []

    def register(name, capsule, platform):
        if platform == 'CUDA':
            raise ValueError('Unknown platform CUDA')
        registered.append((name, capsule, platform))

    monkeypatch.setattr(_ops, 'cuda_registration', _ops.cuda_registration)  # restored after
    monkeypatch.setattr(_ops, 'module', Handlers)
    monkeypatch.setattr(_loader, 'build_info', lambda: {'jax': True, 'jax_cuda': True})
    monkeypatch.setattr(jax.ffi, 'register_ffi_target', register)
    _ops.register_targets()
    assert registered == [('front', 'cpu capsule', 'cpu')]
    assert _ops.cuda_registration == (
        'jax refused the CUDA platform: ValueError: Unknown platform CUDA'
    )


def test_import_kapre_fast_does_not_import_jax_and_the_extra_is_named():
    code = (
        'import sys, kapre_fast, kapre_fast.cpu, kapre_fast.reference\n'
        'assert "jax" not in sys.modules, "jax imported"\n'
        'sys.modules["jax"] = None\n'
        'try:\n'
        '    import kapre_fast.jax\n'
        'except ImportError as error:\n'
        '    print(error)\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    from kapre_fast._loader import pip_install_hint

    assert pip_install_hint('jax') in result.stdout  # a hint that works when copied
