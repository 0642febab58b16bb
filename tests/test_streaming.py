"""kapre_fast.streaming: for any chunking of a signal (hypothesis draws the chunk boundaries, 0-
and 1-sample chunks included), the concatenated frames of a stream equal the offline call on the
whole signal on the same backend: bit for bit for every framed front end (the kernel computes
each frame on its own), the documented running dB clamp for dB outputs, PCEN within float32
roundings (the native pass's fast exp/log vs the stream's array ops), stft_mag_phase's phase
within the kernel's vector atan2 error; the inverse STFT's streaming overlap-add bit for bit.
Also the refusals (bad chunks, push after flush) and the docs page's example, which runs."""

import re
from pathlib import Path

import numpy as np
import pytest

import helpers

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kapre_fast import streaming  # noqa: E402

BACKENDS = ['cpu', 'torch', 'jax']
SAMPLES = 2400
_SPEECH = helpers.load_speech()


def _signal(seed=0):
    """(2, SAMPLES, 2) channels_last: speech in the first example, noise with digital silence in
    the second, so that dB floors and silent frames are exercised."""
    speech = helpers.speech_batch(_SPEECH, 1, SAMPLES, 2, seed)
    noise = helpers.noise_batch(1, SAMPLES, 2, seed)
    return np.ascontiguousarray(np.concatenate([speech, noise]).transpose(0, 2, 1))


def _crescendo():
    """(2, SAMPLES, 1): quiet at first, loud at the end, so the running dB maximum keeps rising
    and the running clamp differs from the offline one."""
    ramp = np.linspace(1e-4, 1.0, SAMPLES, dtype=np.float32) ** 3
    return (_signal()[:, :, :1] * ramp[None, :, None]).astype(np.float32)


# name -> (front end, keyword arguments); every case runs on every backend.
CASES = {
    'magnitude': ('stft_magnitude', dict(n_fft=256, hop_length=100)),
    'magnitude-pad': (
        'stft_magnitude',
        dict(n_fft=256, win_length=200, hop_length=64, pad_begin=True, pad_end=True),
    ),
    'magnitude-gaps': (
        'stft_magnitude',
        dict(n_fft=128, win_length=96, hop_length=150, pad_end=True),
    ),
    'mel': (
        'melspectrogram',
        dict(n_fft=512, hop_length=160, n_mels=64, sample_rate=16000, pad_begin=True),
    ),
    'log': (
        'log_frequency_spectrogram',
        dict(n_fft=512, hop_length=128, log_n_bins=48, sample_rate=16000, pad_end=True),
    ),
    'mag_phase': ('stft_mag_phase', dict(n_fft=256, hop_length=80, pad_begin=True)),
    'complex': ('stft', dict(n_fft=256, win_length=160, hop_length=80, pad_end=True)),
    'librosa': ('melspectrogram', dict(compat='librosa', n_fft=512, hop_length=128, n_mels=40)),
    'torchaudio': ('melspectrogram', dict(compat='torchaudio', n_fft=400, n_mels=40)),
    'torchaudio-magnitude': (
        'stft_magnitude',
        dict(compat='torchaudio', n_fft=256, hop_length=100, power=1),
    ),
    'pcen': ('pcen', dict(n_fft=512, hop_length=160, n_mels=40, sample_rate=16000)),
    'pcen-librosa': (
        'pcen',
        dict(compat='librosa', n_fft=512, hop_length=128, n_mels=40, time_constant=0.06),
    ),
}
DB_CASES = {
    'mel-db': (
        'melspectrogram',
        dict(
            n_fft=512,
            hop_length=160,
            n_mels=64,
            sample_rate=16000,
            return_decibel=True,
            db_dynamic_range=40.0,
            pad_begin=True,
            pad_end=True,
        ),
    ),
    'mag_phase-db': (
        'stft_mag_phase',
        dict(n_fft=256, hop_length=128, return_decibel=True, db_dynamic_range=30.0),
    ),
    'librosa-db': (
        'melspectrogram',
        dict(
            compat='librosa', n_fft=512, hop_length=128, n_mels=40, return_decibel=True, top_db=50.0
        ),
    ),
    'mfcc': (
        'mfcc',
        dict(
            n_fft=512,
            hop_length=160,
            n_mels=40,
            sample_rate=16000,
            db_dynamic_range=40.0,
            n_mfcc=13,
        ),
    ),
    'mfcc-torchaudio': ('mfcc', dict(compat='torchaudio', n_fft=400, n_mels=40)),
}


def _module(backend):
    if backend == 'cpu':
        import kapre_fast.cpu as module
    elif backend == 'torch':
        import kapre_fast.torch as module
    else:
        import kapre_fast.jax as module
    return module


def _as_backend(x, backend):
    if backend == 'torch':
        import torch

        return torch.from_numpy(np.ascontiguousarray(x))
    if backend == 'jax':
        import jax.numpy as jnp

        return jnp.asarray(x)
    return x


def _numpy(y):
    return y.numpy() if hasattr(y, 'numpy') and not isinstance(y, np.ndarray) else np.asarray(y)


def _offline(backend, front_end, x, **kwargs):
    return _numpy(getattr(_module(backend), front_end)(_as_backend(x, backend), **kwargs))


def _streamed(backend, front_end, x, cuts, **kwargs):
    """The stream's frames for x cut at `cuts` (sorted sample indices, repeats giving 0-sample
    chunks), flush included, concatenated along the frames axis; also each push's result."""
    stream = streaming.open(front_end, backend=backend, **kwargs)
    bounds = [0, *cuts, x.shape[1]]
    pieces = [
        _numpy(stream.push(_as_backend(x[:, a:b], backend)))
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    pieces.append(_numpy(stream.flush()))
    axis = 1 if kwargs['output_data_format'] == 'channels_last' else 2
    for piece in pieces:  # every push: the stream's batch, features and channels
        assert piece.ndim == 4 and piece.shape[0] == x.shape[0], piece.shape
    return np.concatenate(pieces, axis), pieces


cuts_of = st.lists(st.integers(0, SAMPLES), min_size=0, max_size=12).map(sorted)
# Many small chunks too: 1-sample and 0-sample pushes around a few boundaries.
tiny_cuts = st.integers(0, SAMPLES - 8).map(lambda a: [a, a, a + 1, a + 2, a + 2, a + 3])
chunkings = st.one_of(cuts_of, tiny_cuts)
layouts = st.sampled_from(['channels_last', 'channels_first'])
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _examples(backend):
    return {'cpu': 4, 'torch': 3, 'jax': 2}[backend]  # jax compiles each new chunk shape


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('case', sorted(CASES))
def test_stream_equals_offline(case, backend):
    front_end, kwargs = CASES[case]
    x = _signal()

    @settings(max_examples=_examples(backend), **SETTINGS)
    @given(cuts=chunkings, layout=layouts)
    def check(cuts, layout):
        arguments = dict(kwargs, input_data_format='channels_last', output_data_format=layout)
        offline = _offline(backend, front_end, x, **arguments)
        streamed, _ = _streamed(backend, front_end, x, cuts, **arguments)
        assert streamed.shape == offline.shape
        if front_end == 'pcen':  # the native pass's fast exp/log vs the stream's array ops
            error = helpers.record_agreement(
                f'{backend} streaming pcen {case}', helpers.peak_relative_error(streamed, offline)
            )
            assert error <= 1e-5
        else:
            _assert_frames_equal(streamed, offline, front_end, layout)

    check()


def _assert_frames_equal(streamed, expected, front_end, layout):
    """Bit for bit; stft_mag_phase's phases within 1e-6 rad: the kernel's vector atan2 (within
    about 2e-7 rad of libm's) runs on tiles of frames and takes libm's for a whole tile holding
    a lane it does not handle (a zero bin, a tile's unused lanes), so a frame's phase depends on
    its neighbours in the call. Compared as angles, not across the +-pi cut."""
    if front_end != 'stft_mag_phase':
        np.testing.assert_array_equal(streamed, expected)
        return
    channels = 3 if layout == 'channels_last' else 1
    magnitude, phase = np.split(streamed, 2, axis=channels)
    expected_magnitude, expected_phase = np.split(expected, 2, axis=channels)
    np.testing.assert_array_equal(magnitude, expected_magnitude)
    assert np.abs(np.angle(np.exp(1j * (phase - expected_phase)))).max() <= 1e-6


def _running_clamp(db, dynamic_range, channels_last, magnitude_channels=None):
    """The documented streaming dB rule on unclamped dB frames: frame t clamped to the running
    maximum (over the example's frames 0..t, features and magnitude channels) less the range."""
    db = db if channels_last else db.transpose(0, 2, 3, 1)  # (batch, frames, features, ch)
    magnitudes = db if magnitude_channels is None else db[..., :magnitude_channels]
    floor = np.maximum.accumulate(magnitudes.max(axis=(2, 3)), axis=1) - np.float32(dynamic_range)
    clamped = db.copy()
    clamped[..., : magnitudes.shape[3]] = np.maximum(magnitudes, floor[:, :, None, None])
    return clamped if channels_last else clamped.transpose(0, 3, 1, 2)


def _unclamped_arguments(front_end, kwargs):
    """The arguments of the same dB output without its clamp (kapre: an unreachable range)."""
    if kwargs.get('compat', 'kapre') == 'kapre':
        return dict(kwargs, db_dynamic_range=1e30)
    return dict(kwargs, top_db=float('inf'))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('case', sorted(DB_CASES))
def test_stream_decibel_running_clamp(case, backend):
    """dB streams clamp to the running maximum: exactly the documented rule on the offline
    unclamped dB; the offline result where its clamp does not bind, and exactly the offline
    result once the final maximum's floor is applied to the streamed frames. MFCC: the DCT of
    the running-clamped dB mel (equal to offline mfcc where no clamp binds)."""
    front_end, kwargs = DB_CASES[case]
    x = _crescendo() if 'mfcc' not in case else _signal()[:, :, :1]
    mfcc = front_end == 'mfcc'

    @settings(max_examples=_examples(backend), **SETTINGS)
    @given(cuts=chunkings, layout=layouts)
    def check(cuts, layout):
        arguments = dict(kwargs, input_data_format='channels_last', output_data_format=layout)
        channels_last = layout == 'channels_last'
        streamed, _ = _streamed(backend, front_end, x, cuts, **arguments)
        offline = _offline(backend, front_end, x, **arguments)
        assert streamed.shape == offline.shape
        spec_arguments = {k: v for k, v in arguments.items() if k not in ('n_mfcc', 'lifter')}
        if mfcc:
            spec = streaming.open('mfcc', **arguments).spec
            spec_arguments = dict(
                spec_arguments,
                return_decibel=True,
                **({'top_db': spec.top_db} if spec.compat != 'kapre' else {}),
            )
        melspec = 'melspectrogram' if mfcc else front_end
        unclamped = _offline(backend, melspec, x, **_unclamped_arguments(front_end, spec_arguments))
        dynamic_range = streaming.open(front_end, **arguments).spec.decibel[3]
        magnitude_channels = x.shape[2] if front_end == 'stft_mag_phase' else None
        rule = _running_clamp(unclamped, dynamic_range, channels_last, magnitude_channels)
        if mfcc:
            matrix = streaming.open('mfcc', **arguments)._dct
            rule = (
                np.einsum('bfmc,mk->bfkc', rule, matrix.astype(np.float32))
                if channels_last
                else rule @ matrix.astype(np.float32)
            )
            # The DCT: the cpu's native pass vs the stream's product (summation order).
            np.testing.assert_allclose(streamed, rule, rtol=1e-5, atol=1e-3)
            return
        _assert_frames_equal(streamed, rule, front_end, layout)
        # The running floor never exceeds the final one: the final clamp gives offline.
        db = offline if channels_last else offline.transpose(0, 2, 3, 1)
        final = np.moveaxis(unclamped if channels_last else unclamped.transpose(0, 2, 3, 1), 0, 0)[
            ..., :magnitude_channels
        ].max(axis=(1, 2, 3)) - np.float32(dynamic_range)
        restreamed = streamed if channels_last else streamed.transpose(0, 2, 3, 1)
        restreamed = restreamed.copy()
        restreamed[..., :magnitude_channels] = np.maximum(
            restreamed[..., :magnitude_channels], final[:, None, None, None]
        )
        _assert_frames_equal(restreamed, db, front_end, 'channels_last')

    check()


def test_running_clamp_differs_where_the_maximum_comes_late():
    """The crescendo makes the running clamp visible: early frames keep values below the final
    floor that offline raises to it (the rule, not offline, is what the stream promises)."""
    x = _crescendo()
    kwargs = dict(
        DB_CASES['mel-db'][1], input_data_format='channels_last', output_data_format='channels_last'
    )
    streamed, _ = _streamed('cpu', 'melspectrogram', x, [700, 1500], **kwargs)
    offline = _offline('cpu', 'melspectrogram', x, **kwargs)
    assert (streamed < offline).any()
    assert (streamed <= offline).all()


@pytest.mark.parametrize('backend', BACKENDS)
def test_inverse_stream_equals_offline(backend):
    """Streaming overlap-add: pushed STFT frames return the samples they complete; with flush's
    tail the samples equal the offline istft bit for bit, for any chunking of the frames."""
    kwargs = dict(
        n_fft=256,
        win_length=200,
        hop_length=64,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    x = _signal()
    frames = _offline('cpu', 'stft', x, **kwargs)
    n_frames = frames.shape[1]
    arguments = dict(n_fft=256, win_length=200, hop_length=64)
    module = _module(backend)

    @settings(max_examples=_examples(backend), **SETTINGS)
    @given(cuts=st.lists(st.integers(0, n_frames), max_size=8).map(sorted), layout=layouts)
    def check(cuts, layout):
        X = (
            frames
            if layout == 'channels_last'
            else np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
        )
        axis = 1 if layout == 'channels_last' else 2
        offline = _numpy(
            module.istft(
                _as_backend(X, backend),
                **arguments,
                stft_data_format=layout,
                waveform_data_format='channels_last',
            )
        )
        stream = streaming.open(
            'istft',
            backend=backend,
            **arguments,
            stft_data_format=layout,
            waveform_data_format='channels_last',
        )
        bounds = [0, *cuts, n_frames]
        pieces = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            part = np.take(X, np.arange(a, b), axis=axis)
            pieces.append(_numpy(stream.push(_as_backend(part, backend))))
            # Returned so far: every sample before the next frame's start.
            assert sum(p.shape[1] for p in pieces) == b * 64
        pieces.append(_numpy(stream.flush()))
        np.testing.assert_array_equal(np.concatenate(pieces, 1), offline)

    check()


@pytest.mark.parametrize('backend', BACKENDS)
def test_frames_arrive_as_soon_as_complete(backend):
    """Each push returns exactly the frames whose last sample it delivered (the latency a
    real-time model sees), 0 for a chunk that completes none; pad_begin's first frame comes with
    the first hop of samples."""
    x = _signal()
    kwargs = dict(
        n_fft=512,
        hop_length=160,
        n_mels=16,
        sample_rate=16000,
        pad_begin=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    stream = streaming.open('melspectrogram', backend=backend, **kwargs)
    counts = [
        _numpy(stream.push(_as_backend(x[:, i : i + 100], backend))).shape[1]
        for i in range(0, 1600, 100)
    ]
    # Frame t ends at sample (t + 1) * 160 of the signal (pad_begin: 352 zeros before it).
    expected = [(i + 100) // 160 - i // 160 for i in range(0, 1600, 100)]
    assert counts == expected
    assert _numpy(stream.flush()).shape == (2, 0, 16, 2)  # no pad_end: nothing at the end


def test_reset_starts_a_new_signal_and_streams_are_independent():
    """reset() forgets buffer, padding, dB maximum and PCEN state: the second signal streams as
    if new. Two streams interleaved do not share state."""
    x, y = _signal(0), _signal(1)
    kwargs = dict(
        n_fft=512,
        hop_length=160,
        n_mels=40,
        sample_rate=16000,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    a = streaming.open('pcen', **kwargs)
    b = streaming.open('pcen', **kwargs)
    first = [a.push(x[:, :1000]), b.push(y[:, :700]), a.push(x[:, 1000:]), b.push(y[:, 700:])]
    a.flush()
    a.reset()
    again = np.concatenate([a.push(y[:, :300]), a.push(y[:, 300:]), a.flush()], 1)
    np.testing.assert_array_equal(again, np.concatenate([first[1], first[3]], 1))
    fresh = streaming.open('pcen', **kwargs)
    np.testing.assert_array_equal(
        np.concatenate([fresh.push(x), fresh.flush()], 1), np.concatenate([first[0], first[2]], 1)
    )


@pytest.mark.parametrize('backend', BACKENDS)
def test_channels_first_chunks(backend):
    """input_data_format='channels_first' takes (batch, channels, samples) chunks."""
    x = _signal()
    kwargs = dict(n_fft=256, hop_length=100, output_data_format='channels_last')
    stream = streaming.open(
        'stft_magnitude', backend=backend, input_data_format='channels_first', **kwargs
    )
    xf = np.ascontiguousarray(x.transpose(0, 2, 1))
    got = np.concatenate(
        [
            _numpy(stream.push(_as_backend(xf[:, :, :333], backend))),
            _numpy(stream.push(_as_backend(xf[:, :, 333:], backend))),
            _numpy(stream.flush()),
        ],
        1,
    )
    np.testing.assert_array_equal(
        got, _offline('cpu', 'stft_magnitude', x, input_data_format='channels_last', **kwargs)
    )


def test_short_signals_as_offline():
    """Signals too short for a frame: 0 frames (kapre without pad_end counts none); reflect
    centring refuses, at flush, a signal too short to mirror, as the offline call does; pad_end
    on an empty signal refuses as offline."""
    stream = streaming.open('stft_magnitude', n_fft=256, input_data_format='channels_last')
    assert stream.push(np.zeros((1, 100, 1), np.float32)).shape[1] == 0
    assert stream.flush().shape[1] == 0
    reflect = streaming.open(
        'melspectrogram', compat='torchaudio', input_data_format='channels_last'
    )
    reflect.push(np.zeros((1, 150, 1), np.float32))
    with pytest.raises(ValueError, match='reflect'):
        reflect.flush()
    empty = streaming.open(
        'stft_magnitude', n_fft=256, pad_end=True, input_data_format='channels_last'
    )
    empty.push(np.zeros((1, 0, 1), np.float32))
    with pytest.raises(ValueError, match='pad_end'):
        empty.flush()


@pytest.mark.parametrize('backend', BACKENDS)
def test_refusals(backend):
    """Bad chunks raise naming the argument and its value; push after flush until reset."""
    stream = streaming.open(
        'melspectrogram', backend=backend, n_mels=16, input_data_format='channels_last'
    )
    stream.push(_as_backend(np.zeros((2, 10, 1), np.float32), backend))
    with pytest.raises(ValueError, match=r'chunk must have 3 axes.*\(2, 10\)'):
        stream.push(_as_backend(np.zeros((2, 10), np.float32), backend))
    with pytest.raises(ValueError, match=r'chunk has batch 2 and 3 channel'):
        stream.push(_as_backend(np.zeros((2, 10, 3), np.float32), backend))
    with pytest.raises(ValueError, match=r'chunk has batch 1 and 1 channel'):
        stream.push(_as_backend(np.zeros((1, 10, 1), np.float32), backend))
    with pytest.raises(TypeError, match='complex'):
        stream.push(np.zeros((2, 10, 1), np.complex64))
    with pytest.raises(TypeError, match='bool'):
        stream.push(np.zeros((2, 10, 1), bool))
    stream.flush()
    with pytest.raises(RuntimeError, match=r'push\(\) after flush\(\).*reset'):
        stream.push(_as_backend(np.zeros((2, 10, 1), np.float32), backend))
    stream.reset()
    assert _numpy(stream.push(_as_backend(np.zeros((1, 10, 2), np.float32), backend))).shape == (
        1,
        0,
        16,
        2,
    )
    with pytest.raises(ValueError, match="front_end must be one of .*'spectrogram'"):
        streaming.open('spectrogram', backend=backend)
    with pytest.raises(ValueError, match="backend must be one of .*'numpy'"):
        streaming.open('melspectrogram', backend='numpy')
    with pytest.raises(ValueError, match='n_mels'):
        streaming.open('melspectrogram', backend=backend, n_mels=0)
    inverse = streaming.open('istft', backend=backend, n_fft=64)
    with pytest.raises(TypeError, match='complex'):
        inverse.push(_as_backend(np.zeros((1, 2, 33, 1), np.float32), backend))
    with pytest.raises(ValueError, match='33 bins'):
        inverse.push(np.zeros((1, 2, 30, 1), np.complex64))


def _doc_blocks():
    text = (Path(__file__).resolve().parents[1] / 'docs' / 'streaming.md').read_text()
    return re.findall(r'```python\n(.*?)```', text, flags=re.S)


def test_docs_examples_run():
    """Every Python block of docs/streaming.md runs, in order, in one namespace (the blocks
    assert what they claim)."""
    blocks = _doc_blocks()
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, 'docs/streaming.md', 'exec'), namespace)  # noqa: S102


# A 16 kHz mel spectrogram, 10 ms hop: the step and Keras cases' common ground.
MEL_16K = dict(n_fft=512, hop_length=160, n_mels=64, sample_rate=16000)
JAX_STEP_CASES = {
    'mel': ('melspectrogram', MEL_16K),
    'mel-db-pad': (
        'melspectrogram',
        dict(MEL_16K, pad_begin=True, pad_end=True, return_decibel=True, db_dynamic_range=30.0),
    ),
    'gaps-pad_end': (
        'stft_magnitude',
        dict(n_fft=256, win_length=200, hop_length=100, pad_end=True),
    ),
    'librosa': ('melspectrogram', dict(compat='librosa', n_fft=512, hop_length=160, n_mels=40)),
    'mag_phase-db': ('stft_mag_phase', dict(n_fft=256, hop_length=128, return_decibel=True)),
    'pcen': ('pcen', dict(n_fft=512, hop_length=160, n_mels=40, sample_rate=16000)),
    'mfcc': (
        'mfcc',
        dict(n_fft=512, hop_length=160, n_mels=40, sample_rate=16000, db_dynamic_range=30.0),
    ),
}


@pytest.mark.parametrize('layout', ['channels_last', 'channels_first'])
@pytest.mark.parametrize('case', sorted(JAX_STEP_CASES))
def test_jax_pure_step_equals_stream(case, layout):
    """jax_functions' init/step/flush under jax.jit (chunks of 1 hop for channels_last
    output, 3 hops for channels_first): the valid frames of the steps and flush are the
    Stream's frames (bit for bit; PCEN and MFCC within XLA's roundings of the same
    formulas)."""
    import jax

    front_end, kwargs = JAX_STEP_CASES[case]
    kwargs = dict(kwargs, input_data_format='channels_last', output_data_format=layout)
    chunk = (1 if layout == 'channels_last' else 3) * kwargs['hop_length']
    x = _crescendo()
    x = np.concatenate([x, 0.5 * x], 2)[:, : (x.shape[1] // chunk) * chunk]
    init, step, flush = streaming.jax_functions(front_end, chunk, **kwargs)
    step, flush = jax.jit(step), jax.jit(flush)
    axis = 1 if layout == 'channels_last' else 2
    state, pieces = init(2, 2), []
    for start in range(0, x.shape[1], chunk):
        state, frames, valid = step(state, x[:, start : start + chunk])
        assert frames.shape[axis] == chunk // kwargs['hop_length']
        pieces.append(np.compress(np.asarray(valid), np.asarray(frames), axis=axis))
    state, frames, valid = flush(state)
    pieces.append(np.compress(np.asarray(valid), np.asarray(frames), axis=axis))
    got = np.concatenate(pieces, axis)
    stream = streaming.open(front_end, backend='jax', **kwargs)
    expected = np.concatenate([np.asarray(stream.push(x)), np.asarray(stream.flush())], axis)
    assert got.shape == expected.shape
    if front_end in ('pcen', 'mfcc'):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    else:
        _assert_frames_equal(got, expected, front_end, layout)


def test_fixed_step_refusals():
    with pytest.raises(
        ValueError, match='chunk_samples must be a positive multiple of hop_length=160, got 100'
    ):
        streaming.FixedStep('melspectrogram', 100, hop_length=160, n_fft=512)
    with pytest.raises(ValueError, match="pad_mode='reflect'"):
        streaming.FixedStep('melspectrogram', 200, compat='torchaudio')
    with pytest.raises(ValueError, match="front_end must be one of .*'istft'|parse"):
        streaming.FixedStep('istft', 512, n_fft=512)
    init, step, _ = streaming.jax_functions(
        'melspectrogram', 160, n_fft=512, hop_length=160, input_data_format='channels_last'
    )
    state = init(2, 1)
    with pytest.raises(
        ValueError,
        match=r'chunk must have shape .* = \(2, 160, 1\).*'
        r'got \(2, 150, 1\)',
    ):
        step(state, np.zeros((2, 150, 1), np.float32))
    with pytest.raises(ValueError, match=r'got \(1, 160, 1\)'):
        step(state, np.zeros((1, 160, 1), np.float32))
    with pytest.raises(ValueError, match=r'got \(2, 160\)'):
        step(state, np.zeros((2, 160), np.float32))
    with pytest.raises(TypeError, match='complex'):
        step(state, np.zeros((2, 160, 1), np.complex64))


KERAS_CASES = {
    'mel-db': (
        'melspectrogram',
        dict(MEL_16K, pad_begin=True, return_decibel=True, db_dynamic_range=40.0),
    ),
    'magnitude-pad_end': (
        'stft_magnitude',
        dict(n_fft=256, win_length=200, hop_length=100, pad_end=True),
    ),
    'librosa-db': (
        'melspectrogram',
        dict(compat='librosa', n_fft=512, hop_length=160, n_mels=40, return_decibel=True),
    ),
    'pcen': ('pcen', dict(n_fft=512, hop_length=160, n_mels=40, sample_rate=16000)),
    'mfcc': ('mfcc', dict(n_fft=512, hop_length=160, n_mels=40, sample_rate=16000)),
    'log': (
        'log_frequency_spectrogram',
        dict(n_fft=512, hop_length=128, log_n_bins=48, sample_rate=16000, pad_end=True),
    ),
    'mag_phase': ('stft_mag_phase', dict(n_fft=256, hop_length=64, pad_begin=True)),
}


def _keras_stream(run_step, layer, x, flush):
    """The valid frames of `run_step(chunk, state) -> (frames, valid, new state)` over x's
    chunks, then `flush(state)`'s."""
    state = layer.initial_state(x.shape[0], x.shape[2])
    axis = 1 if layer.fixed.channels_last else 2
    pieces = []
    for start in range(0, x.shape[1], layer.chunk_samples):
        frames, valid, state = run_step(x[:, start : start + layer.chunk_samples], state)
        assert np.asarray(valid).shape == (x.shape[0], layer.fixed.frames_per_step)
        pieces.append(np.compress(np.asarray(valid)[0].astype(bool), np.asarray(frames), axis))
    if flush is not None:
        frames, valid, state = flush(state)
        pieces.append(np.compress(np.asarray(valid)[0].astype(bool), np.asarray(frames), axis))
    return np.concatenate(pieces, axis)


def _close_to_stream(got, expected, front_end, decibel):
    """Within the builtin path's accuracy grid (a matmul DFT, not the fused FFT); phases where
    the magnitude is above 1e-3 of the peak (ill-defined near zero)."""
    assert got.shape == expected.shape
    if front_end == 'stft_mag_phase':  # channels_last: [magnitudes, phases] on the last axis
        (magnitude, phase), (expected_magnitude, expected_phase) = (
            np.split(got, 2, axis=3),
            np.split(expected, 2, axis=3),
        )
        assert helpers.peak_relative_error(magnitude, expected_magnitude) <= 2e-5
        assert helpers.phase_error(phase, expected_phase, expected_magnitude) <= 1e-3
    elif decibel or front_end == 'mfcc':
        assert np.abs(got - expected).max() <= 2e-3
    else:
        assert helpers.peak_relative_error(got, expected) <= 2e-5


@pytest.mark.parametrize('case', sorted(KERAS_CASES))
def test_keras_step_and_exported_models_equal_the_stream(case):
    """StreamingStep (explicit state, chunks of one hop) equals the cpu Stream within the builtin
    path's accuracy; its stateful TFLite and ONNX models (state as input and output tensors),
    driven step by step, equal the layer within float32 roundings."""
    pytest.importorskip('tensorflow')
    from kapre_fast import streaming_tf

    front_end, kwargs = KERAS_CASES[case]
    kwargs = dict(kwargs, input_data_format='channels_last', output_data_format='channels_last')
    decibel = kwargs.get('return_decibel', False)
    hop = kwargs['hop_length']
    x = _crescendo()[:, : (SAMPLES // hop) * hop]
    layer = streaming_tf.StreamingStep(front_end, hop, kwargs)

    def eager(chunk, state):
        frames, valid, *new = layer([chunk, *state])
        return frames, valid, new

    def eager_flush(state):
        frames, valid, *new = layer.flush_step(state)
        return frames, valid, new

    got = _keras_stream(eager, layer, x, eager_flush)
    stream = streaming.open(front_end, backend='cpu', **kwargs)
    expected = np.concatenate([stream.push(x), stream.flush()], 1)
    _close_to_stream(got, expected, front_end, decibel)
    pieces_layer = _keras_stream(eager, layer, x, None)

    names = layer.state_names

    def exported(run, model):
        def run_step(chunk, state):
            outputs = run(model, dict(chunk=chunk, **dict(zip(names, state))))
            return outputs['frames'], outputs['valid'], [outputs[f'new_{n}'] for n in names]

        return run_step

    def exported_flush(run, model):
        def run_flush(state):
            outputs = run(model, dict(zip(names, state)))
            return outputs['frames'], outputs['valid'], [outputs[f'new_{n}'] for n in names]

        return run_flush

    size = dict(batch=x.shape[0], channels=x.shape[2])
    tflite = streaming_tf.to_tflite(layer, **size)
    onnx = streaming_tf.to_onnx(layer, **size)
    for name, run, model, flush_model in (
        (
            'tflite',
            streaming_tf.run_tflite_step,
            tflite,
            streaming_tf.to_tflite(layer, **size, flush=True),
        ),
        ('onnx', streaming_tf.run_onnx_step, onnx, streaming_tf.to_onnx(layer, **size, flush=True)),
    ):
        # The flush model ends the signal as the layer's flush_step: the whole stream.
        whole = _keras_stream(exported(run, model), layer, x, exported_flush(run, flush_model))
        _close_to_stream(whole, expected, front_end, decibel)
        got = _keras_stream(exported(run, model), layer, x, None)
        assert got.shape == pieces_layer.shape
        if front_end == 'stft_mag_phase':
            _close_to_stream(got, pieces_layer, front_end, decibel)
            continue
        error = (
            np.abs(got - pieces_layer).max()
            if decibel or front_end == 'mfcc'
            else helpers.peak_relative_error(got, pieces_layer)
        )
        helpers.record_agreement(f'{name} streaming step {case} vs layer', error)
        # dB: the runtimes round the builtin path's matmul FFT stages differently (onnxruntime
        # up to a few 1e-4 dB from TensorFlow), within the builtin path's own allowance.
        assert error <= (2e-3 if decibel or front_end == 'mfcc' else 1e-5), (name, error)


def test_keras_layer_in_a_functional_model():
    """StreamingStep inside a keras.Model (every state input and output with the batch axis),
    stepped by predict(), equals the cpu Stream within builtin's accuracy; the layer's config
    round-trips."""
    pytest.importorskip('tensorflow')
    import keras
    from kapre_fast import streaming_tf

    kwargs = dict(
        DB_CASES['mel-db'][1], input_data_format='channels_last', output_data_format='channels_last'
    )
    layer = streaming_tf.StreamingStep('melspectrogram', 320, kwargs)
    clone = streaming_tf.StreamingStep.from_config(layer.get_config())
    assert clone.fixed.spec == layer.fixed.spec and clone.state_names == layer.state_names
    x = _crescendo()[:, : (SAMPLES // 320) * 320]
    state = layer.initial_state(2, 1)
    inputs = [keras.Input((320, 1), batch_size=2, name='chunk')] + [
        keras.Input(np.shape(value)[1:], batch_size=2, dtype=str(value.dtype), name=name)
        for name, value in zip(layer.state_names, state)
    ]
    model = keras.Model(inputs, layer(inputs))
    pieces = []
    for start in range(0, x.shape[1], 320):
        frames, valid, *state = model.predict([x[:, start : start + 320], *state], verbose=0)
        pieces.append(frames[:, valid[0].astype(bool)])
    stream = streaming.open('melspectrogram', **kwargs)
    _close_to_stream(np.concatenate(pieces, 1), stream.push(x), 'melspectrogram', True)


def _inverse_case(layout):
    arguments = dict(n_fft=256, win_length=200, hop_length=64)
    x = _signal()[:, :, :1]
    X = _offline(
        'cpu', 'stft', x, **arguments, input_data_format='channels_last', output_data_format=layout
    )
    axis = 1 if layout == 'channels_last' else 2
    frames = (X.shape[axis] // 4) * 4
    X = np.take(X, np.arange(frames), axis=axis)
    return arguments, X, axis, frames


@pytest.mark.parametrize('layout', ['channels_last', 'channels_first'])
def test_fixed_inverse_jax_step_equals_offline(layout):
    """jax_inverse_functions under jax.jit (4 frames per step): the samples of the steps and
    flush equal the offline jax istft within float32 roundings (a step adds the carried tail
    to its own overlap-add: another summation order)."""
    import jax
    import kapre_fast.jax as kfj

    arguments, X, axis, frames = _inverse_case(layout)
    offline = np.asarray(
        kfj.istft(X, **arguments, stft_data_format=layout, waveform_data_format='channels_last')
    )
    init, step, flush = streaming.jax_inverse_functions(4, **arguments, stft_data_format=layout)
    step = jax.jit(step)
    state, pieces = init(2, 1), []
    for start in range(0, frames, 4):
        state, samples = step(state, np.take(X, np.arange(start, start + 4), axis=axis))
        assert samples.shape == (2, 4 * 64, 1)
        pieces.append(np.asarray(samples))
    pieces.append(np.asarray(flush(state)[1]))
    error = helpers.peak_relative_error(np.concatenate(pieces, 1), offline)
    assert helpers.record_agreement('jax streaming fixed istft', error) <= 1e-6
    with pytest.raises(
        ValueError, match='win_length >= hop_length, got win_length=64, hop_length=128'
    ):
        streaming.FixedInverse(2, n_fft=256, win_length=64, hop_length=128)
    with pytest.raises(ValueError, match='frames_per_step must be an int >= 1, got 0'):
        streaming.FixedInverse(0, n_fft=256)


def test_inverse_keras_step_and_exported_models():
    """StreamingInverseStep (the complex frames as real and imag inputs, the tail as state)
    equals the offline cpu istft within builtin's accuracy; its stateful TFLite and ONNX models,
    stepped, equal the layer within float32 roundings."""
    pytest.importorskip('tensorflow')
    from kapre_fast import streaming_tf

    arguments, X, axis, frames = _inverse_case('channels_last')
    offline = _numpy(
        _module('cpu').istft(
            X, **arguments, stft_data_format='channels_last', waveform_data_format='channels_last'
        )
    )
    layer = streaming_tf.StreamingInverseStep(4, dict(arguments, stft_data_format='channels_last'))

    def drive(run_step):
        tail, pieces = layer.initial_state(2, 1)[0], []
        for start in range(0, frames, 4):
            part = X[:, start : start + 4]
            samples, tail = run_step(
                np.ascontiguousarray(part.real), np.ascontiguousarray(part.imag), tail
            )
            pieces.append(np.asarray(samples))
        pieces.append(np.asarray(tail))  # flush: the tail
        return np.concatenate(pieces, 1)

    by_layer = drive(lambda real, imag, tail: layer([real, imag, tail]))
    assert helpers.peak_relative_error(by_layer, offline) <= 2e-6
    for name, convert, run in (
        ('tflite', streaming_tf.to_tflite, streaming_tf.run_tflite_step),
        ('onnx', streaming_tf.to_onnx, streaming_tf.run_onnx_step),
    ):
        model = convert(layer, batch=2, channels=1)

        def exported(real, imag, tail, model=model, run=run):
            outputs = run(model, dict(real=real, imag=imag, tail=tail))
            return outputs['samples'], outputs['new_tail']

        error = helpers.peak_relative_error(drive(exported), by_layer)
        assert helpers.record_agreement(f'{name} streaming istft step vs layer', error) <= 1e-6
