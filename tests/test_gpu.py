"""The real CUDA kernels: kapre_fast.gpu on CuPy arrays, on a GPU (marker `gpu`).

Skipped cleanly without CuPy, without kapre_fast's CUDA module, without an NVIDIA driver or
without a GPU. On a GPU machine, on the grids of test_gpu_emulation.py, every result is checked
  - against the float64 reference, with the emulation tests' tolerances, and
  - against the host emulation (kapre_fast._gpu_emulation) BIT FOR BIT. Kernels and emulation
    run the same phase code (csrc/cuda/phases.h) with IEEE-exact operations only (no implicit
    multiply-add contraction, polynomial log10/atan2 of our own), so any difference is a bug: a
    race, a missing barrier, or a compiler contracting an expression. A failure reports how many
    elements differ and by how many float32 ulps.

Run: pytest -m gpu tests/test_gpu.py (see the README's GPU section for the build). Under
compute-sanitizer, set KAPRE_FAST_TEST_NO_CUPY_POOL=1.
"""

import os
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
cupy = pytest.importorskip('cupy', reason='CuPy is not installed')
if os.environ.get('KAPRE_FAST_TEST_NO_CUPY_POOL') == '1':
    # One cudaMalloc per array, so compute-sanitizer sees every out-of-bounds access (CuPy's pool
    # hands out pieces of larger blocks).
    cupy.cuda.set_allocator(None)
try:
    from kapre_fast import gpu
except (ImportError, RuntimeError) as _error:
    pytest.skip(f'kapre_fast.gpu is not usable here: {_error}', allow_module_level=True)

from grid import CASES, make_batch  # noqa: E402
from helpers import (  # noqa: E402
    decibel_error,
    peak_relative_error,
    record_agreement,
    to_input_layout,
)
from kapre_fast import FrontEnd, cpu, reference  # noqa: E402
from kapre_fast import _gpu_emulation as gpu_emulation  # noqa: E402
from kapre_fast.spec import pcen_constants  # noqa: E402
from test_gpu_emulation import (  # noqa: E402
    DECIBEL_TOLERANCE,
    ISTFT_CASES,
    MAGNITUDE_TOLERANCE,
    SCHEDULE_SPECS,
    SIZE_CASES,
    case_id,
    check_against_reference,
    check_like_the_cpu_core,
    emulate,
    emulate_istft,
    istft_input,
    istft_kwargs,
    signal,
)
from test_gpu_presets import CASES as PRESET_CASES  # noqa: E402
from test_gpu_presets import (  # noqa: E402
    MFCC_CASES,
    MFCC_TOLERANCE,
    PCEN_CASES,
)
from test_gpu_presets import _audio as preset_audio  # noqa: E402
from test_gpu_presets import _check as check_preset  # noqa: E402
from test_gpu_presets import _per_example_peak_error as per_example_peak_error  # noqa: E402

DEVICE = cupy.cuda.Device().id
LIMITS = gpu.device_info(DEVICE)


def on_gpu(spec, x):
    """kapre_fast.gpu on the NumPy batch x, copied to the GPU; the result back on the host."""
    return cupy.asnumpy(gpu.compute(spec, cupy.asarray(x)))


def emulated(spec, x):
    """The host emulation with this GPU's launch geometry (shared memory, multiprocessors)."""
    return emulate(spec, x, smem_per_block=LIMITS['smem_per_block'], sm_count=LIMITS['sm_count'])


def _ordered(a):
    """float32 bits as integers ordered like the floats (for ulp distances)."""
    bits = np.ascontiguousarray(a).view(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(2**31) - bits, bits)


def assert_bitwise(ours, expected):
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    if np.array_equal(ours, expected, equal_nan=True):
        return
    a, b = (
        np.ascontiguousarray(ours).view(np.float32),
        np.ascontiguousarray(expected).view(np.float32),
    )
    both_nan = np.isnan(a) & np.isnan(b)
    distance = np.where(both_nan, 0, np.abs(_ordered(a) - _ordered(b)))
    pytest.fail(
        f'GPU and emulation differ in {np.count_nonzero(distance)} of {distance.size} '
        f'floats, by up to {distance.max()} ulp'
    )


@pytest.mark.parametrize('case', SIZE_CASES, ids=case_id)
def test_every_pipeline_and_size(case):
    family, kwargs, n_channels, n_samples = case
    spec = getattr(FrontEnd, family)(**kwargs)
    x = to_input_layout(signal(n_samples, n_channels, seed=kwargs['n_fft']), spec.input_data_format)
    ours = on_gpu(spec, x)
    check_against_reference(f'gpu {family}', spec, x, ours)
    assert_bitwise(ours, emulated(spec, x))


@pytest.mark.parametrize('case', CASES, ids=str)
def test_backend_grid(case, speech_batch, noise_batch):
    x, spec = make_batch(case, speech_batch, noise_batch)
    ours = on_gpu(spec, x)
    check_like_the_cpu_core(f'gpu {case.family}', spec, x, ours)
    assert_bitwise(ours, emulated(spec, x))


def test_every_n_fft_from_2_to_4096():
    rng = np.random.default_rng(3)
    for n_fft in range(2, 4097):
        spec = FrontEnd.stft(
            n_fft=n_fft,
            hop_length=max(1, n_fft // 2 + 1),
            input_data_format='channels_first',
            output_data_format='channels_first',
        )
        x = rng.standard_normal((1, 1, n_fft + n_fft // 2 + 1)).astype(np.float32)
        ours = on_gpu(spec, x)
        assert peak_relative_error(ours, reference.compute(spec, x)) < MAGNITUDE_TOLERANCE, n_fft
        assert_bitwise(ours, emulated(spec, x))


@pytest.mark.parametrize('n_fft', [8192, 12000, 16384, 32768, 65521, 65536])
def test_large_sizes(n_fft):
    spec = FrontEnd.stft_magnitude(n_fft=n_fft, hop_length=n_fft // 2 + 1, return_decibel=True)
    x = signal(2 * n_fft + 7, 2, seed=n_fft).transpose(0, 2, 1).copy()
    ours = on_gpu(spec, x)
    check_against_reference('gpu large', spec, x, ours)
    assert_bitwise(ours, emulated(spec, x))


def test_many_frames_and_a_long_batch():
    """A realistic load: 8 x 30 s of 16 kHz stereo, mel dB; many blocks, every SM busy."""
    spec = FrontEnd.melspectrogram(
        n_fft=2048,
        hop_length=256,
        sample_rate=16000,
        n_mels=128,
        return_decibel=True,
        input_data_format='channels_first',
    )
    x = signal(480000, 2, seed=1)
    x = np.concatenate([x] * 4)
    ours = on_gpu(spec, x)
    assert decibel_error(ours, reference.compute(spec, x), within=50.0) < DECIBEL_TOLERANCE
    assert_bitwise(ours, emulated(spec, x))


@pytest.mark.parametrize('kwargs', ISTFT_CASES, ids=lambda k: f'{k["n_fft"]}-{k["hop_length"]}')
def test_istft(kwargs):
    spec, x, X = istft_input(kwargs, n_channels=1 + kwargs['n_fft'] % 2)
    ours = cupy.asnumpy(gpu.istft(cupy.asarray(X), **istft_kwargs(spec)))
    truth = reference.istft(X, **istft_kwargs(spec))
    error = record_agreement('gpu istft', peak_relative_error(ours, truth))
    assert error < 2 * MAGNITUDE_TOLERANCE
    assert_bitwise(
        ours,
        emulate_istft(
            spec, X, smem_per_block=LIMITS['smem_per_block'], sm_count=LIMITS['sm_count']
        ),
    )


def test_istft_inverts_the_stft_on_the_gpu():
    spec = FrontEnd.stft(
        n_fft=1024,
        hop_length=256,
        pad_begin=True,
        pad_end=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    x = cupy.asarray(signal(48000, 2, seed=9).transpose(0, 2, 1).copy())
    y = gpu.istft(gpu.compute(spec, x), **istft_kwargs(spec))
    trim = 1024 - 256
    np.testing.assert_allclose(
        cupy.asnumpy(y[:, trim : trim + x.shape[1]]), cupy.asnumpy(x), atol=2e-6
    )


# ----- inputs, streams and determinism --------------------------------------------------------


class ForeignArray:
    """Another library's GPU array: only __cuda_array_interface__."""

    def __init__(self, array):
        self._array = array
        self.__cuda_array_interface__ = array.__cuda_array_interface__


def test_inputs_of_any_layout_dtype_and_origin():
    spec = FrontEnd.stft_mag_phase(
        n_fft=400, hop_length=100, return_decibel=True, input_data_format='channels_last'
    )
    x = to_input_layout(signal(4000, 2, seed=8), 'channels_last')
    expected = emulated(spec, x)
    device = cupy.asarray(x)
    assert_bitwise(cupy.asnumpy(gpu.compute(spec, device)), expected)
    assert_bitwise(cupy.asnumpy(gpu.compute(spec, ForeignArray(device))), expected)
    flipped = cupy.ascontiguousarray(device[:, ::-1, ::-1])
    assert_bitwise(cupy.asnumpy(gpu.compute(spec, flipped[:, ::-1, ::-1])), expected)
    assert_bitwise(cupy.asnumpy(gpu.compute(spec, device.astype(cupy.float64))), expected)
    padded = cupy.zeros((2, 4001, 2), cupy.float32)
    padded[:, 1:] = device
    assert_bitwise(cupy.asnumpy(gpu.compute(spec, padded[:, 1:])), expected)  # misaligned


def test_bad_inputs_are_named():
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    x = np.zeros((1, 4000, 1), np.float32)
    with pytest.raises(TypeError, match='CuPy array'):
        gpu.compute(spec, x)
    with pytest.raises(TypeError, match=r'audio must be a real array.*complex64'):
        gpu.compute(spec, cupy.zeros((1, 4000, 1), cupy.complex64))
    with pytest.raises(ValueError, match='3 axes'):
        gpu.compute(spec, cupy.zeros((4000, 1), cupy.float32))
    with pytest.raises(ValueError, match=r'300 samples.*win_length=512'):
        gpu.compute(spec, cupy.zeros((1, 300, 1), cupy.float32))
    assert gpu.compute(spec, cupy.zeros((0, 4000, 1), cupy.float32)).shape == (0, 28, 32, 1)


def test_streams_and_repeats_give_the_same_bits():
    make, kwargs = SCHEDULE_SPECS['mel-db']
    spec = make(**kwargs)
    x = cupy.asarray(to_input_layout(signal(48000, 2, seed=3), spec.input_data_format))
    first = gpu.compute(spec, x)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        on_stream = gpu.compute(spec, x)
        stream.synchronize()
    assert_bitwise(cupy.asnumpy(on_stream), cupy.asnumpy(first))
    for _ in range(3):
        assert_bitwise(cupy.asnumpy(gpu.compute(spec, x)), cupy.asnumpy(first))


def test_silence_gives_the_decibel_floor():
    spec = FrontEnd.melspectrogram(
        n_fft=512, hop_length=128, sample_rate=16000, n_mels=40, return_decibel=True
    )
    x = np.zeros((2, 4000, 1), np.float32)
    ours = on_gpu(spec, x)
    assert np.all(ours == ours.flat[0])
    assert_bitwise(ours, emulated(spec, x))


def test_nan_makes_its_example_nan():
    spec = FrontEnd.stft_magnitude(n_fft=256, hop_length=64, return_decibel=True)
    x = signal(3000, 1, seed=2).transpose(0, 2, 1).copy()
    x[0, 1000, 0] = np.nan
    ours = on_gpu(spec, x)
    assert np.isnan(ours[0]).all() and not np.isnan(ours[1]).any()
    assert_bitwise(ours, emulated(spec, x))


def test_device_info():
    assert LIMITS['smem_per_block'] >= 48 * 1024 and LIMITS['sm_count'] >= 1
    record_agreement('gpu shared memory per block (KiB)', LIMITS['smem_per_block'] / 1024)


# ----- presets, MFCC and PCEN (issue #15; on the emulation: test_gpu_presets) -------------------


@pytest.mark.parametrize('case', PRESET_CASES, ids=lambda c: f'{c[0]}-{c[1]["compat"]}')
def test_presets(case):
    """A preset's centring (cupy.pad), power spectrum and 10/20 log10 on the device: the
    emulation's bits, and the CPU's values within the presets' allowance."""
    function, kwargs, n_channels = case
    x = preset_audio(n_channels, kwargs['input_data_format'], seed=len(str(case)))
    spec = getattr(FrontEnd, function)(**kwargs)
    ours = cupy.asnumpy(getattr(gpu, function)(cupy.asarray(x), **kwargs))
    assert_bitwise(ours, emulated(spec, x))
    check_preset(
        f'gpu (device) presets vs cpu: {kwargs["compat"]} {function}',
        ours,
        getattr(cpu, function)(x, threads=1, **kwargs),
        case,
    )


@pytest.mark.parametrize('kwargs', MFCC_CASES, ids=lambda k: k.get('compat', 'kapre'))
def test_mfcc(kwargs):
    """The fused dB mel kernel (the emulation's bits), then CuPy's matrix product: the CPU's
    MFCCs within test_mfcc's allowance."""
    x = preset_audio(2, kwargs['input_data_format'], seed=11)
    device = cupy.asarray(x)
    ours = gpu.mfcc(device, **kwargs)
    assert isinstance(ours, cupy.ndarray) and ours.dtype == cupy.float32
    mel_kwargs = {k: v for k, v in kwargs.items() if k not in ('n_mfcc', 'lifter')}
    spec = FrontEnd.melspectrogram(return_decibel=True, **mel_kwargs)
    assert_bitwise(
        cupy.asnumpy(gpu.melspectrogram(device, return_decibel=True, **mel_kwargs)),
        emulated(spec, x),
    )
    error = per_example_peak_error(cupy.asnumpy(ours), cpu.mfcc(x, threads=1, **kwargs))
    record_agreement('gpu (device) mfcc vs cpu / allowed', error / MFCC_TOLERANCE)
    assert error <= MFCC_TOLERANCE, (error, kwargs)


@pytest.mark.parametrize('front_end, constants', PCEN_CASES, ids=str)
def test_pcen(front_end, constants):
    """The PCEN kernel on the device's mel: the emulation's bits (exact operations only), in
    place, in both layouts; and on a strided view of a larger array."""
    x = preset_audio(2, 'channels_last', seed=13)
    device = cupy.asarray(x)
    mel = cupy.asnumpy(gpu.melspectrogram(device, **front_end))
    ours = cupy.asnumpy(gpu.pcen(device, **front_end, **constants))
    spec = FrontEnd.melspectrogram(**front_end)
    c = pcen_constants(spec.sample_rate, spec.hop_length, **constants)
    channels_first = spec.output_data_format == 'channels_first'
    assert_bitwise(ours, gpu_emulation.pcen(mel, *c, channels_first=channels_first))
    wide = cupy.zeros(mel.shape[:3] + (2 * mel.shape[3],), cupy.float32)
    view = wide[..., ::2]
    view[...] = cupy.asarray(mel)
    assert gpu.apply_pcen(view, c, 2 if channels_first else 1) is not None
    assert_bitwise(cupy.asnumpy(view), ours)
    assert (cupy.asnumpy(wide[..., 1::2]) == 0).all()  # the gaps untouched


def test_pcen_bad_arguments_are_named():
    mel = cupy.ones((1, 5, 4, 1), cupy.float32)
    constants = pcen_constants(16000, 128)
    with pytest.raises(ValueError, match='time_axis must be 1'):
        gpu.apply_pcen(mel, constants, 0)
    with pytest.raises(ValueError, match='mel must be a 4-D float32 array'):
        gpu.apply_pcen(mel.astype(cupy.float64), constants, 1)
    with pytest.raises(ValueError, match=r'b must be in \[0, 1\]'):
        gpu.apply_pcen(mel, constants._replace(b=2.0), 1)
    with pytest.raises(ValueError, match='gain must be'):
        gpu.pcen(cupy.ones((1, 4000, 1), cupy.float32), gain=-1.0)


# ----- concurrency, alignment and table lifetime (issue #11; host side: test_gpu_launch_safety) -


def _loop_on_own_stream(call, repeats, results, errors, key):
    """Runs call() `repeats` times on a fresh non-blocking stream; keeps the last result."""
    stream = cupy.cuda.Stream(non_blocking=True)
    try:
        with stream:
            for _ in range(repeats):
                results[key] = call()
            stream.synchronize()
    except Exception as error:  # reported by the test, with the size that failed
        errors.append((key, error))


def _run_two_sizes_concurrently(make_call, repeats=500):
    results, errors = {}, []
    threads = [
        threading.Thread(
            target=_loop_on_own_stream, args=(make_call(n_fft), repeats, results, errors, n_fft)
        )
        for n_fft in (8192, 16384)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_concurrent_front_ends_with_large_shared_memory_on_two_streams():
    """Two threads, two streams, two sizes above 48 KiB of shared memory: neither call may lower
    the kernel's limit under the other's launch."""
    inputs = {n: to_input_layout(signal(3 * n, 1, seed=n), 'channels_last') for n in (8192, 16384)}

    def make_call(n_fft):
        spec = FrontEnd.stft_magnitude(n_fft=n_fft, hop_length=n_fft // 2)
        x = cupy.asarray(inputs[n_fft])
        return lambda: gpu.compute(spec, x)

    for n_fft, ours in _run_two_sizes_concurrently(make_call).items():
        spec = FrontEnd.stft_magnitude(n_fft=n_fft, hop_length=n_fft // 2)
        assert_bitwise(cupy.asnumpy(ours), emulated(spec, inputs[n_fft]))


def test_concurrent_inverse_stfts_with_large_shared_memory_on_two_streams():
    cases = {n: istft_input(dict(n_fft=n, hop_length=n // 4), n_channels=1) for n in (8192, 16384)}

    def make_call(n_fft):
        spec, _, X = cases[n_fft]
        device_X = cupy.asarray(X)
        return lambda: gpu.istft(device_X, **istft_kwargs(spec))

    for n_fft, ours in _run_two_sizes_concurrently(make_call).items():
        spec, _, X = cases[n_fft]
        assert_bitwise(
            cupy.asnumpy(ours),
            emulate_istft(
                spec, X, smem_per_block=LIMITS['smem_per_block'], sm_count=LIMITS['sm_count']
            ),
        )


def test_misaligned_view_is_refused_and_the_context_survives():
    n = 4000
    odd = cupy.zeros(4 * n + 1, cupy.uint8)[1:].view(cupy.float32).reshape(1, n, 1)
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    with pytest.raises(ValueError, match=r'audio must be aligned .*address 0x[0-9a-f]+'):
        gpu.compute(spec, odd)
    x = signal(n, 1, seed=12).transpose(0, 2, 1).copy()
    assert_bitwise(on_gpu(spec, x), emulated(spec, x))  # the CUDA context still works


def test_seventy_specs_round_robin_on_two_streams_without_synchronising():
    """More specs than the table cache holds, alternating two streams, no synchronisation until
    the end: evicted tables must outlive the kernels still reading them."""
    x_host = to_input_layout(signal(6000, 2, seed=13), 'channels_last')
    x = cupy.asarray(x_host)
    streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    specs, results = [], []
    for index in range(70):
        spec = FrontEnd.melspectrogram(
            n_fft=1024,
            hop_length=128 + index,
            sample_rate=16000,
            n_mels=32 + index % 9,
            return_decibel=index % 2 == 0,
        )
        with streams[index % 2]:
            results.append(gpu.compute(spec, x))
        specs.append(spec)
    for stream in streams:
        stream.synchronize()
    for spec, ours in zip(specs, results):
        assert_bitwise(cupy.asnumpy(ours), emulated(spec, x_host))
    assert gpu._TABLES.retired() == 0  # all work done: nothing held any longer
