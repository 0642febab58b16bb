"""Smoke run of an INSTALLED kapre_fast (wheel or sdist), in a fresh venv without the test
dependencies: run by tests/install/install_test.sh, once per instruction set.

    python smoke.py VERSION [ISA]

Checks the version, that the kernels run with the instruction set KAPRE_FAST_ISA asked for,
the cpu functions against the float64 reference, and a composed layer in a model that fits.
Exits non-zero (an AssertionError) on the first failure.
"""

import os
import sys

import numpy as np


def check_version(expected):
    import kapre_fast

    assert kapre_fast.__version__ == expected, (kapre_fast.__version__, expected)
    assert 'site-packages' in kapre_fast.__file__, (
        f'not the installed package: {kapre_fast.__file__}'
    )


def check_isa(expected):
    from kapre_fast import _loader

    active = _loader.core().isa()
    assert active == expected, f'KAPRE_FAST_ISA={os.environ.get("KAPRE_FAST_ISA")} ran {active}'
    return active


def voiced_noise(n_examples=3, n_samples=22050, seed=0):
    """A pitched tone with noise and a stretch of digital silence in every example."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 22050
    x = 0.3 * np.sin(2 * np.pi * 220 * t)[None] + 0.05 * rng.standard_normal(
        (n_examples, n_samples)
    )
    x[:, n_samples // 3 : n_samples // 2] = 0
    return x[:, :, None].astype(np.float32)


def check_against_reference():
    from kapre_fast import cpu, reference

    x = voiced_noise()
    for name, kwargs in [
        ('stft_magnitude', dict(n_fft=512, hop_length=128)),
        ('melspectrogram', dict(n_fft=1024, hop_length=256, n_mels=64)),
        ('log_frequency_spectrogram', dict(n_fft=1024, hop_length=256)),
    ]:
        ours = getattr(cpu, name)(x, **kwargs)
        truth = getattr(reference, name)(x, **kwargs)
        error = np.abs(ours - truth).max() / np.abs(truth).max()
        assert error < 1e-5, f'{name}: relative error {error:.2e}'
        ours_db = getattr(cpu, name)(x, return_decibel=True, **kwargs)
        truth_db = getattr(reference, name)(x, return_decibel=True, **kwargs)
        p999 = np.percentile(np.abs(ours_db - truth_db), 99.9)
        assert p999 < 0.01, f'{name} dB: p99.9 difference {p999:.4f} dB'


def two_tones(n=32, length=8000, seed=1):
    """(audio, labels): a 300 Hz or a 1500 Hz tone in noise per example, labelled 0 or 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    t = np.arange(length) / 16000
    tones = np.sin(2 * np.pi * np.where(labels[:, None], 1500.0, 300.0) * t)
    x = (tones + 0.1 * rng.standard_normal((n, length)))[:, :, None].astype(np.float32)
    return x, labels


def composed_classifier(length=8000):
    """A compiled Keras model: kapre_fast.composed's dB melspectrogram, Flatten, Dense(2)."""
    import keras

    from kapre_fast.composed import get_melspectrogram_layer

    model = keras.Sequential(
        [
            get_melspectrogram_layer(
                input_shape=(length, 1),
                n_fft=512,
                hop_length=256,
                sample_rate=16000,
                n_mels=32,
                return_decibel=True,
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def check_fit():
    x, labels = two_tones()
    model = composed_classifier(x.shape[1])
    losses = model.fit(x, labels, epochs=5, batch_size=8, verbose=0).history['loss']
    assert losses[-1] < losses[0], f'loss did not fall: {losses}'


def main():
    version = sys.argv[1]
    isa = sys.argv[2] if len(sys.argv) > 2 else None
    check_version(version)
    active = check_isa(isa) if isa else None
    check_against_reference()
    if isa is None:  # the Keras part once, on the detected instruction set
        check_fit()
    print(f'smoke: kapre_fast {version}, ISA {active or "detected"}: ok')


if __name__ == '__main__':
    main()
