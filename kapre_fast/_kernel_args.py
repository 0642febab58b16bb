"""The kernel-call contract, Python's half: the scalar arguments of one native front-end call,
built once per spec.

csrc/core/kernel_args.h is the C++ half: the same names, in the same order, with the same
types (int -> int64, bool -> bool, float -> float32; tests/test_kernel_args.py compares the two
through `_core.kernel_arg_signature()`). Every native adapter takes exactly these arguments by
these names: the NumPy and CuPy modules as keywords (the GPU plan without the two layout flags,
which it takes per launch), the XLA FFI handlers as attributes, the TensorFlow ops and the torch
operators likewise. The window, filterbank and DCT matrix travel beside them (_weights).
"""

from __future__ import annotations

import dataclasses
import functools

from kapre_fast.spec import FrontEnd

OUTPUT_CODES = {'magnitude': 0, 'mag_phase': 1, 'complex': 2}
_TYPE_NAMES = {'int': 'int64', 'bool': 'bool', 'float': 'float32'}
LAYOUTS = ('input_channels_first', 'output_channels_first')


@dataclasses.dataclass(frozen=True)
class KernelArgs:
    """One front-end kernel call's scalar arguments, in the kernels' own terms: frames of
    win_length samples (a preset's frame length), pad_begin in samples, output as a code
    (OUTPUT_CODES), power 1 (|X|) or 2 (|X|^2), dB as db_multiplier * log10(max(x, amin) /
    ref_value) clamped to dynamic_range below each example's maximum when decibel is set."""

    n_fft: int
    win_length: int
    hop_length: int
    pad_begin: int
    pad_end: bool
    output: int
    decibel: bool
    amin: float
    ref_value: float
    dynamic_range: float
    input_channels_first: bool
    output_channels_first: bool
    power: int
    db_multiplier: float

    def asdict(self) -> dict:
        """Every argument by name, in the contract's order (a fresh dict, the caller's)."""
        return dict(self._values)

    @functools.cached_property
    def _values(self) -> dict:
        # Built once per instance (of() caches the instances): a call's arguments cost a copy.
        return {name: getattr(self, name) for name in NAMES}

    def without_layouts(self) -> dict:
        """asdict() without the two layout flags (the GPU plan's keywords)."""
        return {name: value for name, value in self.asdict().items() if name not in LAYOUTS}

    def replace(self, **changes) -> KernelArgs:
        return dataclasses.replace(self, **changes)


NAMES = tuple(field.name for field in dataclasses.fields(KernelArgs))


def signature() -> str:
    """'n_fft:int64 win_length:int64 ...': what _core.kernel_arg_signature() returns for the
    C++ half when the two agree."""
    return ' '.join(
        f'{field.name}:{_TYPE_NAMES[field.type]}' for field in dataclasses.fields(KernelArgs)
    )


@functools.lru_cache(maxsize=256)
def of(spec: FrontEnd) -> KernelArgs:
    """The kernel arguments of `spec`, for audio already centred (a preset's centring is a padded
    copy made before the kernel, _weights.centred, which then cuts frames of
    frame_length = n_fft)."""
    multiplier, amin, ref, dynamic_range = spec.decibel
    return KernelArgs(
        n_fft=spec.n_fft,
        win_length=spec.frame_length,
        hop_length=spec.hop_length,
        pad_begin=spec.pad_begin_length,
        pad_end=spec.pad_end,
        output=OUTPUT_CODES[spec.output],
        decibel=spec.return_decibel,
        amin=amin,
        ref_value=ref,
        dynamic_range=dynamic_range,
        input_channels_first=spec.input_data_format == 'channels_first',
        output_channels_first=spec.output_data_format == 'channels_first',
        power=spec.power_exponent,
        db_multiplier=multiplier,
    )


@functools.lru_cache(maxsize=256)
def inverse_of(spec: FrontEnd) -> KernelArgs:
    """The kernel arguments of the inverse STFT of the forward `spec` (the GPU plan's): its
    framing, complex output, no padding, no dB."""
    return of(spec).replace(
        pad_begin=0, pad_end=False, output=OUTPUT_CODES['complex'], decibel=False
    )
