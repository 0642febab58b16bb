"""The CPU benchmark runner (bench/run.py): it times the installed kapre_fast, never the source
folder that shadows it, and a run in which kapre_fast failed exits non-zero without being
published (no latest.md, results only under failed/).

The two runs of the script import TensorFlow (kapre, the reference, always runs): they are kept to
one small configuration and one kapre_fast method each.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'bench' / 'run.py'
if importlib.util.find_spec('bench') is None:
    sys.path.append(str(REPO))  # after site-packages: an installed kapre_fast stays first

from bench import run as bench_run  # noqa: E402

pytest.importorskip('kapre')  # the runner's reference method


def run_bench(out, *args, pythonpath=None):
    """bench/run.py on config B at 1 thread with kapre_fast.cpu, from the checkout's root (where
    Python would import the source folder); returns (completed process, results JSON)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = pythonpath or str(REPO)
    command = [
        sys.executable,
        str(SCRIPT),
        '--configs',
        'B',
        '--threads',
        '1',
        '--methods',
        'kapre_fast_cpu',
        '--no-plot',
        '--out',
        str(out),
        *args,
    ]
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    written = sorted(out.rglob('*.json'))
    assert len(written) == 1, (written, completed.stderr[-3000:])
    return completed, json.loads(written[0].read_text())


def test_quick_run_times_the_installed_build_even_from_the_checkout(tmp_path):
    # Where the installed package is, whatever this process's own sys.path (PYTHONPATH) says.
    elsewhere = [p for p in sys.path if Path(p or '.').resolve() != REPO]
    installed = importlib.machinery.PathFinder.find_spec('kapre_fast', elsewhere)
    if installed is None:
        pytest.skip('kapre_fast is not installed outside the checkout (an editable install)')
    completed, results = run_bench(tmp_path, '--quick')
    assert completed.returncode == 0, completed.stderr[-3000:]
    source = Path(results['kapre_fast_build']['source'])
    assert source != REPO / 'kapre_fast' and source == Path(installed.origin).parent
    ours = [r for r in results['results'] if r['method'] == 'kapre_fast_cpu']
    assert ours and all(r['status'] == 'ok' and r['median_s'] > 0 for r in ours), ours
    assert not (tmp_path / 'latest.md').exists()  # a quick run is never published


def test_a_run_where_kapre_fast_failed_exits_non_zero_and_is_not_published(tmp_path):
    # The source folder without compiled modules, first on the path: kapre_fast.cpu imports but
    # every call raises ImportError (what the first run did).
    shadow = tmp_path / 'shadow'
    shutil.copytree(
        REPO / 'kapre_fast',
        shadow / 'kapre_fast',
        ignore=shutil.ignore_patterns('*.so', '_build_info.json', '__pycache__'),
    )
    out = tmp_path / 'results'
    out.mkdir()
    (out / 'latest.md').write_text('the last good run\n')
    completed, results = run_bench(out, pythonpath=str(shadow))
    assert completed.returncode == 1, completed.stderr[-3000:]
    assert 'FAILED' in completed.stderr and 'latest.md unchanged' in completed.stderr
    assert (out / 'latest.md').read_text() == 'the last good run\n'
    assert [p.name for p in out.iterdir() if p.is_file()] == ['latest.md']
    assert results['kapre_fast_failed'] is True
    assert any(p.parent.name == 'failed' for p in out.rglob('*.md'))
    ours = next(r for r in results['results'] if r['method'] == 'kapre_fast_cpu')
    assert ours['status'] == 'error' and '_core' in ours['reason']
    kapre = next(r for r in results['results'] if r['method'] == 'kapre')
    assert kapre['status'] == 'ok'  # the failure of one method does not stop the others


def _record(method, status):
    return {'method': method, 'status': status, 'config': 'A', 'threads': 1, 'reason': 'why'}


@pytest.mark.parametrize(
    'statuses, expected',
    [
        ({'kapre': 'ok', 'kapre_fast_cpu': 'ok', 'torch': 'unavailable'}, (0, 0)),
        ({'kapre': 'ok', 'kapre_fast_op': 'unavailable'}, (1, 0)),  # kapre_fast must run
        ({'kapre': 'ok', 'kapre_fast_cpu': 'error', 'librosa': 'error'}, (1, 1)),
        ({'kapre': 'error', 'kapre_fast_cpu': 'ok'}, (0, 1)),
    ],
)
def test_failures_sorts_kapre_fast_from_the_baselines(statuses, expected):
    results = {'results': [_record(method, status) for method, status in statuses.items()]}
    ours, others = bench_run.failures(results)
    assert (len(ours), len(others)) == expected


@pytest.mark.parametrize('quick', [False, True])
@pytest.mark.parametrize('failing', [None, 'kapre_fast_cpu', 'librosa'])
def test_publish_decides_folder_latest_and_status(monkeypatch, tmp_path, quick, failing):
    written = {}

    def fake_write(results, folder, latest, plot_chart=True):
        written.update(folder=folder, latest=latest)
        return {'markdown_text': ''}

    monkeypatch.setattr(bench_run.report, 'write', fake_write)
    methods = ['kapre', 'kapre_fast_cpu', 'librosa']
    results = {
        'quick': quick,
        'results': [_record(m, 'error' if m == failing else 'ok') for m in methods],
    }
    status = bench_run.publish(results, tmp_path)
    assert status == (0 if failing is None else 1)
    if failing == 'kapre_fast_cpu':
        assert written == {'folder': tmp_path / 'failed', 'latest': False}
    else:
        assert written == {'folder': tmp_path / 'quick' if quick else tmp_path, 'latest': not quick}


def _quick_run(tmp_path, script, *arguments):
    """bench/<script> --quick <arguments> --out tmp_path: it exits 0 and writes its JSON, its
    Markdown and its chart (a PNG) under tmp_path/quick; returns (the JSON's results, the three
    files in that order)."""
    command = [sys.executable, str(REPO / 'bench' / script), '--quick', *arguments]
    command += ['--out', str(tmp_path)]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = sorted((tmp_path / 'quick').iterdir())
    assert [p.suffix for p in written] == ['.json', '.md', '.png'], written
    assert written[2].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'  # the chart
    results = json.loads(written[0].read_text())
    return results, written


# ----- bench/front_end_extras.py (#15: MFCC, mel with compat='librosa', PCEN, trainable) -------


def test_front_end_extras_quick_run_checks_every_peer_and_writes_its_files(tmp_path):
    """The script on config A's smoke size: every peer that exists ran, agreed with librosa
    before it was timed (the limits are the script's own), and both files were written."""
    results, written = _quick_run(tmp_path, 'front_end_extras.py', '--only', 'mfcc,mel,pcen')
    assert results['quick'] is True and results['threads'] == 1
    assert results['machine']['date_utc'] and results['machine']['cpu_model']
    comparisons = {c['key']: c for c in results['comparisons']}
    assert list(comparisons) == ['mfcc', 'mel', 'pcen']
    for key, comparison in comparisons.items():
        rows = {row['method']: row for row in comparison['rows']}
        for method in ('kapre_fast_cpu', 'librosa', 'torch'):  # torch: a test dependency
            row = rows[method]
            assert row['status'] == 'ok' and row['median_s'] > 0 and row['repeats'] >= 3, row
            assert row['agrees'] and 0 <= row['max_difference'] <= row['limit'], row
        assert rows['librosa']['max_difference'] == 0  # the reference itself
        assert rows['kapre_fast_cpu']['ratio_to_first'] == 1.0
        assert rows['kapre_fast_cpu']['max_difference'] > 0  # compared, not copied
        assert rows['kapre_fast_torch']['status'] in ('ok', 'unavailable'), rows
        assert comparison['title'] in written[1].read_text()


def test_front_end_extras_does_not_time_a_peer_that_disagrees():
    import numpy as np

    from bench import front_end_extras as extras
    from bench import timing

    reference = np.linspace(-3.0, 5.0, 60).reshape(3, 4, 5)
    close = reference + 4e-3  # limit: 1e-3 + 1e-3 x 5

    def broken():
        raise RuntimeError('no such kernel')

    comparison = extras.Comparison(
        'toy',
        'toy',
        'ref',
        'units',
        atol=1e-3,
        rtol=1e-3,
        peers=[
            extras.Peer('ours', 'ours', lambda: close, lambda x: x),
            extras.Peer('ref', 'reference', lambda: reference, lambda x: x),
            extras.Peer('off', 'off by 1e-2', lambda: reference + 1e-2, lambda x: x),
            extras.Peer('shape', 'one frame short', lambda: reference[:, :3], lambda x: x),
            extras.Peer('part', 'a part, not compared', lambda: 0),
            extras.Peer('missing', 'missing', reason='not installed'),
            extras.Peer('broken', 'raises', broken, lambda x: x),
        ],
    )
    rows = {row['method']: row for row in extras.measure(comparison, timing.QUICK)}
    assert rows['ours']['agrees'] and rows['ours']['status'] == 'ok'
    assert rows['ours']['max_difference'] == pytest.approx(4e-3)
    assert rows['ours']['limit'] == pytest.approx(6e-3)
    for key in ('off', 'shape'):
        assert rows[key]['status'] == 'mismatch' and not rows[key]['agrees'], rows[key]
        assert 'median_s' not in rows[key]  # never timed
    assert rows['part']['status'] == 'ok' and 'max_difference' not in rows['part']
    assert rows['missing'] == {
        'method': 'missing',
        'label': 'missing',
        'status': 'unavailable',
        'reason': 'not installed',
    }
    assert rows['broken']['status'] == 'error' and 'no such kernel' in rows['broken']['reason']
    assert rows['ours']['ratio_to_first'] == 1.0
    assert rows['ref']['ratio_to_first'] == rows['ref']['median_s'] / rows['ours']['median_s']


# ----- bench/stft_paths.py (#18: the complex STFT and inverse STFT paths) ---------------------


def test_stft_paths_quick_run_checks_every_path_against_kapre_and_writes_its_files(tmp_path):
    """The script on config B's smoke size at 1 thread: every forward and inverse path ran,
    agreed with kapre's output within the script's float32 limit before it was timed, and the
    ratios are to kapre's and XLA's medians of the same run."""
    results, written = _quick_run(tmp_path, 'stft_paths.py', '--configs', 'B', '--threads', '1')
    assert results['quick'] is True and results['thread_counts'] == [1]
    assert results['machine']['load_average_before'] is not None
    records = {r['direction']: r for r in results['records']}
    assert set(records) == {'stft', 'istft'}
    for direction, record in records.items():
        assert record['config'] == 'B' and record['threads'] == 1
        rows = {row['method']: row for row in record['rows']}
        assert set(rows) == {'kapre', 'kapre_xla', 'kapre_fast_cpu', 'kapre_fast_op'}
        assert rows['kapre']['max_difference'] == 0 and rows['kapre']['vs_kapre'] == 1.0
        for key in ('kapre_fast_cpu', 'kapre_fast_op'):
            row = rows[key]
            assert row['status'] == 'ok' and row['repeats'] >= 3 and row['gflops'] > 0, row
            # Compared, not copied, and within float32 rounding of kapre's largest magnitude.
            assert 0 < row['max_difference'] <= row['limit'], row
            assert row['vs_kapre'] == rows['kapre']['median_s'] / row['median_s']
            assert row['vs_xla'] == rows['kapre_xla']['median_s'] / row['median_s']
        assert (
            f'| B | {direction} | 1 | {rows["kapre_fast_cpu"]["label"]} |' in written[1].read_text()
        )
    assert '% of peak' in written[1].read_text()


def test_mca_models_the_hot_loops(capsys):
    """bench/mca.py finds every modelled loop in g++'s assembly and llvm-mca models them: on
    Intel the single FMA chain runs at the FMA latency (about 4 cycles a band-bin), four bands
    side by side at throughput (about 1); the dB loop, PCEN's smoother and the overlap-add get a
    figure each; the measured column reads the newest stages run."""
    if not (shutil.which('g++') and shutil.which('llvm-mca')):
        pytest.skip('g++ or llvm-mca is not on PATH')
    sys.path.insert(0, str(REPO))
    try:
        from bench import mca
    finally:
        sys.path.remove(str(REPO))
    assert mca.main(['--cpus', 'skylake-avx512']) == 0
    rows = {
        cells[1].strip(): [cell.strip() for cell in cells[2:-1]]
        for cells in (line.split('|') for line in capsys.readouterr().out.splitlines())
        if len(cells) > 4 and cells[1].strip() in mca.LOOPS
    }
    assert set(rows) == set(mca.LOOPS)
    one = float(rows['filterbank, one band (one FMA chain)'][1])
    four = float(rows['filterbank, four bands side by side'][1])
    assert one > 3.0 and four < 1.5, rows
    for label in ('dB + running maximum', 'PCEN smoother step', 'istft overlap-add'):
        assert float(rows[label][1]) > 0, rows
    if sorted((REPO / 'bench' / 'results').glob('stages-*.json')):
        assert 'A ' in rows['dB + running maximum'][2], rows


def test_stage_table_reads_the_counters():
    """bench/stages.py's table: each stage's share of the counted time and the filterbank's
    counts per multiply-add, from a worker's records (the instrumented build is the bench's)."""
    sys.path.insert(0, str(REPO))
    try:
        from bench import stages
    finally:
        sys.path.remove(str(REPO))
    record = {
        'config': 'D',
        'counts': {'transform': 600, 'filterbank': 200, 'decibel': 100, 'store': 100, 'tiles': 20},
        'repeats': 2,
        'tiles_per_call': 10.0,
        'median_call_ms': 1.0,
        'band_bins_per_tile': 5,
    }
    text = stages.table([record])
    assert '| D | transform | 60.0% | 60.00 | 30 |' in text  # 1 ms / 10 tiles * 60%
    assert '| D | filterbank | 20.0% | 20.00 | 10 |' in text
    assert '| D | 5 | 2.000 |' in text  # 200 counts / 2 calls / 10 tiles / 5 band-bins


def test_release_core_has_no_stage_counters():
    from kapre_fast import _core

    assert _core.stage_counts() is None  # KAPRE_FAST_STAGE_TIMING is for benchmark builds only


def test_overhead_bench_times_every_installed_binding(tmp_path):
    """bench/overhead.py runs each binding on the same input and reports its excess over
    kapre_fast.cpu (a smoke run: 3 calls; the figures are bench/results')."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / 'bench' / 'overhead.py'),
            '--calls',
            '3',
            '--out',
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(next(tmp_path.glob('overhead-*.json')).read_text())
    timings = record['us_per_call']
    assert timings['kapre_fast.cpu (NumPy)'] > 0
    for name in ('torch', 'jax'):
        if importlib.util.find_spec(name) is not None:
            assert any(key.startswith(f'kapre_fast.{name}') for key in timings), timings
    assert all(value > 0 for value in timings.values())


def test_streaming_quick_run_checks_every_method_and_writes_its_files(tmp_path):
    """bench/streaming.py --quick: every method (the streams, the jitted jax step, the Keras
    layer, the exported TFLite and ONNX steps, the peers' ring buffers) agreed with the offline
    kapre_fast.cpu mel before it was timed, and both files were written under quick/."""
    pytest.importorskip('onnxruntime')
    pytest.importorskip('ai_edge_litert')
    command = [
        sys.executable,
        str(REPO / 'bench' / 'streaming.py'),
        '--quick',
        '--out',
        str(tmp_path),
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    written = sorted((tmp_path / 'quick').iterdir())
    assert [p.suffix for p in written] == ['.json', '.md'], written
    results = json.loads(written[0].read_text())
    assert results['quick'] is True and results['machine']['cpu_model']
    assert len(results['rows']) == 10
    for row in results['rows']:
        assert 'error' not in row, row
        assert row['us_per_chunk'] > 0 and len(row['blocks_us']) == 3, row
        assert 0 <= row['max_difference'] <= (1e-3 if 'dB' in row['method'] else 1e-4), row
        assert row['method'] in written[1].read_text()


def test_export_table_quick_run_checks_every_target_against_the_fused_op(tmp_path):
    """bench/export_table.py on config B's smoke size at 1 thread, the previous builtin taken
    from HEAD: every row (kapre, fused, builtin in TF, SavedModel, LiteRT, onnxruntime, and the
    previous builtin on three targets) ran, agreed with the fused op within the script's limit
    before it was timed, and the ratios are to kapre's and the previous builtin's medians."""
    for module in ('onnxruntime', 'tf2onnx', 'ai_edge_litert'):
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [
        sys.executable,
        str(REPO / 'bench' / 'export_table.py'),
        '--quick',
        '--configs',
        'B',
        '--threads',
        '1',
        '--previous',
        'HEAD',
        '--out',
        str(tmp_path),
    ]
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = sorted((tmp_path / 'quick').iterdir())
    assert [p.suffix for p in written] == ['.json', '.md'], written
    results = json.loads(written[0].read_text())
    (record,) = results['records']
    assert record['config'] == 'B' and record['threads'] == 1 and record['unit'] == 'dB'
    rows = {row['method']: row for row in record['rows']}
    assert set(rows) == {
        'kapre',
        'fused',
        'old_tf',
        'old_litert',
        'old_onnx',
        'tf',
        'savedmodel',
        'litert',
        'onnx',
    }
    assert rows['fused']['max_difference'] == 0
    for key, row in rows.items():
        assert row['status'] == 'ok' and row['repeats'] >= 3, row
        assert row['max_difference'] <= row['limit'], row
        assert row['vs_kapre'] == rows['kapre']['median_s'] / row['median_s']
    for key in ('tf', 'litert', 'onnx'):
        assert 0 < rows[key]['max_difference']  # compared, not copied
        assert rows[key]['vs_previous'] == rows[f'old_{key}']['median_s'] / rows[key]['median_s']
    assert '| B | 1 | exported TFLite on LiteRT |' in written[1].read_text()


def test_export_table_swaps_the_registrys_builtin_for_the_previous_rows_only():
    """The previous builtin (git 95a17ac, before the Backend protocol) is what the layers'
    registry gives inside the swap, with the protocol's compute/inverse; this checkout's
    builtin before and after it (a registry that kept the previous module made every exported
    row time the previous path)."""
    pytest.importorskip('tensorflow')
    from bench import export_table

    import kapre_fast.builtin
    from kapre_fast import _backends

    previous = export_table.previous_builtin(export_table.PREVIOUS_REVISION)
    if previous is None:
        pytest.skip(f'git cannot show {export_table.PREVIOUS_REVISION} here (a shallow clone)')
    assert _backends.get('builtin') is kapre_fast.builtin
    with export_table.builtin_replaced_by(previous):
        assert _backends.get('builtin') is previous
        assert callable(previous.compute) and callable(previous.inverse)
    assert _backends.get('builtin') is kapre_fast.builtin


def test_rerender_keeps_latest_on_the_newest_run_among_other_benchmarks_files(tmp_path):
    """bench/run.py --rerender (bench/publish.py's last step) rewrites latest.md from the newest
    run of its own (<date>-<time>_<host>), whatever other benchmarks' files share the folder."""
    published = sorted((REPO / 'bench' / 'results').glob('2*_vm.json'))
    if not published:
        pytest.skip('no published bench/run.py run in bench/results')
    run = tmp_path / published[-1].name
    shutil.copy(published[-1], run)
    (tmp_path / 'stages-29991231-000000.json').write_text('{}')  # sorts after any date stem
    result = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'run.py'), '--rerender', str(run), '--no-plot'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / 'latest.md').read_text() == run.with_suffix('.md').read_text()


def test_tflite_rfft2d_probe_converts_rfft_to_the_builtin_and_matches_the_fused_op():
    """bench/tflite_rfft2d.py on config B's smoke size: TFLite's converter, builtins only, makes
    RFFT2D and COMPLEX_ABS of tf.signal.rfft and tf.abs (the fact docs/deploy.md's table rests
    on), and both that front end and export.to_tflite's agree with the fused op in dB."""
    pytest.importorskip('ai_edge_litert')
    from bench import tflite_rfft2d

    record = tflite_rfft2d.measure('B', quick=True, repeats=1, calls=1)
    assert {'RFFT2D', 'COMPLEX_ABS'} <= set(record['operators']), record['operators']
    assert 'GATHER' not in record['operators']  # frames by slices
    assert record['unit'] == 'dB' and record['n_fft'] == 512
    assert 0 < record['rfft2d_difference'] <= 0.01 and 0 < record['matmul_difference'] <= 0.01
    assert 0 < record['rfft2d_s'] < math.inf and 0 < record['matmul_s'] < math.inf
