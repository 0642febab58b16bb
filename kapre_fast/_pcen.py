"""librosa.pcen's compression, written once for the array namespaces that share NumPy's names
for it (keras.ops, torch, jax.numpy: exp, log, log1p, expm1): the Keras PCEN layer and the
torch and jax `apply_pcen` (kapre_fast.reference.apply_pcen has the float64 formula).

The smoother M (M[t] = (1 - b) M[t - 1] + b S[t], M[-1] = 1) is each caller's own scan.
"""

from __future__ import annotations

import math


def compress(ops, mel, smooth, constants):
    """P = bias**power * expm1(power * log1p(S / (eps + M)**gain / bias)), with librosa's
    special cases power == 0 and bias == 0; `ops` is the namespace, `constants` the
    spec.PCENConstants. (eps + M)**-gain is exp(-gain (log(eps) + log1p(M / eps))): M = 0 and
    huge M stay finite."""
    _, gain, bias, power, eps = constants
    scaled = mel * ops.exp(-gain * (math.log(eps) + ops.log1p(smooth / eps)))
    if power == 0:
        return ops.log1p(scaled)
    if bias == 0:
        return ops.exp(power * ops.log(scaled))
    return bias**power * ops.expm1(power * ops.log1p(scaled / bias))
