"""Hostile input to the GPU path's PCEN entry points, run on the host emulation (no GPU needed):
kapre_fast._gpu_emulation.pcen (NumPy arrays) and pcen_raw (kapre_fast._cuda.pcen's signature on
host addresses). As tests/test_fuzz.py: every case ends in a clear ValueError/TypeError (or
OverflowError for an int beyond int64) or a correct-shaped result, never a crash or an
out-of-bounds access. Examples per test: KAPRE_FAST_FUZZ_EXAMPLES (default 150).
"""

import numpy as np
import pytest

emulation = pytest.importorskip(
    'kapre_fast._gpu_emulation', reason='kapre_fast was built without its GPU emulation module'
)
hypothesis = pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzzing import EVERY_SPECIAL, floats_and, fuzz_settings  # noqa: E402

FUZZ = fuzz_settings(150)
float_attr = floats_and(EVERY_SPECIAL)
int_size = st.one_of(st.integers(-3, 6), st.sampled_from([2**31, 2**40, 2**62]))


@st.composite
def mels(draw):
    ndim = draw(st.integers(2, 5))
    shape = tuple(draw(st.integers(0, 6)) for _ in range(ndim))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.int32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = (rng.random(shape) * draw(st.sampled_from([0.0, 1e-30, 1.0, 1e30]))).astype(dtype)
    if draw(st.booleans()) and a.ndim:
        a = a[..., ::-1]
    return a


@FUZZ
@given(
    mel=mels(),
    b=float_attr,
    gain=float_attr,
    bias=float_attr,
    power=float_attr,
    eps=float_attr,
    channels_first=st.booleans(),
)
def test_emulated_pcen_never_crashes(mel, b, gain, bias, power, eps, channels_first):
    try:
        out = emulation.pcen(mel, b, gain, bias, power, eps, channels_first=channels_first)
    except (ValueError, TypeError):
        return
    assert out.shape == mel.shape and out.dtype == np.float32


@FUZZ
@given(
    sizes=st.tuples(int_size, int_size, int_size, int_size),
    b=float_attr,
    gain=float_attr,
    eps=float_attr,
    null=st.booleans(),
)
def test_raw_pcen_checks_sizes_before_touching_memory(sizes, b, gain, eps, null):
    """Sizes that the 1024-float buffer holds run; any other sizes must be refused before a
    byte is read, except valid ones, which are kept out (the raw pointer has no length)."""
    buffer = np.ones(1024, np.float32)
    batch, channels, frames, features = sizes
    valid = min(sizes) >= 0
    elements = batch * channels * frames * features
    if (
        valid
        and elements > buffer.size
        and (elements < 2**60 and batch * channels * features < 2**60)
    ):
        return  # a legal call on memory the pointer does not have: the caller's contract
    strides = dict(sb=channels * frames * features, sc=frames * features, sf=features, sk=1)
    args = dict(
        mel=0 if null else buffer.__array_interface__['data'][0],
        batch=batch,
        channels=channels,
        frames=frames,
        features=features,
        b=b,
        gain=gain,
        bias=2.0,
        power=0.5,
        eps=eps,
        sm_count=4,
        device=0,
        stream=0,
        **{k: min(v, 2**62) for k, v in strides.items()},
    )
    try:
        emulation.pcen_raw(**args)
    except (ValueError, TypeError, OverflowError):
        return
    assert valid and elements <= buffer.size
