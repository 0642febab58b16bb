"""Per-stage time of the fused front-end kernel on configurations A-D (issue #29).

    python bench/stages.py                 # build the instrumented core, then time A-D
    python bench/stages.py --quick         # small inputs (a smoke run)

Builds `_core` with -DKAPRE_FAST_STAGE_TIMING=ON into build/stage-timing (time stamp counters
around each stage of the tile kernel: framing + FFT + magnitude, filterbank, decibels, store;
csrc/core/stage_timing.h), runs kapre_fast.cpu on it at 1 thread in a process of its own, and
reports per configuration: each stage's share of the counted time, its time per tile, and the
filterbank's cost per multiply-add (one band-bin of one tile), so that A's and D's filterbanks
compare per unit of work. Times per tile are the median call's CPU time split by the stages'
shares of the time stamp counts. The release build has no counters; this one costs a few
percent. Writes build/bench-results/stages-<date>.{json,md} (bench/publish.py publishes it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))
from bench import timing  # noqa: E402  (standard library only)
from bench import configs, report  # noqa: E402

BUILD = CHECKOUT / 'build' / 'stage-timing'
STAGES = ('transform', 'filterbank', 'decibel', 'store')
FUNCTIONS = {'mel': 'melspectrogram', 'log': 'log_frequency_spectrogram', 'stft': 'stft_magnitude'}


def build_core() -> Path:
    """The instrumented _core, built (incrementally) into BUILD; returns the module's path."""
    python = sys.executable
    pybind11 = subprocess.run(
        [python, '-m', 'pybind11', '--cmakedir'], capture_output=True, text=True, check=True
    ).stdout.strip()
    cmake = shutil.which('cmake', path=str(Path(python).parent)) or 'cmake'
    subprocess.run(
        [
            cmake,
            '-S',
            str(CHECKOUT),
            '-B',
            str(BUILD),
            '-G',
            'Ninja',
            '-DKAPRE_FAST_STAGE_TIMING=ON',
            '-DKAPRE_FAST_TF=OFF',
            '-DKAPRE_FAST_CUDA=OFF',
            '-DKAPRE_FAST_TORCH=OFF',
            '-DKAPRE_FAST_JAX=OFF',
            '-DCMAKE_BUILD_TYPE=Release',
            f'-DPython_EXECUTABLE={python}',
            f'-Dpybind11_DIR={pybind11}',
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [cmake, '--build', str(BUILD), '--target', '_core'], check=True, capture_output=True
    )
    return next(BUILD.glob('_core*.so'))


def package_with(core: Path) -> Path:
    """A copy of the checkout's Python package with the instrumented _core: its folder."""
    target = BUILD / 'pkg' / 'kapre_fast'
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for source in (CHECKOUT / 'kapre_fast').glob('*.py'):
        shutil.copy2(source, target / source.name)
    shutil.copy2(core, target / core.name)
    return target.parent


def measure(names, quick, repeats) -> list:
    """In the instrumented process: per configuration, the stage counts of `repeats` calls at
    1 thread and the median call's CPU time."""
    import numpy as np

    # The package on PYTHONPATH (the instrumented copy), not the checkout's source folder.
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != CHECKOUT]
    from kapre_fast import _core, cpu

    if _core.stage_counts() is None:
        raise SystemExit('stages: this _core was built without KAPRE_FAST_STAGE_TIMING')
    records = []
    for name in names:
        config = configs.CONFIGS[name]
        x = configs.synthesize(config.sized(quick))
        function = getattr(cpu, FUNCTIONS[config.kind])
        spec = getattr(cpu.FrontEnd, FUNCTIONS[config.kind])(**config.kapre_kwargs)
        out = function(x, threads=1, **config.kapre_kwargs)
        for _ in range(3):
            function(x, threads=1, out=out, **config.kapre_kwargs)
        _core.stage_counts(reset=True)
        seconds = []
        for _ in range(repeats):
            start = time.process_time()
            function(x, threads=1, out=out, **config.kapre_kwargs)
            seconds.append(time.process_time() - start)
        counts = _core.stage_counts(reset=True)
        tiles = counts['tiles'] / repeats
        band_bins = int(np.sum(spec.sparse_filterbank()[1])) if spec.filterbank != 'none' else 0
        records.append(
            {
                'config': name,
                'title': config.title,
                'counts': counts,
                'repeats': repeats,
                'tiles_per_call': tiles,
                'median_call_ms': statistics.median(seconds) * 1e3,
                'band_bins_per_tile': band_bins,
                'isa': _core.isa(),
            }
        )
    return records


def table(records) -> str:
    lines = [
        '| config | stage | share of counted time | us per tile | TSC counts per tile |',
        '|---|---|---|---|---|',
    ]
    for record in records:
        counts = record['counts']
        total = sum(counts[stage] for stage in STAGES)
        per_tile_us = record['median_call_ms'] * 1e3 / record['tiles_per_call']
        for stage in STAGES:
            if counts[stage] == 0:
                continue
            share = counts[stage] / total
            lines.append(
                f'| {record["config"]} | {stage} | {share:.1%} | '
                f'{share * per_tile_us:.2f} | '
                f'{counts[stage] / record["repeats"] / record["tiles_per_call"]:.0f} |'
            )
    lines += [
        '',
        '| config | filterbank multiply-adds per tile | TSC counts per multiply-add |',
        '|---|---|---|',
    ]
    for record in records:
        if record['band_bins_per_tile']:
            per_tile = record['counts']['filterbank'] / record['repeats'] / record['tiles_per_call']
            lines.append(
                f'| {record["config"]} | {record["band_bins_per_tile"]} | '
                f'{per_tile / record["band_bins_per_tile"]:.3f} |'
            )
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='small inputs, few repeats')
    parser.add_argument('--configs', default='A,B,C,D')
    parser.add_argument('--out', type=Path, default=timing.RUNS_FOLDER)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = configs.parse_names(args.configs)
    repeats = 3 if args.quick else 20
    if args.worker:
        print(json.dumps(measure(names, args.quick, repeats)))
        return 0
    package = package_with(build_core())
    env = dict(os.environ, PYTHONPATH=str(package), KAPRE_FAST_THREADS='1')
    load_before = os.getloadavg()
    worker = subprocess.run(
        [sys.executable, __file__, '--worker', '--configs', args.configs]
        + (['--quick'] if args.quick else []),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    records = json.loads(worker.stdout.strip().splitlines()[-1])
    machine = report.machine_info(load_before, os.getloadavg())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f'stages-{stamp}{"_quick" if args.quick else ""}'
    result = {'machine': machine, 'quick': args.quick, 'records': records}
    (args.out / f'{stem}.json').write_text(json.dumps(result, indent=1))
    text = (
        f'# Kernel stages, {machine["date_utc"]}\n\n{machine["cpu_model"]} '
        f'(family {machine["cpu_family"]}), {records[0]["isa"]}, 1 thread, '
        f'load {load_before[0]:.2f} before; median CPU time of {repeats} calls split by the '
        "stages' shares of time stamp counts (bench/stages.py).\n\n" + table(records) + '\n'
    )
    (args.out / f'{stem}.md').write_text(text)
    print(text)
    print(f'wrote {args.out / stem}.{{json,md}}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
