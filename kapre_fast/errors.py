"""Exceptions that keep kapre's exception types while also being ValueErrors.

kapre raises NotImplementedError for an unknown window name and RuntimeError when the log
filterbank reaches above Nyquist. Code written against kapre catches those types; code written
against kapre_fast can catch ValueError for every bad argument. Both work.
"""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (n_fft=512.0, pad_begin='yes'): a TypeError, and a
    ValueError as TensorFlow's checks inside kapre raise for some of them (n_fft=512.0)."""


class UnsupportedWindowError(NotImplementedError, ValueError):
    """The window name is not one of the tf.signal windows that kapre supports."""


class FilterbankRangeError(RuntimeError, ValueError):
    """The log-frequency filterbank's top frequency is above the Nyquist frequency."""
