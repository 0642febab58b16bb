"""compat='librosa' / 'torchaudio' (issue #15): the presets reproduce those libraries' numbers.

librosa 0.11 is the oracle for compat='librosa' (librosa.stft / feature.melspectrogram,
power_to_db / amplitude_to_db), run in float64 per example (its multichannel input: one dB max
over the example's channels, as the front end's clamp).

torchaudio has no release matching the installed torch (2.13), so compat='torchaudio' is held to a
float64 re-implementation of torchaudio's documented definitions, written here apart from
kapre_fast: torch.stft (center=True, pad_mode='reflect', periodic Hann window of win_length
zero-padded to n_fft: torchaudio.transforms.Spectrogram), |X|**power, melscale_fbanks (bins at
linspace(0, sample_rate // 2, n_freq), HTK or Slaney scale, norm None or 'slaney'), and
AmplitudeToDB (multiplier 10 for stype='power', 20 for 'magnitude'; amin 1e-10; ref 1; top_db
clamps each spectrogram to its max minus top_db).

Both run on real speech and on noise with digital silence, over a grid drawn with a fixed seed.
"""

import math

import numpy as np
import pytest

from helpers import (
    decibel_error,
    decibel_to_magnitude,
    peak_relative_error,
    record_agreement,
    to_input_layout,
)
from kapre_fast import FrontEnd, cpu, reference

librosa = pytest.importorskip('librosa')

SAMPLE_RATE = 16000
# Float32 kernels against float64 truth: magnitudes within this share of each example's peak,
# dB (99.9th percentile over the top DECIBEL_RANGE dB) within this many dB. The measured shares
# go to build/accuracy-figures.txt.
LINEAR_TOLERANCE = 2e-6
DECIBEL_TOLERANCE = 1e-3
DECIBEL_RANGE = 50.0
# The float64 reference against librosa (whose mel weights are float32) or the torch oracle.
REFERENCE_LINEAR_TOLERANCE = 1e-6
REFERENCE_DECIBEL_TOLERANCE = 1e-4


def _grid(n_cases, seed, compat):
    """Argument sets drawn with a fixed seed: FFT sizes (odd, win_length below n_fft), hops,
    windows, pad modes, power, dB on/off and top_db, mel scales and norms, channels, layouts."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(n_cases):
        n_fft = int(rng.choice([256, 400, 511, 512, 1024]))
        win_length = int(rng.choice([n_fft, n_fft - 1 - int(rng.integers(0, n_fft // 3))]))
        case = dict(
            function=str(rng.choice(['melspectrogram', 'stft_magnitude'], p=[0.7, 0.3])),
            n_fft=n_fft,
            win_length=win_length,
            hop_length=int(rng.choice([64, 128, 160, 257])),
            window_name=str(rng.choice(['hann_window', 'hamming_window'])),
            pad_mode=str(rng.choice(['constant', 'reflect'])),
            power=int(rng.choice([1, 2])),
            return_decibel=bool(rng.random() < 0.7),
            top_db=float(rng.choice([80.0, 50.0, math.inf])),
            n_mels=int(rng.choice([20, 40, 64])),
            mel_htk=bool(rng.random() < 0.5),
            mel_norm=[None, 'slaney'][int(rng.integers(0, 2))],
            n_channels=int(rng.integers(1, 3)),
            data_format=str(rng.choice(['channels_last', 'channels_first'])),
        )
        if compat == 'torchaudio':
            case['window_name'] = 'hann_window'  # torchaudio's default window_fn
        if index == 0:  # the presets' defaults, as users call them
            case.update(
                function='melspectrogram',
                win_length=n_fft,
                power=2,
                return_decibel=True,
                top_db=80.0 if compat == 'librosa' else math.inf,
                mel_htk=compat == 'torchaudio',
                mel_norm='slaney' if compat == 'librosa' else None,
                window_name='hann_window',
                pad_mode='constant' if compat == 'librosa' else 'reflect',
            )
        cases.append(case)
    return cases


def _kwargs(case, compat):
    """The kapre_fast keyword arguments of a grid case."""
    kwargs = dict(
        compat=compat,
        n_fft=case['n_fft'],
        win_length=case['win_length'],
        hop_length=case['hop_length'],
        window_name=case['window_name'],
        pad_mode=case['pad_mode'],
        power=case['power'],
        return_decibel=case['return_decibel'],
        top_db=case['top_db'],
        input_data_format=case['data_format'],
        output_data_format=case['data_format'],
    )
    if case['function'] == 'melspectrogram':
        kwargs.update(
            sample_rate=SAMPLE_RATE,
            n_mels=case['n_mels'],
            mel_htk=case['mel_htk'],
            mel_norm=case['mel_norm'],
        )
    return kwargs


def _as_batch_channels_frames_features(y, data_format):
    return y.transpose(0, 3, 1, 2) if data_format == 'channels_last' else y


def _audio(source, speech_batch, noise_batch, n_channels):
    """(batch, channels, time) float32: real speech, or noise with digital silence."""
    if source == 'speech':
        return speech_batch(n_examples=2, n_samples=6000, n_channels=n_channels, seed=3)
    return noise_batch(n_examples=2, n_samples=6000, n_channels=n_channels, seed=4)


# ----- the oracles -------------------------------------------------------------------------------


def _librosa_front_end(batch, case):
    """(batch, channels, frames, features) float64 from librosa, one example at a time."""
    window = {'hann_window': 'hann', 'hamming_window': 'hamming'}[case['window_name']]
    results = []
    for example in batch.astype(np.float64):
        stft = dict(
            n_fft=case['n_fft'],
            hop_length=case['hop_length'],
            win_length=case['win_length'],
            window=window,
            center=True,
            pad_mode=case['pad_mode'],
        )
        if case['function'] == 'melspectrogram':
            S = librosa.feature.melspectrogram(
                y=example,
                sr=SAMPLE_RATE,
                power=case['power'],
                n_mels=case['n_mels'],
                htk=case['mel_htk'],
                norm=case['mel_norm'],
                **stft,
            )
        else:
            S = np.abs(librosa.stft(example, **stft)) ** case['power']
        if case['return_decibel']:
            top_db = None if math.isinf(case['top_db']) else case['top_db']
            to_db = librosa.power_to_db if case['power'] == 2 else librosa.amplitude_to_db
            S = to_db(S, ref=1.0, top_db=top_db)  # librosa's own amin for each
        results.append(np.swapaxes(S, -1, -2))  # (channels, frames, features)
    return np.stack(results)


def _torchaudio_front_end(batch, case):
    """(batch, channels, frames, features) float64 from the float64 re-implementation of
    torchaudio's Spectrogram / MelSpectrogram / AmplitudeToDB (see the module docstring)."""
    torch = pytest.importorskip('torch')
    n_fft, win_length = case['n_fft'], case['win_length']
    x = torch.from_numpy(batch.astype(np.float64)).reshape(-1, batch.shape[-1])
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    spectra = torch.stft(
        x,
        n_fft,
        hop_length=case['hop_length'],
        win_length=win_length,
        window=window,
        center=True,
        pad_mode=case['pad_mode'],
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    S = spectra.abs() ** case['power']  # (signals, n_freq, frames)
    if case['function'] == 'melspectrogram':
        S = torch.einsum('sft,fm->smt', S, torch.from_numpy(_torchaudio_fbanks(case)))
    S = S.numpy().reshape(batch.shape[0], batch.shape[1], *S.shape[1:])
    if case['return_decibel']:
        multiplier = 10.0 if case['power'] == 2 else 20.0  # stype power / magnitude
        S = multiplier * np.log10(np.maximum(S, 1e-10))  # amin 1e-10, ref 1 (db_multiplier 0)
        if not math.isinf(case['top_db']):  # per spectrogram: over (channels, freq, time)
            S = np.maximum(S, S.max(axis=(1, 2, 3), keepdims=True) - case['top_db'])
    return np.swapaxes(S, -1, -2)


def _torchaudio_fbanks(case):
    """torchaudio.functional.melscale_fbanks(n_freq, 0, sample_rate / 2, n_mels, sample_rate,
    norm, mel_scale) as documented, in float64: (n_freq, n_mels)."""
    n_freq = case['n_fft'] // 2 + 1
    if case['mel_htk']:
        to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
        to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    else:  # Slaney: linear below 1 kHz, logarithmic above
        step = math.log(6.4) / 27.0
        to_mel = lambda f: np.where(  # noqa: E731
            f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / step, 3.0 * f / 200.0
        )
        to_hz = lambda m: np.where(  # noqa: E731
            m >= 15.0, 1000.0 * np.exp(step * (m - 15.0)), 200.0 * m / 3.0
        )
    all_freqs = np.linspace(0, SAMPLE_RATE // 2, n_freq)
    f_pts = to_hz(np.linspace(to_mel(0.0), to_mel(SAMPLE_RATE / 2), case['n_mels'] + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[np.newaxis, :] - all_freqs[:, np.newaxis]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    if case['mel_norm'] == 'slaney':
        fb *= 2.0 / (f_pts[2 : case['n_mels'] + 2] - f_pts[: case['n_mels']])
    return fb


ORACLES = {'librosa': _librosa_front_end, 'torchaudio': _torchaudio_front_end}


def _check(name, ours, truth, case, linear, decibel):
    """`ours` against `truth` as test_backends measures it: magnitudes (dB turned back into
    powers of ten) within `linear` of each example's peak; dB also within `decibel` over the top
    DECIBEL_RANGE dB of each example (below that, float32 spectra lose relative precision
    whatever computes them). Both recorded as shares of their allowance."""
    if case['return_decibel']:
        error = decibel_error(ours, truth, within=DECIBEL_RANGE)
        record_agreement(f'{name} dB (top 50 dB) / allowed', error / decibel)
        assert error <= decibel, (name, 'dB', error, case)
        ours, truth = decibel_to_magnitude(ours), decibel_to_magnitude(truth)
    error = peak_relative_error(ours, truth)
    record_agreement(f'{name} |.| / allowed', error / linear)
    assert error <= linear, (name, error, case)


@pytest.mark.parametrize('compat', sorted(ORACLES))
@pytest.mark.parametrize('source', ['speech', 'noise'])
@pytest.mark.parametrize('index', range(10))
def test_preset_matches_its_library(compat, source, index, speech_batch, noise_batch):
    case = _grid(10, {'librosa': 15, 'torchaudio': 16}[compat], compat)[index]
    batch = _audio(source, speech_batch, noise_batch, case['n_channels'])
    truth = ORACLES[compat](batch, case)
    x = to_input_layout(batch, case['data_format'])
    kwargs = _kwargs(case, compat)
    function = case['function']
    expected = _as_batch_channels_frames_features(
        getattr(reference, function)(x, **kwargs), case['data_format']
    )
    ours = _as_batch_channels_frames_features(
        getattr(cpu, function)(x, threads=2, **kwargs), case['data_format']
    )
    assert ours.shape == truth.shape == expected.shape and ours.dtype == np.float32
    _check(
        f'presets: reference {compat} {function}',
        expected,
        truth,
        case,
        REFERENCE_LINEAR_TOLERANCE,
        REFERENCE_DECIBEL_TOLERANCE,
    )
    _check(
        f'presets: cpu {compat} {function}', ours, truth, case, LINEAR_TOLERANCE, DECIBEL_TOLERANCE
    )
    # The export path: plain TF ops (matmul DFT, tf.pad centring) that TFLite and ONNX take.
    from kapre_fast import builtin

    portable = _as_batch_channels_frames_features(
        builtin.front_end(x, getattr(FrontEnd, function)(**kwargs)).numpy(), case['data_format']
    )
    assert portable.shape == truth.shape
    _check(
        f'presets: builtin {compat} {function}',
        portable,
        truth,
        case,
        LINEAR_TOLERANCE,
        DECIBEL_TOLERANCE,
    )


def test_grid_covers_every_option():
    """The sampled grid reaches every value of the options it draws, for both presets."""
    for compat, seed in (('librosa', 15), ('torchaudio', 16)):
        cases = _grid(10, seed, compat)
        for key in (
            'function',
            'pad_mode',
            'power',
            'return_decibel',
            'mel_htk',
            'n_channels',
            'data_format',
        ):
            assert len({case[key] for case in cases}) == 2, (compat, key)
        assert any(case['win_length'] < case['n_fft'] for case in cases), compat
        assert any(case['n_fft'] % 2 for case in cases) or compat == 'torchaudio'


@pytest.mark.parametrize('compat', ['librosa', 'torchaudio'])
def test_silence_and_short_audio(compat):
    """An all-silent example is the amin floor (no clamp below it), not NaN; audio too short
    for reflect padding or for one frame is a ValueError naming the lengths."""
    x = np.zeros((1, 3000, 1), np.float32)
    kwargs = dict(compat=compat, n_fft=512, hop_length=128, return_decibel=True)
    ours = cpu.stft_magnitude(x, **kwargs)
    np.testing.assert_allclose(ours, 10 * np.log10(1e-10), rtol=1e-6)
    with pytest.raises(ValueError, match="pad_mode='reflect'.*256"):
        cpu.stft_magnitude(
            np.ones((1, 200, 1), np.float32), compat=compat, n_fft=512, pad_mode='reflect'
        )
    with pytest.raises(ValueError, match='one frame needs n_fft=512'):
        reference.stft_magnitude(
            np.ones((1, 200, 1), np.float32), compat=compat, n_fft=512, center=False
        )


def test_kapre_default_is_unchanged_by_the_new_arguments(noise_batch):
    """compat='kapre' spelled out is the default, bit for bit."""
    x = to_input_layout(noise_batch(n_channels=2), 'channels_last')
    kwargs = dict(n_fft=400, hop_length=160, return_decibel=True, input_data_format='channels_last')
    np.testing.assert_array_equal(
        cpu.melspectrogram(x, compat='kapre', **kwargs), cpu.melspectrogram(x, **kwargs)
    )
    assert FrontEnd.melspectrogram(**kwargs) == FrontEnd.melspectrogram(compat='kapre', **kwargs)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (
            dict(compat='essentia'),
            "compat must be one of 'kapre', 'librosa', 'torchaudio', got 'essentia'",
        ),
        (dict(center=True), r"center=True are preset arguments: pass compat='librosa'"),
        (dict(top_db=60.0), r'top_db=60.0 are preset arguments'),
        (
            dict(compat='librosa', top_db=-1.0),
            r'top_db must be > 0 \(math.inf: no clamp\), got -1.0',
        ),
        (dict(compat='librosa', top_db=0.0), 'top_db must be > 0'),
        (dict(compat='torchaudio', power=3), 'power must be 1 .* or 2 .*, got 3'),
        (dict(compat='librosa', amin=0.0), 'amin must be > 0, got 0.0'),
        (dict(compat='librosa', ref=-1.0), 'ref must be > 0, got -1.0'),
        (dict(compat='librosa', pad_mode='wrap'), "pad_mode must be one of 'constant', 'reflect'"),
        (
            dict(compat='librosa', return_decibel=True, db_amin=1e-3),
            "db_amin=0.001: kapre's framing and dB arguments do not apply with compat='librosa'",
        ),
        (dict(compat='librosa', pad_begin=True), 'pad_begin=True: kapre'),
        (
            dict(compat='librosa', window_name='vorbis_window'),
            "window_name='vorbis_window' is not offered with compat='librosa'",
        ),
        (
            dict(compat='librosa', n_fft=256, win_length=300),
            r"win_length=300 must be <= n_fft=256 with compat='librosa'",
        ),
    ],
)
def test_bad_preset_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrontEnd.melspectrogram(**kwargs)
    with pytest.raises(TypeError, match='compat must be a string, got NoneType None'):
        FrontEnd.melspectrogram(compat=None)


def test_preset_defaults_resolve_as_the_libraries_do():
    librosa_mel = FrontEnd.melspectrogram(compat='librosa')
    assert (
        librosa_mel.center,
        librosa_mel.pad_mode,
        librosa_mel.power,
        librosa_mel.amin,
        librosa_mel.ref,
        librosa_mel.top_db,
    ) == (True, 'constant', 2.0, 1e-10, 1.0, 80.0)
    assert FrontEnd.melspectrogram(compat='librosa', power=1).amin == 1e-5  # amplitude_to_db
    torch_mel = FrontEnd.melspectrogram(compat='torchaudio')
    assert (torch_mel.pad_mode, torch_mel.amin, torch_mel.top_db) == ('reflect', 1e-10, math.inf)
    assert torch_mel.decibel == (10.0, 1e-10, 1.0, math.inf)
    assert FrontEnd.melspectrogram(compat='torchaudio', power=1).decibel[0] == 20.0
    # Resolved specs validate again unchanged (layers rebuild them from their configs).
    assert FrontEnd(**{f: getattr(torch_mel, f) for f in torch_mel.__dataclass_fields__}) == (
        torch_mel
    )


def test_builtin_inverse_stft_refuses_presets():
    from kapre_fast import builtin

    builtin.check_spec(FrontEnd.melspectrogram(compat='librosa'))  # the forward path takes them
    with pytest.raises(ValueError, match="builtin inverse STFT .* computes compat='kapre' only"):
        builtin.check_spec(FrontEnd.stft(compat='librosa'), inverse=True)


# ----- TF op, layers, composed getters ------------------------------------------------------


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(compat='librosa', return_decibel=True),
        dict(compat='librosa', power=1, return_decibel=True, top_db=60.0, pad_mode='reflect'),
        dict(compat='torchaudio', mel_htk=True, mel_norm=None),
    ],
)
def test_tf_op_layer_and_getter_equal_cpu(kwargs, noise_batch):
    """The TF op (centred with tf.pad before the op) gives kapre_fast.cpu's numbers bit for bit:
    one C++ core; the composed getter and the layer take the preset arguments too; the op's
    gradient (recomputed in TF ops with power and the dB multiplier) matches finite
    differences."""
    tf = pytest.importorskip('tensorflow')
    from kapre_fast import composed, ops

    x = to_input_layout(noise_batch(n_examples=2, n_samples=4000, n_channels=2), 'channels_last')
    common = dict(
        n_fft=400,
        hop_length=160,
        sample_rate=SAMPLE_RATE,
        n_mels=32,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    expected = cpu.melspectrogram(x, **common, **kwargs)
    spec = FrontEnd.melspectrogram(**common, **kwargs)
    np.testing.assert_array_equal(ops.front_end(tf.constant(x), spec).numpy(), expected)
    model = composed.get_melspectrogram_layer(input_shape=(4000, 2), **common, **kwargs)
    np.testing.assert_array_equal(model(x).numpy(), expected)
    config = model.layers[0].get_config()
    assert config['compat'] == kwargs['compat']
    # The recomputation the gradient runs, run forward: the same numbers to float32 rounding.
    in_tf = ops.recompute(spec, tf.constant(x)).numpy()
    if spec.return_decibel:
        assert decibel_error(in_tf, expected, within=DECIBEL_RANGE) <= DECIBEL_TOLERANCE
    else:
        assert peak_relative_error(in_tf, expected) <= LINEAR_TOLERANCE

    # Gradient with respect to the audio against a central difference along a random direction,
    # on audio without digital silence (where log(max(x, amin)) has a kink at every sample).
    x = x[:1] + 0.01 * np.random.default_rng(2).standard_normal(x[:1].shape)
    audio = tf.constant(x)
    weights = np.random.default_rng(0).standard_normal(expected[:1].shape)
    direction = np.random.default_rng(1).standard_normal(x.shape)
    with tf.GradientTape() as tape:
        tape.watch(audio)
        loss = tf.reduce_sum(ops.front_end(audio, spec) * tf.constant(weights, tf.float32))
    analytic = float(np.sum(tape.gradient(loss, audio).numpy() * direction))

    def f(step):  # float64 throughout
        return float(
            np.sum(reference.melspectrogram(x + step * direction, **common, **kwargs) * weights)
        )

    step = 1e-4
    numeric = (f(step) - f(-step)) / (2 * step)
    assert abs(analytic - numeric) <= 2e-3 * max(1.0, abs(numeric)), (analytic, numeric)


def test_preset_layer_config_round_trips():
    """Every preset argument of the FrontEnd layer, non-default, survives get_config and Keras
    serialisation, and the copy computes the same numbers."""
    keras = pytest.importorskip('keras')
    from kapre_fast import layers

    arguments = dict(
        n_fft=256,
        win_length=200,
        hop_length=64,
        filterbank='mel',
        n_mels=24,
        sample_rate=SAMPLE_RATE,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_first',
        compat='torchaudio',
        center=True,
        pad_mode='constant',
        power=1.0,
        amin=1e-8,
        ref=0.5,
        top_db=70.0,
    )
    layer = layers.FrontEnd(**arguments)
    config = layer.get_config()
    assert {name: config[name] for name in arguments} == arguments
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    x = np.random.default_rng(0).standard_normal((2, 3000, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(copy(x)), np.asarray(layer(x)))
    np.testing.assert_array_equal(np.asarray(layer(x)), cpu.compute(FrontEnd(**arguments), x))
    portable = layers.FrontEnd(implementation='builtin', **arguments)
    np.testing.assert_allclose(
        np.asarray(portable(x)), np.asarray(layer(x)), rtol=0, atol=1e-3
    )  # dB, of the same spectrum by a matmul DFT
