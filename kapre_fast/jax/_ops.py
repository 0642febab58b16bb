"""The fused front ends as XLA FFI custom calls (jax.ffi), with custom VJPs.

    front_end(spec, audio, threads)    -> features (float32; complex64 for the STFT)
    inverse_stft(spec, stft, threads)  -> waveforms (float32)

The calls go to the typed FFI handlers of kapre_fast._jax_ffi: on XLA's CPU platform
csrc/jax/handlers.cc, which runs the same C++ core as kapre_fast.cpu; on its CUDA platform, in
builds with the CUDA kernels, csrc/jax/handlers_cuda.cc over the same kernels as kapre_fast.gpu
(compiled, not yet run: README, JAX). They are registered with jax.ffi.register_ffi_target when
this module is imported. The FrontEnd (a hashable constant) picks the attributes: sizes, flags,
and the window and filterbank as array attributes, so under jax.jit they are constants of the
compiled program and the kernel runs fused inside it. vmap adds leading axes to the audio
(vmap_method='expand_dims'), which the handler folds into the batch.

Gradients (jax.custom_vjp): the backward pass recomputes the pipeline in differentiable jnp ops
(_composition.py) and takes its vector-Jacobian product, as the TensorFlow ops' gradients
(kapre_fast/ops.py) and the PyTorch operators' do.
"""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from kapre_fast import _kernel_args, _loader, _weights
from kapre_fast.jax import _composition
from kapre_fast.spec import FrontEnd

FRONT_END_TARGET = 'kapre_fast_front_end'
INVERSE_STFT_TARGET = 'kapre_fast_inverse_stft'


def module():
    """The compiled module kapre_fast._jax_ffi (ImportError saying what to do when it is missing
    or was built with a newer XLA FFI API than the installed jaxlib implements)."""
    shadowed = _loader.source_checkout_note()
    if shadowed:
        raise ImportError(f"kapre_fast's JAX handlers are missing: {shadowed}")
    if not _loader.build_info().get('jax', False):
        raise ImportError(
            'kapre_fast was built without its JAX handlers (jax was not importable at build '
            f'time). Install jax first (`{_loader.pip_install_hint("jax")}`), then reinstall '
            'kapre_fast with `pip install --no-build-isolation .`.'
        )
    try:
        handlers = importlib.import_module('kapre_fast._jax_ffi')
    except ImportError as error:
        raise ImportError(
            f"kapre_fast's JAX handler module _jax_ffi failed to load: {error}"
        ) from error
    check_ffi_api(
        getattr(handlers, 'ffi_api_version', None),
        getattr(handlers, 'built_with_jax', ''),
        installed_ffi_api_version(),
        jax.__version__,
    )
    return handlers


def parse_ffi_api_version(header: str):
    """(major, minor) of the XLA FFI C API that the text of xla/ffi/api/c_api.h defines; None
    when it defines no XLA_FFI_API_MAJOR / _MINOR."""
    found = [
        re.search(rf'^#define XLA_FFI_API_{part}\s+(\d+)', header, re.M)
        for part in ('MAJOR', 'MINOR')
    ]
    return tuple(int(match[1]) for match in found) if all(found) else None


def installed_ffi_api_version():
    """(major, minor) of the XLA FFI C API the installed jaxlib implements, from the headers it
    ships (jax.ffi.include_dir()); None where they cannot be read."""
    try:
        header = Path(jax.ffi.include_dir()) / 'xla' / 'ffi' / 'api' / 'c_api.h'
        return parse_ffi_api_version(header.read_text())
    except (OSError, AttributeError):
        return None


def check_ffi_api(built, built_with_jax: str, installed, installed_jax: str) -> None:
    """ImportError when handlers compiled with FFI API `built` (beside jax `built_with_jax`)
    cannot register in a jaxlib implementing API `installed`: another major version, or a newer
    minor one. jaxlib would refuse them only when its backend starts, leaving jax's CPU backend
    unusable in the process. No check when either version is unknown (None)."""
    if built is None or installed is None:
        return
    built, installed = tuple(built), tuple(installed)
    if built[0] == installed[0] and built[1] <= installed[1]:
        return
    beside = f' beside jax {built_with_jax}' if built_with_jax else ''
    upgrade = (
        f'Install jax {built_with_jax} or newer (`pip install "jax>={built_with_jax}"`)'
        if built_with_jax
        else 'Install a newer jax'
    )
    raise ImportError(
        f"kapre_fast's JAX handlers were built{beside} with XLA FFI API "
        f'{built[0]}.{built[1]}, but the installed jax {installed_jax} implements FFI API '
        f'{installed[0]}.{installed[1]} and would refuse them. {upgrade}, or rebuild kapre_fast '
        'beside this jax (`pip install --no-build-isolation .` in its checkout).'
    )


# Where the CUDA handlers stand in this process: 'registered', or why not.
cuda_registration = 'not built'


def register_targets():
    """Registers the handlers with XLA (once per process; jax keeps the registry): the CPU ones,
    and the CUDA ones when this build has them (_build_info.json: "jax_cuda")."""
    global cuda_registration
    handlers = module()
    for name, capsule in handlers.cpu_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform='cpu')
    if not _loader.build_info().get('jax_cuda', False):
        return
    if not hasattr(handlers, 'cuda_targets'):
        cuda_registration = '_jax_ffi has no CUDA handlers (a build older than its build info)'
        return
    # jaxlib holds a registration for a platform it has not loaded (a CPU-only jaxlib, or before
    # the CUDA plugin starts) and hands it over when the plugin registers. Should a jax raise for
    # an unknown platform instead, the CPU handlers must still work: record why and go on.
    try:
        for name, capsule in handlers.cuda_targets().items():
            jax.ffi.register_ffi_target(name, capsule, platform='CUDA')
    except Exception as error:  # noqa: BLE001 (any jax's refusal; the CPU path is unaffected)
        cuda_registration = f'jax refused the CUDA platform: {type(error).__name__}: {error}'
    else:
        cuda_registration = 'registered'


# Explicit NumPy scalar types: they fix the attribute types the handlers decode.
_ATTRIBUTE_TYPES = {bool: np.bool_, int: np.int64, float: np.float32}


def _attributes(**values) -> dict:
    return {name: _ATTRIBUTE_TYPES[type(value)](value) for name, value in values.items()}


def _framing(spec: FrontEnd, threads: int) -> dict:
    return _attributes(
        n_fft=spec.n_fft, win_length=spec.win_length, hop_length=spec.hop_length, threads=threads
    )


def _front_end_call(spec: FrontEnd, audio, threads: int):
    shape = spec.output_shape(audio.shape)
    dtype = jnp.complex64 if spec.output == 'complex' else jnp.float32
    start, length, weights = _weights.bands(spec)
    call = jax.ffi.ffi_call(
        FRONT_END_TARGET, jax.ShapeDtypeStruct(shape, dtype), vmap_method='expand_dims'
    )
    # The core's framing and dB attributes (frames of spec.frame_length, power, the preset's
    # dB multiplier), as every native entry point takes them; a centred preset arrives padded.
    return call(
        audio,
        **_attributes(
            **_kernel_args.of(spec).asdict(),
            threads=threads,
        ),
        window=_weights.window(spec),
        band_start=start,
        band_length=length,
        band_weights=weights,
    )


def _inverse_stft_call(spec: FrontEnd, stft, threads: int):
    """spec is the forward STFT: its output layout is the STFT's, its input layout the
    waveforms'."""
    if spec.output_data_format == 'channels_last':
        batch, frames, _, channels = stft.shape
    else:
        batch, channels, frames, _ = stft.shape
    length = (frames - 1) * spec.hop_length + spec.win_length
    shape = (
        (batch, length, channels)
        if spec.input_data_format == 'channels_last'
        else (batch, channels, length)
    )
    call = jax.ffi.ffi_call(
        INVERSE_STFT_TARGET, jax.ShapeDtypeStruct(shape, jnp.float32), vmap_method='expand_dims'
    )
    return call(
        stft,
        **_framing(spec, threads),
        input_channels_first=np.bool_(spec.output_data_format == 'channels_first'),
        output_channels_first=np.bool_(spec.input_data_format == 'channels_first'),
        window=_weights.inverse_window(spec),
    )


def _with_vjp(call, recompute):
    """call(spec, x, threads) as a custom_vjp function of x whose backward pass is the VJP of
    recompute(spec, x) (spec and threads are static)."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 2))
    def op(spec, x, threads):
        return call(spec, x, threads)

    def forward(spec, x, threads):
        return call(spec, x, threads), x

    def backward(spec, threads, x, cotangent):
        _, vjp = jax.vjp(functools.partial(recompute, spec), x)
        return vjp(cotangent)

    op.defvjp(forward, backward)
    return op


front_end = _with_vjp(_front_end_call, _composition.front_end)
inverse_stft = _with_vjp(_inverse_stft_call, _composition.inverse_stft)

register_targets()
