"""One training step of a small CNN on config B's front end, kapre vs kapre_fast, with Keras'
jit_compile on and off (issue #13: what XLA costs or gives each front end in training).

    python bench/train_step.py [--steps 20] [--threads 1] [--out bench/results]

Same model around each front end (mel dB -> Conv2D(16, 3) -> MaxPool -> Conv2D(32, 3) ->
global average -> Dense(10)), same input (64 x 1 s @ 16 kHz), same optimizer; the median of
`steps` timed train_on_batch calls after two warm-up steps. Under jit_compile=True kapre's
layers are compiled by XLA, and kapre_fast's fused layers trace their pipeline in TensorFlow's
own ops (which XLA compiles); with jit_compile=False kapre runs its TF ops, kapre_fast its fused
op. Writes train_step-<date>.{json,md} to --out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

# The installed kapre_fast, not this checkout's source folder (as bench/run.py).
sys.path[:] = [
    p for p in sys.path if Path(p or '.').resolve() != Path(__file__).resolve().parents[1]
]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `bench` itself
from bench import timing  # noqa: E402
from bench.configs import CONFIGS  # noqa: E402


def build(getter, config, jit_compile):
    import keras

    keras.utils.set_random_seed(0)
    length = int(config.sample_rate * config.seconds)
    model = keras.Sequential(
        [
            getter(input_shape=(length, 1), **config.kapre_kwargs),
            keras.layers.Conv2D(16, 3, activation='relu'),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation='relu'),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer='adam',
        jit_compile=jit_compile,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def time_steps(model, x, y, steps):
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=str(timing.RUNS_FOLDER))
    args = parser.parse_args(argv)
    timing.limit_threads(args.threads)
    import numpy as np
    import kapre.composed
    import kapre_fast
    import kapre_fast.composed

    config = CONFIGS['B']
    rng = np.random.default_rng(0)
    x = rng.standard_normal((config.batch, int(config.sample_rate * config.seconds), 1)).astype(
        np.float32
    )
    y = rng.integers(0, 10, config.batch)
    rows = []
    for name, module in [('kapre 0.4.1', kapre.composed), ('kapre_fast', kapre_fast.composed)]:
        for jit_compile in (False, True):
            model = build(module.get_melspectrogram_layer, config, jit_compile)
            ms = time_steps(model, x, y, args.steps)
            rows.append(
                dict(
                    front_end=name,
                    jit_compile=jit_compile,
                    kept_jit_compile=bool(model.jit_compile),
                    median_ms=ms,
                )
            )
            print(
                f'{name:12s} jit_compile={jit_compile!s:5s} (kept: {model.jit_compile!s:5s}) '
                f'{ms:8.2f} ms/step',
                flush=True,
            )
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        date=stamp,
        machine=platform.processor() or platform.machine(),
        threads=args.threads,
        steps=args.steps,
        config=config.title,
        kapre_fast=kapre_fast.__version__,
    )
    (out / f'train_step-{stamp}.json').write_text(json.dumps(dict(meta, rows=rows), indent=1))
    lines = [
        f'# Train step, config B ({config.title}), {args.threads} thread(s), {stamp}',
        '',
        '| front end | jit_compile | kept | median ms / step |',
        '|---|---|---|---|',
    ]
    lines += [
        f'| {r["front_end"]} | {r["jit_compile"]} | {r["kept_jit_compile"]} | '
        f'{r["median_ms"]:.1f} |'
        for r in rows
    ]
    (out / f'train_step-{stamp}.md').write_text('\n'.join(lines) + '\n')
    print(f'wrote {out}/train_step-{stamp}.{{json,md}}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
