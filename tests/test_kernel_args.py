"""The kernel-call contract: csrc/core/kernel_args.h (C++) and kapre_fast/_kernel_args.py
(Python) list the same arguments, with the same names, order and types, and the native modules
take exactly those."""

import numpy as np
import pytest

from kapre_fast import FrontEnd, _kernel_args, _loader, _weights, cpu

core = _loader.core()


def test_the_two_halves_agree():
    assert core.kernel_arg_signature() == _kernel_args.signature()
    assert _kernel_args.NAMES == tuple(
        entry.split(':')[0] for entry in core.kernel_arg_signature().split()
    )


def _call(spec, audio, **contract):
    start, length, weights = _weights.bands(spec)
    return core.frontend(
        audio, _weights.window(spec), start, length, weights, threads=1, **contract
    )


@pytest.mark.parametrize('compat', ['kapre', 'librosa', 'torchaudio'])
def test_one_builder_per_spec_drives_the_kernel(compat):
    spec = FrontEnd.melspectrogram(
        compat=compat, return_decibel=True, input_data_format='channels_first'
    )
    audio = np.random.default_rng(3).standard_normal((2, 1, 6000)).astype(np.float32)
    centred = _weights.centred(spec, audio, np.pad) if spec.center_padding else audio
    args = _kernel_args.of(spec)
    assert args is _kernel_args.of(spec)  # built once per spec
    np.testing.assert_array_equal(_call(spec, centred, **args.asdict()), cpu.compute(spec, audio))


def test_the_module_takes_the_contract_and_nothing_else():
    spec = FrontEnd.melspectrogram(return_decibel=True)
    audio = np.zeros((1, 4096, 1), np.float32)
    good = _kernel_args.of(spec).asdict()
    for name in _kernel_args.NAMES:
        with pytest.raises(TypeError, match=f'missing keyword argument {name}$'):
            _call(spec, audio, **{k: v for k, v in good.items() if k != name})
    with pytest.raises(TypeError, match='unexpected keyword argument hop'):
        _call(spec, audio, hop=512, **good)
    with pytest.raises(TypeError, match='pad_end must be a bool, got str'):
        _call(spec, audio, **{**good, 'pad_end': 'no'})
    with pytest.raises(ValueError, match='power must be 1 or 2, got 3'):
        _call(spec, audio, **{**good, 'power': 3})
    with pytest.raises(ValueError, match='output must be 0 .* got 7'):
        _call(spec, audio, **{**good, 'output': 7})
    with pytest.raises(ValueError, match='amin is out of float32 range'):
        _call(spec, audio, **{**good, 'amin': 1e300})
