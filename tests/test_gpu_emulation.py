"""The CUDA kernels' algorithm, run on the host: kapre_fast._gpu_emulation executes the very phase
code of csrc/cuda/phases.h with the kernels' launch geometry and shared-memory layout, block by
block and thread by thread. No GPU needed; tests/test_gpu.py holds the real kernels to these
results bit for bit on a GPU machine.

Checked here against the float64 reference (and the CPU core's own error): every pipeline, n_fft
from 2 to 8192 and beyond (powers of two, mixed radix, odd, primes, Bluestein sizes, the
global-memory path), both layouts, 1-2 channels, silence; and that the result does not depend on
thread order, block order, grid size or shared-memory path (a phase that races, or a missing
barrier, would make it depend on them).
"""

import importlib
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from grid import CASES, make_batch
from helpers import (
    FAMILIES,
    MEL_DB,
    decibel_error,
    decibel_to_magnitude,
    kernel_arguments,
    noise_batch,
    peak_relative_error,
    phase_error,
    record_agreement,
    split_channels,
    stft_of,
    to_input_layout,
)
from kapre_fast import FrontEnd, _kernel_args, _loader, _weights, cpu, reference

emulation = pytest.importorskip(
    'kapre_fast._gpu_emulation', reason='kapre_fast was built without its GPU emulation module'
)

# Subprocesses run from here and import kapre_fast as this process does (installed, or through
# PYTHONPATH in a development tree), never from the source folder.
TESTS = Path(__file__).resolve().parent
# Shared memory per block of the emulated device (sm_86/89: 99 KiB); with it n_fft 8192 runs in
# shared memory and larger or Bluestein-heavy sizes take the global-memory path.
SMEM = 101376
MAGNITUDE_TOLERANCE = 1e-6  # of the example's peak: a few float32 roundings of log2(n) passes
DECIBEL_TOLERANCE = 0.01  # dB, 99.9th percentile
PHASE_TOLERANCE = 3e-4  # rad, where |X| > 1e-3 of the peak
# dB read back as magnitudes: the float32 rounding of the dB value itself (ulp(50 dB) = 3.8e-6 dB)
# is already 0.9e-6 of the magnitude, on top of the FFT's.
DECIBEL_AS_MAGNITUDE_TOLERANCE = 2e-6


def gpu_plan(module, spec):
    """The Plan of `module` (_gpu_emulation or _cuda) for a FrontEnd: the same window, bands and
    output codes as kapre_fast.cpu feeds the CPU core."""
    start, length, weights = _weights.bands(spec)
    return module.Plan(
        _weights.window(spec),
        start,
        length,
        weights,
        **_kernel_args.of(spec).without_layouts(),
    )


def emulate(spec, x, **options):
    """What the GPU computes for `spec` on the NumPy batch `x` (in spec's input layout; a
    preset's centring padded here, as kapre_fast.gpu pads before the kernel)."""
    options.setdefault('smem_per_block', SMEM)
    x = np.asarray(x, np.float32)
    if spec.center_padding:
        x = _weights.centred(spec, x, np.pad)
    return emulation.frontend(
        gpu_plan(emulation, spec),
        x,
        input_channels_first=spec.input_data_format == 'channels_first',
        output_channels_first=spec.output_data_format == 'channels_first',
        **options,
    )


def inverse_plan(module, spec):
    """The Plan of an inverse STFT for the forward `spec`: its synthesis window, complex output,
    no filterbank, no dB (as kapre_fast.gpu.istft builds it)."""
    no_bands = np.zeros(0, np.int32)
    args = _kernel_args.inverse_of(spec)
    return module.Plan(
        _weights.inverse_window(spec),
        no_bands,
        no_bands,
        np.zeros(0, np.float32),
        **args.without_layouts(),
    )


def emulate_istft(spec, X, **options):
    """What the GPU's inverse STFT computes for the complex batch X (spec's output layout)."""
    options.setdefault('smem_per_block', SMEM)
    return emulation.istft(
        inverse_plan(emulation, spec),
        np.asarray(X, np.complex64),
        input_channels_first=spec.output_data_format == 'channels_first',
        output_channels_first=spec.input_data_format == 'channels_first',
        **options,
    )


# ----- the size grid: every pipeline over n_fft from 16 to 8192 and a large/slow size ----------

# (n_fft, win_length, hop): powers of two, mixed radix, odd, primes (17 and 31 direct, 257
# Bluestein), 2 x prime (74 = 2 * 37: Bluestein of the half length), 511 = 7 * 73, 8198 = 2 * 4099
# (Bluestein in global memory at 99 KiB).
SIZES = [
    (16, None, 4),
    (17, 16, 5),
    (31, None, 7),
    (64, 48, 16),
    (74, None, 19),
    (100, 80, 40),
    (255, None, 64),
    (256, 200, 64),
    (257, None, 100),
    (400, 256, 160),
    (511, 300, 128),
    (512, None, 128),
    (1000, None, 250),
    (1024, 1500, 256),
    (2048, None, 512),
    (4096, 3000, 1024),
    (8192, None, 2048),
    (8198, 8000, 4096),
]


def size_case(index, family, sizes):
    """Deterministic variety: layouts, channels, dB, padding and the signal rotate with index."""
    n_fft, win_length, hop = sizes
    kwargs = dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop,
        pad_begin=index % 3 == 1,
        pad_end=index % 2 == 1,
        input_data_format=('channels_last', 'channels_first')[index % 2],
        output_data_format=('channels_first', 'channels_last')[(index // 2) % 2],
    )
    if family != 'stft':
        kwargs['return_decibel'] = index % 4 != 3
    if family == 'melspectrogram':
        kwargs.update(sample_rate=16000, n_mels=min(64, n_fft // 4))
    if family == 'log_frequency_spectrogram':
        kwargs.update(sample_rate=16000, log_n_bins=60)
    if kwargs['pad_begin']:
        kwargs['hop_length'] = min(hop, n_fft)
    n_channels = 1 + index % 2
    window = win_length or n_fft
    n_samples = window + 3 * hop + index % 5  # 4 frames or so: the emulation runs on one core
    return family, kwargs, n_channels, n_samples


SIZE_CASES = [
    size_case(i, family, sizes)
    for i, (family, sizes) in enumerate(
        (family, sizes)
        for sizes in SIZES
        for family in FAMILIES
        if not (family == 'melspectrogram' and sizes[0] < 64)
        and not (family == 'log_frequency_spectrogram' and sizes[0] < 512)
    )
]


def case_id(case):
    family, kwargs, n_channels, _ = case
    db = '-db' if kwargs.get('return_decibel') else ''
    return f'{family}{db}-{kwargs["n_fft"]}-{n_channels}ch'


def signal(n_samples, n_channels, seed):
    """Noise plus a tone with digital silence in each example (helpers.noise_batch)."""
    return noise_batch(n_examples=2, n_samples=n_samples, n_channels=n_channels, seed=seed)


def check_against_reference(name, spec, x, ours):
    """ours vs the float64 reference, with the measures of test_backends (and the same floors)."""
    truth = reference.compute(spec, x)
    assert ours.shape == truth.shape
    assert ours.dtype == (np.complex64 if spec.output == 'complex' else np.float32)
    assert not np.isnan(ours).any()
    if spec.output == 'complex':
        error = record_agreement(f'{name} complex', peak_relative_error(ours, truth))
        assert error < MAGNITUDE_TOLERANCE, error
        return
    if spec.output == 'mag_phase':
        (ours, ours_phase), (truth, truth_phase) = (
            split_channels(y, 2, spec.output_data_format) for y in (ours, truth)
        )
        magnitude = np.abs(reference.compute(stft_of(spec), x))
        error = record_agreement(f'{name} phase', phase_error(ours_phase, truth_phase, magnitude))
        assert error < PHASE_TOLERANCE, error
    if spec.return_decibel:
        error = record_agreement(f'{name} dB p99.9', decibel_error(ours, truth))
        assert error < DECIBEL_TOLERANCE, error
        error = record_agreement(
            f'{name} dB as |.|',
            peak_relative_error(decibel_to_magnitude(ours), decibel_to_magnitude(truth)),
        )
        assert error < DECIBEL_AS_MAGNITUDE_TOLERANCE, error
    else:
        error = record_agreement(f'{name} |.|', peak_relative_error(ours, truth))
        assert error < MAGNITUDE_TOLERANCE, error


@pytest.mark.parametrize('case', SIZE_CASES, ids=case_id)
def test_every_pipeline_and_size_matches_the_reference(case):
    family, kwargs, n_channels, n_samples = case
    spec = getattr(FrontEnd, family)(**kwargs)
    x = to_input_layout(signal(n_samples, n_channels, seed=kwargs['n_fft']), spec.input_data_format)
    check_against_reference(f'emulation {family}', spec, x, emulate(spec, x))


def test_size_grid_covers_both_paths_and_bluestein():
    paths = set()
    for family, kwargs, n_channels, n_samples in SIZE_CASES:
        spec = getattr(FrontEnd, family)(**kwargs)
        plan = gpu_plan(emulation, spec)
        geometry = plan.geometry(2, n_channels, n_samples, True, SMEM, 4)
        paths.add((geometry['global_buffers'], plan.bluestein))
    assert paths == {(False, False), (False, True), (True, True)}


@pytest.mark.parametrize(
    'n_fft, global_buffers',
    [(16384, True), (65536, True), (65521, True), (12000, True), (8192, False)],
)
def test_large_sizes_take_the_global_memory_path(n_fft, global_buffers):
    spec = FrontEnd.stft_magnitude(n_fft=n_fft, hop_length=n_fft // 2 + 1, return_decibel=True)
    x = signal(n_fft + n_fft // 2 + 7, 1, seed=n_fft).transpose(0, 2, 1)
    plan = gpu_plan(emulation, spec)
    assert plan.geometry(2, 1, x.shape[1], False, SMEM, 4)['global_buffers'] == global_buffers
    check_against_reference('emulation large', spec, x, emulate(spec, x))


def test_every_n_fft_from_2_to_4096():
    """One or two frames per size through every factorisation: radix 16/8/4/2, odd radices up to
    31, and Bluestein (as the half length for even sizes)."""
    rng = np.random.default_rng(3)
    worst = 0.0
    for n_fft in range(2, 4097):
        spec = FrontEnd.stft(
            n_fft=n_fft,
            hop_length=max(1, n_fft // 2 + 1),
            input_data_format='channels_first',
            output_data_format='channels_first',
        )
        x = rng.standard_normal((1, 1, n_fft + n_fft // 2 + 1)).astype(np.float32)
        ours = emulate(spec, x)
        truth = reference.compute(spec, x)
        error = peak_relative_error(ours, truth)
        assert error < MAGNITUDE_TOLERANCE, (n_fft, error)
        worst = max(worst, error)
    record_agreement('emulation every n_fft 2..4096 complex', worst)


# ----- the same grid as the CPU core: no further from float64 than the CPU core is, within 2x --


def check_like_the_cpu_core(name, spec, x, ours):
    """ours no further from the float64 reference than the CPU core is, within 2x plus a floor
    of a few float32 roundings (magnitudes peak-relative; dB as magnitudes, and in dB over the top
    50 dB as test_backends measures kapre)."""
    truth = reference.compute(spec, x)
    theirs = cpu.compute(spec, x, threads=1)
    assert ours.shape == theirs.shape == truth.shape and ours.dtype == theirs.dtype

    def magnitudes(y):
        if spec.output == 'mag_phase':
            y = split_channels(y, 2, spec.output_data_format)[0]
        return decibel_to_magnitude(y) if spec.return_decibel else y

    ours_error = peak_relative_error(magnitudes(ours), magnitudes(truth))
    cpu_error = peak_relative_error(magnitudes(theirs), magnitudes(truth))
    record_agreement(f'{name} {spec.output} / (2 cpu + 3e-7)', ours_error / (2 * cpu_error + 3e-7))
    assert ours_error <= 2 * cpu_error + 3e-7, (ours_error, cpu_error)
    if spec.return_decibel:
        if spec.output == 'mag_phase':
            ours, theirs, truth = (
                split_channels(a, 2, spec.output_data_format)[0] for a in (ours, theirs, truth)
            )
        ours_db = decibel_error(ours, truth, within=50.0)
        cpu_db = decibel_error(theirs, truth, within=50.0)
        record_agreement(f'{name} dB top 50', ours_db)
        assert ours_db <= 2 * cpu_db + DECIBEL_TOLERANCE, (ours_db, cpu_db)


@pytest.mark.parametrize('case', CASES, ids=str)
def test_emulation_is_as_close_to_float64_as_the_cpu_core(case, speech_batch, noise_batch):
    x, spec = make_batch(case, speech_batch, noise_batch)
    check_like_the_cpu_core(f'emulation {case.family}', spec, x, emulate(spec, x))


# ----- the result does not depend on scheduling --------------------------------------------

SCHEDULE_SPECS = {
    'mel-db': (
        FrontEnd.melspectrogram,
        MEL_DB,
    ),
    'magphase-db-odd': (
        FrontEnd.stft_mag_phase,
        dict(n_fft=255, hop_length=60, pad_end=True, return_decibel=True),
    ),
    'stft-bluestein': (FrontEnd.stft, dict(n_fft=514, hop_length=100, pad_begin=True)),
    'log-db': (
        FrontEnd.log_frequency_spectrogram,
        dict(n_fft=1024, hop_length=256, sample_rate=16000, return_decibel=True),
    ),
}
SCHEDULES = {
    'reverse threads and blocks': dict(thread_order='reverse', reverse_blocks=True),
    'shuffled threads': dict(thread_order='shuffled', seed=7),
    'one block looping': dict(max_grid=1),
    'three blocks looping': dict(max_grid=3, thread_order='shuffled', seed=1),
    'global-memory buffers': dict(smem_per_block=4096, max_grid=2),
    'one multiprocessor': dict(sm_count=1, smem_per_block=4096),
}


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
@pytest.mark.parametrize('name', sorted(SCHEDULE_SPECS))
def test_result_is_bitwise_independent_of_scheduling(name, schedule):
    make, kwargs = SCHEDULE_SPECS[name]
    spec = make(input_data_format='channels_last', output_data_format='channels_last', **kwargs)
    x = to_input_layout(signal(5000, 2, seed=11), 'channels_last')
    expected = emulate(spec, x)
    assert not np.isnan(expected).any()  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(emulate(spec, x, **SCHEDULES[schedule]), expected)


def test_global_path_is_really_taken_with_small_shared_memory():
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=160, sample_rate=16000, n_mels=64)
    geometry = gpu_plan(emulation, spec).geometry(2, 2, 5000, False, 4096, 4, 2)
    assert geometry['global_buffers'] and geometry['grid'] == 2
    assert geometry['workspace_bytes'] >= 2 * 2 * 512 // 2 * 8


# ----- inverse STFT ----------------------------------------------------------------------------

ISTFT_SIZES = [
    (16, None, 4),
    (17, None, 4),
    (74, None, 37),
    (257, 200, 50),
    (400, 256, 64),
    (511, None, 100),
    (512, None, 128),
    (1024, 1500, 256),
    (2048, None, 512),
    (8198, None, 2049),
    (300, 100, 150),
]  # the last: hop beyond the window (gaps)


def istft_case(index, sizes):
    n_fft, win_length, hop = sizes
    return dict(
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop,
        window_name=(None, 'hamming_window', 'vorbis_window')[index % 3],
        input_data_format=('channels_last', 'channels_first')[index % 2],
        output_data_format=('channels_first', 'channels_last')[(index // 2) % 2],
    )


ISTFT_CASES = [istft_case(i, sizes) for i, sizes in enumerate(ISTFT_SIZES)]


def istft_kwargs(spec):
    """reference.istft's keyword arguments for the forward spec (test_keras_backends checks
    FrontEnd.istft_arguments against inverted_by_istft)."""
    return spec.istft_arguments()


def istft_input(kwargs, n_channels=2):
    spec = FrontEnd.stft(pad_begin=True, pad_end=True, **kwargs)
    x = to_input_layout(
        signal(4 * spec.n_fft + 1001, n_channels, seed=spec.n_fft), spec.input_data_format
    )
    return spec, x, cpu.compute(spec, x)


@pytest.mark.parametrize('kwargs', ISTFT_CASES, ids=lambda k: f'{k["n_fft"]}-{k["hop_length"]}')
def test_istft_matches_the_reference(kwargs):
    spec, x, X = istft_input(kwargs, n_channels=1 + kwargs['n_fft'] % 2)
    ours = emulate_istft(spec, X)
    truth = reference.istft(X, **istft_kwargs(spec))
    theirs = cpu.istft(X, threads=1, **istft_kwargs(spec))
    assert ours.shape == truth.shape and ours.dtype == np.float32
    error = record_agreement('emulation istft', peak_relative_error(ours, truth))
    assert error <= max(MAGNITUDE_TOLERANCE, 2 * peak_relative_error(theirs, truth))


def test_istft_inverts_the_stft():
    kwargs = dict(
        n_fft=512,
        hop_length=128,
        input_data_format='channels_last',
        output_data_format='channels_last',
    )
    spec, x, X = istft_input(kwargs)
    y = emulate_istft(spec, X)
    trim = 512 - 128
    np.testing.assert_allclose(y[:, trim : trim + x.shape[1]], x, atol=2e-6)


@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_istft_is_bitwise_independent_of_scheduling(schedule):
    spec, x, X = istft_input(dict(n_fft=514, hop_length=128, window_name='hamming_window'))
    expected = emulate_istft(spec, X)
    assert not np.isnan(expected).any()
    np.testing.assert_array_equal(emulate_istft(spec, X, **SCHEDULES[schedule]), expected)


def test_istft_takes_strided_spectra_and_checks_shapes():
    spec, x, X = istft_input(dict(n_fft=256, hop_length=64, output_data_format='channels_last'))
    expected = emulate_istft(spec, X)
    wider = np.zeros(X.shape[:-1] + (3,), np.complex64)
    wider[..., 1:] = X
    np.testing.assert_array_equal(emulate_istft(spec, wider[..., 1:]), expected)
    plan = inverse_plan(emulation, spec)
    with pytest.raises(ValueError, match='frequency bins'):
        emulation.istft(plan, X[:, :, :20], input_channels_first=False, output_channels_first=False)
    with pytest.raises(ValueError, match='at least one frame'):
        emulation.istft(plan, X[:, :0], input_channels_first=False, output_channels_first=False)
    with pytest.raises(TypeError, match='complex64'):
        emulation.istft(
            plan, X.real.copy(), input_channels_first=False, output_channels_first=False
        )
    forward = gpu_plan(emulation, FrontEnd.stft_magnitude(n_fft=256, hop_length=64))
    with pytest.raises(ValueError, match='inverse STFT plan'):
        emulation.istft(forward, X, input_channels_first=False, output_channels_first=False)


# ----- memory layouts of the input -----------------------------------------------------------


def test_strided_and_misaligned_audio_give_the_same_bits():
    spec = FrontEnd.melspectrogram(**MEL_DB, input_data_format='channels_last')
    x = to_input_layout(signal(6001, 2, seed=5), 'channels_last')
    expected = emulate(spec, np.ascontiguousarray(x[:, 1:]))
    np.testing.assert_array_equal(emulate(spec, x[:, 1:]), expected)  # offset by one sample
    reversed_view = x[:, ::-1, ::-1]  # negative strides
    np.testing.assert_array_equal(
        emulate(spec, reversed_view), emulate(spec, np.ascontiguousarray(reversed_view))
    )
    mono = spec.__class__.melspectrogram(**MEL_DB, input_data_format='channels_first')
    channel = np.ascontiguousarray(x[:, :, :1].transpose(0, 2, 1))
    # Vector loads (aligned, unit stride) against the scalar path (misaligned by one float).
    padded = np.zeros((2, 1, 6002), np.float32)
    padded[:, :, 1:] = channel
    np.testing.assert_array_equal(emulate(mono, padded[:, :, 1:]), emulate(mono, channel))


# ----- silence and special values ------------------------------------------------------------


@pytest.mark.parametrize('family', ['stft_magnitude', 'melspectrogram', 'stft_mag_phase'])
def test_digital_silence_gives_the_decibel_floor(family):
    kwargs = dict(n_fft=512, hop_length=128, return_decibel=True)
    if family == 'melspectrogram':
        kwargs.update(sample_rate=16000, n_mels=40)
    spec = getattr(FrontEnd, family)(**kwargs)
    x = np.zeros((2, 4000, 1), np.float32)
    ours = emulate(spec, x)
    np.testing.assert_allclose(ours, reference.compute(spec, x), atol=1e-4)
    magnitude = split_channels(ours, 2, 'channels_last')[0] if family == 'stft_mag_phase' else ours
    assert np.all(magnitude == magnitude.flat[0])
    np.testing.assert_array_equal(ours, cpu.compute(spec, x))


def test_silent_example_next_to_a_loud_one_is_clamped_on_its_own():
    spec = FrontEnd.stft_magnitude(
        n_fft=256, hop_length=64, return_decibel=True, db_dynamic_range=30.0
    )
    x = signal(3000, 1, seed=2).transpose(0, 2, 1).copy()
    x[1] = 0.0
    ours = emulate(spec, x)
    truth = reference.compute(spec, x)
    assert np.all(ours[1] == ours[1].flat[0]) and abs(ours[1].flat[0] + 50.0) < 1e-5
    assert ours[0].min() == pytest.approx(ours[0].max() - 30.0)
    assert decibel_error(ours, truth) < DECIBEL_TOLERANCE


def test_nan_in_one_example_makes_that_example_nan_as_the_reference_does():
    spec = FrontEnd.stft_magnitude(n_fft=256, hop_length=64, return_decibel=True)
    x = signal(3000, 1, seed=2).transpose(0, 2, 1).copy()
    x[0, 1000, 0] = np.nan
    ours, truth = emulate(spec, x), reference.compute(spec, x)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(truth))
    assert np.isnan(ours[0]).all() and not np.isnan(ours[1]).any()
    assert decibel_error(ours[1:], truth[1:]) < DECIBEL_TOLERANCE


# ----- the emulation's own arguments and the shared checks -----------------------------------


def test_plan_reuses_the_core_checks():
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    start, length, weights = _weights.bands(spec)
    good = kernel_arguments(512, 512, 128)
    window = _weights.window(spec)
    for changes, message in [
        (dict(n_fft=1), 'n_fft'),
        (dict(hop_length=0), 'hop_length'),
        (dict(win_length=100), 'window has 512 samples'),
        (dict(amin=0.0), 'db_amin'),
        (dict(output=5), 'output'),
        (dict(n_fft=256), 'filterbank band'),
    ]:
        with pytest.raises(ValueError, match=message):
            emulation.Plan(window, start, length, weights, **{**good, **changes})
    # The kernel-call contract's keywords: all of them, by name and type, nothing else (the
    # layouts are the launch's).
    for changes, message in [
        (dict(nfft=512), 'unexpected keyword argument nfft'),
        (dict(input_channels_first=False), 'unexpected keyword argument input_channels_first'),
        (dict(decibel='yes'), 'decibel must be a bool, got str'),
        (dict(n_fft='512'), 'n_fft must be a number, got str'),
    ]:
        with pytest.raises(TypeError, match=message):
            emulation.Plan(window, start, length, weights, **{**good, **changes})
    with pytest.raises(TypeError, match='missing keyword argument power'):
        emulation.Plan(
            window, start, length, weights, **{k: v for k, v in good.items() if k != 'power'}
        )
    with pytest.raises(TypeError, match='window'):
        emulation.Plan(window.astype(np.float64), start, length, weights, **good)
    plan = emulation.Plan(window, start, length, weights, **good)
    with pytest.raises(ValueError, match=r'300 samples.*win_length=512'):
        plan.output_shape(1, 1, 300, False)
    assert plan.output_shape(2, 3, 4000, True) == ((2, 3, 28, 32), 'float32')
    with pytest.raises(TypeError, match='float32'):
        emulation.frontend(
            plan, np.zeros((1, 4000, 1)), input_channels_first=False, output_channels_first=False
        )
    with pytest.raises(ValueError, match='3-D'):
        emulation.frontend(
            plan,
            np.zeros((4000, 1), np.float32),
            input_channels_first=False,
            output_channels_first=False,
        )
    with pytest.raises(ValueError, match='thread_order'):
        emulation.frontend(
            plan,
            np.zeros((1, 4000, 1), np.float32),
            input_channels_first=False,
            output_channels_first=False,
            thread_order='sideways',
        )


def test_empty_batch_and_channels():
    spec = FrontEnd.stft_magnitude(n_fft=256, hop_length=64, return_decibel=True)
    assert emulate(spec, np.zeros((0, 1000, 1), np.float32)).shape == (0, 12, 129, 1)
    assert emulate(spec, np.zeros((2, 1000, 0), np.float32)).shape == (2, 12, 129, 0)


@pytest.mark.parametrize('n_fft', [64, 512, 2048, 4096, 8192, 8198, 65536])
def test_geometry_is_within_the_device_limits(n_fft):
    spec = FrontEnd.stft_magnitude(n_fft=n_fft, return_decibel=True)
    plan = gpu_plan(emulation, spec)
    for smem, sms in [(49152, 40), (101376, 84), (166912, 108), (232448, 132)]:
        g = plan.geometry(4, 2, 3 * n_fft, False, smem, sms)
        assert g['threads'] in (64, 128, 256, 512)
        assert g['shared_memory_bytes'] <= smem
        assert 1 <= g['grid'] <= g['items']
        assert g['workspace_bytes'] <= (256 << 20) + 4096


# ----- kapre_fast.gpu's Python side, driven here with host memory standing in for the GPU -----


class FakeDeviceArray(np.ndarray):
    """A NumPy array posing as a CuPy array on GPU 0 (`.data.ptr`, `.device.id`,
    `__cuda_array_interface__`)."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__['data'][0])

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    @property
    def __cuda_array_interface__(self):
        interface = dict(self.__array_interface__)
        interface['strides'] = self.strides
        return interface


def fake_cupy():
    """The CuPy API that kapre_fast.gpu and tests/test_gpu.py use, on host memory."""

    class Device:
        def __init__(self, device=None):
            self.id = 0 if device is None else device

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Stream(Device):
        ptr = 0

        def __init__(self, non_blocking=False):
            super().__init__()

        def synchronize(self):
            pass

        def wait_event(self, event):
            pass

        def is_capturing(self):
            return False

    def as_fake(a, dtype=None):
        if not isinstance(a, np.ndarray) and hasattr(a, '__cuda_array_interface__'):
            a = types.SimpleNamespace(__array_interface__=a.__cuda_array_interface__)
        return np.asarray(a, dtype).view(FakeDeviceArray)

    class Event:
        done = True  # host work is finished when the call returns

        def __init__(self, block=False, disable_timing=False):
            pass

        def record(self, stream=None):
            pass

        def synchronize(self):
            pass

    module = types.ModuleType('cupy')
    module.ndarray = FakeDeviceArray
    for name in ('float32', 'float64', 'complex64', 'uint8'):
        setattr(module, name, getattr(np, name))
    module.asarray = as_fake
    module.asnumpy = lambda a: np.array(a)
    module.empty = lambda shape, dtype=np.float64: as_fake(np.empty(shape, dtype))
    module.zeros = lambda shape, dtype=np.float64: as_fake(np.zeros(shape, dtype))
    module.ones = lambda shape, dtype=np.float64: as_fake(np.ones(shape, dtype))
    module.ascontiguousarray = lambda a: as_fake(np.ascontiguousarray(a))
    module.pad = lambda a, widths, mode: as_fake(np.pad(np.asarray(a), widths, mode=mode))
    module.einsum = lambda subscripts, *arrays: as_fake(
        np.einsum(subscripts, *map(np.asarray, arrays))
    )
    module.matmul = lambda a, b: as_fake(np.matmul(np.asarray(a), np.asarray(b)))
    module.cuda = types.SimpleNamespace(
        Device=Device, Stream=Stream, Event=Event, get_current_stream=lambda: Stream()
    )
    return module


def fake_cuda_module():
    """kapre_fast._cuda with the emulation in place of the kernels."""
    module = types.ModuleType('kapre_fast._cuda')
    module.Plan = emulation.Plan
    module.device_count = lambda: 1
    module.device_limits = lambda device: dict(
        smem_per_block=SMEM, sm_count=4, compute_capability=(8, 6)
    )
    module.frontend = emulation.frontend_raw
    module.istft = emulation.istft_raw
    module.pcen = emulation.pcen_raw
    return module


def install_fake_gpu():
    """Makes `import cupy` and kapre_fast._cuda resolve to the host stand-ins (in this process)."""
    sys.modules['cupy'] = fake_cupy()
    sys.modules['kapre_fast._cuda'] = fake_cuda_module()


def test_gpu_test_module_passes_with_the_emulation_standing_in_for_the_gpu():
    """tests/test_gpu.py only runs on GPU machines; run it here against the host stand-ins so its
    own logic (and kapre_fast.gpu's) is exercised on every run."""
    tests = Path(__file__).parent
    # The long cases emulate the same kernels as this file's own tests (the concurrent ones as
    # test_gpu_launch_safety.py's): left out here.
    arguments = [
        '-q',
        '-x',
        '-p',
        'no:cacheprovider',
        '-k',
        'not many_frames and not every_n_fft and not concurrent',
        str(tests / 'test_gpu.py'),
    ]
    code = (
        'import sys\n'
        f'sys.path[:0] = [{str(tests)!r}]\n'
        'import test_gpu_emulation\n'
        'test_gpu_emulation.install_fake_gpu()\n'
        'import pytest\n'
        f'sys.exit(pytest.main({arguments!r}))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, cwd=str(tests), timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ' passed' in result.stdout and 'skipped' not in result.stdout.splitlines()[-1]


@pytest.fixture
def host_gpu(monkeypatch):
    """kapre_fast.gpu imported against fake cupy and _cuda modules; undone afterwards."""
    import kapre_fast

    monkeypatch.setitem(sys.modules, 'cupy', fake_cupy())
    monkeypatch.setitem(sys.modules, 'kapre_fast._cuda', fake_cuda_module())
    monkeypatch.setitem(sys.modules, 'kapre_fast.gpu', None)
    monkeypatch.setitem(vars(kapre_fast), 'gpu', None)  # the import binds the fake-backed module
    del sys.modules['kapre_fast.gpu']
    return importlib.import_module('kapre_fast.gpu')


@pytest.mark.parametrize('name', sorted(SCHEDULE_SPECS))
@pytest.mark.parametrize(
    'layouts', [('channels_last', 'channels_first'), ('channels_first', 'channels_last')]
)
def test_gpu_module_feeds_the_kernels_what_the_emulation_gets(host_gpu, name, layouts):
    make, kwargs = SCHEDULE_SPECS[name]
    spec = make(input_data_format=layouts[0], output_data_format=layouts[1], **kwargs)
    x = to_input_layout(signal(5000, 2, seed=4), layouts[0])
    expected = emulate(spec, x)
    ours = host_gpu.compute(spec, x.view(FakeDeviceArray))
    assert isinstance(ours, FakeDeviceArray) and ours.dtype == expected.dtype
    np.testing.assert_array_equal(np.asarray(ours), expected)
    function = {
        'mel-db': 'melspectrogram',
        'magphase-db-odd': 'stft_mag_phase',
        'stft-bluestein': 'stft',
        'log-db': 'log_frequency_spectrogram',
    }[name]
    ours = getattr(host_gpu, function)(x.view(FakeDeviceArray), **spec_kwargs(spec, kwargs))
    np.testing.assert_array_equal(np.asarray(ours), expected)


def spec_kwargs(spec, kwargs):
    return dict(
        kwargs, input_data_format=spec.input_data_format, output_data_format=spec.output_data_format
    )


def test_gpu_module_takes_any_strides_and_real_dtypes(host_gpu):
    spec = FrontEnd.stft_mag_phase(
        n_fft=400, hop_length=100, return_decibel=True, input_data_format='channels_last'
    )
    x = to_input_layout(signal(4000, 2, seed=8), 'channels_last')
    expected = emulate(spec, x)
    device = x.view(FakeDeviceArray)
    np.testing.assert_array_equal(np.asarray(host_gpu.compute(spec, device)), expected)
    flipped = np.ascontiguousarray(x[:, ::-1, ::-1])
    np.testing.assert_array_equal(  # negative strides, no copy
        np.asarray(host_gpu.compute(spec, flipped.view(FakeDeviceArray)[:, ::-1, ::-1])), expected
    )
    np.testing.assert_array_equal(
        np.asarray(host_gpu.compute(spec, x.astype(np.float64).view(FakeDeviceArray))), expected
    )
    ints = (x * 1000).astype(np.int16)
    np.testing.assert_array_equal(
        np.asarray(host_gpu.compute(spec, ints.view(FakeDeviceArray))),
        emulate(spec, ints.astype(np.float32)),
    )


def test_gpu_module_names_bad_arguments(host_gpu):
    spec = FrontEnd.melspectrogram(n_fft=512, hop_length=128, sample_rate=16000, n_mels=32)
    x = np.zeros((1, 4000, 1), np.float32)
    with pytest.raises(TypeError, match='CuPy array'):
        host_gpu.compute(spec, x)  # host memory
    with pytest.raises(TypeError, match=r'audio must be a real array.*complex64'):
        host_gpu.compute(spec, x.astype(np.complex64).view(FakeDeviceArray))
    with pytest.raises(ValueError, match=r'3 axes \(batch, time, channels\)'):
        host_gpu.compute(spec, x[0].view(FakeDeviceArray))
    with pytest.raises(ValueError, match=r'300 samples.*win_length=512'):
        host_gpu.compute(spec, x[:, :300].view(FakeDeviceArray))
    with pytest.raises(TypeError, match='FrontEnd'):
        host_gpu.compute('melspectrogram', x.view(FakeDeviceArray))
    assert host_gpu.compute(spec, x[:0].view(FakeDeviceArray)).shape == (0, 28, 32, 1)


def test_gpu_module_istft(host_gpu):
    spec, x, X = istft_input(
        dict(
            n_fft=400,
            win_length=300,
            hop_length=100,
            input_data_format='channels_first',
            output_data_format='channels_last',
        )
    )
    kwargs = istft_kwargs(spec)
    expected = emulate_istft(spec, X)
    ours = host_gpu.istft(X.view(FakeDeviceArray), **kwargs)
    assert isinstance(ours, FakeDeviceArray)
    np.testing.assert_array_equal(np.asarray(ours), expected)
    np.testing.assert_array_equal(
        np.asarray(host_gpu.istft(X.astype(np.complex128).view(FakeDeviceArray), **kwargs)),
        expected,
    )
    with pytest.raises(TypeError, match='complex'):
        host_gpu.istft(X.real.copy().view(FakeDeviceArray), **kwargs)
    with pytest.raises(TypeError, match='CuPy array'):
        host_gpu.istft(X, **kwargs)
    with pytest.raises(ValueError, match='4 axes'):
        host_gpu.istft(X[0].view(FakeDeviceArray), **kwargs)


# ----- importing kapre_fast.gpu where something is missing --------------------------------


def _import_error(prelude):
    """The exception type and message of `import kapre_fast.gpu` in a fresh interpreter after
    running `prelude`."""
    code = (
        f'{prelude}\n'
        'try:\n'
        '    import kapre_fast.gpu\n'
        'except Exception as error:\n'
        '    print(type(error).__name__ + ": " + str(error))\n'
        'else:\n'
        '    print("imported")\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, cwd=str(TESTS), timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


FAKE_CUPY = 'import sys, types\nsys.modules["cupy"] = types.ModuleType("cupy")'


def test_import_kapre_fast_does_not_import_cupy():
    code = (
        'import sys, kapre_fast\n'
        'kapre_fast.FrontEnd.melspectrogram(n_mels=64)\n'
        'print("cupy" in sys.modules)'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, cwd=str(TESTS), timeout=120
    )
    assert result.stdout.strip() == 'False', result.stderr


def test_import_without_cupy_names_cupy():
    message = _import_error('import sys\nsys.modules["cupy"] = None')
    assert message.startswith('ImportError: kapre_fast.gpu needs CuPy'), message
    assert _loader.pip_install_hint('gpu') in message  # from the checkout, or by name
    assert '[gpu]' in message


def test_import_without_driver_or_kernels_says_what_is_missing():
    try:
        cuda = importlib.import_module('kapre_fast._cuda')
    except ImportError:
        message = _import_error(FAKE_CUPY)
        assert message.startswith("ImportError: kapre_fast's CUDA kernels"), message
        return
    try:
        cuda.device_count()
    except RuntimeError as error:  # no driver (as on the build machines) or no GPU
        assert 'driver' in str(error) or 'GPU' in str(error)
        assert _import_error(FAKE_CUPY) == f'RuntimeError: {error}'
    else:
        pytest.skip('this machine has a working CUDA driver and GPU')
