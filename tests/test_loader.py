"""kapre_fast._loader's diagnosis of a source folder that shadows the installed package: Python
started in a checkout's root imports ./kapre_fast, which has no compiled modules unless `make
install` linked them in. Every entry point (the NumPy backend, the TF ops under the Keras layers)
must say so, not blame the build."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import re
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
    shutil.copytree(
        SOURCE,
        folder / 'kapre_fast',
        symlinks=True,
        ignore=shutil.ignore_patterns('*.so', _loader.BUILD_INFO, '__pycache__'),
    )
    return folder


def installed_package():
    """The installed kapre_fast's folder (outside this checkout), or None."""
    elsewhere = [p for p in sys.path if Path(p or '.').resolve() != REPO]
    found = importlib.machinery.PathFinder.find_spec('kapre_fast', elsewhere)
    return Path(list(found.submodule_search_locations)[0]) if found else None


def test_numpy_keras_and_gpu_entry_points_say_the_checkout_shadows_the_install(tmp_path):
    checkout = make_checkout(tmp_path)
    script = (
        'import importlib\n'
        'import numpy as np\n'
        'import kapre_fast, kapre_fast.cpu\n'
        'print("imported", kapre_fast.__file__)\n'
        'import sys, types\n'
        'sys.modules["cupy"] = types.ModuleType("cupy")  # CuPy present: the CUDA module is next\n'
        'for call in (lambda: kapre_fast.cpu.melspectrogram(np.zeros((1, 4000, 1), "float32")),\n'
        '             lambda: importlib.import_module("kapre_fast.composed"),  # loads the ops\n'
        '             lambda: importlib.import_module("kapre_fast.gpu")):\n'
        '    try:\n'
        '        call()\n'
        '    except ImportError as error:\n'
        '        print("ImportError:", error)\n'
    )
    # Started in the checkout's root, as `python` in a clone: the current directory comes first.
    result = subprocess.run(
        [sys.executable, '-c', script],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
        env={'PATH': '/usr/bin:/bin', 'TF_CPP_MIN_LOG_LEVEL': '3'},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'imported {checkout / "kapre_fast" / "__init__.py"}' in result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith('ImportError:')]
    assert len(errors) == 3, result.stdout
    for error in errors:
        assert f'from the source checkout at {checkout} ' in error
        assert 'run from another directory, or run `make install`' in error
        assert 'built without' not in error  # the old, wrong diagnosis
        installed = installed_package()
        if installed is not None:
            assert (
                f'The installed kapre_fast, used from any other directory, is at {installed}'
                in error
            )
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


# ----- install hints ---------------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    folder = tmp_path / 'clone'
    folder.mkdir()
    return make_checkout(folder)


@pytest.mark.parametrize(
    'where, expected',
    [
        ('checkout', 'pip install ".[cli]"'),
        ('elsewhere', 'pip install "{checkout}[cli]"'),
        (
            'no checkout',
            'pip install "soundfile" "soxr" "matplotlib"',
        ),  # a wheel: the extra's requirements
    ],
)
def test_install_hint_names_the_checkout_it_came_from(
    monkeypatch, tmp_path, checkout, where, expected
):
    monkeypatch.setattr(
        _loader, 'installed_from', lambda: None if where == 'no checkout' else checkout
    )
    monkeypatch.chdir(checkout if where == 'checkout' else tmp_path)
    assert _loader.pip_install_hint('cli') == expected.format(checkout=checkout)


@pytest.mark.parametrize(
    'record, found',
    [
        ('{{"url": "file://{checkout}", "dir_info": {{}}}}', True),  # pip install <folder>
        ('{{"url": "file://{checkout}", "dir_info": {{"editable": true}}}}', True),
        ('{{"url": "file://{checkout}/kapre_fast-0.1.0.whl", "archive_info": {{}}}}', False),
        ('{{"url": "file://{checkout}/gone", "dir_info": {{}}}}', False),  # folder since removed
        (None, False),  # installed from an index: no direct_url.json
    ],
)
def test_installed_from_reads_pips_record_of_the_source(
    monkeypatch, tmp_path, checkout, record, found
):
    # An installed package: its folder is not in a checkout.
    site = tmp_path / 'site-packages' / 'kapre_fast'
    monkeypatch.setattr(_loader, '__file__', str(site / '_loader.py'))

    class Distribution:
        def read_text(self, name):
            assert name == 'direct_url.json'
            return None if record is None else record.format(checkout=checkout)

    monkeypatch.setattr(importlib.metadata, 'distribution', lambda name: Distribution())
    assert _loader.installed_from() == (checkout if found else None)


def test_installed_from_a_source_checkout_is_that_checkout(checkout, monkeypatch):
    monkeypatch.setattr(_loader, '__file__', str(checkout / 'kapre_fast' / '_loader.py'))
    assert _loader.installed_from() == checkout


# The documentation's pages, each with the extra it tells a checkout user to install, and what
# that extra must pull in for the page's code to run.
DOCS_EXTRAS = [
    ('docs/drop-in.md', 'tf', {'tensorflow', 'keras'}),
    ('docs/cli.md', 'cli', {'soundfile', 'matplotlib', 'soxr'}),
    ('docs/gpu.md', 'gpu', {'cupy-cuda13x'}),
]


@pytest.mark.parametrize('page, extra, packages', DOCS_EXTRAS)
def test_docs_install_lines_match_what_each_page_needs(page, extra, packages):
    tomllib = pytest.importorskip('tomllib')  # Python 3.11+
    if not (REPO / page).exists():
        pytest.skip(f'no {page} beside the tests (an installed wheel)')
    section = (REPO / page).read_text()
    assert (
        f'pip install ".[{extra}]"' in section
        or f'pip install --no-build-isolation ".[{extra}]"' in section
    ), section[:400]
    extras = tomllib.loads((REPO / 'pyproject.toml').read_text())['project'][
        'optional-dependencies'
    ]
    names = {re.split(r'[\[=<>~ ]', requirement)[0] for requirement in extras[extra]}
    assert packages <= names, (extra, names)
