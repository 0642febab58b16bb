"""The presets, MFCC and PCEN under kapre_fast.torch and kapre_fast.jax (issues #14, #15).

Against the float64 reference: a fixed-seed sample of test_presets.py's grid with its allowance
(magnitudes within LINEAR_TOLERANCE of each example's peak, dB within DECIBEL_TOLERANCE over the
top 50 dB) and kapre_fast.cpu's bits (one C++ core: the bindings pad the audio themselves, as
cpu does, then run the same kernel); MFCC and PCEN (the DCT and PCEN in torch / jnp ops);
gradients through a preset, MFCC and PCEN against central differences of the reference; bad
arguments named.
"""

import math

import numpy as np
import pytest

from helpers import peak_relative_error, record_agreement, to_input_layout
from kapre_fast import cpu, reference
from kapre_fast.spec import pcen_constants
from test_presets import (
    DECIBEL_TOLERANCE,
    LINEAR_TOLERANCE,
    _as_batch_channels_frames_features,
    _audio,
    _check,
    _grid,
    _kwargs,
)

SEEDS = {'librosa': 15, 'torchaudio': 16}  # test_presets' grids
# Three of each preset's ten grid cases (index 0: the preset's defaults), drawn once.
SAMPLED = sorted(np.random.default_rng(21).choice(np.arange(1, 10), 2, replace=False).tolist())
CASES = [(compat, index) for compat in SEEDS for index in [0] + SAMPLED]
MEL = dict(n_fft=400, hop_length=160, sample_rate=16000, n_mels=32)


def _torch_module():
    pytest.importorskip('torch')
    import kapre_fast.torch as kft

    return kft


def _jax_module():
    pytest.importorskip('jax')
    import kapre_fast.jax as kfj

    return kfj


def run(binding, name, x, **kwargs):
    """kapre_fast.<binding>.<name>(x, **kwargs) as a NumPy array."""
    if binding == 'torch':
        torch = pytest.importorskip('torch')
        return getattr(_torch_module(), name)(torch.from_numpy(x), **kwargs).numpy()
    return np.asarray(getattr(_jax_module(), name)(x, **kwargs))


def gradient(binding, name, x, weights, **kwargs):
    """d sum(<name>(x, **kwargs) * weights) / dx from the binding's autograd, float64."""
    if binding == 'torch':
        torch = pytest.importorskip('torch')
        source = torch.from_numpy(x).requires_grad_(True)
        y = getattr(_torch_module(), name)(source, **kwargs)
        (result,) = torch.autograd.grad((y * torch.from_numpy(weights)).sum(), source)
        return result.double().numpy()
    jax = pytest.importorskip('jax')
    function = getattr(_jax_module(), name)
    loss = lambda z: (function(z, **kwargs) * weights).sum()  # noqa: E731
    return np.asarray(jax.grad(loss)(x), dtype=np.float64)


def assert_gradient_is_finite_differences(binding, name, x, **kwargs):
    """The binding's gradient along three random directions against central differences of
    kapre_fast.reference (float64, an independent forward pass)."""
    truth = getattr(reference, name)
    weights = np.random.default_rng(3).standard_normal(truth(x, **kwargs).shape)
    analytic_gradient = gradient(binding, name, x, weights.astype(np.float32), **kwargs)
    rng = np.random.default_rng(5)
    for _ in range(3):
        direction = rng.standard_normal(x.shape)
        step = 1e-6
        numeric = (
            float((truth(x + step * direction, **kwargs) * weights).sum())
            - float((truth(x - step * direction, **kwargs) * weights).sum())
        ) / (2 * step)
        analytic = float((analytic_gradient * direction).sum())
        assert abs(numeric - analytic) <= 1e-3 * abs(numeric) + 1e-4, (numeric, analytic)


def smooth_noise(n_samples=300, n_channels=1, layout='channels_last', seed=4):
    """Noise without digital silence (log(max(x, amin)) has a kink at every silent sample)."""
    batch = 0.3 * np.random.default_rng(seed).standard_normal((2, n_channels, n_samples))
    return to_input_layout(batch.astype(np.float32), layout)


@pytest.mark.parametrize('binding', ['torch', 'jax'])
@pytest.mark.parametrize('compat, index', CASES)
def test_preset_grid_sample_against_the_float64_reference(
    binding, compat, index, speech_batch, noise_batch
):
    case = _grid(10, SEEDS[compat], compat)[index]
    source = 'speech' if index % 2 else 'noise'
    x = to_input_layout(
        _audio(source, speech_batch, noise_batch, case['n_channels']), case['data_format']
    )
    kwargs = _kwargs(case, compat)
    function = case['function']
    ours = run(binding, function, x, threads=2, **kwargs)
    np.testing.assert_array_equal(ours, getattr(cpu, function)(x, threads=2, **kwargs))
    truth = getattr(reference, function)(x, **kwargs)
    as_bcff = lambda y: _as_batch_channels_frames_features(y, case['data_format'])  # noqa: E731
    _check(
        f'presets: {binding} {compat} {function}',
        as_bcff(ours),
        as_bcff(truth),
        case,
        LINEAR_TOLERANCE,
        DECIBEL_TOLERANCE,
    )


@pytest.mark.parametrize('binding', ['torch', 'jax'])
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_mfcc_and_pcen_against_the_float64_reference(binding, data_format, speech_batch):
    """No further from float64 than kapre_fast.cpu's (native) MFCC and PCEN, within 2x plus a
    float32 rounding of the peak: the float32 mel they all start from dominates (a lifter
    scales its dB error up to 1 + lifter / 2 times; PCEN's log1p(S / M**gain) with
    pcen_power=0 magnifies it)."""
    x = to_input_layout(
        speech_batch(n_examples=2, n_samples=6000, n_channels=2, seed=7), data_format
    )
    layouts = dict(input_data_format=data_format, output_data_format=data_format)
    cases = [
        ('mfcc', dict(compat='librosa', n_mfcc=13, lifter=22)),
        ('mfcc', dict(compat='torchaudio', n_mfcc=20, power=1, top_db=60.0)),
        ('mfcc', dict(n_mfcc=20)),
        ('pcen', dict(compat='librosa')),
        ('pcen', dict(compat='torchaudio', time_constant=0.06)),
        ('pcen', dict(gain=0.8, bias=0.0, pcen_power=0.25)),
        ('pcen', dict(pcen_power=0.0, b=0.3)),
    ]
    for name, kwargs in cases:
        ours = run(binding, name, x, **MEL, **layouts, **kwargs)
        truth = getattr(reference, name)(x, **MEL, **layouts, **kwargs)
        assert ours.shape == truth.shape and ours.dtype == np.float32
        error = peak_relative_error(ours, truth)
        allowed = (
            2 * peak_relative_error(getattr(cpu, name)(x, **MEL, **layouts, **kwargs), truth) + 1e-7
        )
        record_agreement(f'{binding} {name} vs float64 / allowed', error / allowed)
        assert error <= allowed, (name, kwargs, error, allowed)


@pytest.mark.parametrize('binding', ['torch', 'jax'])
@pytest.mark.parametrize(
    'name, kwargs',
    [
        ('melspectrogram', dict(compat='librosa', return_decibel=True, top_db=math.inf)),
        (
            'melspectrogram',
            dict(
                compat='torchaudio', pad_mode='reflect', power=1, input_data_format='channels_first'
            ),
        ),
        ('stft_magnitude', dict(compat='librosa', power=1, return_decibel=True, win_length=50)),
        ('stft_magnitude', dict(compat='torchaudio', return_decibel=True)),
        ('mfcc', dict(compat='librosa', n_mfcc=6, top_db=math.inf)),
        ('pcen', dict(compat='torchaudio', time_constant=0.05)),
    ],
)
def test_gradient_through_a_preset_is_finite_differences_of_the_reference(binding, name, kwargs):
    small = dict(n_fft=64, hop_length=20)
    if name in ('melspectrogram', 'mfcc', 'pcen'):
        small.update(sample_rate=8000, n_mels=10)
    layout = kwargs.get('input_data_format', 'channels_last')
    assert_gradient_is_finite_differences(
        binding, name, smooth_noise(layout=layout), **small, **kwargs
    )


@pytest.mark.parametrize('binding', ['torch', 'jax'])
def test_bad_arguments_are_named(binding):
    x = smooth_noise(600)
    module = _torch_module() if binding == 'torch' else _jax_module()
    cases = [
        ('mfcc', dict(n_mfcc=40, n_mels=32), ValueError, 'n_mfcc must be <= n_mels = 32'),
        ('mfcc', dict(lifter=-1), ValueError, 'lifter must be >= 0'),
        ('mfcc', dict(return_decibel=True), TypeError, "argument 'return_decibel'"),
        ('pcen', dict(gain=-1.0), ValueError, 'gain must be >= 0, got -1.0'),
        ('pcen', dict(b=2.0), ValueError, r'b must be in \[0, 1\]'),
        (
            'melspectrogram',
            dict(compat='librosa', pad_mode='edge'),
            ValueError,
            "pad_mode must be one of 'constant', 'reflect', got 'edge'",
        ),
        (
            'melspectrogram',
            dict(compat='torchaudio', power=3),
            ValueError,
            'power must be 1 .* or 2 .*, got 3',
        ),
        (
            'stft_magnitude',
            dict(compat='librosa', center=False, n_fft=1024),
            ValueError,
            'one frame needs n_fft=1024',
        ),
        (
            'stft_magnitude',
            dict(compat='torchaudio', n_fft=2048),
            ValueError,
            r"audio has 600 samples; pad_mode='reflect' pads n_fft // 2 = 1024",
        ),
    ]
    for name, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            run(binding, name, x, n_fft=kwargs.pop('n_fft', 256), **kwargs)
    with pytest.raises(ValueError, match='time_axis must be 1 .* or 2 .*, got 3'):
        module.apply_pcen(np.ones((1, 4, 5, 1), np.float32), pcen_constants(22050, 512), 3)


def test_torch_compile_fullgraph_and_modules_take_a_preset():
    """torch.compile(fullgraph=True) traces the pad and the operator of a reflect-padded preset
    (same values and gradients as eager); the modules compute the functions."""
    torch = pytest.importorskip('torch')
    kft = _torch_module()
    kwargs = dict(
        compat='torchaudio',
        n_fft=128,
        hop_length=32,
        sample_rate=8000,
        n_mels=16,
        return_decibel=True,
        input_data_format='channels_first',
    )

    def loss(z):  # literal arguments: torch.compile turns a closure's ints into symbols
        return (
            kft.melspectrogram(
                z,
                compat='torchaudio',
                n_fft=128,
                hop_length=32,
                sample_rate=8000,
                n_mels=16,
                return_decibel=True,
                input_data_format='channels_first',
            )
            .square()
            .sum()
        )

    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True, backend='aot_eager', dynamic=True)
    for n_samples in (500, 701):  # a second length: the pad's and the fake's symbolic sizes
        x = torch.from_numpy(smooth_noise(n_samples, 2, 'channels_first'))
        eager_x, compiled_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        expected, ours = loss(eager_x), compiled(compiled_x)
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)
        ours.backward()
        expected.backward()
        torch.testing.assert_close(compiled_x.grad, eager_x.grad, rtol=1e-6, atol=1e-7)
    # Too short for the mirrored pad (64 samples): the compiled program's own check says so.
    with pytest.raises(Exception, match="too short for pad_mode='reflect'.* more than 64"):
        compiled(torch.from_numpy(smooth_noise(50, 2, 'channels_first')))

    torch.testing.assert_close(
        kft.MelSpectrogram(**kwargs)(x), kft.melspectrogram(x, **kwargs), rtol=0, atol=0
    )
    mel = {k: v for k, v in kwargs.items() if k != 'return_decibel'}
    torch.testing.assert_close(
        kft.MFCC(n_mfcc=5, **mel)(x), kft.mfcc(x, n_mfcc=5, **mel), rtol=0, atol=0
    )
    torch.testing.assert_close(
        kft.PCEN(gain=0.9, **mel)(x), kft.pcen(x, gain=0.9, **mel), rtol=0, atol=0
    )


def test_jax_jit_and_vmap_take_a_preset():
    """Under jax.jit the pad and the FFI call compile together (the same bits as eager); vmap
    over an extra leading axis is the stacked calls."""
    jax = pytest.importorskip('jax')
    kfj = _jax_module()
    kwargs = dict(
        compat='librosa', n_fft=128, hop_length=32, sample_rate=8000, n_mels=16, pad_mode='reflect'
    )
    x = smooth_noise(500, 2)
    eager = np.asarray(kfj.melspectrogram(x, return_decibel=True, **kwargs))
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda z: kfj.melspectrogram(z, return_decibel=True, **kwargs))(x)),
        eager,
    )
    stacked = np.stack([x, 2 * x])
    mapped = np.asarray(jax.vmap(lambda z: kfj.mfcc(z, n_mfcc=6, **kwargs))(stacked))
    for index in range(2):
        np.testing.assert_allclose(
            mapped[index],
            np.asarray(kfj.mfcc(stacked[index], n_mfcc=6, **kwargs)),
            rtol=0,
            atol=1e-4,
        )
