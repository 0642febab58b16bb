"""What keeps concurrent and unusual GPU calls safe, checked on the host (issue #11):

- the dynamic shared-memory limit is raised once per device and kernel, to the device's opt-in
  maximum, and never lowered by a later call (the raw entry points simulate the attribute with
  the same SharedMemoryOptIn logic that kernels.cu runs);
- misaligned audio, spectra and outputs are refused with a ValueError naming the address, before
  anything is launched (a misaligned load is a sticky CUDA error on a GPU);
- misaligned plan tables and workspaces are refused the same way (the kernels read them 8 bytes
  at a time);
- an evicted plan's device tables live until every kernel queued with them has completed, in
  kapre_fast.gpu's cache and in the C++ per-device cache of the torch and JAX CUDA entry points
  (csrc/cuda/table_cache.h, on a simulated backend): per-device capacity, frees ordered after
  the events of the calls that used them, entries used inside a CUDA graph capture never
  evicted;
- every CUDA entry point leaves the caller's current device as it was, without creating a
  context on a device the thread never used (csrc/cuda/device_guard.h, on a simulated runtime).

tests/test_gpu.py runs the same situations on a real GPU.
"""

import threading

import numpy as np
import pytest

from helpers import to_input_layout
from kapre_fast import FrontEnd, _device_tables, cpu
from test_gpu_emulation import (  # noqa: F401  (host_gpu is a fixture)
    FakeDeviceArray,
    emulate,
    emulate_istft,
    emulation,
    gpu_plan,
    host_gpu,
    inverse_plan,
    istft_input,
    istft_kwargs,
    signal,
)

DEFAULT_LIMIT = 48 * 1024
H100_SMEM = (
    232448  # sm_90's opt-in shared memory per block: n_fft 8192 and 16384 both exceed 48 KiB
)


def misaligned_floats(shape, offset=1):
    """A float32 view `offset` bytes past an aligned address (as a byte buffer sliced by one)."""
    raw = np.zeros(4 * int(np.prod(shape)) + 8, np.uint8)
    base = (-raw.ctypes.data) % 8  # first 8-byte boundary
    return (
        raw[base + offset : base + offset + 4 * int(np.prod(shape))].view(np.float32).reshape(shape)
    )


def raw_frontend(spec, x, *, device, smem, out=None):
    """emulation.frontend_raw (kapre_fast._cuda.frontend's signature on host addresses) on the
    batch x (channels_last) into `out` (a fresh output when None); returns out."""
    plan = gpu_plan(emulation, spec)
    floats, ints = np.array(plan.floats), np.array(plan.ints)
    batch, time, channels = x.shape
    shape, dtype = plan.output_shape(batch, channels, time, False)
    out = np.empty(shape, dtype) if out is None else out
    geometry = plan.geometry(batch, channels, time, False, smem, 4)
    workspace = np.empty(geometry['workspace_bytes'] + 256, np.uint8)
    workspace = workspace[(-workspace.ctypes.data) % 256 :]
    addresses = (floats.ctypes.data, ints.ctypes.data, workspace.ctypes.data)
    _launch_raw(plan, addresses, x, out, geometry['workspace_bytes'], smem, device)
    return out


def _launch_raw(plan, addresses, x, out, workspace_bytes, smem, device):
    """emulation.frontend_raw of the channels_last batch x into the channels_last `out`, with
    the plan's tables and the workspace at `addresses` (floats, ints, workspace), 4 SMs, stream
    0."""
    floats_at, ints_at, workspace_at = addresses
    batch, time, channels = x.shape
    sb, st, sc = (s // 4 for s in x.strides)
    emulation.frontend_raw(
        plan,
        floats_at,
        ints_at,
        x.ctypes.data,
        batch,
        channels,
        time,
        sb,
        sc,
        st,
        out.ctypes.data,
        False,
        workspace_at,
        workspace_bytes,
        smem,
        4,
        device,
        0,
    )


def large_spec(n_fft):
    return FrontEnd.stft_magnitude(n_fft=n_fft, hop_length=n_fft, input_data_format='channels_last')


def large_input(n_fft, seed):
    return to_input_layout(signal(2 * n_fft, 1, seed=seed), 'channels_last')


# ----- the shared-memory attribute -----------------------------------------------------------


def test_both_large_sizes_need_more_than_the_default_shared_memory():
    for n_fft in (8192, 16384):
        geometry = gpu_plan(emulation, large_spec(n_fft)).geometry(
            1, 1, 2 * n_fft, False, H100_SMEM, 4
        )
        assert DEFAULT_LIMIT < geometry['shared_memory_bytes'] <= H100_SMEM
        assert not geometry['global_buffers']


def test_the_limit_is_raised_once_to_the_opt_in_maximum_and_never_lowered():
    device = 11  # no other test launches on this simulated device
    assert emulation.shared_memory_limit('frontend_kernel', device) == DEFAULT_LIMIT
    small = FrontEnd.stft_magnitude(n_fft=256, hop_length=128, input_data_format='channels_last')
    raw_frontend(small, large_input(256, 1), device=device, smem=H100_SMEM)
    assert emulation.shared_memory_limit('frontend_kernel', device) == DEFAULT_LIMIT
    for n_fft in (16384, 8192, 16384):  # largest first: a per-call size would then shrink it
        x = large_input(n_fft, n_fft)
        np.testing.assert_array_equal(
            raw_frontend(large_spec(n_fft), x, device=device, smem=H100_SMEM),
            emulate(large_spec(n_fft), x, smem_per_block=H100_SMEM),
        )
        assert emulation.shared_memory_limit('frontend_kernel', device) == H100_SMEM
    assert emulation.shared_memory_limit('istft_kernel', device) == DEFAULT_LIMIT


def test_a_call_above_the_limit_fails_as_the_launch_would():
    """The simulation is strict: a limit below the call's need fails the launch, so the test
    above would catch a policy that lowers it."""
    device = 12
    raw_frontend(large_spec(8192), large_input(8192, 3), device=device, smem=80 * 1024)
    assert emulation.shared_memory_limit('frontend_kernel', device) == 80 * 1024
    with pytest.raises(
        RuntimeError,
        match=r'cudaErrorInvalidValue .*needs \d+ bytes .*limit on '
        r'device 12 is 81920',
    ):
        # The device's maximum is a constant on a real GPU; here a second, larger "maximum"
        # cannot raise it again, and the 16384 call does not fit.
        raw_frontend(large_spec(16384), large_input(16384, 4), device=device, smem=H100_SMEM)


def test_concurrent_calls_of_two_large_sizes_never_fail_each_other():
    device = 13
    errors, results = [], {}

    def loop(n_fft):
        x = large_input(n_fft, n_fft)
        try:
            for _ in range(6):
                results[n_fft] = raw_frontend(large_spec(n_fft), x, device=device, smem=H100_SMEM)
        except Exception as error:  # reported below, with the size that failed
            errors.append((n_fft, error))

    threads = [threading.Thread(target=loop, args=(n,)) for n in (8192, 16384)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for n_fft, ours in results.items():
        np.testing.assert_array_equal(
            ours, emulate(large_spec(n_fft), large_input(n_fft, n_fft), smem_per_block=H100_SMEM)
        )


# ----- alignment -----------------------------------------------------------------------------


def test_misaligned_audio_and_outputs_are_refused_naming_the_address():
    spec = FrontEnd.stft_magnitude(n_fft=256, hop_length=128, input_data_format='channels_last')
    x = large_input(256, 5)
    odd = misaligned_floats(x.shape)
    odd[...] = x
    with pytest.raises(ValueError, match=r'audio must be aligned to 4 bytes .*address 0x[0-9a-f]+'):
        raw_frontend(spec, odd, device=0, smem=H100_SMEM)
    shape = (1, 3, 129, 1)  # the output of 512 samples
    with pytest.raises(ValueError, match=r'out must be aligned to 4 bytes \(float32\)'):
        raw_frontend(spec, x, device=0, smem=H100_SMEM, out=misaligned_floats(shape, offset=2))
    # Complex output is stored in 8-byte pairs: 4-byte alignment is not enough.
    complex_spec = FrontEnd.stft(n_fft=256, hop_length=128, input_data_format='channels_last')
    half = misaligned_floats((1, 3, 129, 1, 2), offset=4).view(np.complex64)[..., 0]
    with pytest.raises(ValueError, match=r'out must be aligned to 8 bytes \(complex64\)'):
        raw_frontend(complex_spec, x, device=0, smem=H100_SMEM, out=half)
    np.testing.assert_array_equal(raw_frontend(spec, x, device=0, smem=H100_SMEM), emulate(spec, x))


def test_misaligned_spectrum_is_refused_by_the_raw_inverse_stft():
    spec, _, X = istft_input(dict(n_fft=64, hop_length=16), n_channels=1)
    odd = misaligned_floats(X.shape + (2,), offset=4).view(np.complex64)[..., 0]
    odd[...] = X
    plan = inverse_plan(emulation, spec)
    batch, frames, bins, channels = X.shape
    length = plan.istft_shape(batch, channels, frames, bins, False)
    out = np.empty(length, np.float32)
    geometry = plan.istft_geometry(batch, channels, frames, bins, False, H100_SMEM, 4)
    workspace = np.zeros(geometry['workspace_bytes'] + 256, np.uint8)
    workspace = workspace[(-workspace.ctypes.data) % 256 :]
    strides = [s // 4 for s in odd.strides]  # in floats: (b, frame, bin, c)
    with pytest.raises(ValueError, match=r'stft must be aligned to 8 bytes .*address 0x'):
        emulation.istft_raw(
            plan,
            np.array(plan.floats).ctypes.data,
            np.array(plan.ints).ctypes.data,
            odd.ctypes.data,
            batch,
            channels,
            frames,
            bins,
            strides[0],
            strides[3],
            strides[1],
            strides[2],
            out.ctypes.data,
            False,
            workspace.ctypes.data,
            geometry['workspace_bytes'],
            H100_SMEM,
            4,
            0,
            0,
        )


def raw_frontend_tables(spec, x, *, floats_offset=0, ints_offset=0, workspace_offset=0):
    """emulation.frontend_raw with the plan's tables and the workspace placed `offset` bytes
    past a 256-byte boundary."""
    plan = gpu_plan(emulation, spec)

    def placed(array, offset):
        raw = np.zeros(array.nbytes + 512, np.uint8)
        start = (-raw.ctypes.data) % 256 + offset
        raw[start : start + array.nbytes] = array.view(np.uint8)
        return raw, raw.ctypes.data + start

    floats, floats_at = placed(np.array(plan.floats), floats_offset)
    ints, ints_at = placed(np.array(plan.ints), ints_offset)
    batch, time, channels = x.shape
    shape, dtype = plan.output_shape(batch, channels, time, False)
    out = np.empty(shape, dtype)
    geometry = plan.geometry(batch, channels, time, False, H100_SMEM, 4)
    workspace, workspace_at = placed(
        np.zeros(geometry['workspace_bytes'], np.uint8), workspace_offset
    )
    addresses = (floats_at, ints_at, workspace_at)
    _launch_raw(plan, addresses, x, out, geometry['workspace_bytes'], H100_SMEM, 0)
    return out


def test_misaligned_tables_and_workspace_are_refused_naming_the_address():
    spec = FrontEnd.melspectrogram(
        n_fft=512,
        hop_length=128,
        sample_rate=16000,
        n_mels=32,
        return_decibel=True,
        input_data_format='channels_last',
    )
    x = large_input(512, 7)
    with pytest.raises(ValueError, match=r'floats must be aligned to 16 bytes .*address 0x'):
        raw_frontend_tables(spec, x, floats_offset=8)
    with pytest.raises(ValueError, match=r'ints must be aligned to 4 bytes .*address 0x'):
        raw_frontend_tables(spec, x, ints_offset=2)
    with pytest.raises(ValueError, match=r'workspace must be aligned to 8 bytes .*address 0x'):
        raw_frontend_tables(spec, x, workspace_offset=4)
    # At the smallest alignments the kernels accept, the bits are the emulation's.
    np.testing.assert_array_equal(
        raw_frontend_tables(spec, x, floats_offset=16, ints_offset=4, workspace_offset=8),
        emulate(spec, x, smem_per_block=H100_SMEM),
    )


def test_gpu_module_refuses_a_misaligned_view_with_its_address(host_gpu):
    mel = FrontEnd.melspectrogram(n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    odd = misaligned_floats((1, 4000, 1)).view(FakeDeviceArray)
    with pytest.raises(
        ValueError,
        match=r'audio must be aligned to its element size \(4 bytes '
        r'for float32\): got address 0x[0-9a-f]+',
    ):
        host_gpu.compute(mel, odd)
    with pytest.raises(ValueError, match='aligned'):
        host_gpu.melspectrogram(odd, n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    spec, _, X = istft_input(dict(n_fft=64, hop_length=16), n_channels=1)
    odd_stft = misaligned_floats(X.shape + (2,), offset=4).view(np.complex64)[..., 0]
    odd_stft[...] = X
    with pytest.raises(ValueError, match=r'X must be aligned to its element size \(8 bytes'):
        host_gpu.istft(odd_stft.view(FakeDeviceArray), **istft_kwargs(spec))
    aligned = np.array(odd)  # the same values at a fresh, aligned address
    np.testing.assert_array_equal(
        np.asarray(host_gpu.compute(mel, aligned.view(FakeDeviceArray))), emulate(mel, aligned)
    )


# ----- device tables outlive the kernels that read them --------------------------------------


class FakeEvent:
    """An event whose completion the test decides."""

    def __init__(self, clock):
        self.clock, self.at = clock, None

    def record(self, stream):
        self.at = self.clock['queued'] = self.clock['queued'] + 1

    @property
    def done(self):
        return self.at is not None and self.at <= self.clock['completed']

    def synchronize(self):
        self.clock['synchronized'] = self.clock.get('synchronized', 0) + 1
        self.clock['completed'] = max(self.clock['completed'], self.at)


class Stream:
    def __init__(self, ptr):
        self.ptr, self.waits = ptr, []

    def wait_event(self, event):
        self.waits.append(event)


def fake_tables(capacity, upload_events=False, **options):
    clock = {'queued': 0, 'completed': 0}
    uploads = []

    def upload(key, stream):
        uploads.append(key)
        ready = None
        if upload_events:  # the copy's event, which `stream` waits on
            ready = FakeEvent(clock)
            ready.record(stream)
            stream.wait_event(ready)
        return f'plan {key}', object(), object(), ready

    tables = _device_tables.DeviceTables(upload, lambda: FakeEvent(clock), capacity, **options)
    return tables, clock, uploads


def test_evicted_tables_are_kept_until_their_kernels_complete():
    tables, clock, uploads = fake_tables(capacity=2)
    streams = [Stream(1), Stream(2)]
    for key in range(5):  # round robin over two streams, nothing completes
        with tables.use(key, streams[key % 2]) as entry:
            assert entry.plan == f'plan {key}'
    assert uploads == [0, 1, 2, 3, 4] and len(tables) == 2
    assert tables.retired() == 3  # 0, 1, 2 evicted while their kernels may still run
    clock['completed'] = 2  # the work of keys 0 and 1
    assert tables.retired() == 1
    clock['completed'] = clock['queued']
    assert tables.retired() == 0


def test_an_entry_in_use_is_not_released_before_its_event_is_recorded():
    tables, clock, _ = fake_tables(capacity=1)
    with tables.use('a', Stream(1)) as entry:
        with tables.use('b', Stream(2)):  # evicts 'a' while its call is still being queued
            pass
        clock['completed'] = clock['queued']
        assert tables.retired() == 1  # 'a' is pinned: its launch has not been recorded yet
        assert entry.plan == 'plan a'
    assert tables.retired() == 1  # now recorded, not yet complete
    clock['completed'] = clock['queued']
    assert tables.retired() == 0


def test_reuse_moves_an_entry_to_the_front_and_uploads_once():
    tables, _, uploads = fake_tables(capacity=2)
    for key in ['a', 'b', 'a', 'c', 'a']:
        with tables.use(key, Stream(1)):
            pass
    assert uploads == ['a', 'b', 'c']  # 'b' was the least recently used when 'c' came
    with pytest.raises(ValueError, match='capacity must be >= 1, got 0'):
        _device_tables.DeviceTables(lambda key, stream: None, lambda: None, capacity=0)


def test_an_entry_used_inside_a_capture_is_never_evicted_and_records_no_event():
    tables, clock, uploads = fake_tables(capacity=2)
    with tables.use('graph', Stream(1)):
        pass
    events_before = dict(tables._live['graph'].events)
    with tables.use('graph', Stream(9), capturing=True) as entry:
        assert entry.plan == 'plan graph'
    assert tables._live['graph'].events == events_before  # nothing recorded on stream 9
    for key in range(6):
        with tables.use(key, Stream(1)):
            pass
    assert 'graph' in tables._live and tables.captured() == 1
    assert len(tables) == 3 and uploads == ['graph', 0, 1, 2, 3, 4, 5]


def test_every_stream_waits_for_an_upload_until_it_is_done():
    tables, clock, _ = fake_tables(capacity=4, upload_events=True)
    first, second, third = Stream(1), Stream(2), Stream(3)
    with tables.use('a', first):
        pass
    ready = tables._live['a'].ready
    assert ready is not None and first.waits[0] is ready
    with tables.use('a', second):  # the copy may still be running: wait for it
        pass
    assert second.waits == [ready]
    capturing = Stream(4)
    with tables.use('a', capturing, capturing=True):  # no outside event in a capture: host
        pass
    assert capturing.waits == [] and clock['synchronized'] == 1
    assert tables._live['a'].ready is None
    with tables.use('a', third):
        pass
    assert third.waits == []
    with tables.use('b', first):
        pass
    clock['completed'] = clock['queued']
    with tables.use('b', third):  # done: nobody waits any more
        pass
    assert third.waits == [] and tables._live['b'].ready is None


def test_the_capacity_is_per_device():
    tables, _, uploads = fake_tables(capacity=2, group=lambda key: key[1])
    for round_ in range(3):
        for device in range(4):  # 4 GPUs x 2 specs: all stay cached
            for spec in ('mel', 'stft'):
                with tables.use((spec, device), Stream(1)):
                    pass
    assert len(uploads) == 8 and len(tables) == 8
    with tables.use(('mfcc', 3), Stream(1)):  # a third spec on GPU 3 evicts one of GPU 3's
        pass
    assert len(tables) == 8 and ('mel', 3) not in tables._live and ('mel', 0) in tables._live


def test_a_first_use_inside_a_capture_raises_and_uploads_nothing():
    tables, _, uploads = fake_tables(capacity=2)
    with pytest.raises(_device_tables.CaptureMiss, match='call it once before capturing'):
        with tables.use('new', Stream(1), capturing=True):
            pass
    assert uploads == [] and len(tables) == 0


class RecordingStream:
    """A stand-in for CuPy's current stream that records what it is asked to wait for."""

    def __init__(self, ptr, capturing=False):
        self.ptr, self.capturing, self.waits = ptr, capturing, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def wait_event(self, event):
        self.waits.append(event)

    def is_capturing(self):
        return self.capturing

    def synchronize(self):
        raise AssertionError("the caller's stream must never be synchronised")


def test_gpu_module_uploads_on_its_own_stream_and_the_caller_waits_on_an_event(
    host_gpu, monkeypatch
):
    caller = RecordingStream(ptr=77)
    monkeypatch.setattr(host_gpu.cupy.cuda, 'get_current_stream', lambda: caller)
    spec = FrontEnd.melspectrogram(
        n_fft=256, hop_length=100, sample_rate=16000, n_mels=24, input_data_format='channels_last'
    )
    x = to_input_layout(signal(2000, 1, seed=2), 'channels_last')
    np.testing.assert_array_equal(
        np.asarray(host_gpu.compute(spec, x.view(FakeDeviceArray))), emulate(spec, x)
    )
    assert len(caller.waits) == 1  # the upload's event
    host_gpu.compute(spec, x.view(FakeDeviceArray))
    assert len(caller.waits) == 1  # cached: nothing uploaded, nothing to wait for
    assert host_gpu._UPLOAD_STREAMS[0] is not caller


def test_gpu_mfcc_uploads_its_dct_once_per_matrix_and_device(host_gpu, monkeypatch):
    caller = RecordingStream(ptr=78)
    monkeypatch.setattr(host_gpu.cupy.cuda, 'get_current_stream', lambda: caller)
    monkeypatch.setattr(host_gpu, '_DCT', {})
    x = to_input_layout(signal(4000, 1, seed=3), 'channels_last').view(FakeDeviceArray)
    kwargs = dict(
        n_fft=512, hop_length=128, sample_rate=16000, n_mels=40, input_data_format='channels_last'
    )
    first = host_gpu.mfcc(x, n_mfcc=13, **kwargs)
    waits = len(caller.waits)  # the plan's tables and the DCT
    again = host_gpu.mfcc(x, n_mfcc=13, **kwargs)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    np.testing.assert_allclose(
        np.asarray(first), cpu.mfcc(np.asarray(x), n_mfcc=13, **kwargs), rtol=1e-4, atol=2e-3
    )
    assert len(caller.waits) == waits and len(host_gpu._DCT) == 1
    host_gpu.mfcc(x, n_mfcc=20, **kwargs)
    assert len(host_gpu._DCT) == 2  # another matrix
    caller.capturing = True
    with pytest.raises(_device_tables.CaptureMiss, match='inside a CUDA graph capture'):
        host_gpu.mfcc(x, n_mfcc=7, **kwargs)
    host_gpu.mfcc(x, n_mfcc=13, **kwargs)  # uploaded before: fine inside a capture


def test_seventy_specs_round_robin_on_two_streams_match_the_emulation(host_gpu):
    """More specs than the cache holds, alternating streams: every result is still right, and
    the cache holds its capacity."""
    x = to_input_layout(signal(3000, 1, seed=9), 'channels_last').view(FakeDeviceArray)
    streams = [host_gpu.cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    for index in range(70):
        spec = FrontEnd.melspectrogram(
            n_fft=256, hop_length=64 + index, sample_rate=16000, n_mels=16 + index % 7
        )
        with streams[index % 2]:
            ours = host_gpu.compute(spec, x)
        np.testing.assert_array_equal(np.asarray(ours), emulate(spec, np.asarray(x)))
    assert len(host_gpu._TABLES) == host_gpu._TABLES.capacity == 64


def test_the_cpu_module_is_untouched_by_gpu_alignment_rules():
    """A float32 view at an odd address is fine on the host: the CPU core reads it."""
    spec = FrontEnd.stft_magnitude(n_fft=256, hop_length=128, input_data_format='channels_last')
    x = large_input(256, 6)
    odd = misaligned_floats(x.shape)
    odd[...] = x
    np.testing.assert_array_equal(cpu.compute(spec, odd), cpu.compute(spec, x))


# ----- the C++ per-device table cache (csrc/cuda/table_cache.h) on a simulated backend -------


def log_lines(model, kind):
    return [line for line in model.take_log() if line.startswith(kind)]


def get_and_drop(model, device, keys, stream=1):
    for key in keys:
        model.drop(model.get(device, key, stream))


def test_cpp_cache_evicts_the_least_recently_used_beyond_its_capacity():
    model = emulation.TableCacheModel(32)
    get_and_drop(model, 0, range(32))
    get_and_drop(model, 0, [0])  # a hit: key 0 becomes the most recently used
    get_and_drop(model, 0, range(32, 40))
    assert model.stats(0) == dict(entries=32, captured=0, retired=0, uploads=40, releases=8)
    released = [line.split()[2] for line in log_lines(model, 'release')]
    # keys 1..8 (0 was used again); memory = key + 1000
    assert released == [f'memory={1000 + key}' for key in range(1, 9)]


def test_cpp_cache_releases_an_evicted_entry_after_the_events_of_its_calls():
    model = emulation.TableCacheModel(2)
    held = model.get(0, 10, stream=5)  # a call still being enqueued
    get_and_drop(model, 0, [10], stream=6)  # the same plan on another stream: two events
    get_and_drop(model, 0, [11, 12])  # evicts key 10 while `held` pins it
    assert model.stats(0)['retired'] == 1
    log = model.take_log()
    assert not [line for line in log if line.startswith('release')]
    model.drop(held)  # the call's kernels are enqueued: its event is recorded, then released
    log = model.take_log()
    assert log[0].startswith('record device=0 stream=5 event=')
    events = {line.split('event=')[1] for line in log[:1]}
    assert log[1].startswith('release device=0 memory=1010 events=')
    released_events = set(log[1].split('events=')[1].strip(',').split(','))
    assert events < released_events and len(released_events) == 2  # streams 5 and 6
    assert model.stats(0)['retired'] == 0


def test_cpp_cache_orders_every_stream_after_the_upload_until_it_has_completed():
    """A hit on another stream must not read tables still being copied: every call waits on
    the upload's event until it is known to be done (then no call waits any more); a capturing
    call cannot wait on an outside event, so its host waits."""
    model = emulation.TableCacheModel(4)
    model.set_uploads_complete(False)
    get_and_drop(model, 0, [1], stream=1)
    upload_event = log_lines(model, 'wait')[0].split('event=')[1]
    get_and_drop(model, 0, [1], stream=2)
    assert log_lines(model, 'wait') == [f'wait stream=2 event={upload_event}']
    model.set_capturing(stream=9, on=True)
    get_and_drop(model, 0, [1], stream=9)  # inside a capture: the host waits, once
    assert log_lines(model, 'host-wait') == [f'host-wait stream=9 event={upload_event}']
    get_and_drop(model, 0, [1], stream=3)
    assert [line for line in model.take_log() if 'wait' in line or 'ready' in line] == []
    # An upload made inside a capture has finished on return: nobody waits for it.
    get_and_drop(model, 0, [2], stream=9)
    get_and_drop(model, 0, [2], stream=4)
    assert [line for line in model.take_log() if 'wait' in line or 'ready' in line] == []
    # Once the event is known to have completed, it is dropped.
    get_and_drop(model, 0, [3], stream=1)
    assert len(log_lines(model, 'wait')) == 1  # the uploading stream's own
    model.set_uploads_complete(True)
    get_and_drop(model, 0, [3], stream=5)
    get_and_drop(model, 0, [3], stream=6)
    assert [line.split()[0] for line in model.take_log() if 'ready' in line or 'wait' in line] == [
        'ready-done'
    ]


def test_cpp_cache_destroys_a_pending_upload_event_with_its_entry():
    model = emulation.TableCacheModel(1)
    model.set_uploads_complete(False)
    get_and_drop(model, 0, [1, 2])  # key 1 evicted before its upload was known to be done
    assert len(log_lines(model, 'destroy-ready')) == 1


def test_cpp_cache_keeps_one_event_per_stream_and_reuses_it():
    model = emulation.TableCacheModel(4)
    get_and_drop(model, 0, [1, 1, 1], stream=3)
    records = log_lines(model, 'record')
    assert len(records) == 3 and len(set(records)) == 1  # the same event, re-recorded


def test_cpp_cache_never_evicts_an_entry_used_inside_a_graph_capture():
    model = emulation.TableCacheModel(32)
    model.set_capturing(stream=7, on=True)
    get_and_drop(model, 0, [100], stream=7)  # first use inside the capture: uploaded there
    get_and_drop(model, 0, [5])
    get_and_drop(model, 0, [5], stream=7)  # a hit inside a capture captures the entry too
    model.set_capturing(stream=7, on=False)
    log = model.take_log()
    assert 'upload device=0 key=100 capturing=1' in log
    assert not [line for line in log if 'stream=7' in line]  # no event recorded in a capture
    get_and_drop(model, 0, range(200, 240))  # 40 other specs: 8 evictions, none captured
    stats = model.stats(0)
    assert stats['captured'] == 2 and stats['entries'] == 34 and stats['releases'] == 8
    released = ' '.join(log_lines(model, 'release'))
    assert 'memory=1100 ' not in released and 'memory=1005 ' not in released
    get_and_drop(model, 0, [100, 5])
    assert model.stats(0)['uploads'] == 42  # both still cached


def test_cpp_caches_are_per_device():
    model = emulation.TableCacheModel(32)
    for key in range(40):
        get_and_drop(model, 0, [key])
        get_and_drop(model, 1, [key])
    for device in (0, 1):
        assert model.stats(device) == dict(
            entries=32, captured=0, retired=0, uploads=40, releases=8
        )
    releases = log_lines(model, 'release')
    assert sum('device=0' in line for line in releases) == 8
    assert sum('device=1' in line for line in releases) == 8


def test_cpp_cache_failures_are_reported_and_leave_nothing_behind():
    model = emulation.TableCacheModel(1)
    with pytest.raises(RuntimeError, match='out of memory on purpose'):
        model.get(0, 1, 1, fail_upload='out of memory on purpose')
    assert model.stats(0)['entries'] == 0
    get_and_drop(model, 0, [1])
    model.set_release_failure('cudaFreeAsync failed (emulated)')
    with pytest.raises(
        RuntimeError,
        match=r"releasing an evicted plan's tables failed: "
        r'cudaFreeAsync failed \(emulated\)',
    ):
        get_and_drop(model, 0, [2])
    model.set_release_failure('')
    get_and_drop(model, 0, [2])  # cached by the call that reported the failure
    assert model.stats(0)['uploads'] == 2
    with pytest.raises(ValueError, match='capacity must be >= 1, got 0'):
        emulation.TableCacheModel(0)


@pytest.mark.parametrize('capturing_threads', [0, 2])
def test_cpp_cache_under_concurrent_calls_never_frees_what_a_call_holds(capturing_threads):
    """8 threads (without the GIL) x 3000 calls over 40 plans with room for 8: constant
    eviction, duplicate uploads racing each other, some threads capturing."""
    model = emulation.TableCacheModel(8)
    result = model.stress(
        device=5, threads=8, rounds=3000, keys=40, capturing_threads=capturing_threads
    )
    assert result['violations'] == 0 and result['calls'] == 8 * 3000
    if capturing_threads:
        # Captured plans are never evicted: the capturing threads may pin all 40 before the
        # others evict one, so each plan may have been uploaded just once.
        assert result['uploads'] >= 40
    else:
        assert result['uploads'] > 40 and result['releases'] > 0  # evictions happened
    # Every upload is either cached or released (nothing leaked), captured ones stay.
    assert result['uploads'] == result['entries'] + result['releases']
    assert result['entries'] == result['captured'] + min(8, 40 - result['captured'])
    assert (result['captured'] > 0) == (capturing_threads > 0)


# ----- the caller's current device (csrc/cuda/device_guard.h) on a simulated runtime ---------


def test_a_call_on_another_device_restores_the_callers_device():
    result = emulation.scoped_device(current=0, active=[0], device=1)
    assert result == dict(error='', during=1, after=0, sets=[1, 0], contexts=[0, 1])


def test_a_call_on_the_current_device_sets_nothing():
    result = emulation.scoped_device(current=1, active=[1], device=1)
    assert result == dict(error='', during=1, after=1, sets=[], contexts=[1])


def test_no_context_is_created_on_a_device_the_thread_never_used():
    """cudaGetDevice says 0 on a fresh thread; restoring it would create a context on GPU 0."""
    result = emulation.scoped_device(current=0, active=[], device=2)
    assert result == dict(error='', during=2, after=2, sets=[2], contexts=[2])


def test_a_failed_switch_changes_nothing_and_names_the_device():
    result = emulation.scoped_device(current=0, active=[0], device=3, fail_set=True)
    assert result['error'] == 'cudaSetDevice(3) failed (emulated)'
    assert result['after'] == 0 and result['sets'] == [3] and result['contexts'] == [0]


# ----- local memory of the kernels (nvcc -Xptxas -v, where nvcc is installed) -----------------


def _nvcc():
    import shutil

    return shutil.which('nvcc') or next(
        (p for p in ('/usr/local/cuda/bin/nvcc',) if __import__('os').path.exists(p)), None
    )


@pytest.mark.skipif(_nvcc() is None, reason='nvcc is not installed')
def test_no_kernel_has_a_stack_frame(tmp_path):
    """A stack frame is local memory reserved per resident thread at the first launch (752 bytes
    in the two hot kernels once: ~200 MB on an H100). ptxas must report none, for the oldest
    and the newest architecture the wheel ships."""
    import re
    import subprocess
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / 'csrc' / 'cuda' / 'kernels.cu'
    for arch in ('75', '90'):
        result = subprocess.run(
            [
                _nvcc(),
                '-O3',
                '-DNDEBUG',
                '-std=c++17',
                '--fmad=false',
                '-cubin',
                f'-gencode=arch=compute_{arch},code=sm_{arch}',
                '-Xptxas',
                '-v',
                '-o',
                str(tmp_path / f'k{arch}.cubin'),
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        frames, kernel = [], None
        for line in result.stderr.splitlines():
            entry = re.search(r"Compiling entry function '\w*\d([a-z_]+_kernel)E", line)
            kernel = entry.group(1) if entry else kernel
            usage = re.search(r'(\d+) bytes stack frame, (\d+) bytes spill stores', line)
            if usage and kernel:
                frames.append((kernel, usage.group(1), usage.group(2)))
                kernel = None
        names = {name for name, _, _ in frames}
        assert {
            'frontend_kernel',
            'istft_kernel',
            'overlap_add_kernel',
            'clamp_kernel',
            'init_max_kernel',
            'pcen_kernel',
        } <= names, result.stderr[-3000:]
        assert [(n, s, sp) for n, s, sp in frames if s != '0' or sp != '0'] == [], arch
