"""The export table (issue #27): the front end of configs A-D as a user ships it, against kapre and
kapre_fast's fused op, at 1 and 2 threads, with accuracy against the fused op.

    PYTHONPATH=. python bench/export_table.py                # A-D, 1 and 2 threads
    PYTHONPATH=. python bench/export_table.py --quick        # smoke sizes (<out>/quick/)
    PYTHONPATH=. python bench/export_table.py --configs A --threads 1

Rows (bench/baselines.py prepares each, on the same input, configs.synthesize):
- kapre: the kapre.composed layer in tf.function; kapre_fast_op: the fused TF op in tf.function,
  the reference of the accuracy column;
- previous builtin (tf / LiteRT / onnxruntime): kapre_fast/builtin.py as it is at the git
  revision --previous (default: PREVIOUS_REVISION, the last builtin before the matmul FFT),
  loaded from `git show` and put in place of
  kapre_fast.builtin while its rows are prepared and first called, so they run the same export
  route (kapre_fast.export on a kapre_fast.composed model) with the old FFT;
- builtin tf: kapre_fast.builtin.front_end in tf.function; exported SavedModel: to_savedmodel,
  loaded, its serve endpoint; LiteRT: to_tflite in the LiteRT interpreter (XNNPACK,
  num_threads); onnxruntime: to_onnx in onnxruntime (intra_op_num_threads).

Unlike bench/run.py this times the kapre_fast that Python imports (run it with PYTHONPATH=. to
time the checkout), so a branch's export path can be measured without installing it. Each
thread count runs in a worker process (timing.limit_threads); every output is checked against
the fused op's before timing (front_end_extras.measure: a row beyond the limit is a `mismatch`,
not timed): ATOL_DB dB for dB configurations, RTOL of the largest magnitude for C. Then median
of repeats (timing.FULL), ratios to kapre and to the previous builtin on the same target.
Results: <out>/export-<UTC date>-<time>.{json,md} with machine, versions and load average.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if __package__ in (None, ''):
    sys.path.insert(0, str(CHECKOUT))

from bench import timing  # noqa: E402  (standard library only)

if __name__ == '__main__':
    timing.ensure_clean_environment()  # before NumPy loads OpenBLAS

from bench import baselines, configs, report  # noqa: E402
from bench import front_end_extras as extras  # noqa: E402  (Peer, Comparison, measure)
from bench import run as bench_run  # noqa: E402  (thread counts)

# Correctness limits against the fused op, checked before timing: float32 FFTs differ by
# ~1e-3 dB (0.01 dB where a bin sits near a log filter's edge) and ~1e-7 of the peak magnitude.
ATOL_DB = 0.1
RTOL = 1e-5
DEFAULT_OUT = timing.RUNS_FOLDER
# The last revision whose builtin.py computed the DFT as one matmul per radix over the full
# complex spectrum with frames by tf.gather (issue #27's starting point).
PREVIOUS_REVISION = '95a17ac'

# (key, label, baselines.prepare_*, previous builtin?)
ROWS = [
    ('kapre', 'kapre tf.function', baselines.prepare_kapre, False),
    ('fused', 'kapre_fast fused op', baselines.prepare_kapre_fast_op, False),
    ('old_tf', 'previous builtin, tf.function', baselines.prepare_kapre_fast_builtin, True),
    ('old_litert', 'previous builtin, LiteRT', baselines.prepare_kapre_fast_litert, True),
    ('old_onnx', 'previous builtin, onnxruntime', baselines.prepare_kapre_fast_onnx, True),
    ('tf', 'builtin, tf.function', baselines.prepare_kapre_fast_builtin, False),
    ('savedmodel', 'exported SavedModel in TF', baselines.prepare_kapre_fast_savedmodel, False),
    ('litert', 'exported TFLite on LiteRT', baselines.prepare_kapre_fast_litert, False),
    ('onnx', 'exported ONNX on onnxruntime', baselines.prepare_kapre_fast_onnx, False),
]
TARGETS = {'tf': 'old_tf', 'litert': 'old_litert', 'onnx': 'old_onnx'}


def previous_builtin(revision: str):
    """kapre_fast/builtin.py at `revision`, as a module (None when git cannot show it)."""
    try:
        source = subprocess.run(
            ['git', '-C', str(CHECKOUT), 'show', f'{revision}:kapre_fast/builtin.py'],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix='kapre_fast_previous_')) / 'previous_builtin.py'
    path.write_text(source)
    spec = importlib.util.spec_from_file_location('kapre_fast_previous_builtin', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, 'compute'):
        # The Backend protocol's names (kapre_fast._backends, which the layers call) over the
        # old module's front_end(audio, spec) and inverse_stft(stft, spec).
        module.compute = lambda spec, x: module.front_end(x, spec)
        module.inverse = lambda spec, X: module.inverse_stft(X, spec)
    return module


@contextlib.contextmanager
def builtin_replaced_by(module):
    """kapre_fast.builtin is `module` inside (the layers' registry, kapre_fast._backends, looks
    it up in sys.modules when they trace)."""
    import kapre_fast
    import kapre_fast.builtin  # noqa: F401  (loaded, so there is one to put back)
    import kapre_fast.export  # noqa: F401  (before the swap: it keeps this checkout's builtin)

    saved = sys.modules['kapre_fast.builtin'], kapre_fast.builtin
    sys.modules['kapre_fast.builtin'] = kapre_fast.builtin = module
    try:
        yield
    finally:
        sys.modules['kapre_fast.builtin'], kapre_fast.builtin = saved


def peers(sized, audio, threads, previous) -> list:
    found = []
    for key, label, prepare, old in ROWS:
        if old and previous is None:
            found.append(extras.Peer(key, label, reason='no previous revision'))
            continue
        try:
            with builtin_replaced_by(previous) if old else contextlib.nullcontext():
                prepared = prepare(sized, audio, threads)
                output = prepared.run()  # traced / converted with the module in place
        except baselines.Unavailable as error:
            found.append(extras.Peer(key, label, reason=str(error)))
            continue
        del output
        found.append(extras.Peer(key, label, prepared.run, prepared.features))
    return found


def run_worker(args) -> int:
    controls = timing.limit_threads(args.worker_threads)
    timing.freeze_heap()
    plan = timing.QUICK if args.quick else timing.FULL
    previous = previous_builtin(args.previous)
    records = []
    for name in configs.parse_names(args.configs):
        sized = configs.CONFIGS[name].sized(args.quick)
        audio = configs.synthesize(sized)
        decibel = sized.config.decibel
        comparison = extras.Comparison(
            'export',
            f'{name}: {sized.config.title}',
            'fused',
            'dB' if decibel else '',
            atol=ATOL_DB if decibel else 0.0,
            rtol=0.0 if decibel else RTOL,
            peers=peers(sized, audio, args.worker_threads, previous),
        )
        rows = extras.measure(comparison, plan)
        medians = {row['method']: row['median_s'] for row in rows if 'median_s' in row}
        for row in rows:
            if 'median_s' not in row:
                continue
            row['vs_kapre'] = medians['kapre'] / row['median_s'] if 'kapre' in medians else None
            old = TARGETS.get(row['method'])
            row['vs_previous'] = (medians[old] / row['median_s']) if old in medians else None
        records.append(
            dict(
                config=name,
                threads=args.worker_threads,
                title=comparison.title,
                unit=comparison.unit,
                work=sized.work(),
                rows=rows,
            )
        )
        del audio
    Path(args.worker_output).write_text(json.dumps(dict(controls=controls, records=records)))
    return 0


def _difference(row, unit) -> str:
    if 'max_difference' not in row:
        return '-'
    if unit == 'dB':
        return f'{row["max_difference"]:.2g} dB'
    return f'{row["max_difference"]:.2g}'


def markdown(results: dict) -> str:
    machine, versions = results['machine'], results['versions']
    load = ' / '.join(f'{machine[f"load_average_{when}"][0]:.2f}' for when in ('before', 'after'))
    lines = [
        f'# Export table (#27), {machine["date_utc"]}'
        f'{" (quick: smoke sizes)" if results["quick"] else ""}',
        '',
        f'{machine["cpu_model"]}, {machine["available_cores"]} core(s) available, 1-minute '
        f'load average {load} before / after the run (a shared machine: other work ran '
        f'meanwhile); kapre_fast from {results["kapre_fast_path"]} (commit '
        f'{str(results["commit"])[:10]}), previous builtin from git revision '
        f'{results["previous"]}; kapre {versions.get("kapre")}, tensorflow '
        f'{versions.get("tensorflow")}, ai-edge-litert {results["litert"]}, onnxruntime '
        f'{results["onnxruntime"]}, tf2onnx {results["tf2onnx"]}.',
        '',
        'Median ms of repeated calls on the whole batch (bench/configs.py), first call and '
        "warm-up excluded. x kapre: kapre's median / this row's (above 1: faster); "
        "x previous: the previous builtin's median on the same target / this row's. "
        'max diff: largest difference from the fused op (dB configurations in dB; C: '
        'magnitude), checked before timing.',
        '',
    ]
    if results.get('note'):
        lines += [f'Note: {results["note"]}', '']
    lines += [
        '| config | threads | method | median ms | IQR ms | x kapre | x previous | '
        'max diff vs fused |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for record in results['records']:
        for row in record['rows']:
            head = f'| {record["config"]} | {record["threads"]} | {row["label"]} |'
            diff = _difference(row, record['unit'])
            if 'median_s' not in row:
                lines.append(f'{head} {row["status"]}: {row.get("reason", "")} | | | | {diff} |')
                continue
            ratio = lambda v: '-' if v is None else f'{v:.2f}'  # noqa: E731
            lines.append(
                f'{head} {1e3 * row["median_s"]:.2f} | {1e3 * row["p25_s"]:.1f}-'
                f'{1e3 * row["p75_s"]:.1f} | {ratio(row["vs_kapre"])} | '
                f'{ratio(row["vs_previous"])} | {diff} |'
            )
    lines += [
        '',
        '## Summary (median ms)',
        '',
        '| config | threads | ' + ' | '.join(label for _, label, _, _ in ROWS) + ' |',
        '|---|---|' + '---|' * len(ROWS),
    ]
    for record in results['records']:
        by_key = {row['method']: row for row in record['rows']}
        cells = [
            f'{1e3 * by_key[key]["median_s"]:.1f}'
            if 'median_s' in by_key.get(key, {})
            else by_key.get(key, {}).get('status', '-')
            for key, _, _, _ in ROWS
        ]
        lines.append(f'| {record["config"]} | {record["threads"]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _version(module):
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - reported as missing
        return 'missing'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke sizes, few calls; <out>/quick/')
    parser.add_argument('--configs', default='all', help='comma-separated subset of A,B,C,D')
    parser.add_argument(
        '--threads', default='1,2', help="comma-separated thread counts ('all': every core)"
    )
    parser.add_argument(
        '--previous',
        default=PREVIOUS_REVISION,
        help='git revision whose kapre_fast/builtin.py is the previous builtin '
        f'(default: {PREVIOUS_REVISION}, the last one before the matmul FFT)',
    )
    parser.add_argument('--out', default=str(DEFAULT_OUT))
    parser.add_argument('--note', default='', help='a line for the report (e.g. the load)')
    parser.add_argument('--worker-threads', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--worker-output', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        configs.parse_names(args.configs)
        thread_counts = bench_run.parse_threads(args.threads)
    except ValueError as error:
        parser.error(str(error))
    if args.worker_threads is not None:
        return run_worker(args)
    load_before = os.getloadavg()
    # worker_environment keeps this environment's PYTHONPATH (the package the tests point at).
    arguments = ['--configs', args.configs, '--previous', args.previous]
    collected = timing.run_thread_workers(
        Path(__file__).resolve(), arguments + (['--quick'] if args.quick else []), thread_counts
    )
    if collected is None:
        return 1
    records, controls = collected
    import kapre_fast

    commit = subprocess.run(
        ['git', '-C', str(CHECKOUT), 'rev-parse', 'HEAD'], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ['git', '-C', str(CHECKOUT), 'status', '--porcelain', '-uno'],
        capture_output=True,
        text=True,
    ).stdout.strip()
    results = dict(
        machine=report.machine_info(load_before, os.getloadavg()),
        versions=report.library_versions(),
        kapre_fast_path=str(Path(kapre_fast.__file__).resolve().parent),
        commit=commit + (' + uncommitted changes' if dirty else ''),
        previous=args.previous,
        litert=_version_of('ai-edge-litert'),
        onnxruntime=_version('onnxruntime'),
        tf2onnx=_version('tf2onnx'),
        thread_counts=thread_counts,
        thread_controls=controls,
        quick=args.quick,
        plan=dataclasses.asdict(timing.QUICK if args.quick else timing.FULL),
        atol_db=ATOL_DB,
        rtol=RTOL,
        note=args.note,
        records=records,
    )
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    out = Path(args.out) / 'quick' if args.quick else Path(args.out)
    paths = report.save(results, markdown(results), out, f'export-{stamp}')
    print(paths['markdown'].read_text())
    print('wrote ' + ', '.join(str(path) for path in paths.values()))
    bad = [
        f'{r["config"]}/{r["threads"]}/{row["method"]}: {row["status"]}'
        for r in records
        for row in r['rows']
        if row['status'] not in ('ok', 'unavailable')
    ]
    if bad:
        print('export_table.py: ' + '; '.join(bad), file=sys.stderr)
    return 1 if bad else 0


def _version_of(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return 'missing'


if __name__ == '__main__':
    sys.exit(main())
