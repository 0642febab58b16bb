"""kapre_fast._loader's diagnosis of a source folder that shadows the installed package: Python
started in a checkout's root imports ./kapre_fast, which has no compiled modules unless `make
install` linked them in. Every entry point (the NumPy backend, the TF ops under the Keras layers)
must say so, not blame the build."""

from __future__ import annotations

import importlib.machinery
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kapre_fast import _loader

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / 'kapre_fast'


def make_checkout(folder: Path) -> Path:
    """A checkout's shape in `folder`: pyproject.toml, csrc/ and a copy of the package's Python
    files without any compiled module or build info."""
    shutil.copy(REPO / 'pyproject.toml', folder / 'pyproject.toml')
    (folder / 'csrc').mkdir()
    shutil.copytree(SOURCE, folder / 'kapre_fast', symlinks=True, ignore=shutil.ignore_patterns(
        '*.so', _loader.BUILD_INFO, '__pycache__'))
    return folder


def installed_package():
    """The installed kapre_fast's folder (outside this checkout), or None."""
    elsewhere = [p for p in sys.path if Path(p or '.').resolve() != REPO]
    found = importlib.machinery.PathFinder.find_spec('kapre_fast', elsewhere)
    return Path(list(found.submodule_search_locations)[0]) if found else None


def test_numpy_and_keras_entry_points_say_the_checkout_shadows_the_install(tmp_path):
    checkout = make_checkout(tmp_path)
    script = (
        'import importlib\n'
        'import numpy as np\n'
        'import kapre_fast, kapre_fast.cpu\n'
        'print("imported", kapre_fast.__file__)\n'
        'for call in (lambda: kapre_fast.cpu.melspectrogram(np.zeros((1, 4000, 1), "float32")),\n'
        '             lambda: importlib.import_module("kapre_fast.composed")):  # loads the ops\n'
        '    try:\n'
        '        call()\n'
        '    except ImportError as error:\n'
        '        print("ImportError:", error)\n')
    # Started in the checkout's root, as `python` in a clone: the current directory comes first.
    result = subprocess.run([sys.executable, '-c', script], cwd=checkout, capture_output=True,
                            text=True, timeout=300, env={'PATH': '/usr/bin:/bin',
                                                         'TF_CPP_MIN_LOG_LEVEL': '3'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'imported {checkout / "kapre_fast" / "__init__.py"}' in result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith('ImportError:')]
    assert len(errors) == 2, result.stdout
    for error in errors:
        assert f'from the source checkout at {checkout} ' in error
        assert 'run from another directory, or run `make install`' in error
        assert 'built without' not in error  # the old, wrong diagnosis
        installed = installed_package()
        if installed is not None:
            assert f'The installed kapre_fast, used from any other directory, is at {installed}' \
                in error
    assert 'TensorFlow ops are missing' in errors[1]


def test_note_without_an_installed_copy(tmp_path, monkeypatch):
    checkout = make_checkout(tmp_path)
    monkeypatch.setattr(sys, 'path', [str(checkout)])  # nothing installed elsewhere
    note = _loader.source_checkout_note(checkout / 'kapre_fast')
    assert note.startswith(f'you are importing kapre_fast from the source checkout at {checkout}')
    assert 'has no installed kapre_fast either' in note and sys.executable in note


@pytest.mark.parametrize('layout', ['built', 'not a checkout'])
def test_no_note_for_a_built_or_installed_package(tmp_path, layout):
    checkout = make_checkout(tmp_path)
    if layout == 'built':  # what `make install` leaves (tools/link_build.py)
        (checkout / 'kapre_fast' / _loader.BUILD_INFO).write_text('{"tensorflow": ""}')
    else:  # e.g. site-packages: no pyproject.toml beside the package
        (checkout / 'pyproject.toml').unlink()
    assert _loader.source_checkout_note(checkout / 'kapre_fast') == ''
