"""The front-end functions of kapre_fast.reference, cpu and gpu (kapre_fast/_api.py) and the input
policy they share (kapre_fast.spec: check_audio_dtype, layout_input).

Signatures are held to kapre's own (kapre.composed's getters, kapre's STFT layer), docstrings
must describe every argument, and each backend must take the same dtypes and refuse the same
inputs with errors that say what to do. kapre_fast.gpu runs here on the host stand-ins of
tests/test_gpu_emulation.py (fake CuPy, the emulated kernels); tests/test_gpu.py covers CuPy.
"""

import importlib
import inspect

import numpy as np
import pytest

from helpers import kapre_output, peak_relative_error
from kapre_fast import FrontEnd, _api

try:  # kapre_fast.gpu on host stand-ins: the fixture host_gpu and its array type
    from test_gpu_emulation import FakeDeviceArray, host_gpu  # noqa: F401
except pytest.skip.Exception:  # a build without the GPU emulation
    host_gpu = None

FUNCTIONS = [
    'stft_magnitude',
    'melspectrogram',
    'log_frequency_spectrogram',
    'stft_mag_phase',
    'stft',
]
# Per backend: keyword arguments beyond kapre's, result dtypes (real, complex).
EXTRAS = {'reference': (), 'cpu': ('threads', 'out'), 'gpu': ()}
DTYPES = {
    'reference': ('float64', 'complex128'),
    'cpu': ('float32', 'complex64'),
    'gpu': ('float32', 'complex64'),
}
SPEC = dict(n_fft=256, hop_length=64, input_data_format='channels_last')


class Backend:
    """One backend module and how to hand it host arrays and read its results back."""

    def __init__(self, name, module):
        self.name, self.module = name, module

    def put(self, array):
        return array.view(FakeDeviceArray) if self.name == 'gpu' else array

    def call(self, function, x, **kwargs):
        return np.asarray(getattr(self.module, function)(self.put(x), **kwargs))


@pytest.fixture(params=sorted(EXTRAS))
def backend(request):
    if request.param == 'gpu':
        if host_gpu is None:
            pytest.skip('kapre_fast was built without its GPU emulation module')
        return Backend('gpu', request.getfixturevalue('host_gpu'))
    return Backend(request.param, importlib.import_module(f'kapre_fast.{request.param}'))


def kapres(function):
    """kapre's function for a backend function: its composed getter, or the STFT layer."""
    if function == 'stft':
        return pytest.importorskip('kapre.time_frequency').STFT.__init__
    return getattr(
        pytest.importorskip('kapre.composed'),
        f'get_{function}' + ('' if function == 'stft_mag_phase' else '_layer'),
    )


def integer_valued_audio(n_examples=2, n_samples=3000, n_channels=2):
    """float32 (batch, time, channels) noise rounded to integers within int16's range, so that
    every integer and float dtype holds exactly the same values."""
    rng = np.random.default_rng(5)
    return (
        np.round(rng.standard_normal((n_examples, n_samples, n_channels)) * 3000)
        .clip(-32768, 32767)
        .astype(np.float32)
    )


# ----- signatures and docstrings ---------------------------------------------------------------


@pytest.mark.parametrize('function', FUNCTIONS)
def test_signature_lists_kapres_arguments_and_defaults(backend, function):
    skipped = ('self', 'input_shape', 'name', 'kwargs')
    expected = [
        (p.name, p.default)
        for p in inspect.signature(kapres(function)).parameters.values()
        if p.name not in skipped
    ]
    parameters = list(inspect.signature(getattr(backend.module, function)).parameters.values())
    assert parameters[0].name == 'x' and parameters[0].default is inspect.Parameter.empty
    ours = [(p.name, p.default) for p in parameters[1:]]
    # kapre's arguments first, then the presets' (issue #15), then the backend's own.
    presets = [(p.name, p.default) for p in FrontEnd.preset_signature().parameters.values()]
    assert ours == expected + presets + [(extra, None) for extra in EXTRAS[backend.name]]
    assert {p.kind for p in parameters[1:]} == {inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize('function', FUNCTIONS)
def test_docstring_describes_every_argument_and_the_shapes(backend, function):
    python_function = getattr(backend.module, function)
    assert (python_function.__name__, python_function.__module__) == (
        function,
        f'kapre_fast.{backend.name}',
    )
    doc = inspect.getdoc(python_function)
    for name in inspect.signature(python_function).parameters:
        assert f'\n    {name}: ' in doc, name
    real, complex_ = DTYPES[backend.name]
    assert f'of {complex_ if function == "stft" else real}:' in doc
    assert '(batch, time, channels)' in doc and '(batch, channels, time)' in doc
    features = {'melspectrogram': 'n_mels', 'log_frequency_spectrogram': 'log_n_bins'}.get(
        function, 'n_fft // 2 + 1'
    )
    assert f'(batch, frames, {features}, ' in doc
    assert 'integers taken unscaled' in doc


def test_every_documented_argument_exists():
    """The table of descriptions holds no argument that no function takes."""
    taken = {'threads', 'out'}.union(
        FrontEnd.preset_signature().parameters,
        *(FrontEnd.kapre_signature(f).parameters for f in FUNCTIONS),
    )
    assert set(_api.ARGUMENTS) == taken


@pytest.mark.parametrize(
    'function, kwargs',
    [
        ('melspectrogram', dict(n_fft=256, hop_length=64, n_mels=40, return_decibel=True)),
        (
            'log_frequency_spectrogram',
            dict(n_fft=512, hop_length=128, log_n_bins=48, output_data_format='channels_first'),
        ),
        ('stft_mag_phase', dict(n_fft=200, win_length=160, pad_begin=True, pad_end=True)),
        ('stft', dict(n_fft=256, window_name='vorbis_window')),
    ],
)
def test_functions_compute_the_front_end_of_their_arguments(backend, function, kwargs):
    x = integer_valued_audio() / 3000
    spec = getattr(FrontEnd, function)(input_data_format='channels_last', **kwargs)
    expected = np.asarray(backend.module.compute(spec, backend.put(x)))
    ours = backend.call(function, x, input_data_format='channels_last', **kwargs)
    np.testing.assert_array_equal(ours, expected)


def test_cpu_extras_reach_compute():
    from kapre_fast import cpu

    x = integer_valued_audio()
    expected = cpu.melspectrogram(x, **SPEC)
    out = np.full_like(expected, np.nan)
    assert cpu.melspectrogram(x, **SPEC, threads=1, out=out) is out
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match='threads'):
        cpu.melspectrogram(x, **SPEC, threads=0)


def test_unknown_keywords_and_positional_arguments_are_named(backend):
    x = integer_valued_audio()
    with pytest.raises(
        TypeError,
        match=rf'kapre_fast\.{backend.name}\.melspectrogram\(\) got '
        'unexpected keyword argument.*n_mel, window;',
    ):
        backend.call('melspectrogram', x, n_mel=64, window='hann_window')
    with pytest.raises(
        TypeError,
        match='only positional argument, got 2; pass the others by '
        r'keyword \(n_fft',
    ):
        backend.module.stft_magnitude(backend.put(x), 256)
    if backend.name != 'cpu':  # cpu's extras are not everyone's
        with pytest.raises(TypeError, match='threads'):
            backend.call('stft', x, n_fft=256, threads=2)


# ----- the dtype policy --------------------------------------------------------------------------


@pytest.mark.parametrize('dtype', [np.int16, np.int32, np.float64, np.float16])
def test_integers_unscaled_and_other_floats_give_the_float32_result(backend, dtype):
    x = integer_valued_audio()
    if dtype == np.float16:
        x = np.round(x / 16)  # float16 holds integers exactly only up to 2048
    expected = backend.call('melspectrogram', x, **SPEC, return_decibel=True)
    np.testing.assert_array_equal(
        backend.call('melspectrogram', x.astype(dtype), **SPEC, return_decibel=True), expected
    )


def test_integers_are_taken_unscaled_as_kapre_takes_them():
    from kapre_fast import cpu

    pytest.importorskip('kapre')
    ints = integer_valued_audio(n_channels=1).astype(np.int16)
    kapre = kapre_output('stft_magnitude', ints, **SPEC)
    assert peak_relative_error(cpu.stft_magnitude(ints, **SPEC), kapre) <= 1e-4
    # Scaled to [-1, 1) the peak would be 32768 times smaller.
    assert np.abs(kapre).max() > 1000


@pytest.mark.parametrize('dtype', [np.bool_, np.complex64, np.object_, np.str_])
def test_other_dtypes_are_refused_naming_audio_and_the_dtype(backend, dtype):
    x = integer_valued_audio().astype(dtype)
    with pytest.raises(TypeError, match=rf'audio must be a real .*got dtype {x.dtype}'):
        backend.call('stft_magnitude', x, **SPEC)


# ----- shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'data_format, shape, hint, suggested',
    [
        (
            'channels_last',
            (3000,),
            r'for one mono signal pass x\[None, :, None\]',
            lambda x: x[None, :, None],
        ),
        (
            'channels_first',
            (3000,),
            r'for one mono signal pass x\[None, None, :\]',
            lambda x: x[None, None, :],
        ),
        (
            'channels_last',
            (2, 3000),
            r'mono signals \(batch, time\) pass x\[:, :, None\], for one '
            r'signal \(time, channels\) pass x\[None\]',
            lambda x: x[:, :, None],
        ),
        (
            'channels_first',
            (2, 3000),
            r'mono signals \(batch, time\) pass x\[:, None, :\], for one '
            r'signal \(channels, time\) pass x\[None\]',
            lambda x: x[:, None, :],
        ),
    ],
    ids=['1d-last', '1d-first', '2d-last', '2d-first'],
)
def test_audio_without_three_axes_gets_the_reshape_to_make(
    backend, data_format, shape, hint, suggested
):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=rf'audio must have 3 axes .*got shape .*; .*{hint}'):
        backend.call('melspectrogram', x, n_fft=256, input_data_format=data_format)
    # The suggestion is right: one example per signal, one channel each.
    result = backend.call(
        'melspectrogram',
        suggested(x),
        n_fft=256,
        input_data_format=data_format,
        output_data_format='channels_first',
    )
    assert result.shape[:2] == (len(x) if x.ndim == 2 else 1, 1)


def test_module_docstrings_list_the_backends_the_package_has():
    """kapre_fast.BACKENDS is _api's list of backend modules; the package docstring and the
    README's backends table name each of them, and every module has the five functions."""
    import pathlib

    import kapre_fast

    assert {f'kapre_fast.{name}' for name in kapre_fast.BACKENDS} == set(_api.BACKENDS)
    for name in kapre_fast.BACKENDS:
        assert f'`kapre_fast.{name}`' in kapre_fast.__doc__, name
    readme = pathlib.Path(__file__).resolve().parents[1] / 'README.md'
    if readme.exists():  # a checkout (not an installed wheel's tests)
        for name in kapre_fast.BACKENDS:
            assert f'`kapre_fast.{name}`' in readme.read_text(), name
    for name in ('reference', 'cpu'):  # no optional framework needed
        module = importlib.import_module(f'kapre_fast.{name}')
        assert all(callable(getattr(module, function)) for function in FUNCTIONS)
    assert 'five backends' in kapre_fast.__doc__ and len(kapre_fast.BACKENDS) == 5
