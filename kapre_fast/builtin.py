"""Every kapre_fast front end in plain TensorFlow ops that TFLite's BUILTIN op set has (imports
TensorFlow, never the op library).

The same Backend protocol as `kapre_fast.ops` (kapre_fast._backends, registry name 'builtin':
`compute(spec, x)`, `inverse(spec, X)`, `compute_mfcc(spec, matrix, x)`, `apply_pcen(mel,
constants, time_axis)`; `front_end(audio, spec)`, `inverse_stft(stft, spec)`, `mfcc(audio, spec,
matrix)` and `pcen(features, constants, data_format)` are the same under their earlier names and
argument orders, kept as aliases), for graphs that must run without kapre_fast's native code:
SavedModels served by stock TensorFlow, TFLite with builtin ops only, ONNX, and XLA (which
cannot compile custom ops). It is held to the same accuracy grid as the fused op
(tests/test_builtin.py).

How each step is written so that it converts:
- framing and real FFT fused (_fft_plan): the frames are cut in the FFT's sample order (one
  `tf.gather` of whole blocks of the waveform seen as (n2, u) when the hop allows it, else a
  gather of samples), then a mixed-radix Cooley-Tukey FFT in two or three matmul stages (a
  first radix of up to 64 real samples, the others at most 16, where n_fft and the hop allow,
  see _factors): batched matmuls whose tables hold the window, the DFT of the first digit and
  the twiddles (real input: only r1 // 2 + 1 bins of it; for dB outputs, a sum of 32 samples
  or more in parts, a matmul each, added: float32 rounding of a quiet bin grows with the
  length of a sum, see _MAX_CHAIN), 4-axis transposes, a
  second batched matmul with its twiddles for three stages, and one matmul for the last (its
  real and imaginary parts side by side in one table). Tables are built in float64 with exact
  integer phase reduction, then rounded once to float32; no complex tensor and no FFT kernel
  (TFLite's RFFT2D, which the converter makes of tf.signal.rfft, ran configs A-D 1.7-4x slower
  on LiteRT: docs/deploy.md, bench/tflite_rfft2d.py). The FFT's bins come out in its own order
  (half of them as conjugates of the others): the filterbank's rows are permuted to that order,
  other outputs gather the bins back into order (as rows: the bin axis moved first, gathered,
  moved back). n_fft <= 64 and primes: one dense DFT matmul. A magnitude or power output
  keeps the frames as the last axis through the stages (every table on the left of its matmul,
  no transpose of the spectrum; TensorFlow, LiteRT and onnxruntime run it faster;
  `frames_last_stages(False)` traces the usual layout instead); inside
  `xnnpack_stages()` too (export.to_tflite only) a strided plan's frames are slices of whole
  blocks, concatenated, and the batch rides in the matmuls' columns (_xnnpack_features: ops
  LiteRT's XNNPACK delegate runs, where the frames GATHER ran in TFLite's reference kernel);
- time chunks (_time_chunks): a magnitude or power output with a static frame count is
  computed CHUNK_FRAMES frames per example at a time, so that each chunk's spectrum stays in
  the caches through the stages;
- magnitude `sqrt(re^2 + im^2)` (the squares' pairs summed by a matmul; or the power, for a
  preset with power=2), phase `atan2`,
  filterbank matmul, the dB formula of FrontEnd.decibel (kapre's, or a preset's);
- a preset's centring (center, pad_mode): `tf.pad`, constant or REFLECT (TFLite MIRROR_PAD);
- inverse STFT: the irfft as two matmuls (_inverse_plan: n_fft = r1 * r2, the spectrum
  extended to all bins by a reversed slice, a complex DFT over k2 for every k1 <= r1 / 2, then a
  batched matmul over n2 that takes twice the real part, with the synthesis window folded in;
  one dense [irfft * window] table matmul for n_fft <= 64 and primes), then overlap-add.
Complex tensors appear only where the layer's interface is complex (the STFT layer's output,
the inverse STFT's input): `stft` builds its result with `tf.complex` as its last op, and
`inverse` reads the two real parts back from that op when it is there, so an STFT > iSTFT
graph has no complex op left.

The FFT costs about n_fft * (r1 + 2 p [+ 2 q]) multiply-adds per frame (n_fft 1024 as
64 x 16: 96 per sample, 98 K per frame; n_fft 2048 as 32 x 8 x 8: 64 per sample; a dense DFT
matmul of 2048: 4.2 M): where two stages are possible they are preferred to three radix-16
stages, as a pass over the spectrum costs more on XNNPACK and onnxruntime than the arithmetic of
a larger first radix (see _STAGE_COST), except for dB outputs, whose first radix is at most
sqrt(n_fft) for accuracy (n_fft 512 as 16 x 4 x 8, 1024 as 32 x 4 x 8; see _factors); a prime
n_fft is one dense DFT (n_fft^2), so n_fft is limited to MAX_N_FFT here. The inverse STFT's
irfft takes h (2 r2)^2 + 2 h r1 r2 multiply-adds per frame (h = r1 // 2 + 1; 2048 as 64 x 32:
270 K, where its dense table took 4.2 M; TF, 1 thread, 6832 frames: 66 against 234 ms).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import types

import numpy as np
import tensorflow as tf

from kapre_fast import _checks, _composition, _pcen, _weights
from kapre_fast.spec import FrontEnd, require_kapre_numerics, time_axis

__all__ = [
    'compute',
    'inverse',
    'compute_mfcc',
    'apply_pcen',
    'front_end',
    'mfcc',
    'pcen',
    'inverse_stft',
    'check_spec',
    'frames_last_stages',
    'xnnpack_stages',
    'MAX_N_FFT',
]

# The DFT tables grow as n_fft^2: 8192 points is a 256 MiB table pair at most.
MAX_N_FFT = 8192


def check_spec(spec: FrontEnd, inverse: bool = False):
    """ValueError when the builtin path cannot compute `spec`: n_fft above MAX_N_FFT, or (for
    the inverse STFT, kapre's InverseSTFT) a preset."""
    if inverse:
        require_kapre_numerics(spec, 'the builtin inverse STFT (kapre_fast.builtin.inverse)')
    if spec.n_fft > MAX_N_FFT:
        raise ValueError(
            f'n_fft={spec.n_fft} is above kapre_fast.builtin.MAX_N_FFT={MAX_N_FFT}: the builtin '
            "path's DFT tables grow as n_fft**2; use implementation='fused' for larger FFTs"
        )


def _frame_length(spec: FrontEnd) -> int:
    # The rFFT crops a frame longer than n_fft and zero-pads a shorter one at its end, so only
    # the first min(frame_length, n_fft) samples of each frame reach the transform (a preset's
    # frames are n_fft long, its window zero-padded on both sides).
    return min(spec.frame_length, spec.n_fft)


def _unit_phase(spec: FrontEnd, bins, samples):
    """2 pi k n / n_fft for each (sample n, bin k), reduced modulo n_fft in integers first so
    float64 keeps full precision even for n_fft = MAX_N_FFT."""
    return 2.0 * np.pi * (np.outer(samples, bins) % spec.n_fft) / spec.n_fft


def _read_only(array):
    array.flags.writeable = False
    return array


# Up to this n_fft the transform is one dense matmul stage (a few ops beat two tiny stages).
_DENSE_MAX_N_FFT = 64
# Largest radix of the first stage (a real DFT of r1 samples in one matmul) and of the others
# (complex DFTs: radix 32 there doubled the largest dB error of configs A and D). Rounding in
# float32 sums: a quiet bin comes out of sums whose terms carry the loud bins that alias onto it
# (stage 1 sums samples r2 apart, the last stage bins r1 apart), so its error grows with the
# length of those sums: a first radix of 128 (config A as 128 x 16) put A 9.9e-4 dB from the
# fused op (the path before the matmul FFT: 6.0e-4), 64 (A as 32 x 8 x 8) 6.6e-4, in the same
# onnxruntime time.
_MAX_FIRST_RADIX = 64
_MAX_RADIX = 16
# For dB outputs (return_decibel), a first stage summing this many samples or more is computed
# in ceil(rows / _MAX_CHAIN) parts, at least two, as even as whole framing shifts allow (a
# gather, or a slice for one shift, and a matmul each, added by ADDs: TFLite's ADD_N is slower).
# The dB scale shows a quiet bin's relative
# error, a magnitude's is measured against the peak (config C: 2.4e-4 in one sum, the previous
# path 3.1e-4; parts would cost it 20% on onnxruntime), so linear outputs are one sum. Largest
# difference from the fused op, in parts / one sum (the path before the matmul FFT): config A
# (32 x 8 x 8, 2 x 16) 4.2e-4 / 6.6e-4 dB in the usual layout (frames last, in parts: 4.7e-4)
# (6.0e-4), D (64 x 16, 2 x 32) 0.0088 / 0.015 (0.0089), on every target.
_MAX_CHAIN = 32
# For dB outputs the first radix is at most sqrt(n_fft), the largest such (_factors). A loud
# component that is not in a quiet bin's residue class still enters that bin's stage-1 sum as
# terms turning by 2 pi (k - k1) / r1 per sample, whose float32 partial sums grow with r1
# before they cancel (and the last stage's with p likewise): a balanced r1 keeps both short.
# Largest difference from the fused op (frames last, TF), on bench/configs.synthesize's input and
# seeds 1, 2, 3: config B (n_fft 512) as 32 x 16 (the cheapest) 0.95 / 1.64 / 0.97 / 1.17e-3
# dB, 32 x 4 x 4 0.81 / 0.93 / 1.06 / 1.21e-3, 16 x 4 x 8 0.45 / 0.81 / 0.90 / 0.54e-3,
# 8 x 8 x 8 0.51 / 0.85 / 0.56 / 0.60e-3 (the path before the matmul FFT: 6.7e-4 on the
# bench's input); config D (1024) as 64 x 16 0.0088 / 0.0070 / 0.011 / 0.019, 32 x 4 x 8
# 0.0057 / 0.0056 / 0.0085 / 0.037, 16 x 8 x 8 0.014 / 0.0085 / 0.0089 / 0.023: D's largest
# differences sit where a log band's edge weights a quiet bin (0.002 at the 99.99th
# percentile for every plan) and move from one input to another; config A keeps 32 x 8 x 8
# (64 x 8 x 4: 5.6e-4, 32 x 8 x 8: 4.7e-4). onnxruntime and LiteRT: B 7.8 / 6.7 ms against
# 7.3 / 6.0 for 32 x 16, D 14.0 / 12.9 against 13.9 / 13.6 for 64 x 16 (1 thread, AMD EPYC).
# Over 12 other dB mel framings (n_fft 256-4096; 8 x 2 s chirps at 16 kHz with noise 40 dB down,
# 4 seeds; mean of the largest differences, this rule / the cheapest plan): better for 6
# (n_fft 400 8.9 / 11.0e-4, 512 with win 400 5.8 / 8.1e-4, 768 3.2 / 5.3e-4, 1024 1.8 / 3.4e-4,
# 1536 and 4096 by 10-20%), worse for 2 (256 at hop 64 5.4 / 4.2e-3, 512 at hop 128 7.4 /
# 6.6e-4), the same plan or within 1% for 4.
# A third stage costs one more transpose and matmul pass over the spectrum: counted as this many
# multiply-adds per sample when choosing the factors. A pass costs about as much as the
# arithmetic of a large first radix on LiteRT (XNNPACK) and onnxruntime: on configs B and D
# two stages with r1 32-64 beat three with radices <= 16 (D 21.0 vs 27.6 ms on LiteRT, before
# the time chunks, which made the passes cheaper: see the note above for dB outputs); at
# n_fft 2048 (A: 32 x 8 x 8, for accuracy, see above) and 4096 (C) three stages are as fast on
# onnxruntime.
_STAGE_COST = 104


def _factors(n: int, hop: int = 0, decibel: bool = False):
    """(r1, p, q), r1 * p * q = n, of the matmul FFT: stage 1 turns r1 real samples into
    r1 // 2 + 1 complex bins, then a complex DFT of r2 = p * q points, one stage of p points
    (q = 1) or two (q, then p; see _fft_plan). The factors with the fewest multiply-adds per sample
    (r1 + 2 p [+ 2 q + _STAGE_COST for a third stage]; on a tie the larger r1, fewer passes over
    a smaller grid), first among those whose r2 divides `hop` (the framing is then reshapes and
    gathers of whole blocks, see _fft_plan) and whose radices are small (r1 <=
    _MAX_FIRST_RADIX, p and q <= _MAX_RADIX: each output a sum of few products, float32 error
    near that of an FFT library),
    then among those whose r2 divides `hop`, then those with small radices, then all. For a dB
    output (`decibel`) the first choice is narrower: of those whose r2 divides `hop` with small
    radices and r1 <= sqrt(n), the largest r1, then the fewest multiply-adds (accuracy; see the
    note above _STAGE_COST). (n, 1, 1), the dense DFT, for n <= _DENSE_MAX_N_FFT and for a prime
    n."""
    if n <= _DENSE_MAX_N_FFT:
        return n, 1, 1
    candidates = []
    for p in range(2, n):
        for q in range(1, n // p + 1):
            if n % (p * q) == 0 and n // (p * q) > 1:
                r1 = n // (p * q)
                extra = 2 * q + _STAGE_COST if q > 1 else 0
                candidates.append((r1 + 2 * p + extra, -r1, p, q))
    if not candidates:
        return n, 1, 1
    dividing = [c for c in candidates if hop % (c[2] * c[3]) == 0]
    small = [c for c in candidates if -c[1] <= _MAX_FIRST_RADIX and max(c[2], c[3]) <= _MAX_RADIX]
    balanced = [c for c in dividing if c in small and c[1] ** 2 <= n] if decibel else []
    if balanced:
        largest = min(c[1] for c in balanced)  # -r1
        balanced = [c for c in balanced if c[1] == largest]
    first = balanced or [c for c in dividing if c in small]
    _, minus_r1, p, q = min(first or dividing or small or candidates)
    return -minus_r1, p, q


class _Plan(types.SimpleNamespace):
    """The constants of the matmul real FFT of one spec (see _fft_plan)."""


@functools.lru_cache(maxsize=32)
def _fft_plan(spec: FrontEnd) -> _Plan:
    """The windowed real FFT of n_fft = r1 * r2 points, r2 = p * q (_factors), as two or three
    matmul stages (Cooley-Tukey, four-step): sample s = r2 n1 + n2, bin k = k1 + r1 k2, and for
    three stages n2 = a + p b, k2 = c2 + q c1.

    - framing: when r2 divides hop_length (`strided`), sample s of frame f is sample
      r2 (f step + n1) + n2 of the waveform, step = hop_length / r2: the waveform as (n2, u) (one
      reshape and 2-axis transpose of the input) holds every frame's n1 samples as a run of u, so
      the frames are `shifts` shifted runs of its (u // step, step) blocks (n1 up to
      ceil(frame length / r2), the n1 that can meet the window, rounded up to whole blocks): one
      gather of whole blocks per part of stage 1, or a slice for a part of one shift.
      Otherwise a gather of `offsets` (r2, n1) per frame start and part;
    - stage 1, a batched matmul over n2: table1 (r2, n1, 2 h), h = r1 // 2 + 1, columns
      (k1, re|im) = window[s] * exp(-2 pi i s k1 / n_fft) (zero rows past the window): the DFT
      over n1 with the window and the twiddle exp(-2 pi i n2 k1 / n_fft) folded in; k1 > r1 / 2
      is never computed, as X[n_fft - k] = conj(X[k]) holds those bins (real input); one 4-axis
      transpose brings b (or, for two stages, n2) last. The sum over n1 is computed in `parts`
      (n1 ranges, whole shifts when strided; two or more for dB outputs whose sum has
      _MAX_CHAIN samples or more, else one), one matmul each, added;
    - three stages only: stage 2, a batched matmul over a: table2 (p, 2 q, 2 q), rows
      (re|im, b), columns (c2, re|im), the q-point DFT over b with the twiddle
      exp(-2 pi i a c2 / r2) folded in; one 4-axis transpose brings a last;
    - last stage, one matmul: last (2 p, 2 p), rows (re|im, a), columns (re|im, c1), the
      p-point complex DFT, giving the grid G[k1, c2, c1] = X[k1 + r1 (c2 + q c1)] for k1 < h
      as (h q, re|im, p) per frame (_Grid);
    - bin k of the spectrum is its grid entry for k1 = k mod r1 < h, else the conjugate of the
      grid entry of n_fft - k: grid_index (n_freq,) into the flattened grid and imag_sign
      (n_freq,), -1 where the conjugate is taken.

    For r2 = 1 (the dense DFT) stage 1 is one plain matmul and there is no other stage. Tables
    are computed in float64 with the phase reduced modulo n_fft (or r2, or p) in integers, then
    rounded once to float32."""
    n, hop, length = spec.n_fft, spec.hop_length, _frame_length(spec)
    r1, p, q = _factors(n, hop, spec.return_decibel)
    r2, h = p * q, r1 // 2 + 1
    rows = -(-length // r2)  # n1 that can meet the window
    strided = r2 > 1 and hop % r2 == 0
    step = hop // r2 if strided else 0
    shifts = -(-rows // step) if strided else 0
    if strided:
        rows = shifts * step
    window = np.zeros(r1 * r2 + rows * r2)
    window[:length] = spec.window()[:length]
    samples = r2 * np.arange(rows)[np.newaxis, :] + np.arange(r2)[:, np.newaxis]  # (n2, n1)
    angle = 2.0 * np.pi * ((samples[..., np.newaxis] * np.arange(h)) % n) / n  # (r2, rows, h)
    table1 = np.stack([np.cos(angle), -np.sin(angle)], axis=-1) * window[samples][..., None, None]
    table1 = table1.reshape(r2, rows, 2 * h)
    tables = dict(table1=table1)
    if q > 1:  # stage 2 for each a: rows (re|im, b), columns (c2, re|im), twiddle folded
        a, b, c2 = np.arange(p), np.arange(q), np.arange(q)
        phase = 2.0 * np.pi * ((c2 * (p * b[:, None] + a[:, None, None])) % r2) / r2  # (a, b, c2)
        cos, sin = np.cos(phase), np.sin(phase)
        tables['table2'] = np.concatenate(
            [np.stack([cos, -sin], axis=-1), np.stack([sin, cos], axis=-1)], axis=1
        ).reshape(p, 2 * q, 2 * q)
    digits = np.arange(p)  # the last stage: a plain complex DFT of p points
    angle2 = 2.0 * np.pi * (np.outer(digits, digits) % p) / p
    tables['last'] = np.block([[np.cos(angle2), -np.sin(angle2)], [np.sin(angle2), np.cos(angle2)]])
    bins = np.arange(spec.n_freq)
    mirrored = bins % r1 >= h
    source = np.where(mirrored, n - bins, bins)
    grid_index = (source % r1) * r2 + (source // r1 % q) * p + source // r1 // q
    offsets = np.minimum(samples, length - 1)
    # for dB outputs, stage 1's sums of _MAX_CHAIN samples or more in ceil(rows / _MAX_CHAIN)
    # parts, at least two, as even as whole units allow (n1 ranges of whole shifts if strided);
    # otherwise, and for the dense DFT (r2 = 1), one matmul
    unit = step if strided else 1
    units = rows // unit
    split = spec.return_decibel and r2 > 1 and rows >= _MAX_CHAIN
    count = min(units, max(2, -(-rows // _MAX_CHAIN))) if split else 1
    bounds = [unit * ((units * i) // count) for i in range(count + 1)]
    parts = tuple(zip(bounds[:-1], bounds[1:]))
    return _Plan(
        r1=r1,
        p=p,
        q=q,
        r2=r2,
        h=h,
        strided=strided,
        step=step,
        shifts=shifts,
        parts=parts,
        offsets=_read_only(offsets.astype(np.int32)),
        **{name: _read_only(table.astype(np.float32)) for name, table in tables.items()},
        grid_index=_read_only(grid_index.astype(np.int32)),
        imag_sign=_read_only(np.where(mirrored, -1.0, 1.0).astype(np.float32)),
    )


def _pair_weights(bins, n: int) -> np.ndarray:
    """float64 per bin of an n-point real spectrum: 1 for a bin that is its own conjugate (DC
    and, for even n, Nyquist: their imaginary parts are dropped), 2 for the others, each of
    which stands for itself and its conjugate n - k in a sum over the half spectrum."""
    return np.where((bins == 0) | (2 * bins == n), 1.0, 2.0)


@functools.lru_cache(maxsize=32)
def _synthesis_table(spec: FrontEnd) -> np.ndarray:
    """(2 * n_freq, frame_length) float32: [Re X, Im X] @ table = the irfft of n_fft, cropped to
    frame_length and multiplied by the inverse STFT's synthesis window. As TF's irfft, the
    imaginary parts of the DC and (even n_fft) Nyquist bins are ignored."""
    length = _frame_length(spec)
    bins = np.arange(spec.n_freq)
    phase = _unit_phase(spec, np.arange(length), bins)  # (n_freq, length)
    weight = _pair_weights(bins, spec.n_fft)
    imaginary_weight = np.where(weight == 2.0, 2.0, 0.0)
    window = spec.inverse_window()[np.newaxis, :length] / spec.n_fft
    table = (
        np.concatenate(
            [
                weight[:, np.newaxis] * np.cos(phase),
                -imaginary_weight[:, np.newaxis] * np.sin(phase),
            ]
        )
        * window
    )
    return _read_only(table.astype(np.float32))


def _inverse_factors(n: int):
    """(r1, r2), r1 * r2 = n, of the inverse STFT's matmul irfft (_inverse_plan): the pair with
    the fewest multiply-adds per frame, h (2 r2)^2 for stage A and r2 2 h r1 for stage B
    (h = r1 // 2 + 1), when fewer than the dense table's n * (n + 2); else (n, 1), the dense
    table (n <= _DENSE_MAX_N_FFT and primes; 2 x a prime p is p x 2)."""
    best, dense = (n, 1), n * (n + 2)
    if n <= _DENSE_MAX_N_FFT:
        return best
    for r1 in range(2, n):
        if n % r1 == 0:
            r2, h = n // r1, r1 // 2 + 1
            cost = h * (2 * r2) ** 2 + r2 * 2 * h * r1
            if cost < dense:
                best, dense = (r1, r2), cost
    return best


@functools.lru_cache(maxsize=32)
def _inverse_plan(spec: FrontEnd) -> types.SimpleNamespace:
    """The inverse STFT's irfft of n_fft = r1 * r2 points (_inverse_factors) as two matmuls,
    cropped to frame_length and multiplied by the synthesis window: bin k = k1 + r1 k2, sample
    s = r2 n1 + n2, so exp(2 pi i s k / n) = exp(2 pi i n1 k1 / r1) exp(2 pi i n2 k1 / n)
    exp(2 pi i n2 k2 / r2), and only k1 <= r1 / 2 is needed (the spectrum of a real signal:
    the terms of k1 and r1 - k1 are conjugates, so their sum is twice the real part of one):
    - `imag_mask` (n_freq,): 0 for the DC and (even n_fft) Nyquist bins, whose imaginary parts
      TF's irfft ignores, else 1;
    - stage A, for every k1: the complex DFT over k2, table_a (2 r2, 2 r2) on the left, rows
      (re|im, n2), columns (re|im, k2): exp(+2 pi i n2 k2 / r2);
    - stage B, for every n2: table_b (r2, 2 h, m), rows (re|im, k1), columns the n1 < m =
      ceil(frame_length / r2) that reach the frame: c_k1 Re(exp(2 pi i k1 s / n) Y), times the
      synthesis window at s over n_fft (zero past frame_length); c_k1 = 1 for k1 = 0 and
      k1 = r1 / 2, else 2.
    Tables in float64 with the phases reduced modulo n_fft (or r2) in integers, rounded once to
    float32. For (n, 1) (_inverse_factors) the dense _synthesis_table is used instead."""
    n, length = spec.n_fft, _frame_length(spec)
    r1, r2 = _inverse_factors(n)
    h, m = r1 // 2 + 1, -(-length // r2)
    imag_mask = _pair_weights(np.arange(spec.n_freq), n) == 2.0  # 0 for DC and Nyquist
    k2 = np.arange(r2)
    phase = 2.0 * np.pi * (np.outer(k2, k2) % r2) / r2  # (n2, k2)
    cos, sin = np.cos(phase), np.sin(phase)
    table_a = np.block([[cos, -sin], [sin, cos]])
    samples = r2 * np.arange(m)[np.newaxis, :] + np.arange(r2)[:, np.newaxis]  # (n2, n1)
    k1 = np.arange(h)
    theta = 2.0 * np.pi * ((samples[:, np.newaxis, :] * k1[:, np.newaxis]) % n) / n  # (n2,k1,n1)
    weight = _pair_weights(k1, r1)[:, np.newaxis]
    window = np.zeros(m * r2)
    window[:length] = spec.inverse_window()[:length] / n
    scale = weight * window[samples][:, np.newaxis, :]  # (n2, k1, n1)
    table_b = np.concatenate([np.cos(theta) * scale, -np.sin(theta) * scale], axis=1)
    return types.SimpleNamespace(
        r1=r1,
        r2=r2,
        h=h,
        m=m,
        imag_mask=_read_only(imag_mask.astype(np.float32)),
        table_a=_read_only(table_a.astype(np.float32)),
        table_b=_read_only(table_b.astype(np.float32)),
    )


def _inverse_frames(real, imag, spec: FrontEnd):
    """The windowed irfft frames, (..., frame_length), of the bins real, imag (..., n_freq):
    the spectrum extended to all n_fft bins (the conjugates of bins 1 .. n_fft - n_freq,
    reversed, appended: slices and a concatenation, no gather), seen as (re|im, k2, k1) and
    cropped to k1 < h, stage A (_inverse_plan's table_a on the left of a matmul), one transpose,
    stage B (a batched matmul over n2), one transpose back to sample order; or one matmul with
    the dense _synthesis_table for n_fft <= 64 and primes."""
    plan = _inverse_plan(spec)
    if plan.r2 == 1:
        return _last_axis_matmul(tf.concat([real, imag], axis=-1), _synthesis_table(spec))
    n, leading = spec.n_fft, _leading_shape(real)
    imag = imag * plan.imag_mask
    mirrored = slice(1, n - spec.n_freq + 1)
    x = tf.concat(
        [real, tf.reverse(real[..., mirrored], [-1]), imag, -tf.reverse(imag[..., mirrored], [-1])],
        axis=-1,
    )  # (..., (re|im, k)), k = k1 + r1 k2
    x = tf.reshape(x, [-1, 2, plan.r2, plan.r1])[..., : plan.h]
    x = tf.matmul(tf.constant(plan.table_a), tf.reshape(x, [-1, 2 * plan.r2, plan.h]))
    x = tf.transpose(tf.reshape(x, [-1, 2, plan.r2, plan.h]), [2, 0, 1, 3])  # (n2, .., re|im, k1)
    x = tf.matmul(tf.reshape(x, [plan.r2, -1, 2 * plan.h]), tf.constant(plan.table_b))
    x = tf.reshape(tf.transpose(x, [1, 2, 0]), [-1, plan.m * plan.r2])  # (.., (n1, n2))
    length = _frame_length(spec)
    return tf.reshape(x[:, :length], leading + [length])


@functools.lru_cache(maxsize=32)
def _grid_filterbank(spec: FrontEnd) -> np.ndarray:
    """(h * r2, n_features) float32: the filterbank with its rows moved from bin order to the
    grid of _fft_plan (grid entries of no bin: zero rows), so it applies to the grid directly."""
    plan = _fft_plan(spec)
    table = np.zeros((plan.h * plan.r2, spec.n_features), np.float32)
    table[plan.grid_index] = spec.dense_filterbank()
    return _read_only(table)


def _dim(tensor, axis):
    """A static size when known, else the dynamic one (keeps static shapes static)."""
    size = tensor.shape[axis]
    return size if size is not None else tf.shape(tensor)[axis]


def _batch_reshape(x, shape):
    """tf.reshape(x, shape) with shape[0] (the batch) given as -1 where the other sizes are
    static and nonzero: the converters then see a constant shape (TFLite: no SHAPE, PACK and
    RESHAPE of a computed shape, which XNNPACK does not run) where a dynamic batch would make
    them compute it."""
    if all(isinstance(size, int) and size > 0 for size in shape[1:]):
        shape = [-1] + list(shape[1:])
    return tf.reshape(x, shape)


def _leading_shape(x):
    """x's sizes but the last, each static where known: reshaping to them keeps those sizes
    static for TF and for the converters' own shape inference (a later Conv2D needs to know its
    channels)."""
    return [_dim(x, axis) for axis in range(x.shape.rank - 1)]


def _last_axis_matmul(x, matrix):
    """x (..., m) @ matrix (m, n) as one 2-D matmul (TFLite: FULLY_CONNECTED) over the
    flattened leading axes."""
    flat = tf.matmul(tf.reshape(x, [-1, matrix.shape[0]]), tf.constant(matrix))
    return tf.reshape(flat, _leading_shape(x) + [matrix.shape[1]])


def _waveforms(audio, spec: FrontEnd):
    """float32 (batch, channels, time) from audio in spec.input_data_format."""
    audio = tf.convert_to_tensor(audio)
    if not audio.dtype.is_floating:
        raise TypeError(f'audio must be a floating-point tensor, got dtype {audio.dtype.name}')
    if audio.shape.rank != 3:
        raise ValueError(f'audio must have 3 axes, got shape {audio.shape}')
    audio = tf.cast(audio, tf.float32)
    if spec.center_padding:  # a preset's centring, as kapre_fast.ops pads before its op
        audio = _weights.centred(spec, audio, tf.pad)
    if spec.input_data_format == 'channels_last':  # one channel: a reshape, not a copy
        if audio.shape[2] == 1:
            return _batch_reshape(audio, [_dim(audio, 0), 1, _dim(audio, 1)])
        audio = tf.transpose(audio, [0, 2, 1])
    return audio


def _frame_starts(waveforms, spec: FrontEnd):
    """(waveforms, n_frames): [pad_begin] and the frames tf.signal.frame makes (pad_end: zeros
    appended just far enough for the last frame), frame f starting at f * hop_length. n_frames
    is a Python int when the time axis is static."""
    if spec.pad_begin_length:
        waveforms = tf.pad(waveforms, [[0, 0], [0, 0], [spec.pad_begin_length, 0]])
    total = _dim(waveforms, 2)
    hop, length = spec.hop_length, _frame_length(spec)
    if spec.pad_end:
        n_frames = (total + hop - 1) // hop
        waveforms = _padded(waveforms, (n_frames - 1) * hop + length - total)
    else:
        # Too-short audio gives no frames (the layers refuse static ones when they are built).
        n_frames = 1 + (total - spec.frame_length) // hop
        n_frames = max(n_frames, 0) if isinstance(total, int) else tf.maximum(n_frames, 0)
    return waveforms, n_frames


# Frames of each example per time chunk of a magnitude output (_time_chunks).
CHUNK_FRAMES = 32


def _time_chunks(waveforms, n_frames, spec: FrontEnd):
    """[(waveforms, starts)]: the frames cut in time into ceil(n_frames / CHUNK_FRAMES) chunks
    of nearly equal size when n_frames is static (one chunk when it is not), each chunk the
    waveforms' samples its frames read (and the blocks a strided plan reads past them, where
    the waveforms have them) and its frame starts in them. Each chunk is computed on its own
    (the same products and sums: equal results), so the spectrum of one chunk, a few MiB for
    the configurations of bench/configs.py, stays in the caches from one stage to the next,
    where one pass of the whole batch's went to memory and back (onnxruntime and LiteRT run
    configs A-D 1.2-1.6x faster, docs/deploy.md)."""
    hop = spec.hop_length
    if not isinstance(n_frames, int) or n_frames <= CHUNK_FRAMES:
        return [(waveforms, tf.range(n_frames) * hop)]
    total = waveforms.shape[2]
    count = -(-n_frames // CHUNK_FRAMES)
    bounds = [n_frames * i // count for i in range(count + 1)]
    plan = _fft_plan(spec)
    # a strided plan reads whole hops: n_frames + shifts - 1 of them (_first_stage)
    reach = plan.shifts * hop if plan.strided else _frame_length(spec)
    chunks = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        end = min((stop - 1) * hop + reach, total)
        chunks.append((waveforms[:, :, start * hop : end], tf.range(stop - start) * hop))
    return chunks


class _Grid(types.SimpleNamespace):
    """The windowed rFFT on the grid of _fft_plan: `values` float32 (batch, channels, frames,
    rows, 2 width), the real parts of each row then its imaginary parts (rows * width =
    h * r2, in grid order: bin order by grid_index)."""

    def parts(self):
        """(real, imag), each (batch, channels, frames, h * r2)."""
        shape = _leading_shape(self.values)[:3] + [self.size]
        return [tf.reshape(part, shape) for part in tf.split(self.values, 2, axis=-1)]

    def power(self):
        """re^2 + im^2, (batch, channels, frames, h * r2): one square and one matmul that sums
        the pairs (where two slices, two squares and an add made four passes)."""
        width = self.values.shape[-1] // 2
        pairs = np.concatenate([np.eye(width, dtype=np.float32)] * 2)
        power = _last_axis_matmul(tf.square(self.values), pairs)
        return tf.reshape(power, _leading_shape(self.values)[:3] + [self.size])


def _padded(x, missing):
    """x with `missing` zeros appended to its last axis when positive (no op when statically
    not)."""
    if isinstance(missing, int):
        if missing <= 0:
            return x
    else:
        missing = tf.maximum(missing, 0)
    return tf.pad(x, [[0, 0]] * (x.shape.rank - 1) + [[0, missing]])


def _whole_blocks(flat, n_frames, plan: _Plan, spec: FrontEnd):
    """(flat, blocks) for a strided plan: flat (batch * channels, time) padded to `blocks` whole
    hops, any number of them but at least the n_frames + shifts - 1 that the frames read (one
    pad, no crop)."""
    total = _dim(flat, 1)
    blocks = (total + spec.hop_length - 1) // spec.hop_length
    least = n_frames + plan.shifts - 1
    static = isinstance(blocks, int) and isinstance(least, int)
    blocks = max(blocks, least) if static else tf.maximum(blocks, least)
    return _padded(flat, blocks * spec.hop_length - total), blocks


def _first_stage(flat, starts, plan: _Plan, spec: FrontEnd, frames_last=False):
    """Framing and stage 1: (batch * channels, n2, frames, (k1, re|im)). For each part of the
    sum over n1 (plan.parts) its frames, then one batched matmul over n2; the parts added (by
    ADDs, which TFLite runs faster than one ADD_N of them). The
    frames of a strided plan are whole (step,) blocks of each n2's run u, taken by one gather
    (a slice for a part of one shift; onnxruntime copies whole blocks, where slices of every
    shift and their concatenation made two copies of small pieces); otherwise one gather of
    samples. frames_last (_frames_last_features): n2 in (a, b) order (the strided frames one
    gather of blocks from the (n2 blocks) rows) and each matmul's table on the left, its frames
    adjoint: (batch * channels, (a, b), (re|im, k1), frames)."""
    n_frames = _dim(starts, 0)
    order = _frames_last_plan(spec) if frames_last else None
    if plan.strided:  # (batch * channels, n2, blocks, step)
        flat, blocks = _whole_blocks(flat, n_frames, plan, spec)
        u = tf.transpose(tf.reshape(flat, [-1, blocks * plan.step, plan.r2]), [0, 2, 1])
        u = tf.reshape(u, [-1, plan.r2, blocks, plan.step])
    products = []
    for start, stop in plan.parts:
        if not plan.strided:
            offsets = order.offsets if frames_last else plan.offsets
            index = offsets[:, np.newaxis, start:stop] + starts[tf.newaxis, :, tf.newaxis]
            x = tf.gather(flat, index, axis=1)  # (batch * channels, n2, frames, stop - start)
        elif frames_last:  # the blocks of n2 in (a, b) order: one gather from (n2 blocks)
            runs = tf.range(n_frames)[:, tf.newaxis] + tf.range(
                start // plan.step, stop // plan.step
            )
            index = order.n2[:, np.newaxis, np.newaxis] * blocks + runs
            x = tf.gather(tf.reshape(u, [-1, plan.r2 * blocks, plan.step]), index, axis=1)
            x = tf.reshape(x, [-1, plan.r2, n_frames, stop - start])
        elif stop - start == plan.step:
            shift = start // plan.step
            x = u[:, :, shift : shift + n_frames]
        else:
            shifts = tf.range(start // plan.step, stop // plan.step)
            x = tf.gather(u, tf.range(n_frames)[:, tf.newaxis] + shifts, axis=2)
            x = tf.reshape(x, [-1, plan.r2, n_frames, stop - start])
        if frames_last:  # (r2, 2 h, n1) @ x^T: (.., r2, (re|im, k1), frames)
            table = tf.constant(order.table1[:, :, start:stop])
            products.append(tf.matmul(table, x, adjoint_b=True))
        else:
            products.append(tf.matmul(x, tf.constant(plan.table1[:, start:stop])))
    return functools.reduce(tf.add, products)  # TFLite ADD, not its slower ADD_N


_FRAMES_LAST = contextvars.ContextVar('kapre_fast_builtin_frames_last', default=True)


@contextlib.contextmanager
def frames_last_stages(enabled: bool = True):
    """Graphs traced for a magnitude or power output (mel, log or none filterbank, dB or not)
    with an FFT of two or three stages keep the frames as the last axis
    (_frames_last_features): every stage a matmul with its table on the left, so no transpose of
    the spectrum between the stages, and the bins gathered as whole rows of frames. That is the
    default: in time chunks (_time_chunks) TensorFlow, onnxruntime and LiteRT all run it faster
    than the usual layout (TF, 1 thread: configs A-D 31.1 / 8.0 / 99.4 / 12.9 ms against 37.9 /
    9.5 / 110.5 / 16.6; onnxruntime's Transposes were a fifth to a quarter of its time; LiteRT
    C 116 against 144 ms: docs/deploy.md). Inside frames_last_stages(False) graphs are traced
    in the usual layout (frames first, 4-axis transposes between the stages); inside
    frames_last_stages() in the frames-last one whatever an outer context says. The same products
    and sums, equal to float32 rounding. Other outputs (complex, mag_phase) and the dense DFT
    take the usual path."""
    token = _FRAMES_LAST.set(bool(enabled))
    try:
        yield
    finally:
        _FRAMES_LAST.reset(token)


@functools.lru_cache(maxsize=32)
def _frames_last_plan(spec: FrontEnd) -> types.SimpleNamespace:
    """_fft_plan(spec)'s tables for _frames_last_features, each on the left of its matmul (rows
    out, columns in), with n2 = a + p b in (a, b) order:
    - n2 (r2,): the natural n2 of each position; offsets (r2, n1) and table1 (r2, (re|im, k1),
      n1): framing and stage 1 for each n2;
    - table2 (p, (re|im, c2), (b, re|im)): stage 2 for each a;
    - last ((re|im, c1), (a, re|im)): the last stage, giving the grid (re|im, c1, c2, k1);
    - grid_index (n_freq,): bin k's row in that grid's (c1, c2, k1), as plan.grid_index is in
      (k1, c2, c1); bands: the filterbank in groups of bands (_band_groups; none without a
      filterbank)."""
    plan = _fft_plan(spec)
    p, q, h = plan.p, plan.q, plan.h
    rows = plan.table1.shape[1]

    def swap(table):  # n2 = a + p b from (b, a) order to (a, b)
        return table.reshape(q, p, *table.shape[1:]).swapaxes(0, 1).reshape(table.shape)

    table1 = swap(plan.table1).reshape(plan.r2, rows, h, 2).transpose(0, 3, 2, 1)
    tables = dict(table1=table1.reshape(plan.r2, 2 * h, rows))
    if q > 1:  # plan.table2: rows (re|im, b), columns (c2, re|im)
        table2 = plan.table2.reshape(p, 2, q, q, 2).transpose(0, 4, 3, 2, 1)
        tables['table2'] = table2.reshape(p, 2 * q, 2 * q)
    # plan.last: rows (re|im, a), columns (re|im, c1)
    tables['last'] = plan.last.reshape(2, p, 2, p).transpose(2, 3, 1, 0).reshape(2 * p, 2 * p)
    index = plan.grid_index  # (k1 r2 + c2 p + c1) -> (c1 q h + c2 h + k1)
    k1, c2, c1 = index // plan.r2, index % plan.r2 // p, index % p
    grid_index = (c1 * q * h + c2 * h + k1).astype(np.int32)
    bands = _band_groups(spec.dense_filterbank(), grid_index) if spec.filterbank != 'none' else ()
    return types.SimpleNamespace(
        bands=bands,
        n2=_read_only(swap(np.arange(plan.r2, dtype=np.int32))),
        offsets=_read_only(swap(plan.offsets)),
        grid_index=_read_only(grid_index),
        **{name: _read_only(np.ascontiguousarray(t)) for name, t in tables.items()},
    )


# Bands of a filterbank per matmul of _frames_last_features (_band_groups).
_BAND_GROUP = 16


def _band_groups(filterbank, grid_index) -> tuple:
    """The filterbank (n_freq, n_features) as groups of _BAND_GROUP consecutive bands, each
    (rows, weights): the grid rows (grid_index) of the bins from the group's lowest nonzero bin
    to its highest, and those bins' weights (bins, bands). A mel or log-frequency band spans few
    bins, so the groups' products have a fraction of the dense filterbank's multiply-adds
    (config A's 128 mel bands 13%, B's 64 26%, D's 84 log bands 14%) and the same sums: only
    zero products are left out."""
    used = filterbank != 0
    groups = []
    for start in range(0, filterbank.shape[1], _BAND_GROUP):
        stop = min(start + _BAND_GROUP, filterbank.shape[1])
        bins = np.flatnonzero(used[:, start:stop].any(axis=1))
        low, high = (bins[0], bins[-1] + 1) if bins.size else (0, 1)
        weights = np.ascontiguousarray(filterbank[low:high, start:stop], np.float32)
        groups.append((_read_only(grid_index[low:high].copy()), _read_only(weights)))
    return tuple(groups)


def _through_bands(features, order, axis):
    """features with the grid's rows as `axis`, its second-to-last (frames, or batch and
    frames, last), through the filterbank per group of bands (order.bands, _band_groups): the
    group's rows gathered, adjoint, times its weights, the groups concatenated: (.., frames,
    bands)."""
    groups = [
        tf.matmul(tf.gather(features, rows, axis=axis), tf.constant(weights), adjoint_a=True)
        for rows, weights in order.bands
    ]
    return groups[0] if len(groups) == 1 else tf.concat(groups, axis=-1)


def _frames_last_features(waveforms, starts, spec: FrontEnd):
    """_linear_features with the frames last (frames_last_stages, the default), for two or three
    stages: _first_stage with frames_last ((batch * channels, (a, b), (re|im, k1), frames)),
    [stage 2 for each a: table2 @ ((b, re|im), (k1, frames)),] the last stage: last @ ((a,
    re|im), (c2, k1, frames)), so the frames stay last and no transpose moves the spectrum;
    re^2 + im^2 as a square and a sum over the re|im axis (onnxruntime ReduceSum: a third of the
    time of the pair-summing matmul on the left), [sqrt,] the filterbank per group of bands
    (_band_groups: its bins' rows gathered, adjoint, times its weights; onnxruntime FusedMatMul;
    out come (batch, channels, frames, bands), concatenated), or the bins gathered as whole rows
    of frames and one transpose."""
    plan = _fft_plan(spec)
    order = _frames_last_plan(spec)
    leading = [_dim(waveforms, 0), _dim(waveforms, 1)]
    flat = tf.reshape(waveforms, [-1, _dim(waveforms, 2)])
    n_frames = _dim(starts, 0)
    x = _first_stage(flat, starts, plan, spec, frames_last=True)
    if plan.q > 1:
        x = tf.reshape(x, [-1, plan.p, 2 * plan.q, plan.h * n_frames])
        x = tf.matmul(tf.constant(order.table2), x)  # (.., a, (re|im, c2), (k1, frames))
    x = tf.reshape(x, [-1, 2 * plan.p, plan.q * plan.h * n_frames])
    x = tf.matmul(tf.constant(order.last), x)  # (.., (re|im, c1), (c2, k1, frames))
    x = tf.reshape(x, [-1, 2, plan.h * plan.r2, n_frames])
    features = tf.reduce_sum(tf.square(x), axis=1)  # (.., (c1, c2, k1), frames)
    if spec.power_exponent != 2:
        features = _magnitude(features)
    if spec.filterbank != 'none':  # per group: its rows^T @ weights, (.., frames, bands)
        features = _through_bands(features, order, axis=1)
        features = _batch_reshape(features, leading + [n_frames, spec.n_features])
    else:
        features = tf.gather(features, order.grid_index, axis=1)
        features = _batch_reshape(features, leading + [spec.n_features, n_frames])
        features = tf.transpose(features, [0, 1, 3, 2])
    return features


def _grid(waveforms, starts, spec: FrontEnd) -> _Grid:
    """The windowed rFFT on the grid of _fft_plan (bin order by grid_index): framing and
    stage 1 (_first_stage), 4-axis transposes, [stage 2,] the last stage (one matmul); the
    dense DFT: a gather of the frames and one matmul. waveforms (batch, channels, time), framed
    at `starts`."""
    plan = _fft_plan(spec)
    leading = [_dim(waveforms, 0), _dim(waveforms, 1)]
    flat = tf.reshape(waveforms, [-1, _dim(waveforms, 2)])  # (batch * channels, time)
    n_frames = _dim(starts, 0)
    if plan.r2 == 1:
        frames = tf.gather(flat, starts[:, tf.newaxis] + plan.offsets[0], axis=1)
        table = plan.table1[0].reshape(-1, plan.h, 2).transpose(0, 2, 1).reshape(-1, 2 * plan.h)
        x = _last_axis_matmul(frames, np.ascontiguousarray(table))  # (re|im, k)
        rows = 1
    else:
        x = _first_stage(flat, starts, plan, spec)
        if plan.q > 1:  # n2 = a + p b: b last, then stage 2 contracts it for each a
            x = tf.reshape(x, [-1, plan.q, plan.p, n_frames * 2 * plan.h])
            x = tf.reshape(
                tf.transpose(x, [0, 2, 3, 1]), [-1, plan.p, n_frames * plan.h, 2 * plan.q]
            )  # columns (re|im, b)
            x = tf.matmul(x, tf.constant(plan.table2))  # (.., a, (frames, k1), (c2, re|im))
        x = tf.transpose(x, [0, 2, 3, 1])  # (.., frames, k1, [c2,] re|im, a)
        x = tf.reshape(x, [-1, 2 * plan.p])  # rows (batch * channels, frames, k1[, c2])
        x = tf.matmul(x, tf.constant(plan.last))  # columns (re|im, c1)
        rows = plan.h * plan.q
    values = tf.reshape(x, leading + [n_frames, rows, x.shape[-1]])
    return _Grid(values=values, size=plan.h * plan.r2)


def _to_bins(grid, spec: FrontEnd, imaginary=False):
    """(..., h * r2) grid values -> (..., n_freq) in bin order (the imaginary part negated
    where a bin is the conjugate of its grid entry). The grid axis is moved first, its rows
    gathered, and moved back: onnxruntime gathers whole rows of the other axes in one copy each,
    where a gather of single values along the last axis costs as much as the FFT's first stage
    (config C: 45 of 200 ms)."""
    plan = _fft_plan(spec)
    rank = grid.shape.rank
    rows = tf.transpose(grid, [rank - 1] + list(range(rank - 1)))
    values = tf.gather(rows, plan.grid_index, axis=0)
    values = tf.transpose(values, list(range(1, rank)) + [0])
    return values * plan.imag_sign if imaginary else values


@tf.custom_gradient
def _magnitude(power):
    """sqrt(power) as one op in the graph (what the converters see), with the gradient
    0.5 / sqrt(power) at power > 0 and 0 at exactly-zero bins (digital silence), where the
    plain gradient is infinite."""
    magnitude = tf.sqrt(power)

    def gradient(upstream):
        upstream = tf.convert_to_tensor(upstream)  # IndexedSlices from a GATHER of rows
        nonzero, safe = _nonzero_safe(magnitude)
        return tf.where(nonzero, upstream * 0.5 / safe, tf.zeros_like(safe))

    return magnitude, gradient


def _nonzero_safe(power):
    """(power > 0, power with its zeros replaced by 1): sqrt and atan2 then have finite
    gradients at exactly-zero bins (digital silence); those bins are set to 0 afterwards."""
    nonzero = power > 0.0
    return nonzero, tf.where(nonzero, power, tf.ones_like(power))


def _decibel(x, spec: FrontEnd):
    """FrontEnd.decibel on 4-D features in either layout: kapre_fast._composition's dB
    formula (kapre's magnitude_to_decibel, or a preset's power_to_db / amplitude_to_db with its
    top_db; math.inf: no clamp) in _CONVERTIBLE_MATH's ops."""
    return _composition.decibel(_CONVERTIBLE_MATH, x, *spec.decibel)


def _to_output_layout(features, spec: FrontEnd):
    """(batch, channels, frames, features) in spec.output_data_format (one channel: a reshape,
    which tf2onnx moves no transpose past, see _features)."""
    if spec.output_data_format == 'channels_last':
        if features.shape[1] == 1:
            shape = [_dim(features, 0), _dim(features, 2), _dim(features, 3), 1]
            return _batch_reshape(features, shape)
        return tf.transpose(features, [0, 2, 3, 1])
    return features


def compute(spec: FrontEnd, x) -> tf.Tensor:
    """Features of the waveform batch `x` as `kapre_fast.ops.compute` computes them (float32;
    complex64 for spec.output == 'complex'), in builtin TensorFlow ops."""
    return _features(x, spec)


def front_end(audio, spec: FrontEnd) -> tf.Tensor:
    """compute(spec, audio) under its earlier name and argument order (an alias)."""
    return compute(spec, audio)


def compute_mfcc(spec: FrontEnd, matrix, x) -> tf.Tensor:
    """`kapre_fast.ops.compute_mfcc` in builtin ops: the dB mel spectrogram `spec` of `x` as
    compute computes it, then one MatMul with the (n_mels, n_mfcc) matrix (spec.mfcc_matrix)."""
    if spec.output != 'magnitude' or not spec.return_decibel or spec.filterbank == 'none':
        raise ValueError(
            'mfcc needs a dB filterbank spectrogram, got '
            f'output={spec.output!r}, return_decibel={spec.return_decibel!r}, '
            f'filterbank={spec.filterbank!r}'
        )
    matrix = np.asarray(matrix, np.float32)
    mel = _features(x, dataclasses.replace(spec, output_data_format='channels_first'))
    return _to_output_layout(_last_axis_matmul(mel, matrix), spec)


def mfcc(audio, spec: FrontEnd, matrix) -> tf.Tensor:
    """compute_mfcc(spec, matrix, audio) under its earlier name and argument order (an alias)."""
    return compute_mfcc(spec, matrix, audio)


def pcen(features, constants, data_format: str) -> tf.Tensor:
    """librosa.pcen (max_size=1; kapre_fast.ops.pcen) of 4-D float32 features in data_format,
    in builtin ops: kapre_fast._pcen.apply, the smoother M[t] = (1 - b) M[t - 1] + b S[t]
    (M[-1] = 1) as a doubling scan along frames (ceil(log2(frames + 1)) passes of
    StridedSlice, Concatenation with zeros, Mul and Add, each linear in the frames: 12 for
    2600 frames, 60 s at hop 512), then librosa's compression. `constants`:
    spec.pcen_constants(...)."""
    features = tf.convert_to_tensor(features, tf.float32)
    axis = time_axis(data_format)
    return _pcen.apply(_CONVERTIBLE_MATH, features, constants, axis)


def apply_pcen(mel, constants, time_axis: int) -> tf.Tensor:
    """pcen of the 4-D filterbank output `mel` along its frames axis `time_axis` (1:
    channels_last, 2: channels_first; ValueError otherwise), the protocol's form of pcen."""
    return pcen(mel, constants, _checks.time_axis_layout(time_axis))


def _log1p(v):
    """log(1 + v) with the rounding of u = 1 + v corrected (Goldberg): Log, Sub, Div only, as
    ONNX has no Log1p."""
    u = 1.0 + v
    return tf.math.log(u) - ((u - 1.0) - v) / u


def _expm1(z):
    """exp(z) - 1 without the cancellation near 0 (Kahan: (u - 1) z / log u, u = exp(z)), as
    ONNX has no Expm1."""
    u = tf.math.exp(z)
    one = tf.equal(u, 1.0)
    log_u = tf.where(one, tf.ones_like(u), tf.math.log(u))
    return tf.where(one, z, tf.where(tf.math.is_inf(u), u, (u - 1.0) * z / log_u))


# The namespace kapre_fast._pcen computes with on the builtin path.
_CONVERTIBLE_MATH = types.SimpleNamespace(
    exp=tf.math.exp,
    log=tf.math.log,
    # The dB formula's (kapre_fast._composition.decibel): TFLite has LOG, not log10.
    log10=lambda v: tf.math.log(v) * np.float32(1.0 / np.log(10.0)),
    floor=tf.maximum,
    maximum=tf.maximum,
    peak=lambda v: tf.reduce_max(v, axis=[1, 2, 3], keepdims=True),
    log1p=_log1p,
    expm1=_expm1,
    zeros_like=tf.zeros_like,
    ones_like=tf.ones_like,
    concatenate=tf.concat,
)


def _features(audio, spec: FrontEnd):
    """front_end's output in spec.output_data_format. A magnitude output is computed in time
    chunks (_time_chunks) and concatenated along frames: in dB, in (batch, channels, frames,
    features), then dB (its peak over every frame of an example) and the layout (onnxruntime
    runs elementwise ops on a last axis of one channel at a tenth of their speed: 11 of config
    A's 57 ms); otherwise each chunk laid out, so that the concatenation writes the output (in
    onnxruntime a reshape after it was one more copy of it) and, for one channel, no transpose
    reaches it (tf2onnx pushes transposes through a Concat; config C's pieces then had rows of
    32 frames: concatenation and transpose took 30 ms)."""
    check_spec(spec)
    waveforms, n_frames = _frame_starts(_waveforms(audio, spec), spec)
    if spec.output == 'magnitude':
        chunks = _time_chunks(waveforms, n_frames, spec)
        pieces = [_linear_features(chunk, starts, spec) for chunk, starts in chunks]
        if spec.return_decibel:
            features = pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=2)
            return _to_output_layout(_decibel(features, spec), spec)
        pieces = [_to_output_layout(piece, spec) for piece in pieces]
        axis = time_axis(spec.output_data_format)
        return pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=axis)
    grid = _grid(waveforms, tf.range(n_frames) * spec.hop_length, spec)
    if spec.output == 'complex':
        real, imag = grid.parts()
        real, imag = _to_bins(real, spec), _to_bins(imag, spec, imaginary=True)
        real, imag = _to_output_layout(real, spec), _to_output_layout(imag, spec)
        return tf.complex(real, imag)  # last, so inverse can read the parts back
    # mag_phase: the magnitude [dB], then the phase
    features = _grid_magnitude(grid, spec)
    if spec.return_decibel:
        features = _decibel(features, spec)
    # atan2(0, 1) = 0 = numpy.angle(0) at exactly-zero bins, with a finite gradient.
    real, imag = grid.parts()
    real, imag = _to_bins(real, spec), _to_bins(imag, spec, imaginary=True)
    nonzero, _ = _nonzero_safe(tf.square(real) + tf.square(imag))
    one = tf.ones_like(real)
    phase = tf.math.atan2(tf.where(nonzero, imag, 0.0 * one), tf.where(nonzero, real, one))
    return _to_output_layout(tf.concat([features, phase], axis=1), spec)


_XNNPACK = contextvars.ContextVar('kapre_fast_builtin_xnnpack', default=False)


@contextlib.contextmanager
def xnnpack_stages():
    """Inside (export.to_tflite), graphs traced with the frames last for a magnitude or
    power output whose FFT has two or three stages and a hop that is a multiple of r2 (_fft_plan's
    `strided`) take _xnnpack_features: the framing as a transpose, slices and one concatenation
    and the batch inside each matmul's columns, ops that LiteRT's XNNPACK delegate runs (LiteRT
    config C 115.7 -> 100.8 ms, docs/deploy.md). onnxruntime ran it slower (C 145.7 against 92.9
    ms, D 22.2 against 15.3), so to_onnx does not enter it. The same products and sums, equal to
    float32 rounding."""
    token = _XNNPACK.set(True)
    try:
        yield
    finally:
        _XNNPACK.reset(token)


def _folded(x, rows, inner):
    """x reshaped to (rows, -1, inner) where inner is static and nonzero, else to (rows, x's
    size / rows / inner, inner): a constant shape for the converters where it can be."""
    if isinstance(inner, int) and inner > 0:
        return tf.reshape(x, [rows, -1, inner])
    return tf.reshape(x, [rows, tf.size(x) // (rows * inner), inner])


def _xnnpack_features(waveforms, starts, spec: FrontEnd):
    """_linear_features inside xnnpack_stages(), for a strided plan of two or three stages: the
    stages of _frames_last_features with the batch (batch * channels) moved inside the columns
    of every matmul ((.., (batch * channels, frames)) where _frames_last_features has it as the
    matmul's batch axis), and the framing in ops that XNNPACK runs: the waveforms as (n2 in (a, b)
    order, step, batch * channels, blocks) by one reshape and 5-axis transpose, then for each part
    of stage 1 the frames as `shifts` slices of whole blocks (one per framing shift)
    concatenated into (n2, (shift, step), (batch * channels, frames)), the matmul's right operand
    with no transpose. LiteRT runs the frames gather of _first_stage (TFLite's reference GATHER,
    rows of step samples) and copies of small rows in the transposes slower; the rows the bins'
    or bands' GATHER copies are batch * channels times longer; the matmuls have fewer, wider
    products."""
    plan = _fft_plan(spec)
    order = _frames_last_plan(spec)
    leading = [_dim(waveforms, 0), _dim(waveforms, 1)]
    flat = tf.reshape(waveforms, [-1, _dim(waveforms, 2)])
    n_frames = _dim(starts, 0)
    flat, blocks = _whole_blocks(flat, n_frames, plan, spec)
    # sample r2 (block step + j) + b p + a -> (a, b, j, batch * channels, block)
    u = tf.reshape(flat, [-1, blocks, plan.step, plan.q, plan.p])
    u = tf.transpose(u, [4, 3, 2, 0, 1])
    products = []
    for start, stop in plan.parts:
        pieces = [
            u[:, :, :, :, shift : shift + n_frames]
            for shift in range(start // plan.step, stop // plan.step)
        ]
        x = pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=2)
        x = tf.reshape(x, [plan.r2, stop - start, -1])  # (n2, n1, (batch * channels, frames))
        products.append(tf.matmul(tf.constant(order.table1[:, :, start:stop]), x))
    x = functools.reduce(tf.add, products)  # (n2, (re|im, k1), (batch * channels, frames))
    if plan.q > 1:
        x = tf.matmul(tf.constant(order.table2), tf.reshape(x, [plan.p, 2 * plan.q, -1]))
    # a batch of one: a 2-D matmul converts to FULLY_CONNECTED between two transposes
    last = tf.constant(order.last[np.newaxis])
    x = tf.matmul(last, tf.reshape(x, [1, 2 * plan.p, -1]))
    x = tf.reshape(x, [2, plan.h * plan.r2, -1])  # (re|im, (c1, c2, k1), ..)
    features = tf.reduce_sum(tf.square(x), axis=0)
    if spec.power_exponent != 2:
        features = _magnitude(features)
    if spec.filterbank != 'none':  # per group: its rows^T @ weights, ((batch, frames), bands)
        features = _through_bands(features, order, axis=0)
        return _batch_reshape(features, leading + [n_frames, spec.n_features])
    features = _folded(tf.gather(features, order.grid_index, axis=0), spec.n_features, n_frames)
    features = tf.transpose(features, [1, 2, 0])  # (batch * channels, frames, bins)
    return _batch_reshape(features, leading + [n_frames, spec.n_features])


def _linear_features(waveforms, starts, spec: FrontEnd):
    """The magnitude or power [filterbank] features before dB, (batch, channels, frames,
    features), of waveforms (batch, channels, time) framed at `starts`: with the frames last
    unless inside frames_last_stages(False) (_frames_last_features; inside xnnpack_stages()
    too, a strided plan: _xnnpack_features), else from the grid."""
    plan = _fft_plan(spec)
    if _XNNPACK.get() and _FRAMES_LAST.get() and plan.strided:
        return _xnnpack_features(waveforms, starts, spec)
    if _FRAMES_LAST.get() and plan.r2 > 1:
        return _frames_last_features(waveforms, starts, spec)
    return _grid_magnitude(_grid(waveforms, starts, spec), spec)


def _grid_magnitude(grid: _Grid, spec: FrontEnd):
    """Power or magnitude of the grid, through the filterbank or back in bin order."""
    power = grid.power()
    features = power if spec.power_exponent == 2 else _magnitude(power)
    if spec.filterbank != 'none':
        return _last_axis_matmul(features, _grid_filterbank(spec))
    return _to_bins(features, spec)


def _complex_parts(stft):
    """(real, imag) of a complex STFT; taken from the inputs of the tf.complex that made it
    when there is one (a builtin STFT in the same graph), so no complex op is needed."""
    stft = tf.convert_to_tensor(stft)
    if not tf.executing_eagerly():
        op = stft.op
        while op.type == 'Identity':  # Keras may put identities between layers
            op = op.inputs[0].op
        if op.type == 'Complex':
            return op.inputs[0], op.inputs[1]
    stft = tf.cast(stft, tf.complex64)
    return tf.math.real(stft), tf.math.imag(stft)


def inverse(spec: FrontEnd, X) -> tf.Tensor:
    """Waveforms from the complex STFT batch `X` as `kapre_fast.ops.inverse` computes them
    (tf.signal.inverse_stft with inverse_stft_window_fn(hop_length, forward window)), in builtin
    TensorFlow ops. `spec` describes the forward STFT: its output_data_format is X's layout,
    its input_data_format the waveform's."""
    check_spec(spec, inverse=True)
    real, imag = _complex_parts(X)
    if spec.output_data_format == 'channels_last':  # to (batch, channels, frames, freq)
        real, imag = tf.transpose(real, [0, 3, 1, 2]), tf.transpose(imag, [0, 3, 1, 2])
    frames = _inverse_frames(real, imag, spec)
    if spec.win_length > spec.n_fft:  # the irfft's frame is zero-padded to win_length
        frames = tf.pad(frames, [[0, 0]] * 3 + [[0, spec.win_length - spec.n_fft]])
    waveforms = tf.signal.overlap_and_add(frames, spec.hop_length)
    if spec.input_data_format == 'channels_last':
        waveforms = tf.transpose(waveforms, [0, 2, 1])
    return waveforms


def inverse_stft(stft, spec: FrontEnd) -> tf.Tensor:
    """inverse(spec, stft) under its earlier name and argument order (an alias)."""
    return inverse(spec, stft)
