"""The device copies of front-end plans' tables, kept alive while a kernel may read them.

A plan's tables (FFT twiddles, window, filterbank) are uploaded to a GPU once and reused by
every call with the same spec. Calls run asynchronously, on whatever stream is current, so
dropping the last reference to an evicted entry's arrays would hand their memory back to the
allocator (CuPy's pool, for reuse on the stream it was allocated on) while a kernel queued on
ANOTHER stream still reads it. So each launch records an event on its stream, an evicted entry
is retired instead of dropped, and a retired entry is released only once every event recorded
for it has completed.

A CUDA graph captured with an entry's tables (cupy.cuda.Stream.begin_capture) keeps their raw
addresses for as long as the graph lives, which no cache can know: an entry used while its
stream captures is never evicted (and counts against no capacity), and such a call records no
event (it would become a node of the graph). The first use of a key inside a capture raises
`CaptureMiss` (an upload is not allowed there): call it once before capturing.

No CuPy here: `upload` and `new_event` come from kapre_fast.gpu (or from tests, which check the
lifetime logic without a GPU).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any, Callable, Hashable


class CaptureMiss(RuntimeError):
    """The first use of a front end on a device came inside a CUDA graph capture."""


def wait_for_upload(entry, stream, capturing: bool) -> None:
    """Orders `stream` after the upload of `entry` (a call on another stream than the uploader's
    must not read tables still being copied) until its event is known to be done; inside a
    capture the host waits instead (a capture cannot wait on an outside event)."""
    if entry.ready is None:
        return
    if entry.ready.done:
        entry.ready = None
    elif capturing:
        entry.ready.synchronize()
        entry.ready = None
    else:
        stream.wait_event(entry.ready)


class Entry:
    """One uploaded plan: `plan`, `floats`, `ints` (device arrays); the upload's event until it
    is known to have completed (`ready`, or None); the calls between lookup and launch (`pins`);
    its latest event per stream (events on one stream complete in order, so the latest stands
    for all); whether a graph captured it (then it is never evicted)."""

    __slots__ = ('plan', 'floats', 'ints', 'ready', 'pins', 'events', 'captured')

    def __init__(self, plan, floats, ints, ready=None):
        self.plan, self.floats, self.ints, self.ready = plan, floats, ints, ready
        self.pins = 0
        self.events: dict[int, Any] = {}
        self.captured = False

    def idle(self) -> bool:
        return self.pins == 0 and all(event.done for event in self.events.values())


class DeviceTables:
    """An LRU map from a key (spec, device, inverse) to uploaded tables, at most `capacity`
    entries in use per group (`group(key)`, e.g. the device: one device's specs never evict
    another's), plus the captured ones and the retired ones that kernels may still read.

    upload(key, stream) -> (plan, floats, ints, ready) builds and copies one entry, with `stream`
    ordered after the copy (not necessarily finished on return; `ready`: the copy's event, which
    every later call's stream waits on until it is done, or None);
    new_event() -> an event with `.record(stream)` and a `.done` property (True once the work
    queued before it has completed)."""

    def __init__(
        self,
        upload: Callable[[Hashable], tuple],
        new_event: Callable[[], Any],
        capacity: int = 64,
        group: Callable[[Hashable], Hashable] = lambda key: None,
    ):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self._upload, self._new_event, self.capacity = upload, new_event, capacity
        self._group = group
        self._live: collections.OrderedDict[Hashable, Entry] = collections.OrderedDict()
        self._retired: list[Entry] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def use(self, key: Hashable, stream, capturing: bool = False):
        """The entry of `key` (uploaded on first use), for work queued on `stream` (an object
        with `.ptr`) inside the block: on exit an event recorded on `stream` marks the end of
        that work, and until it completes the entry's memory is kept, evicted or not.
        `capturing`: `stream` is capturing a CUDA graph (the entry is then kept for good, and a
        first use raises CaptureMiss)."""
        entry = self._get(key, stream, capturing)
        try:
            yield entry
        finally:
            event = None
            if not capturing:
                event = self._new_event()
                event.record(stream)
            with self._lock:
                if event is not None:
                    entry.events[stream.ptr] = event
                entry.pins -= 1

    def _get(self, key: Hashable, stream, capturing: bool) -> Entry:
        """The pinned entry of `key`, now the most recently used."""
        with self._lock:
            entry = self._live.get(key)
            if entry is not None:
                self._live.move_to_end(key)
                wait_for_upload(entry, stream, capturing)
                entry.pins += 1
                entry.captured = entry.captured or capturing
                return entry
        if capturing:
            raise CaptureMiss(
                'the first call of this front end on this GPU is inside a CUDA graph capture, '
                'where its tables cannot be uploaded: call it once before capturing'
            )
        # Outside the lock: an upload takes host work and a copy. Two threads may upload the
        # same key; the second keeps the first's entry and its own copy is never used.
        fresh = Entry(*self._upload(key, stream))
        with self._lock:
            entry = self._live.setdefault(key, fresh)
            self._live.move_to_end(key)
            if entry is not fresh:
                wait_for_upload(entry, stream, capturing)
            entry.pins += 1
            group = self._group(key)
            uncaptured = [
                k for k, e in self._live.items() if not e.captured and self._group(k) == group
            ]
            for old in uncaptured[: max(0, len(uncaptured) - self.capacity)]:
                self._retired.append(self._live.pop(old))
            self._retired = [old for old in self._retired if not old.idle()]
            return entry

    def captured(self) -> int:
        """How many entries a graph captured (kept for good)."""
        with self._lock:
            return sum(entry.captured for entry in self._live.values())

    def retired(self) -> int:
        """How many evicted entries are still held for kernels that may read them."""
        with self._lock:
            self._retired = [old for old in self._retired if not old.idle()]
            return len(self._retired)

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)
