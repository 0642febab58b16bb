"""The JAX handlers' XLA FFI version check (kapre_fast/jax/_ops.py): handlers compiled with a
newer FFI API than the installed jaxlib implements must raise an ImportError at import that
names both releases and what to do, instead of jaxlib refusing them when its backend starts
(seen with handlers built beside jax 0.10.2 under jax 0.6.2: make release-matrix)."""

import pytest

pytest.importorskip('jax')

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

from kapre_fast.jax import _ops  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    'jax_ffi_headers', REPO / 'tools' / 'jax_ffi_headers.py'
)
_jax_ffi_headers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_jax_ffi_headers)

HEADER = """
// the XLA FFI C API
#define XLA_FFI_API_MAJOR 0
// a comment between them
#define XLA_FFI_API_MINOR 3
"""


def test_parses_the_version_a_header_defines():
    assert _ops.parse_ffi_api_version(HEADER) == (0, 3)
    assert _ops.parse_ffi_api_version(HEADER.replace('MINOR 3', 'MINOR 12')) == (0, 12)
    assert _ops.parse_ffi_api_version('#define XLA_FFI_API_MAJOR 0\n') is None


@pytest.mark.parametrize('built, installed', [((0, 1), (0, 1)), ((0, 1), (0, 3))])
def test_the_same_or_an_older_api_passes(built, installed):
    _ops.check_ffi_api(built, '0.6.2', installed, '0.10.2')


@pytest.mark.parametrize('built, installed', [((0, 3), (0, 1)), ((1, 0), (0, 3)), ((0, 3), (1, 0))])
def test_a_newer_minor_or_another_major_raises_saying_what_to_do(built, installed):
    with pytest.raises(ImportError) as raised:
        _ops.check_ffi_api(built, '0.10.2', installed, '0.6.2')
    message = str(raised.value)
    assert (
        f'API {built[0]}.{built[1]}' in message and f'API {installed[0]}.{installed[1]}' in message
    )
    assert 'jax 0.6.2' in message and 'pip install "jax>=0.10.2"' in message
    assert 'pip install --no-build-isolation .' in message


def test_unknown_versions_are_not_checked():
    _ops.check_ffi_api(None, '', (0, 1), '0.6.2')  # a build older than the check
    _ops.check_ffi_api((0, 3), '0.10.2', None, '0.6.2')  # a jaxlib without its headers


def test_this_build_records_its_api_and_jax_and_passes_the_installed_one():
    handlers = _ops.module()
    installed = _ops.installed_ffi_api_version()
    assert installed is not None, f'no FFI headers under {jax.ffi.include_dir()}'
    # Compiled against the oldest supported jaxlib's FFI headers (the Makefile,
    # tools/jax_ffi_headers.py), or, in a plain source build, the build's own jax's.
    oldest = _jax_ffi_headers.JAXLIB
    assert handlers.built_with_jax in (oldest, jax.__version__)
    assert tuple(handlers.ffi_api_version) <= installed
    fetched = REPO / 'build' / f'jax-ffi-{oldest}' / 'include' / 'xla' / 'ffi' / 'api' / 'c_api.h'
    if handlers.built_with_jax == oldest and fetched.is_file():  # the checkout's own build
        assert tuple(handlers.ffi_api_version) == _ops.parse_ffi_api_version(fetched.read_text())
