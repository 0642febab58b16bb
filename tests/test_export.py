"""kapre_fast.export and `kapre-fast export`: a model with fused kapre_fast layers made portable
(same names and weights, builtin ops), then served as a SavedModel by a process that never imports
kapre_fast, run by LiteRT (TFLite builtins only) at two batch sizes and two lengths, and by
onnxruntime, each with the fused model's numbers, and converted with a static length (the builtin
path's time chunks); the reconstructing STFT/iSTFT pair on TFLite and ONNX.

Conversions are slow: each model is converted once per module.
"""

import functools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import decibel_error, record_agreement, to_input_layout

tf = pytest.importorskip('tensorflow')
keras = pytest.importorskip('keras')

import kapre_fast  # noqa: E402
from kapre_fast import builtin, composed, export, layers  # noqa: E402
from kapre_fast.cli import main as cli_main  # noqa: E402  (the entry point function)

# The fused model's dB features against a converted one's, over the top 50 dB of each example:
# test_backends' floor (a few float32 roundings of the dB values).
DECIBEL_TOLERANCE = 0.01
DECIBEL_RANGE = 50.0
SHAPES = [(1, 8000), (5, 12345)]  # (batch, samples): two batch sizes, two lengths


@pytest.fixture(scope='module')
def model():
    """Stereo audio of any length > a trainable channel mix > mel spectrogram in dB (fused)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 2), name='audio')
    mix = keras.layers.Dense(2, use_bias=False, name='mix')(inputs)
    mel = composed.get_melspectrogram_layer(
        n_fft=512,
        hop_length=160,
        n_mels=40,
        sample_rate=16000,
        return_decibel=True,
        input_data_format='channels_last',
        output_data_format='channels_last',
        name='mel',
    )
    return keras.Model(inputs, mel(mix), name='front_end_model')


@pytest.fixture(scope='module')
def audio(speech):
    """{(batch, samples): float32 (batch, samples, 2) speech}."""
    import helpers

    return {
        shape: to_input_layout(
            helpers.speech_batch(speech, *shape, n_channels=2, seed=i), 'channels_last'
        )
        for i, shape in enumerate(SHAPES)
    }


def _assert_same_numbers(name, actual, expected):
    assert actual.shape == expected.shape
    error = decibel_error(actual, expected, percentile=100, within=DECIBEL_RANGE)
    record_agreement(f'{name} vs fused, dB (top 50 dB)', error)
    assert error <= DECIBEL_TOLERANCE, f'{name}: {error:.3g} dB from the fused model'


def test_portable_keeps_names_weights_and_numbers(model, audio):
    clone = export.portable(model)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    for ours, theirs in zip(clone.weights, model.weights, strict=True):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert {layer.implementation for layer in export.kapre_fast_layers(clone)} == {'builtin'}
    assert {layer.implementation for layer in export.kapre_fast_layers(model)} == {'fused'}
    for shape, x in audio.items():
        _assert_same_numbers(f'portable {shape}', clone(x).numpy(), model(x).numpy())


def test_portable_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match='keras.Model'):
        export.portable(layers.FrontEnd(n_fft=256))


def _run_python(code, *args):
    """Runs `code` in a fresh Python that can import this checkout's kapre_fast; its stdout."""
    package_root = str(Path(kapre_fast.__file__).resolve().parents[1])
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    environment['PYTHONPATH'] = os.pathsep.join(
        [package_root] + [p for p in environment.get('PYTHONPATH', '').split(os.pathsep) if p]
    )
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_savedmodel_is_served_by_a_process_without_kapre_fast(model, audio, tmp_path):
    x = audio[SHAPES[1]]
    np.save(tmp_path / 'x.npy', x)
    export.to_savedmodel(model, tmp_path / 'portable')
    model.export(str(tmp_path / 'fused'), verbose=False)
    stdout = _run_python(
        """
        import sys, pathlib, numpy as np, tensorflow as tf
        folder = pathlib.Path(sys.argv[1])
        served = tf.saved_model.load(str(folder / 'portable'))
        np.save(folder / 'y.npy', served.serve(tf.constant(np.load(folder / 'x.npy'))).numpy())
        try:  # the fused model's SavedModel needs our op library: it must not load here
            tf.saved_model.load(str(folder / 'fused'))
        except Exception as error:
            print('fused refused:', type(error).__name__, str(error)[:200])
        assert 'kapre_fast' not in sys.modules, 'kapre_fast was imported'
    """,
        tmp_path,
    )
    assert 'fused refused' in stdout and 'KapreFast' in stdout
    _assert_same_numbers('SavedModel', np.load(tmp_path / 'y.npy'), model(x).numpy())


@pytest.fixture(scope='module')
def tflite_model(model):
    pytest.importorskip('ai_edge_litert')
    return export.to_tflite(model)


@pytest.mark.parametrize('shape', SHAPES)
def test_tflite_builtins_run_any_batch_and_length(model, audio, tflite_model, shape):
    x = audio[shape]
    _assert_same_numbers(f'TFLite {shape}', export.run_tflite(tflite_model, x), model(x).numpy())


def tflite_operators(flatbuffer: bytes) -> list:
    """The builtin operator names of a TFLite model's main subgraph, in execution order, read
    from the flatbuffer (LiteRT's schema)."""
    schema = pytest.importorskip('ai_edge_litert.schema_py_generated')
    model = schema.Model.GetRootAs(flatbuffer, 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    codes = [
        max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
        for i in range(model.OperatorCodesLength())
    ]
    graph = model.Subgraphs(0)
    return [names[codes[graph.Operators(i).OpcodeIndex()]] for i in range(graph.OperatorsLength())]


def constant_bytes(flatbuffer: bytes) -> int:
    """The bytes of a TFLite model's buffers (its constants: tables, filterbank, weights)."""
    schema = pytest.importorskip('ai_edge_litert.schema_py_generated')
    model = schema.Model.GetRootAs(flatbuffer, 0)
    return sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()))


@pytest.mark.parametrize('n_fft, win_length, hop', [(512, 400, 160), (1024, 1024, 256)])
def test_tflite_keeps_the_frames_last_through_the_fft(n_fft, win_length, hop):
    # to_tflite converts inside builtin.frames_last_stages and builtin.xnnpack_stages: every
    # stage a BATCH_MATMUL with its table on the left, the frames slices of whole blocks and a
    # CONCATENATION per part of the first stage (no GATHER of frames, which LiteRT runs in its
    # reference kernel), re^2 + im^2 one SUM over the re|im axis, each group of 16 mel bands a
    # GATHER of its rows and a FULLY_CONNECTED (40 bands: three). Config B's framing (16 x 4 x 8
    # for a dB output) sums 15 samples in stage 1: one part; n_fft 1024 at hop 256 (32 x 4 x 8)
    # sums 32, in two parts (builtin._MAX_CHAIN): a BATCH_MATMUL each, added by ADD.
    pytest.importorskip('ai_edge_litert')
    kwargs = dict(n_fft=n_fft, win_length=win_length, hop_length=hop, n_mels=40)
    layer = composed.get_melspectrogram_layer(**kwargs, return_decibel=True)
    inputs = keras.Input((None, 1))
    operators = tflite_operators(export.to_tflite(keras.Model(inputs, layer(inputs))))
    plan = builtin._fft_plan(kapre_fast.FrontEnd.melspectrogram(**kwargs, return_decibel=True))
    parts, stages = len(plan.parts), 3 if plan.q > 1 else 2
    assert (parts, stages) == ((1, 3) if n_fft == 512 else (2, 3))
    groups = -(-40 // builtin._BAND_GROUP)
    assert operators.count('FULLY_CONNECTED') == groups and operators.count('SUM') == 1, operators
    assert operators.count('GATHER') == groups, operators
    assert 'ADD_N' not in operators, operators
    assert operators.count('BATCH_MATMUL') == parts + stages - 1, operators
    assert operators.count('CONCATENATION') == parts + 1, operators  # and the bands'


@pytest.mark.parametrize(
    'layout, compat',
    [('channels_last', 'kapre'), ('channels_first', 'kapre'), ('channels_last', 'librosa')],
)
def test_tflite_three_stage_fft_gathers_and_keeps_the_fused_numbers(layout, compat):
    # n_fft 4096 at hop 1024 is a three-stage plan (32 x 8 x 16): its frames slices of whole
    # blocks, concatenated (builtin.xnnpack_stages), the bins one GATHER of rows back into order,
    # every stage a BATCH_MATMUL;
    # magnitudes (librosa's preset: centred frames, power) in natural bin order.
    pytest.importorskip('ai_edge_litert')
    layer = composed.get_stft_magnitude_layer(
        n_fft=4096,
        hop_length=1024,
        input_data_format=layout,
        output_data_format=layout,
        compat=compat,
        name='stft',
    )
    shape = (None, 2) if layout == 'channels_last' else (2, None)
    inputs = keras.Input(shape, name='audio')
    model = keras.Model(inputs, layer(inputs))
    flatbuffer = export.to_tflite(model)
    operators = tflite_operators(flatbuffer)
    assert operators.count('BATCH_MATMUL') == 3 and operators.count('GATHER') == 1, operators
    for batch, samples in [(1, 9000), (3, 20001)]:
        x = np.random.default_rng(samples).standard_normal((batch, 2, samples)).astype(np.float32)
        x = to_input_layout(x, layout)  # (batch, channels, time) in the model's layout
        expected = model(x).numpy()
        actual = export.run_tflite(flatbuffer, x)
        assert actual.shape == expected.shape
        error = float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
        record_agreement('TFLite three-stage STFT magnitude vs fused / peak', error)
        assert error <= 1e-6, error


def test_tflite_first_stage_in_parts_keeps_quiet_bands_near_float64():
    # A dB log-frequency spectrogram at n_fft 1024, hop 256 (bench config D, 32 x 4 x 8 for a
    # dB output): its first stage sums 32 samples, in two parts of 16 (builtin._MAX_CHAIN) on
    # every target. Against float64, the 99.9th percentile of the dB error (the largest is one
    # outlier bin or another): TFLite 1.08x the fused op's on these chirps (1.15x as 64 x 16 in
    # two parts of 32; 1.5x when a depthwise convolution, the TFLite path of 2026-12-06, summed
    # the 64 in one). Exponential chirps with noise 40 dB down, as bench/configs.
    pytest.importorskip('ai_edge_litert')
    from kapre_fast import reference

    kwargs = dict(n_fft=1024, hop_length=256, sample_rate=16000, return_decibel=True)
    kwargs.update(input_data_format='channels_last', output_data_format='channels_last')
    layer = composed.get_log_frequency_spectrogram_layer(**kwargs)
    inputs = keras.Input((None, 1))
    model = keras.Model(inputs, layer(inputs))
    spec = kapre_fast.FrontEnd.log_frequency_spectrogram(**kwargs)
    assert len(builtin._fft_plan(spec).parts) == 2
    rng, sr = np.random.default_rng(3), 16000
    t = np.arange(sr) / sr
    rate = np.log(0.45 * sr / 40.0)
    phase = 2 * np.pi * 40.0 * np.expm1(rate * t) / rate + rng.uniform(0, 2 * np.pi, (16, 1))
    amplitude = rng.uniform(0.3, 0.9, (16, 1))
    x = amplitude * (np.sin(phase) + 0.01 * rng.standard_normal((16, t.size)))
    x = x[..., np.newaxis].astype(np.float32)
    truth = reference.compute(spec, x.astype(np.float64))

    def error(y):
        return float(np.quantile(np.abs(y - truth), 0.999))

    share = error(export.run_tflite(export.to_tflite(model), x)) / error(model(x).numpy())
    record_agreement("TFLite D, 99.9th pct. dB error vs float64 / the fused op's", share)
    assert share <= 1.3, share


# float16 weights round the DFT tables to 11 bits: spectral leakage some 60-70 dB below each
# frame's peak, so the quietest bands of the top 50 dB move by up to a dB or two (measured: 1.4
# dB on this speech; 0.2-0.7 dB on bench configs A and B over their whole 80 dB).
FLOAT16_DECIBEL_TOLERANCE = 2.0


def test_tflite_float16_weights_halve_the_model_and_keep_the_top_of_the_spectrum(
    model, audio, tflite_model
):
    half = export.to_tflite(model, quantize='float16')
    assert constant_bytes(half) < 0.55 * constant_bytes(tflite_model)
    x = audio[SHAPES[1]]
    expected = model(x).numpy()
    error = decibel_error(export.run_tflite(half, x), expected, percentile=100, within=50.0)
    record_agreement('TFLite float16 weights vs fused, dB (top 50 dB)', error)
    float32 = decibel_error(export.run_tflite(tflite_model, x), expected, 100, within=50.0)
    assert float32 < error <= FLOAT16_DECIBEL_TOLERANCE, (float32, error)


def test_tflite_refuses_an_unknown_quantisation(model):
    with pytest.raises(ValueError, match="quantize must be None or one of 'dynamic', 'float16'"):
        export.to_tflite(model, quantize='int4')


@pytest.fixture(scope='module')
def onnx_model(model):
    pytest.importorskip('tf2onnx')
    pytest.importorskip('onnxruntime')
    proto = export.to_onnx(model)
    assert proto.opset_import[0].version >= export.ONNX_OPSET
    return proto


def test_onnx_keeps_the_frames_last_through_the_fft(model, onnx_model, monkeypatch):
    # to_onnx traces inside builtin.frames_last_stages: fewer Transpose nodes than the same
    # model converted in the usual layout (frames_last_stages(False): its stages move the
    # spectrum between them), not
    # counting those that only feed a MatMul (a matmul's adjoint operand: onnxruntime fuses
    # them into FusedMatMul).
    def transposes(proto):
        consumers = {}
        for node in proto.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        return sum(
            node.op_type == 'Transpose' and set(consumers.get(node.output[0], [])) != {'MatMul'}
            for node in proto.graph.node
        )

    usual = functools.partial(builtin.frames_last_stages, False)
    monkeypatch.setattr(export.builtin, 'frames_last_stages', usual)
    assert transposes(onnx_model) < transposes(export.to_onnx(model))


@pytest.mark.parametrize('shape', SHAPES)
def test_onnx_runs_in_onnxruntime(model, audio, onnx_model, shape):
    x = audio[shape]
    _assert_same_numbers(f'ONNX {shape}', export.run_onnx(onnx_model, x), model(x).numpy())


@pytest.fixture(scope='module')
def static_length_model(model):
    """The model's layers (its weights) on a static length, SHAPES[1]'s 12345 samples: 74 frames,
    which the builtin path computes in 3 time chunks (builtin.CHUNK_FRAMES 32; an unknown
    length, as the model's own, is one chunk)."""
    inputs = keras.Input((SHAPES[1][1], 2), name='audio')
    return keras.Model(inputs, model.get_layer('mel')(model.get_layer('mix')(inputs)))


# The matmul operators of each target: the mix layer's one, and each time chunk's FFT stages
# and filterbank.
_MATMULS = {
    'tflite': lambda flatbuffer: sum(
        name in ('BATCH_MATMUL', 'FULLY_CONNECTED') for name in tflite_operators(flatbuffer)
    ),
    'onnx': lambda proto: sum(
        node.op_type in ('MatMul', 'FusedMatMul', 'Gemm') for node in proto.graph.node
    ),
}


@pytest.mark.parametrize('converter', ['tflite', 'onnx'])
def test_a_static_length_converts_in_time_chunks_with_the_fused_numbers(
    converter, model, static_length_model, audio, request
):
    # The converted model repeats the one-chunk model's FFT and filterbank per time chunk, and
    # keeps the fused numbers across the chunks' boundaries.

    one_chunk = request.getfixturevalue(f'{converter}_model')  # the unknown-length conversion
    frames = static_length_model.output.shape[1]
    chunks = -(-frames // builtin.CHUNK_FRAMES)
    assert chunks >= 3, frames
    x = audio[SHAPES[1]]
    if converter == 'tflite':
        converted = export.to_tflite(static_length_model)
        actual = export.run_tflite(converted, x)
    else:
        converted = export.to_onnx(static_length_model)
        actual = export.run_onnx(converted, x)
    count = _MATMULS[converter]
    assert count(converted) - 1 == chunks * (count(one_chunk) - 1), (chunks, count(one_chunk))
    _assert_same_numbers(f'{converter} static length, {chunks} chunks', actual, model(x).numpy())


@pytest.mark.parametrize('converter', ['tflite', 'onnx'])
def test_a_preset_model_converts_with_the_fused_numbers(converter, audio):
    # librosa's MFCC with reflect centring: tf.pad REFLECT (TFLite MIRROR_PAD, ONNX Pad reflect),
    # power, power_to_db with top_db, then the DCT matmul.
    if converter == 'tflite':
        pytest.importorskip('ai_edge_litert')
    else:
        pytest.importorskip('tf2onnx')
        pytest.importorskip('onnxruntime')
    inputs = keras.Input((None, 2), name='audio')
    mfcc = composed.get_mfcc_layer(
        n_mfcc=13,
        n_fft=512,
        hop_length=160,
        n_mels=40,
        sample_rate=16000,
        compat='librosa',
        pad_mode='reflect',
        input_data_format='channels_last',
        output_data_format='channels_last',
        name='mfcc',
    )
    model = keras.Model(inputs, mfcc(inputs), name='preset_model')
    x = audio[SHAPES[1]]
    expected = model(x).numpy()
    if converter == 'tflite':
        actual = export.run_tflite(export.to_tflite(model), x)
    else:
        actual = export.run_onnx(export.to_onnx(model), x)
    assert actual.shape == expected.shape
    # MFCCs are DCTs of dB values: the same few-float32-roundings floor, on the coefficients.
    error = float(np.max(np.abs(actual - expected)))
    record_agreement(f'{converter} librosa MFCC vs fused, max |diff|', error)
    assert error <= 2e-3, error


@pytest.mark.parametrize('target', ['TFLite', 'ONNX'])
def test_reconstructing_pair_exported_gives_the_waveform_back(target):
    # The iSTFT's irfft as two matmuls (builtin._inverse_plan: n_fft 256 as 32 x 8), its
    # spectrum extended by a reversed slice (TFLite REVERSE_V2, ONNX ReverseSequence).
    pytest.importorskip('ai_edge_litert' if target == 'TFLite' else 'onnxruntime')
    n_fft, hop = 256, 64
    stft, istft = composed.get_perfectly_reconstructing_stft_istft(
        n_fft=n_fft,
        hop_length=hop,
        waveform_data_format='channels_last',
        stft_data_format='channels_first',
    )
    inputs = keras.Input((None, 1))
    model = keras.Model(inputs, istft(stft(inputs)))
    if target == 'TFLite':
        flatbuffer = export.to_tflite(model)

        def run(x):
            return export.run_tflite(flatbuffer, x)
    else:
        proto = export.to_onnx(model)

        def run(x):
            return export.run_onnx(proto, x)

    rng = np.random.default_rng(0)
    for batch, time in [(1, 3000), (3, 4321)]:
        x = rng.uniform(-1.0, 1.0, (batch, time, 1)).astype(np.float32)
        y = run(x)
        error = np.abs(y[:, n_fft - hop : n_fft - hop + time] - x).max()
        record_agreement(f'{target} STFT > iSTFT reconstruction / peak', error)
        assert error <= 2e-6, error  # a few float32 roundings of a peak of 1


# ----- the command ------------------------------------------------------------------------------


def _cli(*args):
    """`python -m kapre_fast.cli ARGS` (this checkout): (exit status, stdout, stderr)."""
    package_root = str(Path(kapre_fast.__file__).resolve().parents[1])
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=package_root)
    result = subprocess.run(
        [sys.executable, '-m', 'kapre_fast.cli', *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert 'Traceback' not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def test_cli_exports_a_keras_file_and_reports_the_difference(model, tmp_path):
    pytest.importorskip('ai_edge_litert')
    model.save(tmp_path / 'model.keras')
    status, stdout, stderr = _cli(
        'export', tmp_path / 'model.keras', '--format', 'tflite', '-o', tmp_path / 'model.tflite'
    )
    assert status == 0, stderr
    difference = float(re.search(r'largest difference to the fused model (\S+)', stdout)[1])
    assert difference <= DECIBEL_TOLERANCE
    x = np.zeros((2, 4000, 2), np.float32)  # 1 + (4000 - 512) // 160 = 22 frames
    assert export.run_tflite((tmp_path / 'model.tflite').read_bytes(), x).shape == (2, 22, 40, 2)


def test_cli_exports_a_model_without_kapre_fast_layers(tmp_path):
    plain = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3)])
    plain.save(tmp_path / 'plain.keras')
    status, stdout, stderr = _cli(
        'export', tmp_path / 'plain.keras', '--format', 'savedmodel', '-o', tmp_path / 'plain'
    )
    assert status == 0 and 'no kapre_fast layers' in stderr and 'largest difference' in stdout
    assert (tmp_path / 'plain' / 'saved_model.pb').exists()


@pytest.mark.parametrize(
    'content, message',
    [
        (b'not a model', 'not a Keras model'),
        (None, 'no such file'),
    ],
)
def test_cli_refuses_a_file_that_is_not_a_model(tmp_path, content, message):
    path = tmp_path / 'broken.keras'
    if content is not None:
        path.write_bytes(content)
    status, _, stderr = _cli('export', path, '--format', 'onnx', '-o', tmp_path / 'out.onnx')
    assert status != 0 and message in stderr and not (tmp_path / 'out.onnx').exists()


def test_cli_names_the_extra_of_a_missing_converter(model, tmp_path, monkeypatch, capsys):
    model.save(tmp_path / 'model.keras')
    monkeypatch.setitem(sys.modules, 'tf2onnx', None)  # import tf2onnx now raises ImportError
    status = cli_main(
        [
            'export',
            str(tmp_path / 'model.keras'),
            '--format',
            'onnx',
            '-o',
            str(tmp_path / 'out.onnx'),
        ]
    )
    from kapre_fast._loader import pip_install_hint

    assert status == 1 and pip_install_hint('export') in capsys.readouterr().err


def _main(capsys, *args):
    """The command's entry point in this process: (exit status, stdout, stderr)."""
    status = cli_main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_refuses_to_overwrite_the_model(model, tmp_path, capsys):
    model.save(tmp_path / 'model.keras')
    before = (tmp_path / 'model.keras').read_bytes()
    for format, output in [('tflite', tmp_path / 'model.keras'), ('savedmodel', tmp_path)]:
        status, _, stderr = _main(
            capsys, 'export', tmp_path / 'model.keras', '--format', format, '-o', output
        )
        assert status == 2 and 'would overwrite the model' in stderr, stderr
    assert (tmp_path / 'model.keras').read_bytes() == before  # was: replaced, exit 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ['model.keras']


def test_cli_checks_every_output_in_order(model, tmp_path, capsys):
    """Two outputs (TFLite lists them reversed): each is compared with its own."""
    pytest.importorskip('ai_edge_litert')
    mel = model.output
    two = keras.Model(model.input, [keras.layers.Rescaling(0.01, 3.0, name='scaled')(mel), mel])
    two.save(tmp_path / 'two.keras')
    status, stdout, stderr = _main(
        capsys,
        'export',
        tmp_path / 'two.keras',
        '--format',
        'tflite',
        '-o',
        tmp_path / 'two.tflite',
    )
    assert status == 0, stderr
    for index in (0, 1):
        found = re.search(
            rf'output {index}: largest difference to the fused model (\S+) '
            r'\(output peak (\S+)',
            stdout,
        )
        assert found and float(found[1]) <= DECIBEL_TOLERANCE, stdout
    peaks = [float(p) for p in re.findall(r'output peak (\S+),', stdout)]
    assert peaks[0] < peaks[1]  # the scaled output first, as in the model
    x = np.zeros((1, 4000, 2), np.float32) + 0.1
    outputs = export.run_tflite((tmp_path / 'two.tflite').read_bytes(), x)
    for got, want in zip(outputs, two(x), strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-3)


def test_cli_quantised_beyond_the_tolerance_exits_1_and_writes_nothing(model, tmp_path, capsys):
    pytest.importorskip('ai_edge_litert')
    model.save(tmp_path / 'model.keras')
    output = tmp_path / 'q.tflite'
    quantised = ('export', tmp_path / 'model.keras', '--format', 'tflite', '--quantize', 'dynamic')
    status, stdout, stderr = _main(capsys, *quantised, '-o', output)
    error = float(
        re.search(r'dynamic-range quantisation error to the fused model (\S+)', stdout)[1]
    )
    assert status == 1 and error > 1.0  # dB: was printed as a difference, exit 0
    assert 'quantisation error' in stderr and 'not written' in stderr and not output.exists()
    status, _, stderr = _main(capsys, *quantised, '--tolerance', str(2 * error), '-o', output)
    assert status == 0 and output.exists(), stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ['model.keras', 'q.tflite']


def test_cli_exports_float16_weights_and_reports_their_error(model, tmp_path, capsys):
    pytest.importorskip('ai_edge_litert')
    model.save(tmp_path / 'model.keras')
    output = tmp_path / 'half.tflite'
    status, stdout, stderr = _main(
        capsys,
        'export',
        tmp_path / 'model.keras',
        '--format',
        'tflite',
        '--quantize',
        'float16',
        '--tolerance',
        '1',
        '-o',
        output,
    )
    assert status == 0 and output.exists(), stderr
    error = float(
        re.search(r'float16-weight quantisation error to the fused model (\S+)', stdout)[1]
    )
    assert 0 < error <= FLOAT16_DECIBEL_TOLERANCE
    assert 'float16-weight quantisation); every output checked' in stdout
