"""The core's own real FFT (csrc/core/fft_*) against NumPy's float64 FFT.

Every size from 2 to 4096 forward and inverse, plus primes and sizes above 2^14, on every
instruction set this CPU runs (each set has its own compiled kernels)."""

import numpy as np
import pytest

from kapre_fast import _loader

core = _loader.core()
ISAS = [isa for isa in ('avx512', 'avx2', 'sse2') if core.force_isa(isa)]
core.force_isa('')

# Float32 FFT error grows ~ log2(n) * eps; this bound leaves room on top of that.
TOLERANCE = 4e-6


@pytest.fixture(params=ISAS)
def isa(request):
    assert core.force_isa(request.param)
    yield request.param
    core.force_isa('')


def _check_round_trip(n, rows, rng):
    x = rng.standard_normal((rows, n)).astype(np.float32)
    spectrum = core.rfft(x)
    expected = np.fft.rfft(x.astype(np.float64))
    forward_error = np.abs(spectrum - expected).max() / np.abs(expected).max()
    back = core.irfft(spectrum, n)
    inverse_error = np.abs(back - np.fft.irfft(spectrum.astype(np.complex128), n)).max()
    inverse_error /= np.abs(x).max()
    assert spectrum.shape == (rows, n // 2 + 1) and back.shape == (rows, n)
    assert forward_error < TOLERANCE, (n, forward_error)
    assert inverse_error < TOLERANCE, (n, inverse_error)


def test_every_size_up_to_4096(isa):
    rng = np.random.default_rng(1)
    # 19 rows: a full vector tile plus a ragged tail on every instruction set.
    for n in range(2, 4097):
        _check_round_trip(n, 19 if n < 1024 else 3, rng)


@pytest.mark.parametrize(
    'n',
    [4099, 8191, 8192, 12000, 16384, 16411, 24000, 32768, 44100, 65521, 65536],
)
def test_large_and_prime_sizes(n, isa):
    _check_round_trip(n, 5, np.random.default_rng(n))


def test_length_one_is_identity():
    x = np.array([[3.5], [-2.0]], np.float32)
    np.testing.assert_array_equal(core.rfft(x), x.astype(np.complex64))
    np.testing.assert_array_equal(core.irfft(x.astype(np.complex64), 1), x)


def test_inverse_ignores_imaginary_parts_at_dc_and_nyquist():
    # As numpy's irfft: a real signal's spectrum has none there, so they carry no information.
    rng = np.random.default_rng(3)
    for n in (16, 15):
        spectrum = rng.standard_normal((2, n // 2 + 1)) + 1j * rng.standard_normal((2, n // 2 + 1))
        spectrum = spectrum.astype(np.complex64)
        expected = np.fft.irfft(spectrum.astype(np.complex128), n)
        np.testing.assert_allclose(core.irfft(spectrum, n), expected, atol=1e-5)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match='FFT length'):
        core.rfft(np.zeros((2, 0), np.float32))
    with pytest.raises(ValueError, match='FFT length'):
        core.rfft(np.zeros((1, core.MAX_N_FFT + 1), np.float32))
    with pytest.raises(ValueError, match='columns'):
        core.irfft(np.zeros((2, 5), np.complex64), 16)
    with pytest.raises(TypeError, match='float32'):
        core.rfft(np.zeros((2, 8), np.float64))


def test_plan_cache_stays_bounded():
    for n in range(300, 400):
        core.rfft(np.ones((1, n), np.float32))
    # Real plans and the complex plans they share, each cache bounded on its own.
    assert core.plan_cache_size() <= 64
