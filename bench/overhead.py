"""Per-call overhead of the framework bindings above the kernel (issue #25): the same small
front end (config B's mel, one 4096-sample example, 1 thread) through kapre_fast.cpu on NumPy,
kapre_fast.torch eagerly on a CPU tensor (function and nn.Module), kapre_fast.jax eagerly and
under jax.jit, and the fused TF op eagerly; median CPU time per call over many calls, and each
binding's excess over kapre_fast.cpu.

    python bench/overhead.py [--calls 400]

Writes build/bench-results/overhead-<date>.{json,md}; a binding whose framework is missing is
listed as unavailable.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))
from bench import timing  # noqa: E402  (standard library only)
from bench import report  # noqa: E402

KWARGS = dict(
    n_fft=512,
    win_length=400,
    hop_length=160,
    sample_rate=16000,
    n_mels=64,
    return_decibel=True,
    input_data_format='channels_last',
    output_data_format='channels_last',
)


def median_us(call, calls) -> float:
    for _ in range(20):
        call()
    seconds = []
    for _ in range(calls):
        start = time.process_time()
        call()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds) * 1e6


def methods(x):
    """{name: zero-argument call} for every binding installed here."""
    from kapre_fast import cpu

    found = {'kapre_fast.cpu (NumPy)': lambda: cpu.melspectrogram(x, threads=1, **KWARGS)}
    try:
        import torch

        import kapre_fast.torch as kft
    except ImportError:
        pass
    else:
        torch.set_num_threads(1)
        tensor = torch.from_numpy(x)
        module = kft.MelSpectrogram(threads=1, **KWARGS)
        found['kapre_fast.torch function'] = lambda: kft.melspectrogram(tensor, threads=1, **KWARGS)
        found['kapre_fast.torch nn.Module'] = lambda: module(tensor)
    try:
        import jax

        import kapre_fast.jax as kfj
    except ImportError:
        pass
    else:
        array = jax.numpy.asarray(x)
        jitted = jax.jit(lambda a: kfj.melspectrogram(a, **KWARGS))
        found['kapre_fast.jax eager'] = lambda: kfj.melspectrogram(
            array, **KWARGS
        ).block_until_ready()
        found['kapre_fast.jax jit'] = lambda: jitted(array).block_until_ready()
    try:
        import tensorflow as tf

        from kapre_fast import ops
        from kapre_fast.spec import FrontEnd
    except ImportError:
        pass
    else:
        spec = FrontEnd.melspectrogram(**KWARGS)
        constant = tf.constant(x)
        found['kapre_fast.ops (TF eager)'] = lambda: ops.front_end(constant, spec)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--calls', type=int, default=400)
    parser.add_argument('--out', type=Path, default=timing.RUNS_FOLDER)
    args = parser.parse_args(argv)
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != CHECKOUT]
    import numpy as np

    x = np.random.default_rng(0).standard_normal((1, 4096, 1)).astype(np.float32)
    load_before = os.getloadavg()
    results = {name: median_us(call, args.calls) for name, call in methods(x).items()}
    base = results['kapre_fast.cpu (NumPy)']
    machine = report.machine_info(load_before, os.getloadavg())
    lines = [
        f'# Binding overhead per call, {machine["date_utc"]}',
        '',
        f"{machine['cpu_model']}, 1 thread, load {load_before[0]:.2f} before; config B's mel "
        f'on one 4096-sample example; median CPU time of {args.calls} calls '
        '(bench/overhead.py).',
        '',
        '| binding | us per call | above kapre_fast.cpu |',
        '|---|---|---|',
    ]
    for name, us in results.items():
        lines.append(f'| {name} | {us:.1f} | {us - base:+.1f} |')
    text = '\n'.join(lines) + '\n'
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f'overhead-{stamp}.md').write_text(text)
    (args.out / f'overhead-{stamp}.json').write_text(
        json.dumps({'machine': machine, 'calls': args.calls, 'us_per_call': results}, indent=1)
    )
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
