"""The host integration of the CUDA paths on a real GPU (marker `gpu`; issue 24): CUDA graphs
(capture, replay after evictions, first use inside a capture, torch.compile's reduce-overhead),
zero-size batches, offsets past 2^31 elements, the caller's current device with several GPUs,
stale errors, and the JAX CUDA handlers. Each test skips cleanly where its framework or GPU is
missing; tests/test_gpu_launch_safety.py checks the same logic on the host in CI.

Run: pytest -m gpu tests/test_gpu_graphs.py (tests/gpu_check.sh runs it).
"""

import importlib.util

import numpy as np
import pytest

from kapre_fast import FrontEnd, _loader, cpu

pytestmark = pytest.mark.gpu


def _torch_cuda_reason():
    """'' when kapre_fast.torch's CUDA kernels can run here, else why not."""
    if importlib.util.find_spec('torch') is None:
        return 'torch is not installed'
    import torch

    if not torch.cuda.is_available():
        return 'no CUDA device for torch'
    if not _loader.build_info().get('torch_cuda', False):
        return 'kapre_fast was built without the torch CUDA kernels'
    return ''


def _cupy_reason():
    if importlib.util.find_spec('cupy') is None:
        return 'CuPy is not installed'
    try:
        from kapre_fast import gpu  # noqa: F401
    except (ImportError, RuntimeError) as error:
        return f'kapre_fast.gpu is not usable here: {error}'
    return ''


TORCH = _torch_cuda_reason()
CUPY = _cupy_reason()
needs_torch = pytest.mark.skipif(bool(TORCH), reason=TORCH or 'ok')
needs_cupy = pytest.mark.skipif(bool(CUPY), reason=CUPY or 'ok')


def audio(samples, channels=1, batch=2, seed=0):
    return (
        np.random.default_rng(seed).standard_normal((batch, samples, channels)).astype(np.float32)
    )


def mel_kwargs(hop=128, **extra):
    return dict(
        n_fft=512, hop_length=hop, n_mels=40, sample_rate=16000, return_decibel=True, **extra
    )


def mfcc_kwargs():
    kwargs = mel_kwargs()
    del kwargs['return_decibel']  # implied by mfcc
    return dict(kwargs, n_mfcc=13)


def close(ours, expected, tolerance):
    ours, expected = np.asarray(ours), np.asarray(expected)
    assert ours.shape == expected.shape
    assert np.percentile(np.abs(ours - expected), 99.9) < tolerance


# ----- torch: CUDA graphs ---------------------------------------------------------------------


def _capture(function, static_input):
    """A torch.cuda.CUDAGraph of function(static_input) and its static output; warmed up on a
    side stream first, as torch's documentation asks."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            function(static_input)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = function(static_input)
    return graph, static_output


@needs_torch
def test_torch_graph_replay_equals_eager_and_survives_evictions():
    import torch

    import kapre_fast.torch as kft

    x = torch.from_numpy(audio(16000, seed=1)).cuda()
    static = x.clone()
    graph, out = _capture(lambda a: kft.melspectrogram(a, **mel_kwargs()), static)
    fresh = torch.from_numpy(audio(16000, seed=2)).cuda()
    static.copy_(fresh)
    graph.replay()
    torch.testing.assert_close(out, kft.melspectrogram(fresh, **mel_kwargs()), rtol=0, atol=0)
    # 70 other specs: more than the 64 a device keeps, so uncaptured entries are evicted and
    # freed; the captured one must stay where the graph reads it.
    for hop in range(200, 270):
        kft.melspectrogram(fresh, **mel_kwargs(hop=hop))
    torch.cuda.synchronize()
    other = torch.from_numpy(audio(16000, seed=3)).cuda()
    static.copy_(other)
    graph.replay()
    torch.testing.assert_close(out, kft.melspectrogram(other, **mel_kwargs()), rtol=0, atol=0)
    close(out.cpu(), cpu.melspectrogram(other.cpu().numpy(), **mel_kwargs()), 0.05)


@needs_torch
def test_torch_first_use_of_a_spec_inside_a_capture():
    import torch

    import kapre_fast.torch as kft

    kwargs = mel_kwargs(hop=331)  # used by no other test: its tables are uploaded in the capture
    static = torch.from_numpy(audio(12000, seed=4)).cuda()
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        with torch.cuda.graph(graph):
            out = kft.stft_magnitude(static, n_fft=kwargs['n_fft'], hop_length=331)
    torch.cuda.current_stream().wait_stream(side)
    graph.replay()
    torch.testing.assert_close(
        out, kft.stft_magnitude(static, n_fft=512, hop_length=331), rtol=0, atol=0
    )


@needs_torch
def test_torch_mfcc_graph_replay_equals_eager():
    import torch

    import kapre_fast.torch as kft

    static = torch.from_numpy(audio(16000, seed=5)).cuda()
    graph, out = _capture(lambda a: kft.mfcc(a, **mfcc_kwargs()), static)
    fresh = torch.from_numpy(audio(16000, seed=6)).cuda()
    static.copy_(fresh)
    graph.replay()
    torch.testing.assert_close(out, kft.mfcc(fresh, **mfcc_kwargs()), rtol=0, atol=0)


@needs_torch
def test_torch_compile_reduce_overhead_equals_eager():
    import torch

    import kapre_fast.torch as kft

    if importlib.util.find_spec('triton') is None:
        pytest.skip('torch.compile on CUDA needs triton')

    def front_end(a):
        return kft.melspectrogram(a, **mel_kwargs(hop=160)) * 2.0

    compiled = torch.compile(front_end, mode='reduce-overhead')
    for seed in range(4):  # the first calls record, later ones replay the graph
        x = torch.from_numpy(audio(16000, seed=10 + seed)).cuda()
        torch.testing.assert_close(compiled(x).clone(), front_end(x), rtol=0, atol=0)


# ----- torch and CuPy: empty batches, large offsets, the current device -----------------------


@needs_torch
@pytest.mark.parametrize('shape', [(0, 4000, 1), (2, 4000, 0)], ids=['batch 0', 'channels 0'])
def test_torch_zero_size_batch_and_channels(shape):
    import torch

    import kapre_fast.torch as kft

    x = np.zeros(shape, np.float32)
    ours = kft.melspectrogram(torch.from_numpy(x).cuda(), **mel_kwargs())
    assert ours.is_cuda and tuple(ours.shape) == cpu.melspectrogram(x, **mel_kwargs()).shape


@needs_cupy
@pytest.mark.parametrize('shape', [(0, 4000, 1), (2, 4000, 0)], ids=['batch 0', 'channels 0'])
def test_cupy_zero_size_batch_and_channels(shape):
    import cupy

    from kapre_fast import gpu

    x = np.zeros(shape, np.float32)
    ours = gpu.melspectrogram(cupy.asarray(x), **mel_kwargs())
    assert ours.shape == cpu.melspectrogram(x, **mel_kwargs()).shape


@needs_torch
def test_torch_offsets_past_two_to_the_31_elements():
    """64 examples of 2^25 samples: the last ones start past 2^31 audio elements, and their
    features past 2^31 output elements (4.3e9 in all: ~26 GB of GPU memory)."""
    import torch

    import kapre_fast.torch as kft

    free, _ = torch.cuda.mem_get_info()
    if free < 30 << 30:
        pytest.skip(f'needs ~30 GiB of free GPU memory, {free >> 30} GiB free')
    batch, time = 64, 1 << 25
    x = torch.empty((batch, time, 1), device='cuda')
    x[-2:].normal_(generator=torch.Generator('cuda').manual_seed(7))
    x[:-2].zero_()
    out = kft.stft_magnitude(x, n_fft=256, hop_length=64)
    assert out.numel() > 1 << 31
    tail = x[-2:].cpu().numpy()
    del x
    expected = cpu.stft_magnitude(tail, n_fft=256, hop_length=64)
    close(out[-2:].cpu(), expected, 1e-3)
    assert float(out[:-2].amax()) == 0.0  # magnitudes: no copy of the 17 GB


def _two_gpus():
    import torch

    return torch.cuda.device_count() >= 2


@needs_torch
def test_torch_call_on_another_gpu_keeps_the_current_device():
    import torch

    import kapre_fast.torch as kft

    if not _two_gpus():
        pytest.skip('needs two GPUs')
    torch.cuda.set_device(0)
    x = torch.from_numpy(audio(8000, seed=8)).to('cuda:1')
    ours = kft.melspectrogram(x, **mel_kwargs())
    assert ours.device == x.device
    assert torch.cuda.current_device() == 0
    torch.cuda.synchronize(1)
    close(ours.cpu(), cpu.melspectrogram(x.cpu().numpy(), **mel_kwargs()), 0.05)


@needs_cupy
def test_cupy_call_on_another_gpu_keeps_the_runtime_device():
    import cupy

    from kapre_fast import gpu

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip('needs two GPUs')
    cupy.cuda.runtime.setDevice(0)
    with cupy.cuda.Device(1):
        x = cupy.asarray(audio(8000, seed=9))
        ours = gpu.melspectrogram(x, **mel_kwargs())
        assert cupy.cuda.runtime.getDevice() == 1
    assert cupy.cuda.runtime.getDevice() == 0
    close(cupy.asnumpy(ours), cpu.melspectrogram(cupy.asnumpy(x), **mel_kwargs()), 0.05)


# ----- CuPy: graphs, stale errors, a first use inside a capture -------------------------------


@needs_cupy
def test_cupy_graph_replay_equals_eager_and_first_use_inside_a_capture_is_refused():
    import cupy

    from kapre_fast import _device_tables, gpu

    x = cupy.asarray(audio(16000, seed=11))
    eager = gpu.melspectrogram(x, **mel_kwargs(hop=140))
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            out = gpu.melspectrogram(x, **mel_kwargs(hop=140))
        finally:
            graph = stream.end_capture()
        x[...] = cupy.asarray(audio(16000, seed=12))
        graph.launch()
        stream.synchronize()
    cupy.testing.assert_array_equal(out, gpu.melspectrogram(x, **mel_kwargs(hop=140)))
    assert not cupy.array_equal(out, eager)
    with stream:
        stream.begin_capture()
        try:
            with pytest.raises(_device_tables.CaptureMiss, match='call it once before'):
                gpu.melspectrogram(x, **mel_kwargs(hop=141))
        finally:
            stream.end_capture()


@needs_cupy
def test_cupy_a_swallowed_error_does_not_fail_the_next_launch():
    import cupy

    from kapre_fast import gpu

    with pytest.raises(RuntimeError):
        gpu._cuda.device_limits(cupy.cuda.runtime.getDeviceCount() + 5)
    x = cupy.asarray(audio(8000, seed=13))
    close(
        cupy.asnumpy(gpu.melspectrogram(x, **mel_kwargs())),
        cpu.melspectrogram(cupy.asnumpy(x), **mel_kwargs()),
        0.05,
    )


# ----- JAX: the CUDA handlers against the emulation -------------------------------------------


def _jax_gpu_reason():
    if importlib.util.find_spec('jax') is None:
        return 'jax is not installed'
    import jax

    try:
        if not jax.devices('gpu'):
            return 'jax has no GPU'
    except RuntimeError as error:
        return f'jax has no GPU: {error}'
    if not _loader.build_info().get('jax_cuda', False):
        return 'kapre_fast was built without the JAX CUDA handlers'
    return ''


@pytest.mark.skipif(bool(_jax_gpu_reason()), reason=_jax_gpu_reason() or 'ok')
def test_jax_cuda_handlers_match_the_emulation():
    import jax

    import kapre_fast.jax as kfj
    from test_gpu_emulation import emulate

    x = audio(12000, channels=2, seed=14)
    for spec in (
        FrontEnd.melspectrogram(**mel_kwargs(input_data_format='channels_last')),
        FrontEnd.stft(n_fft=400, hop_length=100, input_data_format='channels_last'),
    ):
        on_gpu = jax.device_put(x, jax.devices('gpu')[0])
        ours = np.asarray(kfj.compute(spec, on_gpu))
        close(ours, emulate(spec, x), 0.05 if spec.return_decibel else 1e-4)


_NO_CONTEXT_ON_GPU0 = r"""
import ctypes, sys, threading
sys.path[:0] = [sys.argv[1]]
cuda = ctypes.CDLL('libcuda.so.1')
assert cuda.cuInit(0) == 0

def gpu0_context_active():
    device, flags, active = ctypes.c_int(), ctypes.c_uint(), ctypes.c_int()
    assert cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
    assert cuda.cuDevicePrimaryCtxGetState(device, ctypes.byref(flags), ctypes.byref(active)) == 0
    return bool(active.value)

from kapre_fast import _cuda  # no context anywhere yet
assert not gpu0_context_active()
found = {}
# A fresh thread: the runtime says its device is 0, though it has no context at all.
thread = threading.Thread(target=lambda: found.update(_cuda.device_limits(1)))
thread.start()
thread.join()
assert found['sm_count'] > 0, found
print('gpu0 context:', gpu0_context_active())
"""


@pytest.mark.skipif(
    importlib.util.find_spec('kapre_fast._cuda') is None,
    reason='kapre_fast was built without the CUDA module',
)
def test_a_call_on_gpu_1_creates_no_context_on_gpu_0(tmp_path):
    """cuda_device_limits on GPU 1 from a thread that never used CUDA used to restore "device 0"
    afterwards, creating GPU 0's primary context in a process meant to use only GPU 1."""
    import subprocess
    import sys
    from pathlib import Path

    try:
        import ctypes

        cuda = ctypes.CDLL('libcuda.so.1')
        count = ctypes.c_int()
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            pytest.skip('no CUDA driver or GPU')
    except OSError:
        pytest.skip('no CUDA driver (libcuda.so.1)')
    if count.value < 2:
        pytest.skip('needs two GPUs')
    root = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, '-c', _NO_CONTEXT_ON_GPU0, root],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'gpu0 context: False' in result.stdout
