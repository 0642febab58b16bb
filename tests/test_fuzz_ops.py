"""Hostile input to the TensorFlow ops called directly (as tf.raw_ops would), bypassing the
Python wrappers' checks: every case ends in InvalidArgumentError (or TypeError/ValueError from
TensorFlow's own attribute checks) or a correct-shaped result, never a crash. The op library
has its own copy of the output limit: conftest.py sets it through
KAPRE_FAST_MAX_OUTPUT_BYTES before the library loads, so huge requests are refused here too."""

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')
hypothesis = pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzzing import floats_and, fuzz_settings, int_attr  # noqa: E402

from kapre_fast import ops  # noqa: E402

lib = ops.library()
FUZZ = fuzz_settings(60)
ACCEPTABLE = (
    tf.errors.InvalidArgumentError,
    tf.errors.ResourceExhaustedError,
    TypeError,
    ValueError,
    OverflowError,
)
float_attr = floats_and([0.0, float('nan'), float('inf')])
formats = st.sampled_from(['channels_last', 'channels_first'])


@st.composite
def tensors(draw, dtype, max_ndim=4, max_side=600):
    ndim = draw(st.integers(0, max_ndim))
    shape = [draw(st.integers(0, max_side if i == ndim - 1 else 4)) for i in range(ndim)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == np.int32:
        return rng.integers(-5, 600, shape).astype(np.int32)
    values = rng.standard_normal(shape)
    if dtype == np.complex64:
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


@FUZZ
@given(
    audio=tensors(np.float32),
    window=tensors(np.float32, 1),
    starts=tensors(np.int32, 1, 80),
    lengths=tensors(np.int32, 1, 80),
    weights=tensors(np.float32, 1, 300),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    pad=int_attr,
    pad_end=st.booleans(),
    output=st.sampled_from(['magnitude', 'mag_phase']),
    decibel=st.booleans(),
    amin=float_attr,
    dr=float_attr,
    fin=formats,
    fout=formats,
)
def test_raw_front_end_op_never_crashes(
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
    decibel,
    amin,
    dr,
    fin,
    fout,
):
    try:
        out = lib.kapre_fast_front_end(
            audio,
            window,
            starts,
            lengths,
            weights,
            n_fft=n_fft,
            win_length=win,
            hop_length=hop,
            pad_begin=pad,
            pad_end=pad_end,
            output=output,
            decibel=decibel,
            amin=amin,
            dynamic_range=dr,
            input_format=fin,
            output_format=fout,
        )
    except ACCEPTABLE:
        return
    assert out.shape.rank == 4


@FUZZ
@given(
    audio=tensors(np.float32),
    window=tensors(np.float32, 1),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    pad=int_attr,
    pad_end=st.booleans(),
    fin=formats,
    fout=formats,
)
def test_raw_stft_op_never_crashes(audio, window, n_fft, win, hop, pad, pad_end, fin, fout):
    try:
        out = lib.kapre_fast_stft(
            audio,
            window,
            n_fft=n_fft,
            win_length=win,
            hop_length=hop,
            pad_begin=pad,
            pad_end=pad_end,
            input_format=fin,
            output_format=fout,
        )
    except ACCEPTABLE:
        return
    assert out.dtype == tf.complex64 and out.shape.rank == 4


@FUZZ
@given(
    stft=tensors(np.complex64),
    window=tensors(np.float32, 1),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    fin=formats,
    fout=formats,
)
def test_raw_inverse_stft_op_never_crashes(stft, window, n_fft, win, hop, fin, fout):
    try:
        out = lib.kapre_fast_inverse_stft(
            stft,
            window,
            n_fft=n_fft,
            win_length=win,
            hop_length=hop,
            input_format=fin,
            output_format=fout,
        )
    except ACCEPTABLE:
        return
    assert out.shape.rank == 3
