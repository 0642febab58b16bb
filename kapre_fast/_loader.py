"""Lazy loading of the compiled libraries, with errors that say what to do.

`_core` (pybind11) needs only NumPy; `_cuda` (pybind11, CuPy) and `_gpu_emulation` the CUDA
build and its host emulation; `_tf_ops.so` (the TensorFlow op library) and `_jax_ffi` (the XLA
FFI handlers) need the framework release they were built against, `_torch_ops.so` (the torch
operator library, on LibTorch's stable ABI) a torch from the release it was built for on, so each
is loaded only when first used, after checking the release recorded at build time.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.resources
import json
import sys
from pathlib import Path

BUILD_INFO = '_build_info.json'


def _package_file(name: str):
    return importlib.resources.files('kapre_fast') / name


def source_checkout_note(package=None) -> str:
    """Why the compiled modules are missing when this kapre_fast is a source checkout's folder
    (the folder above it has pyproject.toml and csrc/) without them: Python started in the
    repository root imports that folder instead of the installed package. '' otherwise, or
    when the folder has its build (`make install` links it in, tools/link_build.py).
    `package`: the package folder (default: this one)."""
    package = Path(package or Path(__file__).resolve().parent)
    root = package.parent
    if not _is_checkout(root):
        return ''
    if (package / BUILD_INFO).exists():
        return ''
    note = (
        f'you are importing kapre_fast from the source checkout at {root} (Python puts the '
        'current directory first on sys.path), which has no compiled modules; run from '
        'another directory, or run `make install` (which links the build into the checkout)'
    )
    elsewhere = [entry for entry in sys.path if Path(entry or '.').resolve() != root]
    installed = importlib.machinery.PathFinder.find_spec('kapre_fast', elsewhere)
    if installed is not None and installed.submodule_search_locations:
        location = Path(list(installed.submodule_search_locations)[0])
        if location.resolve() != package.resolve():
            return note + (
                f'. The installed kapre_fast, used from any other directory, is at {location}'
            )
    return note + (
        f'. This Python ({sys.executable}) has no installed kapre_fast either: '
        '`make install`, or `pip install --no-build-isolation .` in the checkout'
    )


def _is_checkout(folder: Path) -> bool:
    return (folder / 'pyproject.toml').is_file() and (folder / 'csrc').is_dir()


def installed_from() -> Path | None:
    """The source checkout this kapre_fast comes from, when that folder exists: the one it is
    imported from, else the local folder pip installed it from (the distribution's PEP 610
    direct_url.json); None for an install from an index or a wheel."""
    package = Path(__file__).resolve().parent
    if _is_checkout(package.parent):
        return package.parent
    try:
        import importlib.metadata
        import urllib.parse
        import urllib.request

        record = json.loads(
            importlib.metadata.distribution('kapre_fast').read_text('direct_url.json') or '{}'
        )
        url = urllib.parse.urlparse(record.get('url', ''))
        if url.scheme == 'file' and 'dir_info' in record:
            folder = Path(urllib.request.url2pathname(url.path))
            if _is_checkout(folder):
                return folder
    except (ImportError, OSError, ValueError):  # no metadata: a source folder never installed
        pass
    return None


def extra_requirements(extra: str) -> list:
    """The requirements of the optional dependencies `extra` (pyproject.toml's
    optional-dependencies), as the installed distribution's metadata lists them; [] without
    metadata or for an unknown extra."""
    import importlib.metadata
    import re

    try:
        requires = importlib.metadata.requires('kapre_fast') or []
    except importlib.metadata.PackageNotFoundError:
        return []
    wanted = re.compile(r'extra\s*==\s*["\']' + re.escape(extra) + r'["\']')
    return [
        requirement.partition(';')[0].strip()
        for requirement in requires
        if wanted.search(requirement.partition(';')[2])
    ]


def pip_install_hint(extra: str) -> str:
    """The pip command that adds the optional dependencies `extra` (pyproject.toml's
    optional-dependencies) to this kapre_fast: from its checkout when it has one (`.` when that
    is the current directory), else (a wheel install) those requirements by name, since
    kapre_fast itself is not on a package index."""
    checkout = installed_from()
    if checkout is None:
        requirements = extra_requirements(extra)
        if not requirements:
            return f'pip install the "{extra}" optional dependencies of kapre_fast (pyproject.toml)'
        return 'pip install ' + ' '.join(f'"{requirement}"' for requirement in requirements)
    if checkout == Path.cwd().resolve():
        return f'pip install ".[{extra}]"'
    return f'pip install "{checkout}[{extra}]"'


@functools.lru_cache(maxsize=None)
def build_info() -> dict:
    """What the native build contained: {'tensorflow': version or '', 'cuda': bool, 'torch':
    the torch it was built beside or '', 'torch_target': the lowest torch its operators load in,
    ...} (CMakeLists.txt writes it)."""
    try:
        return json.loads(_package_file(BUILD_INFO).read_text())
    except (FileNotFoundError, OSError, ValueError):
        return {'tensorflow': '', 'cuda': False}


@functools.lru_cache(maxsize=None)
def core():
    """The pybind11 module kapre_fast._core."""
    try:
        return importlib.import_module('kapre_fast._core')
    except ImportError as error:
        shadowed = source_checkout_note()
        if shadowed:
            raise ImportError(f"kapre_fast's native module _core is missing: {shadowed}") from error
        raise ImportError(
            "kapre_fast's native module _core is missing or failed to load "
            f'({error}). Install the package with `pip install .` (it compiles the C++ core) '
            'instead of importing it from a source folder.'
        ) from error


@functools.lru_cache(maxsize=None)
def tf_ops():
    """The TensorFlow op library (loaded once, on first use)."""
    shadowed = source_checkout_note()
    if shadowed:  # no build info at all: not a build without TensorFlow
        raise ImportError(f"kapre_fast's TensorFlow ops are missing: {shadowed}")
    import tensorflow as tf

    built_for = build_info().get('tensorflow', '')
    if not built_for:
        raise ImportError(
            'kapre_fast was built without its TensorFlow ops (TensorFlow was not importable at '
            'build time). Install TensorFlow 2.20 first, then reinstall kapre_fast with '
            '`pip install --no-build-isolation .`.'
        )
    if built_for.split('.')[:2] != tf.__version__.split('.')[:2]:
        raise ImportError(
            f"kapre_fast's TensorFlow ops were built for TensorFlow {built_for} but "
            f'TensorFlow {tf.__version__} is installed; op libraries only load in the version '
            'they were built against. Install tensorflow=='
            f'{".".join(built_for.split(".")[:2])}.* or rebuild kapre_fast.'
        )
    path = _package_file('_tf_ops.so')
    with importlib.resources.as_file(path) as real_path:
        if not real_path.exists():
            raise ImportError(f"kapre_fast's TensorFlow op library is missing at {real_path}")
        return tf.load_op_library(str(real_path))


# The torch operator library is built on LibTorch's stable ABI for its lowest torch release
# (_build_info.json's torch_target): it loads in that release and every later one.
TORCH_LIBRARY = '_torch_ops.so'


def _release_of(version: str) -> tuple:
    """(2, 13) of '2.13.0+cpu' (or of '2.13'); () when it does not start with two numbers."""
    parts = version.split('+')[0].split('.')[:2]
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else ()


def check_torch_build(info: dict, installed: str) -> None:
    """ImportError unless the torch operator library described by `info` (the build info:
    'torch', the release it was built beside, '' when not built; 'torch_target', the lowest
    release it loads in) loads in the `installed` torch, saying what to do."""
    rebuild = (
        'reinstall kapre_fast with `pip install --no-build-isolation .` (or `make install`)'
        ' in this environment'
    )
    built_beside = info.get('torch', '')
    if not built_beside:
        raise ImportError(
            'kapre_fast was built without its PyTorch operators (torch was not importable at '
            f'build time). Install torch first (`{pip_install_hint("torch")}`), then {rebuild}.'
        )
    target = info.get('torch_target', '')
    if not target:  # a build before the stable ABI: a C++ extension of exactly one release
        if _release_of(built_beside) != _release_of(installed):
            raise ImportError(
                f"kapre_fast's PyTorch operators were built for torch {built_beside} only, but "
                f'torch {installed} is installed. Reinstall kapre_fast ({rebuild}).'
            )
        return
    have = _release_of(installed)
    if not have or have < _release_of(target):
        raise ImportError(
            f"kapre_fast's PyTorch operators need torch {target} or later (they are built on "
            f"LibTorch's stable ABI for torch {target}), but torch {installed} is installed. "
            f'Install a newer torch (`pip install "torch>={target}"`), or use kapre_fast.cpu '
            'on NumPy arrays.'
        )


@functools.lru_cache(maxsize=None)
def torch_ops() -> Path:
    """Loads the torch operator library (its schemas and kernels) into torch once, after the
    release check; its real path (a source checkout links the installed one, link_build.py)."""
    shadowed = source_checkout_note()
    if shadowed:
        raise ImportError(f"kapre_fast's PyTorch operators are missing: {shadowed}")
    import torch

    check_torch_build(build_info(), torch.__version__)
    path = (Path(__file__).resolve().parent / TORCH_LIBRARY).resolve()
    if not path.exists():
        raise ImportError(f"kapre_fast's PyTorch operator library is missing at {path}")
    torch.ops.load_library(str(path))
    return path
