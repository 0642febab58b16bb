"""mfcc (issue #15): the orthonormal DCT-II of the dB mel spectrogram in reference and cpu;
with compat='librosa' it is librosa.feature.mfcc (librosa 0.11, float64, one example at a time),
on real speech and on noise with digital silence."""

import numpy as np
import pytest

from helpers import check_keras_copy_and_gradient
from helpers import peak_relative_error, record_agreement, to_input_layout
from kapre_fast import cpu, reference
from kapre_fast.spec import mfcc_matrix

librosa = pytest.importorskip('librosa')

SAMPLE_RATE = 16000
# Shares of each example's peak coefficient: float64 reference (librosa's float32 mel weights)
# and the float32 kernel.
REFERENCE_TOLERANCE = 1e-6
CPU_TOLERANCE = 1e-5
CASES = [
    dict(n_fft=512, hop_length=128, n_mels=40, n_mfcc=13, lifter=0),
    dict(n_fft=400, hop_length=160, n_mels=64, n_mfcc=20, lifter=22),
    dict(
        n_fft=1024,
        win_length=800,
        hop_length=256,
        n_mels=128,
        n_mfcc=40,
        lifter=0,
        pad_mode='reflect',
    ),
    dict(n_fft=511, hop_length=100, n_mels=32, n_mfcc=32, lifter=3.5),
]


@pytest.mark.parametrize('case', CASES, ids=str)
@pytest.mark.parametrize('source', ['speech', 'noise'])
@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_librosa_preset_is_librosa_mfcc(case, source, data_format, speech_batch, noise_batch):
    make = speech_batch if source == 'speech' else noise_batch
    batch = make(n_examples=2, n_samples=8000, n_channels=2, seed=7)
    x = to_input_layout(batch, data_format)
    kwargs = dict(
        compat='librosa',
        sample_rate=SAMPLE_RATE,
        input_data_format=data_format,
        output_data_format=data_format,
        **case,
    )
    stft = {k: case[k] for k in ('n_fft', 'hop_length', 'win_length', 'pad_mode') if k in case}
    truth = np.stack(
        [
            librosa.feature.mfcc(
                y=example.astype(np.float64),
                sr=SAMPLE_RATE,
                n_mels=case['n_mels'],
                n_mfcc=case['n_mfcc'],
                lifter=case['lifter'],
                **stft,
            )
            for example in batch
        ]
    ).swapaxes(-1, -2)  # (batch, channels, frames, n_mfcc)
    for name, module, tolerance in (
        ('reference', reference, REFERENCE_TOLERANCE),
        ('cpu', cpu, CPU_TOLERANCE),
    ):
        ours = module.mfcc(x, **kwargs)
        assert ours.dtype == (np.float64 if module is reference else np.float32)
        if data_format == 'channels_last':
            ours = ours.transpose(0, 3, 1, 2)
        assert ours.shape == truth.shape
        error = peak_relative_error(ours, truth)
        record_agreement(f'mfcc: {name} vs librosa / allowed', error / tolerance)
        assert error <= tolerance, (name, error)


def test_kapre_default_is_the_dct_of_kapres_decibels(noise_batch):
    """Without a preset: the DCT of kapre_fast's (kapre's) dB mel spectrogram."""
    x = to_input_layout(noise_batch(n_channels=1), 'channels_last')
    kwargs = dict(n_fft=512, hop_length=128, n_mels=40, input_data_format='channels_last')
    mel = cpu.melspectrogram(x, return_decibel=True, **kwargs)
    expected = np.einsum('bfmc,mk->bfkc', mel.astype(np.float64), mfcc_matrix(20, 40))
    ours = cpu.mfcc(x, threads=2, **kwargs)
    assert peak_relative_error(ours, expected) <= 1e-6
    assert peak_relative_error(reference.mfcc(x, **kwargs), expected) <= 1e-5


def test_dct_is_orthonormal():
    matrix = mfcc_matrix(40, 40)
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(40), atol=1e-12)


@pytest.mark.parametrize(
    'kwargs, error, message',
    [
        (dict(n_mfcc=41, n_mels=40), ValueError, 'n_mfcc must be <= n_mels = 40 .*got n_mfcc=41'),
        (dict(n_mfcc=0), ValueError, 'n_mfcc must be >= 1'),
        (dict(lifter=-1), ValueError, r'lifter must be >= 0 \(0: no liftering\), got -1'),
        (dict(return_decibel=False), TypeError, "unexpected keyword argument 'return_decibel'"),
        (dict(compat='librosa', top_db=-3.0), ValueError, 'top_db must be > 0'),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    x = np.zeros((1, 4000, 1), np.float32)
    for module in (reference, cpu):
        with pytest.raises(error, match=message):
            module.mfcc(x, **kwargs)


def test_get_mfcc_layer_is_cpu_mfcc_and_trains(noise_batch):
    """The composed getter (fused dB mel layer + CepstralCoefficients) gives cpu.mfcc's numbers,
    serialises, and passes gradients to the audio."""
    pytest.importorskip('tensorflow')
    pytest.importorskip('keras')
    from kapre_fast import composed

    x = to_input_layout(noise_batch(n_examples=2, n_samples=4000, n_channels=2), 'channels_last')
    kwargs = dict(
        compat='librosa',
        n_fft=400,
        hop_length=160,
        n_mels=40,
        sample_rate=SAMPLE_RATE,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    model = composed.get_mfcc_layer(input_shape=(4000, 2), n_mfcc=13, lifter=22, **kwargs)
    expected = cpu.mfcc(x, n_mfcc=13, lifter=22, **kwargs)
    ours = model(x).numpy()
    assert model.name == 'mfcc' and ours.shape == expected.shape
    assert peak_relative_error(ours, expected) <= 1e-6
    check_keras_copy_and_gradient(model, x, ours)
    with pytest.raises(ValueError, match='n_mfcc must be <= n_mels = 40'):
        composed.get_mfcc_layer(n_mfcc=41, **kwargs)
