"""Hostile input to kapre_fast.torch's raw operators (torch.ops.kapre_fast.*): any tensor, any
spec string, any thread count must end in a clear ValueError/TypeError (or RuntimeError that
PyTorch raises for an impossible call) or a result of the shape the fake implementation promises:
never a crash or hang. Bounded like tests/test_fuzz.py (KAPRE_FAST_FUZZ_EXAMPLES)."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

import kapre_fast.torch  # noqa: E402, F401  (registers the operators)
from kapre_fast import FrontEnd  # noqa: E402
from test_fuzz import FUZZ, arrays, float_attr, int_attr  # noqa: E402

ACCEPTABLE = (ValueError, TypeError)
FIELDS = [field.name for field in dataclasses.fields(FrontEnd)]


@st.composite
def spec_strings(draw):
    """A FrontEnd's JSON with some fields replaced by hostile values, or not JSON at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    fields = dataclasses.asdict(FrontEnd.melspectrogram(n_fft=64, hop_length=16, n_mels=8,
                                                        sample_rate=8000))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        fields[name] = draw(st.one_of(int_attr, float_attr, st.none(), st.booleans(),
                                      st.sampled_from(['mel', 'log', 'none', 'complex', 'x',
                                                       'channels_first', 'mag_phase'])))
    if draw(st.booleans()):
        fields['unknown_field'] = 1
    return json.dumps(fields)


@FUZZ
@given(audio=arrays(), spec=spec_strings(), threads=st.integers(-2, 3))
def test_raw_front_end_never_crashes(audio, spec, threads):
    tensor = torch.tensor(np.array(audio))  # a copy: hypothesis may hand odd strides
    try:
        result = torch.ops.kapre_fast.front_end(tensor, spec, threads)
    except ACCEPTABLE:
        return
    with FakeTensorMode() as mode:
        fake = torch.ops.kapre_fast.front_end(mode.from_tensor(tensor), spec, threads)
    assert (tuple(fake.shape), fake.dtype) == (tuple(result.shape), result.dtype)


@FUZZ
@given(stft=arrays(), spec=spec_strings(), threads=st.integers(-2, 3))
def test_raw_inverse_stft_never_crashes(stft, spec, threads):
    tensor = torch.tensor(np.array(stft))
    try:
        torch.ops.kapre_fast.inverse_stft(tensor, spec, threads)
    except ACCEPTABLE:
        return
