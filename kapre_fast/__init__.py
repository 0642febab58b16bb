"""kapre_fast: kapre's composed audio front ends, computed by fused native kernels.

One validated specification (`FrontEnd`), five backends with the same functions (BACKENDS):

- `kapre_fast.reference`: float64 NumPy truth (slow, simple, the oracle of the tests)
- `kapre_fast.cpu`:       the fused C++ kernel on NumPy arrays (`threads=`)
- `kapre_fast.gpu`:       the fused CUDA kernel on CuPy arrays
- `kapre_fast.torch`:     a torch.library extension over the same kernels (CPU and CUDA tensors)
- `kapre_fast.jax`:       XLA FFI custom calls over the same kernels

and, on the same C++ core, TensorFlow ops (`kapre_fast.ops`), Keras layers on the TensorFlow,
PyTorch and JAX backends (`kapre_fast.layers`) and the drop-in `kapre_fast.composed`. Importing
`kapre_fast` imports no framework; `ops`, `layers` and `composed` import Keras (and
TensorFlow on its backend), `torch` and `jax` their framework.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from kapre_fast.errors import FilterbankRangeError, UnsupportedWindowError
from kapre_fast.spec import MAX_N_FFT, FrontEnd


def _package_version() -> str:
    # One version, pyproject.toml's, read from the installed metadata; a source folder that was
    # never installed reads it from pyproject.toml beside it.
    try:
        return importlib.metadata.version('kapre_fast')
    except importlib.metadata.PackageNotFoundError:
        import pathlib

        project = pathlib.Path(__file__).resolve().parent.parent / 'pyproject.toml'
        try:
            import tomllib  # Python 3.11+

            return tomllib.loads(project.read_text())['project']['version']
        except (ImportError, OSError, KeyError, ValueError):
            return '0+unknown'


__version__ = _package_version()

# The backend modules, each with the same front-end functions (kapre_fast._api writes them).
BACKENDS = ('reference', 'cpu', 'gpu', 'torch', 'jax')

__all__ = [
    'FrontEnd',
    'MAX_N_FFT',
    'BACKENDS',
    'FilterbankRangeError',
    'UnsupportedWindowError',
    'reference',
    'cpu',
    'gpu',
    'torch',
    'jax',
    'ops',
    'layers',
    'composed',
]

_SUBMODULES = {*BACKENDS, 'ops', 'layers', 'composed', 'cli', 'corpus'}


def __getattr__(name):
    # Submodules load on first use, so `import kapre_fast` stays light and TF-free.
    if name in _SUBMODULES:
        return importlib.import_module(f'kapre_fast.{name}')
    raise AttributeError(f'module kapre_fast has no attribute {name!r}')
