"""The complex STFT and the inverse STFT (issue #18 item 2): kapre's STFT / InverseSTFT layers,
the same under XLA, kapre_fast.cpu.stft / istft and kapre_fast's TF ops, on configs A-D's framing.

    python bench/stft_paths.py                  # configs A-D, 1 and 2 threads (a few minutes)
    python bench/stft_paths.py --quick          # smoke sizes, few calls (results in quick/)
    make bench-stft                             # the first line

Each configuration's n_fft, win_length, hop_length, batch and seconds (bench/configs.py; its
features part does not apply) and its input (configs.synthesize). Forward: the complex64 STFT,
channels_last. Inverse: the waveform from kapre's STFT of the same audio. Each thread count runs
in a worker process of its own (TensorFlow fixes its pools once per process; timing.limit_threads
pins TF's intra/inter-op threads and BLAS, kapre_fast gets threads=). Every peer's first output
is checked against kapre's (tf.function) BEFORE timing (front_end_extras.measure): the largest
difference of a real or imaginary part (forward) or sample (inverse) must be within RTOL x
kapre's largest magnitude, float32 rounding, else the peer is a 'mismatch', is not timed and the
run exits 1. Then median of repeats (timing.FULL; --quick: timing.QUICK), its ratio to kapre and
to kapre under XLA, and GFLOP/s on the 2.5 N log2 N per frame yardstick of bench/run.py.
Results: <out>/stft_paths-<UTC date>-<time>.{json,md} with machine, versions and load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if __package__ in (None, ''):
    sys.path.insert(0, str(CHECKOUT))  # for `bench` itself; taken off below

from bench import timing  # noqa: E402  (standard library only)

if __name__ == '__main__':
    timing.ensure_clean_environment()  # before NumPy loads OpenBLAS
    # The installed kapre_fast, not this checkout's source folder (as bench/run.py).
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != CHECKOUT]

from bench import configs, report  # noqa: E402
from bench import front_end_extras as extras  # noqa: E402  (Peer, Comparison, measure)
from bench import run as bench_run  # noqa: E402  (thread counts)

# float32 rounding of an FFT of up to 4096 points (and of the overlap-add): the largest
# difference seen here was ~1.7e-7 of kapre's peak (forward) and ~4e-7 (inverse); 1e-5 leaves
# room for another ISA's summation order and still catches a real error (wrong bin, window, hop).
RTOL = 1e-5
DEFAULT_OUT = timing.RUNS_FOLDER


def framing(config) -> dict:
    """kapre's STFT / InverseSTFT arguments of a configuration (channels_last both ways)."""
    return dict(
        n_fft=config.n_fft,
        win_length=config.win_length,
        hop_length=config.hop_length,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )


def parts(output):
    """A complex output as float32 (..., 2): real and imaginary parts compared separately."""
    import numpy as np

    array = np.ascontiguousarray(np.asarray(output))
    return (
        array.view(array.real.dtype).reshape(array.shape + (2,))
        if np.iscomplexobj(array)
        else array
    )


def comparisons(sized, threads) -> list:
    import kapre
    import numpy as np
    import tensorflow as tf

    from kapre_fast import cpu, layers

    config = sized.config
    audio = configs.synthesize(sized)
    x = tf.constant(audio)
    forward = kapre.STFT(**framing(config))
    kapre_stft = tf.function(lambda a: forward(a))
    kapre_stft_xla = tf.function(lambda a: forward(a), jit_compile=True)
    fast_layer = layers.STFT(**framing(config))
    fast_stft = tf.function(lambda a: fast_layer(a))
    stft_peers = [
        extras.Peer('kapre', 'kapre.STFT in tf.function', lambda: kapre_stft(x), parts),
        extras.Peer(
            'kapre_xla',
            'kapre.STFT in tf.function(jit_compile=True)',
            lambda: kapre_stft_xla(x),
            parts,
        ),
        extras.Peer(
            'kapre_fast_cpu',
            f'kapre_fast.cpu.stft(threads={threads})',
            lambda: cpu.stft(audio, threads=threads, **framing(config)),
            parts,
        ),
        extras.Peer(
            'kapre_fast_op',
            'kapre_fast.layers.STFT (its TF op) in tf.function',
            lambda: fast_stft(x),
            parts,
        ),
    ]
    spectrum = kapre_stft(x)
    spectrum_np = np.asarray(spectrum)
    inverse = kapre.InverseSTFT(**framing(config))
    kapre_istft = tf.function(lambda s: inverse(s))
    kapre_istft_xla = tf.function(lambda s: inverse(s), jit_compile=True)
    fast_inverse = layers.InverseSTFT(**framing(config))
    fast_istft = tf.function(lambda s: fast_inverse(s))
    istft_peers = [
        extras.Peer(
            'kapre', 'kapre.InverseSTFT in tf.function', lambda: kapre_istft(spectrum), parts
        ),
        extras.Peer(
            'kapre_xla',
            'kapre.InverseSTFT in tf.function(jit_compile=True)',
            lambda: kapre_istft_xla(spectrum),
            parts,
        ),
        extras.Peer(
            'kapre_fast_cpu',
            f'kapre_fast.cpu.istft(threads={threads})',
            lambda: cpu.istft(
                spectrum_np,
                n_fft=config.n_fft,
                win_length=config.win_length,
                hop_length=config.hop_length,
                stft_data_format='channels_last',
                waveform_data_format='channels_last',
                threads=threads,
            ),
            parts,
        ),
        extras.Peer(
            'kapre_fast_op',
            'kapre_fast.layers.InverseSTFT (its TF op) in tf.function',
            lambda: fast_istft(spectrum),
            parts,
        ),
    ]
    return [
        extras.Comparison(
            'stft',
            f'{config.name}: complex STFT',
            'kapre',
            '',
            atol=0.0,
            rtol=RTOL,
            peers=stft_peers,
        ),
        extras.Comparison(
            'istft',
            f'{config.name}: inverse STFT',
            'kapre',
            '',
            atol=0.0,
            rtol=RTOL,
            peers=istft_peers,
        ),
    ]


def add_ratios(rows: list, flops: float):
    """Each timed row's speed-up over kapre and over kapre under XLA (above 1: faster than
    them) and its GFLOP/s."""
    medians = {row['method']: row['median_s'] for row in rows if 'median_s' in row}
    for row in rows:
        if 'median_s' not in row:
            continue
        for key, name in (('kapre', 'vs_kapre'), ('kapre_xla', 'vs_xla')):
            row[name] = medians[key] / row['median_s'] if key in medians else None
        row['gflops'] = flops / row['median_s'] / 1e9


def run_worker(args) -> int:
    controls = timing.limit_threads(args.worker_threads)
    timing.freeze_heap()
    plan = timing.QUICK if args.quick else timing.FULL
    records = []
    for name in configs.parse_names(args.configs):
        sized = configs.CONFIGS[name].sized(args.quick)
        flops = sized.work()['fft_flops']
        for comparison in comparisons(sized, args.worker_threads):
            rows = extras.measure(comparison, plan)
            add_ratios(rows, flops)
            records.append(
                dict(
                    config=name,
                    threads=args.worker_threads,
                    direction=comparison.key,
                    title=comparison.title,
                    rtol=comparison.rtol,
                    work=sized.work(),
                    rows=rows,
                )
            )
    Path(args.worker_output).write_text(json.dumps(dict(controls=controls, records=records)))
    return 0


def markdown(results: dict) -> str:
    machine, versions = results['machine'], results['versions']
    load = ' / '.join(f'{machine[f"load_average_{when}"][0]:.2f}' for when in ('before', 'after'))
    lines = [
        f'# Complex STFT and inverse STFT paths (#18), {machine["date_utc"]}'
        f'{" (quick: smoke sizes)" if results["quick"] else ""}',
        '',
        f'{machine["cpu_model"]}, {machine["available_cores"]} core(s) available, 1-minute '
        f'load average {load} before / after the run (a shared machine: other work may '
        f'have run meanwhile); kapre_fast {versions["kapre_fast"]} '
        f'({results["kapre_fast_isa"]}, commit {str(results["build"].get("git_commit"))[:10]}'
        f'), kapre {versions["kapre"]}, tensorflow {versions["tensorflow"]}.',
        '',
        "Configs A-D's framing and input (bench/configs.py), channels_last. Median of the "
        "timed calls after warm-up; x kapre / x XLA: kapre's (XLA's) median / this row's, "
        'above 1 = faster; GFLOP/s: frames x 2.5 N log2 N / median; max diff: largest '
        "difference of a real/imaginary part (STFT) or sample (inverse) from kapre's, "
        f"checked before timing (limit {RTOL:g} x kapre's largest magnitude).",
        '',
    ]
    if results.get('note'):
        lines += [f'Note: {results["note"]}', '']
    per_cycle, assumption = report.core_peak(machine)
    peak = machine['cpu_mhz'] / 1e3 * per_cycle if machine.get('cpu_mhz') else None
    if peak:
        lines += [
            f'% of peak (the roofline): GFLOP/s / (threads x {peak:.0f} GFLOP/s per core: '
            f'{machine["cpu_mhz"] / 1e3:.2f} GHz x {per_cycle} FLOP/cycle, {assumption}).',
            '',
        ]
    lines += [
        '| config | path | threads | method | median ms | x kapre | x XLA | GFLOP/s '
        '| % of peak | max diff |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for record in results['records']:
        for row in record['rows']:
            head = (
                f'| {record["config"]} | {record["direction"]} | {record["threads"]} | '
                f'{row["label"]} |'
            )
            diff = f'{row["max_difference"]:.2g}' if 'max_difference' in row else '-'
            if 'median_s' not in row:
                lines.append(f'{head} {row["status"]}: {row.get("reason", "")} | | | | | {diff} |')
                continue
            ratio = lambda v: '-' if v is None else f'{v:.2f}'  # noqa: E731
            share = f'{row["gflops"] / (peak * record["threads"]):.0%}' if peak else '-'
            lines.append(
                f'{head} {1e3 * row["median_s"]:.2f} | {ratio(row["vs_kapre"])} | '
                f'{ratio(row["vs_xla"])} | {row["gflops"]:.1f} | {share} | {diff} |'
            )
    return '\n'.join(lines) + '\n'


def panels(records: list) -> list:
    """The chart's panels: one per config and direction, a bar per method and thread count."""
    by_panel = {}
    for record in records:
        bars = by_panel.setdefault(record['title'], {})
        for row in record['rows']:
            if 'median_s' in row:  # one bar group per method, whatever its label's thread count
                label = row['label'].replace(f'threads={record["threads"]}', 'threads=n')
                bars.setdefault(label, {})[record['threads']] = 1e3 * row['median_s']
    return [(title, list(bars.items())) for title, bars in by_panel.items()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke sizes, few calls; <out>/quick/')
    parser.add_argument('--configs', default='all', help='comma-separated subset of A,B,C,D')
    parser.add_argument(
        '--threads', default='1,2', help="comma-separated thread counts ('all': every core)"
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
    collected = timing.run_thread_workers(
        Path(__file__).resolve(),
        ['--configs', args.configs] + (['--quick'] if args.quick else []),
        thread_counts,
    )
    if collected is None:
        return 1
    records, controls = collected
    import kapre_fast

    package = Path(kapre_fast.__file__).resolve().parent
    results = dict(
        machine=report.machine_info(load_before, os.getloadavg()),
        versions=report.library_versions(),
        kapre_fast_isa=report.kapre_fast_isa(),
        build=report.kapre_fast_build(package, package, CHECKOUT),
        thread_counts=thread_counts,
        thread_controls=controls,
        quick=args.quick,
        plan=dataclasses.asdict(timing.QUICK if args.quick else timing.FULL),
        rtol=RTOL,
        note=args.note,
        records=records,
    )
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    out = Path(args.out) / 'quick' if args.quick else Path(args.out)
    paths = report.save(results, markdown(results), out, f'stft_paths-{stamp}')
    chart = report.save_panels_chart(
        panels(records),
        f'Complex STFT and inverse STFT, {results["machine"]["cpu_model"]}, {stamp[:8]}',
        out,
        f'stft_paths-{stamp}',
    )
    if chart is not None:
        paths['png'] = chart
    print(paths['markdown'].read_text())
    print('wrote ' + ', '.join(str(path) for path in paths.values()))
    bad = [
        f'{r["config"]}/{r["direction"]}/{r["threads"]}/{row["method"]}: {row["status"]}'
        for r in records
        for row in r['rows']
        if row['status'] != 'ok'
    ]
    if bad:
        print('stft_paths.py: ' + '; '.join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
