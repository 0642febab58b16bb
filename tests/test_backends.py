"""kapre_fast.cpu and the TF op against the float64 reference, next to kapre 0.4.1.

The bar: on every grid case each native backend is no further from the float64 truth than
kapre itself is, within 2x (max and 99.9th percentile; magnitudes relative to each example's
peak; dB compared both as the magnitudes they stand for and in absolute dB over the top 50 dB),
plus a floor of a few float32 roundings for cases where kapre happens to be exact.
"""

import numpy as np
import pytest

from grid import CASES, make_batch
from helpers import (
    decibel_error,
    decibel_to_magnitude,
    kapre_output,
    phase_error,
    record_agreement,
    split_channels,
    stft_of,
)
from kapre_fast import cpu, reference

pytest.importorskip('kapre')

MAGNITUDE_FLOOR = 3e-7  # of the example's peak: a few float32 roundings
DECIBEL_FLOOR = 0.01  # dB
PHASE_FLOOR = 3e-4  # rad, where |X| > 1e-3 of the peak
DECIBEL_RANGE = 50.0


def _tf_op(spec, x):
    import tensorflow as tf

    from kapre_fast import ops

    return ops.front_end(tf.constant(x), spec).numpy()


def _builtin(spec, x):
    import tensorflow as tf

    from kapre_fast import builtin

    return builtin.front_end(tf.constant(x), spec).numpy()


def _torch(spec, x):
    torch = pytest.importorskip('torch')
    import kapre_fast.torch as kft

    return kft.compute(spec, torch.from_numpy(x), threads=2).numpy()


def _jax(spec, x):
    pytest.importorskip('jax')
    import kapre_fast.jax as kfj

    return np.asarray(kfj.compute(spec, x, threads=2))


BACKENDS = {
    'cpu': lambda spec, x: cpu.compute(spec, x, threads=2),
    'tf_op': _tf_op,
    'builtin': _builtin,
    'torch': _torch,
    'jax': _jax,
}


def _peak_relative(actual, truth):
    """(max, 99.9th percentile) over the worst example of |actual - truth| / example peak."""
    a = np.asarray(actual).reshape(len(actual), -1).astype(np.complex128)
    t = np.asarray(truth).reshape(len(truth), -1)
    peak = np.abs(t).max(axis=1, keepdims=True)
    error = np.abs(a - t) / np.where(peak > 0, peak, 1.0)
    return float(error.max()), float(np.percentile(error, 99.9, axis=1).max())


def _check(name, ours, kapre, truth, floor, metric):
    for label, o, k in zip(('max', 'p99.9'), metric(ours, truth), metric(kapre, truth)):
        record_agreement(f'{name} {label}', o)
        # The share of the allowed error used (must stay <= 1).
        record_agreement(f'{name} {label} / (2 kapre + floor)', o / (2 * k + floor))
        assert o <= 2 * k + floor, f'{name} {label}: ours {o:.3g} vs kapre {k:.3g}'


def _check_features(name, ours, kapre, truth, decibel):
    if decibel:
        as_magnitude = lambda a, t: _peak_relative(decibel_to_magnitude(a), decibel_to_magnitude(t))
        _check(f'{name} dB as |.|', ours, kapre, truth, MAGNITUDE_FLOOR, as_magnitude)
        top = lambda a, t: (decibel_error(a, t, within=DECIBEL_RANGE),) * 2
        _check(f'{name} dB (top 50 dB)', ours, kapre, truth, DECIBEL_FLOOR, top)
    else:
        _check(f'{name} |.|', ours, kapre, truth, MAGNITUDE_FLOOR, _peak_relative)


@pytest.fixture(scope='module')
def kapre_cache():
    return {}


@pytest.mark.parametrize('backend', sorted(BACKENDS))
@pytest.mark.parametrize('case', CASES, ids=str)
def test_backend_is_as_close_to_float64_as_kapre(
    case, backend, speech_batch, noise_batch, kapre_cache
):
    x, spec = make_batch(case, speech_batch, noise_batch)
    if str(case) not in kapre_cache:
        kapre_cache[str(case)] = kapre_output(case.family, x, **case.kwargs)
    assert_as_close_as_kapre(
        case, spec, x, BACKENDS[backend](spec, x), kapre_cache[str(case)], backend
    )


def assert_as_close_as_kapre(case, spec, x, ours, kapre, backend):
    """The bar of the module docstring for one grid case: `ours` (a backend's output on `x`)
    against the float64 reference, next to `kapre` (kapre's output on `x`)."""
    truth = reference.compute(spec, x)
    assert ours.shape == truth.shape == kapre.shape
    assert ours.dtype == (np.complex64 if case.family == 'stft' else np.float32)

    name = f'{backend} {case.family}'
    if case.family == 'stft':
        _check(f'{name} complex', ours, kapre, truth, MAGNITUDE_FLOOR, _peak_relative)
    elif case.family == 'stft_mag_phase':
        parts = [split_channels(y, 2, spec.output_data_format) for y in (ours, kapre, truth)]
        (ours_mag, ours_phase), (kapre_mag, kapre_phase), (truth_mag, truth_phase) = parts
        _check_features(name, ours_mag, kapre_mag, truth_mag, spec.return_decibel)
        magnitude = np.abs(reference.compute(stft_of(spec), x))
        phase = lambda a, t: (phase_error(a, t, magnitude),) * 2
        _check(f'{name} phase', ours_phase, kapre_phase, truth_phase, PHASE_FLOOR, phase)
    else:
        _check_features(name, ours, kapre, truth, spec.return_decibel)
