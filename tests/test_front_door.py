"""The front door (issue #26): install hints that work when copied, from a checkout and from a
wheel install; TensorFlow's C++ log lines kept out of the CLI's and the benchmark's output."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kapre_fast import _loader

REPO = Path(__file__).resolve().parents[1]
# absl / TF C++ log lines: "2026-12-06 12:30:33.942063: E external/...".
TF_LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] ', re.MULTILINE)


def test_hint_of_a_wheel_install_names_the_requirements_not_the_package(monkeypatch):
    monkeypatch.setattr(_loader, 'installed_from', lambda: None)
    requirements = _loader.extra_requirements('cli')
    if not requirements:
        pytest.skip('kapre_fast has no installed metadata here')
    hint = _loader.pip_install_hint('cli')
    assert hint == 'pip install ' + ' '.join(f'"{r}"' for r in requirements)
    assert 'kapre_fast[' not in hint  # kapre_fast is not on a package index
    assert {'soundfile', 'matplotlib'} <= {re.split(r'[<>=\[ ]', r)[0] for r in requirements}
    assert 'optional dependencies' in _loader.pip_install_hint('no-such-extra')


def test_hint_of_a_checkout_installs_from_it(monkeypatch, tmp_path):
    monkeypatch.setattr(_loader, 'installed_from', lambda: REPO)
    monkeypatch.chdir(tmp_path)
    assert _loader.pip_install_hint('ray') == f'pip install "{REPO}[ray]"'
    monkeypatch.chdir(REPO)
    assert _loader.pip_install_hint('ray') == 'pip install ".[ray]"'


@pytest.mark.parametrize(
    'entry, setting',
    [
        ('import kapre_fast.cli', None),
        ('sys.path.insert(0, {repo!r}); import bench.timing', None),
        ('import kapre_fast.cli', '0'),  # the user's own setting wins
    ],
)
def test_tensorflow_log_lines_are_quiet_unless_asked_for(entry, setting):
    pytest.importorskip('tensorflow')
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    if setting is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = setting
    code = (
        f'import sys; {entry.format(repo=str(REPO))}; import os; '
        'print(os.environ["TF_CPP_MIN_LOG_LEVEL"]); import tensorflow as tf; '
        'tf.constant(1.0) + 1.0'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [setting or '3']
    if setting is None:
        assert not TF_LOG_LINE.search(result.stderr), result.stderr


def test_benchmarks_write_runs_where_git_ignores_them_and_publish_copies_them(tmp_path):
    """make bench leaves the checkout clean: every bench script's default output is
    build/bench-results (git-ignored); bench/publish.py copies new runs, never twice."""
    sys.path.insert(0, str(REPO))
    try:
        from bench import publish, timing
    finally:
        sys.path.remove(str(REPO))
    assert timing.RUNS_FOLDER == REPO / 'build' / 'bench-results'
    if (REPO / '.git').exists():
        ignored = subprocess.run(
            ['git', 'check-ignore', '-q', str(timing.RUNS_FOLDER / 'x.md')], cwd=REPO
        )
        assert ignored.returncode == 0, 'build/bench-results is not ignored by git'
    for script in REPO.glob('bench/*.py'):  # only timing.py names the published folder
        text = script.read_text()
        if script.name != 'timing.py':
            assert "parent / 'results'" not in text and "'bench' / 'results'" not in text, script
    runs, published = tmp_path / 'runs', tmp_path / 'published'
    runs.mkdir()
    for name in (
        '20261206-120000_vm.json',
        '20261206-120000_vm.md',
        'latest.md',
        'stft_paths-20261206-120500.json',
    ):
        (runs / name).write_text(name)
    assert sorted(publish.publish(runs, published)) == [
        '20261206-120000_vm',
        'stft_paths-20261206-120500',
    ]
    assert sorted(p.name for p in published.iterdir()) == [
        '20261206-120000_vm.json',
        '20261206-120000_vm.md',
        'stft_paths-20261206-120500.json',
    ]
    assert publish.publish(runs, published) == []  # already there: nothing is copied again
    with pytest.raises(SystemExit, match='no run nope'):
        publish.publish(runs, published, ['nope'])
