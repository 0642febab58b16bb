"""kapre_fast.cpu and the raw pybind11 module: determinism, instruction sets, memory layouts,
and input checking (grid accuracy is in test_backends.py)."""

import numpy as np
import pytest

from helpers import MEL_DB, peak_relative_error
from kapre_fast import FrontEnd, _kernel_args, _loader, cpu, reference

core = _loader.core()
ISAS = [isa for isa in ('avx512', 'avx2', 'sse2') if core.force_isa(isa)]
core.force_isa('')


@pytest.fixture
def stereo(speech):
    """Two examples of speech, 2 channels, channels_last (batch, time, ch)."""
    a, b = speech[10000:26000], speech[50000:66000]
    return np.stack([np.stack([a, 0.5 * b], -1), np.stack([b, a[::-1]], -1)]).astype(np.float32)


def test_result_does_not_depend_on_thread_count(stereo):
    outputs = [cpu.melspectrogram(stereo, threads=t, **MEL_DB) for t in (1, 2, 3, None)]
    for other in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], other)


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize(
    'family, kwargs',
    [
        ('melspectrogram', MEL_DB),
        ('stft_magnitude', dict(n_fft=1000, hop_length=250)),  # mixed radix 2^3 5^3
        ('stft_mag_phase', dict(n_fft=257, win_length=200, hop_length=64, pad_end=True)),  # prime
        ('stft', dict(n_fft=2048, hop_length=512, pad_begin=True, pad_end=True)),
        # one channel's (re, im) pairs side by side: stored through transposes and an interleave
        ('stft', dict(n_fft=512, hop_length=128, output_data_format='channels_first')),
    ],
)
def test_every_instruction_set_matches_the_reference(isa, family, kwargs, stereo):
    assert core.force_isa(isa)
    try:
        ours = getattr(cpu, family)(stereo, **kwargs)
    finally:
        core.force_isa('')
    truth = getattr(reference, family)(stereo, **kwargs)
    if kwargs.get('return_decibel'):
        assert np.percentile(np.abs(ours - truth), 99.9) < 0.01
    elif family == 'stft_mag_phase':
        magnitude, truth_magnitude = ours[..., :2], truth[..., :2]
        assert peak_relative_error(magnitude, truth_magnitude) < 1e-6
    else:
        assert peak_relative_error(ours, truth) < 1e-6


def test_strided_and_reversed_inputs_give_the_same_result(stereo):
    expected = cpu.melspectrogram(np.ascontiguousarray(stereo[:, ::-1, ::-1]), **MEL_DB)
    reversed_view = stereo[:, ::-1, ::-1]  # negative strides, no copy
    np.testing.assert_array_equal(cpu.melspectrogram(reversed_view, **MEL_DB), expected)
    fortran = np.asfortranarray(stereo)
    np.testing.assert_array_equal(
        cpu.melspectrogram(fortran, **MEL_DB), cpu.melspectrogram(stereo, **MEL_DB)
    )
    every_other = np.ascontiguousarray(np.repeat(stereo, 2, axis=1))[:, ::2]
    np.testing.assert_array_equal(
        cpu.melspectrogram(every_other, **MEL_DB), cpu.melspectrogram(stereo, **MEL_DB)
    )


@pytest.mark.parametrize('isa', ISAS)
def test_a_signals_ragged_last_tile_gives_the_frames_of_a_full_one(isa, stereo):
    # 37 frames leave a ragged last tile at every lane count (4, 8, 16); the same frames of a
    # longer signal sit in full tiles. Mono (unit stride) and stereo (strided) channels_last.
    kwargs = dict(
        n_fft=64,
        hop_length=16,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    short, long = stereo[:, : 64 + 36 * 16], stereo[:, : 64 + 47 * 16]
    assert core.force_isa(isa)
    try:
        for audio, longer in ((short, long), (short[..., :1], long[..., :1])):
            for family in ('stft', 'stft_magnitude'):
                ours = getattr(cpu, family)(audio, **kwargs)
                full = getattr(cpu, family)(longer, **kwargs)
                assert ours.shape[1] == 37 and full.shape[1] == 48
                np.testing.assert_array_equal(ours, full[:, :37])
    finally:
        core.force_isa('')


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize(
    'kwargs',
    [
        dict(n_fft=1024, hop_length=256),  # benchmark D: chains of 4 rows
        dict(
            n_fft=2048, win_length=1501, hop_length=128
        ),  # odd win_length: last odd row is padding
        dict(n_fft=512, hop_length=256),  # 512: a complex FFT of 256 = 16 x 16
    ],
)
def test_framing_fused_into_the_fft_gives_the_edge_paths_bits(isa, kwargs, stereo):
    # pad_begin prepends n_fft - hop zeros, a whole number of hops here: frame k + pad / hop of
    # the padded signal is frame k of the plain one. The first tile (padding) takes the edge
    # path, the plain signal's interior tiles the framing fused into the FFT's first pass
    # (contiguous mono, and strided stereo through the compact span); the bits must agree.
    offset = (kwargs['n_fft'] - kwargs['hop_length']) // kwargs['hop_length']
    assert core.force_isa(isa)
    try:
        for audio in (stereo[..., :1], stereo):
            for family in ('stft', 'stft_magnitude'):
                padded = getattr(cpu, family)(audio, pad_begin=True, **kwargs)
                plain = getattr(cpu, family)(audio, **kwargs)
                n = plain.shape[1] - offset if offset else plain.shape[1]
                np.testing.assert_array_equal(padded[:, offset : offset + n], plain[:, :n])
    finally:
        core.force_isa('')


@pytest.mark.parametrize('isa', ISAS)
def test_fused_framing_without_overlap_gives_the_edge_paths_bits(isa):
    # hop > n_fft: every row of the first pass is cut from the signal, none shifted. A strided
    # channel whose tile spans more samples than the compact scratch takes (15 hops + n_fft
    # > 2**17) goes the edge path; the same samples as a contiguous mono signal go fused.
    kwargs = dict(n_fft=8192, hop_length=8704)
    audio = np.random.default_rng(7).standard_normal((1, 150000, 2)).astype(np.float32)
    assert core.force_isa(isa)
    try:
        strided = cpu.stft(audio, **kwargs)[..., :1]  # (batch, frames, bins, channel), complex
        mono = cpu.stft(np.ascontiguousarray(audio[..., :1]), **kwargs)
    finally:
        core.force_isa('')
    assert mono.shape[1] == 17
    np.testing.assert_array_equal(strided, mono)


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize('channels', [2, 3, 4, 5])
def test_complex_stft_channels_last_gives_each_channels_mono_bits(isa, channels):
    # channels_last interleaves the channels' (re, im) pairs: up to 4 channels are stored by
    # masked strided stores of the real and the imaginary parts, 5 pair by pair.
    audio = np.random.default_rng(channels).standard_normal((2, 9000, channels)).astype(np.float32)
    kwargs = dict(n_fft=512, hop_length=128, pad_end=True)
    assert core.force_isa(isa)
    try:
        together = cpu.stft(audio, **kwargs)
        alone = [
            cpu.stft(np.ascontiguousarray(audio[..., c : c + 1]), **kwargs)[..., 0]
            for c in range(channels)
        ]
    finally:
        core.force_isa('')
    np.testing.assert_array_equal(together, np.stack(alone, -1))


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize('layout', ['channels_first', 'channels_last'])
def test_phases_are_the_angle_of_the_complex_stft(isa, layout, stereo):
    # The vector atan2 against NumPy's on the same spectrum: within 1 ulp of pi, same signs
    # (the +-pi branch cut included); silent stretches (zero bins) take the libm lanes.
    audio = stereo.copy()
    audio[0, 3000:7000] = 0.0
    kwargs = dict(n_fft=512, hop_length=128, output_data_format=layout)
    assert core.force_isa(isa)
    try:
        both = cpu.stft_mag_phase(audio, **kwargs)
        spectrum = cpu.stft(audio, **kwargs)
    finally:
        core.force_isa('')
    channels = audio.shape[-1]
    phase = both[..., channels:] if layout == 'channels_last' else both[:, channels:]
    truth = np.arctan2(spectrum.imag, spectrum.real)
    assert np.count_nonzero(spectrum == 0) > 100  # the silence reached the fallback lanes
    np.testing.assert_allclose(phase, truth, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(np.signbit(phase), np.signbit(truth))


def test_other_dtypes_are_converted_to_float32(stereo):
    expected = cpu.stft_magnitude(stereo, n_fft=256)
    np.testing.assert_array_equal(
        cpu.stft_magnitude(stereo.astype(np.float64), n_fft=256), expected
    )
    ints = (stereo * 1000).astype(np.int16)
    np.testing.assert_allclose(
        cpu.stft_magnitude(ints, n_fft=256), cpu.stft_magnitude(ints.astype(np.float32), n_fft=256)
    )
    with pytest.raises(TypeError, match='audio'):
        cpu.stft_magnitude(stereo.astype(np.complex64), n_fft=256)


def test_digital_silence_gives_the_decibel_floor():
    x = np.zeros((2, 4000, 1), np.float32)
    ours = cpu.melspectrogram(x, **MEL_DB)
    np.testing.assert_allclose(ours, reference.melspectrogram(x, **MEL_DB), atol=1e-4)
    assert np.all(ours == ours.flat[0])  # one constant floor, no stray values


def test_istft_inverts_stft(stereo):
    kwargs = dict(n_fft=512, hop_length=128)
    X = cpu.stft(stereo, pad_begin=True, pad_end=True, **kwargs)
    y = cpu.istft(
        X, stft_data_format='channels_last', waveform_data_format='channels_last', **kwargs
    )
    trim = 512 - 128
    np.testing.assert_allclose(y[:, trim : trim + stereo.shape[1]], stereo, atol=2e-6)
    truth = reference.istft(X, **kwargs)
    assert peak_relative_error(y, truth) < 1e-6


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize('layout', ['channels_first', 'channels_last'])
@pytest.mark.parametrize(
    'kwargs',
    [
        dict(n_fft=512, hop_length=128),
        dict(n_fft=1000, win_length=999, hop_length=250),
        dict(n_fft=257, hop_length=64),
    ],
)
def test_istft_on_every_instruction_set_and_layout_matches_the_reference(
    isa, layout, kwargs, stereo
):
    # channels_first: each channel's (re, im) pairs side by side, read W bins at a time through
    # a deinterleave and register transposes; channels_last (2 channels): pair by pair.
    X = cpu.stft(stereo, pad_begin=True, pad_end=True, output_data_format=layout, **kwargs)
    assert core.force_isa(isa)
    try:
        y = cpu.istft(X, stft_data_format=layout, waveform_data_format='channels_last', **kwargs)
    finally:
        core.force_isa('')
    truth = reference.istft(X, stft_data_format=layout, **kwargs)
    assert peak_relative_error(y, truth) < 1e-6
    trim = kwargs['n_fft'] - kwargs['hop_length']
    np.testing.assert_allclose(y[:, trim : trim + stereo.shape[1]], stereo, atol=3e-6)


@pytest.mark.parametrize(
    'function, kwargs',
    [
        (cpu.melspectrogram, MEL_DB),
        (
            cpu.stft_mag_phase,
            dict(n_fft=256, return_decibel=True, output_data_format='channels_first'),
        ),
        (cpu.stft, dict(n_fft=256, pad_end=True)),
    ],
)
def test_out_is_filled_and_returned(function, kwargs, stereo):
    fresh = function(stereo, **kwargs)
    out = np.full(fresh.shape, np.nan, fresh.dtype)
    for _ in range(2):  # a reused buffer holds the new result, not a mix with the last one
        result = function(stereo, out=out, threads=2, **kwargs)
        assert result is out
        np.testing.assert_array_equal(out, fresh)
        out[...] = 7.0


def _read_only(array):
    array.setflags(write=False)
    return array


@pytest.mark.parametrize(
    'make_out, error, message',
    [
        (lambda shape: np.zeros(shape[:-1], np.float32), ValueError, r'out must have shape \(2, '),
        (lambda shape: np.zeros(shape, np.float64), TypeError, 'out must have dtype float32'),
        (lambda shape: np.zeros(shape[::-1], np.float32).T, ValueError, 'C-contiguous'),
        (lambda shape: _read_only(np.zeros(shape, np.float32)), ValueError, 'writeable'),
        (lambda shape: [[0.0]], TypeError, 'out must be a NumPy array, got list'),
    ],
)
def test_bad_out_is_refused_by_name(make_out, error, message, stereo):
    shape = cpu.melspectrogram(stereo, **MEL_DB).shape
    with pytest.raises(error, match=message):
        cpu.melspectrogram(stereo, out=make_out(shape), **MEL_DB)


def test_out_may_not_overlap_the_audio():
    spec = dict(n_fft=64, hop_length=64)  # 64 frames x 33 bins: as many floats as the audio
    buffer = np.random.default_rng(0).standard_normal(1 + 64 * 33 + 64).astype(np.float32)
    audio = buffer[: 64 * 33].reshape(1, 64 * 33, 1)
    out = buffer[64 : 64 + 33 * 33].reshape(1, 33, 33, 1)
    with pytest.raises(ValueError, match='overlap'):
        cpu.stft_magnitude(audio, out=out, **spec)


@pytest.mark.parametrize(
    'bad, error, message',
    [
        (dict(threads=0), ValueError, 'threads'),
        (dict(threads=1.5), ValueError, 'threads'),
        (dict(n_fft=1), ValueError, 'n_fft'),
        (dict(hop_length=0), ValueError, 'hop_length'),
        (dict(window_name='nope'), NotImplementedError, 'window'),
    ],
)
def test_bad_arguments_are_named(bad, error, message, stereo):
    with pytest.raises(error, match=message):
        cpu.stft_magnitude(stereo, **{'n_fft': 256, **bad})


def test_too_short_audio_names_the_lengths():
    with pytest.raises(ValueError, match=r'300 samples.*win_length=400'):
        cpu.melspectrogram(np.ones((1, 300, 1), np.float32), **MEL_DB)
    with pytest.raises(ValueError, match='channels'):
        cpu.melspectrogram(np.ones((300, 1), np.float32), **MEL_DB)


# ----- the raw module, bypassing every Python-side check ----------------------------------


def _raw(**changes):
    spec = FrontEnd.melspectrogram(**MEL_DB)
    start, length, weights = spec.sparse_filterbank()
    args = dict(
        audio=np.ones((1, 4000, 1), np.float32),
        window=spec.window().astype(np.float32),
        band_start=start,
        band_length=length,
        band_weights=weights,
        threads=1,
        **_kernel_args.of(spec).asdict(),
    )
    args.update(changes)
    return core.frontend(**args)


@pytest.mark.parametrize(
    'changes, error, message',
    [
        (dict(n_fft=0), ValueError, 'n_fft'),
        (dict(n_fft=1 << 31), ValueError, 'n_fft'),
        (dict(win_length=-3), ValueError, 'win_length'),
        (dict(hop_length=0), ValueError, 'hop_length'),
        (dict(pad_begin=-1), ValueError, 'pad_begin'),
        (dict(window=np.ones(12, np.float32)), ValueError, 'window'),
        (dict(window=np.ones(400, np.float64)), TypeError, 'window'),
        (dict(band_start=np.full(64, 1000, np.int32)), ValueError, 'band'),
        (dict(band_length=np.full(64, -1, np.int32)), ValueError, 'band'),
        (dict(band_weights=np.ones(3, np.float32)), ValueError, 'weights'),
        (dict(band_start=np.zeros(5, np.int32)), ValueError, 'band_start'),
        (dict(output=7), ValueError, 'output'),
        (dict(amin=0.0), ValueError, 'db_amin'),
        (dict(amin=float('nan')), ValueError, 'db_amin'),
        (dict(ref_value=-1.0), ValueError, 'db_ref_value'),
        (dict(dynamic_range=0.0), ValueError, 'db_dynamic_range'),
        (dict(audio=np.ones((4000, 1), np.float32)), ValueError, '3-D'),
        (dict(audio=np.ones((1, 4000, 1), np.float64)), TypeError, 'float32'),
        (dict(audio=np.ones((1, 10, 1), np.float32)), ValueError, 'win_length=400'),
        (dict(threads=-1), ValueError, 'threads'),
    ],
)
def test_raw_module_rejects_bad_input(changes, error, message):
    with pytest.raises(error, match=message):
        _raw(**changes)


def test_raw_module_handles_empty_batches_and_channels():
    assert _raw(audio=np.ones((0, 4000, 1), np.float32)).shape == (0, 23, 64, 1)
    assert _raw(audio=np.ones((2, 4000, 0), np.float32)).shape == (2, 23, 64, 0)
    assert _raw().shape == (1, 23, 64, 1)


def test_raw_istft_rejects_bad_input():
    window = np.ones(64, np.float32)
    good = dict(
        window=window,
        n_fft=64,
        win_length=64,
        hop_length=16,
        input_channels_first=False,
        output_channels_first=False,
        threads=1,
    )
    with pytest.raises(ValueError, match='frequency bins'):
        core.istft(np.ones((1, 5, 20, 1), np.complex64), **good)
    with pytest.raises(ValueError, match='at least one frame'):
        core.istft(np.ones((1, 0, 33, 1), np.complex64), **good)
    with pytest.raises(TypeError, match='complex64'):
        core.istft(np.ones((1, 5, 33, 1), np.float32), **good)
    assert core.istft(np.ones((1, 5, 33, 1), np.complex64), **good).shape == (1, 128, 1)


@pytest.mark.parametrize(
    'family, kwargs',
    [
        ('melspectrogram', dict(n_fft=512, hop_length=256, n_mels=20, sample_rate=16000)),
        (
            'melspectrogram',
            dict(n_fft=512, hop_length=256, n_mels=20, sample_rate=16000, return_decibel=True),
        ),
        ('stft_magnitude', dict(n_fft=400, hop_length=160)),
        ('stft_magnitude', dict(n_fft=400, hop_length=160, return_decibel=True)),
    ],
)
def test_non_finite_audio_is_non_finite_where_kapre_is(family, kwargs):
    """NaN/Inf samples make the frames that contain them non-finite; with decibels the whole
    example becomes NaN (kapre's per-example max is NaN, and max(y, NaN) is NaN)."""
    from helpers import kapre_output

    x = np.random.default_rng(5).standard_normal((3, 6000, 1)).astype(np.float32) * 0.1
    x[0, 2500, 0] = np.nan
    x[1, 4000, 0] = np.inf
    ours = getattr(cpu, family)(x, **kwargs)
    theirs = kapre_output(family, x, **kwargs)
    np.testing.assert_array_equal(~np.isfinite(ours), ~np.isfinite(theirs))
    assert np.isfinite(ours[2]).all()
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-3, atol=1e-2)


def test_a_request_over_the_output_limit_is_refused_not_allocated():
    before = core.output_limit()
    core.output_limit(1 << 20)
    try:
        with pytest.raises(ValueError, match='KAPRE_FAST_MAX_OUTPUT_BYTES'):
            cpu.stft_magnitude(np.ones((4, 100000, 2), np.float32), n_fft=2048, hop_length=16)
    finally:
        core.output_limit(before)


@pytest.mark.parametrize(
    'n_fft, hop, channels, data_format, samples',
    [
        (4096, 1024, 1, 'channels_last', 60000),
        (512, 128, 2, 'channels_first', 30001),
        (1000, 250, 1, 'channels_last', 20000),
        (256, 64, 3, 'channels_first', 5000),
        (2048, 512, 2, 'channels_last', 40000),  # step 2: the plain stores, whatever the size
    ],
)
def test_streamed_results_keep_their_bits(n_fft, hop, channels, data_format, samples):
    """A large magnitude result is written with non-temporal stores (AVX-512): rows at every
    float alignment, a ragged last tile, bins past the last full block and a caller's
    misaligned `out` give the bits of the plain stores."""
    core = _loader.core()
    spec = FrontEnd.stft_magnitude(
        n_fft=n_fft, hop_length=hop, input_data_format=data_format, output_data_format=data_format
    )
    shape = (3, channels, samples) if data_format == 'channels_first' else (3, samples, channels)
    x = np.random.default_rng(samples).standard_normal(shape).astype(np.float32)
    default = core.stream_bytes()
    try:
        core.stream_bytes(1 << 62)  # never
        plain = cpu.compute(spec, x)
        core.stream_bytes(0)  # always
        streamed = cpu.compute(spec, x)
        buffer = np.full(plain.size + 7, np.nan, np.float32)
        misaligned = buffer[3 : 3 + plain.size].reshape(plain.shape)
        cpu.compute(spec, x, out=misaligned)
    finally:
        core.stream_bytes(default)
    assert default == 16 << 20
    np.testing.assert_array_equal(streamed, plain)
    np.testing.assert_array_equal(misaligned, plain)
    assert np.isnan(buffer[:3]).all() and np.isnan(buffer[3 + plain.size :]).all()
    assert peak_relative_error(plain, reference.compute(spec, x)) < 1e-5


def test_each_example_is_clamped_once_whoever_finishes_it():
    """The dB clamp runs per example in the thread that finishes its last tile: any thread
    count and split gives the bits of one thread and the reference's clamp, and a NaN stays in
    its own example."""
    spec = FrontEnd.melspectrogram(
        n_fft=256,
        hop_length=64,
        n_mels=24,
        sample_rate=8000,
        return_decibel=True,
        db_dynamic_range=30.0,
    )
    x = np.random.default_rng(11).standard_normal((7, 2, 3001)).astype(np.float32)
    x = np.moveaxis(x, 1, 2).copy()  # channels_last, 2 channels
    x[3, :, 1] *= 1e-4  # one channel far below the other: the clamp binds there
    x[5, 100, 0] = np.nan
    one = cpu.compute(spec, x, threads=1)
    for threads in (2, 3, 7):
        np.testing.assert_array_equal(cpu.compute(spec, x, threads=threads), one)
    assert np.isnan(one[5]).all() and np.isfinite(np.delete(one, 5, axis=0)).all()
    assert (one[3] == one[3].max() - spec.db_dynamic_range).any()  # the clamp binds
    finite = [0, 1, 2, 3, 4, 6]
    assert np.abs(one[finite] - reference.compute(spec, x)[finite]).max() < 0.01
