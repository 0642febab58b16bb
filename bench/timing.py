"""Thread control, the benchmark's environment, and repeated timing.

Thread counts are fixed per process: TensorFlow reads its intra/inter-op pool sizes once, before
its first op, so each thread count runs in a worker process of its own (see run.py). In that
process `limit_threads` sets every library's count once, before any method is prepared. Timing:
a first call, warm-up calls, then timed calls (`blocks` or `interleaved`) summarised by their
median (`Timing`).
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import os
import statistics
import sys
import time

from pathlib import Path

# Every benchmark process imports this module first: TensorFlow's C++ log lines stay out of the
# output (TF_CPP_MIN_LOG_LEVEL=3) unless the environment sets the variable.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# Where every benchmark writes its runs by default: git-ignored, so a run leaves the checkout
# clean. `make bench-publish` (bench/publish.py) copies runs into the tracked bench/results.
RUNS_FOLDER = Path(__file__).resolve().parents[1] / 'build' / 'bench-results'
PUBLISHED_FOLDER = Path(__file__).resolve().parent / 'results'

# Set in the shell on this kind of machine; they slow down a current NumPy/OpenBLAS. Removed
# from the benchmark's own environment (never from tests or CI).
UNSET_VARIABLES = ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')
# Thread counts read at library load time, set for the worker as a second line of defence next
# to the run-time controls below.
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')
# Set by ensure_clean_environment in the re-executed process: what was removed, for the report.
REMOVED_MARKER = 'KAPRE_FAST_BENCH_UNSET'


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ensure_clean_environment():
    """Re-executes this process without UNSET_VARIABLES when any is set.

    Call it before NumPy is imported: OpenBLAS reads them when it loads. The removed names and
    values are passed on in REMOVED_MARKER so the report can say what was unset.
    """
    found = {name: os.environ[name] for name in UNSET_VARIABLES if name in os.environ}
    if not found:
        return
    env = cleaned_environment()
    env[REMOVED_MARKER] = ';'.join(f'{name}={value}' for name, value in found.items())
    os.execve(sys.executable, list(sys.orig_argv), env)


def removed_variables() -> dict:
    """{name: value} that ensure_clean_environment removed before this process started."""
    text = os.environ.get(REMOVED_MARKER, '')
    return dict(item.split('=', 1) for item in text.split(';') if '=' in item)


def cleaned_environment(environ=None) -> dict:
    """A copy of the environment without UNSET_VARIABLES."""
    env = dict(os.environ if environ is None else environ)
    for name in UNSET_VARIABLES:
        env.pop(name, None)
    return env


def run_thread_workers(script, arguments: list, thread_counts) -> tuple | None:
    """Runs `script` once per thread count, each in a worker process of its own
    (`script *arguments --worker-threads N --worker-output FILE`, worker_environment(N)), and
    collects what each wrote to FILE: (records of every worker, {threads: controls}); None, the
    failure printed, when a worker fails or writes nothing."""
    import json
    import subprocess
    import tempfile

    records, controls = [], {}
    for threads in thread_counts:
        with tempfile.TemporaryDirectory(prefix=f'kapre_fast_{Path(script).stem}_') as folder:
            output = Path(folder) / 'records.json'
            command = [
                sys.executable,
                str(script),
                *arguments,
                '--worker-threads',
                str(threads),
                '--worker-output',
                str(output),
            ]
            completed = subprocess.run(command, env=worker_environment(threads))
            if completed.returncode != 0 or not output.exists():
                print(
                    f'{Path(script).name}: the {threads}-thread worker failed '
                    f'(exit {completed.returncode})',
                    file=sys.stderr,
                )
                return None
            worker = json.loads(output.read_text())
        records += worker['records']
        controls[threads] = worker['controls']
    return records, controls


def worker_environment(threads: int) -> dict:
    """The environment of a worker process that runs every method at `threads` threads."""
    env = cleaned_environment()
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    # A CPU benchmark: TensorFlow would otherwise place kapre and the TF baselines on a GPU.
    env['CUDA_VISIBLE_DEVICES'] = ''
    return env


_BLAS_LIMIT = None


def limit_threads(threads: int) -> dict:
    """Sets every library's thread count to `threads` in this process; returns what was done.

    Must run before any TensorFlow op. Libraries that are not installed are skipped. NumPy and
    SciPy BLAS go through threadpoolctl after the libraries that bring their own BLAS or OpenMP
    (torch) are loaded, so the limit reaches all of them. scipy.fft, ducc0, librosa's FFT
    (scipy.fft under scipy.fft.set_workers) and kapre_fast take `threads` per call (baselines.py).
    """
    done = {'threads': threads}
    for name in THREAD_VARIABLES:
        done[name] = os.environ.get(name)
    importlib.import_module('numpy')
    importlib.import_module('scipy.linalg')  # loads SciPy's BLAS so threadpoolctl sees it
    try:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        done['torch'] = {
            'num_threads': torch.get_num_threads(),
            'num_interop_threads': torch.get_num_interop_threads(),
        }
    except ImportError as error:
        done['torch'] = f'not installed ({error})'
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        done['tensorflow'] = {
            'intra_op': tf.config.threading.get_intra_op_parallelism_threads(),
            'inter_op': tf.config.threading.get_inter_op_parallelism_threads(),
        }
    except ImportError as error:
        done['tensorflow'] = f'not installed ({error})'
    import threadpoolctl

    global _BLAS_LIMIT  # kept alive for the life of the process
    _BLAS_LIMIT = threadpoolctl.threadpool_limits(limits=threads)
    done['threadpoolctl'] = blas_info()
    return done


def blas_info() -> list:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries (kernel, version, threads)."""
    import threadpoolctl

    keep = (
        'user_api',
        'internal_api',
        'prefix',
        'version',
        'architecture',
        'threading_layer',
        'num_threads',
        'filepath',
    )
    return [
        {key: pool.get(key) for key in keep if key in pool}
        for pool in threadpoolctl.threadpool_info()
    ]


@dataclasses.dataclass
class Timing:
    """Wall times of one method, in seconds. The first call and the warm-up are excluded from
    the statistics (they include tracing, XLA compilation, plan creation)."""

    first_call: float
    samples: list
    warmup: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def quartiles(self) -> tuple:
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q = statistics.quantiles(self.samples, n=4, method='inclusive')
        return q[0], q[2]

    def as_dict(self) -> dict:
        p25, p75 = self.quartiles
        return {
            'median_s': self.median,
            'min_s': self.minimum,
            'p25_s': p25,
            'p75_s': p75,
            'repeats': len(self.samples),
            'first_call_s': self.first_call,
            'warmup_calls': self.warmup,
            'samples_s': self.samples,
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """How often to call a method: `warmup` untimed calls after the first one, then timed calls
    until `budget_s` is spent, at least `min_repeats` and at most `max_repeats` times."""

    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 25
    budget_s: float = 3.0


FULL = Plan()
QUICK = Plan(warmup=1, min_repeats=3, max_repeats=5, budget_s=0.3)


def freeze_heap():
    """Moves every object alive now (TensorFlow, torch, Keras and their modules: millions of
    objects) out of the garbage collector's reach, so that the collections before each method
    take milliseconds instead of half a second."""
    gc.collect()
    gc.freeze()


def first_call(run):
    """Calls `run()` once; returns (seconds, output). The first call includes tracing, XLA
    compilation, plan creation and lazy imports, so it is reported but not in the statistics."""
    gc.collect()
    start = time.perf_counter()
    output = run()
    return time.perf_counter() - start, output


def warmup_calls(plan: Plan, first_seconds: float) -> int:
    """Untimed calls before the timed ones; a method slower than the whole budget gets one."""
    if first_seconds * plan.min_repeats < plan.budget_s * 4:
        return plan.warmup
    return min(1, plan.warmup)


def wants_more(samples: list, spent: float, plan: Plan) -> bool:
    n = len(samples)
    return n < plan.max_repeats and (n < plan.min_repeats or spent < plan.budget_s)


def blocks(runs: dict, warmups: dict, plan: Plan, on_error=None) -> dict:
    """Times every callable in `runs` ({key: run}) one method after the other: `warmups[key]`
    untimed calls, then the timed calls back to back (the default: no other library's threads
    are still spinning from a previous call). Each method stops after `plan.min_repeats` calls
    once it has spent `plan.budget_s`, or at `plan.max_repeats`. Returns {key: [seconds, ...]};
    a method that raises is dropped and reported through on_error(key, exception)."""
    result = {}
    for key, run in runs.items():
        samples, spent = [], 0.0
        gc.collect()
        gc.disable()
        try:
            for _ in range(warmups.get(key, 0)):
                run()
            while wants_more(samples, spent, plan):
                start = time.perf_counter()
                run()
                elapsed = time.perf_counter() - start
                samples.append(elapsed)
                spent += elapsed
        except Exception as error:  # noqa: BLE001 - reported, the others go on
            if on_error:
                on_error(key, error)
            continue
        finally:
            gc.enable()
        result[key] = samples
    return result


def interleaved(runs: dict, warmups: dict, plan: Plan, on_error=None) -> dict:
    """Times every callable in `runs` ({key: run}), after all their warm-up calls, in rounds of
    one call of each method, so that all methods sample the same spells of background load; the
    order rotates from round to round. Stops and errors as `blocks`. With several threads, a
    call may find the previous method's worker threads (OpenMP, OpenBLAS, TF's pool) still
    spinning on the same cores, which a user of one library never sees: meant for 1-thread
    comparisons on a busy machine."""
    samples = {key: [] for key in runs}
    spent = dict.fromkeys(runs, 0.0)
    for key in list(runs):
        try:
            for _ in range(warmups.get(key, 0)):
                runs[key]()
        except Exception as error:  # noqa: BLE001
            del samples[key]
            if on_error:
                on_error(key, error)

    order = list(samples)
    shift = 0
    gc.collect()
    gc.disable()
    try:
        while True:
            pending = [
                key
                for key in order[shift:] + order[:shift]
                if wants_more(samples[key], spent[key], plan)
            ]
            if not pending:
                break
            for key in pending:
                start = time.perf_counter()
                try:
                    runs[key]()
                except Exception as error:  # noqa: BLE001 - reported, the others go on
                    order.remove(key)
                    del samples[key]
                    if on_error:
                        on_error(key, error)
                    continue
                elapsed = time.perf_counter() - start
                samples[key].append(elapsed)
                spent[key] += elapsed
            shift = (shift + 1) % max(1, len(order))
    finally:
        gc.enable()
    return samples


def device_samples(run, clock, warmup: int, repeats: int) -> list:
    """Seconds of `repeats` calls of `run()` on a GPU, after `warmup` untimed calls (bench/gpu.py).

    `clock` brackets each call with events recorded on the stream the call is queued on:
    `token = clock.start()` before, `clock.stop(token)` after, which waits for the call to
    finish and returns the seconds between the two events. Calls never overlap, so each time
    includes the call's own launch overhead when the host is slower than the device.
    `clock.synchronize()` waits for the warm-up calls."""
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(warmup):
            run()
        clock.synchronize()
        for _ in range(repeats):
            token = clock.start()
            run()
            samples.append(clock.stop(token))
    finally:
        gc.enable()
    return samples
