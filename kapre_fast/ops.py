"""TensorFlow ops on the fused C++ core (imports TensorFlow).

`front_end(audio, spec)` runs any FrontEnd in a graph or eagerly; `inverse_stft(stft, spec)` is
kapre's InverseSTFT. Windows and filterbanks enter the graph as constants computed by
`kapre_fast.spec`, so one op serves every pipeline. Attributes are validated by `FrontEnd`
before the op is built; the kernels check shapes again (raw calls bypass this module) and raise
tf.errors.InvalidArgumentError.
"""

from __future__ import annotations

import tensorflow as tf

from kapre_fast import _loader, _weights
from kapre_fast.spec import FrontEnd

__all__ = ['front_end', 'inverse_stft', 'library']


def library():
    """The loaded op library (tf.load_op_library), loaded on first use."""
    return _loader.tf_ops()


def _framing_attrs(spec: FrontEnd) -> dict:
    return dict(
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        pad_begin=spec.pad_begin_length,
        pad_end=spec.pad_end,
        input_format=spec.input_data_format,
        output_format=spec.output_data_format,
    )


def front_end(audio, spec: FrontEnd) -> tf.Tensor:
    """Features of a waveform batch (float32; complex64 when spec.output == 'complex'),
    laid out as kapre lays them out. Other float dtypes are computed in float32."""
    audio = tf.convert_to_tensor(audio)
    if not audio.dtype.is_floating:
        raise TypeError(f'audio must be a floating-point tensor, got dtype {audio.dtype.name}')
    audio = tf.cast(audio, tf.float32)
    window = tf.constant(_weights.window(spec))
    if spec.output == 'complex':
        return library().kapre_fast_stft(audio, window, **_framing_attrs(spec))
    start, length, weights = _weights.bands(spec)
    return library().kapre_fast_front_end(
        audio,
        window,
        tf.constant(start),
        tf.constant(length),
        tf.constant(weights),
        output=spec.output,
        decibel=spec.return_decibel,
        amin=spec.db_amin,
        ref_value=spec.db_ref_value,
        dynamic_range=spec.db_dynamic_range,
        **_framing_attrs(spec),
    )


def inverse_stft(stft, spec: FrontEnd) -> tf.Tensor:
    """Waveforms from a complex STFT batch, as tf.signal.inverse_stft with
    inverse_stft_window_fn(hop_length, forward window). `spec` describes the forward STFT:
    its output_data_format is the STFT's layout, its input_data_format the waveform's."""
    stft = tf.cast(tf.convert_to_tensor(stft), tf.complex64)
    return library().kapre_fast_inverse_stft(
        stft,
        tf.constant(_weights.inverse_window(spec)),
        n_fft=spec.n_fft,
        win_length=spec.win_length,
        hop_length=spec.hop_length,
        input_format=spec.output_data_format,
        output_format=spec.input_data_format,
    )
