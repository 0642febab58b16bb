"""Lazy loading of the two compiled libraries, with errors that say what to do.

`_core` (pybind11) needs only NumPy; `_tf_ops.so` (the TensorFlow op library) needs the exact
TensorFlow it was built against, so it is loaded only when an op is first used, after checking the
version recorded at build time.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import json


def _package_file(name: str):
    return importlib.resources.files('kapre_fast') / name


@functools.lru_cache(maxsize=None)
def build_info() -> dict:
    """What the native build contained: {'tensorflow': version or '', 'cuda': bool}."""
    try:
        return json.loads(_package_file('_build_info.json').read_text())
    except (FileNotFoundError, OSError, ValueError):
        return {'tensorflow': '', 'cuda': False}


@functools.lru_cache(maxsize=None)
def core():
    """The pybind11 module kapre_fast._core."""
    try:
        return importlib.import_module('kapre_fast._core')
    except ImportError as error:
        raise ImportError(
            'kapre_fast\'s native module _core is missing or failed to load '
            f'({error}). Install the package with `pip install .` (it compiles the C++ core) '
            'instead of importing it from a source folder.'
        ) from error


@functools.lru_cache(maxsize=None)
def tf_ops():
    """The TensorFlow op library (loaded once, on first use)."""
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
            f'kapre_fast\'s TensorFlow ops were built for TensorFlow {built_for} but '
            f'TensorFlow {tf.__version__} is installed; op libraries only load in the version '
            'they were built against. Install tensorflow=='
            f'{".".join(built_for.split(".")[:2])}.* or rebuild kapre_fast.'
        )
    path = _package_file('_tf_ops.so')
    with importlib.resources.as_file(path) as real_path:
        if not real_path.exists():
            raise ImportError(f'kapre_fast\'s TensorFlow op library is missing at {real_path}')
        return tf.load_op_library(str(real_path))
