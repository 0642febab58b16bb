"""kapre_fast GPU benchmark: kapre_fast.gpu against the CuPy and torch compositions of the same
features, on the same GPU input, at batch sizes 1, 16 and 128 of the CPU suite's configurations.

    python bench/gpu.py                          # configurations A-D at batches 1, 16, 128
    python bench/gpu.py --configs A --batches 128 --repeats 50
    python bench/gpu.py --quick                  # smoke run: short inputs, few repeats

Needs CuPy (CUDA 13), an NVIDIA GPU and kapre_fast built with its CUDA kernels; torch is timed
when it is importable with CUDA. TensorFlow, kapre and librosa are not used. Without CuPy, a GPU
or kapre_fast's kernels it prints one line saying which is missing and exits with status 2.
Results: <out>/<UTC date>-<time>_gpu.{json,md} (bench/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

if __package__ in (None, ''):
    # Run as a script: make `bench` (and a source checkout's kapre_fast) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import accuracy, baselines, configs, report, timing  # noqa: E402
from bench.baselines import Prepared, Unavailable  # noqa: E402
from kapre_fast.spec import FrontEnd  # noqa: E402

DEFAULT_OUT = timing.RUNS_FOLDER
DEFAULT_BATCHES = (1, 16, 128)
REFERENCE = 'kapre_fast_gpu'  # every other output is compared with this one
# The bar: kapre_fast.gpu at least 5x faster than the CuPy composition, A at batch 128.
DONE_BAR = {'config': 'A', 'batch': 128, 'baseline': 'cupy', 'speedup': 5.0}
# cudaDeviceAttr codes: CUDA 13 dropped memoryClockRate from cudaDeviceProp.
ATTRIBUTE_MEMORY_CLOCK_KHZ = 36
ATTRIBUTE_BUS_WIDTH_BITS = 37
# Accuracy checks go through the batch in pieces of about this many float64 bytes.
COMPARE_BYTES = 256 << 20


class Unusable(Exception):
    """The benchmark cannot run on this machine (no CuPy, no GPU, no CUDA build)."""


# ----- the CuPy composition ----------------------------------------------------------------------


def composition(spec: FrontEnd, xp) -> Callable[[Any], Any]:
    """The front end `spec` written out with array-module calls: run(x) -> features.

    `xp` is CuPy on the GPU (the benchmark's baseline) or NumPy (the tests compare it with
    kapre_fast.reference). kapre's pipeline, in float32: pad_begin zeros in front and pad_end
    zeros behind as the spec says (no centring), frames of win_length samples every hop_length
    as a strided view of the input in its own layout, times the window, rfft of n_fft points
    (zero-padded or cropped at the end), |.|, one matmul with the dense filterbank,
    10 log10(max(x, amin)) - 10 log10(max(amin, ref)) clamped at each example's maximum minus
    the dynamic range. Input and output in the spec's data formats, as kapre_fast.gpu takes and
    returns them. Magnitude outputs only.
    """
    if spec.output != 'magnitude':
        raise ValueError(f'composition computes magnitude outputs only, got {spec.output!r}')
    window = xp.asarray(spec.window().astype(np.float32))
    dense = spec.dense_filterbank()
    weights = None if dense is None else xp.asarray(dense.astype(np.float32))
    amin = np.float32(spec.db_amin)
    db_offset = np.float32(10.0 * np.log10(max(spec.db_amin, spec.db_ref_value)))
    dynamic_range = np.float32(spec.db_dynamic_range)
    hop, win = spec.hop_length, spec.win_length

    def run(x):
        audio = spec.layout_input(x).astype(xp.float32, copy=False)  # (batch, channels, time)
        n_frames = spec.n_frames(audio.shape[-1])
        pad_end = max(0, (n_frames - 1) * hop + win - audio.shape[-1] - spec.pad_begin_length)
        if spec.pad_begin_length or pad_end:
            audio = xp.pad(audio, ((0, 0), (0, 0), (spec.pad_begin_length, pad_end)))
        batch, channels, _ = audio.shape
        along_batch, along_channels, along_time = audio.strides  # bytes, any layout
        frames = xp.lib.stride_tricks.as_strided(
            audio,
            shape=(batch, channels, n_frames, win),
            strides=(along_batch, along_channels, hop * along_time, along_time),
        )
        features = xp.abs(xp.fft.rfft(frames * window, n=spec.n_fft, axis=-1))
        if weights is not None:
            rows = features.reshape(-1, features.shape[-1])
            features = (rows @ weights).reshape(batch, channels, n_frames, -1)
        if spec.return_decibel:
            features = xp.log10(xp.maximum(features, amin))
            features *= np.float32(10.0)
            features -= db_offset
            peak = features.max(axis=(1, 2, 3), keepdims=True)
            features = xp.maximum(features, peak - dynamic_range)
        return xp.ascontiguousarray(spec.layout_output(features))

    return run


def composition_note(spec: FrontEnd) -> str:
    steps = ['strided frames x window', 'cupy.fft.rfft', 'abs']
    if spec.filterbank != 'none':
        steps.append(f'matmul(dense {spec.filterbank} filterbank)')
    if spec.return_decibel:
        steps += ['10 log10(max(x, amin)) - 10 log10(max(amin, ref))', 'per-example clamp']
    return ' -> '.join(steps)


def front_end(config) -> FrontEnd:
    """The FrontEnd of a benchmark configuration (configs.py)."""
    return getattr(FrontEnd, configs.FAST_FUNCTIONS[config.kind])(**config.kapre_kwargs)


# ----- bandwidth ---------------------------------------------------------------------------------


def device_bandwidth(properties: dict, attribute: Optional[Callable[[int], int]] = None) -> dict:
    """The device's peak memory bandwidth: 2 (double data rate) x memory clock x bus width / 8.

    `properties`: cupy.cuda.runtime.getDeviceProperties (memoryClockRate in kHz, memoryBusWidth
    in bits); a missing or zero value is asked of `attribute(code)` (cudaDeviceGetAttribute,
    where CUDA 13 moved the clock). Returns {'bytes_per_s': ..., 'memory_clock_khz',
    'bus_width_bits', 'source'}, or {'bytes_per_s': None, 'why': ...} when it stays unknown."""
    found = {
        'memory_clock_khz': properties.get('memoryClockRate'),
        'bus_width_bits': properties.get('memoryBusWidth'),
    }
    sources = {key: 'cudaGetDeviceProperties' for key, value in found.items() if value}
    codes = {
        'memory_clock_khz': ATTRIBUTE_MEMORY_CLOCK_KHZ,
        'bus_width_bits': ATTRIBUTE_BUS_WIDTH_BITS,
    }
    problems = []
    for key, code in codes.items():
        if found[key] or attribute is None:
            continue
        try:
            found[key] = attribute(code)
            sources[key] = 'cudaDeviceGetAttribute'
        except Exception as error:  # noqa: BLE001 - the report says why
            problems.append(f'{key}: {report.describe_error(error)}')
    if not (found['memory_clock_khz'] and found['bus_width_bits']):
        missing = [key for key, value in found.items() if not value]
        return {
            'bytes_per_s': None,
            **found,
            'why': f'not reported: {", ".join(missing)}'
            + (f' ({"; ".join(problems)})' if problems else ''),
        }
    clock, bus = int(found['memory_clock_khz']), int(found['bus_width_bits'])
    return {
        'bytes_per_s': 2.0 * clock * 1e3 * bus / 8,
        'memory_clock_khz': clock,
        'bus_width_bits': bus,
        'source': ', '.join(sorted(set(sources.values()))),
    }


def boundary_bytes(work: dict) -> int:
    """Bytes a front end must move at least: the input read once, the output written once."""
    return work['input_bytes'] + work['output_bytes']


def achieved_gbs(work: dict, seconds: float) -> float:
    """Boundary bytes / seconds, in GB/s (10^9 bytes)."""
    return boundary_bytes(work) / seconds / 1e9


# ----- the device --------------------------------------------------------------------------------


def load_cupy():
    """CuPy with a usable GPU, else Unusable saying what is missing."""
    try:
        import cupy
    except Exception as error:  # ImportError, or a CuPy that cannot load its CUDA libraries
        raise Unusable(
            f'CuPy is not importable ({report.describe_error(error)}): the GPU '
            'benchmark needs CuPy for CUDA 13 (pip install cupy-cuda13x) and an '
            'NVIDIA GPU'
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, driver too old, no device
        raise Unusable(f'no usable CUDA GPU ({report.describe_error(error)})') from None
    if count < 1:
        raise Unusable('no CUDA GPU found (cudaGetDeviceCount returned 0)')
    return cupy


def load_kapre_fast_gpu():
    try:
        return importlib.import_module('kapre_fast.gpu')
    except Exception as error:  # ImportError / RuntimeError naming what is missing
        raise Unusable(f'kapre_fast.gpu is not usable: {report.describe_error(error)}') from None


def load_torch():
    """(torch, None) when torch runs on CUDA here, else (None, why)."""
    try:
        import torch
    except Exception as error:  # noqa: BLE001
        return None, f'torch is not importable ({report.describe_error(error)})'
    if not torch.cuda.is_available():
        return None, f'torch {torch.__version__} has no CUDA device here'
    return torch, None


class CupyClock:
    """CUDA events on CuPy's current stream (where kapre_fast.gpu and CuPy queue their work)."""

    def __init__(self, cupy):
        self.cupy = cupy

    def start(self):
        event = self.cupy.cuda.Event()
        event.record()
        return event

    def stop(self, start) -> float:
        end = self.cupy.cuda.Event()
        end.record()
        end.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, end) / 1e3

    def synchronize(self):
        self.cupy.cuda.get_current_stream().synchronize()


class TorchClock:
    """torch.cuda.Event on torch's current stream."""

    def __init__(self, torch):
        self.torch = torch

    def start(self):
        event = self.torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def stop(self, start) -> float:
        end = self.torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def synchronize(self):
        self.torch.cuda.current_stream().synchronize()


@dataclasses.dataclass
class Device:
    """What the methods run on: CuPy, kapre_fast.gpu, torch (or why not) and their clocks."""

    cupy: Any
    kapre_fast_gpu: Any
    torch: Any = None
    torch_missing: Optional[str] = None

    def clock(self, key: str):
        # Methods that enqueue on torch's current stream are timed with torch's events.
        if key in ('torch', 'kapre_fast_torch'):
            return TorchClock(self.torch)
        return CupyClock(self.cupy)

    def release(self):
        """Returns the memory pools' free blocks, so one method's cache does not crowd the next
        configuration."""
        self.cupy.get_default_memory_pool().free_all_blocks()
        if self.torch is not None:
            self.torch.cuda.empty_cache()


def open_device() -> Device:
    cupy = load_cupy()
    kapre_fast_gpu = load_kapre_fast_gpu()
    torch, missing = load_torch()
    return Device(cupy, kapre_fast_gpu, torch, missing)


def describe_device(device: Device) -> dict:
    """The GPU, its peak bandwidth, driver and runtime versions, for the report."""
    cupy = device.cupy
    runtime = cupy.cuda.runtime
    index = cupy.cuda.Device().id
    properties = dict(runtime.getDeviceProperties(index))
    name = properties.get('name', b'?')
    info = {
        'index': index,
        'name': name.decode(errors='replace') if isinstance(name, bytes) else str(name),
        'compute_capability': f'{properties.get("major", "?")}.{properties.get("minor", "?")}',
        'multiprocessors': properties.get('multiProcessorCount'),
        'memory_gib': round(properties['totalGlobalMem'] / 2**30, 1)
        if properties.get('totalGlobalMem')
        else None,
        'bandwidth': device_bandwidth(
            properties, lambda code: runtime.deviceGetAttribute(code, index)
        ),
        'cuda_driver_api': _cuda_version(runtime.driverGetVersion),
        'cuda_runtime': _cuda_version(runtime.runtimeGetVersion),
        'nvidia_driver': _nvidia_smi('driver_version'),
    }
    try:
        info['kapre_fast_limits'] = dict(device.kapre_fast_gpu.device_info(index))
    except Exception as error:  # noqa: BLE001
        info['kapre_fast_limits'] = report.describe_error(error)
    return info


def _cuda_version(getter) -> Optional[str]:
    try:
        number = int(getter())
    except Exception:  # noqa: BLE001
        return None
    return f'{number // 1000}.{number % 1000 // 10}'


def _nvidia_smi(field: str) -> Optional[str]:
    try:
        completed = subprocess.run(
            ['nvidia-smi', f'--query-gpu={field}', '--format=csv,noheader'],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = completed.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def versions(device: Device) -> dict:
    found = {name: value for name, value in report.library_versions().items() if value}
    found['cupy'] = getattr(device.cupy, '__version__', None)
    if device.torch is not None:
        found['torch'] = device.torch.__version__
        found['torch_cuda'] = device.torch.version.cuda
    return found


def settings(device: Device) -> dict:
    """Settings that change what the baselines compute or how fast (recorded, not changed)."""
    found = {
        'CUPY_TF32': os.environ.get('CUPY_TF32'),
        'CUPY_ACCELERATORS': os.environ.get('CUPY_ACCELERATORS'),
        'cupy_stream': _asked(lambda: repr(device.cupy.cuda.get_current_stream())),
    }
    if device.torch is not None:
        torch = device.torch
        found['torch_matmul_allow_tf32'] = _asked(lambda: torch.backends.cuda.matmul.allow_tf32)
        found['torch_stream'] = _asked(lambda: repr(torch.cuda.current_stream()))
    return found


def _asked(question):
    """question(), or why it could not be answered."""
    try:
        return question()
    except Exception as error:  # noqa: BLE001 - recorded instead
        return f'unknown ({report.describe_error(error)})'


# ----- the methods -------------------------------------------------------------------------------


def prepare_kapre_fast_gpu(sized, x, device):
    name = configs.FAST_FUNCTIONS[sized.config.kind]
    function = getattr(device.kapre_fast_gpu, name)
    kwargs = sized.config.kapre_kwargs
    return Prepared(
        lambda: function(x, **kwargs),
        lambda output: output[..., 0],
        f'kapre_fast.gpu.{name}(x, **kapre kwargs): the fused kernel',
    )


def prepare_cupy(sized, x, device):
    spec = front_end(sized.config)
    run = composition(spec, device.cupy)
    return Prepared(lambda: run(x), lambda output: output[..., 0], composition_note(spec))


def prepare_torch(sized, x, device):
    torch = device.torch
    if torch is None:
        raise Unavailable(device.torch_missing)
    config = sized.config
    spec = front_end(config)
    signal = torch.from_dlpack(x)[:, :, 0]  # the CuPy input itself, no copy
    window = torch.from_numpy(baselines._window_in_fft(config, spec.window())).to(signal.device)
    dense = spec.dense_filterbank()
    weights = (
        None if dense is None else torch.from_numpy(dense.astype(np.float32)).to(signal.device)
    )
    run = baselines.torch_front_end(torch, config, signal, window, weights)
    return Prepared(
        run,
        device.cupy.from_dlpack,
        baselines.torch_note(config) + '; input: the CuPy array through DLPack',
    )


def prepare_kapre_fast_torch(sized, x, device):
    torch = device.torch
    if torch is None:
        raise Unavailable(device.torch_missing)
    try:
        kft = importlib.import_module('kapre_fast.torch')
    except ImportError as error:
        raise Unavailable(f'kapre_fast.torch is not importable ({error})') from error
    name = configs.FAST_FUNCTIONS[sized.config.kind]
    function = getattr(kft, name)
    kwargs = sized.config.kapre_kwargs
    signal = torch.from_dlpack(x)  # the CuPy input itself, no copy
    return Prepared(
        lambda: function(signal, **kwargs),
        lambda output: device.cupy.from_dlpack(output)[..., 0],
        f'kapre_fast.torch.{name}(tensor, **kapre kwargs): the CUDA operator on '
        "torch's current stream; input: the CuPy array through DLPack",
    )


@dataclasses.dataclass(frozen=True)
class Method:
    key: str
    label: str
    prepare: Callable


# Table order. kapre_fast.gpu comes first: the others are compared with its output.
METHODS = [
    Method(REFERENCE, 'kapre_fast.gpu', prepare_kapre_fast_gpu),
    Method('cupy', 'CuPy composition', prepare_cupy),
    Method('torch', 'torch.stft + matmul', prepare_torch),
    Method('kapre_fast_torch', 'kapre_fast.torch (CUDA)', prepare_kapre_fast_torch),
]


# ----- measuring ---------------------------------------------------------------------------------


def run_config(config, batches, seconds, device, warmup, repeats) -> list:
    """Every method at every batch size on one configuration; one record each. The input is
    synthesized once at the largest batch; smaller batches are its first examples."""
    largest = configs.Sized(config, max(batches), seconds)
    audio = device.cupy.asarray(configs.synthesize(largest))
    records = []
    try:
        for batch in batches:
            sized = configs.Sized(config, batch, seconds)
            records += run_batch(sized, audio[:batch], device, warmup, repeats)
    finally:
        del audio
        device.release()
    return records


def run_batch(sized, x, device, warmup, repeats) -> list:
    """Each method in table order: prepare, first call (checked against kapre_fast.gpu's
    output), warm-up, timed calls."""
    records, reference = [], None
    for method in METHODS:
        record = {
            'config': sized.config.name,
            'batch': sized.batch,
            'method': method.key,
            'label': method.label,
        }
        records.append(record)
        clock = device.clock(method.key)
        try:
            prepared = method.prepare(sized, x, device)
            record['note'] = prepared.note

            def call(run=prepared.run):
                output = run()
                clock.synchronize()
                return output

            first, output = timing.first_call(call)
            features = prepared.features(output)
            if method.key == REFERENCE:
                reference = features
            else:
                record['accuracy'] = check(features, reference, sized, device.cupy)
            del output, features
            samples = timing.device_samples(prepared.run, clock, warmup, repeats)
        except Unavailable as error:
            record.update(status='unavailable', reason=str(error))
        except Exception as error:  # noqa: BLE001 - a failing method must not stop the others
            record.update(status='error', reason=report.describe_error(error))
        else:
            record.update(status='ok', **timing.Timing(first, samples, warmup).as_dict())
        device.release()  # this method's cached blocks would crowd the next one
        print(progress_line(record, sized), file=sys.stderr, flush=True)
    return records


def check(features, reference, sized, xp) -> dict:
    """accuracy.compare on the GPU (array module `xp`), a few examples at a time."""
    if reference is None:
        return {'comparable': False, 'why': 'no kapre_fast.gpu output'}
    per_example = 8 * int(np.prod(reference.shape[1:]))
    try:
        return accuracy.compare(
            features,
            reference,
            sized.config,
            xp=xp,
            chunk=max(1, COMPARE_BYTES // max(per_example, 1)),
        )
    except Exception as error:  # noqa: BLE001
        return {'comparable': False, 'why': f'comparison failed: {report.describe_error(error)}'}


def progress_line(record, sized) -> str:
    head = f'{record["config"]} batch {record["batch"]:>4} {record["method"]:<15}'
    if record.get('status') != 'ok':
        return f'{head} {record.get("status")}: {record.get("reason")}'
    median = record['median_s']
    return (
        f'{head} {median * 1e3:9.3f} ms  x{sized.audio_seconds / median:9.0f} realtime  '
        f'({record["repeats"]} repeats, first call {record["first_call_s"] * 1e3:.0f} ms)'
    )


def measure(args, device) -> dict:
    started = time.time()
    names = configs.parse_names(args.configs)
    batches = args.batches
    records, work = [], {}
    for name in names:
        config = configs.CONFIGS[name]
        seconds = config.quick_seconds if args.quick else config.seconds
        work[name] = {
            'title': config.title,
            'kind': config.kind,
            'kapre_kwargs': config.kapre_kwargs,
            'seconds_per_example': seconds,
            'work': {str(batch): configs.Sized(config, batch, seconds).work() for batch in batches},
        }
        records += run_config(config, batches, seconds, device, args.warmup, args.repeats)
    package = Path(importlib.import_module('kapre_fast').__file__).resolve().parent
    results = {
        'schema': 1,
        'kind': 'gpu',
        'quick': args.quick,
        'command': ' '.join(shlex.quote(part) for part in sys.orig_argv),
        'started_unix': started,
        'wall_s': time.time() - started,
        'machine': report.machine_info(),
        'gpu': describe_device(device),
        'versions': versions(device),
        'settings': settings(device),
        'kapre_fast_build': report.kapre_fast_build(package, package),
        'timing': {
            'warmup_calls': args.warmup,
            'repeats': args.repeats,
            'clock': 'CUDA events on the stream of each call (CuPy: current stream; '
            'torch: torch.cuda.current_stream()), synchronized after every '
            'call',
        },
        'batches': batches,
        'configs': work,
        'methods': [{'key': m.key, 'label': m.label} for m in METHODS],
        'results': records,
    }
    add_derived(results)
    return results


# ----- report ------------------------------------------------------------------------------------


def _index(results) -> dict:
    return {(r['config'], r['batch'], r['method']): r for r in results['results']}


def add_derived(results: dict):
    """x-realtime, boundary GB/s and its share of the peak, speed-ups over the baselines."""
    index = _index(results)
    peak = (results.get('gpu') or {}).get('bandwidth', {}).get('bytes_per_s')
    for record in results['results']:
        if record.get('status') != 'ok':
            continue
        work = results['configs'][record['config']]['work'][str(record['batch'])]
        median = record['median_s']
        gbs = achieved_gbs(work, median)
        derived = {
            'x_realtime': work['audio_seconds'] / median,
            'gbs': gbs,
            'peak_fraction': gbs * 1e9 / peak if peak else None,
        }
        for key in ('cupy', 'torch'):
            base = index.get((record['config'], record['batch'], key))
            derived[f'vs_{key}'] = (
                base['median_s'] / median if base and base.get('status') == 'ok' else None
            )
        record['derived'] = derived
    results['done_bar'] = done_bar(results)


def done_bar(results: dict) -> dict:
    """Whether kapre_fast.gpu is DONE_BAR['speedup'] x faster than the CuPy composition on
    configuration A at batch 128 (not judged on a quick run)."""
    bar = dict(DONE_BAR)
    record = _index(results).get((bar['config'], bar['batch'], REFERENCE))
    bar['measured'] = (record or {}).get('derived', {}).get(f'vs_{bar["baseline"]}')
    if results.get('quick'):
        bar['met'], bar['why'] = None, 'quick run: not a measurement'
    elif bar['measured'] is None:
        bar['met'], bar['why'] = None, 'not measured in this run'
    else:
        bar['met'] = bar['measured'] >= bar['speedup']
    return bar


def _gbs(record) -> tuple:
    """The (GB/s, % of peak) cells of a record."""
    d = record['derived']
    gbs = f'{d["gbs"]:.0f}' if d['gbs'] >= 100 else f'{d["gbs"]:.3g}'
    if d['peak_fraction'] is None:
        return gbs, '-'
    percent = 100 * d['peak_fraction']
    return gbs, f'{percent:.1f}%' if percent >= 1 else f'{percent:.2g}%'


def markdown(results: dict) -> str:
    m, g, v = results['machine'], results['gpu'], results['versions']
    bandwidth = g['bandwidth']
    if bandwidth.get('bytes_per_s'):
        peak = (
            f'{bandwidth["bytes_per_s"] / 1e9:.0f} GB/s (2 x '
            f'{bandwidth["memory_clock_khz"] / 1e3:.0f} MHz x {bandwidth["bus_width_bits"]} '
            f'bit / 8, from {bandwidth["source"]})'
        )
    else:
        peak = f'unknown ({bandwidth.get("why")})'
    torch = next((r for r in results['results'] if r['method'] == 'torch'), {})
    lines = [
        '# kapre_fast GPU benchmark'
        + (' (QUICK smoke run: short inputs, not a measurement)' if results['quick'] else ''),
        '',
        f'- date (UTC): {m["date_utc"]}; host: {m["host"]}; wall time of the run: '
        f'{results["wall_s"]:.0f} s',
        f'- GPU: **{g["name"]}**, compute capability {g["compute_capability"]}, '
        f'{g["multiprocessors"]} SMs, {g["memory_gib"]} GiB; peak memory bandwidth {peak}',
        f'- NVIDIA driver {g.get("nvidia_driver") or "?"} (CUDA driver API '
        f'{g.get("cuda_driver_api") or "?"}), CUDA runtime {g.get("cuda_runtime") or "?"}',
        f'- CuPy {v.get("cupy")}; torch '
        + (
            f'{v.get("torch")} (CUDA {v.get("torch_cuda")})'
            if 'torch_cuda' in v
            else f'not timed: {torch.get("reason", "not importable")}'
        ),
        f'- host CPU: {m["cpu_model"]}, {m["cpu_count"]} logical cores; Python {m["python"]}; '
        f'kapre_fast {v.get("kapre_fast")}, {report._build(results)}',
        f'- command: `{results["command"]}`',
        '',
        f'Median of {results["timing"]["repeats"]} calls after {results["timing"]["warmup_calls"]} '
        'warm-up calls, each timed with CUDA events on its stream and waited for before the '
        'next (so a time includes launch overhead where the host is slower than the GPU); the '
        'input is on the GPU already and is not counted. x-realtime = audio seconds / wall '
        "seconds. vs CuPy / vs torch = that composition's median / this median (> 1: faster). "
        'GB/s = (input bytes read + output bytes written) / median: the least a front end must '
        "move, the same yardstick for every method; % of peak against the device's memory "
        "bandwidth. Max diff = largest difference from kapre_fast.gpu's output (dB; magnitude "
        "configurations relative to the largest magnitude, and in dB after kapre's scaling).",
        '',
    ]
    lines += _done_bar_lines(results) + _summary(results)
    index = _index(results)
    for name, config in results['configs'].items():
        decibel = bool(config['kapre_kwargs'].get('return_decibel'))
        head, rest = config['title'].split(', ', 1)  # '16 x 10 s @ 22.05 kHz', 'n_fft ...'
        lines += [
            f'## {name}: {config["seconds_per_example"]:g} s @ {head.split(" @ ")[-1]} '
            f'per example, {rest}',
            '',
        ]
        for batch in results['batches']:
            work = config['work'][str(batch)]
            lines.append(
                f'- batch {batch}: {work["audio_seconds"]:g} s of audio, '
                f'{work["frames_total"]} frames of {work["n_fft"]} points; input '
                f'{work["input_bytes"] / 1e6:.3g} MB, output {work["output_bytes"] / 1e6:.3g} MB'
            )
        lines += [
            '',
            '| batch | method | median ms | IQR ms | min ms | first call ms '
            '| x-realtime | vs CuPy | vs torch | GB/s | % of peak '
            '| max diff vs kapre_fast.gpu |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|',
        ]
        notes = {}
        for batch in results['batches']:
            for method in results['methods']:
                record = index.get((name, batch, method['key']))
                if record is not None:
                    lines.append(_row(record, method['label'], decibel))
                    notes.setdefault(
                        method['label'],
                        record.get('note')
                        if record.get('status') == 'ok'
                        else f'{record["status"]}: {record["reason"]}',
                    )
        lines.append('')
        lines += [f'- {label}: {note}' for label, note in notes.items() if note]
        lines.append('')
    return '\n'.join(lines)


def _row(record, label, decibel) -> str:
    """One line of a configuration's table."""
    if record.get('status') != 'ok':
        return f'| {record["batch"]} | {label} | {record["status"]} |' + ' |' * 9
    d, ms = record['derived'], report._ms
    cells = [
        str(record['batch']),
        label,
        ms(record['median_s']),
        f'{ms(record["p25_s"])}-{ms(record["p75_s"])}',
        ms(record['min_s']),
        ms(record['first_call_s']),
        f'{d["x_realtime"]:.0f}',
        report._ratio(d['vs_cupy']),
        report._ratio(d['vs_torch']),
        *_gbs(record),
        report._difference(record, decibel, REFERENCE),
    ]
    return '| ' + ' | '.join(cells) + ' |'


def _done_bar_lines(results) -> list:
    bar = results['done_bar']
    head = (
        f'**Bar**: kapre_fast.gpu >= {bar["speedup"]:g}x faster than the CuPy composition '
        f'on {bar["config"]} at batch {bar["batch"]}: '
    )
    if bar['met'] is None:
        return [head + bar['why'] + '.', '']
    verdict = 'met' if bar['met'] else 'NOT met'
    return [head + f'{bar["measured"]:.2f}x, **{verdict}**.', '']


def _summary(results) -> list:
    index = _index(results)
    lines = [
        '## Summary (median ms)',
        '',
        '| config | batch | CuPy composition | torch.stft + matmul | kapre_fast.gpu '
        '| kapre_fast.torch | vs CuPy | vs torch | kapre_fast GB/s | % of peak |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for name in results['configs']:
        for batch in results['batches']:

            def get(key):
                record = index.get((name, batch, key))
                return record if record and record.get('status') == 'ok' else None

            cells = [name, str(batch)]
            cells += [
                report._ms(get(k)['median_s']) if get(k) else '-'
                for k in ('cupy', 'torch', REFERENCE, 'kapre_fast_torch')
            ]
            fast = get(REFERENCE)
            if fast:
                cells += [
                    report._ratio(fast['derived']['vs_cupy']),
                    report._ratio(fast['derived']['vs_torch']),
                    *_gbs(fast),
                ]
            else:
                cells += ['-'] * 4
            lines.append('| ' + ' | '.join(cells) + ' |')
    return lines + ['']


# ----- command line ------------------------------------------------------------------------------


def parse_args(argv):
    summary, examples = __doc__.split('\n\n')[:2]
    parser = argparse.ArgumentParser(
        prog='bench/gpu.py',
        description=summary,
        epilog='examples:\n' + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='results folder')
    parser.add_argument('--configs', default='all', help='comma-separated subset of A,B,C,D')
    parser.add_argument(
        '--batches',
        default=','.join(map(str, DEFAULT_BATCHES)),
        help='comma-separated batch sizes (default: 1,16,128)',
    )
    parser.add_argument(
        '--repeats', type=int, default=None, help='timed calls per method (default 30; --quick: 5)'
    )
    parser.add_argument(
        '--warmup', type=int, default=None, help='untimed calls before them (default 3; --quick: 1)'
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help="each configuration's short smoke-test input and few repeats: a "
        'smoke test, not a measurement (results go to <out>/quick/)',
    )
    args = parser.parse_args(argv)
    try:
        configs.parse_names(args.configs)
        args.batches = configs.parse_counts(args.batches, 'batch size')
    except ValueError as error:
        parser.error(str(error))
    args.repeats = (5 if args.quick else 30) if args.repeats is None else args.repeats
    args.warmup = (1 if args.quick else 3) if args.warmup is None else args.warmup
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        device = open_device()
    except Unusable as error:
        print(f'bench/gpu.py: error: {error}', file=sys.stderr)
        return 2
    results = measure(args, device)
    text = markdown(results)
    out = args.out / 'quick' if args.quick else args.out
    paths = report.save(results, text, out, report.file_stem(results, tag='gpu'))
    print(text)
    print('\nwrote ' + ', '.join(str(path) for path in paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
