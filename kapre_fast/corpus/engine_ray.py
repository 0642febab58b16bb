"""The Ray engine: a Ray Data pipeline, read -> decode -> features -> write.

The items become a dataset (`from_items`); `map_batches` decodes them (CPU tasks) and computes
the features (kapre_fast.cpu at one thread per task, or kapre_fast.gpu in actors that ask Ray
for a GPU each); the records stream back in input order to this process, which writes them
with the same writer as the local engine, so both give the same bytes. The outputs are written
where this process runs: the cluster's nodes need kapre_fast and read access to the audio
(the same paths), not to the output folder.

`address` joins a running cluster (`ray.init(address=...)`, e.g. "auto" on a node of it, or
"ray://head:10001"; an address where nothing answers within CONNECT_TIMEOUT seconds is a
ConnectionError naming it, before anything is written); without it a Ray instance is started in
this process with `workers` CPUs
and shut down at the end. If Ray is already initialised (ray.init called by the caller), that
session is used and left running.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from pathlib import Path

import numpy as np

from kapre_fast.corpus.features import (
    Decoded,
    Piece,
    Record,
    Result,
    compute_result,
    cpu_compute,
    decode_item,
    gpu_compute,
)
from kapre_fast.corpus.inputs import Item

_BATCH = 16  # most items per task
CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster's address before giving up


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        from kapre_fast._loader import pip_install_hint

        raise ImportError(
            f'engine="ray" needs Ray Data ({error}); install it with `{pip_install_hint("ray")}`'
        ) from None
    return ray


def check_address(address, timeout=CONNECT_TIMEOUT):
    """Refuses a cluster address (host:port or ray://host:port) where nothing answers within
    `timeout` seconds, instead of ray.init retrying for minutes without a word; "auto" and None
    are left to Ray (it fails at once where no cluster runs)."""
    if address is None or address == 'auto':
        return
    target = address[len('ray://') :] if address.startswith('ray://') else address
    host, _, port = target.rpartition(':')
    if not host or not port.isdigit():
        raise ValueError(f'address must be "auto", HOST:PORT or ray://HOST:PORT, got {address!r}')
    try:
        socket.create_connection((host.strip('[]'), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f'Ray cluster at {address}: cannot connect within {timeout:g} s '
            f'({error}); is a cluster running there (`ray start --head`), '
            'and is the port right?'
        ) from None


def run(items, recipe, *, workers=None, threads=None, device='cpu', address=None):
    """Yields a features.Result per item, in order."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        logging.getLogger('ray').setLevel(logging.WARNING)
        options = dict(address=address) if address else dict(num_cpus=workers)
        ray.init(
            **options,
            logging_level=logging.WARNING,
            log_to_driver=False,
            include_dashboard=False,
            runtime_env=_runtime_env(),
        )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # same shards as the local engine
        context.enable_progress_bars = False  # ours is drawn by extract()
        logging.getLogger('ray.data').setLevel(logging.WARNING)
        rows = [{'item': json.dumps(dataclasses.asdict(item))} for item in items]
        # Blocks of at most _BATCH items, and enough of them to keep every CPU busy; one block
        # is one batch of each stage (batch_size=None).
        cpus = workers or int(ray.cluster_resources().get('CPU', 1))
        blocks = min(len(rows), max(-(-len(rows) // _BATCH), 2 * cpus))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        tasks = ray.data.TaskPoolStrategy(size=workers)
        dataset = dataset.map_batches(
            _decode_batch, fn_kwargs={'recipe': recipe}, batch_size=None, num_cpus=1, compute=tasks
        )
        if device == 'gpu':
            actors = ray.data.ActorPoolStrategy(size=workers or 1)
            dataset = dataset.map_batches(
                _GpuFeatures,
                fn_constructor_kwargs={'recipe': recipe},
                batch_size=None,
                num_gpus=1,
                compute=actors,
            )
        else:
            dataset = dataset.map_batches(
                _features_batch,
                fn_kwargs={'recipe': recipe, 'threads': threads or 1},
                batch_size=None,
                num_cpus=1,
                compute=tasks,
            )
        yield from _results(dataset.iter_rows())
    finally:
        if started:
            ray.shutdown()


def _runtime_env():
    """Workers import the kapre_fast this process imported. Ray puts this process's working
    folder first on their sys.path when a task of the job first runs, where a source checkout's
    uncompiled kapre_fast/ would shadow the built one: a setup hook (pickled by value, it
    imports nothing of ours to be unpickled) imports ours first, from its folder, as each
    worker starts."""
    import kapre_fast

    return {
        'worker_process_setup_hook': _preload(str(Path(kapre_fast.__file__).resolve().parents[1]))
    }


def _preload(folder):
    def setup():
        import importlib
        import sys

        sys.path.insert(0, folder)
        try:
            importlib.import_module('kapre_fast.corpus.engine_ray')
        finally:
            sys.path.remove(folder)

    return setup


# Rows between the stages: one per piece (or one per failed item), with the item as JSON.
def _decode_batch(batch, recipe):
    out = {name: [] for name in ('item', 'id', 'audio', 'channels', 'rate', 'seconds', 'error')}
    for text in batch['item']:
        decoded = decode_item(Item(**json.loads(text)), recipe)
        for piece in decoded.pieces or [None]:
            out['item'].append(text)
            out['id'].append(piece.id if piece else '')
            out['audio'].append(piece.audio.tobytes() if piece else b'')
            out['channels'].append(piece.audio.shape[1] if piece else 0)
            out['rate'].append(piece.rate if piece else 0)
            out['seconds'].append(decoded.seconds)
            out['error'].append(decoded.error or '')
    return _columns(out)


def _features_batch(batch, recipe, threads):
    return _features(batch, recipe, cpu_compute(threads))


class _GpuFeatures:
    def __init__(self, recipe):
        self.recipe, self.compute = recipe, gpu_compute()

    def __call__(self, batch):
        return _features(batch, self.recipe, self.compute)


def _features(batch, recipe, compute):
    out = {
        name: [] for name in ('item', 'id', 'payload', 'frames', 'seconds', 'item_seconds', 'error')
    }
    for row in _row_dicts(batch):
        item = Item(**json.loads(row['item']))
        pieces = []
        if not row['error']:
            audio = np.frombuffer(row['audio'], np.float32).reshape(-1, row['channels'])
            pieces = [Piece(row['id'], audio, int(row['rate']))]
        result = compute_result(Decoded(item, pieces, row['error'] or None), recipe, compute)
        record = result.records[0] if result.records else None
        out['item'].append(row['item'])
        out['id'].append(record.id if record else '')
        out['payload'].append(record.payload if record else b'')
        out['frames'].append(record.frames if record else 0)
        out['seconds'].append(record.seconds if record else 0.0)
        out['item_seconds'].append(float(row['seconds']))
        out['error'].append(result.error or '')
    return _columns(out)


def _results(rows):
    """Groups the records of each item (consecutive rows, the order is preserved) into Results."""
    current, records, error, seconds = None, [], None, 0.0
    for row in rows:
        if row['item'] != current:
            if current is not None:
                yield _result(current, records, error, seconds)
            current, records, error = row['item'], [], None
            seconds = float(row['item_seconds'])
        if row['error']:
            error = error or row['error']
        else:
            records.append(
                Record(row['id'], bytes(row['payload']), int(row['frames']), float(row['seconds']))
            )
    if current is not None:
        yield _result(current, records, error, seconds)


def _result(text, records, error, seconds):
    item = Item(**json.loads(text))
    if error is not None:
        return Result(item, [], error)
    return Result(item, records, seconds=seconds)


def _row_dicts(batch):
    names = list(batch)
    return [dict(zip(names, values)) for values in zip(*(batch[name] for name in names))]


def _columns(out):
    # Object arrays: Ray stores bytes and strings as Arrow binary/string columns.
    return {name: np.array(values, dtype=object) for name, values in out.items()}
