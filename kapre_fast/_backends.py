"""The one registry of kapre_fast's backends, and the Backend protocol they share.

Every backend, whatever its arrays, is a module (or, for TensorFlow's XLA fallback, a module's
namespace object) with the same methods, the same argument names in the same order:

    compute(spec, x, **extras)                 features of the waveform batch x for FrontEnd spec
    inverse(spec, X, **extras)                 waveforms of the complex STFT X (spec: the forward)
    compute_mfcc(spec, matrix, x, **extras)    the dB mel spectrogram spec times the DCT matrix
    apply_pcen(mel, constants, time_axis, **extras)   librosa.pcen of a filterbank output along
                                               time_axis (1: channels_last, 2: channels_first)

and, where a backend's fused kernels have a differentiable recomputation in its own array ops
(the pipeline of kapre_fast._composition, which its gradients run), the same two for it:

    recompute(spec, x, **extras), recompute_inverse(spec, X)

The extras are keyword-only and backend-specific (threads, out; window and band_weights for
TensorFlow's trainable front ends). tests/test_backends_protocol.py holds every entry of
REGISTRY to PROTOCOL with inspect.signature.

The public functions of the backends (kapre_fast._api: stft_magnitude, ..., istft, mfcc,
pcen) call their backend through `get`, and the Keras layers (kapre_fast.layers) through
`for_keras`, so a new backend is one module with these methods and one line below, and a new
option is written once per language (the spec, the kernel-call contract, the composition).
Backends are imported on first use, so no backend pulls in another's framework.
"""

from __future__ import annotations

import importlib
import sys

# name -> 'module' or 'module:attribute' (an object of that module with the protocol's methods).
REGISTRY = {
    'reference': 'kapre_fast.reference',  # float64 NumPy, the truth
    'cpu': 'kapre_fast.cpu',  # the fused C++ kernel on NumPy arrays
    'gpu': 'kapre_fast.gpu',  # the fused CUDA kernels on CuPy arrays
    'torch': 'kapre_fast.torch',  # torch operators over the same kernels
    'jax': 'kapre_fast.jax',  # XLA FFI custom calls over the same kernels
    'tensorflow': 'kapre_fast.ops',  # TensorFlow custom ops over the same kernels
    # The TF ops' recomputation in TensorFlow's own ops: what XLA compiles (it cannot compile
    # the custom ops).
    'tensorflow-xla': 'kapre_fast.ops:IN_TF_OPS',
    'builtin': 'kapre_fast.builtin',  # TFLite-builtin TensorFlow ops (export, ONNX)
}

# The protocol: each method's positional parameters, in order (extras are keyword-only).
PROTOCOL = {
    'compute': ('spec', 'x'),
    'inverse': ('spec', 'X'),
    'compute_mfcc': ('spec', 'matrix', 'x'),
    'apply_pcen': ('mel', 'constants', 'time_axis'),
}
# Methods a backend has where its kernels have a differentiable recomputation.
RECOMPUTATION = {
    'recompute': ('spec', 'x'),
    'recompute_inverse': ('spec', 'X'),
}

# Objects put in place of registered backends (tests' recording backends); empty otherwise.
_REPLACED: dict = {}
# name -> (module, attribute or '').
_TARGETS = {name: target.partition(':')[::2] for name, target in REGISTRY.items()}


def get(name: str):
    """The backend registered as `name` (a key of REGISTRY), imported on first use; ValueError
    naming the registered backends for any other name. The module is looked up in sys.modules
    on every call (no cache of its own), so a module re-imported or put in its place (tests'
    fake-CuPy kapre_fast.gpu, the export table's previous builtin) is the one called."""
    backend = _REPLACED.get(name)
    if backend is not None:
        return backend
    target = _TARGETS.get(name)
    if target is None:
        raise ValueError(f'backend must be one of {", ".join(map(repr, REGISTRY))}, got {name!r}')
    module, attribute = target
    backend = sys.modules.get(module) or importlib.import_module(module)
    return getattr(backend, attribute) if attribute else backend


def name_of(module: str) -> str:
    """The registry name of the backend module named `module` (e.g. 'kapre_fast.cpu' -> 'cpu')."""
    for name, target in REGISTRY.items():
        if target == module:
            return name
    raise ValueError(f'{module!r} is no registered backend module ({", ".join(REGISTRY)})')


def keras_name(implementation: str) -> str:
    """The registry name of what computes a Keras layer now: Keras' backend decides ('torch',
    'jax'; RuntimeError naming any other but TensorFlow's); under TensorFlow, `implementation`
    'builtin' gives 'builtin', 'fused' the custom ops ('tensorflow'), or inside an XLA
    compilation, which cannot compile them, their recomputation in TensorFlow's own ops
    ('tensorflow-xla')."""
    import keras

    backend = keras.backend.backend()
    if backend in ('torch', 'jax'):
        return backend
    if backend != 'tensorflow':
        raise RuntimeError(
            "kapre_fast's Keras layers run on Keras' TensorFlow, PyTorch or JAX backend, but "
            f'Keras uses {backend!r}; set KERAS_BACKEND before importing keras'
        )
    if implementation == 'builtin':
        return 'builtin'
    return 'tensorflow-xla' if _in_xla_compilation() else 'tensorflow'


def for_keras(implementation: str):
    """The backend (`get`) that computes a Keras layer now: see keras_name."""
    return get(keras_name(implementation))


def _in_xla_compilation() -> bool:
    """True while a function is traced for XLA (tf.function(jit_compile=True), e.g. Keras'
    train/predict functions under jit_compile=True): TF marks that graph, or one enclosing it,
    with an XLA control-flow context."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
