"""A bounded atheris (libFuzzer) run over the pybind11 entry points (see atheris_fuzz.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('atheris')


def test_atheris_driver_finds_no_crash(tmp_path):
    driver = Path(__file__).with_name('atheris_fuzz.py')
    result = subprocess.run(
        [sys.executable, str(driver), '-runs=3000', '-seed=1', f'-artifact_prefix={tmp_path}/'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Done 3000 runs' in result.stderr
