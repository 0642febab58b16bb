"""Every kapre_fast front end in plain TensorFlow ops that TFLite's BUILTIN op set has (imports
TensorFlow, never the op library).

The same contract as `kapre_fast.ops` (`front_end(audio, spec)`, `inverse_stft(stft, spec)`), for
graphs that must run without kapre_fast's native code: SavedModels served by stock TensorFlow,
TFLite with builtin ops only, ONNX, and XLA (which cannot compile custom ops). It is held to the
same accuracy grid as the fused op (tests/test_builtin.py).

How each step is written so that it converts:
- framing: one `tf.gather` of frame-start + offset indices (dynamic batch and time);
- real DFT: one matmul of the frames with a precomputed [window * cos | -window * sin] table
  (tables built in float64 with exact integer phase reduction, then rounded once to float32); no
  complex tensor and no RFFT kernel. With a filterbank only the bins some filter uses are
  computed;
- magnitude `sqrt(re^2 + im^2)` (or the power, for a preset with power=2), phase `atan2`,
  filterbank matmul, the dB formula of FrontEnd.decibel (kapre's, or a preset's);
- a preset's centring (center, pad_mode): `tf.pad`, constant or REFLECT (TFLite MIRROR_PAD);
- inverse STFT: one matmul with an [irfft * synthesis window] table, then overlap-add.
Complex tensors appear only where the layer's interface is complex (the STFT layer's output,
the inverse STFT's input): `stft` builds its result with `tf.complex` as its last op, and
`inverse_stft` reads the two real parts back from that op when it is there, so an STFT > iSTFT
graph has no complex op left.

The DFT costs O(n_fft^2) per frame (the fused op: O(n_fft log n_fft)); its table has
2 * min(win_length, n_fft) * (n_fft // 2 + 1) floats, so n_fft is limited to MAX_N_FFT here.
"""

from __future__ import annotations

import functools
import types

import numpy as np
import tensorflow as tf

from kapre_fast import _pcen, _weights
from kapre_fast.spec import FrontEnd, require_kapre_numerics

__all__ = ['front_end', 'mfcc', 'pcen', 'inverse_stft', 'check_spec', 'MAX_N_FFT']

# The DFT tables grow as n_fft^2: 8192 points is a 256 MiB table pair at most.
MAX_N_FFT = 8192


def check_spec(spec: FrontEnd, inverse: bool = False):
    """ValueError when the builtin path cannot compute `spec`: n_fft above MAX_N_FFT, or (for
    the inverse STFT, kapre's InverseSTFT) a preset."""
    if inverse:
        require_kapre_numerics(spec, 'the builtin inverse STFT (kapre_fast.builtin.inverse_stft)')
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


# Largest radix of one stage of the matmul FFT: every output of a stage is then a sum of at most
# 2 * 16 products, which keeps the float32 error near that of tf.signal.rfft (one matmul over all
# n_fft samples is several times worse).
_MAX_RADIX = 16


def _radices(n: int):
    """n's prime factors combined (first fit, largest first) into factors of at most _MAX_RADIX;
    a prime above it stays one factor (one plain DFT stage)."""
    primes, rest, divisor = [], n, 2
    while divisor * divisor <= rest:
        while rest % divisor == 0:
            primes.append(divisor)
            rest //= divisor
        divisor += 1
    if rest > 1:
        primes.append(rest)
    radices = []
    for prime in sorted(primes, reverse=True):
        for index, radix in enumerate(radices):
            if radix * prime <= _MAX_RADIX:
                radices[index] = radix * prime
                break
        else:
            radices.append(prime)
    return tuple(radices) or (1,)


def _padded_window(spec: FrontEnd) -> np.ndarray:
    """The float64 window over the n_fft points of the transform (zeros past win_length)."""
    window = np.zeros(spec.n_fft)
    length = _frame_length(spec)
    window[:length] = spec.window()[:length]
    return window


@functools.lru_cache(maxsize=32)
def _analysis_tables(spec: FrontEnd, first_bin: int, end_bin: int):
    """The windowed rFFT as one batched matmul per radix r_s of n_fft = r_1 * ... * r_S
    (Cooley-Tukey: sample n = sum_s i_s * w_s with w_s = n_fft / (r_1 ... r_s), bin
    k = sum_s k_s * v_s with v_s = r_1 ... r_(s-1)). Stage s contracts digit i_s into k_s; only the
    twiddle exp(-2 pi i i_s w_s (K + v_s k_s) / n_fft) links it to the bins K already resolved,
    so its table is one complex (r_s, r_s) matrix per K, the twiddle folded in:

    - stage 1 (real input): (n_fft / r_1, r_1, 2 r_1), one [cos | -sin] matrix per remaining
      sample digit, times the window at each sample;
    - stage s > 1: (v_s, 2 r_s, 2 r_s), rows [re | im] of i_s, columns [re | im] of k_s.

    The last stage keeps only the k_S that reach bins first_bin..end_bin - 1. Returns
    (radices, first k_S, tables); float64 with the phase reduced modulo n_fft in integers, then
    rounded once to float32."""
    radices = _radices(spec.n_fft)
    window = _padded_window(spec)
    tables, weight, resolved = [], spec.n_fft, 1
    first_k, end_k = 0, radices[-1]
    for stage, radix in enumerate(radices):
        weight //= radix
        digits = np.arange(radix)
        last = stage == len(radices) - 1
        if last:
            first_k, end_k = first_bin // resolved, min(-(-end_bin // resolved), radix)
        k = np.arange(first_k, end_k) if last else digits
        bins = np.arange(resolved)[:, np.newaxis, np.newaxis] + resolved * k  # [K, 1, k_s]
        exponent = (digits[:, np.newaxis] * weight * bins) % spec.n_fft  # [K, i_s, k_s]
        angle = 2.0 * np.pi * exponent / spec.n_fft
        cos, sin = np.cos(angle), np.sin(angle)
        if stage == 0:
            samples = digits[np.newaxis, :] * weight + np.arange(weight)[:, np.newaxis]
            table = np.concatenate([cos[0], -sin[0]], axis=1) * window[samples][..., np.newaxis]
        else:
            table = np.concatenate([np.concatenate([cos, -sin], axis=2),
                                    np.concatenate([sin, cos], axis=2)], axis=1)
        tables.append(_read_only(table.astype(np.float32)))
        resolved *= radix
    return radices, first_k, tuple(tables)


@functools.lru_cache(maxsize=32)
def _synthesis_table(spec: FrontEnd) -> np.ndarray:
    """(2 * n_freq, frame_length) float32: [Re X, Im X] @ table = the irfft of n_fft, cropped to
    frame_length and multiplied by the inverse STFT's synthesis window. As TF's irfft, the
    imaginary parts of the DC and (even n_fft) Nyquist bins are ignored."""
    length = _frame_length(spec)
    bins = np.arange(spec.n_freq)
    phase = _unit_phase(spec, np.arange(length), bins)  # (n_freq, length)
    # Bins other than DC and Nyquist stand for a conjugate pair: counted twice.
    weight = np.full(spec.n_freq, 2.0)
    weight[0] = 1.0
    if spec.n_fft % 2 == 0:
        weight[-1] = 1.0
    imaginary_weight = np.where(weight == 2.0, 2.0, 0.0)
    window = spec.inverse_window()[np.newaxis, :length] / spec.n_fft
    table = np.concatenate([weight[:, np.newaxis] * np.cos(phase),
                            -imaginary_weight[:, np.newaxis] * np.sin(phase)]) * window
    return _read_only(table.astype(np.float32))


@functools.lru_cache(maxsize=32)
def _filterbank(spec: FrontEnd):
    """(first_bin, end_bin, (end_bin - first_bin, n_features) float32 matrix): the filterbank
    restricted to the bins some filter uses (at least one bin, for an all-zero filterbank)."""
    dense = spec.dense_filterbank().astype(np.float32)
    used = np.flatnonzero(dense.any(axis=1))
    first, end = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    return first, end, _read_only(np.ascontiguousarray(dense[first:end]))


def _bins(spec: FrontEnd):
    """(first_bin, end_bin) of the spectrum the front end needs."""
    if spec.filterbank == 'none':
        return 0, spec.n_freq
    first, end, _ = _filterbank(spec)
    return first, end


def _dim(tensor, axis):
    """A static size when known, else the dynamic one (keeps static shapes static)."""
    size = tensor.shape[axis]
    return size if size is not None else tf.shape(tensor)[axis]


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
    if spec.input_data_format == 'channels_last':
        audio = tf.transpose(audio, [0, 2, 1])
    return audio


def _frames(waveforms, spec: FrontEnd):
    """(batch, channels, frames, frame_length): [pad_begin] and the frames tf.signal.frame
    makes (pad_end: zeros appended just far enough for the last frame)."""
    if spec.pad_begin_length:
        waveforms = tf.pad(waveforms, [[0, 0], [0, 0], [spec.pad_begin_length, 0]])
    total = _dim(waveforms, 2)
    hop, length = spec.hop_length, _frame_length(spec)
    if spec.pad_end:
        n_frames = (total + hop - 1) // hop
        missing = tf.maximum((n_frames - 1) * hop + length - total, 0)
        waveforms = tf.pad(waveforms, [[0, 0], [0, 0], [0, missing]])
    else:
        # Too-short audio gives no frames (the layers refuse static ones when they are built).
        n_frames = tf.maximum(1 + (total - spec.frame_length) // hop, 0)
    starts = tf.range(n_frames) * hop
    return tf.gather(waveforms, starts[:, tf.newaxis] + tf.range(length)[tf.newaxis], axis=2)


def _rfft(frames, spec: FrontEnd, bins):
    """(real, imag) float32 (..., bins) of the windowed rFFT of frames (..., frame_length):
    the stages of _analysis_tables, each a transpose and a batched matmul (transposes of at most
    4 axes, which every converter takes)."""
    first_bin, end_bin = bins
    radices, first_k, tables = _analysis_tables(spec, first_bin, end_bin)
    leading = _leading_shape(frames)
    x = tf.reshape(frames, [-1, frames.shape[-1]])
    if frames.shape[-1] < spec.n_fft:
        x = tf.pad(x, [[0, 0], [0, spec.n_fft - frames.shape[-1]]])
    radix, rest = radices[0], spec.n_fft // radices[0]
    x = tf.transpose(tf.reshape(x, [-1, radix, rest]), [2, 0, 1])  # [rest, m, i_1]
    x = tf.matmul(x, tf.constant(tables[0]))  # [rest, m, (re|im) k_1]
    columns = tables[0].shape[-1] // 2
    x = tf.transpose(tf.reshape(x, [rest, -1, 2, columns]), [3, 1, 2, 0])  # [K, m, re|im, rest]
    resolved, before_last = columns, 1  # bins resolved; resolved before the last stage
    for radix, table in zip(radices[1:], tables[1:]):
        rest //= radix
        # [K m, (re|im), i_s, rest] -> [K m, rest, (re|im), i_s], then contract i_s.
        x = tf.transpose(tf.reshape(x, [-1, 2, radix, rest]), [0, 3, 1, 2])
        x = tf.matmul(tf.reshape(x, [resolved, -1, 2 * radix]), tf.constant(table))
        columns = table.shape[-1] // 2
        # [K m, rest, (re|im), k] -> [k, K m, (re|im), rest]: bin digit k is above those of K.
        x = tf.transpose(tf.reshape(x, [-1, rest, 2, columns]), [3, 0, 2, 1])
        before_last = resolved
        resolved *= columns
    # rest is 1 now: [K, m, (re|im)] -> [m, (re|im), K]; K counts bins from the last stage's
    # first k_S, whose bin is first_k * before_last.
    x = tf.transpose(tf.reshape(x, [resolved, -1, 2]), [1, 2, 0])
    offset = first_k * before_last
    x = x[:, :, first_bin - offset:end_bin - offset]
    return [tf.reshape(part, leading + [end_bin - first_bin]) for part in (x[:, 0], x[:, 1])]


def _spectrum(audio, spec: FrontEnd, bins):
    """(real, imag) float32 (batch, channels, frames, bins) of the windowed rFFT."""
    check_spec(spec)
    return _rfft(_frames(_waveforms(audio, spec), spec), spec, bins)


def _nonzero_safe(power):
    """(power > 0, power with its zeros replaced by 1): sqrt and atan2 then have finite
    gradients at exactly-zero bins (digital silence); those bins are set to 0 afterwards."""
    nonzero = power > 0.0
    return nonzero, tf.where(nonzero, power, tf.ones_like(power))


def _decibel(x, spec: FrontEnd):
    """FrontEnd.decibel on (batch, channels, frames, features): kapre's magnitude_to_decibel, or a
    preset's power_to_db / amplitude_to_db with its top_db (math.inf: no clamp)."""
    multiplier, amin, ref, dynamic_range = spec.decibel
    offset = multiplier * np.log10(max(amin, ref))
    log_x = (multiplier / np.log(10.0)) * tf.math.log(tf.maximum(x, amin)) - offset
    if not np.isfinite(dynamic_range):
        return log_x
    peak = tf.reduce_max(log_x, axis=[1, 2, 3], keepdims=True)
    return tf.maximum(log_x, peak - dynamic_range)


def _to_output_layout(features, spec: FrontEnd):
    if spec.output_data_format == 'channels_last':
        return tf.transpose(features, [0, 2, 3, 1])
    return features


def front_end(audio, spec: FrontEnd) -> tf.Tensor:
    """Features of a waveform batch as `kapre_fast.ops.front_end` computes them (float32;
    complex64 for spec.output == 'complex'), in builtin TensorFlow ops."""
    features = _features(audio, spec)
    if spec.output == 'complex':
        return features  # already laid out: tf.complex must stay the last op
    return _to_output_layout(features, spec)


def mfcc(audio, spec: FrontEnd, matrix) -> tf.Tensor:
    """`kapre_fast.ops.mfcc` in builtin ops: the dB mel spectrogram `spec` as front_end
    computes it, then one MatMul with the (n_mels, n_mfcc) matrix (spec.mfcc_matrix)."""
    if spec.output != 'magnitude' or not spec.return_decibel or spec.filterbank == 'none':
        raise ValueError('mfcc needs a dB filterbank spectrogram, got '
                         f'output={spec.output!r}, return_decibel={spec.return_decibel!r}, '
                         f'filterbank={spec.filterbank!r}')
    matrix = np.asarray(matrix, np.float32)
    return _to_output_layout(_last_axis_matmul(_features(audio, spec), matrix), spec)


def pcen(features, constants, data_format: str) -> tf.Tensor:
    """librosa.pcen (max_size=1; kapre_fast.ops.pcen) of 4-D float32 features in data_format,
    in builtin ops. The smoother M[t] = (1 - b) M[t - 1] + b S[t] (M[-1] = 1), an IIR filter
    along frames, is written out as one MatMul with the (frames, frames) lower-triangular matrix
    W[t, s] = b (1 - b)^(t - s), plus (1 - b)^(t + 1); then librosa's compression
    (kapre_fast._pcen). Its work and memory grow as frames^2 (2600 frames, 60 s at hop 512: a
    27 MB matrix), where the native pass is linear. `constants`: spec.pcen_constants(...)."""
    b = constants.b
    features = tf.convert_to_tensor(features, tf.float32)
    if data_format == 'channels_last':
        order, inverse = [0, 3, 2, 1], [0, 3, 2, 1]  # (batch, ch, features, frames) and back
    else:
        order, inverse = [0, 1, 3, 2], [0, 1, 3, 2]
    rows = tf.transpose(features, order)
    frames = tf.range(_dim(rows, 3))
    lag = tf.cast(frames[:, None] - frames[None, :], tf.float32)  # (t, s)
    weights = tf.where(lag >= 0, b * tf.pow(1.0 - b, tf.maximum(lag, 0.0)), tf.zeros_like(lag))
    flat = tf.reshape(rows, [-1, tf.shape(rows)[3]])
    smooth = tf.matmul(flat, weights, transpose_b=True) + tf.pow(1.0 - b, lag[:, 0] + 1.0)
    smooth = tf.transpose(tf.reshape(smooth, tf.shape(rows)), inverse)
    return _pcen.compress(_CONVERTIBLE_MATH, features, smooth, constants)


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


# The namespace kapre_fast._pcen.compress computes with on the builtin path.
_CONVERTIBLE_MATH = types.SimpleNamespace(exp=tf.math.exp, log=tf.math.log, log1p=_log1p,
                                          expm1=_expm1)


def _features(audio, spec: FrontEnd):
    """front_end's features as (batch, channels, frames, features), or its laid-out complex
    STFT."""
    real, imag = _spectrum(audio, spec, _bins(spec))
    if spec.output == 'complex':
        real, imag = _to_output_layout(real, spec), _to_output_layout(imag, spec)
        return tf.complex(real, imag)  # last, so inverse_stft can read the parts back
    power = tf.square(real) + tf.square(imag)
    nonzero, safe_power = _nonzero_safe(power)
    if spec.power_exponent == 2:
        features = power
    else:
        features = tf.where(nonzero, tf.sqrt(safe_power), tf.zeros_like(safe_power))
    if spec.filterbank != 'none':
        features = _last_axis_matmul(features, _filterbank(spec)[2])
    if spec.return_decibel:
        features = _decibel(features, spec)
    if spec.output == 'mag_phase':
        # atan2(0, 1) = 0 = numpy.angle(0) at exactly-zero bins, with a finite gradient.
        one = tf.ones_like(real)
        phase = tf.math.atan2(tf.where(nonzero, imag, 0.0 * one), tf.where(nonzero, real, one))
        features = tf.concat([features, phase], axis=1)
    return features


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


def inverse_stft(stft, spec: FrontEnd) -> tf.Tensor:
    """Waveforms from a complex STFT batch as `kapre_fast.ops.inverse_stft` computes them
    (tf.signal.inverse_stft with inverse_stft_window_fn(hop_length, forward window)), in builtin
    TensorFlow ops. `spec` describes the forward STFT: its output_data_format is the STFT's
    layout, its input_data_format the waveform's."""
    check_spec(spec, inverse=True)
    real, imag = _complex_parts(stft)
    if spec.output_data_format == 'channels_last':  # to (batch, channels, frames, freq)
        real, imag = tf.transpose(real, [0, 3, 1, 2]), tf.transpose(imag, [0, 3, 1, 2])
    frames = _last_axis_matmul(tf.concat([real, imag], axis=-1), _synthesis_table(spec))
    if spec.win_length > spec.n_fft:  # the irfft's frame is zero-padded to win_length
        frames = tf.pad(frames, [[0, 0]] * 3 + [[0, spec.win_length - spec.n_fft]])
    waveforms = tf.signal.overlap_and_add(frames, spec.hop_length)
    if spec.input_data_format == 'channels_last':
        waveforms = tf.transpose(waveforms, [0, 2, 1])
    return waveforms
