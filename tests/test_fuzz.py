"""Hostile input to every native entry point (pybind11 module and public NumPy API).

Every case must end in a clear Python exception (ValueError/TypeError, or the FrontEnd's
NotImplementedError/RuntimeError subclasses of ValueError) or in a correct-shaped result: never a
crash, hang or out-of-bounds access. The sanitizer job of CI runs this file under ASan+UBSan.
Examples per test are bounded (KAPRE_FAST_FUZZ_EXAMPLES, default 150) to keep CI short; a long
local run: KAPRE_FAST_FUZZ_EXAMPLES=100000 pytest tests/test_fuzz.py.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzzing import EVERY_SPECIAL, floats_and, fuzz_settings, int_attr  # noqa: E402
from helpers import contract_keywords  # noqa: E402
from kapre_fast import FrontEnd, _kernel_args, _loader, cpu  # noqa: E402

core = _loader.core()


@pytest.fixture(autouse=True, scope='module')
def small_output_limit():
    """Keep each fuzz case's output small: a huge request must be refused, not allocated."""
    before = core.output_limit()
    core.output_limit(64 << 20)
    yield
    core.output_limit(before)


FUZZ = fuzz_settings(150)
ACCEPTABLE = (ValueError, TypeError)

float_attr = floats_and(EVERY_SPECIAL)
dtypes = st.sampled_from([np.float32, np.float64, np.int32, np.complex64, np.float16])


@st.composite
def arrays(draw, max_ndim=4, max_side=700):
    ndim = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.integers(0, max_side if i == ndim - 1 else 5)) for i in range(ndim))
    dtype = draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 1e30]))
    if np.issubdtype(dtype, np.integer):
        a = rng.integers(-1000, 1000, shape).astype(dtype)
    else:
        with np.errstate(all='ignore'):  # 1e30 overflows float16 to inf: fine, that's input too
            a = (rng.standard_normal(shape) * scale).astype(dtype)
        if a.ndim and a.size and draw(st.booleans()):
            a[(0,) * a.ndim] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))
    layout = draw(st.sampled_from(['c', 'f', 'reversed', 'strided']))
    if layout == 'f':
        a = np.asfortranarray(a)
    elif layout == 'reversed' and a.ndim:
        a = a[..., ::-1]
    elif layout == 'strided' and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    return a


@st.composite
def band_arrays(draw):
    """int32 band starts/lengths, mostly plausible, sometimes negative, huge or mistyped."""
    n = draw(st.integers(0, 80))
    values = draw(
        st.lists(st.one_of(st.integers(-3, 300), st.just(2**31 - 1)), min_size=n, max_size=n)
    )
    return np.array(values, dtype=draw(st.sampled_from([np.int32, np.int32, np.int64])))


@FUZZ
@given(
    audio=arrays(),
    window=arrays(1, 700),
    starts=band_arrays(),
    lengths=band_arrays(),
    weights=arrays(1, 300),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    pad=int_attr,
    pad_end=st.booleans(),
    output=st.integers(-2, 4),
    decibel=st.booleans(),
    amin=float_attr,
    ref=float_attr,
    rng=float_attr,
    cf_in=st.booleans(),
    cf_out=st.booleans(),
    threads=st.integers(-1, 3),
    power=st.integers(-1, 3),
    multiplier=float_attr,
)
def test_raw_frontend_never_crashes(
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
    ref,
    rng,
    cf_in,
    cf_out,
    threads,
    power,
    multiplier,
):
    try:
        out = core.frontend(
            audio,
            window,
            starts,
            lengths,
            weights,
            threads=threads,
            **contract_keywords(
                n_fft,
                win,
                hop,
                pad,
                pad_end,
                output,
                decibel,
                amin,
                ref,
                rng,
                cf_in,
                cf_out,
                power,
                multiplier,
            ),
        )
    except (*ACCEPTABLE, OverflowError):
        return
    assert out.ndim == 4 and out.shape[0] == audio.shape[0]


# One valid mel/dB call (1 x 4000 samples: 23 frames x 64 mels) whose `out` the fuzzer picks.
_MEL_SPEC = FrontEnd.melspectrogram(
    n_fft=512, win_length=400, hop_length=160, sample_rate=16000, n_mels=64, return_decibel=True
)
_MEL_ARGS = dict(_kernel_args.of(_MEL_SPEC).asdict(), threads=2)
_MEL_AUDIO = np.random.default_rng(1).standard_normal((1, 4000, 1)).astype(np.float32)


def _raw_mel(out=None):
    start, length, weights = _MEL_SPEC.sparse_filterbank()
    return core.frontend(
        _MEL_AUDIO,
        _MEL_SPEC.window().astype(np.float32),
        start,
        length,
        weights,
        out=out,
        **_MEL_ARGS,
    )


@st.composite
def out_arrays(draw):
    """Anything as `out`: random arrays, or the right shape in any dtype and layout."""
    if draw(st.booleans()):
        return draw(arrays())
    a = np.zeros((1, 23, 64, 1), draw(dtypes))
    layout = draw(st.sampled_from(['c', 'f', 'reversed', 'read-only']))
    if layout == 'f':
        a = np.asfortranarray(a.reshape(23, 64)).reshape(1, 23, 64, 1)
    elif layout == 'reversed':
        a = a[:, ::-1]
    elif layout == 'read-only':
        a.setflags(write=False)
    return a


@FUZZ
@given(out=out_arrays())
def test_raw_frontend_out_is_used_or_refused(out):
    try:
        result = _raw_mel(out)
    except ACCEPTABLE:
        return
    assert result is out
    np.testing.assert_array_equal(out, _raw_mel())


@FUZZ
@given(
    stft=arrays(),
    window=arrays(1, 700),
    n_fft=int_attr,
    win=int_attr,
    hop=int_attr,
    cf_in=st.booleans(),
    cf_out=st.booleans(),
)
def test_raw_istft_never_crashes(stft, window, n_fft, win, hop, cf_in, cf_out):
    try:
        out = core.istft(stft, window, n_fft, win, hop, cf_in, cf_out, 1)
    except (*ACCEPTABLE, OverflowError):
        return
    assert out.ndim == 3


@FUZZ
@given(x=arrays(3, 300), n=int_attr)
def test_raw_ffts_never_crash(x, n):
    try:
        spectrum = core.rfft(x)
        assert spectrum.shape == (x.shape[0], x.shape[1] // 2 + 1)
        back = core.irfft(spectrum, n)
        assert back.shape == (x.shape[0], n)
    except (*ACCEPTABLE, OverflowError):
        return


@FUZZ
@given(
    audio=arrays(),
    family=st.sampled_from(
        ['stft_magnitude', 'melspectrogram', 'log_frequency_spectrogram', 'stft_mag_phase', 'stft']
    ),
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            'n_fft': int_attr,
            'win_length': int_attr,
            'hop_length': int_attr,
            'pad_begin': st.booleans(),
            'pad_end': st.booleans(),
            'window_name': st.sampled_from([None, 'hann_window', 'kaiser_window', 'bogus', 3]),
            'input_data_format': st.sampled_from(['channels_first', 'channels_last', 'x', None]),
            'return_decibel': st.booleans(),
            'db_amin': float_attr,
            'db_dynamic_range': float_attr,
        },
    ),
)
def test_public_functions_never_crash(audio, family, kwargs):
    if family == 'stft':
        for name in ('return_decibel', 'db_amin', 'db_dynamic_range'):
            kwargs.pop(name, None)
    try:
        out = getattr(cpu, family)(audio, threads=1, **kwargs)
    except (*ACCEPTABLE, OverflowError):
        return
    assert out.ndim == 4 and np.asarray(out).dtype in (np.float32, np.complex64)


@FUZZ
@given(
    features=arrays(),
    b=float_attr,
    gain=float_attr,
    bias=float_attr,
    power=float_attr,
    eps=float_attr,
    channels_first=st.booleans(),
    threads=st.integers(-1, 3),
    in_place=st.booleans(),
)
def test_raw_pcen_never_crashes(
    features, b, gain, bias, power, eps, channels_first, threads, in_place
):
    out = features if in_place else None
    try:
        result = core.pcen(features, b, gain, bias, power, eps, channels_first, threads, out=out)
    except (*ACCEPTABLE, OverflowError):
        return
    assert result.shape == features.shape and result.dtype == np.float32
    assert result is features if in_place else True
