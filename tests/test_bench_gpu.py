"""The GPU benchmark (bench/gpu.py), on a machine without a GPU.

What runs anywhere is checked here: the CuPy composition written against NumPy (the same code the
benchmark runs with CuPy) against kapre_fast.reference and kapre_fast.cpu; the bandwidth and
GB/s arithmetic; accuracy.compare in pieces; the one-line exit without CuPy or a GPU; and a whole
run of the script on stand-ins (NumPy behind a `cupy` module with host-timed events, and
kapre_fast.cpu behind `kapre_fast.gpu`) down to the JSON and markdown it writes. The timings of
that run mean nothing; the real run needs a GPU (bench/README.md).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec('bench') is None:
    sys.path.append(str(REPO))  # after site-packages: an installed kapre_fast stays first

from bench import accuracy, configs  # noqa: E402
from bench import gpu as gpu_bench  # noqa: E402
from helpers import decibel_error, peak_relative_error, to_input_layout  # noqa: E402
from kapre_fast import FrontEnd, cpu, reference  # noqa: E402

SCRIPT = REPO / 'bench' / 'gpu.py'
# H100 SXM5: HBM3 at 2619 MHz on a 5120-bit bus.
H100_CLOCK_KHZ, H100_BUS_BITS = 2_619_000, 5120
H100_BYTES_PER_S = 2 * 2_619_000e3 * 5120 / 8


# ----- the composition, on NumPy -----------------------------------------------------------------


@pytest.mark.parametrize('name', list(configs.CONFIGS))
def test_composition_computes_each_configuration_like_the_reference(name):
    config = configs.CONFIGS[name]
    sized = config.sized(quick=True)
    audio = configs.synthesize(configs.Sized(config, 2, sized.seconds))
    spec = gpu_bench.front_end(config)
    ours = gpu_bench.composition(spec, np)(audio)
    truth = reference.compute(spec, audio)
    assert ours.dtype == np.float32 and ours.shape == truth.shape
    assert ours.shape == (2, sized.n_frames, spec.n_features, 1)
    fast = cpu.compute(spec, audio)
    for other, tolerance in ((truth, 1e-5), (fast, 2e-5)):
        result = accuracy.compare(ours[..., 0], other[..., 0], config)
        assert result['comparable'] and 'non_finite' not in result
        if config.decibel:
            assert result['max_abs_db_above_floor'] < 0.01
        else:
            assert result['max_rel'] < tolerance


@pytest.mark.parametrize(
    'make, kwargs',
    [
        (
            FrontEnd.melspectrogram,
            dict(
                n_fft=256,
                win_length=200,
                hop_length=64,
                pad_begin=True,
                pad_end=True,
                sample_rate=16000,
                n_mels=40,
                return_decibel=True,
                db_amin=1e-4,
                db_ref_value=2.0,
                db_dynamic_range=60.0,
            ),
        ),
        (FrontEnd.stft_magnitude, dict(n_fft=128, win_length=200, hop_length=50)),  # rfft crops
        (
            FrontEnd.log_frequency_spectrogram,
            dict(n_fft=1024, hop_length=300, pad_end=True, sample_rate=16000, return_decibel=True),
        ),
        (
            FrontEnd.stft_magnitude,
            dict(n_fft=400, hop_length=100, window_name='vorbis_window', return_decibel=True),
        ),
    ],
)
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_composition_follows_the_spec_padding_windows_and_layouts(
    make, kwargs, data_format, noise_batch
):
    spec = make(input_data_format=data_format, output_data_format=data_format, **kwargs)
    x = to_input_layout(noise_batch(n_examples=3, n_samples=5000, n_channels=2), data_format)
    ours = gpu_bench.composition(spec, np)(x)
    truth = reference.compute(spec, x)
    assert ours.shape == truth.shape and ours.flags.c_contiguous
    if spec.return_decibel:
        assert decibel_error(ours, truth, percentile=100, within=spec.db_dynamic_range - 20) < 0.01
    else:
        assert peak_relative_error(ours, truth) < 1e-5


def test_composition_reads_strided_input_in_place(noise_batch):
    spec = FrontEnd.melspectrogram(
        n_fft=512,
        hop_length=128,
        sample_rate=16000,
        n_mels=32,
        return_decibel=True,
        input_data_format='channels_first',
        output_data_format='channels_last',
    )
    x = noise_batch(n_examples=2, n_samples=4000, n_channels=3)[:, ::2, ::-1]  # a strided view
    run = gpu_bench.composition(spec, np)
    np.testing.assert_array_equal(run(x), run(np.ascontiguousarray(x)))
    assert decibel_error(run(x), reference.compute(spec, x), percentile=100, within=60) < 0.01


def test_composition_refuses_other_outputs():
    with pytest.raises(ValueError, match='magnitude outputs only'):
        gpu_bench.composition(FrontEnd.stft(n_fft=256), np)


# ----- bandwidth and GB/s ------------------------------------------------------------------------


def test_bandwidth_from_the_device_properties():
    bandwidth = gpu_bench.device_bandwidth(
        {'memoryClockRate': H100_CLOCK_KHZ, 'memoryBusWidth': H100_BUS_BITS}
    )
    assert bandwidth['bytes_per_s'] == pytest.approx(H100_BYTES_PER_S)
    assert bandwidth['bytes_per_s'] / 1e9 == pytest.approx(3352.32)
    assert bandwidth['source'] == 'cudaGetDeviceProperties'


def test_bandwidth_asks_the_attribute_where_cuda_13_dropped_the_clock():
    asked = []

    def attribute(code):
        asked.append(code)
        return {gpu_bench.ATTRIBUTE_MEMORY_CLOCK_KHZ: H100_CLOCK_KHZ}[code]

    bandwidth = gpu_bench.device_bandwidth({'memoryBusWidth': H100_BUS_BITS}, attribute)
    assert asked == [gpu_bench.ATTRIBUTE_MEMORY_CLOCK_KHZ]
    assert bandwidth['bytes_per_s'] == pytest.approx(H100_BYTES_PER_S)
    assert bandwidth['source'] == 'cudaDeviceGetAttribute, cudaGetDeviceProperties'


@pytest.mark.parametrize(
    'properties, attribute',
    [
        ({}, None),
        ({'memoryClockRate': 0, 'memoryBusWidth': H100_BUS_BITS}, None),
        ({'memoryBusWidth': H100_BUS_BITS}, lambda code: 1 / 0),
    ],
)
def test_unknown_bandwidth_is_none_with_the_reason(properties, attribute):
    bandwidth = gpu_bench.device_bandwidth(properties, attribute)
    assert bandwidth['bytes_per_s'] is None
    assert 'memory_clock_khz' in bandwidth['why']
    if attribute is not None:
        assert 'ZeroDivisionError' in bandwidth['why']


def test_achieved_gbs_counts_the_input_read_and_the_output_written():
    config = configs.CONFIGS['A']
    work = configs.Sized(config, 128, config.seconds).work()
    samples, frames = 220500, 1 + (220500 - 2048) // 512
    assert work['input_bytes'] == 4 * 128 * samples
    assert work['output_bytes'] == 4 * 128 * frames * 128
    assert gpu_bench.boundary_bytes(work) == work['input_bytes'] + work['output_bytes']
    assert gpu_bench.achieved_gbs(work, 0.002) == pytest.approx(
        (4 * 128 * samples + 4 * 128 * frames * 128) / 0.002 / 1e9
    )


def _record(method, seconds, config='A', batch=128):
    return {
        'config': config,
        'batch': batch,
        'method': method,
        'label': method,
        'status': 'ok',
        'median_s': seconds,
    }


@pytest.mark.parametrize('cupy_seconds, met', [(0.012, True), (0.008, False)])
def test_derived_figures_and_the_done_bar(cupy_seconds, met):
    config = configs.CONFIGS['A']
    work = configs.Sized(config, 128, config.seconds).work()
    results = {
        'quick': False,
        'gpu': {'bandwidth': {'bytes_per_s': H100_BYTES_PER_S}},
        'configs': {'A': {'work': {'128': work}}},
        'results': [
            _record('kapre_fast_gpu', 0.002),
            _record('cupy', cupy_seconds),
            {**_record('torch', 0.0), 'status': 'unavailable', 'reason': 'no CUDA'},
        ],
    }
    gpu_bench.add_derived(results)
    fast = results['results'][0]['derived']
    assert fast['vs_cupy'] == pytest.approx(cupy_seconds / 0.002) and fast['vs_torch'] is None
    assert fast['gbs'] == pytest.approx(gpu_bench.achieved_gbs(work, 0.002))
    assert fast['peak_fraction'] == pytest.approx(fast['gbs'] * 1e9 / H100_BYTES_PER_S)
    assert fast['x_realtime'] == pytest.approx(1280 / 0.002)
    assert 'derived' not in results['results'][2]
    bar = results['done_bar']
    assert bar['met'] is met and bar['measured'] == pytest.approx(cupy_seconds / 0.002)
    assert gpu_bench._done_bar_lines(results)[0].endswith('**met**.' if met else '**NOT met**.')


def test_the_done_bar_is_not_judged_on_a_quick_run_or_without_the_measurement():
    results = {
        'quick': True,
        'gpu': {'bandwidth': {'bytes_per_s': None}},
        'configs': {},
        'results': [],
    }
    gpu_bench.add_derived(results)
    assert results['done_bar']['met'] is None and 'quick' in results['done_bar']['why']
    results['quick'] = False
    gpu_bench.add_derived(results)
    assert results['done_bar']['met'] is None and 'not measured' in results['done_bar']['why']


# ----- accuracy.compare in pieces ----------------------------------------------------------------


@pytest.mark.parametrize('name', ['A', 'C'])
def test_compare_gives_the_same_figures_in_pieces(name):
    config = configs.CONFIGS[name]
    rng = np.random.default_rng(3)
    truth = rng.random((5, 30, 12)) * 3.0
    if config.decibel:
        truth = accuracy.kapre_db(truth)
    ours = (truth + rng.standard_normal(truth.shape) * 1e-3).astype(np.float32)
    whole = accuracy.compare(ours, truth, config)
    for chunk in (1, 2, 4, 5, 99):
        assert accuracy.compare(ours, truth, config, chunk=chunk) == whole
    ours[3, 2, 1] = np.nan
    for chunk in (None, 2):
        broken = accuracy.compare(ours, truth, config, chunk=chunk)
        assert broken['non_finite'] == 1 and np.isnan(broken['max_abs_db'])


def test_compare_reports_a_shape_mismatch():
    config = configs.CONFIGS['A']
    result = accuracy.compare(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)), config)
    assert result == {'comparable': False, 'why': "shape (2, 3, 4) differs from kapre's (2, 3, 5)"}


# ----- no CuPy, no GPU: one line, status 2 ------------------------------------------------------


def _assert_one_line_error(stderr, *words):
    lines = stderr.strip().splitlines()
    assert 'Traceback' not in stderr
    assert len(lines) == 1 and lines[0].startswith('bench/gpu.py: error:'), stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_script_without_cupy_exits_2_with_one_line(tmp_path):
    if importlib.util.find_spec('cupy') is not None:
        pytest.skip('CuPy is installed here (the blocked-import test covers this case)')
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--out', str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, 'CuPy')
    assert not any(tmp_path.iterdir())


def test_script_with_cupy_blocked_exits_2_with_one_line(tmp_path):
    # sys.modules['cupy'] = None makes `import cupy` fail even where CuPy is installed.
    code = (
        "import runpy, sys; sys.modules['cupy'] = None; "
        f"sys.argv = [{str(SCRIPT)!r}, '--out', {str(tmp_path)!r}]; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, 'CuPy', 'cupy-cuda13x')


def stub_cupy(device_count=1):
    """A `cupy` module for host-only runs: NumPy's functions, events timed on the host, and an
    H100-like device whose properties lack memoryClockRate (as under CUDA 13)."""
    module = types.ModuleType('cupy')
    module.__getattr__ = lambda name: getattr(np, name)  # PEP 562: the rest is NumPy
    module.__version__ = 'stub'

    class Event:
        def record(self, stream=None):
            self.seconds = time.perf_counter()

        def synchronize(self):
            pass

    def device_count_or_error():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = types.SimpleNamespace(
        getDeviceCount=device_count_or_error,
        getDeviceProperties=lambda index: {
            'name': b'Stub H100',
            'major': 9,
            'minor': 0,
            'multiProcessorCount': 132,
            'totalGlobalMem': 80 * 2**30,
            'memoryBusWidth': H100_BUS_BITS,
        },
        deviceGetAttribute=lambda code, index: {
            gpu_bench.ATTRIBUTE_MEMORY_CLOCK_KHZ: H100_CLOCK_KHZ
        }[code],
        driverGetVersion=lambda: 13000,
        runtimeGetVersion=lambda: 13000,
    )
    stream = types.SimpleNamespace(synchronize=lambda: None)
    module.cuda = types.SimpleNamespace(
        runtime=runtime,
        Event=Event,
        Device=lambda *index: types.SimpleNamespace(id=0),
        get_elapsed_time=lambda start, end: (end.seconds - start.seconds) * 1e3,
        get_current_stream=lambda: stream,
    )
    pool = types.SimpleNamespace(free_all_blocks=lambda: None)
    module.get_default_memory_pool = lambda: pool
    return module


def stub_kapre_fast_gpu():
    """`kapre_fast.gpu` for host-only runs: kapre_fast.cpu's functions."""
    module = types.ModuleType('kapre_fast.gpu')
    for name in configs.FAST_FUNCTIONS.values():
        setattr(
            module,
            name,
            functools.partial(
                lambda function, x, **kwargs: getattr(cpu, function)(x, **kwargs), name
            ),
        )
    module.device_info = lambda index: {'smem_per_block': 232448, 'sm_count': 132}
    return module


def install_stand_ins(setitem, set_attribute, torch=None):
    """Puts the stand-ins in place (monkeypatch's setitem/setattr, or plain ones in a
    subprocess). With `torch`, the torch method runs on the host, timed by host events."""
    cupy = stub_cupy()
    setitem(sys.modules, 'cupy', cupy)
    setitem(sys.modules, 'kapre_fast.gpu', stub_kapre_fast_gpu())
    if torch is None:
        set_attribute(gpu_bench, 'load_torch', lambda: (None, 'torch stubbed out'))
    else:
        set_attribute(gpu_bench, 'load_torch', lambda: (torch, None))
        set_attribute(gpu_bench, 'TorchClock', lambda torch: gpu_bench.CupyClock(cupy))


def test_no_gpu_exits_2_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, 'cupy', stub_cupy(RuntimeError('cudaErrorNoDevice')))
    assert gpu_bench.main(['--out', str(tmp_path)]) == 2
    _assert_one_line_error(capsys.readouterr().err, 'no usable CUDA GPU', 'cudaErrorNoDevice')
    monkeypatch.setitem(sys.modules, 'cupy', stub_cupy(0))
    assert gpu_bench.main(['--out', str(tmp_path)]) == 2
    _assert_one_line_error(capsys.readouterr().err, 'no CUDA GPU found')


def test_no_cuda_build_exits_2_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, 'cupy', stub_cupy())
    monkeypatch.setitem(sys.modules, 'kapre_fast.gpu', None)
    assert gpu_bench.main(['--out', str(tmp_path)]) == 2
    _assert_one_line_error(capsys.readouterr().err, 'kapre_fast.gpu is not usable')


def test_bad_arguments_are_usage_errors(capsys):
    for argv in (['--configs', 'Z'], ['--batches', '0'], ['--batches', 'x'], ['--repeats', '0']):
        with pytest.raises(SystemExit) as exit_info:
            gpu_bench.parse_args(argv)
        assert exit_info.value.code == 2
    assert gpu_bench.parse_args(['--batches', '16,1,16']).batches == [16, 1]


# ----- a whole run on the stand-ins --------------------------------------------------------------


def test_a_whole_run_on_stand_ins_writes_json_and_markdown(monkeypatch, capsys, tmp_path):
    install_stand_ins(monkeypatch.setitem, monkeypatch.setattr)
    argv = [
        '--quick',
        '--configs',
        'A,C',
        '--batches',
        '1,3',
        '--repeats',
        '2',
        '--out',
        str(tmp_path),
    ]
    assert gpu_bench.main(argv) == 0
    captured = capsys.readouterr()
    written = sorted(path.name for path in (tmp_path / 'quick').iterdir())
    assert len(written) == 2 and written[0].endswith('_gpu_quick.json')
    assert written[1] == written[0].replace('.json', '.md')
    results = json.loads((tmp_path / 'quick' / written[0]).read_text())
    text = (tmp_path / 'quick' / written[1]).read_text()
    assert text.strip() in captured.out

    assert results['gpu']['name'] == 'Stub H100'
    assert results['gpu']['bandwidth']['bytes_per_s'] == pytest.approx(H100_BYTES_PER_S)
    assert results['gpu']['cuda_runtime'] == '13.0'
    assert results['batches'] == [1, 3] and list(results['configs']) == ['A', 'C']
    assert results['done_bar']['met'] is None
    index = {(r['config'], r['batch'], r['method']): r for r in results['results']}
    assert len(index) == 2 * 2 * 4
    for name in ('A', 'C'):
        for batch in (1, 3):
            fast = index[name, batch, 'kapre_fast_gpu']
            ours = index[name, batch, 'cupy']
            assert fast['status'] == ours['status'] == 'ok', (fast, ours)
            assert fast['repeats'] == 2 and fast['median_s'] > 0
            assert ours['derived']['gbs'] > 0 and ours['derived']['vs_cupy'] == 1.0
            accuracy_figures = ours['accuracy']
            assert accuracy_figures['comparable']
            if name == 'A':
                assert accuracy_figures['max_abs_db_above_floor'] < 0.01
            else:
                assert accuracy_figures['max_rel'] < 2e-5
            for method in ('torch', 'kapre_fast_torch'):
                torch = index[name, batch, method]
                assert torch['status'] == 'unavailable' and torch['reason'] == 'torch stubbed out'
            assert f'{name} batch {batch:>4}' in captured.err

    assert 'QUICK smoke run' in text and 'Stub H100' in text and '3352 GB/s' in text
    assert 'quick run: not a measurement' in text
    assert '| A | 1 |' in text and '| C | 3 |' in text
    assert '| 1 | torch.stft + matmul | unavailable |' in text
    assert '| 1 | kapre_fast.torch (CUDA) | unavailable |' in text
    assert 'torch stubbed out' in text


def _check_torch_accuracy(record):
    """A torch-side record agrees with the reference: finite and comparable, within 0.01 dB
    above the floor (config B) or 2e-5 of the peak (the others)."""
    figures = record['accuracy']
    assert figures['comparable'] and 'non_finite' not in figures, figures
    if record['config'] == 'B':
        assert figures['max_abs_db_above_floor'] < 0.01
    else:
        assert figures['max_rel'] < 2e-5


def test_the_torch_method_on_the_host_computes_the_same_features(tmp_path):
    # In a subprocess: torch stays out of the test process (TensorFlow shares it).
    if importlib.util.find_spec('torch') is None:
        pytest.skip('torch is not installed')
    argv = [
        '--quick',
        '--configs',
        'B,C',
        '--batches',
        '1,2',
        '--repeats',
        '2',
        '--out',
        str(tmp_path),
    ]
    code = (
        f'import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); '
        'import torch, test_bench_gpu as t; '
        't.install_stand_ins(lambda m, k, v: m.__setitem__(k, v), setattr, torch); '
        f'sys.exit(t.gpu_bench.main({argv!r}))'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(next((tmp_path / 'quick').glob('*.json')).read_text())
    torch_records = [r for r in results['results'] if r['method'] == 'torch']
    assert len(torch_records) == 4
    for record in torch_records:
        assert record['status'] == 'ok', record
        assert 'DLPack' in record['note'] and record['derived']['vs_torch'] == 1.0
        _check_torch_accuracy(record)
    ours = [r for r in results['results'] if r['method'] == 'kapre_fast_torch']
    assert len(ours) == 4
    for record in ours:  # kapre_fast.torch's CPU operator on the host stand-ins
        assert record['status'] == 'ok', record
        assert 'kapre_fast.torch.' in record['note'] and 'DLPack' in record['note']
        _check_torch_accuracy(record)
    assert (
        'torch 2' in (tmp_path / 'quick' / next((tmp_path / 'quick').glob('*.md')).name).read_text()
    )
