"""The front ends in differentiable array operations, written once over an array namespace.

The pipeline of the fused kernels (and kapre):

    [pad_begin] -> frames of win_length -> window -> rFFT of n_fft (each frame cropped or
    zero-padded at its end) -> |X| (power=2: |X|^2) -> filterbank -> dB -> layout

and the inverse STFT (irFFT of n_fft -> cropped or zero-padded to win_length -> synthesis
window -> overlap-add), in the operations of a small namespace adapter (`Namespace`) that each
framework provides: TensorFlow (kapre_fast.ops: the ops' gradients, the XLA fallback
recompute), PyTorch (kapre_fast/torch/_composition.py: autograd's backward of the
custom operators) and JAX (kapre_fast/jax/_composition.py: the custom VJPs). The dB formula
(`decibel`) serves NumPy too (kapre_fast.reference).

The settings are the TF op's attributes (`attributes(spec)`: kapre_fast._weights'
kernel_attributes plus the layouts and the output kind), read the same way whether they come
from a spec (torch, JAX) or from a graph op (TensorFlow's gradient functions). A preset's
centring is not here: each framework pads before its kernel call and differentiates that pad
itself.
"""

from __future__ import annotations

import math

from kapre_fast import _weights
from kapre_fast.spec import frame_count

# The attributes the framing reads, and those of the features after it.
FRAMING = ('n_fft', 'win_length', 'hop_length', 'pad_begin', 'pad_end', 'input_format')
FEATURES = ('output', 'power', 'decibel', 'amin', 'ref_value', 'dynamic_range', 'db_multiplier')
INVERSE = ('n_fft', 'win_length', 'hop_length', 'input_format', 'output_format')


class Namespace:
    """The array operations the pipeline needs, each a framework's own (subclasses: ops.py's
    TensorFlow, torch/_composition.py's, jax/_composition.py's). Shapes are static where the
    pipeline reads them (the last axis' size)."""

    def transpose(self, x, perm):
        raise NotImplementedError

    def frame(self, waveforms, pad_begin, length, hop, pad_end):
        """(batch, ch, frames, length) frames of (batch, ch, time) waveforms after pad_begin
        zeros in front, as tf.signal.frame cuts them (pad_end: zeros behind, up to
        ceil(time / hop) frames; see end_padding)."""
        raise NotImplementedError

    def pad_last(self, x, count):
        """x with `count` zeros appended along its last axis."""
        raise NotImplementedError

    def rfft(self, x, n):
        raise NotImplementedError

    def irfft(self, x, n):
        raise NotImplementedError

    def overlap_add(self, frames, hop):
        """(batch, ch, time) sums of (batch, ch, frames, length) frames placed hop apart."""
        raise NotImplementedError

    def real(self, x):
        raise NotImplementedError

    def imag(self, x):
        raise NotImplementedError

    def abs(self, x):
        raise NotImplementedError

    def phase(self, x):
        """angle(x) whose gradient is 0, not NaN, where x is 0 (see kapre_fast.ops)."""
        raise NotImplementedError

    def log10(self, x):
        raise NotImplementedError

    def floor(self, x, value):
        """max(x, value) for a Python number `value`."""
        raise NotImplementedError

    def maximum(self, x, y):
        raise NotImplementedError

    def peak(self, x):
        """Each example's maximum over its other axes, kept as axes of size 1."""
        raise NotImplementedError

    def concat_channels(self, tensors):
        raise NotImplementedError


def attributes(spec) -> dict:
    """The TF op's attributes for `spec` (see kapre_fast.ops): the kernel's framing and dB
    settings, the layouts and the output kind."""
    return dict(
        _weights.kernel_attributes(spec),
        input_format=spec.input_data_format,
        output_format=spec.output_data_format,
        output=spec.output,
    )


def inverse_attributes(spec) -> dict:
    """The inverse STFT op's attributes for the forward STFT `spec`: its output layout is the
    STFT's (the inverse's input), its input layout the waveform's."""
    return dict(
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        input_format=spec.output_data_format,
        output_format=spec.input_data_format,
    )


def end_padding(total: int, length: int, hop: int, pad_end: bool) -> int:
    """Zeros tf.signal.frame's pad_end appends to `total` samples: up to the end of frame
    ceil(total / hop) (0 without pad_end, or where that frame ends within the samples)."""
    if not pad_end:
        return 0
    return max(0, (frame_count(total, length, hop, True) - 1) * hop + length - total)


def fit_last_axis(xp: Namespace, x, length: int):
    """x cropped or zero-padded at the end of its last axis to `length`."""
    size = x.shape[-1]
    if size > length:
        return x[..., :length]
    if size < length:
        return xp.pad_last(x, length - size)
    return x


def decibel_offset(multiplier, amin, ref) -> float:
    """multiplier * log10(max(amin, ref)): the dB of the reference, a Python float."""
    return multiplier * math.log10(max(amin, ref))


def decibel(xp: Namespace, x, multiplier, amin, ref, dynamic_range):
    """kapre's magnitude_to_decibel and every preset's (FrontEnd.decibel): multiplier *
    log10(max(x, amin)) less the reference's dB, clamped to dynamic_range below each example's
    peak (over frames, features and channels together)."""
    log_x = multiplier * xp.log10(xp.floor(x, amin))
    log_x = log_x - decibel_offset(multiplier, amin, ref)
    if math.isinf(dynamic_range):  # a preset's top_db=math.inf: no clamp
        return log_x
    return xp.maximum(log_x, xp.peak(log_x) - dynamic_range)


def to_output_layout(xp: Namespace, attrs, features):
    """(batch, ch, frames, features) to attrs['output_format']."""
    if attrs['output_format'] == 'channels_last':
        return xp.transpose(features, (0, 2, 3, 1))
    return features


def spectra(xp: Namespace, attrs, audio, window):
    """(batch, ch, frames, n_freq) complex spectra of the waveform batch `audio` (laid out as
    attrs['input_format']) through `window` (win_length values)."""
    waveforms = audio
    if attrs['input_format'] == 'channels_last':
        waveforms = xp.transpose(waveforms, (0, 2, 1))
    frames = xp.frame(
        waveforms, attrs['pad_begin'], attrs['win_length'], attrs['hop_length'], attrs['pad_end']
    )
    n_fft = attrs['n_fft']
    return xp.rfft(fit_last_axis(xp, frames * window, n_fft), n_fft)


def features(xp: Namespace, attrs, spectra, filterbank=None):
    """The features of complex spectra (batch, ch, frames, n_freq), before the output layout:
    |X| (power 2: re^2 + im^2, smooth at 0 where |X|'s gradient is not), `filterbank` (a
    function of them, or None), dB, and for mag_phase the phases on more channels."""
    if attrs['power'] == 2:
        magnitude = xp.real(spectra) ** 2 + xp.imag(spectra) ** 2
    else:
        magnitude = xp.abs(spectra)
    result = magnitude if filterbank is None else filterbank(magnitude)
    if attrs['decibel']:
        result = decibel(
            xp,
            result,
            attrs['db_multiplier'],
            attrs['amin'],
            attrs['ref_value'],
            attrs['dynamic_range'],
        )
    if attrs['output'] == 'mag_phase':
        result = xp.concat_channels([result, xp.phase(spectra)])
    return result


def front_end(xp: Namespace, attrs, audio, window, filterbank=None):
    """What the fused front end computes: the complex STFT for output 'complex', else the
    features (see `features`), in attrs['output_format']."""
    X = spectra(xp, attrs, audio, window)
    if attrs['output'] == 'complex':
        return to_output_layout(xp, attrs, X)
    return to_output_layout(xp, attrs, features(xp, attrs, X, filterbank))


def inverse_stft(xp: Namespace, attrs, stft, window):
    """tf.signal.inverse_stft's pipeline with the synthesis `window`: irFFT of n_fft, cropped
    or zero-padded at the end to win_length, windowed, overlap-added (attrs: INVERSE's)."""
    X = stft
    if attrs['input_format'] == 'channels_last':
        X = xp.transpose(X, (0, 3, 1, 2))
    frames = fit_last_axis(xp, xp.irfft(X, attrs['n_fft']), attrs['win_length']) * window
    waveforms = xp.overlap_add(frames, attrs['hop_length'])
    if attrs['output_format'] == 'channels_last':
        return xp.transpose(waveforms, (0, 2, 1))
    return waveforms
