"""tests/gpu_suite.sh checks for a GPU before anything else: without one it prints one line and
exits 2, having built and written nothing. tests/gpu_check.sh (issue 24) runs its stages within
time budgets and prints one summary line per stage; without a GPU it says so in one line (and in
OUT/summary.txt) and exits 2. The scripts run from copies in tmp_path (they work in the folder
above their own), with stand-ins for nvidia-smi, cmake, compute-sanitizer and the Python they
would use."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / 'gpu_suite.sh'
GPU_LINE = 'GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)'


def executable(path: Path, text: str) -> Path:
    path.write_text('#!/bin/sh\n' + text)
    path.chmod(0o755)
    return path


def files_under(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob('*')}


def run_suite(tmp_path, stage, nvidia_smi=None, cupy_devices=0):
    """Runs a copy of the script in tmp_path/checkout. `nvidia_smi`: what a stand-in
    `nvidia-smi -L` prints (None: no nvidia-smi on PATH; '' prints nothing and fails, as with no
    GPU). The stand-in Python answers the CuPy device count with `cupy_devices` and records
    any other call in python-calls.txt. Returns (completed process, files created)."""
    checkout = tmp_path / 'checkout'
    (checkout / 'tests').mkdir(parents=True)
    shutil.copy(SCRIPT, checkout / 'tests' / 'gpu_suite.sh')
    tools = tmp_path / 'bin'
    tools.mkdir()
    if nvidia_smi is not None:
        executable(
            tools / 'nvidia-smi',
            f'echo "{nvidia_smi}"; exit 0\n'
            if nvidia_smi
            else 'echo "No devices were found"; exit 6\n',
        )
    calls = tmp_path / 'python-calls.txt'
    python = executable(
        tools / 'python',
        (f'if [ "$1" = "-c" ]; then exit {0 if cupy_devices else 1}; fi\necho "$@" >> {calls}\n'),
    )
    # Only the stand-ins and the shell's basic tools: no real nvidia-smi, CuPy or cmake.
    env = {'PATH': f'{tools}:/usr/bin:/bin', 'PYTHON': str(python), 'HOME': str(tmp_path)}
    before = files_under(checkout)
    result = subprocess.run(
        ['bash', str(checkout / 'tests' / 'gpu_suite.sh'), stage],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, files_under(checkout) - before, calls


@pytest.mark.parametrize('nvidia_smi', ['', None], ids=['nvidia-smi lists none', 'no nvidia-smi'])
@pytest.mark.parametrize('stage', ['all', 'build', 'bench'])
def test_without_a_gpu_one_line_exit_2_nothing_built(tmp_path, nvidia_smi, stage):
    if nvidia_smi is None and shutil.which('nvidia-smi', path='/usr/bin:/bin'):
        pytest.skip('a real nvidia-smi is on /usr/bin:/bin')
    result, created, calls = run_suite(tmp_path, stage, nvidia_smi=nvidia_smi)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ''
    assert len(result.stderr.splitlines()) == 1 and 'no CUDA GPU' in result.stderr
    assert created == set() and not calls.exists()  # no folder, log, build or Python run


@pytest.mark.parametrize(
    'nvidia_smi, cupy_devices',
    [(GPU_LINE, 0), (None, 1)],
    ids=['nvidia-smi lists one', 'CuPy counts one'],
)
def test_with_a_gpu_the_stage_runs(tmp_path, nvidia_smi, cupy_devices):
    if nvidia_smi is None and shutil.which('nvidia-smi', path='/usr/bin:/bin'):
        pytest.skip('a real nvidia-smi is on /usr/bin:/bin')
    result, created, calls = run_suite(tmp_path, 'bench', nvidia_smi, cupy_devices)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert calls.read_text().startswith('bench/gpu.py --out ')
    assert 'build/gpu-suite' in created  # the log folder, made once the GPU is found


def test_unknown_stage_is_a_usage_error(tmp_path):
    result, created, _ = run_suite(tmp_path, 'everything', nvidia_smi=GPU_LINE)
    assert result.returncode == 2 and result.stderr.startswith('usage: bash tests/gpu_suite.sh')
    assert created == set()


def test_this_machine_without_a_gpu(tmp_path):
    """The script as it is, with this machine's own nvidia-smi and Python."""
    if shutil.which('nvidia-smi'):
        listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True)
        if 'GPU ' in listing.stdout:
            pytest.skip('this machine has a GPU')
    elif importlib.util.find_spec('cupy') is not None:
        import cupy

        try:
            if cupy.cuda.runtime.getDeviceCount() > 0:
                pytest.skip('CuPy sees a GPU here')
        except cupy.cuda.runtime.CUDARuntimeError:
            pass  # no driver or no device: no GPU
    checkout = tmp_path / 'checkout'
    (checkout / 'tests').mkdir(parents=True)
    shutil.copy(SCRIPT, checkout / 'tests' / 'gpu_suite.sh')
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('OUT', None)
    result = subprocess.run(
        ['bash', str(checkout / 'tests' / 'gpu_suite.sh')],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and 'no CUDA GPU' in result.stderr, result.stderr
    assert files_under(checkout) == {'tests', 'tests/gpu_suite.sh'}


# ----- tests/gpu_check.sh: the one-shot check over the suite's stages ---------------------------

CHECK = Path(__file__).resolve().parent / 'gpu_check.sh'


def test_probe_answers_without_building_or_writing(tmp_path):
    result, created, calls = run_suite(tmp_path, 'probe', nvidia_smi=GPU_LINE)
    assert result.returncode == 0 and result.stdout == result.stderr == ''
    assert created == set() and not calls.exists()


def gpu_machine(tmp_path, *, gpu=True, pytest_code=0, pytest_sleep=0, sanitizer=True):
    """A checkout with both scripts in tmp_path/checkout and stand-ins for nvidia-smi, Python
    (pytest, pybind11, bench/gpu.py), cmake and compute-sanitizer that record their calls in
    tmp_path/calls.txt. Returns (checkout, environment, calls file)."""
    checkout = tmp_path / 'checkout'
    (checkout / 'tests').mkdir(parents=True)
    (checkout / 'kapre_fast').mkdir()
    for script in (SCRIPT, CHECK):
        shutil.copy(script, checkout / 'tests' / script.name)
    tools = tmp_path / 'bin'
    tools.mkdir()
    calls = tmp_path / 'calls.txt'
    if gpu:
        executable(
            tools / 'nvidia-smi',
            (
                'case "$*" in\n'
                f'  -L) echo "{GPU_LINE}" ;;\n'
                '  *compute_cap,driver*) echo "NVIDIA H200, 9.0, 580.65" ;;\n'
                '  *compute_cap*) echo "9.0" ;;\n'
                'esac\n'
            ),
        )
    executable(
        tools / 'python',
        (
            f'echo "python $*" >> {calls}\n'
            'case "$*" in\n'
            '  "-c "*) exit 1 ;;\n'
            '  "-m pybind11 --cmakedir") echo /nowhere ;;\n'
            f'  "-m pytest"*) sleep {pytest_sleep}; echo "3 passed, 1 skipped in 0.10s";'
            f' exit {pytest_code} ;;\n'
            '  bench/gpu.py*) out=$3; mkdir -p "$out";\n'
            '    printf "| config | batch |\\n| A | 128 | 9.0 | 8.0 | 1.0 | 1.1 |\\n"'
            ' > "$out/20260101-000000_gpu.md" ;;\n'
            'esac\n'
        ),
    )
    executable(
        tools / 'cmake',
        (
            f'echo "cmake $*" >> {calls}\n'
            'if [ "$1" = --build ]; then mkdir -p build/gpu; touch build/gpu/_cuda.so '
            'build/gpu/_build_info.json; fi\n'
        ),
    )
    if sanitizer:
        executable(
            tools / 'compute-sanitizer',
            (
                f'echo "compute-sanitizer $*" >> {calls}\n'
                'shift 6\n"$@"\ncode=$?\necho "========= ERROR SUMMARY: 0 errors"\nexit $code\n'
            ),
        )
    env = {'PATH': f'{tools}:/usr/bin:/bin', 'PYTHON': str(tools / 'python'), 'HOME': str(tmp_path)}
    return checkout, env, calls


def run_check(checkout, env, out, extra_env=None):
    return subprocess.run(
        ['bash', str(checkout / 'tests' / 'gpu_check.sh'), str(out)],
        env=dict(env, **(extra_env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


def summary_lines(out):
    return (out / 'summary.txt').read_text().splitlines()


def test_gpu_check_without_a_gpu_says_so_and_builds_nothing(tmp_path):
    if shutil.which('nvidia-smi', path='/usr/bin:/bin'):
        pytest.skip('a real nvidia-smi is on /usr/bin:/bin')
    checkout, env, calls = gpu_machine(tmp_path, gpu=False)
    before = files_under(checkout)
    result = run_check(checkout, env, tmp_path / 'out')
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and 'no CUDA GPU on this machine' in lines[0]
    assert 'nothing built, tested or timed' in lines[0]
    assert summary_lines(tmp_path / 'out') == lines
    assert files_under(tmp_path / 'out') == {'summary.txt'}
    assert files_under(checkout) == before
    assert [c for c in calls.read_text().splitlines() if not c.startswith('python -c')] == []


def test_gpu_check_needs_its_output_folder(tmp_path):
    checkout, env, _ = gpu_machine(tmp_path)
    result = subprocess.run(
        ['bash', str(checkout / 'tests' / 'gpu_check.sh')],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith('usage: bash tests/gpu_check.sh')


def test_gpu_check_runs_every_stage_and_summarises_each(tmp_path):
    checkout, env, calls = gpu_machine(tmp_path)
    out = tmp_path / 'out'
    result = run_check(checkout, env, out)
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = summary_lines(out)
    assert result.stdout.splitlines() == lines
    assert [line.split(':')[1].strip() for line in lines] == [
        'GPU',
        'build',
        'tests',
        'memcheck',
        'bench',
        'all stages passed',
    ]
    assert 'NVIDIA H200, 9.0' in lines[0]
    assert lines[1].startswith('gpu_check: build: ok in ')
    assert lines[2].startswith('gpu_check: tests: ok in ')
    for log in ('test_gpu_graphs', 'test_torch_gpu', 'test_gpu', 'test_gpu_emulation'):
        assert f'{log}: 3 passed, 1 skipped in 0.10s' in lines[2]
    assert 'memcheck: ok' in lines[3] and 'ERROR SUMMARY: 0 errors' in lines[3]
    assert 'bench: ok' in lines[4] and '| A | 128 | 9.0 | 8.0 | 1.0 | 1.1 |' in lines[4]
    recorded = calls.read_text()
    assert '-DCMAKE_CUDA_ARCHITECTURES=90' in recorded
    assert 'python -m pytest -q -p no:cacheprovider -rs -m gpu test_gpu_graphs.py' in recorded
    assert 'compute-sanitizer --tool memcheck' in recorded
    assert 'racecheck' not in recorded  # memcheck only
    assert (
        'bench/gpu.py --out '
        + str(out)
        + ' --configs A,B,C,D --batches 128 --repeats 10 --warmup 2'
    ) in recorded
    assert {
        'summary.txt',
        'build.log',
        'tests.log',
        'memcheck.log',
        'bench.log',
        'bench_table.md',
        'test_gpu_graphs.log',
        'sanitize_memcheck.log',
    } <= files_under(out)
    assert (checkout / 'kapre_fast' / '_cuda.so').exists()  # the build's copy


def test_gpu_check_reports_a_failed_stage_and_goes_on(tmp_path):
    checkout, env, calls = gpu_machine(tmp_path, pytest_code=1)
    out = tmp_path / 'out'
    result = run_check(checkout, env, out)
    assert result.returncode == 1
    lines = summary_lines(out)
    assert lines[2].startswith('gpu_check: tests: FAILED (exit 1)')
    assert lines[3].startswith('gpu_check: memcheck: FAILED')
    assert 'bench: ok' in lines[4]  # still run
    assert lines[-1].startswith('gpu_check: SOME STAGES FAILED')
    # every test file ran although the first failed
    runs = [c for c in calls.read_text().splitlines() if c.startswith('python -m pytest')]
    assert len(runs) == 5  # 4 test runs + the one under memcheck


def test_gpu_check_stops_a_stage_at_its_budget(tmp_path):
    checkout, env, _ = gpu_machine(tmp_path, pytest_sleep=30)
    out = tmp_path / 'out'
    result = run_check(checkout, env, out, {'TESTS_BUDGET': '2', 'MEMCHECK_BUDGET': '2'})
    assert result.returncode == 1
    lines = summary_lines(out)
    assert 'tests: OUT OF TIME (budget 2 s)' in lines[2]
    assert 'memcheck: OUT OF TIME (budget 2 s)' in lines[3]


def test_gpu_check_without_compute_sanitizer(tmp_path):
    checkout, env, _ = gpu_machine(tmp_path, sanitizer=False)
    out = tmp_path / 'out'
    result = run_check(checkout, env, out)
    assert result.returncode == 1
    assert 'memcheck: NOT RUN: compute-sanitizer is not on PATH' in summary_lines(out)[3]


def test_gpu_check_on_this_machine_without_a_gpu(tmp_path):
    """The script as it is, with this machine's own tools."""
    if shutil.which('nvidia-smi'):
        listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True)
        if 'GPU ' in listing.stdout:
            pytest.skip('this machine has a GPU')
    checkout = tmp_path / 'checkout'
    (checkout / 'tests').mkdir(parents=True)
    for script in (SCRIPT, CHECK):
        shutil.copy(script, checkout / 'tests' / script.name)
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('OUT', None)
    result = subprocess.run(
        ['bash', str(checkout / 'tests' / 'gpu_check.sh'), str(tmp_path / 'out')],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and 'no CUDA GPU' in result.stdout, result.stderr
    assert files_under(checkout) == {'tests', 'tests/gpu_suite.sh', 'tests/gpu_check.sh'}
