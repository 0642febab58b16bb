"""Streaming front ends: audio pushed in chunks of any length, frames returned as they complete,
equal to the offline call on the whole signal.

    s = kapre_fast.streaming.open('melspectrogram', backend='cpu', n_fft=512, hop_length=160,
                                  n_mels=64, sample_rate=16000)
    for chunk in microphone:          # (batch, samples, channels), any number of samples
        frames = s.push(chunk)        # (batch, new frames, n_mels, channels): 0 or more frames
    tail = s.flush()                  # the frames only the end of the signal completes
    s.reset()                         # ready for a new signal

Front ends: those of the backends' functions (stft_magnitude, melspectrogram,
log_frequency_spectrogram, stft_mag_phase, stft, mfcc, pcen) with their keyword arguments, and
'istft' (streaming overlap-add: push complex STFT frames, get the samples they complete).
Backends: 'cpu' (NumPy arrays), 'torch' (tensors), 'jax' (jax arrays, eager: slow per chunk;
`jax_functions` / `jax_inverse_functions` give pure, jit-able steps).

Fixed shapes (compiled and exported graphs): `FixedStep` (chunks of a fixed multiple of
hop_length, a mask of the valid frames, the state as explicit arrays) and `FixedInverse`
(overlap-add with a carried tail), written once over an array namespace: jax here,
TensorFlow/Keras and the stateful TFLite/ONNX export in kapre_fast.streaming_tf.

How it works, written once here (`_FrameCore`, `_Decibel`, `_Smoother`, `InverseStream`) over a
thin per-backend adapter (`_Adapter`: the array namespace and the backend's kernel call):

* The stream keeps the samples of the (padded) signal that no complete frame has consumed yet,
  starting at the next frame's first sample. A push appends the chunk and runs the backend's
  kernel on exactly the samples of the frames it completes, with the kernel's own padding off
  (pad_begin, pad_end, center): the fused kernels compute every frame on its own, so each frame
  is the offline frame bit for bit. One exception: stft_mag_phase's phase, whose vector atan2
  takes libm's for a whole tile of frames when one lane needs it (a frame's phase then depends
  on its neighbours in the call, by about 2e-7 rad).
* The start behaves as offline: pad_begin's n_fft - hop_length zeros and a preset's constant
  centring (n_fft // 2 zeros) start the buffer; a preset's reflect centring waits for the first
  n_fft // 2 + 1 samples and then prepends their mirror image.
* flush() adds the end padding (pad_end's zeros up to the last frame that starts inside the
  signal; a preset's centring, constant or the mirror of the last n_fft // 2 + 1 samples) and
  returns the frames it completes. push() after flush() raises until reset().
* dB (return_decibel, and the dB mel under mfcc): offline, each example is clamped to
  db_dynamic_range (top_db) below its maximum over the whole example, which a stream does not
  know yet. The stream clamps to the RUNNING maximum instead: frame t is
  max(dB_t, max(dB_0..dB_t) - range), the maximum over the example's frames so far, its
  features and (magnitude) channels. Where the offline clamp does not bind, that is the offline
  value; everywhere, clamping the streamed frames once more to the final maximum less the range
  gives the offline result exactly (the running floor never exceeds the final one). MFCC is the
  DCT of that running-clamped dB mel.
* PCEN carries librosa's smoother M (per example, channel and band; M[-1] = 1) across chunks:
  M_t = (1 - b) M_{t-1} + b S_t in float32, then the compression of kapre_fast._pcen.

Every push returns the backend's array type in output_data_format, with 0 frames when the chunk
completes none.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kapre_fast import _api, _pcen
from kapre_fast.spec import (
    FrontEnd,
    check_audio_dtype,
    library_defaults,
    mfcc_matrix,
    pcen_constants,
    PCEN_DEFAULTS,
    time_axis,
)

__all__ = [
    'open',
    'parse',
    'Stream',
    'InverseStream',
    'FixedStep',
    'FixedInverse',
    'jax_functions',
    'jax_inverse_functions',
    'FRONT_ENDS',
    'BACKENDS',
]

FRONT_ENDS = _api.FUNCTIONS + ('mfcc', 'pcen', 'istft')
BACKENDS = ('cpu', 'torch', 'jax')
# A dynamic range the clamp never reaches (float32-finite, as the native kernel wants): the
# kernel then returns the unclamped dB, and the stream applies its running clamp.
_NO_CLAMP = 1e30


def open(front_end: str, backend: str = 'cpu', **kwargs):  # noqa: A001  (the issue's name)
    """A streaming `front_end` on `backend`, taking that backend function's keyword arguments
    (kapre's; mfcc's n_mfcc and lifter; pcen's constants; `threads` for cpu, torch and jax).

    Returns a `Stream` (an `InverseStream` for 'istft', taking kapre's InverseSTFT arguments).
    ValueError naming the value for an unknown front end or backend; the spec's own errors
    for bad arguments (before any audio)."""
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
    threads = kwargs.pop('threads', None)
    adapter = _Adapter.of(backend, threads)
    if front_end == 'istft':
        return InverseStream(FrontEnd.inverted_by_istft(**kwargs), adapter)
    spec, dct, constants = parse(front_end, kwargs)
    return Stream(front_end, spec, adapter, dct=dct, pcen=constants)


def parse(front_end: str, kwargs: dict):
    """(spec, DCT matrix or None, PCEN constants or None) of a framed `front_end` (not
    'istft') and its function's keyword arguments (without `threads`)."""
    if front_end not in FRONT_ENDS:
        raise ValueError(f'front_end must be one of {", ".join(FRONT_ENDS)}, got {front_end!r}')
    kwargs = dict(kwargs)
    dct = constants = None
    if front_end == 'mfcc':
        if 'return_decibel' in kwargs:
            raise TypeError(
                "mfcc takes no 'return_decibel': MFCCs are always computed from the "
                'dB mel spectrogram'
            )
        n_mfcc = kwargs.pop('n_mfcc', None)
        lifter = kwargs.pop('lifter', 0)
        kwargs = {**kwargs, **library_defaults(kwargs, mfcc=True)}
        library_n_mfcc = kwargs.pop('n_mfcc', 20)  # torchaudio's 40 where left out
        n_mfcc = library_n_mfcc if n_mfcc is None else n_mfcc
        spec = FrontEnd.melspectrogram(return_decibel=True, **kwargs)
        dct = mfcc_matrix(n_mfcc, spec.n_mels, lifter)
    elif front_end == 'pcen':
        pcen_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in PCEN_DEFAULTS}
        if 'return_decibel' in kwargs:
            raise TypeError("pcen takes no 'return_decibel': PCEN replaces the dB scaling")
        spec = FrontEnd.melspectrogram(**kwargs)
        constants = pcen_constants(spec.sample_rate, spec.hop_length, **pcen_kwargs)
    elif front_end == 'istft':
        raise ValueError(
            "parse() takes a framed front end; open('istft', ...) streams the inverse STFT"
        )
    else:
        spec = getattr(FrontEnd, front_end)(**kwargs)
    return spec, dct, constants


# ----- the per-backend part ----------------------------------------------------------------------


class _Adapter:
    """The array namespace of a backend (`xp`: numpy, torch or jax.numpy) and its kernel call:
    everything the framework-free core needs from a backend. `samples` is the adapter of the
    sample buffer (itself, except for jax: NumPy, whose small eager operations cost a
    microsecond where jax's cost tens; the jitted kernel takes the NumPy window)."""

    name = ''

    def __init__(self, threads):
        self.threads = threads
        self.samples = self

    @staticmethod
    def of(backend, threads):
        return {'cpu': _NumpyAdapter, 'torch': _TorchAdapter, 'jax': _JaxAdapter}[backend](threads)

    def as_audio(self, chunk):
        """The chunk as a float32 array of the backend; TypeError naming a refused dtype."""
        raise NotImplementedError

    def compute(self, spec, audio):
        """The backend's front end `spec` on channels_last `audio` (padding off in `spec`)."""
        raise NotImplementedError

    def inverse(self, spec, frames):
        """The backend's inverse STFT of complex `frames` (spec's output layout)."""
        raise NotImplementedError

    def flip(self, x, axis):
        return self.xp.flip(x, axis)

    def concat(self, arrays, axis):
        return self.xp.concatenate(arrays, axis)

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=dtype or self.xp.float32)

    def cummax(self, x, axis):
        raise NotImplementedError

    def amax(self, x, axes):
        return self.xp.max(x, axis=axes)

    def dct(self, mel, matrix, channels_last):
        matrix = self.xp.asarray(np.asarray(matrix, np.float32))
        if channels_last:  # (batch, frames, n_mels, channels)
            return self.xp.einsum('bfmc,mk->bfkc', mel, matrix)
        return mel @ matrix


class _NumpyAdapter(_Adapter):
    name = 'cpu'
    xp = np

    def as_audio(self, chunk):
        array = np.asarray(chunk)
        check_audio_dtype(array.dtype)
        return array.astype(np.float32, copy=False)

    def compute(self, spec, audio):
        # kapre_fast.cpu.compute's native call with its arguments prepared once per stream (a
        # chunk's kernel call is a few microseconds; the spec's per-call lookups were half
        # the cost). `audio` is already float32, 3-D and padded (the kernel spec pads nothing).
        prepared = getattr(self, '_prepared', None)
        if prepared is None or prepared[0] is not spec:
            from kapre_fast import _kernel_args, _loader, _weights, cpu

            start, length, weights = _weights.bands(spec)
            arguments = dict(
                window=_weights.window(spec),
                band_start=start,
                band_length=length,
                band_weights=weights,
                **_kernel_args.of(spec).replace(input_channels_first=False).asdict(),
                threads=cpu.thread_count(self.threads),
            )
            prepared = self._prepared = (spec, _loader.core().frontend, arguments)
        return prepared[1](audio, **prepared[2])

    def inverse(self, spec, frames):
        from kapre_fast import cpu

        return cpu.istft(frames, **spec.istft_arguments(), threads=self.threads)

    def cummax(self, x, axis):
        return np.maximum.accumulate(x, axis=axis)

    def dct(self, mel, matrix, channels_last):
        return _api.apply_dct(mel, matrix, channels_last)


class _TorchAdapter(_Adapter):
    name = 'torch'

    def __init__(self, threads):
        super().__init__(threads)
        import torch
        import kapre_fast.torch as backend

        self.xp, self.backend = torch, backend

    def as_audio(self, chunk):
        torch = self.xp
        if not isinstance(chunk, torch.Tensor):
            array = np.asarray(chunk)
            check_audio_dtype(array.dtype)
            return torch.from_numpy(array.astype(np.float32, copy=False))
        if chunk.dtype.is_complex or chunk.dtype == torch.bool:
            raise TypeError(f'chunk must hold real numbers, got dtype {chunk.dtype}')
        return chunk.to(torch.float32)

    def compute(self, spec, audio):
        # kapre_fast.torch.compute's operator call with the spec's arguments (window and bands
        # as tensors, the kernel's scalars) made once per stream. The kernel spec has no
        # centring, so the operator is all compute() would run.
        prepared = getattr(self, '_prepared', None)
        if prepared is None or prepared[0] is not spec:
            from kapre_fast import cpu
            from kapre_fast.torch import _ops

            arguments = _ops.front_end_arguments(spec)
            prepared = self._prepared = (spec, arguments, cpu.thread_count(self.threads))
        operator = self.xp.ops.kapre_fast.front_end.default
        return operator(audio.contiguous(), *prepared[1], prepared[2])

    def inverse(self, spec, frames):
        return self.backend.istft(frames, **spec.istft_arguments(), threads=self.threads)

    def flip(self, x, axis):
        return self.xp.flip(x, (axis,))

    def concat(self, arrays, axis):
        return self.xp.cat(arrays, axis)

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=dtype or self.xp.float32)

    def cummax(self, x, axis):
        return self.xp.cummax(x, axis).values

    def amax(self, x, axes):
        return self.xp.amax(x, dim=axes)

    def dct(self, mel, matrix, channels_last):
        matrix = self.xp.as_tensor(np.asarray(matrix, np.float32))
        if channels_last:
            return self.xp.einsum('bfmc,mk->bfkc', mel, matrix)
        return mel @ matrix


class _JaxAdapter(_Adapter):
    name = 'jax'

    def __init__(self, threads):
        super().__init__(threads)
        import jax
        import jax.numpy as jnp
        import kapre_fast.jax as backend

        self.xp, self.jax, self.backend = jnp, jax, backend
        self.samples = _NumpyAdapter(threads)

    def compute(self, spec, audio):
        # kapre_fast.jax.compute under jax.jit, made once per stream: an eager custom call
        # costs hundreds of microseconds of dispatch, a compiled one a few tens (one
        # compilation per window length: a chunk completes a bounded number of frames).
        prepared = getattr(self, '_prepared', None)
        if prepared is None or prepared[0] is not spec:
            backend, threads = self.backend, self.threads
            prepared = self._prepared = (
                spec,
                self.jax.jit(lambda audio: backend.compute(spec, audio, threads=threads)),
            )
        return prepared[1](audio)

    def inverse(self, spec, frames):
        return self.backend.istft(frames, **spec.istft_arguments(), threads=self.threads)

    def cummax(self, x, axis):
        return self.jax.lax.cummax(x, axis=axis)


# ----- the framework-free core -----------------------------------------------------------------


def _kernel_spec(spec: FrontEnd) -> FrontEnd:
    """`spec` with every padding off (the stream pads itself) and its dB clamp out of reach (the
    stream clamps to its running maximum), input channels_last (the stream's buffer)."""
    changes = dict(pad_begin=False, pad_end=False, input_data_format='channels_last')
    if spec.compat != 'kapre':
        changes['center'] = False
        if spec.return_decibel:
            changes['top_db'] = math.inf
    elif spec.return_decibel:
        changes['db_dynamic_range'] = _NO_CLAMP
    return dataclasses.replace(spec, **changes)


class _FrameCore:
    """The framing of a stream, independent of the array library: which samples are buffered,
    the start and end padding, and how many frames each push completes. Works on channels_last
    (batch, time, channels) arrays through `adapter` (slicing, concatenation, zeros, flip)."""

    def __init__(self, spec: FrontEnd, adapter: _Adapter):
        self.adapter = adapter.samples  # the namespace of the sample buffer
        self.frame_length, self.hop = spec.frame_length, spec.hop_length
        self.pad_end = spec.pad_end  # kapre's (presets have none)
        self.centre = spec.center_padding  # a preset's n_fft // 2, else 0
        self.reflect = bool(self.centre) and spec.pad_mode == 'reflect'
        self.lead = (
            spec.pad_begin_length
            if spec.compat == 'kapre'
            else (0 if self.reflect else self.centre)
        )
        self.spec = spec
        self.reset()

    def reset(self):
        self.buffer = None  # samples from the next frame's start on
        self.head = None  # reflect centring: the samples received before the first frame
        self.tail = None  # reflect centring: the last centre + 1 samples received
        self.received = 0
        self.skip = 0  # samples still to drop (win_length < hop_length: gaps between frames)
        self.shape = None  # (batch, channels) of the first chunk

    def append(self, chunk):
        """Adds channels_last `chunk` (batch, n, channels); returns the samples of the frames it
        completes (None for none) and the number of those frames."""
        self.received += chunk.shape[1]
        if self.reflect:
            self.tail = (
                chunk
                if self.tail is None
                else self._last(self.adapter.concat([self.tail, chunk], 1), self.centre + 1)
            )
        if self.buffer is None:  # not started: the start padding once the signal allows it
            if self.reflect:
                self.head = (
                    chunk if self.head is None else self.adapter.concat([self.head, chunk], 1)
                )
                if self.head.shape[1] <= self.centre:
                    return None, 0
                mirror = self.adapter.flip(self.head[:, 1 : self.centre + 1], 1)
                chunk, self.head = self.adapter.concat([mirror, self.head], 1), None
            else:
                chunk = self.adapter.concat(
                    [self.adapter.zeros((chunk.shape[0], self.lead, chunk.shape[2])), chunk], 1
                )
            self.buffer = chunk[:, :0]
        return self._frames_of(chunk)

    def finish(self):
        """The end padding (pad_end, or a preset's centring); returns what `append` returns for
        the frames it completes. ValueError where the offline call refuses the signal."""
        if self.buffer is None:
            if self.reflect:
                self.spec.n_frames(self.received)  # raises: too short to mirror
            if self.shape is None:
                return None, 0
            self.append(self.adapter.zeros((*self.shape[:1], 0, self.shape[1])))
        batch, channels = self.buffer.shape[0], self.buffer.shape[2]
        if self.reflect:
            end = self.adapter.flip(self.tail[:, -self.centre - 1 : -1], 1)
        else:
            if self.centre:
                n = self.centre
            elif self.pad_end:
                pending = self.buffer.shape[1]  # the remaining frames start inside the signal
                remaining = -(-pending // self.hop) if not self.skip else 0
                n = max(0, (remaining - 1) * self.hop + self.frame_length - pending)
                if self.received + self.lead == 0:
                    self.spec.n_frames(0)  # raises: pad_end needs one sample
            else:
                n = 0
            end = self.adapter.zeros((batch, n, channels))
        return self._frames_of(end)

    def _frames_of(self, samples):
        if self.skip:
            dropped = min(self.skip, samples.shape[1])
            samples, self.skip = samples[:, dropped:], self.skip - dropped
        buffer = self.adapter.concat([self.buffer, samples], 1) if self.buffer.shape[1] else samples
        length = buffer.shape[1]
        if length < self.frame_length:
            self.buffer = buffer
            return None, 0
        count = 1 + (length - self.frame_length) // self.hop
        used = buffer[:, : (count - 1) * self.hop + self.frame_length]
        consumed = count * self.hop
        self.skip = max(0, consumed - length)
        self.buffer = buffer[:, min(consumed, length) :]
        return used, count

    @staticmethod
    def _last(x, n):
        return x[:, max(0, x.shape[1] - n) :]


class _Decibel:
    """The running dB clamp: frame t becomes max(dB_t, running maximum - range), the maximum
    over the example's frames so far, its features and its magnitude channels."""

    def __init__(self, spec, adapter):
        self.range = spec.decibel[3]
        self.channels_last = spec.output_data_format == 'channels_last'
        self.mag_phase = spec.output == 'mag_phase'
        self.adapter = adapter
        self.reset()

    def reset(self):
        self.maximum = None  # per example, float32

    def __call__(self, frames):
        if not math.isfinite(self.range):
            return frames
        xp, a = self.adapter.xp, self.adapter
        if self.channels_last:  # (batch, frames, features, channels)
            magnitudes = frames[..., : frames.shape[3] // 2] if self.mag_phase else frames
            per_frame = a.amax(magnitudes, (2, 3))
        else:  # (batch, channels, frames, features)
            magnitudes = frames[:, : frames.shape[1] // 2] if self.mag_phase else frames
            per_frame = a.amax(magnitudes, (1, 3))
        if self.maximum is not None:
            per_frame = xp.maximum(per_frame, self.maximum[:, None])
        running = a.cummax(per_frame, 1)  # (batch, frames)
        self.maximum = running[:, -1]
        floor = running - xp.asarray(np.float32(self.range))
        floor = floor[:, :, None, None] if self.channels_last else floor[:, None, :, None]
        if self.mag_phase:
            n = frames.shape[3 if self.channels_last else 1] // 2
            if self.channels_last:
                return a.concat([xp.maximum(frames[..., :n], floor), frames[..., n:]], 3)
            return a.concat([xp.maximum(frames[:, :n], floor), frames[:, n:]], 1)
        return xp.maximum(frames, floor)


class _Smoother:
    """PCEN across chunks: librosa's smoother M_t = (1 - b) M_{t-1} + b S_t (M_{-1} = 1, per
    example, channel and band, float32 as the native pass), then _pcen.compress."""

    def __init__(self, constants, spec, adapter):
        self.constants, self.adapter = constants, adapter
        self.axis = time_axis(spec.output_data_format)
        self.reset()

    def reset(self):
        self.state = None

    def __call__(self, mel):
        xp = self.adapter.xp
        b = xp.asarray(np.float32(self.constants.b))
        keep = xp.asarray(np.float32(1.0 - self.constants.b))
        state = self.state
        if state is None:
            state = xp.ones_like(_take(mel, self.axis, 0, 1))
        frames = (_take(mel, self.axis, t, t + 1) for t in range(mel.shape[self.axis]))
        smooth = _pcen.smooth_frames(frames, b, keep, state)
        if smooth:
            self.state = smooth[-1]
        return _pcen.compress(xp, mel, self.adapter.concat(smooth, self.axis), self.constants)


def _take(x, axis, begin, end):
    return x[:, begin:end] if axis == 1 else x[:, :, begin:end]


class Stream:
    """A streaming front end (made by `open`): push() chunks of audio, get the frames they
    complete; flush() at the end of the signal; reset() for the next one.

    Chunks: (batch, samples, channels) for input_data_format 'channels_last' (the default
    without Keras), (batch, channels, samples) for 'channels_first'; any number of samples
    (0 too); batch and channels fixed by the first chunk until reset(). Frames: the backend
    function's output layout with the new frames only."""

    def __init__(self, front_end, spec, adapter, *, dct=None, pcen=None):
        self.front_end, self.spec, self.adapter = front_end, spec, adapter
        self.backend = adapter.name
        self.kernel_spec = _kernel_spec(spec)
        self._core = _FrameCore(spec, adapter)
        self._decibel = _Decibel(spec, adapter) if spec.return_decibel else None
        self._dct = dct
        self._smoother = _Smoother(pcen, spec, adapter) if pcen is not None else None
        self._flushed = False
        self._channels_last_input = spec.input_data_format == 'channels_last'

    def __repr__(self):
        return f'<kapre_fast.streaming.Stream {self.front_end} on {self.backend}: {self.spec}>'

    @property
    def n_features(self):
        """Size of the features axis of the frames."""
        return self.spec.n_features if self._dct is None else self._dct.shape[1]

    def push(self, chunk):
        """Appends `chunk` to the signal; returns the frames it completes (maybe 0 of them).

        TypeError for a refused dtype; ValueError naming the shape for a chunk that has not 3
        axes or another batch or channel count than the stream's; RuntimeError after flush()."""
        if self._flushed:
            raise RuntimeError(
                'push() after flush(): the signal has ended; call reset() to start a new one'
            )
        audio = self.adapter.samples.as_audio(chunk)
        if audio.ndim != 3:
            layout = (
                '(batch, samples, channels)'
                if self._channels_last_input
                else ('(batch, channels, samples)')
            )
            raise ValueError(
                f'chunk must have 3 axes {layout} (input_data_format='
                f'{self.spec.input_data_format!r}), got shape {tuple(audio.shape)}'
            )
        if not self._channels_last_input:
            audio = audio.transpose(1, 2) if self.backend == 'torch' else audio.transpose(0, 2, 1)
        shape = (audio.shape[0], audio.shape[2])
        if self._core.shape is None:
            self._core.shape = shape
        elif shape != self._core.shape:
            raise ValueError(
                f'chunk has batch {shape[0]} and {shape[1]} channel(s) (shape '
                f'{tuple(audio.shape)} as channels_last), the stream {self._core.shape[0]} and '
                f'{self._core.shape[1]}; call reset() to start a stream of another shape'
            )
        return self._process(*self._core.append(audio))

    def flush(self):
        """Ends the signal: returns the frames that only its end padding completes (pad_end, a
        preset's centring; 0 frames otherwise). ValueError where the offline call would refuse
        the whole signal as too short for its padding. Idempotent: a second flush returns 0
        frames."""
        if self._flushed:
            return self._empty()
        self._flushed = True
        return self._process(*self._core.finish())

    def reset(self):
        """Forgets the signal (buffer, padding state, dB maximum, PCEN smoother)."""
        self._core.reset()
        for stage in (self._decibel, self._smoother):
            if stage is not None:
                stage.reset()
        self._flushed = False

    def _process(self, samples, count):
        if not count:
            return self._empty()
        frames = self.adapter.compute(self.kernel_spec, samples)
        if self._decibel is not None:
            frames = self._decibel(frames)
        if self._dct is not None:
            frames = self.adapter.dct(
                frames, self._dct, self.spec.output_data_format == 'channels_last'
            )
        if self._smoother is not None:
            frames = self._smoother(frames)
        return frames

    def _empty(self):
        batch, channels = self._core.shape or (1, 1)
        channels *= 2 if self.spec.output == 'mag_phase' else 1
        shape = (
            (batch, 0, self.n_features, channels)
            if self.spec.output_data_format == 'channels_last'
            else (batch, channels, 0, self.n_features)
        )
        dtype = None
        if self.spec.output == 'complex':
            dtype = self.adapter.xp.complex64
        return self.adapter.zeros(shape, dtype)


class InverseStream:
    """Streaming overlap-add (kapre's InverseSTFT): push() complex STFT frames (batch, frames,
    n_fft // 2 + 1, channels) in stft_data_format, get the waveform samples they complete
    (every later frame starts after them) in waveform_data_format; flush() returns the tail.
    The concatenated samples equal the offline istft of all frames: each push runs the
    backend's istft on the frames that overlap the pending samples, so every sample sums the
    same frames in the same order as offline."""

    def __init__(self, spec: FrontEnd, adapter: _Adapter):
        self.spec, self.adapter, self.backend = spec, adapter, adapter.name
        self.front_end = 'istft'
        self.hop, self.frame_length = spec.hop_length, spec.win_length
        self.axis = time_axis(spec.output_data_format)  # frames axis
        self.time_axis = time_axis(spec.input_data_format)
        self.reset()

    def reset(self):
        """Forgets the frames."""
        self.held = None  # the frames from `first` on
        self.first = 0  # index of held's first frame
        self.frames = 0  # frames pushed
        self.emitted = 0  # samples returned
        self._flushed = False

    def push(self, frames):
        """Appends complex STFT `frames`; returns the samples that are complete."""
        if self._flushed:
            raise RuntimeError('push() after flush(): call reset() to start a new signal')
        X = self._as_frames(frames)
        bins, channels = (2, 3) if self.axis == 1 else (3, 1)
        if X.ndim != 4 or X.shape[bins] != self.spec.n_freq:
            raise ValueError(
                f'frames must have 4 axes with n_fft // 2 + 1 = {self.spec.n_freq} '
                f'bins ({self.spec.output_data_format}), got shape {tuple(X.shape)}'
            )
        if self.held is not None and (X.shape[0], X.shape[channels]) != (
            self.held.shape[0],
            self.held.shape[channels],
        ):
            raise ValueError(
                f"frames of shape {tuple(X.shape)} do not match the stream's "
                f'{tuple(self.held.shape)} (batch and channels)'
            )
        self.held = X if self.held is None else self.adapter.concat([self.held, X], self.axis)
        self.frames += X.shape[self.axis]
        return self._emit(self.frames * self.hop)

    def flush(self):
        """Returns the samples after the last frame's start (the tail of the overlap-add)."""
        if self._flushed or self.held is None:
            self._flushed = True
            return self._empty()
        self._flushed = True
        return self._emit((self.frames - 1) * self.hop + self.frame_length)

    def _emit(self, complete):
        if complete <= self.emitted or self.held is None or not self.held.shape[self.axis]:
            return self._empty()
        waveform = self.adapter.inverse(self.spec, self.held)
        start = self.first * self.hop
        samples = _take(waveform, self.time_axis, self.emitted - start, complete - start)
        self.emitted = complete
        # The first frame that reaches the next pending sample.
        first = max(0, (complete - self.frame_length) // self.hop + 1)
        first = min(first, self.frames)
        self.held = _take(self.held, self.axis, first - self.first, self.frames - self.first)
        self.first = first
        return samples

    def _as_frames(self, frames):
        xp = self.adapter.xp
        if self.backend == 'cpu':
            X = np.asarray(frames)
            if not np.iscomplexobj(X):
                raise TypeError(f'frames must be complex, got dtype {X.dtype}')
            return X.astype(np.complex64, copy=False)
        X = (
            frames
            if self.backend != 'torch' or isinstance(frames, xp.Tensor)
            else (xp.as_tensor(np.asarray(frames)))
        )
        X = xp.asarray(X) if self.backend == 'jax' else X
        if not xp.is_complex(X) if self.backend == 'torch' else not xp.iscomplexobj(X):
            raise TypeError(f'frames must be complex, got dtype {X.dtype}')
        return X.to(xp.complex64) if self.backend == 'torch' else X.astype(xp.complex64)

    def _empty(self):
        batch, channels = (
            (1, 1)
            if self.held is None
            else (self.held.shape[0], self.held.shape[3] if self.axis == 1 else self.held.shape[1])
        )
        shape = (batch, 0, channels) if self.time_axis == 1 else (batch, channels, 0)
        return self.adapter.zeros(shape)


# ----- fixed shapes: one step per chunk of a fixed size (jax.jit, Keras, TFLite, ONNX) --------


class FixedStep:
    """A stream step of fixed shapes, for compiled and exported graphs: chunks of exactly
    `chunk_samples` samples (a multiple of hop_length), each giving `frames_per_step` =
    chunk_samples // hop_length frames and a bool mask `valid` of those that are frames of the
    signal (all of them once the first frame is complete; before that, the leading ones are
    not). The state is explicit arrays:

        history   (batch, history_samples, channels) float32: the samples the next frames need
        received  (batch,) int32: samples pushed so far (the same for every example: the
                  streams of a batch advance together; an axis of batch so that Keras models
                  take it)
        maximum   (batch,) float32, dB outputs only: the running dB maximum (at first the lowest
                  float32, not -inf, which tf2onnx's graphs turn into NaN)
        smooth    PCEN only: the smoother M, one frame of the mel's shape (1 at first)

    The framing arithmetic is written once here over an array namespace `ops` (_JaxOps, and
    kapre_fast.streaming_tf's TensorFlow one); the frames are the backend's kernel on the
    window of samples they cover, so they equal `Stream`'s (and offline). Refused (ValueError
    naming the value): a chunk size that is not a positive multiple of hop_length, reflect
    centring (its start mirrors samples not received yet), 'istft'."""

    def __init__(self, front_end: str, chunk_samples: int, **kwargs):
        self.front_end = front_end
        self.spec, self.dct, self.pcen = parse(front_end, kwargs)
        spec = self.spec
        self.kernel_spec = _kernel_spec(spec)
        hop, length = spec.hop_length, spec.frame_length
        if (
            isinstance(chunk_samples, bool)
            or not isinstance(chunk_samples, (int, np.integer))
            or chunk_samples < hop
            or chunk_samples % hop
        ):
            raise ValueError(
                f'chunk_samples must be a positive multiple of hop_length={hop}, '
                f'got {chunk_samples!r}'
            )
        if spec.center_padding and spec.pad_mode == 'reflect':
            raise ValueError(
                "a fixed-shape step cannot mirror the start (pad_mode='reflect'); "
                "use pad_mode='constant', center=False or the Stream class"
            )
        self.chunk_samples = int(chunk_samples)
        self.frames_per_step = self.chunk_samples // hop
        self.lead = spec.pad_begin_length if spec.compat == 'kapre' else spec.center_padding
        # Frame ends fall delta samples before the chunk's end, in every step.
        self.delta = (self.lead - length) % hop
        self.history_samples = max(length - hop + self.delta, 0)
        # Zeros that complete every frame the end padding creates.
        self.flush_samples = -(-(length + self.delta) // hop) * hop
        self.channels_last = spec.output_data_format == 'channels_last'
        self.axis = time_axis(spec.output_data_format)
        self.decibel = spec.return_decibel and math.isfinite(spec.decibel[3])

    def n_features(self):
        return self.spec.n_features if self.dct is None else self.dct.shape[1]

    def init(self, ops, batch: int, channels: int) -> dict:
        """The state of a new signal."""
        state = dict(
            history=ops.zeros((batch, self.history_samples, channels)), received=ops.counts(batch)
        )
        if self.decibel:
            state['maximum'] = ops.full((batch,), float(np.finfo(np.float32).min))
        if self.pcen is not None:
            one = (
                (batch, 1, self.spec.n_features, channels)
                if self.channels_last
                else (batch, channels, 1, self.spec.n_features)
            )
            state['smooth'] = ops.full(one, 1.0)
        return state

    def step(self, ops, state: dict, chunk):
        """(new state, frames, valid) for `chunk` (batch, chunk_samples, channels)."""
        return self._run(ops, state, chunk, None)

    def flush(self, ops, state: dict):
        """(state, frames, valid): the frames the end padding completes (pad_end; a preset's
        constant centring), from flush_samples zeros; none valid without end padding."""
        batch, _, channels = ops.shape(state['history'])
        zeros = ops.zeros((batch, self.flush_samples, channels))
        return self._run(ops, state, zeros, state['received'][0])

    def _run(self, ops, state, chunk, signal_end):
        spec, hop, length = self.spec, self.spec.hop_length, self.spec.frame_length
        shape, history = tuple(ops.shape(chunk)), tuple(ops.shape(state['history']))
        if signal_end is None and (
            len(shape) != 3
            or shape[1] != self.chunk_samples
            or (shape[0], shape[2]) != (history[0], history[2])
        ):
            raise ValueError(
                f'chunk must have shape (batch, chunk_samples, channels) = ({history[0]}, '
                f"{self.chunk_samples}, {history[2]}) (the state's batch and channels), got "
                f'{shape}'
            )
        n_samples = shape[1]
        count = n_samples // hop
        audio = ops.concat([state['history'], chunk], 1)
        end = self.history_samples + n_samples - self.delta
        frames = ops.compute(self.kernel_spec, audio[:, end - (count - 1) * hop - length : end])
        # Each frame's end, in samples of the padded signal.
        ends = (
            state['received'][0]
            + (self.lead + n_samples - self.delta)
            - ops.arange(count - 1, -1, -1) * hop
        )
        valid = ends >= length
        if signal_end is not None:  # flush: only the frames the end padding makes
            total = signal_end + self.lead
            if spec.pad_end:
                valid = valid & (ends - length < total)
            elif spec.center_padding:
                valid = valid & (ends <= total + spec.center_padding)
            else:
                valid = valid & (ends < 0)
        new = dict(state, received=state['received'] + (n_samples if signal_end is None else 0))
        new['history'] = audio[:, ops.shape(audio)[1] - self.history_samples :]
        if self.decibel:
            frames, new['maximum'] = self._clamp(ops, frames, valid, state['maximum'])
        if self.dct is not None:
            frames = ops.dct(frames, self.dct, self.channels_last)
        if self.pcen is not None:
            frames, new['smooth'] = self._pcen(ops, frames, valid, state['smooth'])
        return new, frames, valid

    def _clamp(self, ops, frames, valid, maximum):
        # _Decibel's rule, one frame at a time over the fixed count, skipping invalid frames.
        magnitudes = frames
        if self.spec.output == 'mag_phase':
            n = ops.shape(frames)[3 if self.channels_last else 1] // 2
            magnitudes = frames[..., :n] if self.channels_last else frames[:, :n]
        axes = (2, 3) if self.channels_last else (1, 3)
        per_frame = ops.amax(magnitudes, axes)  # (batch, count)
        floors = []
        for j in range(ops.shape(frames)[self.axis]):
            maximum = ops.where(valid[j], ops.maximum(maximum, per_frame[:, j]), maximum)
            floors.append(maximum - np.float32(self.spec.decibel[3]))
        floor = ops.stack(floors, 1)
        floor = floor[:, :, None, None] if self.channels_last else floor[:, None, :, None]
        if self.spec.output == 'mag_phase':
            n = ops.shape(frames)[3 if self.channels_last else 1] // 2
            if self.channels_last:
                return ops.concat(
                    [ops.maximum(frames[..., :n], floor), frames[..., n:]], 3
                ), maximum
            return ops.concat([ops.maximum(frames[:, :n], floor), frames[:, n:]], 1), maximum
        return ops.maximum(frames, floor), maximum

    def _pcen(self, ops, mel, valid, smooth):
        # _Smoother's recursion, frozen on invalid frames.
        b, keep = np.float32(self.pcen.b), np.float32(1.0 - self.pcen.b)
        frames = (_take(mel, self.axis, j, j + 1) for j in range(ops.shape(mel)[self.axis]))
        states = _pcen.smooth_frames(frames, b, keep, smooth, valid, ops.where)
        compressed = _pcen.compress(ops.math, mel, ops.concat(states, self.axis), self.pcen)
        return compressed, states[-1] if states else smooth


class _JaxOps:
    """The array namespace FixedStep needs, in jax.numpy, with kapre_fast.jax's kernel."""

    def __init__(self, threads=None):
        import jax.numpy as jnp
        import kapre_fast.jax as backend

        self.jnp, self.backend, self.threads, self.math = jnp, backend, threads, jnp

    def zeros(self, shape):
        return self.jnp.zeros(shape, self.jnp.float32)

    def full(self, shape, value):
        return self.jnp.full(shape, value, self.jnp.float32)

    def counts(self, batch):
        return self.jnp.zeros((batch,), self.jnp.int32)

    def shape(self, x):
        return tuple(x.shape)

    def concat(self, arrays, axis):
        return self.jnp.concatenate(arrays, axis)

    def stack(self, arrays, axis):
        return self.jnp.stack(arrays, axis)

    def arange(self, start, stop, step):
        return self.jnp.arange(start, stop, step, dtype=self.jnp.int32)

    def where(self, condition, a, b):
        return self.jnp.where(condition, a, b)

    def maximum(self, a, b):
        return self.jnp.maximum(a, b)

    def amax(self, x, axes):
        return self.jnp.max(x, axis=axes)

    def compute(self, spec, audio):
        return self.backend.compute(spec, audio, threads=self.threads)

    def dct(self, mel, matrix, channels_last):
        matrix = self.jnp.asarray(np.asarray(matrix, np.float32))
        return self.jnp.einsum('bfmc,mk->bfkc', mel, matrix) if channels_last else mel @ matrix

    def inverse(self, spec, frames):
        return self.backend.inverse(spec, frames, threads=self.threads)


def jax_functions(front_end: str, chunk_samples: int, *, threads=None, **kwargs):
    """Pure functions of a streaming `front_end` in JAX, for jax.jit (fixed chunk size):

        init(batch, channels) -> state                 (a dict of arrays)
        step(state, chunk) -> (state, frames, valid)   chunk: (batch, chunk_samples, channels)
        flush(state) -> (state, frames, valid)

    frames: chunk_samples // hop_length frames in the output layout; valid: bool (frames,),
    the frames of the signal (False only for the leading frames of the first chunks, before
    the first frame is complete, and in flush for the frames past the end padding).
    Concatenating frames[valid] over the steps and flush gives the offline result (Stream's
    rules for dB, MFCC and PCEN). See FixedStep for the state and what is refused."""
    fixed = FixedStep(front_end, chunk_samples, **kwargs)
    ops = _JaxOps(threads)

    def init(batch, channels):
        return fixed.init(ops, batch, channels)

    def step(state, chunk):
        dtype = getattr(chunk, 'dtype', None)
        check_audio_dtype(np.dtype(dtype) if dtype is not None else np.asarray(chunk).dtype)
        return fixed.step(ops, state, ops.jnp.asarray(chunk, ops.jnp.float32))

    def flush(state):
        return fixed.flush(ops, state)

    init.fixed = step.fixed = flush.fixed = fixed
    return init, step, flush


class FixedInverse:
    """Streaming overlap-add with fixed shapes (jax.jit, Keras, TFLite, ONNX): each step takes
    `frames_per_step` complex STFT frames (stft_data_format) and returns frames_per_step *
    hop_length samples (channels_last (batch, samples, channels)); flush returns the last
    win_length - hop_length. State: `tail` (batch, win_length - hop_length, channels) float32,
    the overlap of the frames so far with the samples not returned yet.

    Each step runs the backend's inverse STFT on its frames alone and adds the tail, so a sample
    sums its frames in another order than offline: equal within float32 roundings (the
    InverseStream class recomputes overlaps and is bit for bit). Refused (ValueError naming
    the values): frames_per_step < 1, win_length < hop_length (gaps between frames)."""

    def __init__(self, frames_per_step: int, **istft_arguments):
        spec = FrontEnd.inverted_by_istft(**istft_arguments)
        if (
            isinstance(frames_per_step, bool)
            or not isinstance(frames_per_step, (int, np.integer))
            or frames_per_step < 1
        ):
            raise ValueError(f'frames_per_step must be an int >= 1, got {frames_per_step!r}')
        if spec.win_length < spec.hop_length:
            raise ValueError(
                f'a fixed-shape overlap-add needs win_length >= hop_length, got '
                f'win_length={spec.win_length}, hop_length={spec.hop_length}'
            )
        self.spec = dataclasses.replace(spec, input_data_format='channels_last')
        self.frames_per_step = int(frames_per_step)
        self.tail_samples = spec.win_length - spec.hop_length
        self.step_samples = self.frames_per_step * spec.hop_length

    def init(self, ops, batch: int, channels: int) -> dict:
        return dict(tail=ops.zeros((batch, self.tail_samples, channels)))

    def step(self, ops, state: dict, frames):
        """(new state, samples) for `frames` (frames_per_step complex STFT frames)."""
        waveform = ops.inverse(self.spec, frames)  # ((n - 1) hop + win_length) samples
        tail = self.tail_samples
        if tail:
            waveform = ops.concat([waveform[:, :tail] + state['tail'], waveform[:, tail:]], 1)
        return dict(state, tail=waveform[:, self.step_samples :]), waveform[:, : self.step_samples]

    def flush(self, ops, state: dict):
        """(state, samples): the tail, the last win_length - hop_length samples."""
        return state, state['tail']


def jax_inverse_functions(frames_per_step: int, *, threads=None, **istft_arguments):
    """Pure functions of the streaming inverse STFT in JAX (FixedInverse), for jax.jit:
    init(batch, channels) -> state; step(state, frames) -> (state, samples); flush(state) ->
    (state, samples). Samples are channels_last (batch, samples, channels)."""
    fixed = FixedInverse(frames_per_step, **istft_arguments)
    ops = _JaxOps(threads)

    def init(batch, channels):
        return fixed.init(ops, batch, channels)

    def step(state, frames):
        return fixed.step(ops, state, ops.jnp.asarray(frames, ops.jnp.complex64))

    def flush(state):
        return fixed.flush(ops, state)

    init.fixed = step.fixed = flush.fixed = fixed
    return init, step, flush
