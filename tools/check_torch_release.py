"""Checks that kapre_fast's torch operator library (one _torch_ops.so, built on LibTorch's stable
ABI for its target release) works in the torch this Python has: the operators against
kapre_fast.reference (float32 rounding), torch.compile(fullgraph=True) against eager, and a
gradient against central differences of the reference. Prints one line per check and exits 1 on
a failure.

    PYTHONPATH=<a checkout with its build linked in> <venv>/bin/python tools/check_torch_release.py
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import kapre_fast.torch as kft
from kapre_fast import _loader, reference
from kapre_fast.spec import FrontEnd

KWARGS = dict(n_fft=256, hop_length=64, sample_rate=8000, n_mels=16, return_decibel=True)


def main() -> int:
    info = _loader.build_info()
    print(
        f'torch {torch.__version__}; library built beside torch {info.get("torch")} for torch '
        f'{info.get("torch_target")} and later: {kft._ops.LIBRARY}'
    )
    x = np.random.default_rng(0).standard_normal((2, 3000, 1)).astype(np.float32)
    failures = 0

    def report(name, ok, detail):
        nonlocal failures
        failures += not ok
        print(f'{"ok  " if ok else "FAIL"} {name}: {detail}')

    spec = FrontEnd.melspectrogram(**KWARGS)
    ours = kft.melspectrogram(torch.from_numpy(x), **KWARGS).numpy()
    truth = reference.compute(spec, x.astype(np.float64))
    error = float(np.abs(ours - truth).max())
    report('melspectrogram vs reference', error < 1e-2, f'max |dB error| {error:.2e}')
    X = kft.stft(torch.from_numpy(x), n_fft=256, hop_length=64, pad_begin=True, pad_end=True)
    waveform = kft.istft(X, n_fft=256, hop_length=64).numpy()
    trim = 256 - 64  # pad_begin's zeros
    error = float(np.abs(waveform[:, trim : trim + 3000] - x).max())
    report('stft -> istft round trip', error < 1e-4, f'max error {error:.2e}')

    def pipeline(audio):
        return kft.melspectrogram(audio, **KWARGS)

    compiled = torch.compile(pipeline, fullgraph=True, backend='aot_eager', dynamic=True)
    for length in (3000, 2500):
        audio = torch.from_numpy(x[:, :length])
        equal = torch.equal(compiled(audio), pipeline(audio))
        report(f'torch.compile (dynamic) at {length} samples', equal, 'equal to eager')

    stft_spec = FrontEnd.stft_magnitude(n_fft=64, hop_length=16)
    small = x[:1, :300].astype(np.float64)
    source = torch.from_numpy(small.astype(np.float32)).requires_grad_(True)
    direction = np.random.default_rng(1).standard_normal(small.shape)
    weights = np.random.default_rng(2).standard_normal(reference.compute(stft_spec, small).shape)
    (gradient,) = torch.autograd.grad(
        kft.compute(stft_spec, source), source, torch.from_numpy(weights.astype(np.float32))
    )
    step = 1e-4

    def loss(signal):
        return float((reference.compute(stft_spec, signal) * weights).sum())

    numeric = (loss(small + step * direction) - loss(small - step * direction)) / (2 * step)
    analytic = float((gradient.double().numpy() * direction).sum())
    relative = abs(analytic - numeric) / abs(numeric)
    report('gradient vs finite differences', relative < 1e-3, f'relative error {relative:.1e}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
