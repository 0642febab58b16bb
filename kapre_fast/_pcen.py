"""librosa.pcen, written once for the array namespaces that share NumPy's names for it (exp,
log, log1p, expm1, zeros_like, ones_like, concatenate(tensors, axis=...)): NumPy, torch and
jax.numpy as they are, TensorFlow through kapre_fast.ops' and kapre_fast.builtin's thin
adapters.

- `compress`: librosa's compression, for every Python caller.
- `smooth`: the smoother M[t] = (1 - b) M[t - 1] + b S[t] (M[-1] = 1, librosa's zi) as a
  parallel doubling scan; `apply` is `smooth` then `compress`. Every parallel caller runs it:
  TensorFlow's KapreFastPcen gradient and XLA fallback (kapre_fast.ops), its builtin/export path
  (kapre_fast.builtin.pcen), kapre_fast.torch.apply_pcen and kapre_fast.jax.apply_pcen (which
  the Keras PCEN layer runs under PyTorch and JAX).
- `smooth_frames`: the same recurrence frame by frame, the one sequential version. It stays
  because its callers are sequential by nature: kapre_fast.reference's float64 truth (the
  oracle the scan is tested against, kept independent of it on purpose) and the streams
  (kapre_fast.streaming), which carry M from chunk to chunk a few frames at a time.
"""

from __future__ import annotations

import math

# Passes of the doubling scan where the number of frames is unknown (a TensorFlow graph with a
# dynamic length): enough for 2**31 frames.
_MOST_PASSES = 31
# float32's smallest normal number.
_FLOAT32_TINY = 2.0**-126


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


def smooth_frames(frames, b, keep, state, valid=None, where=None):
    """The smoother frame by frame: M[t] = keep M[t - 1] + b S[t] (keep = 1 - b, in the
    caller's precision) for the frames S[t] of the iterable `frames`, from M[-1] = `state`;
    the list of M[t]. With `valid` (a sequence, one condition per frame) and `where` (the
    namespace's where(condition, x, y)), M stays as it was on frames that are not valid.
    kapre_fast.reference's float64 truth and the streams (kapre_fast.streaming, which carry
    `state` from chunk to chunk; FixedStep's fixed-size steps freeze it on invalid frames) run
    it."""
    smooth = []
    for t, frame in enumerate(frames):
        updated = keep * state + b * frame
        state = updated if valid is None else where(valid[t], updated, state)
        smooth.append(state)
    return smooth


def shifts(b, frames):
    """The doubling scan's shifts 1, 2, 4, ... for `frames` terms (None: unknown, up to
    2**_MOST_PASSES): those below `frames` whose weight (1 - b)**shift is not 0 (a pass with
    weight 0 adds nothing: b = 1 needs none)."""
    decay = 1.0 - b
    found = []
    shift = 1
    while len(found) < _MOST_PASSES and (frames is None or shift < frames):
        if decay**shift == 0.0:
            break
        found.append(shift)
        shift *= 2
    return found


def _along(axis, begin, end):
    """The index of [begin:end] along `axis` (Python slicing: every namespace's)."""
    return (slice(None),) * axis + (slice(begin, end),)


def smooth(ops, mel, b, time_axis: int):
    """The smoother M[t] = (1 - b) M[t - 1] + b S[t] from M[-1] = 1 of `mel` (any rank) along
    `time_axis`, by doubling (Hillis-Steele): the terms T = [M[-1], b S[0], b S[1], ...], then
    for shift d = 1, 2, 4, ... T[t] += (1 - b)**d T[t - d] (0 where t < d), so that after the
    pass with shift d each T[t] holds its last 2d terms, weighted: ceil(log2(frames + 1))
    passes of slices, a concatenation with zeros and a multiply-add, each linear in the frames,
    instead of a loop over them; M is T without its first frame. Exact (the recurrence's own
    sums, regrouped; in float32 each M[t] within a few roundings of float64, ~log2(frames)
    sums and a weight rounded once per pass, where the frame-by-frame loop's error grows as
    1/b roundings), differentiable in S through every pass. Python slicing past the end gives
    fewer elements, never an error, so a pass is right where the frame count is only known when
    it runs (TensorFlow graphs of unknown length: `shifts(b, None)` passes)."""
    first = mel[_along(time_axis, 0, 1)]
    terms = ops.concatenate([ops.ones_like(first), b * mel], axis=time_axis)
    for shift in shifts(b, terms.shape[time_axis]):
        earlier = ops.concatenate(
            [
                ops.zeros_like(terms[_along(time_axis, 0, shift)]),
                terms[_along(time_axis, 0, -shift)],
            ],
            axis=time_axis,
        )
        weight = (1.0 - b) ** shift
        if weight < _FLOAT32_TINY:
            # TensorFlow and XLA flush a denormal float32 factor to 0 (FTZ), which would drop
            # a large M[t - shift]'s decayed share: the weight as two normal factors instead.
            root = math.sqrt(weight)
            terms = terms + root * (root * earlier)
        else:
            terms = terms + weight * earlier
    return terms[_along(time_axis, 1, None)]


def apply(ops, mel, constants, time_axis: int):
    """librosa.pcen of `mel` along `time_axis`: `smooth`, then `compress`."""
    return compress(ops, mel, smooth(ops, mel, constants.b, time_axis), constants)
