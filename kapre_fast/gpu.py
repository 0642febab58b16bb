"""The fused CUDA front end on CuPy arrays.

Same functions and keyword arguments as `kapre_fast.cpu` and `kapre_fast.reference`. Input: a
waveform batch on the GPU in `input_data_format`: a CuPy array, or any object exposing
`__cuda_array_interface__` (taken without a copy), with any strides of whole, aligned
elements; real dtypes other than float32 are converted on the GPU. Output: a new CuPy array on
the same device, float32 (complex64 for `stft`) in `output_data_format`, computed asynchronously
on CuPy's current stream, like any CuPy operation. `istft` takes a complex GPU array and
returns the float32 waveform.

One fused kernel per call does framing, window, FFT, magnitude, sparse filterbank and dB in
shared memory (global memory for transforms too large for it); dB adds a tiny clamp kernel.
The presets (compat='librosa' / 'torchaudio') run in the same kernels: their power spectrum and
10 or 20 log10 are kernel parameters, their centring a padded copy (cupy.pad) made first.
`mfcc` is two steps: the fused dB mel kernel, then the DCT as a CuPy matrix product (the DCT
needs each example's dB clamp, which needs all its frames). `pcen` is the fused mel kernel, then
a PCEN kernel in place over it (`apply_pcen`: one thread per (example, channel, band) row walking
the frames, the CPU pass's constants and operations).

Importing this module needs CuPy (the `gpu` extra), a kapre_fast build that
compiled its CUDA kernels (nvcc present at build time), an NVIDIA driver for CUDA 13 (R580 or
newer) and a GPU; otherwise the import raises ImportError or RuntimeError saying which is
missing. `import kapre_fast` itself never imports CuPy.
"""

from __future__ import annotations

import functools
import importlib
import threading

import numpy as np

from kapre_fast import _api, _device_tables, _kernel_args, _loader, _weights
from kapre_fast.spec import FrontEnd, check_audio_dtype

__all__ = [*_api.PUBLIC, 'device_info']

try:
    import cupy
except ImportError as _error:
    raise ImportError(
        f'kapre_fast.gpu needs CuPy built for CUDA 13: `{_loader.pip_install_hint("gpu")}` '
        f'(cupy-cuda13x). Importing it failed: {_error}'
    ) from _error


def _load_cuda_module():
    try:
        return importlib.import_module('kapre_fast._cuda')
    except ImportError as error:
        shadowed = _loader.source_checkout_note()
        if shadowed:
            raise ImportError(f"kapre_fast's CUDA kernels are not available: {shadowed}") from error
        built = _loader.build_info().get('cuda', False)
        reason = (
            'it failed to load'
            if built
            else 'kapre_fast was built without them (no CUDA compiler at build time, or '
            'KAPRE_FAST_CUDA=OFF)'
        )
        raise ImportError(
            f"kapre_fast's CUDA kernels (module kapre_fast._cuda) are not available: {reason}. "
            'Rebuild with the CUDA toolkit (nvcc) on PATH, e.g. '
            '`pip install --no-build-isolation . -Ccmake.define.KAPRE_FAST_CUDA=ON` '
            f'({error})'
        ) from error


_cuda = _load_cuda_module()
_cuda.device_count()  # RuntimeError naming what is missing: the driver (R580+) or a GPU


# kapre's keyword arguments, signatures and docstrings: kapre_fast._api; each calls `compute`.
stft_magnitude, melspectrogram, log_frequency_spectrogram, stft_mag_phase, stft = (
    _api.front_end_functions(__name__)
)
# mfcc: the fused mel dB kernel, then apply_dct on the device (compute_mfcc); pcen: the fused
# mel kernel, then apply_pcen's kernel; istft: inverse.
mfcc, pcen, istft = _api.backend_functions(__name__)
# The Backend protocol's MFCC: compute's dB mel spectrogram, then apply_dct on the device.
compute_mfcc = _api.dct_mfcc_function(__name__)


def compute(spec: FrontEnd, x):
    """Runs the front end `spec` on the GPU waveform batch `x` with the fused CUDA kernels; the
    result is a new CuPy array on x's device, computed on CuPy's current stream."""
    if not isinstance(spec, FrontEnd):
        raise TypeError(f'spec must be a kapre_fast.FrontEnd, got {type(spec).__name__}')
    audio = as_device_audio(x)
    device = audio.device.id
    if audio.ndim != 3:
        spec.layout_input(audio)  # raises the ValueError that names the expected axes
    if spec.center_padding:
        audio = _weights.centred(spec, audio, cupy.pad)  # a padded copy (the kernel has no reflect)
    # (batch, channels, time) axes of the input layout; strides in elements, any sign.
    axes = (0, 1, 2) if spec.input_data_format == 'channels_first' else (0, 2, 1)
    batch, channels, time = (audio.shape[a] for a in axes)
    sb, sc, st = (audio.strides[a] // 4 for a in axes)

    stream = cupy.cuda.get_current_stream()
    with _TABLES.use((spec, device, False), stream, _capturing(stream)) as tables:
        plan = tables.plan
        output_channels_first = spec.output_data_format == 'channels_first'
        shape, dtype = plan.output_shape(batch, channels, time, output_channels_first)
        out = cupy.empty(shape, dtype=dtype)
        _launch(
            _cuda.frontend,
            plan.geometry,
            tables,
            audio,
            (batch, channels, time),
            (sb, sc, st),
            out,
            output_channels_first,
            device,
            stream,
        )
    return out


def inverse(spec: FrontEnd, X):
    """Inverse STFT of the complex GPU array `X` for the forward STFT `spec` (istft builds it
    from kapre's InverseSTFT arguments), as kapre's `InverseSTFT` layer (see
    `kapre_fast.reference.inverse`): irfft, synthesis window, overlap-add. complex128 input is
    converted to complex64; the result is float32 in spec.input_data_format."""
    stft_array = _device_array(X, 'X')
    if stft_array.dtype.kind != 'c':
        raise TypeError(f'X must be a complex array, got dtype {stft_array.dtype}')
    if stft_array.dtype != np.complex64:
        stft_array = stft_array.astype(cupy.complex64)
    channels_first = spec.output_data_format == 'channels_first'
    if stft_array.ndim != 4:
        expected = (
            '(batch, channels, frames, freq)'
            if channels_first
            else '(batch, frames, freq, channels)'
        )
        raise ValueError(
            f'X must have 4 axes {expected} for stft_data_format='
            f'{spec.output_data_format!r}, got shape {stft_array.shape}'
        )
    axes = (0, 1, 2, 3) if channels_first else (0, 3, 1, 2)  # batch, channels, frames, bins
    batch, channels, frames, bins = (stft_array.shape[a] for a in axes)
    sb, sc, sf, sk = (stft_array.strides[a] // 4 for a in axes)  # in floats

    device = stft_array.device.id
    stream = cupy.cuda.get_current_stream()
    with _TABLES.use((spec, device, True), stream, _capturing(stream)) as tables:
        plan = tables.plan
        output_channels_first = spec.input_data_format == 'channels_first'
        shape = plan.istft_shape(batch, channels, frames, bins, output_channels_first)
        out = cupy.empty(shape, dtype=cupy.float32)
        _launch(
            _cuda.istft,
            plan.istft_geometry,
            tables,
            stft_array,
            (batch, channels, frames, bins),
            (sb, sc, sf, sk),
            out,
            output_channels_first,
            device,
            stream,
        )
    return out


def _launch(
    kernel, geometry_of, tables, source, sizes, strides, out, channels_first, device, stream
):
    """One fused kernel call (_cuda.frontend or _cuda.istft) from `source` into `out`: the
    plan's geometry for this device's shared memory and SM count (`geometry_of`: plan.geometry
    or plan.istft_geometry) sizes its workspace; `sizes` and `strides` (in floats) are the
    source's, in the kernel's order."""
    limits = device_info(device)
    smem, sm_count = limits['smem_per_block'], limits['sm_count']
    geometry = geometry_of(*sizes, channels_first, smem, sm_count)
    workspace = cupy.empty(geometry['workspace_bytes'], dtype=cupy.uint8)
    kernel(
        tables.plan,
        tables.floats.data.ptr,
        tables.ints.data.ptr,
        source.data.ptr,
        *sizes,
        *strides,
        out.data.ptr,
        channels_first,
        workspace.data.ptr,
        workspace.nbytes,
        smem,
        sm_count,
        device,
        stream.ptr,
    )


def apply_dct(mel, matrix, channels_last):
    """mel (the clamped dB filterbank output, a CuPy array) times the (n_mels, n_mfcc) float64
    `matrix` (spec.mfcc_matrix), in float32 on the device: the second step of `mfcc`, a CuPy
    matrix product after the fused kernel (the DCT needs the per-example clamp, which needs
    every frame of the example first). The float32 matrix is uploaded once per (matrix, device)
    and kept on the device (as the plans' tables), so a call copies nothing from the host."""
    dct = _dct_on_device(matrix, mel.device.id, cupy.cuda.get_current_stream())
    if channels_last:  # (batch, frames, n_mels, channels)
        return cupy.ascontiguousarray(cupy.einsum('bfmc,mk->bfkc', mel, dct))
    return cupy.matmul(mel, dct)  # (batch, channels, frames, n_mels)


def apply_pcen(mel, constants, time_axis):
    """librosa.pcen (see kapre_fast.reference.apply_pcen) of a 4-D float32 CuPy filterbank output
    along `time_axis` (1: channels_last, 2: channels_first), computed in place by the CUDA PCEN
    kernel on CuPy's current stream (one thread per (example, channel, band) row walking the
    frames; the CPU pass's constants and operations, equal to it within float32 rounding).
    `constants`: spec.pcen_constants(...). Returns `mel`."""
    if time_axis not in (1, 2):
        raise ValueError(
            f'time_axis must be 1 (channels_last) or 2 (channels_first), got {time_axis!r}'
        )
    array = _device_array(mel, 'mel')
    if array.dtype != np.float32 or array.ndim != 4:
        raise ValueError(f'mel must be a 4-D float32 array, got {array.ndim} axes of {array.dtype}')
    axes = (0, 1, 2, 3) if time_axis == 2 else (0, 3, 1, 2)  # batch, channels, frames, bands
    batch, channels, frames, features = (array.shape[a] for a in axes)
    sb, sc, sf, sk = (array.strides[a] // 4 for a in axes)
    device = array.device.id
    b, gain, bias, power, eps = constants
    _cuda.pcen(
        array.data.ptr,
        batch,
        channels,
        frames,
        features,
        sb,
        sc,
        sf,
        sk,
        b,
        gain,
        bias,
        power,
        eps,
        device_info(device)['sm_count'],
        device,
        cupy.cuda.get_current_stream().ptr,
    )
    return array


def as_device_audio(x):
    """x as a float32 CuPy array on the current device (no copy when it already is one).

    TypeError for host arrays and non-real dtypes; ValueError for an array on another GPU or
    with misaligned elements."""
    audio = _device_array(x, 'audio')
    check_audio_dtype(audio.dtype)  # every backend's policy: TypeError naming the dtype
    if audio.dtype != np.float32:
        audio = audio.astype(cupy.float32)
    return audio


def _require_aligned(array, name):
    """ValueError unless every element of `array` sits at a multiple of its size. On a GPU a
    misaligned load (e.g. a float32 view of bytes at an odd offset) is a sticky CUDA error that
    breaks the CUDA context of the whole process, in CuPy's own copy kernels as in ours, so such
    a view cannot even be copied safely here: the caller must make an aligned one."""
    size = min(array.dtype.itemsize, 16)
    if array.data.ptr % size or any(s % size for s in array.strides):
        raise ValueError(
            f'{name} must be aligned to its element size ({size} bytes for {array.dtype}): got '
            f'address {array.data.ptr:#x} with strides {array.strides}; copy its bytes into a '
            f'fresh array (e.g. fresh.view(cupy.uint8)[...] = raw_bytes) first'
        )


def _device_array(x, name):
    """x as a CuPy array on the current device (a view for __cuda_array_interface__ objects)."""
    if isinstance(x, cupy.ndarray):
        array = x
    elif hasattr(x, '__cuda_array_interface__'):
        array = cupy.asarray(x)  # a view of the same device memory
    else:
        raise TypeError(
            f'{name} must be a CuPy array (or expose __cuda_array_interface__), got '
            f'{type(x).__module__}.{type(x).__name__}; copy host arrays to the GPU with '
            'cupy.asarray(...), or use kapre_fast.cpu for NumPy arrays'
        )
    _require_aligned(array, name)
    current = cupy.cuda.Device().id
    if array.device.id != current:
        raise ValueError(
            f'{name} is on GPU {array.device.id} but the current device is GPU {current}; '
            f'call inside `with cupy.cuda.Device({array.device.id}):`'
        )
    return array


@functools.lru_cache(maxsize=None)
def device_info(device: int) -> dict:
    """{'smem_per_block', 'sm_count', 'compute_capability'} of a GPU, as the kernels see it.

    RuntimeError when the kernels were not compiled for that GPU's architecture."""
    return _cuda.device_limits(device)


def _capturing(stream):
    """Whether `stream` is capturing a CUDA graph (CuPy's Stream.begin_capture)."""
    return bool(getattr(stream, 'is_capturing', lambda: False)())


_UPLOAD_STREAMS: dict = {}
_UPLOAD_LOCK = threading.Lock()


def _to_device(host_arrays, device, stream):
    """(the host arrays copied to `device` on its private upload stream, the copies' event):
    never on the caller's stream, so the host waits for none of the caller's work; `stream` is
    ordered after the copies by the event, which later calls on other streams wait on too until
    it is done. The copies are allocated from the upload stream's pool."""
    with _UPLOAD_LOCK:
        upload = _UPLOAD_STREAMS.get(device)
        if upload is None:
            with cupy.cuda.Device(device):
                upload = _UPLOAD_STREAMS[device] = cupy.cuda.Stream(non_blocking=True)
    with cupy.cuda.Device(device), upload:
        arrays = [cupy.asarray(a) for a in host_arrays]
        done = _new_event()
        done.record(upload)
    stream.wait_event(done)
    return arrays, done


# The MFCC DCT matrices on the devices by (matrix bytes, shape, device); a few KB each, kept for
# the life of the process, so that graphs capturing them never read freed memory.
_DCT: dict = {}


def _dct_on_device(matrix, device, stream):
    host = np.ascontiguousarray(matrix, np.float32)
    key = (host.tobytes(), host.shape, device)
    capturing = _capturing(stream)
    entry = _DCT.get(key)
    if entry is None:
        if capturing:
            raise _device_tables.CaptureMiss(
                'the first mfcc call with this DCT on this GPU is inside a CUDA graph capture, '
                'where the matrix cannot be uploaded: call it once before capturing'
            )
        (dct,), done = _to_device([host], device, stream)
        entry = _DCT.setdefault(key, _device_tables.Entry(None, dct, None, done))
    _device_tables.wait_for_upload(entry, stream, capturing)
    return entry.floats


def _upload_plan(key, stream):
    """The checked plan of `spec` (of its inverse STFT with `inverse`) and its tables on
    `device`, copied on the device's upload stream with `stream` ordered after the copy:
    key = (spec, device, inverse)."""
    spec, device, inverse = key
    if inverse:
        no_bands = np.zeros(0, np.int32)
        window, (start, length, weights) = (
            _weights.inverse_window(spec),
            (no_bands, no_bands, np.zeros(0, np.float32)),
        )
        args = _kernel_args.inverse_of(spec).without_layouts()
        plan = _cuda.Plan(window, start, length, weights, **args)
    else:
        # The CPU core's arguments: a preset's frame length, power and dB definition included.
        start, length, weights = _weights.bands(spec)
        plan = _cuda.Plan(
            _weights.window(spec),
            start,
            length,
            weights,
            **_kernel_args.of(spec).without_layouts(),
        )
    (floats, ints), done = _to_device([plan.floats, plan.ints], device, stream)
    return plan, floats, ints, done


def _new_event():
    return cupy.cuda.Event(block=False, disable_timing=True)


# Uploaded tables by (spec, device, inverse), held until no queued kernel reads them; 64 per
# device besides those a CUDA graph captured.
_TABLES = _device_tables.DeviceTables(
    _upload_plan, _new_event, capacity=64, group=lambda key: key[1]
)
