"""The XLA FFI headers of the oldest jaxlib kapre_fast supports, for building its JAX handlers.

XLA FFI handlers carry the FFI API version of the headers they are compiled with, and a jaxlib
refuses handlers of a newer API (jaxlib 0.6.2 implements API 0.1, 0.10.2 API 0.3). Compiled
against the oldest supported jaxlib's headers, one build of _jax_ffi registers in every jax from
that release on (docs/install.md, "Supported releases"). This downloads that jaxlib's wheel from
the package index (no install), keeps only xla/ffi/api/*.h under FOLDER/include and prints that
include path; a second run finds them there and downloads nothing.

    python tools/jax_ffi_headers.py [FOLDER]   (default build/jax-ffi-<release>)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

JAXLIB = '0.6.2'  # the oldest jax the `jax` extra admits (pyproject.toml: jax>=0.6)
MEMBERS = 'jaxlib/include/xla/ffi/api/'


def headers(folder: Path) -> Path:
    include = folder / 'include'
    api = include / 'xla' / 'ffi' / 'api'
    if (api / 'c_api.h').is_file():
        return include
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                '-m',
                'pip',
                'download',
                '--quiet',
                '--no-deps',
                '--only-binary',
                ':all:',
                '--dest',
                download,
                f'jaxlib=={JAXLIB}',
            ],
            check=True,
        )
        wheel = next(Path(download).glob('jaxlib-*.whl'))
        with zipfile.ZipFile(wheel) as archive:
            names = [name for name in archive.namelist() if name.startswith(MEMBERS)]
            if not any(name.endswith('/c_api.h') for name in names):
                raise SystemExit(f'jax_ffi_headers: {wheel.name} has no {MEMBERS}c_api.h')
            partial = folder / 'partial'
            for name in names:
                target = partial / 'xla' / 'ffi' / 'api' / Path(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    (partial).rename(include)  # whole or not at all
    return include


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path('build') / f'jax-ffi-{JAXLIB}'
    folder.mkdir(parents=True, exist_ok=True)
    print(headers(folder.resolve()))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
