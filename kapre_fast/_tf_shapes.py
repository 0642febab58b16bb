"""Static output shapes of the TensorFlow ops in a graph, from their attributes.

The op library is written against TensorFlow's C op API (csrc/tf/ops.cc), whose shape functions
see the inputs' shapes but no attribute values: they check ranks and give (batch, ?, ?, ?). This
module completes the shape from the op node's attributes and its inputs' static shapes, as the
kernels compute it at run time (csrc/core: frame_count, feature_count, istft_length; here
kapre_fast.spec's frame_count, istft_length and feature_layout, as every Python caller), and
rejects audio too short for one frame while the graph is built (ValueError, the words of the
kernel's InvalidArgumentError). kapre_fast/_loader.py applies it to every op the library builds
in a graph.
"""

from __future__ import annotations

from kapre_fast.spec import feature_layout, frame_count, istft_length

_FRONT_ENDS = ('KapreFastFrontEnd', 'KapreFastMfcc', 'KapreFastStft')


def _dim(shape, i):
    return None if shape.rank is None else shape[i]


def _frames(op, time):
    """Frames as tf.signal.frame counts them, or None when the time axis is unknown."""
    win, hop = op.get_attr('win_length'), op.get_attr('hop_length')
    pad_begin, pad_end = op.get_attr('pad_begin'), op.get_attr('pad_end')
    if win < 1 or hop < 1 or pad_begin < 0:
        raise ValueError(
            'win_length and hop_length must be >= 1 and pad_begin >= 0, got '
            f'{win}, {hop}, {pad_begin}'
        )
    if time is None:
        return None
    total = time + pad_begin
    frames = frame_count(total, win, hop, pad_end)
    if frames < 1:
        raise ValueError(
            f'audio has {time} samples ({total} after pad_begin); one frame needs '
            f'win_length={win} samples: pass longer audio or pad_end=True'
        )
    return frames


def _layout(op, attr, batch, ch, frames, feat):
    return list(feature_layout(batch, ch, frames, feat, _first(op, attr)))


def _first(op, attr):
    return op.get_attr(attr).decode() == 'channels_first'


def output_shape(op):
    """The static shape of `op`'s output (a list with None for unknown axes), or None when
    the op is not one of the library's or its first input has no known rank."""
    if op.type in _FRONT_ENDS:
        audio = op.inputs[0].shape
        if audio.rank != 3:
            return None
        first = _first(op, 'input_format')
        batch, ch, time = audio[0], audio[1 if first else 2], audio[2 if first else 1]
        frames = _frames(op, time)
        n_fft = op.get_attr('n_fft')
        if n_fft < 2:
            raise ValueError(f'n_fft must be >= 2, got {n_fft}')
        if op.type == 'KapreFastStft':
            feat = n_fft // 2 + 1
        elif op.type == 'KapreFastMfcc':
            feat = _dim(op.inputs[5].shape, 1)
        else:
            bands = _dim(op.inputs[2].shape, 0)
            feat = None if bands is None else (bands if bands > 0 else n_fft // 2 + 1)
            if ch is not None and op.get_attr('output').decode() == 'mag_phase':
                ch *= 2
        return _layout(op, 'output_format', batch, ch, frames, feat)
    if op.type == 'KapreFastInverseStft':
        stft = op.inputs[0].shape
        if stft.rank != 4:
            return None
        first = _first(op, 'input_format')
        batch, ch, frames = stft[0], stft[1 if first else 3], stft[2 if first else 1]
        if frames is not None and frames < 1:
            frames = None  # the kernel's check reports it at run time
        time = istft_length(frames, op.get_attr('hop_length'), op.get_attr('win_length'))
        if _first(op, 'output_format'):
            return [batch, ch, time]
        return [batch, time, ch]
    return None  # KapreFastPcen: the C shape function passes the features' shape on
