"""A preset called with no optional argument is its library called with none (issue #22).

compat='librosa': librosa.feature.melspectrogram(y), librosa.feature.mfcc(y),
librosa.pcen(melspectrogram(y)), librosa.power_to_db(melspectrogram(y)) (0.11, float64, one
example at a time). compat='torchaudio': transforms.Spectrogram(), MelSpectrogram(), MFCC(),
AmplitudeToDB()(MelSpectrogram()) as test_presets.py re-implements them in float64 (torchaudio
has no release for the installed torch): sample_rate 16000, n_fft 400, hop 200, reflect
centring, 128 HTK mels without norm, power dB without clamp; MFCC: 40 coefficients of the dB mel
clamped at 80 dB. Each backend (reference, cpu, torch, jax where installed), the Keras getters
and layers (on Keras' backend; the Makefile runs this file under torch and jax too), and the
FrontEnd constructors are called with compat alone, on speech and on noise with digital
silence.
"""

import math

import numpy as np
import pytest
import scipy.fft

from helpers import decibel_error, peak_relative_error, record_agreement
from kapre_fast import cpu, reference
from kapre_fast.spec import FrontEnd, library_defaults
from test_presets import _torchaudio_front_end

librosa = pytest.importorskip('librosa')

N_SAMPLES = 12000
# Shares of each example's peak (float32 kernels against float64 libraries) and dB.
LINEAR_TOLERANCE = 5e-6
DECIBEL_TOLERANCE = 2e-3
MFCC_TOLERANCE = 1e-5
# torchaudio's defaults, as the oracle's case (test_presets._torchaudio_front_end).
TORCHAUDIO = dict(
    n_fft=400,
    win_length=400,
    hop_length=200,
    window_name='hann_window',
    pad_mode='reflect',
    power=2,
    n_mels=128,
    mel_htk=True,
    mel_norm=None,
    top_db=math.inf,
)


def _batch(source, speech_batch, noise_batch):
    """(2, 1, N_SAMPLES) float32: speech, or noise with digital silence."""
    make = speech_batch if source == 'speech' else noise_batch
    return make(n_examples=2, n_samples=N_SAMPLES, n_channels=1, seed=11)


def _per_example(function, batch):
    """(batch, 1, frames, features) from a librosa function of one float64 signal that returns
    (features, frames)."""
    return np.stack([function(example[0].astype(np.float64)).T[None] for example in batch])


def _librosa(name, batch):
    mel = librosa.feature.melspectrogram
    functions = {
        'melspectrogram': lambda y: mel(y=y),
        'melspectrogram_db': lambda y: librosa.power_to_db(mel(y=y)),
        'mfcc': lambda y: librosa.feature.mfcc(y=y),
        'pcen': lambda y: librosa.pcen(mel(y=y)),
    }
    return _per_example(functions[name], batch)


def _torchaudio(name, batch):
    if name == 'stft_magnitude':
        return _torchaudio_front_end(batch, dict(TORCHAUDIO, function=name, return_decibel=False))
    mel = _torchaudio_front_end(
        batch, dict(TORCHAUDIO, function='melspectrogram', return_decibel=name != 'melspectrogram')
    )
    if name != 'mfcc':
        return mel
    mel = np.maximum(mel, mel.max(axis=(1, 2, 3), keepdims=True) - 80.0)  # MFCC's top_db
    return scipy.fft.dct(mel, type=2, norm='ortho', axis=-1)[..., :40]


# (compat, what is computed, kapre_fast function, its arguments beyond compat)
CALLS = [
    ('librosa', 'melspectrogram', 'melspectrogram', {}),
    ('librosa', 'melspectrogram_db', 'melspectrogram', dict(return_decibel=True)),
    ('librosa', 'mfcc', 'mfcc', {}),
    ('librosa', 'pcen', 'pcen', {}),
    ('torchaudio', 'stft_magnitude', 'stft_magnitude', {}),
    ('torchaudio', 'melspectrogram', 'melspectrogram', {}),
    ('torchaudio', 'melspectrogram_db', 'melspectrogram', dict(return_decibel=True)),
    ('torchaudio', 'mfcc', 'mfcc', {}),
]
ORACLES = {'librosa': _librosa, 'torchaudio': _torchaudio}


def _check(label, ours, truth, what):
    """ours: channels_last (batch, frames, features, 1), as every function returns by default."""
    ours = np.asarray(ours).transpose(0, 3, 1, 2)
    assert ours.shape == truth.shape, (label, ours.shape, truth.shape)
    if what == 'melspectrogram_db':
        error = decibel_error(ours, truth, within=50.0)
        record_agreement(f'{label} dB (top 50 dB) / allowed', error / DECIBEL_TOLERANCE)
        assert error <= DECIBEL_TOLERANCE, (label, error)
        return
    tolerance = MFCC_TOLERANCE if what == 'mfcc' else LINEAR_TOLERANCE
    error = peak_relative_error(ours, truth)
    record_agreement(f'{label} / allowed', error / tolerance)
    assert error <= tolerance, (label, error)


def _backends():
    import importlib

    modules = [reference, cpu]
    for name in ('kapre_fast.torch', 'kapre_fast.jax'):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            pass
    return modules


@pytest.mark.parametrize(
    'compat, what, function, kwargs', CALLS, ids=[f'{c}-{w}' for c, w, _, _ in CALLS]
)
@pytest.mark.parametrize('source', ['speech', 'noise'])
def test_every_backend_with_compat_alone_is_the_library(
    compat, what, function, kwargs, source, speech_batch, noise_batch
):
    batch = _batch(source, speech_batch, noise_batch)
    truth = ORACLES[compat](what, batch)
    x = batch.transpose(0, 2, 1)  # (batch, time, 1): channels_last, the default layout
    for module in _backends():
        ours = getattr(module, function)(x, compat=compat, **kwargs)
        _check(
            f'{module.__name__}.{function}(compat={compat!r}) {source}',
            np.asarray(ours),
            truth,
            what,
        )


@pytest.mark.parametrize(
    'compat, what, function, kwargs', CALLS, ids=[f'{c}-{w}' for c, w, _, _ in CALLS]
)
def test_keras_getters_with_compat_alone_are_the_library(
    compat, what, function, kwargs, speech_batch, noise_batch
):
    keras = pytest.importorskip('keras')
    if keras.backend.backend() == 'tensorflow':
        pytest.importorskip('tensorflow')
    from kapre_fast import composed

    batch = _batch('speech', speech_batch, noise_batch)
    getter = {
        'stft_magnitude': composed.get_stft_magnitude_layer,
        'melspectrogram': composed.get_melspectrogram_layer,
        'mfcc': composed.get_mfcc_layer,
        'pcen': composed.get_pcen_layer,
    }[function]
    model = getter(compat=compat, **kwargs)
    ours = keras.ops.convert_to_numpy(model(batch.transpose(0, 2, 1)))
    _check(f'{getter.__name__}(compat={compat!r})', ours, ORACLES[compat](what, batch), what)
    # The layer's config holds the library's values: a rebuilt model computes the same.
    layer = model.layers[0]
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.spec == layer.spec


def test_library_defaults_fill_only_what_is_left_out():
    spec = FrontEnd.melspectrogram(compat='torchaudio')
    assert (spec.n_fft, spec.win_length, spec.hop_length, spec.sample_rate) == (
        400,
        400,
        200,
        16000,
    )
    assert (spec.mel_htk, spec.mel_norm, spec.mel_f_max, spec.n_mels) == (True, None, 8000.0, 128)
    assert FrontEnd(compat='torchaudio', filterbank='mel') == spec  # direct construction too
    given = FrontEnd.melspectrogram(
        compat='torchaudio',
        n_fft=1024,
        win_length=800,
        sample_rate=22050,
        mel_htk=False,
        mel_norm='slaney',
    )
    assert (given.n_fft, given.hop_length, given.sample_rate) == (1024, 400, 22050)
    assert (given.mel_htk, given.mel_norm) == (False, 'slaney')
    assert FrontEnd.stft_magnitude(compat='torchaudio', hop_length=None).hop_length == 200
    assert FrontEnd.melspectrogram(compat='librosa') == FrontEnd.melspectrogram(
        compat='librosa', n_fft=2048, hop_length=512, sample_rate=22050
    )
    kapre = FrontEnd.melspectrogram()
    assert (kapre.n_fft, kapre.hop_length, kapre.sample_rate, kapre.mel_htk) == (
        2048,
        512,
        22050,
        False,
    )
    assert library_defaults({'compat': 'torchaudio'}, mfcc=True)['n_mfcc'] == 40
    assert library_defaults({'compat': 'librosa'}, mfcc=True) == {'n_mfcc': 20}
    assert library_defaults({'compat': 'nope'}) == {}
    with pytest.raises(ValueError, match='compat must be one of'):
        FrontEnd.melspectrogram(compat='nope')


@pytest.mark.parametrize('kind, what', [('stft', 'stft_magnitude'), ('mel', 'melspectrogram')])
def test_cli_with_compat_alone_is_the_library(kind, what, speech_batch, noise_batch, tmp_path):
    """`kapre-fast features --compat torchaudio` with no other front-end option: torchaudio's
    Spectrogram() / MelSpectrogram() of a 16 kHz file (its own sample rate, torchaudio's
    default)."""
    soundfile = pytest.importorskip('soundfile')
    import subprocess
    import sys

    batch = _batch('speech', speech_batch, noise_batch)[:1]
    path = tmp_path / 'speech.wav'
    soundfile.write(str(path), batch[0, 0], 16000, subtype='FLOAT')
    out = tmp_path / 'features.npz'
    command = [sys.executable, '-m', 'kapre_fast.cli', 'features', str(path)]
    result = subprocess.run(
        [*command, '-o', str(out), '--compat', 'torchaudio', '--kind', kind, '--no-db', '--quiet'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with np.load(out) as saved:
        ours = saved['speech'][np.newaxis]  # (frames, features, ch) -> one example
    _check(
        f'kapre-fast features --compat torchaudio --kind {kind}',
        ours,
        _torchaudio(what, batch),
        what,
    )
    refused = subprocess.run(
        [*command, '-o', str(tmp_path / 'x.npz'), '--compat', 'torchaudio', '--pad-begin'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and '--pad-begin' in refused.stderr, refused.stderr
