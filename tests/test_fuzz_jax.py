"""Hostile input to the raw XLA FFI targets of kapre_fast.jax (jax.ffi.ffi_call straight to the
handlers, bypassing kapre_fast.jax's checks): any audio/STFT shape and dtype, any attribute
values (and, sometimes, attributes of the wrong type), any declared result shape. Every case must
end in an error (JaxRuntimeError carrying the handler's INVALID_ARGUMENT, or jax's own
TypeError/ValueError) or in the result the NumPy module computes: never a crash. The handler
module has its own copy of the output limit, set by conftest.py's KAPRE_FAST_MAX_OUTPUT_BYTES.

When the declared result shape is wrong, the handler's message names the right one; the test
then calls again with that shape, so every case that passes the checks also runs the kernel.
Declared shapes have no zero-sized axis: XLA never runs a call whose result is empty.
"""

import re

import numpy as np
import pytest

jax = pytest.importorskip('jax')
hypothesis = pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzzing import floats_and, fuzz_settings, int_attr  # noqa: E402

import jax.numpy as jnp  # noqa: E402

from kapre_fast import _kernel_args, _loader  # noqa: E402
from kapre_fast.jax import _ops  # noqa: E402  (registers the targets)

core = _loader.core()
FUZZ = fuzz_settings(60)
ACCEPTABLE = (jax.errors.JaxRuntimeError, TypeError, ValueError, OverflowError)
float_attr = floats_and([0.0, float('nan'), float('inf')])
EXPECTED = re.compile(r'result must be (\w+) of shape \(([\d, ]*)\)')


@st.composite
def arrays(draw, dtypes, max_ndim=5, max_side=600):
    ndim = draw(st.integers(0, max_ndim))
    shape = [draw(st.integers(0, max_side if i == ndim - 1 else 4)) for i in range(ndim)]
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-5, 600, shape).astype(dtype)
    values = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def typed(draw, value, numpy_type):
    """The attribute as the handler decodes it, or (sometimes) as a wrong type."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from([np.float32(1.0), np.int32(3), 'text', np.bool_(True)]))
    return numpy_type(value)


def call_until_shaped(target, operand, dtype, shape, attrs):
    """Calls the target declaring `shape`; when the handler names another result shape, calls
    again with that one. Returns the result (a NumPy array)."""
    try:
        call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, dtype))
        return np.asarray(call(operand, **attrs))
    except jax.errors.JaxRuntimeError as error:
        named = EXPECTED.search(str(error))
        if named is None:
            raise
        shape = tuple(int(size) for size in named.group(2).split(',') if size.strip())
        call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, named.group(1)))
        return np.asarray(call(operand, **attrs))


@FUZZ
@given(
    data=st.data(),
    audio=arrays([np.float32, np.float32, np.int32, np.complex64]),
    window=arrays([np.float32], 1),
    starts=arrays([np.int32], 1, 80),
    lengths=arrays([np.int32], 1, 80),
    weights=arrays([np.float32], 1, 300),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    pad=int_attr,
    pad_end=st.booleans(),
    output=st.integers(-1, 3),
    power=int_attr,
    decibel=st.booleans(),
    multiplier=float_attr,
    amin=float_attr,
    dr=float_attr,
    cf_in=st.booleans(),
    cf_out=st.booleans(),
    threads=st.integers(-1, 3),
    declared=st.lists(st.integers(1, 50), max_size=5),
)
def test_raw_front_end_target_never_crashes(
    data,
    audio,
    window,
    starts,
    lengths,
    weights,
    n_fft,
    win,
    hop,
    pad,
    pad_end,
    output,
    power,
    decibel,
    multiplier,
    amin,
    dr,
    cf_in,
    cf_out,
    threads,
    declared,
):
    draw = data.draw
    if draw(st.booleans()):  # a plausible call, so that many cases get through to the kernel
        win, n_fft = draw(st.integers(1, 64)), draw(st.integers(2, 128))
        hop = draw(st.integers(1, 40))
        window = np.hanning(win).astype(np.float32)
        starts = lengths = np.zeros(0, np.int32)
        weights = np.zeros(0, np.float32)
        output, amin, dr = draw(st.integers(0, 2)), 1e-5, 80.0
        power = 1 if output == 2 else draw(st.integers(1, 2))  # a preset's power spectrum
        multiplier = draw(st.sampled_from([10.0, 20.0]))
        decibel = decibel and output != 2
        leading = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))  # batch, vmap axes
        time, channels = draw(st.integers(0, 400)), draw(st.integers(0, 3))
        shape = leading + ([channels, time] if cf_in else [time, channels])
        audio = np.random.default_rng(time).standard_normal(shape).astype(np.float32)
    attrs = dict(
        n_fft=typed(draw, n_fft, np.int64),
        win_length=typed(draw, win, np.int64),
        hop_length=np.int64(hop),
        pad_begin=np.int64(pad),
        pad_end=np.bool_(pad_end),
        output=np.int64(output),
        power=typed(draw, power, np.int64),
        decibel=np.bool_(decibel),
        db_multiplier=np.float32(multiplier),
        amin=np.float32(amin),
        ref_value=np.float32(1.0),
        dynamic_range=np.float32(dr),
        input_channels_first=np.bool_(cf_in),
        output_channels_first=np.bool_(cf_out),
        threads=np.int64(threads),
        window=window,
        band_start=starts,
        band_length=lengths,
        band_weights=weights,
    )
    dtype = jnp.complex64 if output == 2 else jnp.float32
    try:
        ours = call_until_shaped(_ops.FRONT_END_TARGET, audio, dtype, tuple(declared), attrs)
    except ACCEPTABLE:
        return
    # Accepted: the same numbers as the NumPy module on the same (4-D-or-less) problem.
    if audio.ndim == 3:
        # The same kernel-call contract, by the same names.
        contract = {name: attrs[name] for name in _kernel_args.NAMES}
        theirs = core.frontend(audio, window, starts, lengths, weights, threads=1, **contract)
        np.testing.assert_array_equal(ours, theirs)
    assert ours.ndim == audio.ndim + 1


@FUZZ
@given(
    data=st.data(),
    stft=arrays([np.complex64, np.complex64, np.float32]),
    window=arrays([np.float32], 1),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    cf_in=st.booleans(),
    cf_out=st.booleans(),
    threads=st.integers(-1, 3),
    declared=st.lists(st.integers(1, 50), max_size=4),
)
def test_raw_inverse_stft_target_never_crashes(
    data, stft, window, n_fft, win, hop, cf_in, cf_out, threads, declared
):
    attrs = dict(
        n_fft=typed(data.draw, n_fft, np.int64),
        win_length=np.int64(win),
        hop_length=np.int64(hop),
        input_channels_first=np.bool_(cf_in),
        output_channels_first=np.bool_(cf_out),
        threads=np.int64(threads),
        window=window,
    )
    try:
        ours = call_until_shaped(
            _ops.INVERSE_STFT_TARGET, stft, jnp.float32, tuple(declared), attrs
        )
    except ACCEPTABLE:
        return
    if stft.ndim == 4:
        np.testing.assert_array_equal(
            ours, core.istft(stft, window, n_fft, win, hop, cf_in, cf_out, 1)
        )
    assert ours.ndim == stft.ndim - 1
