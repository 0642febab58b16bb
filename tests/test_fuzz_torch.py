"""Hostile input to kapre_fast.torch's raw operators (torch.ops.kapre_fast.*, the compiled C++
of csrc/torch): any definition attributes and tables, any tensor, spec string and thread count
must end in a clear ValueError/TypeError or a result of the shape the attributes promise (and the
fake implementation's, for real front ends, which refuses the same calls with the same words):
never a crash or hang. Bounded like tests/test_fuzz.py (KAPRE_FAST_FUZZ_EXAMPLES)."""

import dataclasses
import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

import kapre_fast.torch  # noqa: E402  (loads the operator library)
from kapre_fast import FrontEnd  # noqa: E402
from test_fuzz import FUZZ, arrays, float_attr  # noqa: E402

ACCEPTABLE = (ValueError, TypeError)
FIELDS = [field.name for field in dataclasses.fields(FrontEnd)]
OPS = torch.ops.kapre_fast
_KEYS = itertools.count()  # a fresh key per definition: a key names one definition for good

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


@st.composite
def front_end_definitions(draw):
    """(window, band_start, band_length, band_weights) and the keyword attributes: a valid
    definition with up to three of its attributes or tables replaced by hostile ones."""
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
    hostile = dict(
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
    for name in draw(st.lists(st.sampled_from(sorted(hostile) + ['tables']), max_size=3)):
        if name == 'tables':
            at = draw(st.integers(0, 3))
            dtype = torch.int32 if at in (1, 2) else torch.float32
            tables[at] = draw(table(draw(st.integers(0, 8)), dtype))
        else:
            attributes[name] = draw(hostile[name])
    return tuple(tables), attributes


@st.composite
def waveforms(draw):
    """float32 batches of 3 axes (the operators' own input), sometimes of no samples at all."""
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 300)), draw(st.integers(0, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape).astype(np.float32)


def promised_shape(attributes, n_bands, audio_shape):
    """The features' shape the definition promises for audio it accepted."""
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
@given(definition=front_end_definitions(), audio=st.one_of(arrays(), waveforms()), threads=threads)
def test_raw_front_end_definitions_and_calls_never_crash(definition, audio, threads):
    tables, attributes = definition
    key = f'fuzz front end {next(_KEYS)}'
    try:
        OPS.define_front_end(key, *tables, **attributes)
    except ACCEPTABLE:
        with pytest.raises(ValueError, match='is not a defined front end'):
            OPS.front_end(torch.zeros(1, 700, 1), key, 0)  # nothing half-defined
        return
    tensor = torch.tensor(np.array(audio))  # a copy: hypothesis may hand odd strides
    try:
        result = OPS.front_end(tensor, key, threads)
    except ACCEPTABLE:
        return
    assert 0 <= threads <= 1024 and tensor.dtype == torch.float32
    assert tuple(result.shape) == promised_shape(attributes, tables[1].numel(), tensor.shape)
    assert result.dtype == (torch.complex64 if attributes['output'] == 2 else torch.float32)


@st.composite
def spec_keys(draw):
    """The key of a real front end (defined), a FrontEnd's JSON with hostile fields (never
    defined), or not JSON at all."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=40))
    spec = draw(
        st.sampled_from(
            [
                FrontEnd.melspectrogram(n_fft=64, hop_length=16, n_mels=8, sample_rate=8000),
                FrontEnd.stft(
                    n_fft=32,
                    win_length=24,
                    hop_length=7,
                    pad_begin=True,
                    input_data_format='channels_first',
                ),
                FrontEnd.stft_mag_phase(
                    n_fft=48,
                    hop_length=48,
                    pad_end=True,
                    return_decibel=True,
                    output_data_format='channels_first',
                ),
            ]
        )
    )
    if kind < 6:
        return kapre_fast.torch._ops.spec_key(spec)
    fields = dataclasses.asdict(spec)
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4)):
        fields[name] = draw(
            st.one_of(
                sizes,
                float_attr,
                st.none(),
                st.booleans(),
                st.sampled_from(['mel', 'x', 'channels_first']),
            )
        )
    return json.dumps(fields) + ' '  # never a canonical key


def outcome(operator, tensor, spec, threads):
    """(shape, dtype) of the result, or (exception type, message): what the caller sees."""
    try:
        result = operator(tensor, spec, threads)
    except ACCEPTABLE as error:
        return type(error), str(error)
    return tuple(result.shape), result.dtype


def outcomes_on_cpu_meta_and_fake(operator, tensor, spec, threads):
    """The operator's outcome on `tensor`, on a meta tensor of its sizes and strides, and on a
    fake tensor of it: the fake implementation's checks are the kernel's."""
    meta = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device='meta')
    with FakeTensorMode() as mode:
        fake = outcome(operator, mode.from_tensor(tensor), spec, threads)
    return (outcome(operator, tensor, spec, threads), outcome(operator, meta, spec, threads), fake)


@FUZZ
@given(audio=st.one_of(arrays(), waveforms()), spec=spec_keys(), threads=threads)
def test_raw_front_end_on_real_front_ends_matches_the_fake_implementation(audio, spec, threads):
    cpu, meta, fake = outcomes_on_cpu_meta_and_fake(
        OPS.front_end, torch.tensor(np.array(audio)), spec, threads
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
    key = kapre_fast.torch._ops.inverse_key(FrontEnd.inverted_by_istft(n_fft, hop_length=1))
    if transposed and tensor.ndim > 1:
        tensor = tensor.transpose(0, 1)  # a strided view: refused unless it is contiguous
    cpu, meta, fake = outcomes_on_cpu_meta_and_fake(OPS.inverse_stft, tensor, key, threads)
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
def test_raw_inverse_stft_definitions_and_calls_never_crash(
    window, n_fft, win_length, hop_length, layouts, stft, threads
):
    key = f'fuzz inverse {next(_KEYS)}'
    try:
        OPS.define_inverse_stft(
            key,
            window,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            input_channels_first=layouts[0],
            output_channels_first=layouts[1],
        )
    except ACCEPTABLE:
        return
    tensor = torch.tensor(np.array(stft))
    try:
        result = OPS.inverse_stft(tensor, key, threads)
    except ACCEPTABLE:
        return
    assert tensor.dtype == torch.complex64 and tensor.ndim == 4 and result.dtype == torch.float32
    frames = tensor.shape[2] if layouts[0] else tensor.shape[1]
    channels = tensor.shape[1] if layouts[0] else tensor.shape[3]
    length = (frames - 1) * hop_length + win_length
    expected = (channels, length) if layouts[1] else (length, channels)
    assert tuple(result.shape) == (tensor.shape[0],) + expected


def test_huge_shapes_without_memory_are_computed_or_refused():
    key = kapre_fast.torch._ops.spec_key(FrontEnd.stft_magnitude(n_fft=64, hop_length=1))
    # No samples to read, yet frame counts and output sizes near int64's range.
    for shape in [(0, 2**40, 1), (2**40, 0, 1), (1, 2**62, 0), (2**31, 64, 0)]:
        audio = torch.empty(shape)
        try:
            result = OPS.front_end(audio, key, 0)
        except ValueError as error:
            assert any(word in str(error) for word in ('too long', 'too large', 'samples'))
        else:
            assert result.numel() == 0
