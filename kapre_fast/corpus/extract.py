"""extract(): inputs -> engine -> writer, with the manifest, resuming, progress and a summary."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from kapre_fast.corpus import inputs as _inputs
from kapre_fast.corpus.features import Recipe
from kapre_fast.corpus.progress import Progress
from kapre_fast.corpus.store import Store

ENGINES = ('local', 'ray')
DEVICES = ('cpu', 'gpu')


@dataclasses.dataclass
class Summary:
    """What a run did. `failed`: (id, source, error) of the items that failed in this run."""

    output: str
    total: int  # items in the inputs
    already_done: int  # skipped: written by an earlier run
    written: int  # items written by this run
    records: int  # arrays written by this run (more than items when chunking)
    failed: list
    audio_seconds: float
    elapsed: float
    engine: str
    redone: int = 0  # items an earlier run listed whose files were missing or damaged

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self):
        done = self.already_done + self.written
        parts = [f'{done} of {self.total} files written to {self.output}']
        if self.already_done:
            parts.append(f'{self.already_done} by an earlier run')
        if self.redone:
            parts.append(f'{self.redone} redone (listed, but their files were missing or damaged)')
        if self.failed:
            parts.append(f'{len(self.failed)} failed')
        elapsed = max(self.elapsed, 1e-9)
        return (
            ', '.join(parts) + f' ({self.elapsed:.1f} s, {self.written / elapsed:.1f} '
            f'files/s, {self.audio_seconds / 3600:.3g} h of audio at '
            f'{self.audio_seconds / elapsed:.0f}x real time, engine {self.engine})'
        )


def extract(
    inputs,
    output,
    engine='local',
    *,
    function='melspectrogram',
    sample_rate=None,
    mono=False,
    chunk_seconds=None,
    format='shards',
    shard_size=1000,
    workers=None,
    threads=None,
    device='cpu',
    address=None,
    resume=True,
    progress=None,
    **front_end,
) -> Summary:
    """Features of every recording in `inputs`, written to `output`; see kapre_fast.corpus."""
    if engine not in ENGINES:
        raise ValueError(f'engine must be one of {", ".join(ENGINES)}, got {engine!r}')
    if device not in DEVICES:
        raise ValueError(f'device must be one of {", ".join(DEVICES)}, got {device!r}')
    for name, value in (('shard_size', shard_size), ('workers', workers), ('threads', threads)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f'{name} must be a whole number >= 1, got {value!r}')
    if device == 'gpu' and threads is not None:
        raise ValueError('threads sets CPU threads; it does not apply to device="gpu"')
    if address is not None and engine != 'ray':
        raise ValueError(f'address joins a Ray cluster; it needs engine="ray", not {engine!r}')
    recipe = Recipe.make(function, sample_rate, mono, chunk_seconds, **front_end)
    items = _inputs.collect(inputs)
    if engine == 'ray':
        from kapre_fast.corpus import engine_ray as run_engine  # ImportError naming the extra

        run_engine._ray()
        run_engine.check_address(address)  # fails within seconds, before anything is written
    else:
        from kapre_fast.corpus import engine_local as run_engine

    start = time.perf_counter()
    store = Store(output, format, recipe.settings(), shard_size=shard_size, resume=resume)
    todo = [item for item in items if item.id not in store.done_items]
    enabled = sys.stderr.isatty() if progress is None else bool(progress)
    bar = Progress(len(todo), enabled and bool(todo))
    failed, written, records, audio_seconds, completed = [], 0, 0, 0.0, False
    options = dict(workers=workers, threads=threads, device=device)
    if engine == 'ray':
        options['address'] = address
    try:
        results = run_engine.run(todo, recipe, **options) if todo else ()
        for count, result in enumerate(results, start=1):
            error = store.add(result)
            if error is None:
                written, records = written + 1, records + len(result.records)
                audio_seconds += result.seconds
            else:
                failed.append((result.item.id, result.item.path, error))
            bar.update(count, Path(result.item.path).name, result.seconds)
        completed = True
    finally:
        bar.close()
        store.close(completed)
    return Summary(
        str(output),
        len(items),
        len(items) - len(todo),
        written,
        records,
        failed,
        audio_seconds,
        time.perf_counter() - start,
        engine,
        len(store.redone & {item.id for item in items}),
    )
