"""The local engine: decoding (and CPU features) in a process pool on this machine, no server.

Each of `workers` processes decodes an item and computes its features with kapre_fast.cpu at
`threads` threads (by default workers x threads = cores: one fills in the other, and both
default to one worker per core at one thread); results come back in input order. With
device='gpu' the workers only decode and this process computes with kapre_fast.gpu.

A worker that dies (SIGKILL, the out-of-memory killer, a crash in a library) is noticed at
once (concurrent.futures marks the pool broken; multiprocessing.Pool would wait forever for
its task): a fresh pool is started and the items that were in flight are retried one at a
time, so that the item that kills its worker again is failed by name and every other one is
written.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import sys
from concurrent.futures.process import BrokenProcessPool

from kapre_fast.corpus.features import Result, compute_result, cpu_compute, decode_item, gpu_compute

# Items submitted ahead of the one being yielded, per worker (keeps every worker busy while
# holding few results in memory).
_AHEAD = 2


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
    for done in _pooled(items, workers, (recipe, threads, decode_only)):
        yield compute_result(done, recipe, compute) if decode_only else done


class _Entry:
    """An item in flight or done: its future (None: to be retried alone) and whether it runs
    alone."""

    __slots__ = ('item', 'future', 'alone')

    def __init__(self, item, future, alone=False):
        self.item, self.future, self.alone = item, future, alone

    def succeeded(self):
        future = self.future
        return (
            future is not None
            and future.done()
            and not future.cancelled()
            and future.exception() is None
        )


def _pooled(items, workers, initargs):
    """What _work returns for each item (features.Decoded or Result), in input order, from a
    process pool. When a worker dies the pool is replaced and the items in flight are retried
    one at a time; one whose worker dies while it runs alone is failed by name."""
    pending = collections.deque(items)
    order = collections.deque()  # _Entry, in input order
    pool = None
    try:
        while pending or order:
            if pool is None:
                pool = concurrent.futures.ProcessPoolExecutor(
                    workers,
                    mp_context=_pool_context(),
                    initializer=_start_worker,
                    initargs=initargs,
                )
            head = None
            try:
                if all(entry.future is not None for entry in order):  # no retry waiting
                    while pending and len(order) < _AHEAD * workers:
                        order.append(_Entry(pending[0], None))
                        order[-1].future = pool.submit(_work, pending.popleft())
                head = order[0]
                if head.future is None:  # nothing else is in flight: a death is its own
                    head.future = pool.submit(_work, head.item)
                    head.alone = True
                result = head.future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
                if head is not None and head.alone:  # it ran alone: its death is its own
                    order.popleft()
                    yield Result(
                        head.item,
                        [],
                        f'{head.item.path}: the worker process '
                        'computing it died (killed - the out-of-memory killer? - or '
                        'crashed), also when retried alone',
                    )
                for entry in order:
                    if not entry.succeeded():
                        entry.future = None
                continue
            order.popleft()
            yield result
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# Frameworks whose thread pools make a forked child unsafe (a lock held by one of their threads
# at fork time is never released in the child; JAX warns of the deadlock).
_THREADED = ('jax', 'tensorflow', 'torch')


def _pool_context():
    """fork where it is safe: workers start at once and need no importable __main__ (a script
    without a main guard); forkserver once a threaded framework is loaded in this process;
    spawn where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    threaded = any(name in sys.modules for name in _THREADED)
    for method in ('forkserver', 'spawn') if threaded else ('fork', 'spawn'):
        if method in methods:
            return multiprocessing.get_context(method)
    return multiprocessing.get_context()


_WORKER = {}


def _start_worker(recipe, threads, decode_only):
    _WORKER.update(
        recipe=recipe,
        decode_only=decode_only,
        compute=None if decode_only else cpu_compute(threads),
    )


def _work(item):
    decoded = decode_item(item, _WORKER['recipe'])
    if _WORKER['decode_only']:
        return decoded
    return compute_result(decoded, _WORKER['recipe'], _WORKER['compute'])
