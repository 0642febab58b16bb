"""Which TensorFlow releases can load the one op library (_tf_ops.so): every symbol it takes from
TensorFlow must be a C API function (TF_*: no C++ symbol, whose ABI changes between releases)
exported by each release's libtensorflow_framework.so.2.

    python tools/tf_c_api_symbols.py [--library build/wt/_tf_ops.so] SOURCE...

SOURCE: a TensorFlow wheel (only libtensorflow_framework.so.2 is read out of it, nothing is
installed), a folder of wheels (searched recursively), or a libtensorflow_framework.so.2 itself.
The wheels come from `pip download "tensorflow==2.16.*" --no-deps -d DIR` (one per release).
Prints a line per release and exits 1 when the library needs a symbol one of them lacks, or
takes anything from TensorFlow but C API functions. Needs binutils' nm.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FRAMEWORK = 'libtensorflow_framework.so.2'


def symbols(path: Path, defined: bool) -> set:
    """The dynamic symbols `path` defines (defined=True) or needs (False), without versions."""
    flag = '--defined-only' if defined else '--undefined-only'
    out = subprocess.run(
        ['nm', '-D', flag, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return {line.split()[-1].split('@')[0] for line in out.splitlines() if line.strip()}


def tensorflow_symbols(library: Path) -> tuple:
    """(C API symbols, other TensorFlow symbols) that `library` needs: TF_* functions, and
    C++ symbols in TensorFlow's namespaces (tensorflow::, tsl::, absl::, Eigen::)."""
    needed = symbols(library, defined=False)
    c_api = {name for name in needed if name.startswith('TF_')}
    cxx = {name for name in needed if re.match(r'_ZN.*(10tensorflow|3tsl|4absl|5Eigen)', name)}
    return c_api, cxx


def _version(wheel: Path) -> str:
    return wheel.name.split('-')[1]


def framework_exports(source: Path) -> dict:
    """{release: exported symbols} for a wheel, a folder of wheels or a framework library."""
    if source.is_dir():
        found = {}
        for wheel in sorted(source.rglob('tensorflow-*.whl')):
            found.update(framework_exports(wheel))
        return found
    if source.suffix == '.whl':
        with zipfile.ZipFile(source) as archive, tempfile.TemporaryDirectory() as tmp:
            member = next(n for n in archive.namelist() if n.endswith('/' + FRAMEWORK))
            return {_version(source): symbols(Path(archive.extract(member, tmp)), defined=True)}
    return {str(source): symbols(source, defined=True)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('sources', nargs='+', type=Path)
    parser.add_argument('--library', type=Path, default=Path('kapre_fast/_tf_ops.so'))
    args = parser.parse_args(argv)
    c_api, cxx = tensorflow_symbols(args.library)
    print(f'{args.library}: {len(c_api)} TensorFlow C API functions, {len(cxx)} C++ symbols')
    failed = bool(cxx)
    for name in sorted(cxx):
        print(f'  C++ symbol (ABI of one release only): {name}')
    for source in args.sources:
        for release, exported in sorted(framework_exports(source).items()):
            missing = sorted(c_api - exported)
            failed |= bool(missing)
            print(
                f'TensorFlow {release}: ' + (f'MISSING {", ".join(missing)}' if missing else 'ok')
            )
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
