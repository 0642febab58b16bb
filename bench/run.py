"""kapre_fast CPU benchmark: one command times every method on the same input.

    python bench/run.py                      # all configurations, 1 thread and all cores
    python bench/run.py --quick              # smoke run on small inputs (about a minute)
    python bench/run.py --configs A,B --threads 1

Each thread count runs in a worker process of its own (TensorFlow fixes its thread pools once per
process); the parent collects the workers' records and writes the report (bench/report.py).
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
if __package__ in (None, ''):
    # Run as a script: make the `bench` package importable (taken off again below).
    sys.path.insert(0, str(CHECKOUT))

from bench import timing  # noqa: E402  (standard library only)

if __name__ == '__main__':  # imported (by the tests), it must not re-execute their process
    timing.ensure_clean_environment()  # before NumPy loads OpenBLAS

from bench import accuracy, baselines, configs, report  # noqa: E402

# The benchmark times the INSTALLED kapre_fast: the checkout's source folder (on sys.path as the
# script's repository root, the current directory of `python -m bench.run`, or PYTHONPATH) would
# shadow it with a package whose compiled modules may be missing or stale. (Not when imported
# as a module, e.g. by the tests: their sys.path is theirs.)
if __name__ == '__main__':
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != CHECKOUT]

# Workers import the copy of kapre_fast their parent took (see snapshot_kapre_fast).
SNAPSHOT_VARIABLE = 'KAPRE_FAST_BENCH_SNAPSHOT'
if os.environ.get(SNAPSHOT_VARIABLE):
    sys.path.insert(0, os.environ[SNAPSHOT_VARIABLE])

DEFAULT_OUT = timing.RUNS_FOLDER


def parse_args(argv):
    summary, examples = __doc__.split('\n\n')[:2]
    parser = argparse.ArgumentParser(
        description=summary,
        epilog='examples:\n' + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='small inputs and few repeats: a smoke test, not a measurement '
        '(results go to <out>/quick/)',
    )
    parser.add_argument('--configs', default='all', help='comma-separated subset of A,B,C,D')
    parser.add_argument(
        '--threads',
        default='1,all',
        help="comma-separated thread counts; 'all' = every available core (default: 1,all)",
    )
    parser.add_argument(
        '--methods',
        default='all',
        help='comma-separated method keys (kapre is always run: the reference): '
        + ','.join(baselines.METHODS_BY_KEY),
    )
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='results folder')
    parser.add_argument(
        '--order',
        choices=('blocks', 'interleaved'),
        default='blocks',
        help="blocks (default): each method's timed calls back to back; "
        'interleaved: one call of each method per round (shares background '
        'load evenly, but at several threads a call can meet the previous '
        "method's spinning threads)",
    )
    parser.add_argument('--no-plot', action='store_true', help='skip the PNG chart')
    parser.add_argument(
        '--rerender',
        type=Path,
        metavar='JSON',
        help='rewrite the markdown and PNG of an earlier run from its JSON (no timing)',
    )
    # Internal: run as the worker for one thread count.
    parser.add_argument('--worker-threads', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--worker-output', type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def parse_threads(text: str) -> list:
    return configs.parse_counts(text, 'thread count', {'all': timing.available_cores()})


# ----- worker ------------------------------------------------------------------------------------


def run_worker(args) -> int:
    faulthandler.enable()  # a crash in native code still names the method (stderr)
    # kapre 0.4.1 passes input_shape to its first layer, which Keras 3 warns about on every model.
    warnings.filterwarnings('ignore', message='Do not pass an `input_shape`')
    threads = args.worker_threads
    controls = timing.limit_threads(threads)
    timing.freeze_heap()
    plan = timing.QUICK if args.quick else timing.FULL
    names = configs.parse_names(args.configs)
    methods = baselines.parse_keys(args.methods)
    with open(args.worker_output, 'a') as sink:

        def emit(record):
            sink.write(json.dumps(record) + '\n')
            sink.flush()

        spec = importlib.util.find_spec('kapre_fast')
        emit(
            {
                'type': 'worker',
                'threads': threads,
                'controls': controls,
                'plan': vars(plan),
                'pid': os.getpid(),
                'kapre_fast_from': spec.origin if spec else None,
            }
        )
        for name in names:
            sized = configs.CONFIGS[name].sized(args.quick)
            for record in run_config(sized, methods, threads, plan, args.order):
                emit(record)
                print(progress_line(record, sized), file=sys.stderr, flush=True)
        emit({'type': 'worker_end', 'threads': threads, 'blas': timing.blas_info()})
    return 0


def run_config(sized, methods, threads, plan, order='blocks') -> list:
    """Every method on one configuration: prepare, first call (checked against kapre's output),
    warm-up, then the timed calls (timing.blocks or timing.interleaved). Returns one record per
    method, in table order."""
    audio = configs.synthesize(sized)
    records, runs, first = {}, {}, {}
    reference = None
    for method in methods:
        record = {
            'type': 'result',
            'config': sized.config.name,
            'threads': threads,
            'method': method.key,
            'label': method.label,
            'floor': method.floor,
        }
        records[method.key] = record
        started = time.perf_counter()
        try:
            prepared = method.prepare(sized, audio, threads)
        except baselines.Unavailable as error:
            record.update(status='unavailable', reason=str(error))
            continue
        except Exception as error:  # a broken baseline must not stop the others
            record.update(status='error', reason=_describe(error))
            continue
        record['note'] = prepared.note
        record['prepare_s'] = time.perf_counter() - started
        try:
            seconds, output = timing.first_call(prepared.run)
            first[method.key] = (seconds, timing.warmup_calls(plan, seconds))
        except Exception as error:
            record.update(status='error', reason=_describe(error))
            continue
        features = check(prepared, output, reference, sized.config, record)
        if method.key == baselines.REFERENCE:
            reference = features
        del output, features
        runs[method.key] = prepared.run

    def failed(key, error):
        records[key].update(status='error', reason=_describe(error))

    timed = timing.interleaved if order == 'interleaved' else timing.blocks
    samples = timed(
        runs, {key: warmup for key, (_, warmup) in first.items()}, plan, on_error=failed
    )
    for key, times in samples.items():
        seconds, warmup = first[key]
        result = timing.Timing(first_call=seconds, samples=times, warmup=warmup)
        records[key].update(status='ok', **result.as_dict())
    return [records[method.key] for method in methods]


def check(prepared, output, reference, config, record):
    """Stores in `record` how the first call's output differs from kapre's; returns the
    output's comparable features (None when it computes other features)."""
    if prepared.features is None:
        record['accuracy'] = {'comparable': False, 'why': 'computes different features'}
        return None
    try:
        features = prepared.features(output)
    except Exception as error:
        record['accuracy'] = {'comparable': False, 'why': f'conversion failed: {_describe(error)}'}
        return None
    if record['method'] == baselines.REFERENCE:
        return features
    if reference is None:
        record['accuracy'] = {'comparable': False, 'why': 'no kapre output'}
    else:
        try:
            record['accuracy'] = accuracy.compare(features, reference, config)
        except Exception as error:
            record['accuracy'] = {
                'comparable': False,
                'why': f'comparison failed: {_describe(error)}',
            }
    return features


_describe = report.describe_error


def progress_line(record, sized) -> str:
    head = f'[{record["threads"]} thr] {record["config"]} {record["method"]:<20}'
    if record['status'] != 'ok':
        return f'{head} {record["status"]}: {record["reason"]}'
    median = record['median_s']
    return (
        f'{head} {median * 1e3:9.2f} ms  x{sized.audio_seconds / median:8.0f} realtime  '
        f'({record["repeats"]} repeats, first call {record["first_call_s"] * 1e3:.0f} ms)'
    )


# ----- parent ------------------------------------------------------------------------------------


def run_parent(args) -> int:
    names = configs.parse_names(args.configs)
    methods = baselines.parse_keys(args.methods)
    thread_counts = parse_threads(args.threads)
    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='kapre_fast_bench_copy_') as folder:
        build = snapshot_kapre_fast(Path(folder))
        if 'error' in build:
            print(
                f'bench/run.py: {build["error"]} in {sys.executable}; install it first '
                '(`make install`, or `pip install --no-build-isolation .` in the checkout): '
                'the benchmark times the installed build, not the source folder',
                file=sys.stderr,
            )
            return 2
        print(f'bench/run.py: timing kapre_fast installed at {build["source"]}', file=sys.stderr)
        return measure_and_report(args, names, methods, thread_counts, started, load_before, build)


def snapshot_kapre_fast(folder: Path) -> dict:
    """Copies the kapre_fast package into `folder` and makes this process and its workers
    import the copy: on a shared checkout, a rebuild copied over the native libraries during
    a run would crash a worker or mix two builds. Returns the report's description of it."""
    spec = importlib.util.find_spec('kapre_fast')  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return {'error': 'kapre_fast is not importable'}
    source = Path(list(spec.submodule_search_locations)[0])
    copy = folder / 'kapre_fast'
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns('__pycache__'))
    sys.path.insert(0, str(folder))
    os.environ[SNAPSHOT_VARIABLE] = str(folder)  # inherited by the workers
    return report.kapre_fast_build(copy, source, CHECKOUT)


def measure_and_report(args, names, methods, thread_counts, started, load_before, build):
    workers, records = [], []
    for threads in thread_counts:
        worker, results = run_one_worker(args, threads, names, methods)
        workers.append(worker)
        records.extend(results)
    results = {
        'schema': 1,
        'quick': args.quick,
        'order': args.order,
        'command': ' '.join(shlex.quote(part) for part in sys.orig_argv),
        'started_unix': started,
        'wall_s': time.time() - started,
        'machine': report.machine_info(load_before, os.getloadavg()),
        'versions': report.library_versions(),
        'kapre_fast_isa': report.kapre_fast_isa(),
        'kapre_fast_build': build,
        'environment': {
            'removed': timing.removed_variables(),
            'still_set': {
                name: os.environ[name] for name in timing.UNSET_VARIABLES if name in os.environ
            },
        },
        'configs': {
            name: {
                'title': configs.CONFIGS[name].title,
                'kind': configs.CONFIGS[name].kind,
                'kapre_kwargs': configs.CONFIGS[name].kapre_kwargs,
                'work': configs.CONFIGS[name].sized(args.quick).work(),
            }
            for name in names
        },
        'methods': [{'key': m.key, 'label': m.label, 'floor': m.floor} for m in methods],
        'thread_counts': thread_counts,
        'workers': workers,
        'results': records,
    }
    return publish(results, args.out, plot_chart=not args.no_plot)


def failures(results: dict) -> tuple:
    """(records of kapre_fast methods that did not run, records of other methods that raised).
    A kapre_fast method must run: 'unavailable' is a failure too (e.g. its TF ops missing)."""
    ours = [
        r
        for r in results['results']
        if r['method'].startswith('kapre_fast') and r['status'] != 'ok'
    ]
    others = [
        r
        for r in results['results']
        if not r['method'].startswith('kapre_fast') and r['status'] == 'error'
    ]
    return ours, others


def publish(results: dict, out: Path, plot_chart: bool = True) -> int:
    """Writes the report and returns the exit status: 0 when every method ran (baselines may
    be unavailable), 1 when any method raised or a kapre_fast method did not run. A run in which
    kapre_fast failed measured nothing of it: it goes to <out>/failed/, never to latest.md."""
    ours, others = failures(results)
    results['kapre_fast_failed'] = bool(ours)
    if ours:
        folder = out / 'failed'
    else:
        folder = out / 'quick' if results['quick'] else out
    paths = report.write(
        results, folder, latest=not results['quick'] and not ours, plot_chart=plot_chart
    )
    print(paths['markdown_text'])
    print('\nwrote ' + ', '.join(str(p) for key, p in paths.items() if key != 'markdown_text'))
    for record in ours + others:
        print(
            f'bench/run.py: {record["config"]} {record["threads"]} thr {record["method"]}: '
            f'{record["status"]}: {record["reason"]}',
            file=sys.stderr,
        )
    if ours:
        print(
            f'bench/run.py: FAILED: {len(ours)} kapre_fast run(s) did not run; this run is '
            f'not a measurement (kept in {folder}, latest.md unchanged)',
            file=sys.stderr,
        )
    elif others:
        print(f'bench/run.py: FAILED: {len(others)} baseline run(s) raised', file=sys.stderr)
    return 1 if ours or others else 0


def run_one_worker(args, threads, names, methods):
    """Runs the worker for `threads`; returns (worker info, result records)."""
    with tempfile.TemporaryDirectory(prefix='kapre_fast_bench_') as folder:
        output = Path(folder) / 'records.jsonl'
        output.touch()
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            '--worker-threads',
            str(threads),
            '--worker-output',
            str(output),
            '--configs',
            ','.join(names),
            '--methods',
            ','.join(m.key for m in methods),
        ]
        if args.quick:
            command.append('--quick')
        command += ['--order', args.order]
        print(f'--- {threads} thread(s): worker starting', file=sys.stderr, flush=True)
        completed = subprocess.run(command, env=timing.worker_environment(threads))
        lines = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    worker = {'threads': threads, 'returncode': completed.returncode}
    for line in lines:
        if line['type'] in ('worker', 'worker_end'):
            worker.update({key: value for key, value in line.items() if key != 'type'})
    results = [line for line in lines if line['type'] == 'result']
    if completed.returncode != 0:
        # The worker died (crash or kill): record what it did not get to.
        seen = {(r['config'], r['method']) for r in results}
        for name in names:
            for method in methods:
                if (name, method.key) not in seen:
                    results.append(
                        {
                            'type': 'result',
                            'config': name,
                            'threads': threads,
                            'method': method.key,
                            'label': method.label,
                            'floor': method.floor,
                            'status': 'error',
                            'reason': f'worker {_exit(completed.returncode)} before '
                            'this method finished (its stderr names the '
                            'method that crashed)',
                        }
                    )
    return worker, results


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f'killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'killed by signal {-code}'
    return f'exited with code {code}'


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker_threads is not None:
        return run_worker(args)
    if args.rerender is not None:
        return rerender(args)
    return run_parent(args)


def rerender(args) -> int:
    results = json.loads(args.rerender.read_text())
    folder = args.rerender.parent
    # latest.md follows the newest full run in the folder (stems sort by date); only this
    # script's runs (<date>-<time>_<host>): the other benchmarks' files share the folder.
    newest = max(
        (
            path.stem
            for path in folder.glob('*.json')
            if path.stem[:1].isdigit() and not path.stem.endswith('_quick')
        ),
        default=None,
    )
    paths = report.write(
        results,
        folder,
        plot_chart=not args.no_plot,
        latest=not results['quick']
        and not results.get('kapre_fast_failed')
        and report.file_stem(results) == newest,
    )
    print('rewrote ' + ', '.join(str(p) for key, p in paths.items() if key != 'markdown_text'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
