"""kapre_fast.layers and kapre_fast.composed under whichever Keras backend this process runs:
`make test` runs this module under TensorFlow (the main run), then again under
KERAS_BACKEND=torch and KERAS_BACKEND=jax, each in its own process (Keras reads the backend
once, at import).

Under every backend: the composed models give kapre_fast.cpu's numbers (the compat presets, MFCC
and PCEN too), the reconstructing pair reconstructs, fit with jit_compile=True lowers the loss,
and .keras files saved here (presets included) load under the other installed backends with the
same predictions.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip('keras')

from helpers import noise_batch, to_input_layout  # noqa: E402
from kapre_fast import FrontEnd, composed, cpu  # noqa: E402

BACKEND = keras.backend.backend()
# torch.compile (Keras' jit_compile under PyTorch) resumes after graph breaks in Keras' own layer
# code and, doing so, reads .grad of non-leaf tensors: PyTorch's warning, not an error here.
pytestmark = pytest.mark.filterwarnings(
    'ignore:The .grad attribute of a Tensor that is not a leaf Tensor:UserWarning'
)
INSTALLED = [
    name
    for name, module in [('tensorflow', 'tensorflow'), ('torch', 'torch'), ('jax', 'jax')]
    if importlib.util.find_spec(module)
]

GETTERS = {
    'stft_magnitude': dict(n_fft=256, hop_length=100, return_decibel=True),
    'melspectrogram': dict(
        n_fft=512, hop_length=128, sample_rate=16000, n_mels=32, return_decibel=True
    ),
    'log_frequency_spectrogram': dict(
        n_fft=512, hop_length=128, sample_rate=16000, log_n_bins=24, return_decibel=True
    ),
    'stft_mag_phase': dict(n_fft=256, hop_length=64),
}
GETTER_NAMES = {
    'stft_magnitude': 'get_stft_magnitude_layer',
    'melspectrogram': 'get_melspectrogram_layer',
    'log_frequency_spectrogram': 'get_log_frequency_spectrogram_layer',
    'stft_mag_phase': 'get_stft_mag_phase',
}


def as_numpy(y):
    return keras.ops.convert_to_numpy(y)


@pytest.mark.parametrize('family', sorted(GETTERS))
@pytest.mark.parametrize(
    'layouts', [('channels_last', 'channels_last'), ('channels_first', 'channels_first')]
)
def test_composed_models_give_the_cpu_backends_numbers(family, layouts):
    kwargs = dict(GETTERS[family], input_data_format=layouts[0], output_data_format=layouts[1])
    x = to_input_layout(noise_batch(2, 4000, 2, seed=1), layouts[0])
    model = getattr(composed, GETTER_NAMES[family])(input_shape=x.shape[1:], **kwargs)
    np.testing.assert_array_equal(as_numpy(model(x)), getattr(cpu, family)(x, **kwargs))


def test_reconstructing_pair_gives_the_waveform_back():
    x = to_input_layout(noise_batch(1, 4096, 2, seed=2), 'channels_last')
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(
        stft_input_shape=x.shape[1:],
        n_fft=256,
        hop_length=64,
        forward_window_name='hann_window',
        waveform_data_format='channels_last',
        stft_data_format='channels_last',
    )
    X = stft(x)
    np.testing.assert_array_equal(
        as_numpy(X),
        cpu.stft(
            x,
            n_fft=256,
            hop_length=64,
            pad_begin=True,
            pad_end=True,
            input_data_format='channels_last',
            output_data_format='channels_last',
        ),
    )
    waveform = as_numpy(istft(X))
    trim = 256 - 64
    np.testing.assert_allclose(waveform[:, trim : trim + x.shape[1]], x, atol=2e-6)


def _classifier(length=4000):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            composed.get_melspectrogram_layer(
                input_shape=(length, 1),
                n_fft=256,
                hop_length=128,
                sample_rate=8000,
                n_mels=16,
                return_decibel=True,
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )


def _two_tones(n=32, length=4000):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, n)
    t = np.arange(length) / 8000
    tones = np.sin(2 * np.pi * np.where(labels[:, None] == 1, 1500.0, 300.0) * t)
    return (tones + 0.1 * rng.standard_normal((n, length)))[:, :, None].astype(np.float32), labels


def test_fit_with_jit_compile_lowers_the_loss():
    model = _classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        jit_compile=True,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = _two_tones()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.jit_compile is True
    assert model.evaluate(x, y, verbose=0) < 0.7 * before


LOAD_AND_PREDICT = """
import sys
import numpy as np
import keras
import kapre_fast.composed  # registers the layers
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
for name in sys.argv[2:]:  # <name>.keras on <name>.x.npy -> <name>.y.npy
    model = keras.models.load_model(name + '.keras')
    np.save(name + '.y.npy', keras.ops.convert_to_numpy(model(np.load(name + '.x.npy'))))
"""


def _preset_models():
    """A preset's mel, MFCC and PCEN models, each on its own input."""
    x, _ = _two_tones(2)
    mel = dict(n_fft=256, hop_length=128, sample_rate=8000, n_mels=16)
    return {
        'mel': (
            composed.get_melspectrogram_layer(
                input_shape=(4000, 1),
                **mel,
                compat='torchaudio',
                return_decibel=True,
                power=1,
                top_db=70.0,
            ),
            x,
        ),
        'mfcc': (
            composed.get_mfcc_layer(
                input_shape=(4000, 1), n_mfcc=8, lifter=4, **mel, compat='librosa'
            ),
            x,
        ),
        'pcen': (
            composed.get_pcen_layer(
                input_shape=(4000, 1),
                time_constant=0.1,
                **mel,
                compat='librosa',
                pad_mode='reflect',
            ),
            1e3 * x,
        ),
    }


@pytest.mark.parametrize('other', INSTALLED)
def test_keras_file_loads_under_every_backend_with_the_same_output(other, tmp_path):
    """The kapre classifier and the presets' mel, MFCC and PCEN models: saved here, loaded and
    run under `other` in a fresh process."""
    x, _ = _two_tones(4)
    models = {'classifier': (_classifier(), x), **_preset_models()}
    for name, (model, inputs) in models.items():
        model.save(tmp_path / f'{name}.keras')
        np.save(tmp_path / f'{name}.x.npy', inputs)
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL='2')
    result = subprocess.run(
        [sys.executable, '-c', LOAD_AND_PREDICT, other, *(str(tmp_path / name) for name in models)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (model, inputs) in models.items():
        expected = as_numpy(model(inputs))
        np.testing.assert_allclose(
            np.load(tmp_path / f'{name}.y.npy'),
            expected,
            rtol=1e-5,
            atol=1e-5 * np.abs(expected).max(),
            err_msg=name,
        )


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_preset_getters_give_the_cpu_backends_numbers(data_format):
    """compat presets through the fused layer (kapre_fast.<backend>: the audio padded there,
    power and dB in the kernel) bit for bit; MFCC and PCEN getters within float32 roundings of
    kapre_fast.cpu's (the DCT and PCEN run in keras.ops after the same mel)."""
    x = to_input_layout(noise_batch(2, 4000, 2, seed=5), data_format)
    common = dict(
        n_fft=400,
        hop_length=160,
        sample_rate=16000,
        n_mels=32,
        input_data_format=data_format,
        output_data_format=data_format,
    )
    for kwargs in (
        dict(compat='librosa', return_decibel=True),
        dict(compat='torchaudio', power=1, return_decibel=True, top_db=60.0),
        dict(compat='torchaudio', win_length=300, pad_mode='constant'),
    ):
        model = composed.get_melspectrogram_layer(input_shape=x.shape[1:], **common, **kwargs)
        np.testing.assert_array_equal(as_numpy(model(x)), cpu.melspectrogram(x, **common, **kwargs))
    mfcc = dict(compat='librosa', n_mfcc=13, lifter=22)
    expected = cpu.mfcc(x, **common, **mfcc)
    ours = as_numpy(composed.get_mfcc_layer(input_shape=x.shape[1:], **common, **mfcc)(x))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    pcen = dict(compat='torchaudio', time_constant=0.1)
    expected = cpu.pcen(x, **common, **pcen)
    ours = as_numpy(composed.get_pcen_layer(input_shape=x.shape[1:], **common, **pcen)(x))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=5e-6 * np.abs(expected).max())


def test_builtin_implementation_is_refused_off_tensorflow_by_name():
    from kapre_fast import layers

    if BACKEND == 'tensorflow':
        assert layers.FrontEnd(n_fft=256, implementation='builtin').implementation == 'builtin'
    else:
        with pytest.raises(ValueError, match="implementation='builtin'.*TensorFlow backend"):
            layers.FrontEnd(n_fft=256, implementation='builtin')


def test_istft_arguments_give_the_spec_back():
    spec = FrontEnd.inverted_by_istft(
        n_fft=300,
        win_length=256,
        hop_length=64,
        forward_window_name='hamming_window',
        stft_data_format='channels_first',
        waveform_data_format='channels_last',
    )
    assert FrontEnd.inverted_by_istft(**spec.istft_arguments()) == spec


@pytest.mark.parametrize('data_format', ['channels_last', 'channels_first'])
def test_pcen_layer_gives_cpu_pcen_on_every_backend(data_format):
    """get_pcen_layer: the fused mel, then layers.PCEN: the registry entry's apply_pcen (TF: the
    native pass; torch and jax: kapre_fast._pcen's doubling scan in torch / jnp ops)."""
    x = to_input_layout(noise_batch(n_examples=2, n_samples=4000, n_channels=2), data_format)
    kwargs = dict(
        n_fft=512,
        hop_length=128,
        sample_rate=16000,
        n_mels=32,
        time_constant=0.1,
        input_data_format=data_format,
        output_data_format=data_format,
    )
    expected = cpu.pcen(x, **kwargs)
    ours = keras.ops.convert_to_numpy(composed.get_pcen_layer(**kwargs)(x))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=5e-6 * np.abs(expected).max())


@pytest.mark.skipif(BACKEND == 'tensorflow', reason='trains under TensorFlow (test_trainable.py)')
def test_trainable_options_are_refused_off_tensorflow_by_name():
    from kapre_fast import layers

    for option in ('trainable_window', 'trainable_filterbank'):
        with pytest.raises(ValueError, match=f"{option}=True needs Keras' TensorFlow backend"):
            layers.FrontEnd(n_fft=256, filterbank='mel', **{option: True})


def test_layers_compute_through_this_backends_registry_entry(monkeypatch):
    """Under each Keras backend the op-backed layers call the Backend protocol of the entry
    kapre_fast._backends.for_keras names: kapre_fast.ops ('tensorflow'), kapre_fast.torch,
    kapre_fast.jax."""
    from kapre_fast import _backends, layers

    name = _backends.keras_name('fused')
    assert name == BACKEND
    assert _backends.for_keras('fused') is importlib.import_module(
        {'tensorflow': 'kapre_fast.ops', 'torch': 'kapre_fast.torch', 'jax': 'kapre_fast.jax'}[
            BACKEND
        ]
    )
    x = to_input_layout(noise_batch(2, 3000, 1, seed=4), 'channels_last')
    mel = dict(n_fft=256, hop_length=64, sample_rate=16000, n_mels=16)
    common = dict(input_data_format='channels_last', output_data_format='channels_last')
    X = layers.STFT(n_fft=256, hop_length=64, **common)(x)
    cases = [
        (layers.FrontEnd(filterbank='mel', **mel, **common), x, 'compute'),
        (layers.InverseSTFT(n_fft=256, hop_length=64, **common), X, 'inverse'),
        (layers.MFCC(n_mfcc=6, **mel, **common), x, 'compute_mfcc'),
        (layers.PCEN(sample_rate=16000, hop_length=64), keras.ops.abs(X), 'apply_pcen'),
    ]
    backend = _backends.get(name)
    for layer, inputs, method in cases:
        expected = as_numpy(layer(inputs))
        calls = []

        class Recording:
            def __getattr__(self, attribute):
                calls.append(attribute)
                return getattr(backend, attribute)

        monkeypatch.setitem(_backends._REPLACED, name, Recording())
        np.testing.assert_array_equal(as_numpy(layer(inputs)), expected)
        assert calls == [method], (type(layer).__name__, calls)
        monkeypatch.setitem(_backends._REPLACED, name, backend)
