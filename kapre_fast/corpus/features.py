"""What to compute for every item (`Recipe`: the front end, rate, mono, chunking) and the two
stages every engine runs: decode an item into pieces, then compute each piece's features as
.npy bytes (the exact bytes written to a shard or file, so engines agree bit for bit)."""

from __future__ import annotations

import dataclasses
import functools
import io

import numpy as np

from kapre_fast.corpus import decode
from kapre_fast.corpus.inputs import Item
from kapre_fast.spec import FrontEnd

# The kapre_fast.cpu / .gpu functions the corpus computes (one float32 array per recording).
FUNCTIONS = ('melspectrogram', 'stft_magnitude', 'log_frequency_spectrogram', 'stft_mag_phase')
# The functions whose filterbank depends on the sample rate.
_RATE_FUNCTIONS = ('melspectrogram', 'log_frequency_spectrogram')
# Stands in for the sample rate when options are checked before any file is read (each file's
# own rate is used later); high, so that rate-dependent frequency limits pass here.
_PLACEHOLDER_RATE = 384000
# Errors a single item can raise that fail that item only (the run goes on).
ITEM_ERRORS = (decode.DecodeError, ValueError, TypeError, RuntimeError, OSError, MemoryError)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The features of every item: `function` of kapre_fast.cpu with kapre's keyword arguments
    `front_end`, at `sample_rate` (files at another rate are resampled; None: each file's own
    rate), mono or all channels, whole files or `chunk_seconds` pieces."""

    function: str = 'melspectrogram'
    front_end: tuple = ()  # sorted (name, value) pairs, so that a Recipe is hashable
    sample_rate: int | None = None
    mono: bool = False
    chunk_seconds: float | None = None

    @classmethod
    def make(
        cls,
        function='melspectrogram',
        sample_rate=None,
        mono=False,
        chunk_seconds=None,
        **front_end,
    ):
        if function not in FUNCTIONS:
            raise ValueError(f'function must be one of {", ".join(FUNCTIONS)}, got {function!r}')
        if sample_rate is not None and (
            isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1
        ):
            raise ValueError(
                f'sample_rate must be a whole number of Hz > 0 or None, got {sample_rate!r}'
            )
        if chunk_seconds is not None and not (
            isinstance(chunk_seconds, (int, float)) and chunk_seconds > 0
        ):
            raise ValueError(f'chunk_seconds must be a number > 0 or None, got {chunk_seconds!r}')
        layout = front_end.pop('input_data_format', 'channels_last')
        if layout != 'channels_last':
            raise ValueError(
                f'input_data_format must be channels_last (the layout of decoded '
                f"audio), got {layout!r}; output_data_format sets the features'"
            )
        front_end.setdefault('output_data_format', 'channels_last')
        recipe = cls(
            function,
            tuple(sorted(front_end.items())),
            sample_rate,
            bool(mono),
            None if chunk_seconds is None else float(chunk_seconds),
        )
        recipe.check()
        return recipe

    def check(self):
        """Builds the front end once now, so that a bad argument fails before any file is read.
        Without a sample rate, errors that depend on the rate are left to each file."""
        try:
            self.spec_at(self.sample_rate or _PLACEHOLDER_RATE)
        except (ValueError, TypeError) as error:
            if self.sample_rate is not None or 'sample_rate' not in str(error):
                raise

    @functools.lru_cache(maxsize=16)
    def spec_at(self, rate) -> FrontEnd:
        """The validated front end for audio at `rate` Hz."""
        constructor = getattr(FrontEnd, self.function)
        kwargs = dict(self.front_end, input_data_format='channels_last')
        if self.function in _RATE_FUNCTIONS:
            kwargs['sample_rate'] = rate
        return constructor(**kwargs)

    def settings(self) -> dict:
        """JSON-able description, stored beside a run's outputs to refuse mixing settings."""
        return {
            'function': self.function,
            'front_end': dict(self.front_end),
            'sample_rate': self.sample_rate,
            'mono': self.mono,
            'chunk_seconds': self.chunk_seconds,
        }


@dataclasses.dataclass
class Piece:
    """Decoded samples of one output record (a whole item, or one chunk of it)."""

    id: str
    audio: np.ndarray  # float32 (time, channels)
    rate: int


@dataclasses.dataclass
class Record:
    """One output array: its id, its .npy bytes, frames (first axis) and seconds of audio."""

    id: str
    payload: bytes
    frames: int
    seconds: float


@dataclasses.dataclass
class Decoded:
    item: Item
    pieces: list
    error: str | None = None
    seconds: float = 0.0  # of audio decoded (after resampling; chunk padding not counted)


@dataclasses.dataclass
class Result:
    """What an engine hands the writer for one item: its records, or the error that failed it."""

    item: Item
    records: list
    error: str | None = None
    seconds: float = 0.0


def decode_item(item: Item, recipe: Recipe) -> Decoded:
    """Reads, mixes down, resamples and chunks one item; a failure is returned, not raised."""
    try:
        audio, rate = decode.read(item.path, item.offset, item.duration)
        if recipe.mono:
            audio = decode.to_mono(audio)
        audio = decode.resample(audio, rate, recipe.sample_rate)
        rate = recipe.sample_rate or rate
    except ITEM_ERRORS as error:
        return Decoded(item, [], _message(error, item))
    seconds = audio.shape[0] / rate
    if recipe.chunk_seconds is None:
        return Decoded(item, [Piece(item.id, audio, rate)], seconds=seconds)
    length = max(1, round(recipe.chunk_seconds * rate))
    pieces = [
        Piece(f'{item.id}#{k}', chunk, rate) for k, chunk in enumerate(decode.chunks(audio, length))
    ]
    return Decoded(item, pieces, seconds=seconds)


def compute_result(decoded: Decoded, recipe: Recipe, compute) -> Result:
    """Features of every piece with `compute(spec, batch)` (see cpu_compute, gpu_compute)."""
    if decoded.error is not None:
        return Result(decoded.item, [], decoded.error)
    records = []
    try:
        for piece in decoded.pieces:
            features = compute(recipe.spec_at(piece.rate), piece.audio[np.newaxis])[0]
            records.append(
                Record(
                    piece.id,
                    npy_bytes(features),
                    features.shape[0],
                    piece.audio.shape[0] / piece.rate,
                )
            )
    except ITEM_ERRORS as error:
        return Result(decoded.item, [], _message(error, decoded.item))
    return Result(decoded.item, records, seconds=decoded.seconds)


def cpu_compute(threads):
    from kapre_fast import cpu

    return functools.partial(_cpu, cpu.compute, threads)


def _cpu(compute, threads, spec, batch):
    return compute(spec, batch, threads=threads)


def gpu_compute():
    """compute(spec, batch) on the GPU (ImportError/RuntimeError saying why it cannot run)."""
    import kapre_fast.gpu as gpu

    return functools.partial(_gpu, gpu.compute)


def _gpu(compute, spec, batch):
    import cupy

    return cupy.asnumpy(compute(spec, cupy.asarray(batch)))


def npy_bytes(array) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
    return stream.getvalue()


def _message(error, item):
    text = str(error) or type(error).__name__
    if isinstance(error, decode.DecodeError):
        return text  # already starts with the path
    return f'{item.path}: {text}'
