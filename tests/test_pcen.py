"""pcen (issue #15): librosa.pcen (max_size=1) of the mel spectrogram in reference (float64) and
cpu (a native pass over the fused kernel's mel, in place); equal to librosa 0.11's pcen of
librosa's own mel spectrogram (compat='librosa') on real speech and on noise with digital
silence, in the two ways librosa uses it: pcen(S * 2**31) of the magnitude mel (its docs'
example; here pcen(x * 2**31, power=1): the mel is linear in the audio) and pcen(S) of the
default power mel."""

import numpy as np
import pytest

from helpers import check_keras_copy_and_gradient
from helpers import peak_relative_error, record_agreement, to_input_layout
from kapre_fast import _pcen, cpu, reference
from kapre_fast.spec import pcen_constants

librosa = pytest.importorskip('librosa')

SAMPLE_RATE = 16000
# Shares of each example's peak PCEN value. The reference takes librosa's float64 path. The
# float32 kernel's error is mostly its mel's float32 rounding (within 2e-6 of the mel's peak,
# test_presets), which PCEN's gain control can amplify in quiet bands (speech's top mels): so it
# is bounded by twice the baseline error of a float64 PCEN of that same float32 mel, plus the
# float32 rounding of the PCEN pass itself (PASS_TOLERANCE, also checked alone).
REFERENCE_TOLERANCE = 1e-7
PASS_TOLERANCE = 5e-6
CASES = [
    # (audio scale, spectrum power, front end, PCEN constants)
    (2.0**31, 1, dict(n_fft=512, hop_length=128, n_mels=40), {}),
    (1.0, 2, dict(n_fft=400, hop_length=160, n_mels=64), {}),
    (
        2.0**31,
        1,
        dict(n_fft=1024, win_length=800, hop_length=256, n_mels=128, pad_mode='reflect'),
        dict(gain=0.8, bias=10.0, pcen_power=0.25, time_constant=0.06, eps=1e-3),
    ),
    (1.0, 2, dict(n_fft=511, hop_length=100, n_mels=32), dict(pcen_power=0.0)),  # log1p
    (1.0, 1, dict(n_fft=512, hop_length=128, n_mels=40), dict(bias=0.0, b=0.3)),  # plain power
]
LIBROSA_NAMES = dict(pcen_power='power')


def _librosa_pcen(batch, scale, power, front_end, constants):
    """(batch, channels, frames, n_mels): librosa's mel and pcen of each float64 signal."""
    stft = {
        k: front_end[k] for k in ('n_fft', 'hop_length', 'win_length', 'pad_mode') if k in front_end
    }
    kwargs = {LIBROSA_NAMES.get(k, k): v for k, v in constants.items()}
    out = []
    for example in batch.astype(np.float64) * scale:
        mel = librosa.feature.melspectrogram(
            y=example, sr=SAMPLE_RATE, power=power, n_mels=front_end['n_mels'], **stft
        )
        out.append(librosa.pcen(mel, sr=SAMPLE_RATE, hop_length=front_end['hop_length'], **kwargs))
    return np.stack(out).swapaxes(-1, -2)


@pytest.mark.filterwarnings('ignore:divide by zero encountered in log:RuntimeWarning')  # bias=0
@pytest.mark.parametrize('case', CASES, ids=str)
@pytest.mark.parametrize('source', ['speech', 'noise'])
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_librosa_preset_is_librosa_pcen(case, source, data_format, speech_batch, noise_batch):
    scale, power, front_end, constants = case
    make = speech_batch if source == 'speech' else noise_batch
    batch = make(n_examples=2, n_samples=8000, n_channels=2, seed=3)
    truth = _librosa_pcen(batch, scale, power, front_end, constants)
    x = to_input_layout(batch * np.float32(scale), data_format)  # a power of two: exact
    kwargs = dict(
        compat='librosa',
        power=power,
        sample_rate=SAMPLE_RATE,
        input_data_format=data_format,
        output_data_format=data_format,
        **front_end,
    )
    time_axis = 1 if data_format == 'channels_last' else 2

    def channels_first(y):
        return y.transpose(0, 3, 1, 2) if data_format == 'channels_last' else y

    ours = reference.pcen(x, **kwargs, **constants)
    assert ours.dtype == np.float64 and channels_first(ours).shape == truth.shape
    error = peak_relative_error(channels_first(ours), truth)
    record_agreement('pcen: reference vs librosa / allowed', error / REFERENCE_TOLERANCE)
    assert error <= REFERENCE_TOLERANCE

    # The native pass alone, against float64 on the same float32 mel.
    mel = cpu.melspectrogram(x, **kwargs)
    pcen_constants_ = pcen_constants(SAMPLE_RATE, front_end['hop_length'], **constants)
    float64_pass = reference.apply_pcen(mel, pcen_constants_, time_axis)
    ours = cpu.pcen(x, **kwargs, **constants)
    assert ours.dtype == np.float32 and ours.shape == mel.shape
    error = peak_relative_error(ours, float64_pass)
    record_agreement('pcen: cpu pass vs float64 pass / allowed', error / PASS_TOLERANCE)
    assert error <= PASS_TOLERANCE
    # End to end, against librosa, within the float32 mel's own baseline.
    baseline = peak_relative_error(channels_first(float64_pass), truth)
    allowed = 2 * baseline + PASS_TOLERANCE
    error = peak_relative_error(channels_first(ours), truth)
    record_agreement('pcen: cpu vs librosa / allowed', error / allowed)
    assert error <= allowed, (error, baseline)


def test_silence_gives_zeros_and_the_smoother_starts_at_one(noise_batch):
    """Digital silence is 0 after PCEN, and the first frame is smoothed against M[-1] = 1
    (librosa's zi), not against itself: with b = 1 the smoother is the input, with b = 0 it
    stays 1 (P = bias**p * ((1 + S / (eps + 1)**gain / bias)**p - 1))."""
    x = noise_batch(n_examples=1, n_samples=4000, n_channels=1)
    x[..., 1000:] = 0
    x = to_input_layout(x, 'channels_first')
    kwargs = dict(
        n_fft=256,
        hop_length=64,
        n_mels=24,
        sample_rate=SAMPLE_RATE,
        input_data_format='channels_first',
        output_data_format='channels_first',
    )
    mel = reference.melspectrogram(x, **kwargs)
    silent = mel == 0
    assert silent.any()
    for b in (0.0, 1.0):
        ours = cpu.pcen(x, b=b, **kwargs)
        assert (ours[silent] == 0).all()
        smoother = np.ones_like(mel) if b == 0 else mel
        expected = 2**0.5 * np.expm1(0.5 * np.log1p(mel / (1e-6 + smoother) ** 0.98 / 2))
        assert peak_relative_error(ours, expected) <= 1e-5


def test_cpu_threads_and_out_give_the_same_bits(speech_batch):
    x = to_input_layout(speech_batch(n_examples=3, n_channels=2), 'channels_last')
    kwargs = dict(
        n_fft=512,
        hop_length=128,
        n_mels=40,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    one = cpu.pcen(x, threads=1, **kwargs)
    out = np.empty_like(one)
    assert cpu.pcen(x, threads=2, out=out, **kwargs) is out
    np.testing.assert_array_equal(out, one)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(time_constant=-0.1), 'time_constant must be > 0, got -0.1'),
        (dict(time_constant=0), 'time_constant must be > 0, got 0'),
        (dict(eps=0.0), 'eps must be > 0, got 0.0'),
        (dict(pcen_power=-1), 'pcen_power must be >= 0, got -1'),
        (dict(gain=-0.5), 'gain must be >= 0, got -0.5'),
        (dict(bias=-2), 'bias must be >= 0, got -2'),
        (dict(b=1.5), r'b must be in \[0, 1\] .*got 1.5'),
        (dict(gain=float('nan')), 'gain must be finite, got nan'),
    ],
)
def test_bad_constants_are_named(kwargs, message):
    x = np.zeros((1, 4000, 1), np.float32)
    for module in (reference, cpu):
        with pytest.raises(ValueError, match=message):
            module.pcen(x, **kwargs)


def test_return_decibel_is_refused():
    with pytest.raises(TypeError, match="'return_decibel': PCEN replaces the dB scaling"):
        cpu.pcen(np.zeros((1, 4000, 1), np.float32), return_decibel=True)


def test_b_follows_librosa_from_time_constant():
    """librosa's T = time_constant * sr / hop_length frames, b = (sqrt(1 + 4 T^2) - 1) / 2T^2:
    the smoothed step response of our reference reaches librosa's."""
    b = pcen_constants(22050, 512).b
    step = np.full((1, 200, 3, 1), 5.0)
    ours = reference.apply_pcen(step, pcen_constants(22050, 512), time_axis=1)
    theirs = librosa.pcen(step[0, :, :, 0].T, sr=22050, hop_length=512).T
    np.testing.assert_allclose(ours[0, :, :, 0], theirs, rtol=1e-12)
    assert 0 < b < 1


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_get_pcen_layer_is_cpu_pcen_and_trains(data_format, speech_batch):
    """The composed getter (fused mel layer + layers.PCEN: under TensorFlow the native op, its
    gradient through the doubling scan) gives cpu.pcen's numbers, serialises, and passes finite
    gradients to the audio; the scan's gradient equals the float64 finite difference of
    reference.apply_pcen."""
    tf = pytest.importorskip('tensorflow')
    pytest.importorskip('keras')
    from kapre_fast import composed, layers

    x = to_input_layout(speech_batch(n_examples=2, n_samples=4000, n_channels=2), data_format)
    kwargs = dict(
        compat='librosa',
        power=1,
        n_fft=400,
        hop_length=160,
        n_mels=40,
        sample_rate=SAMPLE_RATE,
        input_data_format=data_format,
        output_data_format=data_format,
    )
    constants = dict(gain=0.9, bias=3.0, pcen_power=0.4, time_constant=0.1)
    model = composed.get_pcen_layer(input_shape=x.shape[1:], **constants, **kwargs)
    expected = cpu.pcen(x, **constants, **kwargs)
    ours = model(x).numpy()
    assert model.name == 'pcen' and ours.shape == expected.shape
    assert peak_relative_error(ours, expected) <= PASS_TOLERANCE
    check_keras_copy_and_gradient(model, x, ours)

    # d sum(PCEN(S) * w) / d S[one element] vs a central difference in float64.
    time_axis = 1 if data_format == 'channels_last' else 2
    layer = layers.PCEN(SAMPLE_RATE, 160, data_format=data_format, **constants)
    mel = cpu.melspectrogram(x, **kwargs).astype(np.float64) + 0.1
    weights = np.random.default_rng(0).standard_normal(mel.shape)
    s = tf.Variable(mel.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(s) * weights.astype(np.float32))
    gradient = tape.gradient(loss, s).numpy()
    pcen_constants_ = pcen_constants(SAMPLE_RATE, 160, **constants)
    # (example, frame, mel, channel) in channels_last terms, placed in the layout's axes.
    for example, frame, band, channel in [(0, 2, 5, 1), (1, 0, 3, 0), (0, 20, 39, 1)]:
        index = (
            (example, frame, band, channel)
            if data_format == 'channels_last'
            else (example, channel, frame, band)
        )
        step = np.zeros_like(mel)
        step[index] = 1e-4
        plus = reference.apply_pcen(mel + step, pcen_constants_, time_axis)
        minus = reference.apply_pcen(mel - step, pcen_constants_, time_axis)
        numeric = ((plus - minus) * weights).sum() / 2e-4
        np.testing.assert_allclose(gradient[index], numeric, rtol=1e-3, atol=1e-4)


def test_pcen_layer_names_bad_constants_and_shapes():
    pytest.importorskip('keras')
    from kapre_fast import composed, layers

    with pytest.raises(ValueError, match='time_constant must be > 0, got -1'):
        composed.get_pcen_layer(time_constant=-1)
    with pytest.raises(ValueError, match='eps must be > 0'):
        layers.PCEN(eps=0)
    with pytest.raises(ValueError, match='hop_length must be >= 1'):
        layers.PCEN(hop_length=0)
    with pytest.raises(TypeError, match="'return_decibel'"):
        composed.get_pcen_layer(return_decibel=True)
    with pytest.raises(ValueError, match='takes 4 axes'):
        layers.PCEN()(np.zeros((2, 10, 40), np.float32))


@pytest.mark.parametrize('isa', ['default', 'sse2'])
@pytest.mark.parametrize(
    'constants',
    [{}, dict(pcen_power=0.0), dict(bias=0.0), dict(gain=0.5, bias=0.1, pcen_power=2.0, b=0.9)],
    ids=str,
)
def test_native_pass_is_accurate_per_element_over_a_wide_range(isa, constants):
    """The pass's own exp/log polynomials (vectorised; an AVX2 build and the SSE2 baseline,
    force_isa) against float64 on every element of a mel spanning 1e-15 .. 1e15 (S / (eps +
    M)^gain stays a normal float32), with exact zeros and a denormal row: relative error within
    the float32 conditioning of exp(-gain log(eps + M)) (its argument, up to ~35 here, carries
    one rounding), zeros to zeros, and denormal inputs (a few bits of precision) close in
    absolute terms, not garbage."""
    from kapre_fast import _loader

    core = _loader.core()
    rng = np.random.default_rng(5)
    mel = (10.0 ** rng.uniform(-15, 15, (2, 60, 16, 3))).astype(np.float32)
    mel[:, 10:20] = 0
    mel[:, 30, :, 0] = 1e-44
    pcen_constants_ = pcen_constants(16000, 160, **constants)
    expected = reference.apply_pcen(mel, pcen_constants_, time_axis=1)
    if isa != 'default' and not core.force_isa(isa):
        pytest.skip(f'{isa} unavailable')
    try:
        ours = cpu.apply_pcen(mel.copy(), pcen_constants_, time_axis=1, threads=2)
    finally:
        core.force_isa('')
    normal = mel >= np.finfo(np.float32).tiny
    assert np.isfinite(expected[normal]).all()
    np.testing.assert_allclose(ours[normal], expected[normal], rtol=2e-5, atol=0)
    np.testing.assert_allclose(ours, expected, rtol=2e-5, atol=1e-21)
    assert (ours[mel == 0] == 0).all()


# ----- the parallel smoother (kapre_fast._pcen.smooth) in every namespace that runs it --------

NAMESPACES = ['numpy', 'tensorflow', 'builtin', 'torch', 'jax']
# Per element, relative, where the float64 smoother is a normal float32 (with a margin): the
# scan's float32 roundings (a weight (1 - b)**d rounded once per pass, ~log2(frames) sums).
SMOOTHER_TOLERANCE = 1e-6
NORMAL = 1e-30


def _namespace(name):
    """(namespace, array in, array out) of kapre_fast._pcen for `name`: NumPy in float64, the
    others in float32."""
    if name == 'numpy':
        return np, np.asarray, np.asarray
    if name in ('tensorflow', 'builtin'):
        tf = pytest.importorskip('tensorflow')
        from kapre_fast import builtin, ops

        namespace = ops._PCEN_OPS if name == 'tensorflow' else builtin._CONVERTIBLE_MATH
        return namespace, lambda x: tf.constant(x, tf.float32), lambda y: y.numpy()
    if name == 'torch':
        torch = pytest.importorskip('torch')
        return torch, lambda x: torch.tensor(x, dtype=torch.float32), lambda y: y.numpy()
    jnp = pytest.importorskip('jax.numpy')
    return jnp, lambda x: jnp.asarray(x, jnp.float32), np.asarray


def _wide_mel(frames, time_axis, seed=7):
    """(2, frames, 6, 2) (time_axis 1) or (2, 2, frames, 6) float64 powers spanning 1e-6 ..
    1e6, silent for a sixth of the frames (the smoother decays over it) then a loud burst."""
    rng = np.random.default_rng(seed)
    shape = (2, frames, 6, 2)
    mel = rng.standard_normal(shape) ** 2 * 10.0 ** rng.uniform(-6, 6, shape)
    mel[:, frames // 3 : frames // 2] = 0
    mel[:, frames // 2 : frames // 2 + 5] *= 1e6
    return mel if time_axis == 1 else np.ascontiguousarray(np.moveaxis(mel, 3, 1))


def _float64_smoother(mel, b, time_axis):
    """The recurrence frame by frame in float64 (_pcen.smooth_frames, the oracle)."""
    frames = np.moveaxis(mel, time_axis, 0)
    smooth = _pcen.smooth_frames(frames, b, 1 - b, np.ones(frames.shape[1:]))
    return np.moveaxis(np.array(smooth, np.float64).reshape(frames.shape), 0, time_axis)


def _assert_smoother_close(ours, truth, rtol):
    normal = truth >= NORMAL
    assert normal.mean() > 0.5  # most of the input is checked relatively
    np.testing.assert_allclose(ours[normal], truth[normal], rtol=rtol, atol=0)
    assert (np.abs(ours[~normal]) <= 2 * NORMAL).all()


@pytest.mark.parametrize('time_axis', [1, 2])
@pytest.mark.parametrize('b', [1e-4, 0.0567, 0.5, 1.0])
@pytest.mark.parametrize('name', NAMESPACES)
def test_doubling_smoother_is_the_recurrence_per_element(name, b, time_axis):
    """_pcen.smooth (the doubling scan every parallel caller runs) against the float64
    recurrence on 5000 frames, per element: b small (a memory of ~10000 frames, longer than the
    input) and large, over a silent stretch and a burst 1e6 louder; NumPy's float64 to 1e-12."""
    namespace, to_array, to_numpy = _namespace(name)
    mel = _wide_mel(5000, time_axis)
    truth = _float64_smoother(mel, b, time_axis)
    ours = to_numpy(_pcen.smooth(namespace, to_array(mel), b, time_axis))
    assert ours.shape == mel.shape
    _assert_smoother_close(ours, truth, 1e-12 if name == 'numpy' else SMOOTHER_TOLERANCE)


@pytest.mark.parametrize('name', NAMESPACES)
def test_doubling_smoother_of_silence_is_the_decay_from_one(name):
    """Silence: M[t] = (1 - b)**(t + 1), librosa's zi decaying (what M[-1] = 1 adds to every
    frame), for 1 to 4097 frames (pass counts 0 to 13); PCEN of it is exactly 0."""
    namespace, to_array, to_numpy = _namespace(name)
    constants = pcen_constants(16000, 160, b=0.003)
    for frames in (1, 2, 3, 4, 5, 1000, 4097):
        silence = np.zeros((1, 1, frames, 3))
        ours = to_numpy(_pcen.smooth(namespace, to_array(silence), constants.b, 2))
        decay = (1 - constants.b) ** np.arange(1, frames + 1)
        _assert_smoother_close(
            ours,
            np.broadcast_to(decay[:, None], silence.shape),
            1e-12 if name == 'numpy' else SMOOTHER_TOLERANCE,
        )
        assert (to_numpy(_pcen.apply(namespace, to_array(silence), constants, 2)) == 0).all()


def test_doubling_scan_passes():
    """ceil(log2(terms)) passes, where each pass' weight (1 - b)**shift is not 0; b = 1 needs
    none; an unknown count stops where the weight underflows, or at 31 passes."""
    assert _pcen.shifts(0.5, 1) == []
    assert _pcen.shifts(0.5, 2) == [1]
    assert _pcen.shifts(0.5, 5) == [1, 2, 4]
    assert _pcen.shifts(0.05, 2581) == [2**k for k in range(12)]
    assert _pcen.shifts(0.5, 2581) == [2**k for k in range(11)]  # 0.5**2048 underflows
    assert _pcen.shifts(1.0, 2581) == []
    assert _pcen.shifts(0.5, None) == [2**k for k in range(11)]  # 0.5**2048 underflows
    assert _pcen.shifts(1e-20, None) == [2**k for k in range(31)]


def _callers():
    """Every parallel caller of the smoother, as (name, function(float32 mel, constants,
    time_axis) -> NumPy), for the frameworks installed."""
    callers = []
    try:
        import tensorflow as tf
        from kapre_fast import builtin, ops

        layout = {1: 'channels_last', 2: 'channels_first'}
        callers += [
            ('ops.pcen_in_tf_ops', lambda m, c, a: ops.pcen_in_tf_ops(m, c, layout[a]).numpy()),
            ('builtin.pcen', lambda m, c, a: builtin.pcen(m, c, layout[a]).numpy()),
            (
                'ops.pcen_in_tf_ops (jit_compile)',
                lambda m, c, a: tf.function(
                    lambda x: ops.pcen_in_tf_ops(x, c, layout[a]), jit_compile=True
                )(tf.constant(m)).numpy(),
            ),
        ]
    except ImportError:
        pass
    try:
        import torch

        import kapre_fast.torch as kf_torch

        callers.append(
            ('torch.apply_pcen', lambda m, c, a: kf_torch.apply_pcen(torch.tensor(m), c, a).numpy())
        )
    except ImportError:
        pass
    try:
        import kapre_fast.jax as kf_jax

        callers.append(('jax.apply_pcen', lambda m, c, a: np.asarray(kf_jax.apply_pcen(m, c, a))))
    except ImportError:
        pass
    return callers


@pytest.mark.parametrize('time_axis', [1, 2])
def test_every_parallel_caller_is_reference_pcen_on_a_long_input(time_axis):
    """Each caller of the doubling scan (TF's recomputation, eagerly and under XLA, builtin,
    torch, JAX) against reference.apply_pcen on 3000 frames of a wide mel with a
    silent stretch (0 there), b small and large: within the native pass' tolerance of each
    example's peak."""
    mel = _wide_mel(3000, time_axis, seed=8).astype(np.float32)
    silent = mel == 0
    callers = _callers()
    assert callers
    for b in (1e-3, 0.3):
        constants = pcen_constants(16000, 160, b=b)
        expected = reference.apply_pcen(mel, constants, time_axis)
        for name, function in callers:
            ours = function(mel, constants, time_axis)
            assert ours.shape == mel.shape, name
            assert peak_relative_error(ours, expected) <= PASS_TOLERANCE, (name, b)
            assert (ours[silent] == 0).all(), name


def _gradient_along(name, mel, weights, direction, constants, time_axis):
    """d sum(apply_pcen(S) * weights) / d S along `direction`, by the framework's autodiff."""
    if name == 'torch':
        torch = pytest.importorskip('torch')
        import kapre_fast.torch as kf_torch

        s = torch.tensor(mel, dtype=torch.float32, requires_grad=True)
        loss = (kf_torch.apply_pcen(s, constants, time_axis) * torch.tensor(weights)).sum()
        loss.backward()
        gradient = s.grad.numpy()
    else:
        jax = pytest.importorskip('jax')
        import kapre_fast.jax as kf_jax

        w = jax.numpy.asarray(weights, jax.numpy.float32)
        gradient = np.asarray(
            jax.grad(lambda s: (kf_jax.apply_pcen(s, constants, time_axis) * w).sum())(
                jax.numpy.asarray(mel, jax.numpy.float32)
            )
        )
    return (gradient.astype(np.float64) * direction).sum()


@pytest.mark.parametrize('time_axis', [1, 2])
@pytest.mark.parametrize('name', ['torch', 'jax'])
def test_apply_pcen_gradient_on_a_long_input(name, time_axis):
    """torch's and JAX's apply_pcen differentiated through the doubling scan on 3000 frames
    (b small: a memory longer than the input): the derivative along a random direction equals
    a float64 central difference of reference.apply_pcen."""
    rng = np.random.default_rng(10)
    shape = (2, 3000, 6, 2) if time_axis == 1 else (2, 2, 3000, 6)
    direction, weights = rng.standard_normal(shape), rng.standard_normal(shape)
    mel = rng.uniform(0.0, 3.0, shape) ** 4 + 1e-3 * np.abs(direction)
    constants = pcen_constants(16000, 160, b=0.002)
    ours = _gradient_along(name, mel, weights, direction, constants, time_axis)
    step = 1e-4
    plus = reference.apply_pcen(mel + step * direction, constants, time_axis)
    minus = reference.apply_pcen(mel - step * direction, constants, time_axis)
    np.testing.assert_allclose(ours, ((plus - minus) * weights).sum() / (2 * step), rtol=1e-4)
