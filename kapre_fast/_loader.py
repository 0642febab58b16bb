"""Lazy loading of the compiled libraries, with errors that say what to do.

`_core` (pybind11) needs only NumPy; `_cuda` (pybind11, CuPy) and `_gpu_emulation` the CUDA
build and its host emulation. `_tf_ops.so` (the TensorFlow op library, on TensorFlow's C API)
loads in every TensorFlow of TF_SUPPORTED and `_torch_ops.so` (the torch operator library, on
LibTorch's stable ABI) in every torch from the release it was built for (its build info's
torch_target); `_tf_ops_gpu.so` (the TF GPU kernels) and `_jax_ffi` (the XLA FFI handlers) need
the framework release they were built against. Each is loaded only when first used, after
checking the installed release against the one recorded at build time or the supported range.
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


# TensorFlow releases whose libtensorflow_framework.so.2 exports every C API function _tf_ops.so
# calls (tools/tf_c_api_symbols.py checks the wheels): the one op library loads in each of them.
TF_SUPPORTED = ((2, 16), (2, 21))


def _release(version: str) -> tuple:
    """(major, minor) of a version string such as '2.20.0' or '2.21.0rc1'."""
    major, minor = version.split('.')[:2]
    return int(major), int(''.join(c for c in minor if c.isdigit()) or 0)


def tf_version_problem(version: str) -> str:
    """Why the op library cannot serve TensorFlow `version` ('' when it can), and what to do."""
    low, high = TF_SUPPORTED
    if low <= _release(version) <= high:
        return ''
    return (
        f"kapre_fast's TensorFlow ops support TensorFlow {low[0]}.{low[1]} to "
        f"{high[0]}.{high[1]} (TensorFlow's C op API, one library for all of them), but "
        f'TensorFlow {version} is installed. Install a supported release, e.g. '
        f'`pip install "tensorflow>={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"`; kapre_fast.cpu '
        'and the other backends do not need TensorFlow.'
    )


@functools.lru_cache(maxsize=None)
def tf_ops():
    """The TensorFlow op library (loaded once, on first use), wrapped so that the ops it builds
    in a graph get their full static shapes (kapre_fast._tf_shapes) and run with TensorFlow's
    intra-op thread count. Its CPU kernels are written against TensorFlow's C API and load in
    every release of TF_SUPPORTED; the GPU kernels (_tf_ops_gpu.so, TensorFlow's C++ API) are
    loaded beside them only under the release they were built with (tf_gpu_ops)."""
    shadowed = source_checkout_note()
    if shadowed:  # no build info at all: not a build without TensorFlow
        raise ImportError(f"kapre_fast's TensorFlow ops are missing: {shadowed}")
    import tensorflow as tf

    if not build_info().get('tensorflow', ''):
        raise ImportError(
            'kapre_fast was built without its TensorFlow ops (TensorFlow was not importable at '
            'build time). Install TensorFlow first, then reinstall kapre_fast with '
            '`pip install --no-build-isolation .`.'
        )
    problem = tf_version_problem(tf.__version__)
    if problem:
        raise ImportError(problem)
    path = _package_file('_tf_ops.so')
    with importlib.resources.as_file(path) as real_path:
        if not real_path.exists():
            raise ImportError(f"kapre_fast's TensorFlow op library is missing at {real_path}")
        library = tf.load_op_library(str(real_path))
        threads = _ThreadSetting(real_path)
    threads.sync(tf)  # for graphs read back from a SavedModel, which build no op from Python
    tf_gpu_ops()
    return _ShapedOps(library, threads)


class _ThreadSetting:
    """The CPU kernels' worker count (KapreFastTfSetThreads in csrc/tf/kernels.cc): TensorFlow's
    intra-op setting, passed on when the library loads and whenever it changed since the last op
    was built from Python (the C API does not reach TensorFlow's own thread pool)."""

    def __init__(self, path):
        import ctypes

        self._set = ctypes.CDLL(str(path)).KapreFastTfSetThreads
        self._set.argtypes, self._set.restype = [ctypes.c_int], ctypes.c_int
        self._sent = None

    def sync(self, tf):
        threads = tf.config.threading.get_intra_op_parallelism_threads()
        if threads != self._sent:
            self._set(max(0, int(threads)))
            self._sent = threads

    def current(self) -> int:
        """The worker count the kernels use now (0: every core)."""
        return self._set(-1)


class _ShapedOps:
    """The op library's Python functions (kapre_fast_front_end, ...), each of which sets its
    output's static shape in a graph (kapre_fast._tf_shapes) and keeps the kernels' thread count
    in step with TensorFlow's intra-op setting. Other attributes are the library's own."""

    def __init__(self, library, threads):
        self._library, self.threads = library, threads

    def __getattr__(self, name):
        function = getattr(self._library, name)
        if not name.startswith('kapre_fast_'):
            return function

        import tensorflow as tf

        from kapre_fast import _tf_shapes

        @tf.autograph.experimental.do_not_convert
        @functools.wraps(function)
        def op(*args, **kwargs):
            self.threads.sync(tf)
            result = function(*args, **kwargs)
            if not tf.executing_eagerly() and hasattr(result, 'op'):
                shape = _tf_shapes.output_shape(result.op)
                if shape is not None:
                    result.set_shape(shape)
            return result

        setattr(self, name, op)
        return op


def _tf_gpu_release_matches(tf_version: str) -> bool:
    return _release(build_info().get('tensorflow', '0.0')) == _release(tf_version)


@functools.lru_cache(maxsize=None)
def tf_gpu_ops():
    """The TensorFlow GPU kernels (_tf_ops_gpu.so), loaded after the op library when the build has
    them and TensorFlow is the release they were built against (their C++ ABI is that
    release's; the C API has no CUDA stream on TensorFlow's own GPU device). Elsewhere the ops
    run on their CPU kernels, with one warning where TensorFlow sees a GPU. None when not
    loaded."""
    import tensorflow as tf

    info = build_info()
    if not info.get('tf_gpu'):
        return None
    path = _package_file('_tf_ops_gpu.so')
    with importlib.resources.as_file(path) as real_path:
        if not real_path.exists():
            return None
        if not _tf_gpu_release_matches(tf.__version__):
            if tf.config.list_physical_devices('GPU'):
                import warnings

                warnings.warn(
                    f"kapre_fast's TensorFlow GPU kernels were built for TensorFlow "
                    f'{info["tensorflow"]}, but TensorFlow {tf.__version__} runs: its C++ ABI '
                    'differs, so the kapre_fast ops run on their CPU kernels here. Install '
                    f'tensorflow=={".".join(info["tensorflow"].split(".")[:2])}.* or rebuild '
                    'kapre_fast against this TensorFlow for the GPU kernels.',
                    RuntimeWarning,
                    stacklevel=3,
                )
            return None
        return tf.load_op_library(str(real_path))


# The torch operator library is built on LibTorch's stable ABI for its lowest torch release
# (_build_info.json's torch_target): it loads in that release and every later one.
TORCH_LIBRARY = '_torch_ops.so'


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
        if _release(built_beside) != _release(installed):
            raise ImportError(
                f"kapre_fast's PyTorch operators were built for torch {built_beside} only, but "
                f'torch {installed} is installed. Reinstall kapre_fast ({rebuild}).'
            )
        return
    if _release(installed) < _release(target):
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
