"""librosa.pcen, written once for the array namespaces that share NumPy's names for it
(NumPy, keras.ops, torch, jax.numpy: exp, log, log1p, expm1): `compress` for every Python
caller (kapre_fast.reference's float64 truth, the Keras PCEN layer, the torch, jax and
TensorFlow recomputations, the streams), and `apply`, the smoother M (M[t] = (1 - b) M[t - 1] +
b S[t], M[-1] = 1) as a parallel associative scan then the compression, for the namespaces that
have one (keras.ops under PyTorch and JAX, jax.numpy), and `smooth_frames`, the same recurrence
frame by frame (NumPy's reference and the streams). The TensorFlow ops' smoother is a tf.scan
(kapre_fast.ops), torch's a doubling scan (kapre_fast.torch).
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


def smooth_frames(frames, b, keep, state):
    """The smoother frame by frame: M[t] = keep M[t - 1] + b S[t] (keep = 1 - b, in the
    caller's precision) for the frames S[t] of the iterable `frames`, from M[-1] = `state`;
    the list of M[t]. kapre_fast.reference's float64 truth and the streams (kapre_fast.streaming,
    which carry `state` from chunk to chunk) run it."""
    smooth = []
    for frame in frames:
        state = keep * state + b * frame
        smooth.append(state)
    return smooth


def apply(ops, associative_scan, mel, constants, time_axis: int):
    """librosa.pcen of the 4-D `mel` along `time_axis`: the smoother as `associative_scan`
    (keras.ops.associative_scan or jax.lax.associative_scan, the same signature) of the affine
    maps M -> decay M + b S, exact, with gradients to S through M too, then `compress`."""
    b = constants.b
    # (1 - b) per frame, broadcast over the other axes, and its powers (1 - b)^(t + 1): what
    # M[-1] = 1 contributes to M[t].
    index = [slice(0, 1)] * 4
    index[time_axis] = slice(None)
    decay = ops.ones_like(mel[tuple(index)]) * (1.0 - b)
    _, smoothed = associative_scan(
        lambda left, right: (left[0] * right[0], right[0] * left[1] + right[1]),
        (ops.broadcast_to(decay, mel.shape), b * mel),
        axis=time_axis,
    )
    return compress(ops, mel, smoothed + ops.cumprod(decay, axis=time_axis), constants)
