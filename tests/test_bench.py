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
    command = [sys.executable, str(SCRIPT), '--configs', 'B', '--threads', '1',
               '--methods', 'kapre_fast_cpu', '--no-plot', '--out', str(out), *args]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=300)
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
    shutil.copytree(REPO / 'kapre_fast', shadow / 'kapre_fast',
                    ignore=shutil.ignore_patterns('*.so', '_build_info.json', '__pycache__'))
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


@pytest.mark.parametrize('statuses, expected', [
    ({'kapre': 'ok', 'kapre_fast_cpu': 'ok', 'torch': 'unavailable'}, (0, 0)),
    ({'kapre': 'ok', 'kapre_fast_op': 'unavailable'}, (1, 0)),  # kapre_fast must run
    ({'kapre': 'ok', 'kapre_fast_cpu': 'error', 'librosa': 'error'}, (1, 1)),
    ({'kapre': 'error', 'kapre_fast_cpu': 'ok'}, (0, 1)),
])
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
    results = {'quick': quick, 'results': [
        _record(m, 'error' if m == failing else 'ok') for m in methods]}
    status = bench_run.publish(results, tmp_path)
    assert status == (0 if failing is None else 1)
    if failing == 'kapre_fast_cpu':
        assert written == {'folder': tmp_path / 'failed', 'latest': False}
    else:
        assert written == {'folder': tmp_path / 'quick' if quick else tmp_path,
                           'latest': not quick}
