"""MFCC, mel with compat='librosa', PCEN and trainable front ends (issue #15): what each costs
next to the other ways of computing the same numbers, in one run.

    python bench/front_end_extras.py                 # config A's input, 1 thread (~1 min)
    python bench/front_end_extras.py --quick         # tiny input, few calls (results in quick/)
    python bench/front_end_extras.py --only mfcc,pcen --threads 2 --note "idle machine"
    make bench-extras                                # the first line

Input: config A's (bench/configs.py: 16 x 10 s @ 22.05 kHz chirp plus noise), n_fft 2048, hop
512, 128 mels, with librosa's numbers (compat='librosa': centred frames, power mel,
power_to_db). Comparisons, each peer on the same input:

- mfcc: kapre_fast.cpu.mfcc(n_mfcc=20), librosa.feature.mfcc per example, the torch composition
  (bench/librosa_torch.py: torch.stft -> power -> mel matmul -> dB -> DCT matmul) and
  kapre_fast.torch.mfcc where that exists and takes compat='librosa'.
- mel: kapre_fast.cpu.melspectrogram(return_decibel=True), librosa.feature.melspectrogram +
  power_to_db per example, the torch composition, kapre_fast.torch.melspectrogram.
- pcen: librosa's recommended use, pcen(melspectrogram(power=1) * 2**31), on the audio scaled by
  2**31 (the mel is linear in it): kapre_fast.cpu.pcen(power=1), its parts (the fused mel; the
  native PCEN pass alone, in place), librosa per example, librosa.pcen on kapre_fast's mel (one
  float64 batch), the torch composition (its smoother a loop over frames), kapre_fast.torch.pcen.
- trainable: forward + backward in tf.function (8 x 3 s of the same chirp, kapre's numbers):
  the fused mel layer with trainable_window and trainable_filterbank (gradients to audio, window
  and band weights), the same layer without trainable weights and kapre's composed mel layer
  (gradient to the audio).

Every library runs at --threads (bench/timing.limit_threads: torch, TF, BLAS/OpenMP;
scipy.fft workers around librosa; threads= for kapre_fast). Each peer is called once (first
call, reported) and its output checked against the comparison's reference (librosa; kapre's
gradient for trainable) BEFORE any timing: the largest absolute difference is printed and must be
within atol + rtol x the reference's largest magnitude, else the peer is a 'mismatch', is not
timed and the run exits 1. Then the peers are timed one after the other (timing.blocks: 2
warm-up calls, 5-25 timed calls within 3 s each; --quick: timing.QUICK), median reported with
IQR and minimum, and each row's ratio to the comparison's first row (kapre_fast). Results:
<out>/front_end_extras-<UTC date>-<time>.{json,md} with the machine, versions and load average.
Exit status 0 when every available peer ran and agreed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
from pathlib import Path
from typing import Callable, Optional

CHECKOUT = Path(__file__).resolve().parents[1]
if __package__ in (None, ''):
    sys.path.insert(0, str(CHECKOUT))  # for `bench` itself; taken off below

from bench import timing  # noqa: E402  (standard library only)

if __name__ == '__main__':
    timing.ensure_clean_environment()  # before NumPy loads OpenBLAS
    # The installed kapre_fast, not this checkout's source folder (as bench/run.py).
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != CHECKOUT]

from bench import configs, report  # noqa: E402

CONFIG = configs.CONFIGS['A']
N_MFCC = 20
PCEN_SCALE = 2.0**31  # librosa.pcen's documented use: pcen(S * 2**31) of a magnitude mel
COMPARISONS = ('mfcc', 'mel', 'pcen', 'trainable')
DEFAULT_OUT = timing.RUNS_FOLDER


@dataclasses.dataclass
class Peer:
    """One way of computing a comparison's result. run: one call on the whole batch (None:
    unavailable, `reason` says why); features: its output as an array comparable with the
    reference's (None: not compared, e.g. a part of the computation)."""

    key: str
    label: str
    run: Optional[Callable] = None
    features: Optional[Callable] = None
    reason: str = ''


@dataclasses.dataclass
class Comparison:
    key: str
    title: str
    reference: str  # the Peer key every output is checked against
    unit: str
    # Limit: atol + rtol x the reference's largest magnitude. Set at 4-12x what float32 (FFT and
    # summation order) gave here at full size: 2.8e-4 of coefficients up to ~330, 8e-4 dB for
    # the mel, 2.8e-5 of PCEN values up to ~4, 1e-6 relative for the gradients.
    atol: float
    rtol: float
    peers: list


def front_end(sized) -> dict:
    c = sized.config
    return dict(
        n_fft=c.n_fft,
        hop_length=c.hop_length,
        n_mels=c.kapre_kwargs['n_mels'],
        sample_rate=c.sample_rate,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )


def librosa_kwargs(fe: dict) -> dict:
    return dict(
        sr=fe['sample_rate'], n_fft=fe['n_fft'], hop_length=fe['hop_length'], n_mels=fe['n_mels']
    )


def per_example(function, audio, threads):
    """run() calling `function` on each example (librosa's functions take one signal), scipy.fft
    (librosa's FFT) at `threads` workers; the results stacked."""
    import numpy as np
    import scipy.fft

    examples = [np.ascontiguousarray(example) for example in audio[..., 0]]

    def run():
        with scipy.fft.set_workers(threads):
            return np.stack([function(example) for example in examples])

    return run


def frames_last_to_middle(array):
    """librosa's (batch, features, frames) as (batch, frames, features)."""
    return array.transpose(0, 2, 1)


def kapre_fast_torch_peer(function, tensor, threads, **kwargs) -> Peer:
    """kapre_fast.torch.<function>, imported when the comparison is built: another change adds
    its MFCC/PCEN and presets. Unavailable when missing or when it refuses these arguments."""
    label = f'kapre_fast.torch.{function}'
    try:
        import kapre_fast.torch as kft
    except ImportError as error:
        return Peer('kapre_fast_torch', label, reason=f'not importable ({error})')
    target = getattr(kft, function, None)
    if target is None:
        return Peer('kapre_fast_torch', label, reason=f'kapre_fast.torch has no {function}')
    try:
        target(tensor[:1, : 4 * kwargs['n_fft']], threads=threads, **kwargs)
    except (TypeError, ValueError) as error:
        return Peer('kapre_fast_torch', label, reason=f'refuses: {report.describe_error(error)}')
    return Peer(
        'kapre_fast_torch',
        label,
        lambda: target(tensor, threads=threads, **kwargs),
        lambda output: output.numpy()[..., 0],
    )


def torch_setup(sized, audio, power):
    import torch

    from bench.librosa_torch import LibrosaTorch

    fe = front_end(sized)
    composition = LibrosaTorch(
        torch, fe['sample_rate'], fe['n_fft'], fe['hop_length'], fe['n_mels'], power=power
    )
    return torch, composition, torch.from_numpy(audio[..., 0].copy()), torch.from_numpy(audio)


def inference(torch, run):
    def wrapped():
        with torch.inference_mode():
            return run()

    return wrapped


def mfcc_comparison(sized, audio, threads) -> Comparison:
    import librosa

    from kapre_fast import cpu

    fe = front_end(sized)
    torch, composition, signal, tensor = torch_setup(sized, audio, power=2.0)
    dct = composition.dct_matrix(N_MFCC)
    peers = [
        Peer(
            'kapre_fast_cpu',
            f"kapre_fast.cpu.mfcc(compat='librosa', n_mfcc={N_MFCC})",
            lambda: cpu.mfcc(audio, compat='librosa', n_mfcc=N_MFCC, threads=threads, **fe),
            lambda output: output[..., 0],
        ),
        Peer(
            'librosa',
            'librosa.feature.mfcc, per example',
            per_example(
                lambda y: librosa.feature.mfcc(y=y, n_mfcc=N_MFCC, **librosa_kwargs(fe)),
                audio,
                threads,
            ),
            frames_last_to_middle,
        ),
        Peer(
            'torch',
            'torch: stft -> power -> mel matmul -> dB -> DCT matmul',
            inference(torch, lambda: composition.mfcc(signal, dct)),
            lambda output: output.numpy(),
        ),
        kapre_fast_torch_peer('mfcc', tensor, threads, compat='librosa', n_mfcc=N_MFCC, **fe),
    ]
    return Comparison(
        'mfcc',
        f'MFCC, {N_MFCC} coefficients (librosa.feature.mfcc numbers)',
        'librosa',
        'dB (cepstral)',
        atol=0.0,
        rtol=1e-5,
        peers=peers,
    )


def mel_comparison(sized, audio, threads) -> Comparison:
    import librosa

    from kapre_fast import cpu

    fe = front_end(sized)
    torch, composition, signal, tensor = torch_setup(sized, audio, power=2.0)
    peers = [
        Peer(
            'kapre_fast_cpu',
            "kapre_fast.cpu.melspectrogram(compat='librosa', return_decibel=True)",
            lambda: cpu.melspectrogram(
                audio, compat='librosa', return_decibel=True, threads=threads, **fe
            ),
            lambda output: output[..., 0],
        ),
        Peer(
            'librosa',
            'librosa.feature.melspectrogram + power_to_db, per example',
            per_example(
                lambda y: librosa.power_to_db(
                    librosa.feature.melspectrogram(y=y, **librosa_kwargs(fe))
                ),
                audio,
                threads,
            ),
            frames_last_to_middle,
        ),
        Peer(
            'torch',
            'torch: stft -> power -> mel matmul -> dB',
            inference(torch, lambda: composition.power_to_db(composition.mel(signal))),
            lambda output: output.numpy(),
        ),
        kapre_fast_torch_peer(
            'melspectrogram', tensor, threads, compat='librosa', return_decibel=True, **fe
        ),
    ]
    return Comparison(
        'mel',
        "mel dB with compat='librosa' (melspectrogram + power_to_db)",
        'librosa',
        'dB',
        atol=5e-3,
        rtol=0.0,
        peers=peers,
    )


def pcen_comparison(sized, audio, threads) -> Comparison:
    import librosa
    import numpy as np

    from kapre_fast import cpu, spec

    fe = front_end(sized)
    scaled = audio * np.float32(PCEN_SCALE)
    torch, composition, signal, tensor = torch_setup(sized, scaled, power=1.0)
    mel = cpu.melspectrogram(scaled, compat='librosa', power=1, threads=threads, **fe)
    mel64 = mel[..., 0].transpose(0, 2, 1).astype(np.float64)  # (batch, mels, frames)
    buffer = mel.copy()
    constants = spec.pcen_constants(fe['sample_rate'], fe['hop_length'])
    sr_hop = dict(sr=fe['sample_rate'], hop_length=fe['hop_length'])
    peers = [
        Peer(
            'kapre_fast_cpu',
            "kapre_fast.cpu.pcen(compat='librosa', power=1): mel + PCEN pass",
            lambda: cpu.pcen(scaled, compat='librosa', power=1, threads=threads, **fe),
            lambda output: output[..., 0],
        ),
        Peer(
            'kapre_fast_cpu_mel',
            '  its fused mel alone',
            lambda: cpu.melspectrogram(scaled, compat='librosa', power=1, threads=threads, **fe),
        ),
        Peer(
            'kapre_fast_cpu_pass',
            '  its PCEN pass alone (cpu.apply_pcen, in place)',
            lambda: cpu.apply_pcen(buffer, constants, 1, threads=threads),
        ),
        Peer(
            'librosa',
            'librosa.feature.melspectrogram(power=1) + librosa.pcen, per example',
            per_example(
                lambda y: librosa.pcen(
                    librosa.feature.melspectrogram(y=y, power=1, **librosa_kwargs(fe)), **sr_hop
                ),
                scaled,
                threads,
            ),
            frames_last_to_middle,
        ),
        Peer(
            'librosa_pcen_only',
            "  librosa.pcen alone, on kapre_fast's mel (float64 batch)",
            lambda: librosa.pcen(mel64, **sr_hop),
            frames_last_to_middle,
        ),
        Peer(
            'torch',
            'torch: stft -> abs -> mel matmul -> PCEN (smoother: a loop over frames)',
            inference(torch, lambda: composition.pcen(signal)),
            lambda output: output.numpy(),
        ),
        kapre_fast_torch_peer('pcen', tensor, threads, compat='librosa', power=1, **fe),
    ]
    return Comparison(
        'pcen',
        'PCEN of the magnitude mel x 2**31 (librosa.pcen defaults)',
        'librosa',
        '(PCEN units)',
        atol=0.0,
        rtol=3e-5,
        peers=peers,
    )


def trainable_comparison(sized, threads) -> Comparison:
    import tensorflow as tf
    from kapre.composed import get_melspectrogram_layer as kapre_mel

    from kapre_fast import layers

    del threads  # TF's pools were fixed by limit_threads
    # Forward + backward at 8 x 3 s (--quick: its own small input) of config A's front end,
    # kapre's numbers (a trainable layer refuses presets).
    small = configs.Sized(CONFIG, min(8, sized.batch), min(3.0, sized.seconds))
    audio = tf.constant(configs.synthesize(small))
    fe = {k: v for k, v in front_end(small).items() if not k.endswith('data_format')}
    formats = dict(input_data_format='channels_last', output_data_format='channels_last')

    def step_for(layer, variables):
        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x) ** 2)
            return tape.gradient(loss, [x] + variables)

        return lambda: [g.numpy() for g in step(audio)]

    trainable = layers.FrontEnd(
        filterbank='mel', trainable_window=True, trainable_filterbank=True, **formats, **fe
    )
    trainable.build(audio.shape)
    fixed = layers.FrontEnd(filterbank='mel', **formats, **fe)
    kapre = kapre_mel(input_shape=(small.n_samples, 1), **formats, **fe)
    gradient = lambda grads: grads[0]  # noqa: E731  d loss / d audio
    peers = [
        Peer(
            'kapre_fast_trainable',
            'kapre_fast.layers.FrontEnd, trainable window + filterbank '
            '(d audio, window, band weights)',
            step_for(trainable, trainable.trainable_weights),
            gradient,
        ),
        Peer(
            'kapre_fast',
            'kapre_fast.layers.FrontEnd, not trainable (d audio)',
            step_for(fixed, []),
            gradient,
        ),
        Peer('kapre', "kapre's composed mel layer (d audio)", step_for(kapre, []), gradient),
    ]
    return Comparison(
        'trainable',
        f'mel forward + backward in tf.function, {small.batch} x '
        f'{small.seconds:g} s (gradient of sum(mel**2))',
        'kapre',
        '(gradient)',
        atol=0.0,
        rtol=1e-5,
        peers=peers,
    )


def max_difference(ours, reference) -> float:
    import numpy as np

    if ours.shape != reference.shape:
        return float('inf')
    return float(np.max(np.abs(ours.astype(np.float64) - reference)))


def measure(comparison: Comparison, plan: timing.Plan) -> list:
    """Rows of one comparison: first calls, agreement with the reference, then the timing."""
    import numpy as np

    rows, runs, warmups, outputs = {}, {}, {}, {}
    for peer in comparison.peers:
        row = rows[peer.key] = dict(method=peer.key, label=peer.label)
        if peer.run is None:
            row.update(status='unavailable', reason=peer.reason)
            continue
        try:
            first, output = timing.first_call(peer.run)
        except Exception as error:  # noqa: BLE001 - reported, the others go on
            row.update(status='error', reason=report.describe_error(error))
            continue
        row.update(status='ok', first_call_s=first)
        runs[peer.key], warmups[peer.key] = peer.run, timing.warmup_calls(plan, first)
        if peer.features is not None:  # a copy: LiteRT's output is a view of its buffer
            outputs[peer.key] = np.array(peer.features(output))
    reference = outputs.get(comparison.reference)
    if reference is not None:
        reference = reference.astype(np.float64)
        limit = comparison.atol + comparison.rtol * float(np.max(np.abs(reference)))
        for key, output in outputs.items():
            difference = max_difference(output, reference)
            agrees = bool(difference <= limit)
            rows[key].update(max_difference=difference, limit=limit, agrees=agrees)
            print(
                f'{comparison.key}: {rows[key]["label"]}: max |difference| from '
                f'{comparison.reference} {difference:.3g} {comparison.unit} (limit {limit:.3g})'
                f'{"" if agrees else "  MISMATCH"}',
                flush=True,
            )
            if not agrees:
                rows[key].update(
                    status='mismatch',
                    reason=f'differs from {comparison.reference}'
                    f' by {difference:.3g} (limit {limit:.3g})',
                )
                del runs[key]
    elif comparison.reference in runs:
        raise AssertionError(f'{comparison.key}: the reference gave no comparable output')
    del outputs, reference  # not kept through the timing

    def failed(key, error):
        rows[key].update(status='error', reason=report.describe_error(error))

    for key, samples in timing.blocks(runs, warmups, plan, failed).items():
        record = timing.Timing(rows[key]['first_call_s'], samples, warmups[key]).as_dict()
        rows[key].update(record)
    timed = [row for row in rows.values() if 'median_s' in row]
    if timed:
        base = timed[0]
        for row in timed:
            row['ratio_to_first'] = row['median_s'] / base['median_s']
    return list(rows.values())


def markdown(results: dict) -> str:
    machine, versions = results['machine'], results['versions']
    load = ' / '.join(f'{machine[f"load_average_{when}"][0]:.2f}' for when in ('before', 'after'))
    commit = str(results['build'].get('git_commit'))[:10]
    lines = [
        f'# Front-end extras (#15), {results["threads"]} thread(s), {machine["date_utc"]}'
        f'{" (quick: smoke sizes)" if results["quick"] else ""}',
        '',
        f'{machine["cpu_model"]}, {machine["available_cores"]} core(s) available, 1-minute '
        f'load average {load} before / after the run; kapre_fast {versions["kapre_fast"]} '
        f'({results["kapre_fast_isa"]}, commit {commit}), librosa {versions["librosa"]}, '
        f'torch {versions["torch"]}, numpy {versions["numpy"]}.',
        '',
        f'Input: {results["input"]}. Median of the timed calls after warm-up; "x first": '
        "this row's median / the first row's (kapre_fast's) median, so above 1 means "
        'kapre_fast is that many times faster; max diff: largest absolute difference from '
        "the comparison's reference, checked before timing.",
        '',
    ]
    if results.get('note'):
        lines += [f'Note: {results["note"]}', '']
    for comparison in results['comparisons']:
        lines += [
            f'## {comparison["title"]}',
            '',
            f'Reference: `{comparison["reference"]}`; limit: {comparison["atol"]:g} + '
            f'{comparison["rtol"]:g} x its largest magnitude.',
            '',
            '| method | median ms | IQR ms | min ms | x first | max diff |',
            '|---|---|---|---|---|---|',
        ]
        for row in comparison['rows']:
            if row['status'] != 'ok':
                diff = _diff(row)
                lines.append(
                    f'| {row["label"]} | {row["status"]}: {row.get("reason", "")} | | | | {diff} |'
                )
                continue
            lines.append(
                f'| {row["label"]} | {1e3 * row["median_s"]:.2f} | '
                f'{1e3 * row["p25_s"]:.2f}-{1e3 * row["p75_s"]:.2f} | {1e3 * row["min_s"]:.2f} '
                f'| {row["ratio_to_first"]:.2f} | {_diff(row)} |'
            )
        lines.append('')
    return '\n'.join(lines)


def _diff(row) -> str:
    if 'max_difference' not in row:
        return '-'
    return f'{row["max_difference"]:.2g} (limit {row["limit"]:.2g})'


def parse_only(text: str) -> list:
    names = [part.strip().lower() for part in text.split(',') if part.strip()]
    unknown = [name for name in names if name not in COMPARISONS]
    if unknown or not names:
        raise ValueError(
            f'--only: unknown comparison(s) {unknown or text!r}; choose from '
            f'{", ".join(COMPARISONS)}'
        )
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument(
        '--quick',
        action='store_true',
        help="config A's smoke size (2 x 2 s) and few calls; <out>/quick/",
    )
    parser.add_argument(
        '--only',
        default=','.join(COMPARISONS),
        help=f'comma-separated subset of {",".join(COMPARISONS)}',
    )
    parser.add_argument('--out', default=str(DEFAULT_OUT))
    parser.add_argument('--note', default='', help='a line for the report (e.g. the load)')
    args = parser.parse_args(argv)
    try:
        names = parse_only(args.only)
    except ValueError as error:
        parser.error(str(error))
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    load_before = os.getloadavg()
    controls = timing.limit_threads(args.threads)
    import kapre_fast

    sized = CONFIG.sized(args.quick)
    audio = configs.synthesize(sized)
    plan = timing.QUICK if args.quick else timing.FULL
    timing.freeze_heap()
    build = {
        'mfcc': lambda: mfcc_comparison(sized, audio, args.threads),
        'mel': lambda: mel_comparison(sized, audio, args.threads),
        'pcen': lambda: pcen_comparison(sized, audio, args.threads),
        'trainable': lambda: trainable_comparison(sized, args.threads),
    }
    comparisons = []
    for name in names:
        comparison = build[name]()
        rows = measure(comparison, plan)
        comparisons.append(
            dict(
                key=comparison.key,
                title=comparison.title,
                reference=comparison.reference,
                unit=comparison.unit,
                atol=comparison.atol,
                rtol=comparison.rtol,
                rows=rows,
            )
        )
    package = Path(kapre_fast.__file__).resolve().parent
    results = dict(
        machine=report.machine_info(load_before, os.getloadavg()),
        versions=report.library_versions(),
        kapre_fast_isa=report.kapre_fast_isa(),
        build=report.kapre_fast_build(package, package, CHECKOUT),
        threads=args.threads,
        thread_controls=controls,
        quick=args.quick,
        plan=dataclasses.asdict(plan),
        note=args.note,
        input=f'{CONFIG.name}: {sized.batch} x {sized.seconds:g} s @ {CONFIG.sample_rate} Hz '
        f'(configs.synthesize), n_fft {CONFIG.n_fft}, hop {CONFIG.hop_length}, '
        f'{CONFIG.kapre_kwargs["n_mels"]} mels',
        comparisons=comparisons,
    )
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    out = Path(args.out) / 'quick' if args.quick else Path(args.out)
    paths = report.save(results, markdown(results), out, f'front_end_extras-{stamp}')
    # One panel per comparison, a bar per peer (one thread count per run).
    panels = [
        (
            c['title'],
            [
                (row['label'], {args.threads: 1e3 * row['median_s']})
                for row in c['rows']
                if 'median_s' in row
            ],
        )
        for c in comparisons
    ]
    chart = report.save_panels_chart(
        panels,
        f'MFCC, mel presets, PCEN, trainable front end: '
        f'{results["machine"]["cpu_model"]}, {stamp[:8]}',
        out,
        f'front_end_extras-{stamp}',
    )
    if chart is not None:
        paths['png'] = chart
    print(paths['markdown'].read_text())
    print('wrote ' + ', '.join(str(path) for path in paths.values()))
    bad = [
        f'{c["key"]}/{r["method"]}: {r["status"]}'
        for c in comparisons
        for r in c['rows']
        if r['status'] in ('error', 'mismatch')
    ]
    if bad:
        print('front_end_extras.py: ' + '; '.join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
