"""Publishes benchmark runs: copies each run in build/bench-results (where `make bench` and the
other bench targets write, git-ignored) that bench/results (tracked) does not have yet, then
rewrites bench/results/latest.md from the newest full bench/run.py run there.

    python bench/publish.py            # every new run
    python bench/publish.py STEM ...   # only these runs (file stems, e.g. 20261206-120000_vm)

Quick runs (smoke tests, `<out>/quick/`) and failed runs (`<out>/failed/`) are never published.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.timing import PUBLISHED_FOLDER, RUNS_FOLDER  # noqa: E402

SUFFIXES = ('.json', '.md', '.png')


def runs(folder: Path, stems=None) -> dict:
    """{stem: [files]} of the runs directly in `folder` (latest.md is not a run)."""
    found = {}
    for path in sorted(folder.glob('*')):
        if path.is_file() and path.suffix in SUFFIXES and path.name != 'latest.md':
            found.setdefault(path.stem, []).append(path)
    return {stem: files for stem, files in found.items() if stems is None or stem in stems}


def publish(source: Path, target: Path, stems=None) -> list:
    """Copies the runs of `source` missing from `target`; returns the stems copied."""
    wanted = set(stems) if stems else None
    new = runs(source, wanted)
    if wanted and wanted - set(new):
        raise SystemExit(f'publish: no run {", ".join(sorted(wanted - set(new)))} in {source}')
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for stem, files in new.items():
        if any((target / path.name).exists() for path in files):
            continue
        for path in files:
            shutil.copy2(path, target / path.name)
        copied.append(stem)
    return copied


def main(argv) -> int:
    copied = publish(RUNS_FOLDER, PUBLISHED_FOLDER, argv or None)
    print(f'published {len(copied)} run(s) into {PUBLISHED_FOLDER}: {", ".join(copied) or "-"}')
    # bench/run.py's own runs are named <date>-<time>_<machine>; latest.md follows the newest.
    full = [path for path in PUBLISHED_FOLDER.glob('2*_*.json')]
    if copied and full:
        newest = max(full, key=lambda path: path.stem)
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name('run.py')), '--rerender', str(newest)],
            check=True,
        )
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
