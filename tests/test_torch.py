"""kapre_fast.torch: the fused front ends as PyTorch custom operators, functions and modules.

Its numbers are on the accuracy grid with the other backends (test_backends.py, backend
'torch'); here: the same bits as kapre_fast.cpu, gradients against finite differences and
against the TensorFlow op's, gradient penalties (create_graph) against torch.stft's,
torch.compile(fullgraph=True) (dynamic shapes too), fake and meta tensors (the kernels' checks),
torch.export programs run in a fresh process, the modules, errors, the compiled operator library
(its kernels on the stable ABI, no copies, raw-operator errors, the torch release check), and the
GPU path where a CUDA device and a CUDA build are present.
"""

import inspect
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip('torch')

import kapre_fast.torch as kft  # noqa: E402
from helpers import FAMILIES, FAMILY_ARGS, SMALL, noise_batch, to_input_layout  # noqa: E402
from kapre_fast import FrontEnd, cpu, reference  # noqa: E402


def audio(n_samples=400, n_channels=2, layout='channels_last', seed=0):
    return to_input_layout(noise_batch(2, n_samples, n_channels, seed), layout)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize(
    'layouts', [('channels_last', 'channels_first'), ('channels_first', 'channels_last')]
)
def test_functions_give_the_cpu_backends_bits(family, layouts):
    kwargs = dict(
        FAMILY_ARGS[family],
        input_data_format=layouts[0],
        output_data_format=layouts[1],
        n_fft=256,
        hop_length=100,
    )
    x = audio(3000, 2, layouts[0], seed=1)
    ours = getattr(kft, family)(torch.from_numpy(x), **kwargs)
    assert isinstance(ours, torch.Tensor)
    np.testing.assert_array_equal(ours.numpy(), getattr(cpu, family)(x, **kwargs))


def test_signatures_are_the_cpu_backends_with_threads_and_no_out():
    for family in FAMILIES:
        ours = inspect.signature(getattr(kft, family)).parameters
        theirs = inspect.signature(getattr(cpu, family)).parameters
        assert list(ours) == [name for name in theirs if name != 'out']
        assert all(ours[name].default == theirs[name].default for name in ours)
        assert 'n_fft' in getattr(kft, family).__doc__


def test_dtype_policy_and_the_input_tensor_is_not_copied():
    x = audio(2000, 1, seed=2)
    expected = cpu.stft_magnitude(x, n_fft=128)
    as_float64 = torch.from_numpy(x.astype(np.float64))
    np.testing.assert_array_equal(kft.stft_magnitude(as_float64, n_fft=128).numpy(), expected)
    ints = np.round(x * 1000).astype(np.int16)
    np.testing.assert_array_equal(
        kft.stft_magnitude(torch.from_numpy(ints), n_fft=128).numpy(),
        cpu.stft_magnitude(ints, n_fft=128),
    )
    tensor = torch.from_numpy(x)
    spec = FrontEnd.stft_magnitude(n_fft=128)
    assert kft.as_audio_tensor(tensor, spec) is tensor  # float32: no copy
    np.testing.assert_array_equal(kft.stft_magnitude(x, n_fft=128).numpy(), expected)  # NumPy in


def test_bad_inputs_are_named():
    x = torch.zeros(1, 1000, 1)
    with pytest.raises(TypeError, match='complex64'):
        kft.melspectrogram(x.to(torch.complex64))
    with pytest.raises(TypeError, match='bool'):
        kft.melspectrogram(x.to(torch.bool))
    with pytest.raises(ValueError, match=r'x\[None, :, None\]'):
        kft.melspectrogram(torch.zeros(1000), n_fft=256)
    with pytest.raises(TypeError, match='n_mel'):
        kft.melspectrogram(x, n_mel=12)
    with pytest.raises(ValueError, match='n_fft'):
        kft.MelSpectrogram(n_fft=1)
    with pytest.raises(ValueError, match=r'300 samples.*win_length=512'):
        kft.stft_magnitude(torch.zeros(1, 300, 1), n_fft=512)
    with pytest.raises(ValueError, match='threads'):
        kft.stft_magnitude(x, n_fft=256, threads=0)
    with pytest.raises(TypeError, match='complex'):
        kft.istft(torch.zeros(1, 4, 33, 1), n_fft=64)


# ----- the compiled operator library ----------------------------------------------------------


def test_the_operators_are_the_compiled_librarys_kernels():
    from kapre_fast import _loader

    assert str(kft._ops.LIBRARY) in torch.ops.loaded_libraries
    assert kft._ops.LIBRARY.name == '_torch_ops.so'
    cuda_built = _loader.build_info().get('torch_cuda', False)
    tables = {
        'front_end': ('audio', 'window', 'band_start', 'band_length', 'band_weights'),
        'inverse_stft': ('stft', 'window'),
    }
    scalars = {
        'front_end': kft._ops.FRONT_END_SCALARS,
        'inverse_stft': kft._ops.INVERSE_STFT_SCALARS,
    }
    for name in ('front_end', 'inverse_stft'):
        qualified = f'kapre_fast::{name}'
        schema = getattr(torch.ops.kapre_fast, name).default._schema
        # Python's mirror of the C++ argument list (csrc/torch/tensor_args.h) is the schema's.
        assert [argument.name for argument in schema.arguments] == [
            *tables[name],
            *scalars[name],
            'threads',
        ]
        assert [str(argument.type) for argument in schema.arguments[: len(tables[name])]] == [
            'Tensor'
        ] * len(tables[name])
        assert [str(result.type) for result in schema.returns] == ['Tensor']
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, 'CPU')
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, 'CUDA') == cuda_built
        assert qualified not in torch._library.custom_ops.OPDEFS  # not a Python custom_op


def _aten_calls(run):
    # acc_events: every event of the run (torch 2.11 warns, as an error here, without it).
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, acc_events=True) as profile:
        result = run()
    return result, [event.name for event in profile.events()]


def test_no_copy_in_or_out():
    spec = FrontEnd.melspectrogram(n_fft=128, hop_length=32, n_mels=8, sample_rate=8000)
    arguments = kft._ops.front_end_arguments(spec)
    batch = torch.from_numpy(audio(1000, 2, seed=3))
    inner = batch[1:]  # contiguous, at an offset into the batch's memory
    result, calls = _aten_calls(lambda: torch.ops.kapre_fast.front_end(inner, *arguments, 1))
    # Nothing but the operator (its result allocated by the C shim's empty_strided): no copy or
    # conversion of the audio or of the result.
    assert calls.count('kapre_fast::front_end') == 1
    assert set(calls) <= {'kapre_fast::front_end', 'aten::empty', 'aten::empty_strided'}
    assert not {'aten::copy_', 'aten::clone', 'aten::contiguous', 'aten::_to_copy'} & set(calls)
    assert result._base is None and result.is_contiguous()
    np.testing.assert_array_equal(result.numpy(), cpu.compute(spec, batch.numpy()[1:]))
    _, calls = _aten_calls(lambda: kft.compute(spec, batch))  # the wrapper adds none either
    assert not {'aten::copy_', 'aten::clone', 'aten::_to_copy'} & set(calls)
    with pytest.raises(ValueError, match='audio must be a contiguous tensor'):
        torch.ops.kapre_fast.front_end(batch.transpose(0, 1), *arguments, 1)


def _raw_front_end(x, tables=None, threads=0, **changes):
    """torch.ops.kapre_fast.front_end on x with a 64-point STFT magnitude's arguments, `tables`
    (window, band_start, band_length, band_weights) and `changes` (scalars) replaced."""
    arguments = kft._ops.front_end_arguments(FrontEnd.stft_magnitude(n_fft=64, hop_length=16))
    scalars = dict(zip(kft._ops.FRONT_END_SCALARS, arguments[4:]), **changes)
    return torch.ops.kapre_fast.front_end(x, *(tables or arguments[:4]), *scalars.values(), threads)


def test_raw_operators_name_bad_arguments():
    """Every argument is checked on every call (the stable ABI carries exceptions as
    ValueError or RuntimeError only: a wrong dtype is a ValueError here)."""
    ops = torch.ops.kapre_fast
    x = torch.zeros(1, 200, 1)
    assert _raw_front_end(x).shape == (1, 9, 33, 1)
    with pytest.raises(ValueError, match='audio must be float32, got float64'):
        _raw_front_end(x.double())
    with pytest.raises(ValueError, match=r'audio must have 3 axes .*\(200,\)'):
        _raw_front_end(torch.zeros(200))
    with pytest.raises(ValueError, match=r'threads must be in \[0, 1024\], got 2000'):
        _raw_front_end(x, threads=2000)
    window = torch.ones(64)
    none = torch.zeros(0, dtype=torch.int32)
    with pytest.raises(ValueError, match='window has 64 samples but win_length is 48'):
        _raw_front_end(x, win_length=48)
    with pytest.raises(ValueError, match='output must be 0'):
        _raw_front_end(x, output=5)
    with pytest.raises(ValueError, match='power must be 1 or 2'):
        _raw_front_end(x, power=3)
    with pytest.raises(ValueError, match='band_start must be int32, got int64'):
        _raw_front_end(x, (window, none.long(), none, none.float()))
    with pytest.raises(ValueError, match='window must have 1 axis, got shape'):
        _raw_front_end(x, (window.reshape(8, 8), none, none, none.float()))
    one_band = (window, torch.tensor([1], dtype=torch.int32), torch.tensor([2], dtype=torch.int32))
    with pytest.raises(ValueError, match='mag_phase output takes no filterbank'):
        _raw_front_end(x, (*one_band, torch.ones(2)), output=1)
    with pytest.raises(ValueError, match='weights hold 3 values but the bands need 2'):
        _raw_front_end(x, (*one_band, torch.ones(3)))
    with pytest.raises(ValueError, match=r'band 0 covers bins \[40, 42\) outside \[0, 33\)'):
        _raw_front_end(x, (window, one_band[1] + 39, one_band[2], torch.ones(2)))
    with pytest.raises(ValueError, match='amin is out of float32 range'):
        _raw_front_end(x, amin=1e300, decibel=True)
    inverse = kft._ops.inverse_stft_arguments(FrontEnd.stft(n_fft=64, hop_length=16))
    stft = torch.zeros(1, 4, 33, 1, dtype=torch.complex64)
    assert ops.inverse_stft(stft, *inverse, 0).shape == (1, 112, 1)
    with pytest.raises(ValueError, match='stft must be complex64, got float32'):
        ops.inverse_stft(stft.real.contiguous(), *inverse, 0)
    with pytest.raises(ValueError, match='window has 63 samples but win_length is 64'):
        ops.inverse_stft(stft, inverse[0][:63], *inverse[1:], 0)


def test_torch_releases_before_the_target_are_refused_by_name():
    from kapre_fast._loader import check_torch_build

    built = {'torch': '2.13.0+cpu', 'torch_target': '2.10'}
    for installed in ('2.10.0', '2.13.0+cu130', '2.14.1', '2.15.0+cpu', '3.0.0'):
        check_torch_build(built, installed)  # one binary for the target and every later torch
    with pytest.raises(
        ImportError, match=r'need torch 2\.10 or later.*torch 2\.9\.1 is installed.*torch>=2\.10'
    ):
        check_torch_build(built, '2.9.1')
    with pytest.raises(ImportError, match='built without its PyTorch operators'):
        check_torch_build({'torch': ''}, '2.13.0')
    # A build from before the stable ABI (no target recorded) loads in its own release only.
    check_torch_build({'torch': '2.13.0+cpu'}, '2.13.0+cu130')
    with pytest.raises(ImportError, match=r'built for torch 2\.13\.0\+cpu only.*2\.14\.1'):
        check_torch_build({'torch': '2.13.0+cpu'}, '2.14.1')


def test_the_library_uses_the_stable_abi_only():
    """The operator library links no unstable torch library (libtorch.so, libc10.so: C++ ABIs of
    one release) and calls torch only through the C shim (aoti_torch_* / torch_* functions)."""
    import shutil

    if shutil.which('readelf') is None:
        pytest.skip('readelf is not installed')
    dynamic = subprocess.run(
        ['readelf', '--dyn-syms', '-d', '-W', str(kft._ops.LIBRARY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    needed = [line.split('[')[1].rstrip(']') for line in dynamic.splitlines() if '(NEEDED)' in line]
    assert 'libtorch_cpu.so' in needed
    assert not {'libtorch.so', 'libc10.so', 'libtorch_python.so'} & set(needed)
    undefined = {
        line.split()[-1].split('@')[0]
        for line in dynamic.splitlines()
        if ' UND ' in line and line.split()[-1] != 'UND'
    }
    from_torch = {name for name in undefined if 'c10' in name or 'at' in name.split('_')[0]}
    assert not {name for name in from_torch if name.startswith('_Z')}, from_torch  # no C++
    assert {'torch_library_impl', 'aoti_torch_library_def'} <= undefined


# ----- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize('family', FAMILIES)
def test_gradient_matches_finite_differences_of_the_float64_reference(family):
    """The op's gradient (float32, from the torch recomputation) against central differences
    of kapre_fast.reference (float64, an independent implementation of the forward pass). Noise
    without digital silence: the phase of a zero bin has no derivative."""
    spec = getattr(FrontEnd, family)(**SMALL, **FAMILY_ARGS[family])
    x = (0.3 * np.random.default_rng(4).standard_normal((2, 180, 1))).astype(np.float32)
    as_real = lambda y: (
        y.view(np.float32 if y.dtype == np.complex64 else np.float64).reshape(y.shape + (2,))
        if np.iscomplexobj(y)
        else y
    )
    weights = np.random.default_rng(3).standard_normal(as_real(reference.compute(spec, x)).shape)
    source = torch.from_numpy(x).requires_grad_(True)
    y = kft.compute(spec, source)
    y = torch.view_as_real(y) if y.is_complex() else y
    (gradient,) = torch.autograd.grad(
        (y * torch.from_numpy(weights.astype(np.float32))).sum(), source
    )
    loss = lambda z: float((as_real(reference.compute(spec, z)) * weights).sum())
    rng = np.random.default_rng(5)
    for _ in range(3):
        direction = rng.standard_normal(x.shape)
        step = 1e-6
        numeric = (loss(x + step * direction) - loss(x - step * direction)) / (2 * step)
        analytic = float((gradient.double().numpy() * direction).sum())
        assert abs(numeric - analytic) <= 1e-3 * abs(numeric) + 1e-4, (numeric, analytic)


def test_gradient_is_the_tensorflow_ops():
    tf = pytest.importorskip('tensorflow')
    from kapre_fast import ops

    spec = FrontEnd.stft_mag_phase(**SMALL, return_decibel=True)
    x = audio(180, 2, seed=6)
    upstream = (
        np.random.default_rng(7)
        .standard_normal(kft.compute(spec, torch.from_numpy(x)).shape)
        .astype(np.float32)
    )
    source = torch.from_numpy(x).requires_grad_(True)
    (ours,) = torch.autograd.grad(kft.compute(spec, source), source, torch.from_numpy(upstream))
    x_tf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tf)
        y = ops.front_end(x_tf, spec)
    theirs = tape.gradient(y, x_tf, output_gradients=tf.constant(upstream)).numpy()
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


def test_calls_with_and_without_a_gradient_and_forward_ad_is_refused():
    # Calls that record no gradient run below autograd (kapre_fast.torch._call): the same bits,
    # and a graph only where a gradient is wanted.
    spec = FrontEnd.melspectrogram(n_fft=64, hop_length=16, n_mels=8, return_decibel=True)
    x = torch.from_numpy(audio(640, 2))
    expected = cpu.compute(spec, x.numpy())
    plain = kft.compute(spec, x)
    np.testing.assert_array_equal(plain.numpy(), expected)
    assert plain.grad_fn is None and not plain.requires_grad
    with torch.no_grad():
        quiet = kft.compute(spec, x.clone().requires_grad_(True))
    np.testing.assert_array_equal(quiet.numpy(), expected)
    assert quiet.grad_fn is None
    watched = x.clone().requires_grad_(True)
    result = kft.compute(spec, watched)
    np.testing.assert_array_equal(result.detach().numpy(), expected)
    (gradient,) = torch.autograd.grad(result.sum(), watched)
    assert gradient.shape == x.shape and bool(torch.isfinite(gradient).all())
    assert float(gradient.abs().sum()) > 0
    # Forward mode has no formula: an error, not a result without its tangent.
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
        with pytest.raises(RuntimeError, match='no forward-mode AD'):
            kft.compute(spec, dual)


def test_istft_inverts_the_stft_and_has_a_gradient():
    kwargs = dict(n_fft=64, hop_length=16)
    x = audio(640, 2, seed=8)
    X = kft.stft(torch.from_numpy(x), pad_begin=True, pad_end=True, **kwargs)
    waveform = kft.istft(X, **kwargs)
    np.testing.assert_array_equal(waveform.numpy(), cpu.istft(X.numpy(), **kwargs))
    trim = 64 - 16  # pad_begin's zeros
    np.testing.assert_allclose(waveform.numpy()[:, trim : trim + 640], x, atol=1e-5)
    source = X.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(kft.istft(source, **kwargs).square().sum(), source)
    direction = torch.randn(
        X.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)
    )
    step = 1e-2
    loss = lambda Y: kft.istft(Y, **kwargs).square().sum().item()
    numeric = (loss(X + step * direction) - loss(X - step * direction)) / (2 * step)
    # PyTorch's convention: the gradient is dL/dRe + i dL/dIm.
    analytic = float((gradient.real * direction.real + gradient.imag * direction.imag).sum())
    assert abs(numeric - analytic) <= 1e-2 * abs(analytic)


def _stft_reference(spec, audio):
    """float64 torch.stft of `audio` (channels_last, frames of n_fft = win_length, no
    centring), then spec's |X|^power and filterbank, or the complex STFT as (..., 2) reals."""
    batch, time, channels = audio.shape
    X = torch.stft(
        audio.transpose(1, 2).reshape(-1, time),
        spec.n_fft,
        spec.hop_length,
        window=torch.from_numpy(np.array(spec.window(), dtype=np.float64)),
        center=False,
        return_complex=True,
    )  # (signals, freq, frames)
    X = X.reshape(batch, channels, *X.shape[1:]).permute(0, 3, 2, 1)  # kapre's layout
    if spec.output == 'complex':
        return torch.view_as_real(X)
    features = X.abs() ** spec.power_exponent
    if spec.filterbank != 'none':
        filterbank = torch.from_numpy(np.array(spec.dense_filterbank(), dtype=np.float64))
        features = (features.transpose(2, 3) @ filterbank).transpose(2, 3)
    return features


def _gradient_penalty_and_its_gradient(forward, x):
    """||d sum(y^2) / dx||^2 of y = forward(x) (create_graph=True), and its gradient in x."""
    x = x.clone().requires_grad_(True)
    y = forward(x)
    y = torch.view_as_real(y) if y.is_complex() else y
    (gradient,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    penalty = (torch.view_as_real(gradient) if gradient.is_complex() else gradient).square().sum()
    (second,) = torch.autograd.grad(penalty, x)
    return penalty.item(), second


@pytest.mark.parametrize('family', ['stft_magnitude', 'melspectrogram', 'stft'])
def test_create_graph_gives_torch_stfts_gradient_penalty(family):
    """A gradient penalty through the operator: its gradient is a differentiable function of the
    waveform (the backward recomputes in torch ops under create_graph), equal in float32 to the
    same penalty through a float64 torch.stft composition."""
    kwargs = FAMILY_ARGS[family] if family == 'melspectrogram' else {}  # no dB: |X| or |X|^2
    spec = getattr(FrontEnd, family)(n_fft=64, hop_length=16, **kwargs)
    x = torch.from_numpy(audio(300, 2, seed=13))
    ours, ours_gradient = _gradient_penalty_and_its_gradient(lambda a: kft.compute(spec, a), x)
    theirs, gradient = _gradient_penalty_and_its_gradient(
        lambda a: _stft_reference(spec, a), x.double()
    )
    assert ours == pytest.approx(theirs, rel=1e-5)
    np.testing.assert_allclose(
        ours_gradient.numpy(), gradient.numpy(), rtol=0, atol=1e-5 * gradient.abs().max().item()
    )


def test_create_graph_through_istft_is_the_compositions():
    kwargs = dict(n_fft=64, hop_length=16)
    X = kft.stft(torch.from_numpy(audio(400, 2, seed=14)), **kwargs)
    window, *scalars = kft._ops.inverse_stft_arguments(FrontEnd.stft(**kwargs))
    ours, ours_gradient = _gradient_penalty_and_its_gradient(
        lambda Y: kft.istft(Y, **kwargs).pow(3), X
    )  # a penalty that depends on X
    theirs, gradient = _gradient_penalty_and_its_gradient(
        lambda Y: kft._ops.inverse_stft_composition(Y, window.double(), *scalars).pow(3),
        X.to(torch.complex128),
    )
    assert ours == pytest.approx(theirs, rel=1e-5)
    np.testing.assert_allclose(
        ours_gradient.numpy(), gradient.numpy(), rtol=0, atol=1e-5 * gradient.abs().max().item()
    )


# ----- torch.compile, modules --------------------------------------------------------------------


def test_compiled_with_fullgraph_gives_the_same_values_and_gradients():
    torch._dynamo.reset()
    layer = kft.MelSpectrogram(
        n_fft=256, hop_length=64, sample_rate=8000, n_mels=16, return_decibel=True
    )

    def pipeline(x):
        functional = kft.stft_magnitude(x, n_fft=128, hop_length=64)  # the function form too
        return layer(x).mean(dim=(1, 2)) + functional.mean(dim=(1, 2))[:, :1]

    compiled = torch.compile(pipeline, fullgraph=True, backend='aot_eager', dynamic=True)
    for n_samples in (2000, 3001):  # a second length: the fake implementation's shapes
        x = torch.from_numpy(audio(n_samples, 2, seed=n_samples))
        eager_x, compiled_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        expected, ours = pipeline(eager_x), compiled(compiled_x)
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)
        ours.sum().backward()
        expected.sum().backward()
        torch.testing.assert_close(compiled_x.grad, eager_x.grad, rtol=1e-6, atol=1e-7)


def test_compiled_istft_inverts_with_its_own_arguments():
    # istft builds its spec inside the traced code: n_fft=128 must reach the operator.
    torch._dynamo.reset()

    def roundtrip(x):
        return kft.istft(kft.stft(x, n_fft=128, hop_length=32), n_fft=128, hop_length=32)

    compiled = torch.compile(roundtrip, fullgraph=True, backend='aot_eager')
    x = torch.from_numpy(audio(1000, 1, seed=4))
    torch.testing.assert_close(compiled(x), roundtrip(x), rtol=0, atol=0)


def test_compiled_istft_with_dynamic_shapes():
    torch._dynamo.reset()
    inverse = lambda X: kft.istft(X, n_fft=64, hop_length=16)
    compiled = torch.compile(inverse, fullgraph=True, backend='aot_eager', dynamic=True)
    for n_samples in (400, 577):  # a second frame count: one program for both
        X = kft.stft(torch.from_numpy(audio(n_samples, 2, seed=n_samples)), n_fft=64, hop_length=16)
        torch.testing.assert_close(compiled(X), inverse(X), rtol=0, atol=0)


def test_first_use_of_a_front_end_under_fake_tensor_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode

    kft._ops.front_end_arguments.cache_clear()  # each table made afresh, under the mode
    kft._ops.inverse_stft_arguments.cache_clear()
    kft._plan.cache_clear()
    kft._inverse_plan.cache_clear()
    x = torch.from_numpy(audio(501, 1, seed=15))
    X = kft.stft(x, n_fft=98, hop_length=33)
    with FakeTensorMode() as mode:
        fake = kft.stft_magnitude(mode.from_tensor(x), n_fft=97, hop_length=31)
        fake_inverse = kft.istft(mode.from_tensor(X), n_fft=98, hop_length=33)
    assert fake.shape == kft.stft_magnitude(x, n_fft=97, hop_length=31).shape
    assert fake_inverse.shape == kft.istft(X, n_fft=98, hop_length=33).shape


def test_fake_implementation_gives_the_real_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    for family in FAMILIES:
        for layout in ('channels_last', 'channels_first'):
            spec = getattr(FrontEnd, family)(
                **SMALL,
                pad_end=True,
                input_data_format=layout,
                output_data_format=layout,
                **FAMILY_ARGS[family],
            )
            x = torch.from_numpy(audio(301, 3, layout, seed=9))
            real = kft.compute(spec, x)
            with FakeTensorMode() as mode:
                fake = kft.compute(spec, mode.from_tensor(x))
            assert (fake.shape, fake.dtype) == (real.shape, real.dtype)


def _outcome(operator, tensor, arguments, threads=0):
    try:
        result = operator(tensor, *arguments, threads)
    except ValueError as error:
        return type(error), str(error)
    return tuple(result.shape), result.dtype


def test_meta_and_fake_implementations_refuse_what_the_kernels_refuse():
    """Meta and fake tensors of concrete sizes get the kernels' own checks (the shape operators
    over csrc/torch/tensor_args.cc): the same result shape, or the same error."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    ops = torch.ops.kapre_fast
    forward = kft._ops.front_end_arguments(FrontEnd.stft_magnitude(n_fft=64, hop_length=16))
    mel = kft._ops.front_end_arguments(
        FrontEnd.melspectrogram(n_fft=64, hop_length=16, n_mels=4, sample_rate=8000)
    )
    inverse = kft._ops.inverse_stft_arguments(FrontEnd.stft(n_fft=64, hop_length=16))
    complex_zeros = lambda *shape: torch.zeros(shape, dtype=torch.complex64)
    short_window = (forward[0][:60], *forward[1:])
    at = 4 + kft._ops.FRONT_END_SCALARS.index('output')
    mel_phase = (*mel[:at], 1, *mel[at + 1 :])  # mag_phase
    cases = [
        (ops.front_end, torch.zeros(2, 300, 1), forward, 0),  # accepted
        (ops.front_end, torch.zeros(2, 300, 1), mel, 0),  # accepted
        (ops.front_end, torch.zeros(2, 63, 1), forward, 0),  # shorter than a frame
        (ops.front_end, torch.zeros(2, 300, 1, dtype=torch.float64), forward, 0),
        (ops.front_end, torch.zeros(300), forward, 0),
        (ops.front_end, torch.zeros(300, 2, 1).transpose(0, 1), forward, 0),
        (ops.front_end, torch.zeros(2, 300, 1), forward, 2000),
        (ops.front_end, torch.zeros(2, 300, 1), short_window, 0),
        (ops.front_end, torch.zeros(2, 300, 1), mel_phase, 0),
        (ops.inverse_stft, complex_zeros(1, 5, 33, 1), inverse, 0),  # accepted
        (ops.inverse_stft, complex_zeros(1, 5, 30, 1), inverse, 0),  # wrong bin count
        (ops.inverse_stft, complex_zeros(1, 0, 33, 1), inverse, 0),  # no frames
        (ops.inverse_stft, torch.zeros(1, 5, 33, 1), inverse, 0),
        (ops.inverse_stft, complex_zeros(5, 33, 1), inverse, 0),
    ]
    refused = 0
    for operator, tensor, arguments, threads in cases:
        expected = _outcome(operator, tensor, arguments, threads)
        refused += isinstance(expected[1], str)
        meta = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device='meta')
        assert _outcome(operator, meta, arguments, threads) == expected
        with FakeTensorMode() as mode:
            fake_arguments = [
                mode.from_tensor(value) if isinstance(value, torch.Tensor) else value
                for value in arguments
            ]
            assert _outcome(operator, mode.from_tensor(tensor), fake_arguments, threads) == expected
    assert refused == len(cases) - 3


def test_an_exported_program_runs_in_a_fresh_process(tmp_path):
    """torch.export keeps each front end's window and bands as constants of the program, so a
    process that loads it needs only the operators (`import kapre_fast.torch`)."""
    save = f"""
import torch, kapre_fast.torch as kft
kft.stft(torch.zeros(1, 300, 1), n_fft=32)  # a plan this process makes first, the loader not
layer = kft.MelSpectrogram(n_fft=64, hop_length=16, n_mels=8, sample_rate=8000)
class Model(torch.nn.Module):
    def forward(self, x):
        mel = kft.melspectrogram(x, n_fft=64, hop_length=16, n_mels=8, sample_rate=8000,
                                 compat='librosa')
        return mel, kft.istft(kft.stft(x, n_fft=64, hop_length=16), n_fft=64, hop_length=16)
x = torch.randn(2, 400, 1, generator=torch.Generator().manual_seed(0))
torch.export.save(torch.export.export(Model(), (x,)), {str(tmp_path / 'model.pt2')!r})
torch.save((x, Model()(x), layer(x)), {str(tmp_path / 'eager.pt')!r})
torch.save(layer, {str(tmp_path / 'layer.pt')!r})  # a pickled module, too
"""
    load = f"""
import torch, kapre_fast.torch
program = torch.export.load({str(tmp_path / 'model.pt2')!r})
x, eager, layered = torch.load({str(tmp_path / 'eager.pt')!r})
for ours, expected in zip(program.module()(x), eager, strict=True):
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
layer = torch.load({str(tmp_path / 'layer.pt')!r}, weights_only=False)
torch.testing.assert_close(layer(x), layered, rtol=0, atol=0)
"""
    for code in (save, load):
        result = subprocess.run(
            [sys.executable, '-c', code], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]


def test_front_ends_first_used_on_many_threads_at_once():
    """Plans made concurrently each get their own arguments (a plan names a slot)."""
    from concurrent.futures import ThreadPoolExecutor

    x = audio(700, 1, seed=21)
    sizes = [40 + 2 * i for i in range(24)]  # front ends no other test makes

    def run(n_fft):
        return kft.stft_magnitude(torch.from_numpy(x), n_fft=n_fft, hop_length=17).numpy()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, sizes))
    for n_fft, result in zip(sizes, results, strict=True):
        np.testing.assert_array_equal(result, cpu.stft_magnitude(x, n_fft=n_fft, hop_length=17))


def test_modules_compute_the_functions_and_train():
    torch.manual_seed(0)
    module = kft.MelSpectrogram(
        n_fft=256, hop_length=128, sample_rate=8000, n_mels=16, return_decibel=True, threads=1
    )
    assert 'n_mels=16' in repr(module)
    assert list(inspect.signature(kft.MelSpectrogram).parameters)[-1] == 'threads'
    x = torch.from_numpy(audio(2048, 1, seed=10))
    np.testing.assert_array_equal(
        module(x).numpy(),
        kft.melspectrogram(
            x, n_fft=256, hop_length=128, sample_rate=8000, n_mels=16, return_decibel=True
        ).numpy(),
    )
    for cls, family in [
        (kft.STFTMagnitude, 'stft_magnitude'),
        (kft.STFTMagPhase, 'stft_mag_phase'),
        (kft.LogFrequencySpectrogram, 'log_frequency_spectrogram'),
        (kft.STFT, 'stft'),
    ]:
        kwargs = (
            dict(n_fft=256, sample_rate=8000, log_n_bins=12, log_f_min=300.0)
            if family == 'log_frequency_spectrogram'
            else dict(n_fft=256)
        )
        np.testing.assert_array_equal(
            cls(**kwargs)(x).numpy(), getattr(cpu, family)(x.numpy(), **kwargs)
        )
    inverse = kft.InverseSTFT(n_fft=256)
    X = kft.STFT(n_fft=256)(x)
    np.testing.assert_array_equal(inverse(X).numpy(), cpu.istft(X.numpy(), n_fft=256))

    # Two tones told apart by a linear layer on the mel frames.
    t = torch.arange(2048) / 8000
    labels = torch.arange(16) % 2
    tones = torch.sin(2 * np.pi * torch.where(labels[:, None] == 1, 1500.0, 300.0) * t)
    batch = (tones + 0.1 * torch.randn(16, 2048))[:, :, None]
    model = torch.nn.Sequential(module, torch.nn.Flatten(), torch.nn.Linear(15 * 16, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ----- imports and the GPU ----------------------------------------------------------------------


def test_import_kapre_fast_does_not_import_torch_and_the_extra_is_named():
    code = (
        'import sys, kapre_fast, kapre_fast.cpu, kapre_fast.reference\n'
        'assert "torch" not in sys.modules, "torch imported"\n'
        'sys.modules["torch"] = None\n'
        'try:\n'
        '    import kapre_fast.torch\n'
        'except ImportError as error:\n'
        '    print(error)\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    from kapre_fast._loader import pip_install_hint

    assert pip_install_hint('torch') in result.stdout  # a hint that works when copied


def _torch_cuda_kernels():
    """'' when the compiled library's CUDA kernels can run here, else why not."""
    from kapre_fast import _loader

    if not torch.cuda.is_available():
        return 'no CUDA device for torch'
    if not _loader.build_info().get('torch_cuda', False):
        return 'kapre_fast was built without the CUDA kernels (no nvcc at build time)'
    return ''


@pytest.mark.gpu
@pytest.mark.skipif(bool(_torch_cuda_kernels()), reason=_torch_cuda_kernels() or 'ok')
def test_cuda_tensors_run_the_cuda_kernels():
    x = audio(20000, 2, seed=11)
    kwargs = dict(n_fft=1024, hop_length=256, n_mels=64, return_decibel=True)
    on_gpu = torch.from_numpy(x).cuda().requires_grad_(True)
    ours = kft.melspectrogram(on_gpu, **kwargs)
    assert ours.device == on_gpu.device
    expected = cpu.melspectrogram(x, **kwargs)
    assert np.percentile(np.abs(ours.detach().cpu().numpy() - expected), 99.9) < 0.01
    ours.sum().backward()
    assert on_gpu.grad.device == on_gpu.device and torch.isfinite(on_gpu.grad).all()
    X = kft.stft(on_gpu.detach(), n_fft=1024, pad_begin=True, pad_end=True)
    torch.testing.assert_close(
        kft.istft(X, n_fft=1024)[:, :20000].cpu(), torch.from_numpy(x), atol=1e-5, rtol=0
    )


@pytest.mark.gpu
@pytest.mark.skipif(bool(_torch_cuda_kernels()), reason=_torch_cuda_kernels() or 'ok')
def test_cuda_operators_run_on_torchs_current_stream_without_copies():
    ops = torch.ops.kapre_fast
    x = torch.from_numpy(audio(5000, 2, 'channels_first', seed=12))
    for family in FAMILIES:
        spec = getattr(FrontEnd, family)(
            n_fft=256, hop_length=64, input_data_format='channels_first', **FAMILY_ARGS[family]
        )
        arguments = kft._ops.front_end_arguments(spec)
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            on_gpu = x.cuda()
            assert ops.cuda_stream_of(on_gpu) == stream.cuda_stream != 0
            result, calls = _aten_calls(lambda: ops.front_end(on_gpu, *arguments, 0))
            assert not {'aten::copy_', 'aten::clone', 'aten::_to_copy'} & set(calls)
            ours = result.cpu()  # ordered after the kernels on this stream
        expected = cpu.compute(spec, x.numpy())
        assert ours.dtype == torch.from_numpy(expected).dtype and ours.shape == expected.shape
        ours = ours.numpy()
        if spec.output == 'mag_phase':  # the magnitudes: a phase of +-pi may flip at DC
            ours, expected = ours[..., :2], expected[..., :2]
        tolerance = 0.05 if spec.return_decibel else 1e-3
        assert np.percentile(np.abs(ours - expected), 99.9) < tolerance, family
    with pytest.raises(ValueError, match='audio must have 3 axes'):
        ops.front_end(torch.zeros(5000, device='cuda'), *arguments, 0)
    inverse = kft._ops.inverse_stft_arguments(FrontEnd.stft(n_fft=256))
    X = kft.stft(x.transpose(1, 2).contiguous(), n_fft=256, pad_begin=True, pad_end=True)
    waveforms = ops.inverse_stft(X.cuda(), *inverse, 0).cpu()
    np.testing.assert_allclose(
        waveforms.numpy(), ops.inverse_stft(X, *inverse, 0).numpy(), atol=1e-5
    )
