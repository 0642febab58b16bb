"""`kapre-fast export`: a Keras model with kapre_fast layers as a SavedModel, TFLite or ONNX
model that runs without kapre_fast, run once on a test signal and compared with the fused model.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from kapre_fast._loader import pip_install_hint
from kapre_fast.cli.options import CliError, UsageError

FORMATS = ('savedmodel', 'tflite', 'onnx')
# Test signal length when the model leaves time unknown: 1.5 s at 16 kHz, enough for any front
# end up to builtin.MAX_N_FFT.
_DEFAULT_SAMPLES = 24000
# --quantize choices (export.QUANTIZE_CHOICES), as the report names them.
_QUANTISATION = {'dynamic': 'dynamic-range quantisation', 'float16': 'float16-weight quantisation'}
# Largest difference accepted by default, times the output's peak (at least 1): float32
# conversions differ by ~1e-6 of it (3e-5 dB on a 26 dB mel spectrogram); dynamic-range
# quantisation by dB.
DEFAULT_TOLERANCE = 1e-3


def add_parser(sub):
    export = sub.add_parser(
        'export',
        help='a model with kapre_fast layers as SavedModel / TFLite / ONNX',
        description='Loads a Keras model (.keras), switches its kapre_fast layers to plain '
        'TensorFlow ops (kapre_fast.export.portable: same layer names and weights) '
        'and converts it: a SavedModel folder that any TensorFlow serves without '
        'kapre_fast, a .tflite file of TFLite builtin ops (any batch size), or an '
        '.onnx file (tf2onnx, opset 17). Then runs the result on a test signal '
        '(LiteRT, onnxruntime or TensorFlow) and prints the largest difference of '
        'each output, in order, to the fused model; the result is renamed into '
        'place only when every difference is within --tolerance (else exit 1). '
        'OUT may not be MODEL. A model without kapre_fast layers is exported as it '
        'is.',
        epilog='TFLite and ONNX need the converters of the export extra: '
        f'{pip_install_hint("export")}.',
    )
    export.add_argument('model', metavar='MODEL', help='Keras model file (.keras)')
    export.add_argument('--format', required=True, choices=FORMATS, help='what to write')
    export.add_argument(
        '-o',
        '--output',
        required=True,
        metavar='OUT',
        help='the SavedModel folder, .tflite or .onnx file to write',
    )
    export.add_argument(
        '--quantize',
        choices=tuple(_QUANTISATION),
        help='TFLite only: dynamic-range quantisation (int8 weights) or float16 '
        "weights, which include the front end's DFT tables: expect errors of "
        'tenths of a dB (float16) to dB (dynamic), not float32 rounding; the '
        'measured error is printed, and checked against --tolerance like any other',
    )
    export.add_argument(
        '--tolerance',
        type=float,
        metavar='X',
        help="largest difference accepted on the test signal, in the output's "
        f"units (default: {DEFAULT_TOLERANCE:g} x the output's peak, at "
        'least 1); beyond it the command exits 1 and writes nothing',
    )
    export.set_defaults(func=cmd_export)
    return export


def _load(path: Path):
    import keras

    import kapre_fast.layers  # noqa: F401  (registers the layers for deserialisation)

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a file that is not a model
        raise CliError(
            f'{path}: not a Keras model that loads ({type(error).__name__}: {_first_line(error)})'
        ) from None
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
    shape = [2] + [
        _DEFAULT_SAMPLES if size is None else int(size) for size in model.inputs[0].shape[1:]
    ]
    rng = np.random.default_rng(0)
    time_axis = int(np.argmax(shape[1:])) + 1  # the longest axis: time
    t = np.arange(shape[time_axis]) / 16000.0
    chirp = np.sin(2 * np.pi * (100.0 + 1500.0 * t) * t)
    chirp = np.expand_dims(chirp, [axis for axis in range(len(shape)) if axis != time_axis])
    return (0.5 * chirp + 0.05 * rng.standard_normal(shape)).astype(np.float32)


def _convert_and_run(model, args, x, target: Path):
    """Converts `model` to `target` and runs what was written there on `x`."""
    from kapre_fast import export

    if args.format == 'savedmodel':
        export.to_savedmodel(model, target)
        return export.run_savedmodel(target, x)
    if args.format == 'tflite':
        flatbuffer = export.to_tflite(model, quantize=args.quantize)
        target.write_bytes(flatbuffer)
        return export.run_tflite(target.read_bytes(), x)
    export.to_onnx(model, target)
    return export.run_onnx(target, x)


def _outputs(values) -> list:
    """A model's output(s) as a list of float64 arrays, in the model's order."""
    if isinstance(values, dict):
        values = [values[key] for key in sorted(values)]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    return [np.asarray(value, np.float64) for value in values]


def _check(expected, actual, args, output):
    """One line per output (in the model's order) comparing the export with the fused model;
    CliError when a count, a shape or a difference beyond the tolerance says they differ."""
    if len(actual) != len(expected):
        raise CliError(
            f'{output}: the {args.format} model gives {len(actual)} outputs, the '
            f'Keras model {len(expected)}; not written'
        )
    lines, failures = [], []
    what = f'{_QUANTISATION[args.quantize]} error' if args.quantize else 'largest difference'
    for index, (want, got) in enumerate(zip(expected, actual)):
        name = f'output {index}: ' if len(expected) > 1 else ''
        if want.shape != got.shape:
            failures.append(f"{name}shape {got.shape}, the Keras model's {want.shape}")
            continue
        difference = float(np.max(np.abs(got - want), initial=0.0))
        if not np.isfinite(difference):
            difference = float('inf')
        peak = float(np.max(np.abs(want), initial=0.0))
        tolerance = (
            args.tolerance if args.tolerance is not None else DEFAULT_TOLERANCE * max(1.0, peak)
        )
        lines.append(
            f'{name}{what} to the fused model {difference:.3g} (output peak '
            f'{peak:.3g}, tolerance {tolerance:.3g})'
        )
        if not difference <= tolerance:
            failures.append(f'{name}{what} {difference:.3g} exceeds the tolerance {tolerance:.3g}')
    return lines, failures


def cmd_export(args) -> int:
    path = Path(args.model)
    if not path.is_file():
        raise UsageError(f'{args.model}: no such file')
    if args.quantize and args.format != 'tflite':
        raise UsageError('--quantize applies to --format tflite only')
    if args.tolerance is not None and not (np.isfinite(args.tolerance) and args.tolerance >= 0):
        raise UsageError(f'--tolerance must be a finite number >= 0, got {args.tolerance!r}')
    output = Path(args.output)
    if not output.parent.is_dir():
        raise UsageError(f'{args.output}: folder {output.parent} does not exist')
    if output.resolve() == path.resolve() or output.resolve() in path.resolve().parents:
        raise UsageError(
            f'-o {args.output} would overwrite the model {args.model}; export never '
            'replaces its input: name another output'
        )
    if args.format == 'savedmodel' and output.exists() and not output.is_dir():
        raise UsageError(f'-o {args.output}: exists and is not a folder (a SavedModel is one)')
    if args.format != 'savedmodel' and output.is_dir():
        raise UsageError(f'-o {args.output}: is a folder; --format {args.format} writes a file')

    from kapre_fast import export

    model = _load(path)
    if not export.kapre_fast_layers(model):
        print(f'note: {path.name} has no kapre_fast layers; exported as it is', file=sys.stderr)
    x = _test_signal(model)
    expected = _outputs(model(x, training=False))
    # Written and checked under a temporary name beside OUT, renamed into place only when the
    # check passes: OUT is never left half-written, nor replaced by a model that fails.
    if args.format == 'savedmodel':
        target = Path(
            tempfile.mkdtemp(prefix=f'.{output.name}.', suffix='.partial', dir=output.parent)
        )
    else:
        descriptor, name = tempfile.mkstemp(
            prefix=f'.{output.name}.', suffix='.partial', dir=output.parent
        )
        os.close(descriptor)
        target = Path(name)
    try:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the converters' own listings
                actual = _outputs(_convert_and_run(model, args, x, target))
        except export.MissingConverterError as error:
            raise CliError(str(error)) from None
        except Exception as error:  # a converter's failure, whatever its type
            raise CliError(
                f'{args.format} conversion failed: {type(error).__name__}: {_first_line(error)}'
            ) from None
        lines, failures = _check(expected, actual, args, output)
        quantized = f', {_QUANTISATION[args.quantize]}' if args.quantize else ''
        for line in lines:
            print(f'on a test signal of shape {x.shape}: {line}')
        if failures:
            hint = (
                '; pass --tolerance to accept the quantisation error'
                if args.quantize
                else '; pass --tolerance to accept it'
            )
            raise CliError(
                f'the {args.format} model does not compute what {path.name} does: '
                f'{"; ".join(failures)}{hint}; {output} not written'
            )
        _replace(target, output)
    finally:
        _remove(target)
    print(f'wrote {output} ({args.format}{quantized}); every output checked')
    return 0


def _replace(target, output):
    """Renames `target` into place as `output` (a folder replaces an existing one)."""
    if target.is_dir() and output.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f'.{output.name}.', suffix='.old', dir=output.parent))
        os.replace(output, old / output.name)
        os.replace(target, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(target, output)


def _remove(target):
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


__all__ = ['add_parser', 'cmd_export', 'FORMATS']
