"""Hostile input to kapre_fast.torch's raw operators (torch.ops.kapre_fast.*, the compiled C++
of csrc/torch): any scalar arguments and tables, any tensor and thread count must end in a clear
ValueError/TypeError or a result of the shape the arguments promise (and the fake
implementation's, for real front ends' tables, which refuses the same calls with the same words):
never a crash or hang. Bounded like tests/test_fuzz.py (KAPRE_FAST_FUZZ_EXAMPLES)."""

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from kapre_fast import FrontEnd  # noqa: E402
from kapre_fast.torch._ops import (  # noqa: E402  (loads the operator library)
    FRONT_END_SCALARS,
    INVERSE_STFT_SCALARS,
    front_end_arguments,
    inverse_stft_arguments,
)
from test_fuzz import FUZZ, arrays, float_attr  # noqa: E402

ACCEPTABLE = (ValueError, TypeError)
OPS = torch.ops.kapre_fast

# Sizes: mostly small, sometimes absurd (past the core's limits, negative, past int32). Valid
# sizes stay below 600 so a fuzzed front end never computes a huge output.
sizes = st.one_of(st.integers(-3, 600), st.sampled_from([0, 1, 2**31 - 1, -(2**31), 2**40]))
threads = st.one_of(st.integers(-2, 3), st.just(2000))


@st.composite
def table(draw, length, dtype):
    """A 1-D table of `length` values of `dtype` (values from `draw`), or a hostile one: another
    dtype, length or rank."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        dtype = draw(st.sampled_from([torch.float64, torch.int64, torch.complex64]))
    elif kind == 1:
        length = draw(st.integers(0, 100))
    values = torch.tensor(
        draw(
            st.lists(
                st.floats(-2, 2) if dtype.is_floating_point else st.integers(-3, 40),
                min_size=length,
                max_size=length,
            )
        ),
        dtype=torch.float64,
    ).to(dtype)
    return values.reshape(1, -1) if kind == 2 else values


HOSTILE = dict(
    n_fft=sizes,
    win_length=sizes,
    hop_length=sizes,
    pad_begin=sizes,
    output=sizes,
    power=st.integers(-1, 3),
    db_multiplier=float_attr,
    amin=float_attr,
    ref_value=float_attr,
    dynamic_range=float_attr,
    decibel=st.booleans(),
)


def front_end(tensor, tables, attributes, threads):
    return OPS.front_end(
        tensor, *tables, *(attributes[name] for name in FRONT_END_SCALARS), threads
    )


@st.composite
def front_end_calls(draw):
    """(window, band_start, band_length, band_weights) and the scalar arguments by name: a valid
    call's with up to three of its scalars or tables replaced by hostile ones."""
    n_fft = draw(st.integers(2, 128))
    win_length = draw(st.integers(1, n_fft))
    output = draw(st.integers(0, 2))
    attributes = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=draw(st.integers(1, 64)),
        pad_begin=draw(st.integers(0, 64)),
        pad_end=draw(st.booleans()),
        output=output,
        power=1 if output == 2 else draw(st.integers(1, 2)),
        decibel=output != 2 and draw(st.booleans()),
        db_multiplier=draw(st.sampled_from([10.0, 20.0])),
        amin=draw(st.floats(1e-10, 1.0)),
        ref_value=draw(st.floats(1e-3, 10.0)),
        dynamic_range=draw(st.floats(1.0, 120.0)),
        input_channels_first=draw(st.booleans()),
        output_channels_first=draw(st.booleans()),
    )
    n_freq = n_fft // 2 + 1
    n_bands = 0 if output == 2 else draw(st.integers(0, 6))
    starts = [draw(st.integers(0, n_freq - 1)) for _ in range(n_bands)]
    lengths = [draw(st.integers(1, n_freq - start)) for start in starts]
    tables = [
        torch.tensor(
            draw(st.lists(st.floats(-2, 2), min_size=win_length, max_size=win_length)),
            dtype=torch.float32,
        ),
        torch.tensor(starts, dtype=torch.int32),
        torch.tensor(lengths, dtype=torch.int32),
        torch.rand(sum(lengths), generator=torch.Generator().manual_seed(n_fft)),
    ]
    for name in draw(st.lists(st.sampled_from(sorted(HOSTILE) + ['tables']), max_size=3)):
        if name == 'tables':
            at = draw(st.integers(0, 3))
            dtype = torch.int32 if at in (1, 2) else torch.float32
            tables[at] = draw(table(draw(st.integers(0, 8)), dtype))
        else:
            attributes[name] = draw(HOSTILE[name])
    return tuple(tables), attributes


@st.composite
def waveforms(draw):
    """float32 batches of 3 axes (the operators' own input), sometimes of no samples at all."""
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 300)), draw(st.integers(0, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape).astype(np.float32)


def promised_shape(attributes, n_bands, audio_shape):
    """The features' shape the arguments promise for audio the kernel accepted."""
    if attributes['input_channels_first']:
        batch, channels, time = audio_shape
    else:
        batch, time, channels = audio_shape
    total = time + attributes['pad_begin']
    hop = attributes['hop_length']
    frames = (
        -(-total // hop) if attributes['pad_end'] else 1 + (total - attributes['win_length']) // hop
    )
    features = n_bands or attributes['n_fft'] // 2 + 1
    channels *= 2 if attributes['output'] == 1 else 1
    if attributes['output_channels_first']:
        return (batch, channels, frames, features)
    return (batch, frames, features, channels)


@FUZZ
@given(call=front_end_calls(), audio=st.one_of(arrays(), waveforms()), threads=threads)
def test_raw_front_end_calls_never_crash(call, audio, threads):
    tables, attributes = call
    tensor = torch.tensor(np.array(audio))  # a copy: hypothesis may hand odd strides
    try:
        result = front_end(tensor, tables, attributes, threads)
    except ACCEPTABLE:
        return
    assert 0 <= threads <= 1024 and tensor.dtype == torch.float32
    assert tuple(result.shape) == promised_shape(attributes, tables[1].numel(), tensor.shape)
    assert result.dtype == (torch.complex64 if attributes['output'] == 2 else torch.float32)


SPECS = [
    FrontEnd.melspectrogram(n_fft=64, hop_length=16, n_mels=8, sample_rate=8000),
    FrontEnd.stft(
        n_fft=32, win_length=24, hop_length=7, pad_begin=True, input_data_format='channels_first'
    ),
    FrontEnd.stft_mag_phase(
        n_fft=48,
        hop_length=48,
        pad_end=True,
        return_decibel=True,
        output_data_format='channels_first',
    ),
]


@st.composite
def real_front_end_calls(draw):
    """A real front end's tables and scalars, up to three scalars replaced by hostile ones (but
    n_fft where there are bands: whether they fit n_fft's bins is decided by their values, which
    a fake implementation cannot read)."""
    arguments = front_end_arguments(draw(st.sampled_from(SPECS)))
    tables, attributes = arguments[:4], dict(zip(FRONT_END_SCALARS, arguments[4:]))
    names = sorted(set(HOSTILE) - ({'n_fft'} if tables[1].numel() else set()))
    for name in draw(st.lists(st.sampled_from(names), max_size=3)):
        attributes[name] = draw(HOSTILE[name])
    return tables, attributes


def outcome(run):
    """(shape, dtype) of the result, or (exception type, message): what the caller sees."""
    try:
        result = run()
    except ACCEPTABLE as error:
        return type(error), str(error)
    return tuple(result.shape), result.dtype


def outcomes_on_cpu_meta_and_fake(call, tensor, tables, rest):
    """call(tensor, tables, rest)'s outcome on `tensor`, on a meta tensor of its sizes and
    strides, and on fake tensors of it and of the tables: the fake implementation's checks are
    the kernel's."""
    meta = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device='meta')
    with FakeTensorMode() as mode:
        fakes = [mode.from_tensor(table) for table in tables]
        fake = outcome(lambda: call(mode.from_tensor(tensor), fakes, rest))
    return (
        outcome(lambda: call(tensor, tables, rest)),
        outcome(lambda: call(meta, tables, rest)),
        fake,
    )


@FUZZ
@given(audio=st.one_of(arrays(), waveforms()), call=real_front_end_calls(), threads=threads)
def test_raw_front_end_on_real_front_ends_matches_the_fake_implementation(audio, call, threads):
    tables, attributes = call
    cpu, meta, fake = outcomes_on_cpu_meta_and_fake(
        lambda tensor, tables, rest: front_end(tensor, tables, rest, threads),
        torch.tensor(np.array(audio)),
        tables,
        attributes,
    )
    assert meta == cpu and fake == cpu


@st.composite
def stfts(draw):
    """(n_fft, STFT): complex64 tensors of 4 axes (batch, frames, bins, channels) with the bins
    n_fft needs or one more or less, sometimes no frames; or any array of arrays() (complex64 if
    it is floating point)."""
    n_fft = draw(st.sampled_from([2, 4, 8, 64]))
    if draw(st.integers(0, 3)) == 0:
        tensor = torch.tensor(np.array(draw(arrays(max_side=40))))
        return n_fft, tensor.to(torch.complex64) if tensor.is_floating_point() else tensor
    shape = (
        draw(st.integers(0, 3)),
        draw(st.integers(0, 6)),
        n_fft // 2 + 1 + draw(st.sampled_from([0, 0, 0, -1, 1])),
        draw(st.integers(0, 3)),
    )
    return n_fft, torch.randn(
        shape,
        dtype=torch.complex64,
        generator=torch.Generator().manual_seed(draw(st.integers(0, 99))),
    )


@FUZZ
@given(stft=stfts(), transposed=st.booleans(), threads=st.one_of(st.integers(0, 2), threads))
def test_raw_inverse_stft_matches_the_fake_implementation(stft, transposed, threads):
    n_fft, tensor = stft
    window, *scalars = inverse_stft_arguments(FrontEnd.inverted_by_istft(n_fft, hop_length=1))
    if transposed and tensor.ndim > 1:
        tensor = tensor.transpose(0, 1)  # a strided view: refused unless it is contiguous
    cpu, meta, fake = outcomes_on_cpu_meta_and_fake(
        lambda tensor, tables, rest: OPS.inverse_stft(tensor, *tables, *rest, threads),
        tensor,
        [window],
        scalars,
    )
    assert meta == cpu and fake == cpu


@FUZZ
@given(
    window=table(40, torch.float32),
    n_fft=sizes,
    win_length=st.one_of(st.just(40), sizes),
    hop_length=sizes,
    layouts=st.tuples(st.booleans(), st.booleans()),
    stft=arrays(),
    threads=threads,
)
def test_raw_inverse_stft_calls_never_crash(
    window, n_fft, win_length, hop_length, layouts, stft, threads
):
    scalars = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        input_channels_first=layouts[0],
        output_channels_first=layouts[1],
    )
    tensor = torch.tensor(np.array(stft))
    try:
        result = OPS.inverse_stft(
            tensor, window, *(scalars[name] for name in INVERSE_STFT_SCALARS), threads
        )
    except ACCEPTABLE:
        return
    assert tensor.dtype == torch.complex64 and tensor.ndim == 4 and result.dtype == torch.float32
    frames = tensor.shape[2] if layouts[0] else tensor.shape[1]
    channels = tensor.shape[1] if layouts[0] else tensor.shape[3]
    length = (frames - 1) * hop_length + win_length
    expected = (channels, length) if layouts[1] else (length, channels)
    assert tuple(result.shape) == (tensor.shape[0],) + expected


def test_huge_shapes_without_memory_are_computed_or_refused():
    arguments = front_end_arguments(FrontEnd.stft_magnitude(n_fft=64, hop_length=1))
    # No samples to read, yet frame counts and output sizes near int64's range.
    for shape in [(0, 2**40, 1), (2**40, 0, 1), (1, 2**62, 0), (2**31, 64, 0)]:
        audio = torch.empty(shape)
        try:
            result = OPS.front_end(audio, *arguments, 0)
        except ValueError as error:
            assert any(word in str(error) for word in ('too long', 'too large', 'samples'))
        else:
            assert result.numel() == 0
