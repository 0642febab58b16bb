"""The local engine: decoding (and CPU features) in a process pool on this machine, no server.

Each of `workers` processes decodes an item and computes its features with kapre_fast.cpu at
`threads` threads (by default workers x threads = cores: one fills in the other, and both
default to one worker per core at one thread); results come back in input order. With
device='gpu' the workers only decode and this process computes with kapre_fast.gpu.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from kapre_fast.corpus.features import compute_result, cpu_compute, decode_item, gpu_compute


def budget(workers, threads, device):
    """(workers, threads) with the defaults filled in."""
    cores = os.cpu_count() or 1
    if workers is None:
        workers = max(1, cores // threads) if threads else cores
    if threads is None and device == 'cpu':
        threads = max(1, cores // workers)
    return workers, threads


def run(items, recipe, *, workers=None, threads=None, device='cpu'):
    """Yields a features.Result per item, in order."""
    workers, threads = budget(workers, threads, device)
    workers = min(workers, max(1, len(items)))
    decode_only = device == 'gpu'
    compute = gpu_compute() if decode_only else cpu_compute(threads)
    if workers == 1:  # in this process: no pool to start
        for item in items:
            yield compute_result(decode_item(item, recipe), recipe, compute)
        return
    with _pool_context().Pool(workers, initializer=_start_worker,
                      initargs=(recipe, threads, decode_only)) as pool:
        for done in pool.imap(_work, items, chunksize=2):
            yield compute_result(done, recipe, compute) if decode_only else done


# Frameworks whose thread pools make a forked child unsafe (a lock held by one of their threads
# at fork time is never released in the child; JAX warns of the deadlock).
_THREADED = ('jax', 'tensorflow', 'torch')


def _pool_context():
    """fork where it is safe: workers start at once and need no importable __main__ (a script
    without a main guard); forkserver once a threaded framework is loaded in this process;
    spawn where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    threaded = any(name in sys.modules for name in _THREADED)
    for method in (('forkserver', 'spawn') if threaded else ('fork', 'spawn')):
        if method in methods:
            return multiprocessing.get_context(method)
    return multiprocessing.get_context()


_WORKER = {}


def _start_worker(recipe, threads, decode_only):
    _WORKER.update(recipe=recipe, decode_only=decode_only,
                   compute=None if decode_only else cpu_compute(threads))


def _work(item):
    decoded = decode_item(item, _WORKER['recipe'])
    if _WORKER['decode_only']:
        return decoded
    return compute_result(decoded, _WORKER['recipe'], _WORKER['compute'])
