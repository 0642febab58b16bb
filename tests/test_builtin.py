"""kapre_fast.builtin: the front ends in plain TensorFlow ops (for TFLite, ONNX, XLA, SavedModels
without our op library).

The whole grid runs through it in test_backends.py (backend 'builtin'); here: the grid with 3
channels, the inverse STFT against the float64 reference, the radix split, static shapes under
unknown batch and time, only-builtin op types, finite gradients at digital silence, and the time
chunks of magnitude outputs (CHUNK_FRAMES): small chunks equal one chunk, values and gradients,
a chunk count per static length in the graph, and long inputs against the fused op.
"""

import contextlib
import dataclasses
import functools
import math
import random

import numpy as np
import pytest

from grid import CASES, _draw, make_batch
from helpers import (
    decibel_error,
    kapre_output,
    peak_relative_error,
    record_agreement,
    to_input_layout,
)

tf = pytest.importorskip('tensorflow')
pytest.importorskip('kapre')

from kapre_fast import builtin, ops, reference  # noqa: E402
from kapre_fast.spec import FrontEnd  # noqa: E402
from test_backends import assert_as_close_as_kapre  # noqa: E402

# Three channels on a fixed sample of grid cases: for each family one case per output layout.
_rng = random.Random(3)
THREE_CHANNEL_CASES = [
    dataclasses.replace(_rng.choice(same_layout), n_channels=3)
    for family in sorted({case.family for case in CASES})
    for layout in ('channels_last', 'channels_first')
    for same_layout in [
        [
            case
            for case in CASES
            if case.family == family and case.kwargs['output_data_format'] == layout
        ]
    ]
]


@pytest.mark.parametrize('case', THREE_CHANNEL_CASES, ids=str)
def test_three_channels_are_as_close_to_float64_as_kapre(case, speech_batch, noise_batch):
    x, spec = make_batch(case, speech_batch, noise_batch)
    assert x.shape[1 if spec.input_data_format == 'channels_first' else 2] == 3
    ours = builtin.front_end(tf.constant(x), spec).numpy()
    assert_as_close_as_kapre(
        case, spec, x, ours, kapre_output(case.family, x, **case.kwargs), 'builtin 3ch'
    )


ISTFT_CASES = [
    dict(n_fft=256, hop_length=64),
    dict(n_fft=300, win_length=256, hop_length=64, forward_window_name='vorbis_window'),
    dict(n_fft=200, win_length=256, hop_length=32, forward_window_name='hamming_window'),
    dict(n_fft=255, hop_length=51, forward_window_name='kaiser_window'),
]


@pytest.mark.parametrize(
    'layouts', [('channels_last', 'channels_first'), ('channels_first', 'channels_last')]
)
@pytest.mark.parametrize('kwargs', ISTFT_CASES)
def test_inverse_stft_is_as_close_to_float64_as_kapre(kwargs, layouts):
    stft_format, waveform_format = layouts
    spec = FrontEnd.inverted_by_istft(
        **kwargs, stft_data_format=stft_format, waveform_data_format=waveform_format
    )
    rng = np.random.default_rng(0)
    shape = (2, 9, spec.n_freq, 3) if stft_format == 'channels_last' else (2, 3, 9, spec.n_freq)
    spectra = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    truth = reference.istft(
        spectra, **kwargs, stft_data_format=stft_format, waveform_data_format=waveform_format
    )
    ours = peak_relative_error(builtin.inverse_stft(spectra, spec).numpy(), truth)
    kapre = peak_relative_error(
        kapre_output(
            'istft',
            spectra,
            **kwargs,
            input_data_format=stft_format,
            output_data_format=waveform_format,
        ),
        truth,
    )
    record_agreement('builtin istft / peak', ours)
    record_agreement('builtin istft / peak / (2 kapre + floor)', ours / (2 * kapre + 3e-7))
    assert ours <= 2 * kapre + 3e-7, (ours, kapre)


@pytest.mark.parametrize(
    'n_fft, hop, factors',
    [
        (2048, 512, (32, 8, 8)),
        (4096, 1024, (32, 8, 16)),
        (1024, 256, (64, 16, 1)),
        (512, 160, (32, 16, 1)),
        (8192, 2048, (32, 16, 16)),
        (400, 100, (40, 10, 1)),
        (400, 7, (25, 16, 1)),
        (1000, 250, (20, 5, 10)),
        (511, 128, (73, 7, 1)),
        (509, 128, (509, 1, 1)),
        (64, 16, (64, 1, 1)),
        (2, 1, (2, 1, 1)),
    ],
)
def test_factors_multiply_to_n_fft(n_fft, hop, factors):
    # Fewest multiply-adds per sample (r1 + 2 p [+ 2 q + _STAGE_COST]; on a tie the larger r1)
    # among the factors whose p * q divides the hop, with r1 <= 64 and p, q <= 16 (400 with
    # hop 7: no factor divides 7); two stages up to n_fft 1024, three from 2048; r1 above 64
    # only where nothing else factors n_fft (511 = 7 * 73); the dense DFT (n, 1, 1) for
    # n_fft <= 64 and primes (509).
    assert builtin._factors(n_fft, hop) == factors and np.prod(factors) == n_fft


@pytest.mark.parametrize(
    'kwargs, parts',
    [
        (dict(n_fft=1024, hop_length=256), ((0, 16), (16, 32))),  # 32 x 4 x 8: shifts of 8
        (dict(n_fft=4096, hop_length=1024), ((0, 32), (32, 64))),  # 64 x 8 x 8: shifts of 16
        (dict(n_fft=512, win_length=400, hop_length=160), ((0, 15),)),  # 16 x 4 x 8: shifts of 5
        (dict(n_fft=2048, hop_length=512), ((0, 16), (16, 32))),  # 32 x 8 x 8: shifts of 8
        (dict(n_fft=511, hop_length=128), ((0, 24), (24, 48), (48, 73))),  # gathered: any split
    ],
)
def test_first_stage_sums_of_db_outputs_are_split_into_whole_shifts(kwargs, parts):
    # For dB outputs, sums of _MAX_CHAIN samples or more are computed in at least two parts
    # (whole framing shifts when r2 divides the hop) that cover the first stage's rows once, in
    # order; shorter sums, and every sum of a linear output, are one part.
    plan = builtin._fft_plan(FrontEnd.stft_magnitude(**kwargs, return_decibel=True))
    assert plan.parts == parts
    rows = parts[-1][1]
    assert (len(parts) > 1) == (rows >= builtin._MAX_CHAIN)
    assert all(stop - start <= builtin._MAX_CHAIN for start, stop in parts)
    if plan.strided:
        assert all(start % plan.step == stop % plan.step == 0 for start, stop in parts)
    linear = builtin._fft_plan(FrontEnd.stft_magnitude(**kwargs))
    assert linear.parts == ((0, linear.table1.shape[1]),)


@pytest.mark.parametrize(
    'n_fft, hop, factors',
    [
        (2048, 512, (32, 8, 8)),
        (1024, 256, (32, 4, 8)),
        (512, 160, (16, 4, 8)),
        (4096, 1024, (64, 8, 8)),
        (400, 100, (20, 4, 5)),
        (1000, 250, (20, 5, 10)),
        (511, 128, (73, 7, 1)),  # no r1 <= sqrt(511) with small radices: as a linear output
        (64, 16, (64, 1, 1)),
    ],
)
def test_factors_of_db_outputs_have_the_largest_first_radix_up_to_sqrt_n_fft(n_fft, hop, factors):
    # For dB outputs: among the factors whose r2 divides the hop, with small radices and
    # r1 <= sqrt(n_fft), the largest r1, then the fewest multiply-adds; where there are none,
    # the choice of a linear output.
    assert builtin._factors(n_fft, hop, decibel=True) == factors
    r1, p, q = factors
    if r1 * r1 <= n_fft and p > 1:
        assert hop % (p * q) == 0 and max(p, q) <= builtin._MAX_RADIX

        def small(r2):  # r2 = p * q with 1 < p <= 16, q <= 16
            return any(r2 % a == 0 and r2 // a <= builtin._MAX_RADIX for a in range(2, 17))

        larger = range(r1 + 1, math.isqrt(n_fft) + 1)
        assert not any(
            n_fft % f == 0 and hop % (n_fft // f) == 0 and small(n_fft // f) for f in larger
        )
    else:
        assert factors == builtin._factors(n_fft, hop)
    spec = FrontEnd.melspectrogram(n_fft=n_fft, hop_length=hop, return_decibel=True)
    plan = builtin._fft_plan(spec)
    assert (plan.r1, plan.p, plan.q) == factors


FFT_SIZES = [2, 7, 64, 65, 97, 256, 400, 509, 511, 512, 1000, 1024, 2048, 3000, 4096]


def _framing(n_fft, framing):
    """The framing keywords of the FFT tests: 'hop n_fft / 4...' (r2 divides the hop: the strided
    framing) or 'odd hop, short window' (the gather, a window shorter than n_fft, both pads)."""
    if framing.startswith('hop n_fft / 4'):
        return dict(hop_length=max(1, n_fft // 4))
    return dict(
        hop_length=max(1, n_fft // 3) | 1,
        win_length=max(1, 3 * n_fft // 4),
        pad_begin=True,
        pad_end=True,
    )


def _numpy_rfft(x, spec, n_frames):
    """(batch, frames, n_freq) float64 rfft of channel 0 of x's first n_frames frames."""
    n_fft = spec.n_fft
    padded = np.pad(x[:, :, 0].astype(np.float64), [(0, 0), (spec.pad_begin_length, n_fft)])
    window, hop = spec.window()[: min(spec.frame_length, n_fft)], spec.hop_length
    frames = np.stack([padded[:, f * hop : f * hop + window.size] for f in range(n_frames)], 1)
    return np.fft.rfft(frames * window, n=n_fft)


@pytest.mark.parametrize('n_fft', FFT_SIZES)
@pytest.mark.parametrize('win_length', ['n_fft', '3/4 n_fft'])
def test_inverse_frames_equal_numpy_irfft(n_fft, win_length):
    # The inverse STFT's irfft (builtin._inverse_plan: two matmuls where that is fewer
    # multiply-adds than the dense table, r1 * r2 = n_fft; the dense table for n_fft <= 64 and
    # primes) against numpy's irfft in float64, cropped to the frame and times the
    # synthesis window; the imaginary parts of DC and Nyquist ignored, as TF's irfft does.
    length = n_fft if win_length == 'n_fft' else max(1, 3 * n_fft // 4)
    spec = FrontEnd.inverted_by_istft(
        n_fft=n_fft, win_length=length, hop_length=max(1, length // 4)
    )
    rng = np.random.default_rng(n_fft)
    shape = (2, 3, 5, spec.n_freq)
    real, imag = rng.standard_normal(shape), rng.standard_normal(shape)
    ours = builtin._inverse_frames(
        tf.constant(real, tf.float32), tf.constant(imag, tf.float32), spec
    ).numpy()
    spectrum = real + 1j * imag
    spectrum.imag[..., 0] = 0
    if n_fft % 2 == 0:
        spectrum.imag[..., -1] = 0
    truth = np.fft.irfft(spectrum, n=n_fft)[..., :length] * spec.inverse_window()[:length]
    assert ours.shape == truth.shape
    assert np.abs(ours - truth).max() <= 1e-6 * np.abs(truth).max()
    r1, r2 = builtin._inverse_factors(n_fft)
    assert r1 * r2 == n_fft
    factored = n_fft > builtin._DENSE_MAX_N_FFT and n_fft not in (97, 509)
    assert (r2 > 1) == factored, (r1, r2)


@pytest.mark.parametrize('n_fft', FFT_SIZES)
@pytest.mark.parametrize('framing', ['hop n_fft / 4', 'odd hop, short window'])
def test_matmul_fft_equals_numpy_rfft(n_fft, framing):
    # Every framing: the strided one (r2 divides the hop), as slices, and the gather (r2 does
    # not divide the hop), with a window shorter than n_fft (zero rows), pad_begin and pad_end.
    kwargs = _framing(n_fft, framing)
    spec = FrontEnd.stft(
        n_fft=n_fft,
        **kwargs,
        input_data_format='channels_last',
        output_data_format='channels_first',
    )
    x = np.random.default_rng(n_fft).standard_normal((2, 3 * n_fft + 5, 1)).astype(np.float32)
    ours = builtin.front_end(tf.constant(x), spec).numpy()[:, 0]
    truth = _numpy_rfft(x, spec, ours.shape[1])
    assert ours.shape == truth.shape
    assert np.abs(ours - truth).max() <= 1e-6 * np.abs(truth).max()


@pytest.mark.parametrize(
    'spec',
    [
        FrontEnd.melspectrogram(n_fft=2048, hop_length=512, n_mels=128, sample_rate=22050),
        FrontEnd.melspectrogram(n_fft=512, win_length=400, hop_length=160, n_mels=64),
        FrontEnd.melspectrogram(n_fft=1024, hop_length=256, n_mels=10, mel_f_max=2000.0),
        FrontEnd.log_frequency_spectrogram(n_fft=1024, hop_length=256, sample_rate=16000),
    ],
    ids=['config A', 'config B', '10 bands below 2 kHz', 'config D'],
)
def test_band_groups_hold_every_weight_and_few_zeros(spec):
    # frames_last_stages' filterbank: groups of builtin._BAND_GROUP bands, each over the grid
    # rows of its bins from the lowest nonzero to the highest; put back together they are the
    # filterbank on the grid, weight for weight, and a mel or log filterbank's groups multiply
    # a fraction of the dense product's zeros.
    plan, order = builtin._fft_plan(spec), builtin._frames_last_plan(spec)
    together = np.zeros((plan.h * plan.r2, spec.n_features), np.float32)
    expected = np.zeros_like(together)
    expected[order.grid_index] = spec.dense_filterbank()
    start = 0
    for rows, weights in order.bands:
        assert weights.shape == (len(rows), min(builtin._BAND_GROUP, spec.n_features - start))
        assert len(set(rows.tolist())) == len(rows)
        together[rows, start : start + weights.shape[1]] = weights
        start += weights.shape[1]
    assert start == spec.n_features
    np.testing.assert_array_equal(together, expected)
    products = sum(weights.size for _, weights in order.bands)
    assert products <= 0.3 * spec.n_freq * spec.n_features, products


@pytest.mark.parametrize('n_fft', FFT_SIZES)
@pytest.mark.parametrize('framing', ['hop n_fft / 4', 'odd hop, short window'])
def test_frames_last_magnitude_equals_numpy_rfft(n_fft, framing):
    # frames_last_stages (the default; export.to_onnx): the magnitude of every plan, strided and
    # gathered, with fewer transposes in the graph where the FFT has stages than in the usual
    # layout (frames_last_stages(False)).
    kwargs = _framing(n_fft, framing)
    spec = FrontEnd.stft_magnitude(
        n_fft=n_fft, **kwargs, input_data_format='channels_last', output_data_format='channels_last'
    )
    x = np.random.default_rng(n_fft).standard_normal((2, 3 * n_fft + 5, 1)).astype(np.float32)
    with builtin.frames_last_stages(False):
        plain = tf.function(lambda x: builtin.front_end(x, spec)).get_concrete_function(
            tf.TensorSpec(x.shape, tf.float32)
        )
    with builtin.frames_last_stages():
        frames_last = tf.function(lambda x: builtin.front_end(x, spec)).get_concrete_function(
            tf.TensorSpec(x.shape, tf.float32)
        )
    ours = frames_last(tf.constant(x)).numpy()[..., 0]
    truth = np.abs(_numpy_rfft(x, spec, ours.shape[1]))
    assert ours.shape == truth.shape
    assert np.abs(ours - truth).max() <= 1e-6 * truth.max()

    def transposes(concrete):
        return sum(op.type == 'Transpose' for op in concrete.graph.get_operations())

    if builtin._fft_plan(spec).r2 > 1:
        assert transposes(frames_last) < transposes(plain)


@pytest.mark.parametrize('n_fft', FFT_SIZES)
@pytest.mark.parametrize('framing', ['hop n_fft / 4', 'odd hop, short window'])
def test_xnnpack_magnitude_equals_numpy_rfft(n_fft, framing, monkeypatch):
    # xnnpack_stages (export.to_tflite): a strided plan's frames as slices of whole blocks and
    # the batch inside the matmuls' columns (two examples, two channels, time chunks of 3 frames),
    # no GATHER of frames; other plans as in frames_last_stages.
    monkeypatch.setattr(builtin, 'CHUNK_FRAMES', 3)
    kwargs = _framing(n_fft, framing)
    spec = FrontEnd.stft_magnitude(
        n_fft=n_fft, **kwargs, input_data_format='channels_last', output_data_format='channels_last'
    )
    x = np.random.default_rng(n_fft).standard_normal((2, 3 * n_fft + 5, 2)).astype(np.float32)
    signature = tf.TensorSpec(x.shape, tf.float32)

    def traced(*contexts):
        with contextlib.ExitStack() as stack:
            for context in contexts:
                stack.enter_context(context())
            return tf.function(lambda x: builtin.front_end(x, spec)).get_concrete_function(
                signature
            )

    xnnpack = traced(builtin.frames_last_stages, builtin.xnnpack_stages)
    ours = np.moveaxis(xnnpack(tf.constant(x)).numpy(), 3, 1)  # (batch, channels, frames, bins)
    truth = np.abs([_numpy_rfft(x[..., c : c + 1], spec, ours.shape[2]) for c in range(2)])
    truth = truth.swapaxes(0, 1)
    assert ours.shape == truth.shape
    assert np.abs(ours - truth).max() <= 1e-6 * truth.max()

    def gathers(concrete):
        return sum(op.type == 'GatherV2' for op in concrete.graph.get_operations())

    if builtin._fft_plan(spec).strided:  # one gather per chunk: the bins'
        assert gathers(xnnpack) < gathers(traced(builtin.frames_last_stages))


@contextlib.contextmanager
def _xnnpack_stages():
    with builtin.frames_last_stages(), builtin.xnnpack_stages():
        yield


_PATHS = {
    'usual layout': functools.partial(builtin.frames_last_stages, False),
    'frames last': builtin.frames_last_stages,
    'xnnpack': _xnnpack_stages,
}


@pytest.mark.parametrize('path', list(_PATHS))
def test_unknown_batch_and_time_keep_the_other_sizes_static(path):
    # config B's framing: its first stage is one sum of 30 samples
    spec = FrontEnd.melspectrogram(
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=40,
        return_decibel=True,
        pad_end=True,
        input_data_format='channels_last',
        output_data_format='channels_first',
    )
    function = tf.function(
        lambda x: builtin.front_end(x, spec),
        input_signature=[tf.TensorSpec([None, None, 2], tf.float32)],
    )
    with _PATHS[path]():
        concrete = function.get_concrete_function()  # traced here
    assert concrete.output_shapes.as_list() == [None, 2, None, 40]
    for batch, time in [(1, 700), (3, 5001)]:
        x = np.random.default_rng(time).standard_normal((batch, time, 2)).astype(np.float32)
        np.testing.assert_allclose(
            concrete(tf.constant(x)).numpy(), ops.front_end(x, spec).numpy(), atol=2e-3
        )  # dB


# Op types of a graph that TFLite's builtin set and ONNX take (no complex op, no FFT, no custom
# op); the front end must use none other.
_PLAIN_OPS = {
    'Placeholder',
    'Const',
    'Identity',
    'Transpose',
    'Pad',
    'Shape',
    'StridedSlice',
    'Pack',
    'Range',
    'Mul',
    'AddV2',
    'Sub',
    'FloorDiv',
    'Maximum',
    'ExpandDims',
    'GatherV2',
    'Reshape',
    'BatchMatMulV2',
    'MatMul',
    'Split',
    'Square',
    'Greater',
    'SelectV2',
    'OnesLike',
    'ZerosLike',
    'Sqrt',
    'Log',
    'Max',
    'Atan2',
    'ConcatV2',
    'Cast',
    'Squeeze',
    'Fill',
    'RealDiv',
    'Unpack',
    'AddN',  # the first stage's parts (TFLite ADD_N, ONNX Sum)
    'Sum',  # frames_last_stages' re^2 + im^2 (TFLite SUM, ONNX ReduceSum)
    'Reshape',
    'ZerosLike',
    'IdentityN',  # tf.custom_gradient's marker around the magnitude's sqrt (no computation)
}


@pytest.mark.parametrize(
    'spec',
    [
        FrontEnd.stft_mag_phase(
            n_fft=400, win_length=300, pad_begin=True, pad_end=True, return_decibel=True
        ),
        FrontEnd.log_frequency_spectrogram(n_fft=1024, return_decibel=True),
    ],
    ids=['mag_phase', 'log'],
)
@pytest.mark.parametrize('path', list(_PATHS))
def test_graph_has_only_plain_ops(spec, path):
    function = tf.function(
        lambda x: builtin.front_end(x, spec),
        input_signature=[tf.TensorSpec([None, None, 1], tf.float32)],
    )
    with _PATHS[path]():
        graph = function.get_concrete_function().graph
    assert {op.type for op in graph.get_operations()} <= _PLAIN_OPS


def test_gradient_is_finite_at_digital_silence():
    spec = FrontEnd.stft_mag_phase(
        n_fft=64, hop_length=16, return_decibel=True, input_data_format='channels_last'
    )
    x = np.random.default_rng(0).standard_normal((2, 400, 1)).astype(np.float32)
    x[:, 100:300] = 0.0  # frames of exact zeros: magnitude 0, phase undefined
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(builtin.front_end(x, spec))
    gradient = tape.gradient(total, x).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0


def test_refuses_ffts_above_its_table_limit():
    with pytest.raises(ValueError, match='MAX_N_FFT'):
        builtin.front_end(
            np.zeros((1, 4 * builtin.MAX_N_FFT, 1), np.float32),
            FrontEnd.stft_magnitude(n_fft=2 * builtin.MAX_N_FFT),
        )


# ----- time chunks of magnitude outputs (builtin.CHUNK_FRAMES) ----------------------------------

# A sample of the options a chunk must not change: families, dB, kapre's framing and the presets'
# numerics (centring, power), the FFT plans (strided framing of two or three stages, gathered
# framing: a hop no r2 divides, the dense DFT of n_fft <= 64), layouts, the three paths, and
# frame counts that no chunk count divides (uneven chunks of CHUNK_FRAMES = 7).
_CHUNK_OPTIONS = {
    'family': ['stft_magnitude', 'melspectrogram', 'log_frequency_spectrogram'],
    'decibel': [False, True],
    'numerics': [
        'kapre',
        'kapre pad_end',
        'kapre pad_begin pad_end',
        'librosa',
        'librosa power 1',
        'torchaudio',
        'torchaudio uncentred',
    ],
    'framing': ['strided', 'config B', 'three stages', 'odd hop', 'dense'],
    'layouts': ['last > first', 'first > last'],  # input > output data format
    'path': list(_PATHS),
    'frames': [40, 45, 50, 61],
}
_NUMERICS = {
    'kapre': {},
    # kapre's dB floor (db_amin 1e-5 on magnitudes) lies less than its default 80 dB below
    # speech's peak: a smaller range, so that its clamp is where dB over the whole matters
    'kapre pad_end': dict(pad_end=True, db_dynamic_range=30.0),
    'kapre pad_begin pad_end': dict(pad_begin=True, pad_end=True, db_dynamic_range=50.0),
    'librosa': dict(compat='librosa'),
    'librosa power 1': dict(compat='librosa', power=1.0),
    'torchaudio': dict(compat='torchaudio'),
    'torchaudio uncentred': dict(compat='torchaudio', center=False),
}
_FRAMINGS = {
    'strided': dict(n_fft=512, hop_length=128),  # r2 divides the hop (32 x 16; dB 16 x 4 x 8)
    'config B': dict(n_fft=512, win_length=400, hop_length=160),  # one sum, as 'strided'
    'three stages': dict(n_fft=2048, hop_length=512),  # 32 x 8 x 8
    'odd hop': dict(n_fft=256, win_length=200, hop_length=51),  # no r2 divides 51: gathered
    'dense': dict(n_fft=64, win_length=48, hop_length=20),  # one DFT matmul
}
_CHUNK_FAMILY_ARGS = {
    'stft_magnitude': {},
    'melspectrogram': dict(sample_rate=16000, n_mels=40),
    'log_frequency_spectrogram': dict(sample_rate=16000),
}
CHUNK_CASES = _draw(random.Random(27), _CHUNK_OPTIONS, 14)


def _chunk_spec(family, framing, numerics='kapre', decibel=True, layouts='last > first'):
    input_format, output_format = (f'channels_{side}' for side in layouts.split(' > '))
    return getattr(FrontEnd, family)(
        **_FRAMINGS[framing],
        **_NUMERICS[numerics],
        **_CHUNK_FAMILY_ARGS.get(family, {}),
        **({} if family == 'stft' else dict(return_decibel=decibel)),
        input_data_format=input_format,
        output_data_format=output_format,
    )


def _samples_for(spec, frames, rng):
    """A number of samples that spec frames into exactly `frames` frames, drawn from the hop's
    range of such lengths. (Padding adds at most n_fft samples, so the search starts there.)"""

    def count(n_samples):
        try:
            return spec.n_frames(n_samples, allow_empty=spec.compat == 'kapre')
        except ValueError:  # a preset's audio too short for one frame
            return 0

    start = max(1, (frames - 1) * spec.hop_length - spec.n_fft)
    shortest = next(n for n in range(start, start + 4 * spec.n_fft) if count(n) >= frames)
    return shortest + int(rng.integers(spec.hop_length))


def _fading_speech(speech_batch, spec, n_samples, seed=0):
    """Two examples of two-channel speech in spec's input layout, fading by 100 dB from the first
    sample to the last: the later chunks' peaks lie below the dB clamp of the whole example's
    peak, so dB computed per chunk would differ from dB over the whole."""
    x = speech_batch(n_examples=2, n_samples=n_samples, n_channels=2, seed=seed)
    x = x * 10.0 ** (-5.0 * np.linspace(0.0, 1.0, n_samples, dtype=np.float32))
    return to_input_layout(x.astype(np.float32), spec.input_data_format)


def _frame_relative_error(actual, expected, spec):
    """The largest |actual - expected| of linear features over its frame's peak (each example,
    channel and frame: the speech fades by 100 dB, so an example's peak would hide its last
    chunks' errors; frames of digital silence, zero in both, count 0)."""
    feature_axis = 2 if spec.output_data_format == 'channels_last' else 3
    peak = np.abs(expected).max(axis=feature_axis, keepdims=True)
    error = np.abs(actual - expected) / np.where(peak > 0, peak, 1.0)
    return float(error.max())


@pytest.mark.parametrize('choices', CHUNK_CASES, ids=lambda c: '-'.join(map(str, c.values())))
def test_chunked_features_equal_one_chunk(choices, speech_batch, monkeypatch):
    # CHUNK_FRAMES 7 (6-9 chunks of uneven sizes) against one chunk: each frame's products and
    # sums are the same, the dB (its clamp relative to the example's peak) over the whole.
    spec = _chunk_spec(
        choices['family'],
        choices['framing'],
        choices['numerics'],
        choices['decibel'],
        choices['layouts'],
    )
    frames = choices['frames']
    n_samples = _samples_for(spec, frames, np.random.default_rng(frames))
    assert spec.n_frames(n_samples) == frames and frames % -(-frames // 7)  # uneven chunks
    x = tf.constant(_fading_speech(speech_batch, spec, n_samples))

    def features(chunk_frames):
        monkeypatch.setattr(builtin, 'CHUNK_FRAMES', chunk_frames)
        with _PATHS[choices['path']]():
            return builtin.compute(spec, x).numpy()

    chunked, whole = features(7), features(10**6)
    time_axis = 1 if spec.output_data_format == 'channels_last' else 2
    assert chunked.shape == whole.shape and whole.shape[time_axis] == frames
    difference = float(np.abs(chunked - whole).max())
    if spec.return_decibel:
        record_agreement('builtin 7-frame chunks vs one chunk, dB', difference)
        assert difference <= 1e-4, difference
    else:
        error = _frame_relative_error(chunked, whole, spec)
        record_agreement("builtin 7-frame chunks vs one chunk / frame's peak", error)
        assert error <= 1e-6, error


def _matmuls(concrete):
    return sum(op.type in ('MatMul', 'BatchMatMulV2') for op in concrete.graph.get_operations())


@pytest.mark.parametrize('path', list(_PATHS))
@pytest.mark.parametrize(
    'family, framing',
    [
        ('melspectrogram', 'config B'),
        ('stft_magnitude', 'odd hop'),
        ('log_frequency_spectrogram', 'dense'),
        ('stft', 'config B'),
        ('stft_mag_phase', 'three stages'),
    ],
)
def test_a_static_time_is_traced_in_nearly_equal_chunks(family, framing, path, monkeypatch):
    # Traced with a static length of F frames, a magnitude output's graph repeats the one-chunk
    # graph's matmuls once per chunk, ceil(F / CHUNK_FRAMES) chunks whose sizes differ by at
    # most one frame; with an unknown time it is one chunk, and complex and mag_phase outputs
    # are never chunked.
    spec = _chunk_spec(family, framing)
    sizes = []
    time_chunks = builtin._time_chunks

    def recording(waveforms, n_frames, spec):
        chunks = time_chunks(waveforms, n_frames, spec)
        sizes.append([starts.shape[0] for _, starts in chunks])
        return chunks

    monkeypatch.setattr(builtin, '_time_chunks', recording)

    def traced(time):
        function = tf.function(
            lambda x: builtin.compute(spec, x),
            input_signature=[tf.TensorSpec([None, time, 2], tf.float32)],
        )
        with _PATHS[path]():
            return function.get_concrete_function()

    one_chunk = _matmuls(traced(None))
    assert one_chunk > 0
    magnitude = spec.output == 'magnitude'
    assert sizes == ([[None]] if magnitude else [])
    for frames in [builtin.CHUNK_FRAMES, 2 * builtin.CHUNK_FRAMES, 3 * builtin.CHUNK_FRAMES + 1]:
        sizes.clear()
        concrete = traced(_samples_for(spec, frames, np.random.default_rng(frames)))
        time_axis = 2 if spec.output_data_format == 'channels_first' else 1
        assert concrete.output_shapes[time_axis] == frames
        count = -(-frames // builtin.CHUNK_FRAMES) if magnitude else 1
        assert _matmuls(concrete) == count * one_chunk, (frames, count)
        if magnitude:
            (chunk_sizes,) = sizes  # traced once
            assert len(chunk_sizes) == count and sum(chunk_sizes) == frames
            assert max(chunk_sizes) - min(chunk_sizes) <= 1, chunk_sizes


@pytest.mark.parametrize('path', list(_PATHS))
@pytest.mark.parametrize(
    'family, framing, numerics, decibel',
    [
        ('melspectrogram', 'config B', 'kapre', True),
        ('log_frequency_spectrogram', 'strided', 'kapre pad_end', True),
        ('stft_magnitude', 'three stages', 'librosa', True),
        ('stft_magnitude', 'odd hop', 'torchaudio', False),
        ('melspectrogram', 'dense', 'kapre pad_begin pad_end', False),
    ],
)
def test_long_inputs_in_many_chunks_keep_the_fused_numbers(
    family, framing, numerics, decibel, path, speech_batch
):
    # More than 3 chunks of CHUNK_FRAMES: the builtin features against the fused op's.
    spec = _chunk_spec(family, framing, numerics, decibel, 'first > last')
    frames = 4 * builtin.CHUNK_FRAMES + 13
    x = _fading_speech(speech_batch, spec, _samples_for(spec, frames, np.random.default_rng(1)))
    with _PATHS[path]():
        ours = builtin.compute(spec, tf.constant(x)).numpy()
    fused = ops.compute(spec, x).numpy()
    assert ours.shape == fused.shape and ours.shape[1] == frames
    if decibel:
        error = decibel_error(ours, fused, percentile=100, within=50.0)
        record_agreement('builtin > 3 chunks vs fused, dB (top 50 dB)', error)
        assert error <= 0.01, error
    else:
        error = _frame_relative_error(ours, fused, spec)
        record_agreement("builtin > 3 chunks vs fused / frame's peak", error)
        assert error <= 1e-5, error


@pytest.mark.parametrize('path', list(_PATHS))
def test_chunked_gradient_equals_one_chunk(path, speech_batch, monkeypatch):
    # Samples that two chunks read (a frame's overlap with the next chunk's) get the gradients
    # of both: the gradient of 7-frame chunks is one chunk's, to float32 rounding.
    spec = _chunk_spec('melspectrogram', 'config B', 'kapre pad_end')
    x = tf.constant(_fading_speech(speech_batch, spec, 40 * spec.hop_length + 7))

    def gradient(chunk_frames):
        monkeypatch.setattr(builtin, 'CHUNK_FRAMES', chunk_frames)
        with tf.GradientTape() as tape, _PATHS[path]():
            tape.watch(x)
            total = tf.reduce_sum(builtin.compute(spec, x))
        return tape.gradient(total, x).numpy()

    chunked, whole = gradient(7), gradient(10**6)
    assert np.abs(whole).max() > 0
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())
