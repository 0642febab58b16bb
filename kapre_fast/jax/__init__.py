"""kapre_fast for JAX: the fused front ends on jax arrays, under jit, vmap and grad.

    import kapre_fast.jax as kfj
    mel = kfj.melspectrogram(audio, n_fft=1024, hop_length=256, n_mels=64)   # a jax.Array
    step = jax.jit(lambda x: kfj.melspectrogram(x, n_mels=64).mean())         # fused when compiled

The functions of `kapre_fast.cpu` (kapre's keyword arguments, defaults and layouts; `threads`) on
jax arrays, computed by the fused C++ kernel as XLA FFI custom calls (`jax.ffi`): inside
`jax.jit` the call is part of the compiled program; `jax.vmap` maps over extra leading axes
without a loop; `jax.grad` / `jax.vjp` give gradients with respect to the waveform (and to the
complex STFT for `istft`) through a custom VJP that recomputes the pipeline in jnp ops, as the
TensorFlow ops' gradients do. The handlers are registered for XLA's CPU platform and, in builds
with the CUDA kernels, for its CUDA platform too (compiled in CI but not yet run on a GPU:
README, JAX); without them a program placed on a GPU fails to compile, naming the target.

The presets (compat='librosa' / 'torchaudio') run here too: their centring is a jnp.pad of the
audio before the FFI call (differentiated by jax), their power and dB are the call's attributes
(which the CUDA handlers hand to the CUDA kernels' plan as well). `mfcc` and `pcen`
take kapre_fast.cpu's arguments: the DCT of the fused dB mel in jnp, and PCEN in jnp with its
smoother kapre_fast._pcen's doubling scan over the frames (jit-able, differentiable).

The Backend protocol of kapre_fast._backends (registry name 'jax', what the Keras layers call
under KERAS_BACKEND=jax): compute(spec, x), inverse(spec, X), compute_mfcc(spec, matrix, x),
apply_pcen(mel, constants, time_axis), and recompute(spec, x) / recompute_inverse(spec, X), the
same values from the pipeline the custom VJPs differentiate, in jnp.

Needs jax with `jax.ffi` (the `jax` extra) and a kapre_fast built while jax was
importable, beside a jax whose XLA FFI API the installed one implements (the same release or an
older one: checked at import, kapre_fast/jax/_ops.py); `import kapre_fast` alone never imports jax.
"""

from __future__ import annotations

from kapre_fast import _loader

try:
    import jax
    import jax.numpy as jnp
except ImportError as _error:
    raise ImportError(
        f'kapre_fast.jax needs jax: `{_loader.pip_install_hint("jax")}` '
        f'(importing jax failed: {_error})'
    ) from _error
if not hasattr(jax, 'ffi'):
    raise ImportError(
        f'kapre_fast.jax needs jax 0.4.38 or newer (jax.ffi); jax '
        f'{jax.__version__} is installed: `{_loader.pip_install_hint("jax")}`'
    )

import numpy as np  # noqa: E402

from kapre_fast import _api, _pcen, _weights, cpu  # noqa: E402
from kapre_fast.jax import _composition, _ops  # noqa: E402  (_ops registers the FFI targets)
from kapre_fast.spec import FrontEnd, check_audio_dtype  # noqa: E402

__all__ = [*_api.PUBLIC, 'recompute', 'recompute_inverse']

# kapre's keyword arguments plus threads, signatures and docstrings: kapre_fast._api.
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = (
    _api.front_end_functions(__name__)
)


def compute(spec: FrontEnd, x, *, threads=None) -> jax.Array:
    """Runs the front end `spec` on the waveform batch `x` (a jax array, a tracer, or anything
    jnp.asarray takes) with the fused kernel; differentiable in x, jit- and vmap-able."""
    audio = _centred(spec, x)
    return _ops.front_end(spec.without_centring(), audio, cpu.thread_count(threads))


def recompute(spec: FrontEnd, x) -> jax.Array:
    """compute's values from jnp ops (kapre_fast._composition's pipeline, the one the custom
    VJP differentiates), run forward: jit-able and differentiable, without the FFI call."""
    audio = _centred(spec, x)
    return _composition.front_end(spec.without_centring(), audio)


def _centred(spec: FrontEnd, x):
    """x as compute's float32 audio, with a preset's centring applied as kapre_fast.cpu's np.pad
    (ValueError naming the lengths when the audio is too short); the FFI call gets the rest."""
    if not isinstance(spec, FrontEnd):
        raise TypeError(f'spec must be a kapre_fast.FrontEnd, got {type(spec).__name__}')
    audio = as_audio_array(x, spec)
    return _weights.centred(spec, audio, jnp.pad) if spec.center_padding else audio


# kapre_fast.cpu's signatures; mfcc calls compute_mfcc, pcen melspectrogram then apply_pcen,
# istft builds the spec, then calls inverse().
mfcc, pcen, istft = _api.backend_functions(__name__)


def compute_mfcc(spec: FrontEnd, matrix, x, *, threads=None) -> jax.Array:
    """MFCCs: the fused dB mel spectrogram `spec` times `matrix` (spec.mfcc_matrix, float64
    (n_mels, n_mfcc)) in jnp after the per-example clamp; differentiable in x."""
    mel = compute(spec, x, threads=threads)
    dct = jnp.asarray(matrix, dtype=jnp.float32)
    if spec.output_data_format == 'channels_last':  # (batch, frames, n_mels, channels)
        return jnp.einsum('bfmc,mk->bfkc', mel, dct)
    return mel @ dct


def apply_pcen(mel, constants, time_axis: int, *, threads=None) -> jax.Array:
    """librosa.pcen (kapre_fast.reference.apply_pcen) of a 4-D filterbank output along
    `time_axis` (1: channels_last, 2: channels_first) in jnp, jit-able and differentiable
    (threads: accepted for kapre_fast.cpu's signature; XLA's own threads run it)."""
    if time_axis not in (1, 2):
        raise ValueError(
            f'time_axis must be 1 (channels_last) or 2 (channels_first), got {time_axis!r}'
        )
    cpu.thread_count(threads)
    # The smoother as kapre_fast._pcen's doubling scan (the Keras PCEN layer's under JAX).
    return _pcen.apply(jnp, _as_jax(mel), constants, time_axis)


def inverse(spec: FrontEnd, X, *, threads=None) -> jax.Array:
    """The inverse STFT of X for the forward STFT `spec` (its output layout is X's, its input
    layout the waveform's): what istft computes once it has built `spec` (the Keras layers call
    this)."""
    return _ops.inverse_stft(spec, _complex64_stft(spec, X), cpu.thread_count(threads))


def recompute_inverse(spec: FrontEnd, X) -> jax.Array:
    """inverse's values from jnp ops (kapre_fast._composition's inverse STFT), run forward."""
    return _composition.inverse_stft(spec, _complex64_stft(spec, X))


def _complex64_stft(spec: FrontEnd, X):
    """X as a complex64 jax array; TypeError or ValueError naming what does not fit `spec`."""
    X = _as_jax(X)
    if not jnp.issubdtype(X.dtype, jnp.complexfloating):
        raise TypeError(f'X must be a complex array, got dtype {X.dtype}')
    if X.ndim != 4:
        expected = (
            '(batch, channels, frames, freq)'
            if spec.output_data_format == 'channels_first'
            else '(batch, frames, freq, channels)'
        )
        raise ValueError(
            f'X must have 4 axes {expected} for stft_data_format='
            f'{spec.output_data_format!r}, got shape {tuple(X.shape)}'
        )
    bins = X.shape[2] if spec.output_data_format == 'channels_last' else X.shape[3]
    if bins != spec.n_freq:
        raise ValueError(f'X has {bins} frequency bins but n_fft={spec.n_fft} needs {spec.n_freq}')
    return X.astype(jnp.complex64)


def as_audio_array(x, spec: FrontEnd):
    """x as a float32 jax array of 3 axes, under every backend's dtype policy: real floating
    point of any width (bfloat16 too), or integers unscaled as kapre; TypeError otherwise;
    ValueError naming the axes (and the reshape) unless x has 3."""
    if not isinstance(x, jax.Array):
        x = np.asarray(x)  # checked before jax converts it (strings, objects, float64 -> 32)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        check_audio_dtype(x.dtype)  # integers pass (unscaled); bool, complex: TypeError
    if x.ndim != 3:
        spec.layout_input(x)  # ValueError naming the axes and the reshape
    return jnp.asarray(x, dtype=jnp.float32)


def _as_jax(x):
    # Tracers and jax arrays as they are; the rest through NumPy (lists, NumPy arrays).
    return x if isinstance(x, jax.Array) else jnp.asarray(np.asarray(x))
