"""kapre_fast.builtin: the front ends in plain TensorFlow ops (for TFLite, ONNX, XLA, SavedModels
without our op library).

The whole grid runs through it in test_backends.py (backend 'builtin'); here: the grid with 3
channels, the inverse STFT against the float64 reference, the radix split, static shapes under
unknown batch and time, only-builtin op types, and finite gradients at digital silence.
"""

import contextlib
import dataclasses
import random

import numpy as np
import pytest

from grid import CASES, make_batch
from helpers import kapre_output, peak_relative_error, record_agreement

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
        (dict(n_fft=1024, hop_length=256), ((0, 32), (32, 64))),  # 64 x 16: shifts of 16
        (dict(n_fft=512, win_length=400, hop_length=160), ((0, 30),)),  # 32 x 16: shifts of 10
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
    assert builtin._fft_plan(FrontEnd.stft_magnitude(**kwargs)).parts == ((0, rows),)


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
@pytest.mark.parametrize(
    'framing', ['hop n_fft / 4', 'hop n_fft / 4, convolution', 'odd hop, short window']
)
def test_matmul_fft_equals_numpy_rfft(n_fft, framing):
    # Every framing: the strided one (r2 divides the hop), as slices or as the depthwise
    # convolution of convolution_first_stage (two-stage plans), and the gather (r2 does not
    # divide the hop), with a window shorter than n_fft (zero rows), pad_begin and pad_end.
    kwargs = _framing(n_fft, framing)
    spec = FrontEnd.stft(
        n_fft=n_fft,
        **kwargs,
        input_data_format='channels_last',
        output_data_format='channels_first',
    )
    x = np.random.default_rng(n_fft).standard_normal((2, 3 * n_fft + 5, 1)).astype(np.float32)
    convolution = framing.endswith('convolution')
    with builtin.convolution_first_stage() if convolution else contextlib.nullcontext():
        ours = builtin.front_end(tf.constant(x), spec).numpy()[:, 0]
    truth = _numpy_rfft(x, spec, ours.shape[1])
    assert ours.shape == truth.shape
    assert np.abs(ours - truth).max() <= 1e-6 * np.abs(truth).max()


@pytest.mark.parametrize('n_fft', FFT_SIZES)
@pytest.mark.parametrize('framing', ['hop n_fft / 4', 'odd hop, short window'])
def test_frames_last_magnitude_equals_numpy_rfft(n_fft, framing):
    # frames_last_stages (export.to_onnx): the magnitude of every plan, strided and gathered,
    # with fewer transposes in the graph where the FFT has stages.
    kwargs = _framing(n_fft, framing)
    spec = FrontEnd.stft_magnitude(
        n_fft=n_fft, **kwargs, input_data_format='channels_last', output_data_format='channels_last'
    )
    x = np.random.default_rng(n_fft).standard_normal((2, 3 * n_fft + 5, 1)).astype(np.float32)
    function = tf.function(lambda x: builtin.front_end(x, spec))
    plain = function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
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


_PATHS = {
    'slices': contextlib.nullcontext,
    'convolution': builtin.convolution_first_stage,
    'frames last': builtin.frames_last_stages,
}


@pytest.mark.parametrize('path', list(_PATHS))
def test_unknown_batch_and_time_keep_the_other_sizes_static(path):
    # config B's framing: its first stage is one sum of 30 samples (the convolution applies)
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
    operations = {op.type for op in concrete.graph.get_operations()}
    assert ('DepthwiseConv2dNative' in operations) == (path == 'convolution')
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
    'DepthwiseConv2dNative',  # convolution_first_stage (TFLite DEPTHWISE_CONV_2D, ONNX Conv)
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
