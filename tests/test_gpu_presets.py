"""Presets (compat='librosa' / 'torchaudio'), MFCC and PCEN on the GPU path (issue #15), run on
the host emulation of the CUDA kernels: kapre_fast.gpu driven with host memory standing in for
the device (test_gpu_emulation's fake CuPy and _cuda modules), so every run checks what a GPU
machine computes (tests/test_gpu.py holds the real kernels to the emulation bit for bit).

Checked: the GPU functions against kapre_fast.cpu (the same float32 definitions, computed by
another algorithm: within float32 rounding) and against the float64 reference with the CPU's
own allowances (test_presets, test_mfcc, test_pcen); the PCEN kernel against the CPU's native
pass on the same mel element by element over a wide range of values, its three formulas, and
its independence of thread and block order; bad arguments to the new raw entry point named.
"""

import math

import numpy as np
import pytest

from helpers import (
    decibel_error,
    decibel_to_magnitude,
    kernel_arguments,
    peak_relative_error,
    record_agreement,
    to_input_layout,
)
from kapre_fast import FrontEnd, _kernel_args, _loader, _weights, cpu, reference
from kapre_fast.spec import pcen_constants
from test_gpu_emulation import FakeDeviceArray, emulate, emulation, host_gpu  # noqa: F401

# The CPU's allowances against float64 (test_presets): magnitudes within this share of each
# example's peak, dB within this many dB over the top 50 dB of each example.
LINEAR_TOLERANCE = 2e-6
DECIBEL_TOLERANCE = 1e-3
DECIBEL_RANGE = 50.0
MFCC_TOLERANCE = 1e-5  # of each example's peak coefficient (test_mfcc's CPU_TOLERANCE)
# PCEN kernel vs the CPU pass on the same mel: both float32 with the same Cephes polynomials,
# and the CPU's AVX2/AVX-512 builds fuse the multiply-adds the kernel writes as fma (measured: 0
# ulps); its SSE2 build rounds them twice (up to ~30 ulps where expm1 cancels), so there both
# are held to float64 instead, with the CPU pass's own allowance (test_pcen).
PCEN_PASS_ULPS = 8
CPU_FUSES_MULTIPLY_ADDS = _loader.core().isa() != 'sse2'
PCEN_PASS_RTOL = 2e-5
PCEN_TOLERANCE = 5e-6  # of each example's peak PCEN value, either against float64 of the mel


def _grid(n_cases, seed):
    """Preset argument sets drawn with a fixed seed: both presets, the three families with a
    filterbank or none, power 1/2, dB on/off and top_db (inf: torchaudio's no clamp), pad
    modes, odd n_fft and win_length < n_fft, channels, layouts."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(n_cases):
        n_fft = int(rng.choice([256, 400, 511, 512]))
        kwargs = dict(
            compat=str(rng.choice(['librosa', 'torchaudio'])),
            n_fft=n_fft,
            win_length=int(rng.choice([n_fft, n_fft - 1 - int(rng.integers(0, n_fft // 3))])),
            hop_length=int(rng.choice([64, 128, 160])),
            pad_mode=str(rng.choice(['constant', 'reflect'])),
            power=int(rng.choice([1, 2])),
            return_decibel=index % 4 != 3,
            top_db=float(rng.choice([80.0, 50.0, math.inf])),
            input_data_format=str(rng.choice(['channels_last', 'channels_first'])),
            output_data_format=str(rng.choice(['channels_last', 'channels_first'])),
        )
        function = ['melspectrogram', 'stft_magnitude', 'stft_mag_phase'][index % 3]
        if function == 'melspectrogram':
            kwargs.update(
                sample_rate=16000,
                n_mels=int(rng.choice([20, 40])),
                mel_htk=bool(rng.random() < 0.5),
            )
        cases.append((function, kwargs, 1 + index % 2))
    return cases


CASES = _grid(6, seed=21)


def _audio(n_channels, data_format, seed, n_samples=4000):
    """Noise with a silent stretch (the dB floor and clamp), in `data_format`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, n_channels, n_samples)).astype(np.float32) * 0.3
    x[1, :, 1000:2500] = 0.0
    return to_input_layout(x, data_format)


def _batch_channels_frames_features(y, data_format):
    return y if data_format == 'channels_first' else np.moveaxis(y, 3, 1)


def _check(name, ours, truth, case):
    """As test_presets checks the CPU: dB within DECIBEL_TOLERANCE over the top 50 dB, then
    magnitudes (dB turned back) within LINEAR_TOLERANCE of each example's peak."""
    function, kwargs, _ = case
    ours = _batch_channels_frames_features(ours, kwargs['output_data_format'])
    truth = _batch_channels_frames_features(truth, kwargs['output_data_format'])
    if function == 'stft_mag_phase':  # the magnitude channels (the phases: test_gpu_emulation)
        half = ours.shape[1] // 2
        ours, truth = ours[:, :half], truth[:, :half]
    if kwargs['return_decibel']:
        error = decibel_error(ours, truth, within=DECIBEL_RANGE)
        record_agreement(f'{name} dB (top 50 dB) / allowed', error / DECIBEL_TOLERANCE)
        assert error <= DECIBEL_TOLERANCE, (name, 'dB', error, case)
        ours, truth = decibel_to_magnitude(ours), decibel_to_magnitude(truth)
    error = peak_relative_error(ours, truth)
    record_agreement(f'{name} |.| / allowed', error / LINEAR_TOLERANCE)
    assert error <= LINEAR_TOLERANCE, (name, error, case)


@pytest.mark.parametrize('case', CASES, ids=lambda c: f'{c[0]}-{c[1]["compat"]}')
def test_presets_equal_cpu_and_the_reference(host_gpu, case):
    function, kwargs, n_channels = case
    x = _audio(n_channels, kwargs['input_data_format'], seed=len(str(case)))
    ours = getattr(host_gpu, function)(x.view(FakeDeviceArray), **kwargs)
    assert isinstance(ours, FakeDeviceArray) and ours.dtype == np.float32
    ours = np.asarray(ours)
    expected = getattr(cpu, function)(x, threads=1, **kwargs)
    assert ours.shape == expected.shape
    # What kapre_fast.gpu launched is the emulated kernel on the centred audio, bit for bit.
    spec = getattr(FrontEnd, function)(**kwargs)
    np.testing.assert_array_equal(ours, emulate(spec, x))
    _check(f'gpu presets vs cpu: {kwargs["compat"]} {function}', ours, expected, case)
    _check(
        f'gpu presets vs reference: {kwargs["compat"]} {function}',
        ours,
        getattr(reference, function)(x, **kwargs),
        case,
    )


def test_preset_grid_covers_every_option():
    for key in (
        'compat',
        'pad_mode',
        'power',
        'return_decibel',
        'input_data_format',
        'output_data_format',
    ):
        assert len({case[1][key] for case in CASES}) == 2, key
    assert {case[0] for case in CASES} == {'melspectrogram', 'stft_magnitude', 'stft_mag_phase'}
    assert any(math.isinf(case[1]['top_db']) for case in CASES if case[1]['return_decibel'])
    assert any(case[1]['win_length'] < case[1]['n_fft'] for case in CASES)


@pytest.mark.parametrize('order', ['reverse', 'shuffled'])
def test_preset_kernel_is_bitwise_independent_of_scheduling(order):
    """Thread and block order, a small grid, and the global-memory buffers (4 KiB of shared
    memory) give the same bits."""
    spec = FrontEnd.melspectrogram(
        compat='librosa', n_fft=400, hop_length=160, n_mels=40, power=2, return_decibel=True
    )
    x = _audio(2, 'channels_last', seed=3)
    expected = emulate(spec, x)
    np.testing.assert_array_equal(
        emulate(spec, x, thread_order=order, reverse_blocks=True, max_grid=2, seed=9), expected
    )
    np.testing.assert_array_equal(
        emulate(spec, x, thread_order=order, smem_per_block=4096, seed=9), expected
    )


def test_preset_silence_and_short_audio(host_gpu):
    """Silence is the amin floor (torchaudio: no clamp), as on the CPU; audio too short for the
    reflect padding is refused naming the lengths before anything is copied."""
    x = np.zeros((1, 3000, 1), np.float32).view(FakeDeviceArray)
    ours = np.asarray(
        host_gpu.stft_magnitude(
            x, compat='torchaudio', n_fft=512, hop_length=128, return_decibel=True
        )
    )
    np.testing.assert_allclose(ours, 10 * np.log10(1e-10), rtol=1e-6)
    with pytest.raises(ValueError, match="pad_mode='reflect'.*256"):
        host_gpu.stft_magnitude(
            np.ones((1, 200, 1), np.float32).view(FakeDeviceArray),
            compat='librosa',
            n_fft=512,
            pad_mode='reflect',
        )


def test_kapre_default_keeps_its_bits_through_the_new_attributes():
    """power=1, db_multiplier=10 spelled out on the plan give the bits of the kernel arguments
    kapre's spec makes (_kernel_args.of)."""
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=128, n_mels=40, return_decibel=True)
    x = np.asarray(_audio(1, 'channels_last', seed=5), np.float32)
    start, length, weights = _weights.bands(spec)
    common = kernel_arguments(512, 512, 128)  # with kapre's power=1, db_multiplier=10 spelled out
    plain = emulation.Plan(
        _weights.window(spec), start, length, weights, **_kernel_args.of(spec).without_layouts()
    )
    spelled = emulation.Plan(_weights.window(spec), start, length, weights, **common)
    run = dict(input_channels_first=False, output_channels_first=False)
    np.testing.assert_array_equal(
        emulation.frontend(spelled, x, **run), emulation.frontend(plain, x, **run)
    )
    with pytest.raises(ValueError, match='power must be 1 or 2'):
        emulation.Plan(_weights.window(spec), start, length, weights, **{**common, 'power': 3})
    with pytest.raises(ValueError, match='db_multiplier'):
        emulation.Plan(
            _weights.window(spec), start, length, weights, **{**common, 'db_multiplier': -1.0}
        )


# ----- MFCC -------------------------------------------------------------------------------------

MFCC_CASES = [
    dict(
        compat='librosa',
        n_fft=512,
        hop_length=128,
        n_mels=40,
        n_mfcc=13,
        lifter=0,
        input_data_format='channels_last',
        output_data_format='channels_last',
    ),
    dict(
        n_fft=400,
        hop_length=160,
        n_mels=32,
        n_mfcc=20,
        lifter=22,
        input_data_format='channels_first',
        output_data_format='channels_first',
    ),
    dict(
        compat='torchaudio',
        n_fft=511,
        hop_length=100,
        n_mels=24,
        n_mfcc=24,
        lifter=3.5,
        mel_htk=True,
        mel_norm=None,
        input_data_format='channels_last',
        output_data_format='channels_first',
    ),
]


def _per_example_peak_error(ours, truth):
    peak = np.abs(truth).reshape(len(truth), -1).max(axis=1)
    return float((np.abs(ours - truth).reshape(len(truth), -1).max(axis=1) / peak).max())


@pytest.mark.parametrize('kwargs', MFCC_CASES, ids=lambda k: k.get('compat', 'kapre'))
def test_mfcc_equals_cpu_and_the_reference(host_gpu, kwargs):
    x = _audio(2, kwargs['input_data_format'], seed=11)
    ours = host_gpu.mfcc(x.view(FakeDeviceArray), **kwargs)
    assert isinstance(ours, FakeDeviceArray) and ours.dtype == np.float32
    ours = np.asarray(ours)
    expected = cpu.mfcc(x, threads=1, **kwargs)
    truth = reference.mfcc(x, **kwargs)
    assert ours.shape == expected.shape == truth.shape
    assert (
        ours.shape[2 if kwargs['output_data_format'] == 'channels_last' else 3]
        == (kwargs['n_mfcc'])
    )
    for name, other in (('cpu', expected), ('reference', truth)):
        error = _per_example_peak_error(ours, other)
        record_agreement(f'gpu mfcc vs {name} / allowed', error / MFCC_TOLERANCE)
        assert error <= MFCC_TOLERANCE, (name, error, kwargs)


def test_mfcc_names_bad_arguments(host_gpu):
    x = _audio(1, 'channels_last', seed=1).view(FakeDeviceArray)
    with pytest.raises(ValueError, match='n_mfcc must be <= n_mels'):
        host_gpu.mfcc(x, n_mels=16, n_mfcc=17)
    with pytest.raises(ValueError, match='lifter'):
        host_gpu.mfcc(x, lifter=-1)
    with pytest.raises(TypeError, match='return_decibel'):
        host_gpu.mfcc(x, return_decibel=True)


# ----- PCEN -------------------------------------------------------------------------------------

PCEN_CASES = [
    # (front end, PCEN constants): librosa's general formula, log1p (power 0), plain power
    # (bias 0), a fast smoother
    (dict(compat='librosa', n_fft=512, hop_length=128, n_mels=40, power=1), {}),
    (
        dict(n_fft=400, hop_length=160, n_mels=32, output_data_format='channels_first'),
        dict(pcen_power=0.0),
    ),
    (dict(compat='librosa', n_fft=511, hop_length=100, n_mels=24), dict(bias=0.0, b=0.3)),
    (
        dict(
            compat='torchaudio',
            n_fft=256,
            hop_length=64,
            n_mels=20,
            output_data_format='channels_first',
        ),
        dict(gain=0.8, bias=10.0, pcen_power=0.25, time_constant=0.06, eps=1e-3),
    ),
]


def _ulps(a, b):
    """float32 ulp distance per element (NaN equal to NaN, infinities equal to themselves)."""

    def ordered(v):
        bits = np.ascontiguousarray(v, np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(2**31) - bits, bits)

    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0, np.abs(ordered(a) - ordered(b)))


@pytest.mark.parametrize('front_end, constants', PCEN_CASES, ids=str)
def test_pcen_equals_cpu_and_the_reference(host_gpu, front_end, constants):
    kwargs = dict(front_end, **constants)
    scale = 2.0**15 if front_end.get('power') == 1 else 1.0  # librosa's pcen(S * 2**31) habit
    x = (_audio(2, 'channels_last', seed=13) * scale).astype(np.float32)
    ours = host_gpu.pcen(x.view(FakeDeviceArray), **kwargs)
    assert isinstance(ours, FakeDeviceArray) and ours.dtype == np.float32
    ours = np.asarray(ours)
    expected = cpu.pcen(x, threads=1, **kwargs)
    assert ours.shape == expected.shape
    # The pass itself on the CPU's own mel: the CPU pass's values to a few ulp.
    spec = FrontEnd.melspectrogram(**front_end)
    mel = cpu.melspectrogram(x, threads=1, **front_end)
    time_axis = 1 if spec.output_data_format == 'channels_last' else 2
    c = pcen_constants(spec.sample_rate, spec.hop_length, **constants)
    gpu_pass = emulation.pcen(mel, *c, channels_first=time_axis == 2)
    truth = reference.apply_pcen(mel.astype(np.float64), c, time_axis)
    np.testing.assert_allclose(gpu_pass, truth, rtol=PCEN_PASS_RTOL, atol=1e-30)
    if CPU_FUSES_MULTIPLY_ADDS:
        ulps = _ulps(gpu_pass, cpu.apply_pcen(mel.copy(), c, time_axis, threads=1))
        record_agreement('gpu pcen pass vs cpu pass, ulps / allowed', ulps.max() / PCEN_PASS_ULPS)
        assert ulps.max() <= PCEN_PASS_ULPS, (ulps.max(), kwargs)
    # End to end: mels that differ by float32 rounding, through PCEN's gain control.
    for name, other in (('cpu', expected), ('float64 of the mel', truth)):
        error = _per_example_peak_error(ours, other)
        record_agreement(f'gpu pcen vs {name} / allowed', error / PCEN_TOLERANCE)
        assert error <= PCEN_TOLERANCE, (name, error, kwargs)


@pytest.mark.parametrize(
    'constants',
    [{}, dict(pcen_power=0.0), dict(bias=0.0), dict(gain=0.5, bias=0.1, pcen_power=2.0, b=0.9)],
    ids=['general', 'log1p', 'plain-power', 'fast'],
)
def test_pcen_pass_over_a_wide_range(constants):
    """test_pcen's wide-range check of the CPU pass, for the kernel: every element of a mel
    spanning 1e-15..1e15 with exact zeros and a denormal row against float64 (the same rtol),
    and against the CPU pass (ulps) with a huge (3e38) frame as well, both layouts."""
    c = pcen_constants(16000, 160, **constants)
    rng = np.random.default_rng(5)
    mel = (10.0 ** rng.uniform(-15, 15, (2, 3, 60, 16))).astype(np.float32)
    mel[:, :, 10:20] = 0
    mel[:, 0, 30] = 1e-44
    truth = reference.apply_pcen(mel.astype(np.float64), c, time_axis=2)
    normal = mel >= np.finfo(np.float32).tiny
    extreme = mel.copy()
    extreme[1, 1, 40] = 3e38
    for channels_first in (True, False):

        def layout(a):
            return a if channels_first else np.ascontiguousarray(np.moveaxis(a, 1, 3))

        ours = emulation.pcen(layout(mel), *c, channels_first=channels_first)
        ours = ours if channels_first else np.moveaxis(ours, 3, 1)
        np.testing.assert_allclose(ours[normal], truth[normal], rtol=PCEN_PASS_RTOL, atol=0)
        np.testing.assert_allclose(ours, truth, rtol=PCEN_PASS_RTOL, atol=1e-21)
        assert (ours[mel == 0] == 0).all()
        if CPU_FUSES_MULTIPLY_ADDS:
            ulps = _ulps(
                emulation.pcen(layout(extreme), *c, channels_first=channels_first),
                _loader.core().pcen(layout(extreme), *c, channels_first, 1),
            )
            assert ulps.max() <= PCEN_PASS_ULPS, (ulps.max(), constants, channels_first)


@pytest.mark.parametrize('order', ['reverse', 'shuffled'])
def test_pcen_pass_is_bitwise_independent_of_scheduling(order):
    mel = np.random.default_rng(2).random((3, 2, 40, 70), np.float32)
    constants = (0.05, 0.98, 2.0, 0.5, 1e-6)
    np.testing.assert_array_equal(
        emulation.pcen(
            mel,
            *constants,
            channels_first=True,
            thread_order=order,
            reverse_blocks=True,
            max_grid=1,
            seed=4,
        ),
        emulation.pcen(mel, *constants, channels_first=True),
    )


def test_pcen_silence_gives_zeros_and_empty_shapes_pass(host_gpu):
    x = np.zeros((1, 3000, 1), np.float32).view(FakeDeviceArray)
    assert np.all(np.asarray(host_gpu.pcen(x, n_fft=512, hop_length=128)) == 0.0)
    empty = np.zeros((0, 5, 4, 1), np.float32)
    assert emulation.pcen(empty, 0.1, 0.98, 2.0, 0.5, 1e-6, channels_first=False).shape == (
        empty.shape
    )
    emulation.pcen_raw(0, 0, 3, 10, 4, 0, 0, 0, 0, 0.1, 0.98, 2.0, 0.5, 1e-6, 4, 0, 0)


def _raw_args(array, **changes):
    """emulation.pcen_raw's arguments for the contiguous channels_first float32 `mel`."""
    args = dict(
        mel=array.__array_interface__['data'][0],
        batch=array.shape[0],
        channels=array.shape[1],
        frames=array.shape[2],
        features=array.shape[3],
        sb=array.strides[0] // 4,
        sc=array.strides[1] // 4,
        sf=array.strides[2] // 4,
        sk=array.strides[3] // 4,
        b=0.1,
        gain=0.98,
        bias=2.0,
        power=0.5,
        eps=1e-6,
        sm_count=4,
        device=0,
        stream=0,
    )
    args.update(changes)
    return args


@pytest.mark.parametrize(
    'changes, message',
    [
        (dict(b=1.5), r'b must be in \[0, 1\], got 1.5'),
        (dict(b=float('nan')), 'b must be in'),
        (dict(gain=-1.0), 'gain must be finite and >= 0, got -1'),
        (dict(bias=float('inf')), 'bias must be finite'),
        (dict(power=-0.5), 'power must be finite and >= 0'),
        (dict(eps=0.0), 'eps must be a positive, finite float32'),
        (dict(eps=1e-300), 'eps must be a positive'),
        (dict(batch=-1), 'PCEN sizes must be >= 0'),
        (dict(frames=2**40, features=2**40), 'PCEN sizes are too large'),
        (dict(batch=2**31, channels=2**31, features=2**31, frames=0), 'PCEN sizes are too large'),
        (dict(mel=0), 'mel must not be a null pointer'),
        (dict(sm_count=0), 'sm_count must be >= 1'),
    ],
)
def test_raw_pcen_names_bad_arguments(changes, message):
    mel = np.ones((1, 2, 5, 3), np.float32)
    before = mel.copy()
    with pytest.raises(ValueError, match=message):
        emulation.pcen_raw(**_raw_args(mel, **changes))
    np.testing.assert_array_equal(mel, before)  # nothing ran


def test_raw_pcen_refuses_a_misaligned_pointer_naming_it():
    raw = np.zeros(4 * 30 + 4, np.uint8)
    address = raw.__array_interface__['data'][0]
    address += 1 if address % 4 != 1 else 2
    with pytest.raises(
        ValueError,
        match=r'mel must be aligned to 4 bytes \(float32\), got '
        r'address 0x',
    ):
        emulation.pcen_raw(**_raw_args(np.ones((1, 1, 5, 6), np.float32), mel=address))


def test_apply_pcen_names_bad_arguments(host_gpu):
    mel = np.ones((1, 5, 4, 1), np.float32).view(FakeDeviceArray)
    constants = pcen_constants(16000, 128)
    with pytest.raises(ValueError, match='time_axis must be 1'):
        host_gpu.apply_pcen(mel, constants, 3)
    with pytest.raises(ValueError, match='mel must be a 4-D float32 array'):
        host_gpu.apply_pcen(mel.astype(np.float64).view(FakeDeviceArray), constants, 1)
    with pytest.raises(TypeError, match='CuPy array'):
        host_gpu.apply_pcen(np.ones((1, 5, 4, 1), np.float32), constants, 1)
    with pytest.raises(ValueError, match='pcen_power must be >= 0'):
        host_gpu.pcen(np.ones((1, 4000, 1), np.float32).view(FakeDeviceArray), pcen_power=-1)
