"""Streaming (#28): the cost of one 10 ms chunk, per backend and exported, next to the peers'
do-it-yourself ring buffers.

    python bench/streaming.py                    # 1 thread, every method (~1-2 min)
    python bench/streaming.py --quick            # few chunks (results in <out>/quick/)
    python bench/streaming.py --note "idle machine"

The stream: 16 kHz audio in chunks of 160 samples (10 ms), n_fft 512, hop 160, 64 mels, kapre's
numbers with pad_begin (each chunk completes exactly one frame), one example, one channel;
magnitude mel and its dB (kapre_fast.cpu only). Methods, each fed the same chunks:

- kapre_fast.streaming.open(..., backend='cpu' / 'torch' / 'jax').push(chunk);
- jax_functions' step under jax.jit (fixed chunk, state as arrays);
- StreamingStep (the Keras layer) in a tf.function; its exported TFLite model (LiteRT
  interpreter, one invoke per chunk) and ONNX model (onnxruntime, one run per chunk);
- peers' do-it-yourself: a NumPy ring buffer of the last n_fft samples, then per chunk
  torch.stft(center=False) + |.| + the mel matmul in torch; the same with tf.signal.stft in a
  tf.function.

Every method's frames are checked against the offline kapre_fast.cpu.melspectrogram before
timing (largest difference relative to its peak, limit 1e-4: builtin's DFT and torch's or TF's
FFT are not the fused kernel's). Timing: a warm-up of 50 chunks, then blocks of --chunks chunks
(a stream carries on through all of them), the methods' blocks interleaved (block r of every
method, then block r + 1: the load of a shared machine falls on all alike), the median of
--repeats blocks per chunk, in microseconds. Results: <out>/streaming-<UTC date>-<time>.{json,md}
with the machine (lscpu's model name), versions and the load average; `python bench/publish.py`
copies them into bench/results.
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
if __package__ in (None, ''):
    sys.path.insert(0, str(CHECKOUT))

from bench import timing  # noqa: E402

SAMPLE_RATE, CHUNK, N_FFT, HOP, N_MELS = 16000, 160, 512, 160, 64
ARGUMENTS = dict(
    n_fft=N_FFT,
    hop_length=HOP,
    n_mels=N_MELS,
    sample_rate=SAMPLE_RATE,
    pad_begin=True,
    input_data_format='channels_last',
    output_data_format='channels_last',
)


def methods():
    """{name: factory() -> push(chunk) -> frames (1, frames, n_mels, 1) NumPy-convertible}."""
    import numpy as np

    from kapre_fast import streaming

    def stream(backend, **extra):
        def make():
            s = streaming.open('melspectrogram', backend=backend, threads=1, **ARGUMENTS, **extra)
            if backend == 'torch':
                import torch

                return lambda chunk: s.push(torch.from_numpy(chunk))
            if backend == 'jax':
                import jax.numpy as jnp

                return lambda chunk: s.push(jnp.asarray(chunk))
            return s.push

        return make

    def jax_step():
        import jax

        init, step, _ = streaming.jax_functions('melspectrogram', CHUNK, threads=1, **ARGUMENTS)
        step = jax.jit(step)
        state = [init(1, 1)]

        def push(chunk):
            state[0], frames, valid = step(state[0], chunk)
            return np.asarray(frames)[:, np.asarray(valid)]

        return push

    def keras_layer():
        import tensorflow as tf
        from kapre_fast import streaming_tf

        layer = streaming_tf.StreamingStep('melspectrogram', CHUNK, ARGUMENTS)
        function = streaming_tf.step_function(layer, 1, 1)
        state = [[tf.constant(v) for v in layer.initial_state(1, 1)]]
        names = layer.state_names

        def push(chunk):
            out = function(tf.constant(chunk), *state[0])
            state[0] = [out[f'new_{n}'] for n in names]
            return out['frames'].numpy()[:, out['valid'].numpy()[0].astype(bool)]

        return push

    def tflite():
        from ai_edge_litert.interpreter import Interpreter
        from kapre_fast import streaming_tf

        layer = streaming_tf.StreamingStep('melspectrogram', CHUNK, ARGUMENTS)
        runner = Interpreter(
            model_content=streaming_tf.to_tflite(layer), num_threads=1
        ).get_signature_runner()
        names = layer.state_names
        state = [dict(zip(names, layer.initial_state(1, 1)))]

        def push(chunk):
            out = runner(chunk=chunk, **state[0])
            state[0] = {n: out[f'new_{n}'] for n in names}
            return out['frames'][:, out['valid'][0].astype(bool)]

        return push

    def onnx():
        import onnxruntime
        from kapre_fast import streaming_tf

        layer = streaming_tf.StreamingStep('melspectrogram', CHUNK, ARGUMENTS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            streaming_tf.to_onnx(layer).SerializeToString(),
            options,
            providers=['CPUExecutionProvider'],
        )
        names = layer.state_names
        outputs = [node.name for node in session.get_outputs()]
        state = [dict(zip(names, layer.initial_state(1, 1)))]

        def push(chunk):
            out = dict(zip(outputs, session.run(None, dict(chunk=chunk, **state[0]))))
            state[0] = {n: out[f'new_{n}'] for n in names}
            return out['frames'][:, out['valid'][0].astype(bool)]

        return push

    def mel_matrix():
        from kapre_fast.spec import FrontEnd

        return FrontEnd.melspectrogram(**ARGUMENTS).dense_filterbank().astype(np.float32)

    def ring_torch():
        import torch

        window = torch.hann_window(N_FFT)  # periodic, as tf.signal.hann_window
        mel = torch.from_numpy(mel_matrix())
        ring = np.zeros(N_FFT, np.float32)

        def push(chunk):
            ring[:-CHUNK] = ring[CHUNK:]
            ring[-CHUNK:] = chunk[0, :, 0]
            spectrum = torch.stft(
                torch.from_numpy(ring), N_FFT, HOP, window=window, center=False, return_complex=True
            ).abs()  # (freq, 1)
            return (spectrum.T @ mel).numpy()[None, :, :, None]

        return push

    def ring_tf():
        import tensorflow as tf

        mel = tf.constant(mel_matrix())

        @tf.function(input_signature=[tf.TensorSpec([N_FFT], tf.float32)])
        def frame(ring):
            spectrum = tf.abs(
                tf.signal.stft(ring, N_FFT, HOP, N_FFT, window_fn=tf.signal.hann_window)
            )
            return tf.matmul(spectrum, mel)

        ring = np.zeros(N_FFT, np.float32)

        def push(chunk):
            ring[:-CHUNK] = ring[CHUNK:]
            ring[-CHUNK:] = chunk[0, :, 0]
            return frame(tf.constant(ring)).numpy()[None, :, :, None]

        return push

    return {
        'kapre_fast.streaming cpu (push)': stream('cpu'),
        'kapre_fast.streaming cpu, dB (push)': stream('cpu', return_decibel=True),
        'kapre_fast.streaming torch (push)': stream('torch'),
        'kapre_fast.streaming jax (push, eager)': stream('jax'),
        'kapre_fast.streaming.jax_functions step, jax.jit': jax_step,
        'StreamingStep Keras layer in tf.function (builtin ops)': keras_layer,
        'exported stateful TFLite (LiteRT, 1 thread)': tflite,
        'exported stateful ONNX (onnxruntime, 1 thread)': onnx,
        'peer DIY: NumPy ring buffer + torch.stft + mel matmul': ring_torch,
        'peer DIY: NumPy ring buffer + tf.signal.stft in tf.function + mel matmul': ring_tf,
    }


def run(chunks, repeats):
    import numpy as np

    import kapre_fast.cpu

    rng = np.random.default_rng(0)
    total = (50 + chunks * repeats) * CHUNK
    audio = (0.1 * rng.standard_normal((1, total + CHUNK, 1))).astype(np.float32)
    check_chunks = 40
    offline = kapre_fast.cpu.melspectrogram(audio[:, : check_chunks * CHUNK], **ARGUMENTS)
    offline_db = kapre_fast.cpu.melspectrogram(
        audio[:, : check_chunks * CHUNK], return_decibel=True, db_dynamic_range=1e30, **ARGUMENTS
    )
    rows, pushes, positions = [], {}, {}
    for name, factory in methods().items():
        row = {'method': name}
        rows.append(row)
        try:
            push = factory()
            frames = np.concatenate(
                [
                    np.asarray(push(audio[:, i * CHUNK : (i + 1) * CHUNK]))
                    for i in range(check_chunks)
                ],
                1,
            )
            reference = offline_db if 'dB' in name else offline
            if 'dB' in name:  # the running clamp does not bind on steady noise
                difference = float(np.abs(frames - reference).max())
            else:
                difference = float(np.abs(frames - reference).max() / np.abs(reference).max())
            row['max_difference'] = difference
            row['difference_kind'] = 'dB' if 'dB' in name else 'relative to peak'
            if frames.shape != reference.shape or not difference <= (
                1e-3 if 'dB' in name else 1e-4
            ):
                row['error'] = f'mismatch: shape {frames.shape}, difference {difference:.3g}'
                continue
            for position in range(check_chunks, 50):  # the rest of the warm-up
                push(audio[:, position * CHUNK : (position + 1) * CHUNK])
            pushes[name], positions[name] = push, 50
        except Exception as error:  # noqa: BLE001  (a missing peer is reported, not fatal)
            row['error'] = f'{type(error).__name__}: {error}'
    # Interleaved: block r of every method, then block r + 1, so that the load of the shared
    # machine at any moment falls on every method alike.
    blocks = {name: [] for name in pushes}
    for _ in range(repeats):
        for name, push in pushes.items():
            position = positions[name]
            pieces = [
                audio[:, (position + i) * CHUNK : (position + i + 1) * CHUNK] for i in range(chunks)
            ]
            start = time.perf_counter()
            for piece in pieces:
                push(piece)
            blocks[name].append((time.perf_counter() - start) / chunks)
            positions[name] = position + chunks
    for row in rows:
        times = blocks.get(row['method'])
        if times:
            row.update(
                us_per_chunk=statistics.median(times) * 1e6,
                min_us_per_chunk=min(times) * 1e6,
                blocks_us=[t * 1e6 for t in times],
            )
        print(
            f'{row["method"]}: {row.get("us_per_chunk", float("nan")):.1f} us/chunk '
            f'{row.get("error", "")}',
            flush=True,
        )
    return rows


def markdown(results) -> str:
    m = results['machine']
    lines = [
        f'# Streaming: cost per 10 ms chunk (#28), {m["date_utc"]}',
        '',
        f'{m["cpu_model"]}, {m["available_cores"]} core(s) available, 1 thread per method; '
        f'1-minute load average {m["load_average_before"][0]:.2f} / '
        f'{m["load_average_after"][0]:.2f} before / after the run (a shared machine: other '
        'work ran meanwhile and skews timings). ' + (results['note'] or ''),
        '',
        f'16 kHz, chunks of {CHUNK} samples, n_fft {N_FFT}, hop {HOP}, {N_MELS} mels, kapre '
        'numbers with pad_begin (one frame per chunk), batch 1, mono. Median over '
        f'{results["repeats"]} blocks of {results["chunks"]} chunks of the time per chunk '
        "(the stream carries on across blocks; the methods' blocks interleaved), its minimum; "
        'max diff: against the offline kapre_fast.cpu.melspectrogram of the first 40 chunks '
        '(relative to its peak; dB rows in dB), checked before timing.',
        '',
        '| method | us per chunk (median) | min | max diff |',
        '|---|---|---|---|',
    ]
    for row in results['rows']:
        if 'error' in row:
            lines.append(f'| {row["method"]} | {row["error"]} | | |')
            continue
        lines.append(
            f'| {row["method"]} | {row["us_per_chunk"]:.1f} | '
            f'{row["min_us_per_chunk"]:.1f} | {row["max_difference"]:.2g} |'
        )
    versions = ', '.join(f'{k} {v}' for k, v in results['versions'].items() if v)
    lines += ['', f'Versions: {versions}.', '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--chunks', type=int, default=1000, help='chunks per timed block')
    parser.add_argument('--repeats', type=int, default=5, help='timed blocks per method')
    parser.add_argument('--quick', action='store_true', help='100 chunks x 3 blocks')
    parser.add_argument('--note', default='', help='a sentence for the report')
    parser.add_argument('--out', default=str(timing.RUNS_FOLDER))
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks, args.repeats = 100, 3
    controls = timing.limit_threads(1)
    from bench import report

    load_before = os.getloadavg()
    rows = run(args.chunks, args.repeats)
    machine = report.machine_info(load_before, os.getloadavg())
    results = dict(
        machine=machine,
        versions=report.library_versions(),
        rows=rows,
        chunks=args.chunks,
        repeats=args.repeats,
        note=args.note,
        quick=args.quick,
        thread_controls=str(controls),
    )
    out = Path(args.out) / 'quick' if args.quick else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = 'streaming-' + datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
    (out / f'{stem}.json').write_text(json.dumps(results, indent=1, default=str) + '\n')
    (out / f'{stem}.md').write_text(markdown(results))
    print(f'wrote {out / stem}.json and .md')
    return 0 if all('error' not in row for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
