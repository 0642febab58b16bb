"""MFCC inside the native pass (issue #15): kapre_fast.cpu.mfcc applies the DCT to each
example's clamped dB mel rows (_core.frontend's `dct`); it must equal the dB mel times the DCT
matrix to float32 rounding, at every instruction set, layout and thread count, and the raw
binding must refuse a matrix that does not fit before touching memory."""

import numpy as np
import pytest

from helpers import peak_relative_error, to_input_layout
from kapre_fast import _kernel_args, _loader, _weights, cpu, reference
from kapre_fast.spec import FrontEnd, mfcc_matrix

core = _loader.core()
ISAS = [isa for isa in ('avx512', 'avx2', 'sse2') if core.force_isa(isa)]
core.force_isa('')

# float32 sums of 128 products of the same inputs in another order: a few ulp of the peak.
FLOAT32_TOLERANCE = 2e-6
MEL = dict(n_fft=512, win_length=400, hop_length=160, sample_rate=16000, n_mels=40)


def _product(mel, matrix, data_format):
    """The previous implementation: the dB mel (float32) times the matrix, in float64."""
    mel = mel.astype(np.float64)
    if data_format == 'channels_last':
        return np.einsum('bfmc,mk->bfkc', mel, matrix)
    return mel @ matrix


@pytest.mark.parametrize('isa', ISAS)
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
@pytest.mark.parametrize('compat, n_mfcc, lifter', [('kapre', 13, 0), ('librosa', 40, 22)])
def test_fused_dct_is_the_product_of_the_decibel_mel(
    isa, data_format, compat, n_mfcc, lifter, noise_batch
):
    # 3 examples of 2 channels, 4000 samples: 22 frames, not a multiple of any ISA's lanes.
    x = to_input_layout(
        noise_batch(n_examples=3, n_samples=4000, n_channels=2, seed=3), data_format
    )
    kwargs = dict(MEL, compat=compat, input_data_format=data_format, output_data_format=data_format)
    if compat == 'librosa':
        kwargs.pop('win_length')
    assert core.force_isa(isa)
    try:
        mel = cpu.melspectrogram(x, return_decibel=True, **kwargs)
        outputs = [cpu.mfcc(x, n_mfcc=n_mfcc, lifter=lifter, threads=t, **kwargs) for t in (1, 2)]
    finally:
        core.force_isa('')
    np.testing.assert_array_equal(outputs[0], outputs[1])
    expected = _product(mel, mfcc_matrix(n_mfcc, 40, lifter), data_format)
    assert outputs[0].dtype == np.float32 and outputs[0].shape == expected.shape
    assert peak_relative_error(outputs[0], expected) <= FLOAT32_TOLERANCE
    truth = reference.mfcc(x, n_mfcc=n_mfcc, lifter=lifter, **kwargs)
    assert peak_relative_error(outputs[0], truth) <= 1e-5


def test_the_clamp_comes_before_the_dct_and_nan_spreads_over_its_example(noise_batch):
    """Digital silence sits at the clamp floor (so the DCT must see clamped values); a NaN
    sample makes its whole example NaN, as kapre's clamp does, and leaves the others."""
    x = to_input_layout(
        noise_batch(n_examples=2, n_samples=4000, n_channels=1, seed=5), 'channels_last'
    )
    x[:, 1000:2500] = 0.0
    mel = cpu.melspectrogram(x, return_decibel=True, db_dynamic_range=30.0, **MEL)
    assert (mel == mel.max(axis=(1, 2, 3), keepdims=True) - 30.0).any()  # the clamp binds
    ours = cpu.mfcc(x, db_dynamic_range=30.0, **MEL)
    assert (
        peak_relative_error(ours, _product(mel, mfcc_matrix(20, 40), 'channels_last'))
        <= FLOAT32_TOLERANCE
    )
    x[1, 300, 0] = np.nan
    ours = cpu.mfcc(x, db_dynamic_range=30.0, **MEL)
    assert np.isnan(ours[1]).all() and np.isfinite(ours[0]).all()


def _raw(x, dct, **overrides):
    spec = FrontEnd.melspectrogram(return_decibel=True, **MEL)
    start, length, weights = _weights.bands(spec)
    return core.frontend(
        x,
        _weights.window(spec),
        start,
        length,
        weights,
        **_kernel_args.of(spec).replace(**overrides).asdict(),
        threads=1,
        dct=dct,
    )


@pytest.mark.parametrize(
    'dct, overrides, error, message',
    [
        (
            np.zeros((39, 13), np.float32),
            {},
            ValueError,
            'MFCC matrix has 39 rows but the filterbank has 40 bands',
        ),
        (np.zeros((40, 41), np.float32), {}, ValueError, r'n_mfcc must be in \[1, 40\].*got 41'),
        (np.zeros((40, 0), np.float32), {}, ValueError, r'n_mfcc must be in \[1, 40\].*got 0'),
        (
            np.zeros((40, 13), np.float64),
            {},
            TypeError,
            'dct must be a float32 array, got dtype float64',
        ),
        (np.zeros(40, np.float32), {}, ValueError, 'dct must be a C-contiguous 2-D'),
        (np.zeros((13, 40), np.float32).T, {}, ValueError, 'dct must be a C-contiguous 2-D'),
        (
            np.zeros((40, 13), np.float32),
            dict(decibel=False),
            ValueError,
            'MFCC needs a filterbank and decibel',
        ),
    ],
)
def test_raw_binding_refuses_a_matrix_that_does_not_fit(dct, overrides, error, message):
    x = np.zeros((1, 4000, 1), np.float32)
    assert _raw(x, np.zeros((40, 13), np.float32)).shape == (1, 23, 13, 1)
    with pytest.raises(error, match=message):
        _raw(x, dct, **overrides)
