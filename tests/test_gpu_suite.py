"""tests/gpu_suite.sh checks for a GPU before anything else: without one it prints one line and
exits 2, having built and written nothing. The script runs from a copy in tmp_path (it works in
the folder above its own), with stand-ins for nvidia-smi and the Python it would use."""

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
        executable(tools / 'nvidia-smi',
                   f'echo "{nvidia_smi}"; exit 0\n' if nvidia_smi else
                   'echo "No devices were found"; exit 6\n')
    calls = tmp_path / 'python-calls.txt'
    python = executable(tools / 'python', (
        f'if [ "$1" = "-c" ]; then exit {0 if cupy_devices else 1}; fi\n'
        f'echo "$@" >> {calls}\n'))
    # Only the stand-ins and the shell's basic tools: no real nvidia-smi, CuPy or cmake.
    env = {'PATH': f'{tools}:/usr/bin:/bin', 'PYTHON': str(python), 'HOME': str(tmp_path)}
    before = files_under(checkout)
    result = subprocess.run(['bash', str(checkout / 'tests' / 'gpu_suite.sh'), stage], env=env,
                            capture_output=True, text=True, timeout=60)
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


@pytest.mark.parametrize('nvidia_smi, cupy_devices', [(GPU_LINE, 0), (None, 1)],
                         ids=['nvidia-smi lists one', 'CuPy counts one'])
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
    result = subprocess.run(['bash', str(checkout / 'tests' / 'gpu_suite.sh')], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and 'no CUDA GPU' in result.stderr, result.stderr
    assert files_under(checkout) == {'tests', 'tests/gpu_suite.sh'}
