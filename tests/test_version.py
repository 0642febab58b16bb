"""One version, pyproject.toml's: the installed metadata, kapre_fast.__version__ and the CLI."""

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import kapre_fast

PYPROJECT = Path(__file__).resolve().parent.parent / 'pyproject.toml'


def test_version_comes_from_the_package_metadata():
    declared = tomllib.loads(PYPROJECT.read_text())['project']['version']
    assert importlib.metadata.version('kapre_fast') == declared
    assert kapre_fast.__version__ == declared


def test_command_line_reports_the_same_version():
    result = subprocess.run(
        [sys.executable, '-m', 'kapre_fast.cli', '--version'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f'kapre-fast {kapre_fast.__version__}'


def test_a_source_folder_that_was_never_installed_reads_pyproject(tmp_path, monkeypatch):
    """The fallback: no metadata (PackageNotFoundError), the version of pyproject.toml beside
    the package folder."""

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, 'version', missing)
    package = Path(kapre_fast.__file__).resolve().parent
    expected = (
        '0+unknown'
        if not (package.parent / 'pyproject.toml').exists()
        else tomllib.loads((package.parent / 'pyproject.toml').read_text())['project']['version']
    )
    assert kapre_fast._package_version() == expected
