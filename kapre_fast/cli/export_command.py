"""`kapre-fast export`: a Keras model with kapre_fast layers as a SavedModel, TFLite or ONNX
model that runs without kapre_fast, run once on a test signal and compared with the fused model.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np

from kapre_fast.cli.options import CliError, UsageError

FORMATS = ('savedmodel', 'tflite', 'onnx')
# Test signal length when the model leaves time unknown: 1.5 s at 16 kHz, enough for any front
# end up to builtin.MAX_N_FFT.
_DEFAULT_SAMPLES = 24000


def add_parser(sub):
    export = sub.add_parser(
        'export', help='a model with kapre_fast layers as SavedModel / TFLite / ONNX',
        description='Loads a Keras model (.keras), switches its kapre_fast layers to plain '
                    'TensorFlow ops (kapre_fast.export.portable: same layer names and weights) '
                    'and converts it: a SavedModel folder that any TensorFlow serves without '
                    'kapre_fast, a .tflite file of TFLite builtin ops (any batch size), or an '
                    '.onnx file (tf2onnx, opset 17). Then runs the result on a test signal '
                    '(LiteRT, onnxruntime or TensorFlow) and prints its largest difference to '
                    'the fused model. A model without kapre_fast layers is exported as it is.',
        epilog='TFLite and ONNX need the converters of the export extra: '
               'pip install "kapre_fast[export]".')
    export.add_argument('model', metavar='MODEL', help='Keras model file (.keras)')
    export.add_argument('--format', required=True, choices=FORMATS, help='what to write')
    export.add_argument('-o', '--output', required=True, metavar='OUT',
                        help='the SavedModel folder, .tflite or .onnx file to write')
    export.add_argument('--quantize', choices=('dynamic',),
                        help='TFLite only: dynamic-range quantisation (int8 weights, which '
                             'include the front end\'s DFT tables: expect errors of dB, not '
                             'float32 rounding); its measured error is printed')
    export.set_defaults(func=cmd_export)
    return export


def _load(path: Path):
    import keras

    import kapre_fast.layers  # noqa: F401  (registers the layers for deserialisation)

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a file that is not a model
        raise CliError(f'{path}: not a Keras model that loads ({type(error).__name__}: '
                       f'{_first_line(error)})') from None
    if not isinstance(model, keras.Model):
        raise CliError(f'{path}: holds a {type(model).__name__}, not a Keras model')
    return model


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _test_signal(model):
    """Two examples of a chirp in noise, shaped like the model's one input (unknown sizes but
    the batch: _DEFAULT_SAMPLES)."""
    if len(model.inputs) != 1:
        raise CliError(f'the model has {len(model.inputs)} inputs; export takes one-input models')
    shape = [2] + [_DEFAULT_SAMPLES if size is None else int(size)
                   for size in model.inputs[0].shape[1:]]
    rng = np.random.default_rng(0)
    time_axis = int(np.argmax(shape[1:])) + 1  # the longest axis: time
    t = np.arange(shape[time_axis]) / 16000.0
    chirp = np.sin(2 * np.pi * (100.0 + 1500.0 * t) * t)
    chirp = np.expand_dims(chirp, [axis for axis in range(len(shape)) if axis != time_axis])
    return (0.5 * chirp + 0.05 * rng.standard_normal(shape)).astype(np.float32)


def _convert_and_run(model, args, x):
    from kapre_fast import export

    output = Path(args.output)
    if args.format == 'savedmodel':
        export.to_savedmodel(model, output)
        return export.run_savedmodel(output, x)
    if args.format == 'tflite':
        flatbuffer = export.to_tflite(model, quantize=args.quantize)
        output.write_bytes(flatbuffer)
        return export.run_tflite(flatbuffer, x)
    export.to_onnx(model, output)
    return export.run_onnx(output, x)


def cmd_export(args) -> int:
    path = Path(args.model)
    if not path.is_file():
        raise UsageError(f'{args.model}: no such file')
    if args.quantize and args.format != 'tflite':
        raise UsageError('--quantize applies to --format tflite only')
    output = Path(args.output)
    if not output.parent.is_dir():
        raise UsageError(f'{args.output}: folder {output.parent} does not exist')

    from kapre_fast import export

    model = _load(path)
    if not export.kapre_fast_layers(model):
        print(f'note: {path.name} has no kapre_fast layers; exported as it is', file=sys.stderr)
    x = _test_signal(model)
    expected = np.asarray(model(x, training=False))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the converters' own listings
            actual = _convert_and_run(model, args, x)
    except export.MissingConverterError as error:
        raise CliError(str(error)) from None
    except Exception as error:  # a converter's failure, whatever its type
        raise CliError(f'{args.format} conversion failed: {type(error).__name__}: '
                       f'{_first_line(error)}') from None
    difference = float(np.max(np.abs(np.asarray(actual, np.float64) - expected)))
    peak = float(np.max(np.abs(expected)))
    quantized = ' (dynamic-range quantised)' if args.quantize else ''
    print(f'wrote {output} ({args.format}{quantized}); on a test signal of shape {x.shape}: '
          f'largest difference to the fused model {difference:.3g} (output peak {peak:.3g})')
    return 0


__all__ = ['add_parser', 'cmd_export', 'FORMATS']
