"""The TensorFlow op library's GPU kernels (csrc/tf/kernels_gpu.cc).

They are built when CMake finds both TensorFlow and nvcc (_build_info.json: "tf_gpu": true); the
module is skipped cleanly otherwise. Everywhere: the DEVICE_GPU kernels are registered only
where the NVIDIA driver runs CUDA 13 (KAPRE_FAST_TF_GPU=1 forces them, =0 turns them off); then
each op has one beside its CPU kernel, with the window and filterbank inputs in host memory; and
the ops pinned to the CPU still compute exactly what the CPU core computes. Where TensorFlow
sees a GPU (marker `gpu`; its process
also needs a driver for the kernels' CUDA 13 runtime): the GPU kernels compute the host emulation
of the same kernels bit for bit, as test_gpu.py checks the CuPy path, and reject bad input with
the CPU kernels' InvalidArgumentError.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')

from kapre_fast import FrontEnd, _loader, cpu, ops  # noqa: E402

if not _loader.build_info().get('tf_gpu', False):
    pytest.skip(
        'kapre_fast was built without its TensorFlow GPU kernels (they need TensorFlow '
        'and nvcc at build time)',
        allow_module_level=True,
    )

from helpers import to_input_layout  # noqa: E402

HOST_MEMORY_INPUTS = {
    'KapreFastFrontEnd': ['band_length', 'band_start', 'band_weights', 'window'],
    'KapreFastStft': ['window'],
    'KapreFastInverseStft': ['window'],
}
SPECS = {
    'mel_db': FrontEnd.melspectrogram(
        n_fft=512, hop_length=128, n_mels=40, sample_rate=16000, return_decibel=True
    ),
    'mag_phase_first': FrontEnd.stft_mag_phase(
        n_fft=400,
        hop_length=160,
        pad_end=True,
        input_data_format='channels_first',
        output_data_format='channels_first',
    ),
    'complex': FrontEnd.stft(n_fft=256, hop_length=64, pad_begin=True),
}
ISTFT_SPEC = FrontEnd.stft(n_fft=256, hop_length=64, pad_begin=True, pad_end=True)


def _audio(spec, time=3001, channels=2):
    x = np.random.default_rng(0).standard_normal((2, channels, time)).astype(np.float32)
    return to_input_layout(x, spec.input_data_format)


def _registered_kernels(choice):
    """{op: {device type: sorted host-memory args}} in a fresh process (kernels register when
    the op library loads) with KAPRE_FAST_TF_GPU=choice (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != 'KAPRE_FAST_TF_GPU'}
    if choice is not None:
        env['KAPRE_FAST_TF_GPU'] = choice
    code = (
        'import json\n'
        'from kapre_fast import ops\n'
        'from tensorflow.python.framework import kernels\n'
        'ops.library()\n'
        'found = {}\n'
        f'for op in {sorted(HOST_MEMORY_INPUTS)!r}:\n'
        '    found[op] = {}\n'
        '    for k in kernels.get_registered_kernels_for_op(op).kernel:\n'
        '        assert k.device_type not in found[op], (op, k.device_type)\n'
        '        found[op][k.device_type] = sorted(k.host_memory_arg)\n'
        'print(json.dumps(found))\n'
    )
    done = subprocess.run(
        [sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_forced_registration_gives_each_op_a_cpu_and_a_gpu_kernel():
    assert _registered_kernels('1') == {
        op: {'CPU': [], 'GPU': host} for op, host in HOST_MEMORY_INPUTS.items()
    }


def test_gpu_kernels_can_be_turned_off():
    assert _registered_kernels('0') == {op: {'CPU': []} for op in HOST_MEMORY_INPUTS}


def test_gpu_kernels_are_registered_only_where_the_driver_runs_cuda_13():
    # Otherwise TensorFlow would place the ops on a GPU whose driver cannot run our kernels.
    from kapre_fast import _cuda

    runs_cuda_13 = _cuda.driver_version() >= 13000
    devices = {op: sorted(found) for op, found in _registered_kernels(None).items()}
    expected = ['CPU', 'GPU'] if runs_cuda_13 else ['CPU']
    assert devices == {op: expected for op in HOST_MEMORY_INPUTS}


@pytest.mark.parametrize('name', sorted(SPECS))
def test_front_end_pinned_to_the_cpu_computes_the_cpu_core(name):
    spec = SPECS[name]
    x = _audio(spec)
    with tf.device('/CPU:0'):
        y = ops.front_end(x, spec)
    assert y.device.endswith('CPU:0')
    np.testing.assert_array_equal(y.numpy(), cpu.compute(spec, x))


def test_inverse_stft_pinned_to_the_cpu_computes_the_cpu_core():
    X = cpu.compute(ISTFT_SPEC, _audio(ISTFT_SPEC))
    with tf.device('/CPU:0'):
        y = ops.inverse_stft(X, ISTFT_SPEC)
    assert y.device.endswith('CPU:0')
    np.testing.assert_array_equal(y.numpy(), cpu.istft(X, **ISTFT_SPEC.istft_arguments()))


# ----- on a GPU that TensorFlow sees ------------------------------------------------------------


def _gpu_limits():
    if not tf.config.list_physical_devices('GPU'):
        pytest.skip('TensorFlow sees no GPU')
    from kapre_fast import _cuda

    return _cuda.device_limits(0)


@pytest.mark.gpu
@pytest.mark.parametrize('name', sorted(SPECS))
def test_gpu_front_end_computes_the_emulation_bit_for_bit(name):
    limits = _gpu_limits()
    from test_gpu_emulation import emulate

    spec = SPECS[name]
    x = _audio(spec)
    with tf.device('/GPU:0'):
        y = ops.front_end(x, spec)
        y_again = ops.front_end(x, spec)  # the node's cached plan and tables
    assert y.device.endswith('GPU:0')
    expected = emulate(
        spec, x, smem_per_block=limits['smem_per_block'], sm_count=limits['sm_count']
    )
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(y_again.numpy(), expected)


@pytest.mark.gpu
def test_gpu_inverse_stft_computes_the_emulation_bit_for_bit():
    limits = _gpu_limits()
    from test_gpu_emulation import emulate_istft

    X = cpu.compute(ISTFT_SPEC, _audio(ISTFT_SPEC))
    with tf.device('/GPU:0'):
        y = ops.inverse_stft(X, ISTFT_SPEC)
    assert y.device.endswith('GPU:0')
    np.testing.assert_array_equal(
        y.numpy(),
        emulate_istft(
            ISTFT_SPEC, X, smem_per_block=limits['smem_per_block'], sm_count=limits['sm_count']
        ),
    )


@pytest.mark.gpu
def test_gpu_kernels_reject_bad_input_as_the_cpu_kernels_do():
    _gpu_limits()
    lib = ops.library()
    window = np.ones(64, np.float32)
    with tf.device('/GPU:0'):
        with pytest.raises(tf.errors.InvalidArgumentError, match='window has 64 samples'):
            lib.kapre_fast_stft(
                np.ones((1, 1000, 1), np.float32), window, n_fft=64, win_length=32, hop_length=16
            )
        with pytest.raises(tf.errors.InvalidArgumentError, match='win_length=64'):
            lib.kapre_fast_stft(
                np.ones((1, 10, 1), np.float32), window, n_fft=64, win_length=64, hop_length=16
            )
        with pytest.raises(tf.errors.InvalidArgumentError, match='frequency bins'):
            lib.kapre_fast_inverse_stft(
                np.ones((1, 4, 10, 1), np.complex64), window, n_fft=64, win_length=64, hop_length=16
            )
