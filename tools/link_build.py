"""Links the installed build's compiled files into the source folder kapre_fast/.

Python started in the repository root imports ./kapre_fast (the current directory comes first on
sys.path), which has no compiled modules of its own. Symbolic links to the installed ones (the
.so files and _build_info.json, all git-ignored) make that import work and always follow the
latest `make install`. Tests still run from tests/, on the installed package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

COMPILED = ('*.so', '_build_info.json')


def main() -> int:
    source = Path(__file__).resolve().parent.parent / 'kapre_fast'
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != source.parent]
    found = importlib.util.find_spec('kapre_fast')
    if found is None or found.origin is None:
        print('link_build: kapre_fast is not installed in this Python', file=sys.stderr)
        return 1
    installed = Path(found.origin).parent
    if installed == source:
        return 0  # an in-place (editable) install: nothing to link
    for pattern in COMPILED:
        for stale in source.glob(pattern):
            if stale.is_symlink() or stale.name == '_build_info.json':
                stale.unlink()
        for built in installed.glob(pattern):
            (source / built.name).symlink_to(built)
    return 0


if __name__ == '__main__':
    sys.exit(main())
