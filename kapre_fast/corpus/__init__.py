"""Features for a whole corpus: many files and formats, resampling, shards, a manifest,
resuming, and the work spread over a process pool (engine='local') or a Ray cluster ('ray').

    from kapre_fast import corpus

    summary = corpus.extract('audio/', 'features/', n_fft=1024, hop_length=256, n_mels=64,
                             return_decibel=True, sample_rate=16000, mono=True)
    print(summary)                      # N of M files written ..., exit-worthy: summary.ok
    features = corpus.open('features/')
    features['speech/a']                # float32 (frames, mels, channels)
    features.failed                     # id -> error
    features.to_torch(), features.to_tf_dataset()

extract(inputs, output, engine='local', *, function='melspectrogram', sample_rate=None,
        mono=False, chunk_seconds=None, format='shards', shard_size=1000, workers=None,
        threads=None, device='cpu', address=None, resume=True, progress=None, **front_end)

- inputs: a folder (walked recursively), a glob, an audio file, or a manifest (.csv with a
  header row, or .jsonl) with `path` and optional `offset`, `duration` (seconds) and `id`; or a
  list of these. Every format soundfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1).
  An id is the file's path relative to the folder given, without its audio suffix (or the
  manifest's id); chunks are `<id>#0`, `<id>#1`, ...
- function and **front_end: a kapre_fast.cpu function and kapre's keyword arguments
  (output_data_format too; the decoded audio is channels_last). Each array is what
  kapre_fast.cpu returns for the file as a batch of one, without the batch axis.
- sample_rate: files at another rate are resampled with soxr (quality 'HQ'); None: each file
  at its own rate (the filterbank follows it). mono: average the channels first (else all
  channels). chunk_seconds: cut each file into pieces of that length (the last zero-padded).
- format: 'shards' (default), 'npy' (one OUT/<id>.npy per record, for small jobs) or 'npz'
  (output is one .npz file, written with its OUT.manifest.jsonl under temporary names of their
  own and renamed into place together; no resuming).
- engine: 'local' (a process pool of `workers`, default one per core, each computing with
  `threads` = cores // workers; device='gpu': the pool decodes, kapre_fast.gpu computes; a
  worker that dies is replaced, its items retried one at a time, one that kills its worker
  again failed by name) or 'ray' (Ray Data; `address` joins a running cluster - a
  ConnectionError within 10 s where none answers -, else Ray starts in this process; needs
  the `ray` extra). Both write the same bytes.
- resume: a rerun into the same folder re-verifies the records it lists as written (file
  present, the tar member's name and size at its offset), skips those and redoes the rest
  (items that failed, and items whose files are missing or damaged: Summary.redone); with other
  settings, or resume=False, it refuses to start.
- progress: a bar on stderr (files/s, hours of audio/s, ETA); default: when stderr is a
  terminal.

Returns a Summary (print it; .failed lists (id, source, error); .ok). Items that cannot be
read (missing, corrupt, empty, not audio, NaN or infinite samples, a header rate that would need
more than 256x upsampling), are shorter than one frame, or whose id the file system refuses as
a name, are listed as failed in the manifest and the summary; the rest is written. A failure of
the output itself (disk full at a write) stops the run with an OSError naming the file; nothing
it did not make durable is listed, and a rerun completes it.

Why tar shards: a training job streams them sequentially at disk/network speed from any
store (local disk, NFS, S3 via WebDataset's or tf.data's readers, `tar x` by hand); they need no
library to write (the tarfile module) or to read (each member is a plain .npy file named
`<id>.npy`, the WebDataset convention of one key per sample); a million small .npy files
instead would cost a million inodes and opens. Random access is kept by the manifest, which
records each member's byte offset. A shard is written as `shard-NNNNNN.tar.partial` and renamed
once complete, and the manifest lines of its records are appended (fsynced) only after that
rename: a run killed at any point (SIGKILL included) leaves no partial shard counted as done,
and the rerun deletes what that run left and redoes exactly the items not listed.

Output folder: shard-*.tar (or the .npy files), manifest.jsonl (one line per array written or
item failed: id, item, source, status, frames, seconds, shard, offset, bytes, sha256, error; see
kapre_fast.corpus.store), settings.json (the settings a rerun must match). corpus.open checks
that every file listed is there and each read checks the member's name, size and SHA-256:
DamagedOutputError names the file and the record (Features.verify() reads everything).
"""

from __future__ import annotations

from kapre_fast.corpus.decode import DecodeError
from kapre_fast.corpus.extract import Summary, extract
from kapre_fast.corpus.inputs import AUDIO_EXTENSIONS, InputError, Item, collect
from kapre_fast.corpus.reader import Features, open  # noqa: A004
from kapre_fast.corpus.store import DamagedOutputError

__all__ = [
    'extract',
    'open',
    'Features',
    'Summary',
    'collect',
    'Item',
    'InputError',
    'DecodeError',
    'DamagedOutputError',
    'AUDIO_EXTENSIONS',
]
