"""atheris (libFuzzer) driver for the pybind11 entry points of kapre_fast._core.

Every input is decoded into arrays and attributes and handed to the raw module, which must
answer with a result or ValueError/TypeError/OverflowError, never crash. Run it directly for a
long session (e.g. `python tests/atheris_fuzz.py -max_total_time=1800`); test_atheris.py runs a
bounded number of inputs in CI.
"""

import sys

import atheris
import numpy as np

with atheris.instrument_imports():
    from kapre_fast import _loader

from helpers import contract_keywords

core = _loader.core()
core.output_limit(32 << 20)  # huge requests must be refused, not allocated
ACCEPTABLE = (ValueError, TypeError, OverflowError)
DTYPES = [np.float32, np.float32, np.float32, np.float64, np.int32, np.complex64]


@atheris.instrument_func
def _array(fdp, max_ndim, max_side):
    ndim = fdp.ConsumeIntInRange(0, max_ndim)
    shape = [fdp.ConsumeIntInRange(0, max_side if i == ndim - 1 else 4) for i in range(ndim)]
    dtype = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)]
    count = int(np.prod(shape)) if shape else 1
    values = fdp.ConsumeFloatListInRange(min(count, 64), -1e6, 1e6) or [0.0]
    flat = np.resize(np.asarray(values, np.float64), count)
    if fdp.ConsumeBool() and count:
        flat[fdp.ConsumeIntInRange(0, count - 1)] = [np.nan, np.inf, -np.inf][
            fdp.ConsumeIntInRange(0, 2)
        ]
    with np.errstate(all='ignore'):
        array = (
            flat.reshape(shape).astype(dtype)
            if dtype != np.int32
            else np.nan_to_num(flat).clip(-1e6, 1e6).reshape(shape).astype(np.int32)
        )
    if array.ndim and fdp.ConsumeBool():
        array = array[..., ::-1]
    return array


def _int(fdp):
    return [fdp.ConsumeIntInRange(-4, 700), 0, 1, 2, 2**16, 2**31 - 1, 2**40][
        fdp.ConsumeIntInRange(0, 6) if fdp.ConsumeBool() else 0
    ]


@atheris.instrument_func  # coverage of the decoding steers libFuzzer to varied shapes and kinds
def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 2)
    try:
        if which == 0:
            bands = [
                np.asarray(
                    [fdp.ConsumeIntInRange(-3, 300) for _ in range(fdp.ConsumeIntInRange(0, 40))],
                    np.int32,
                )
                for _ in range(2)
            ]
            core.frontend(
                _array(fdp, 4, 600),
                _array(fdp, 1, 600),
                bands[0],
                bands[1],
                _array(fdp, 1, 200),
                threads=fdp.ConsumeIntInRange(-1, 2),
                **contract_keywords(
                    _int(fdp),
                    _int(fdp),
                    _int(fdp),
                    _int(fdp),
                    fdp.ConsumeBool(),
                    fdp.ConsumeIntInRange(-1, 3),
                    fdp.ConsumeBool(),
                    fdp.ConsumeFloat(),
                    fdp.ConsumeFloat(),
                    fdp.ConsumeFloat(),
                    fdp.ConsumeBool(),
                    fdp.ConsumeBool(),
                    fdp.ConsumeIntInRange(-1, 3),
                    fdp.ConsumeFloat(),
                ),
            )
        elif which == 1:
            core.istft(
                _array(fdp, 4, 300),
                _array(fdp, 1, 600),
                _int(fdp),
                _int(fdp),
                _int(fdp),
                fdp.ConsumeBool(),
                fdp.ConsumeBool(),
                1,
            )
        else:
            spectrum = core.rfft(_array(fdp, 2, 600))
            core.irfft(spectrum, _int(fdp))
    except ACCEPTABLE:
        pass


if __name__ == '__main__':
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
