"""The argument checks every part of kapre_fast shares: each raises a TypeError (also a
ValueError: errors.ArgumentTypeError) or a ValueError naming the argument and its value, and
returns the value in its canonical Python type. Only NumPy is imported."""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from kapre_fast.errors import ArgumentTypeError

DATA_FORMATS = ('channels_last', 'channels_first')


def _check_int(name, value, minimum, whole_floats=False):
    # bool is an int subclass, but pad_begin=True passed as n_fft is a bug, not a size.
    # whole_floats: 64.0 counts as 64 (kapre takes n_mels and log_bins_per_octave so).
    if (
        whole_floats
        and isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_, numbers.Integral))
        and float(value).is_integer()
    ):
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f'{name} must be an int, got {type(value).__name__} {value!r}')
    value = int(value)
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    return value


def _check_real(name, value, finite=True):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f'{name} must be a real number, got {type(value).__name__} {value!r}'
        )
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f'{name} must be finite, got {value!r}')
    return value


def _check_positive(name, value):
    value = float(_check_real(name, value))
    if value <= 0:
        raise ValueError(f'{name} must be > 0, got {value!r}')
    return value


def _check_float32_positive(name, value):
    """> 0 and still > 0 and finite in float32, the kernels' precision (1e-50 is 0 there)."""
    value = _check_positive(name, value)
    if not 0 < np.float32(value) < np.inf:
        limits = np.finfo(np.float32)
        raise ValueError(
            f'{name} must be a number float32 holds ({limits.smallest_subnormal:.3g}'
            f' to {limits.max:.3g}), got {value!r}'
        )
    return value


def _check_bool(name, value):
    # kapre tests its flags for truth, so code written for it passes 0 and 1 too.
    if not isinstance(value, (bool, np.bool_)) and not (
        isinstance(value, numbers.Integral) and value in (0, 1)
    ):
        raise ArgumentTypeError(
            f'{name} must be a bool (or 0 or 1), got {type(value).__name__} {value!r}'
        )
    return bool(value)


def _check_choice(name, value, choices):
    if not isinstance(value, str):
        raise TypeError(f'{name} must be a string, got {type(value).__name__} {value!r}')
    if value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(map(repr, choices))}, got {value!r}')
    return value


def _check_data_format(name, value):
    if not isinstance(value, str):
        raise TypeError(f'{name} must be a string, got {type(value).__name__} {value!r}')
    if value == 'default':
        value = _keras_image_data_format()
    if value not in DATA_FORMATS:
        raise ValueError(
            f"{name} must be 'channels_last', 'channels_first' or 'default', got {value!r}"
        )
    return value


def _keras_image_data_format():
    # Read Keras' setting only if the user already imported Keras: importing it here would pull
    # in a deep-learning framework just to learn a default.
    if 'keras' not in sys.modules:
        return 'channels_last'
    try:
        import keras

        return keras.config.image_data_format()
    except (ImportError, AttributeError):
        return 'channels_last'


def time_axis_layout(time_axis) -> str:
    """The layout whose frames axis is `time_axis` of a 4-D filterbank output: 1 gives
    'channels_last', 2 'channels_first'; ValueError naming it otherwise."""
    if isinstance(time_axis, (bool, np.bool_)) or time_axis not in (1, 2):
        raise ValueError(
            f'time_axis must be 1 (channels_last) or 2 (channels_first), got {time_axis!r}'
        )
    return DATA_FORMATS[time_axis - 1]
