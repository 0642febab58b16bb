"""The timed methods: one `prepare_*` function per method.

`prepare_x(sized, audio, threads)` builds everything the method needs outside the timing (models,
traced functions, filterbanks, tensors holding the input) and returns a `Prepared`: `run()` computes
the features once from the prepared input and returns the method's output; `features(output)`
turns that output into a (batch, frames, features) array comparable with kapre's, or is None when
the method computes something else (then `note` says what). A method that cannot run here, or has
no counterpart for a configuration, raises `Unavailable` with the reason.

Every method computes kapre's framing (frames of win_length samples from sample 0, no centring,
the window zero-padded at the end to n_fft), a periodic Hann window and the configuration's
filterbank and decibel scaling, unless its note says otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import numpy as np

from bench import accuracy
from bench.configs import FAST_FUNCTIONS, KAPRE_FUNCTIONS, Sized


class Unavailable(Exception):
    """The method cannot run here, or does not map to this configuration."""


@dataclasses.dataclass
class Prepared:
    run: Callable[[], Any]
    features: Optional[Callable[[Any], np.ndarray]]
    note: str = ''


@dataclasses.dataclass(frozen=True)
class Method:
    key: str
    label: str
    prepare: Callable[[Sized, np.ndarray, int], Prepared]
    floor: bool = False  # an FFT-only lower bound, not a front end


# ----- helpers -----------------------------------------------------------------------------------


def _import(name: str):
    try:
        return __import__(name, fromlist=['_'])
    except ImportError as error:
        raise Unavailable(f'{name} is not importable ({error})') from error


def _tf_channels_last(output) -> np.ndarray:
    """(batch, frames, features, 1) kapre-layout output -> (batch, frames, features)."""
    return np.asarray(output)[..., 0]


def _hann(length: int) -> np.ndarray:
    """tf.signal.hann_window(length) (periodic): kapre's default window, float32."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def _window_in_fft(config, window=None) -> np.ndarray:
    """The Hann window of win_length (or `window`), zero-padded at the end to n_fft: librosa
    and torch centre a short window in the FFT frame; this window makes their frames kapre's."""
    padded = np.zeros(config.n_fft, dtype=np.float32)
    padded[: config.win_length] = _hann(config.win_length) if window is None else window
    return padded


def _filterbank(config) -> Optional[np.ndarray]:
    """The (n_freq, n_features) float32 filterbank kapre uses (kapre.backend), None for 'stft'."""
    backend = _import('kapre.backend')
    kw = config.kapre_kwargs
    if config.kind == 'mel':
        matrix = backend.filterbank_mel(
            sample_rate=config.sample_rate,
            n_freq=config.n_freq,
            n_mels=kw.get('n_mels', 128),
            f_min=kw.get('mel_f_min', 0.0),
            f_max=kw.get('mel_f_max'),
            htk=kw.get('mel_htk', False),
            norm=kw.get('mel_norm', 'slaney'),
        )
    elif config.kind == 'log':
        matrix = backend.filterbank_log(
            sample_rate=config.sample_rate,
            n_freq=config.n_freq,
            n_bins=kw.get('log_n_bins', 84),
            bins_per_octave=kw.get('log_bins_per_octave', 12),
            f_min=kw.get('log_f_min'),
            spread=kw.get('log_spread', 0.125),
        )
    else:
        return None
    return np.array(matrix, dtype=np.float32, order='C')  # a writable copy (torch wants one)


def _numpy_db(x, config):
    """kapre's dB on a NumPy batch, in the input's precision (part of the timed work)."""
    db = np.log10(np.maximum(x, np.float32(config.db_amin)))
    db *= np.float32(10.0)
    db -= np.float32(10.0 * np.log10(max(config.db_amin, config.db_ref_value)))
    peak = db.max(axis=tuple(range(1, db.ndim)), keepdims=True)
    return np.maximum(db, peak - np.float32(config.db_dynamic_range))


def _tf_db(x, config):
    """kapre.backend.magnitude_to_decibel written out with tf ops."""
    import tensorflow as tf

    ln10 = tf.math.log(tf.constant(10.0, x.dtype))
    db = 10.0 * tf.math.log(tf.math.maximum(x, config.db_amin)) / ln10
    db -= float(10.0 * np.log10(max(config.db_amin, config.db_ref_value)))
    peak = tf.math.reduce_max(db, axis=list(range(1, len(x.shape))), keepdims=True)
    return tf.math.maximum(db, peak - config.db_dynamic_range)


def _kapre_model(sized: Sized):
    composed = _import('kapre.composed')
    config = sized.config
    factory = getattr(composed, KAPRE_FUNCTIONS[config.kind])
    return factory(input_shape=(sized.n_samples, 1), **config.kapre_kwargs)


def _tf_input(audio):
    import tensorflow as tf

    return tf.constant(audio)


def _from_spectrum(sized: Sized, rows: int):
    """features() for the FFT floors: |spectrum| -> filterbank -> dB in float64, outside the
    timing, so the transform itself is checked against kapre."""
    config = sized.config
    matrix = _filterbank(config)

    def features(spectrum):
        magnitude = np.abs(np.asarray(spectrum)[:rows]).astype(np.float64)
        magnitude = magnitude.reshape(sized.batch, sized.n_frames, config.n_freq)
        if matrix is not None:
            magnitude = magnitude @ matrix.astype(np.float64)
        if config.decibel:
            return accuracy.kapre_db(
                magnitude, config.db_amin, config.db_ref_value, config.db_dynamic_range
            )
        return magnitude

    return features


def windowed_frames(sized: Sized, audio: np.ndarray) -> np.ndarray:
    """The input cut into kapre's frames, windowed and zero-padded: (batch * frames, n_fft)
    float32, C-contiguous. What the FFT floors transform."""
    config = sized.config
    signal = np.ascontiguousarray(audio[:, :, 0])
    views = np.lib.stride_tricks.sliding_window_view(signal, config.win_length, axis=1)
    views = views[:, :: config.hop_length][:, : sized.n_frames]
    frames = np.zeros((sized.batch * sized.n_frames, config.n_fft), dtype=np.float32)
    frames[:, : config.win_length] = (views * _hann(config.win_length)).reshape(
        -1, config.win_length
    )
    return frames


# ----- kapre and TensorFlow ----------------------------------------------------------------------


def prepare_kapre(sized, audio, threads):
    tf = _import('tensorflow')
    model = _kapre_model(sized)
    function = tf.function(lambda a: model(a, training=False))
    x = _tf_input(audio)
    return Prepared(
        lambda: function(x), _tf_channels_last, 'kapre.composed layer called in tf.function'
    )


def prepare_kapre_xla(sized, audio, threads):
    tf = _import('tensorflow')
    model = _kapre_model(sized)
    function = tf.function(lambda a: model(a, training=False), jit_compile=True)
    x = _tf_input(audio)
    return Prepared(
        lambda: function(x), _tf_channels_last, 'the same layer in tf.function(jit_compile=True)'
    )


def prepare_kapre_predict(sized, audio, threads):
    model = _kapre_model(sized)
    return Prepared(
        lambda: model.predict(audio, batch_size=sized.batch, verbose=0),
        _tf_channels_last,
        'kapre model.predict(batch_size=batch): includes Keras predict overhead (tens of ms '
        'per call); compare with kapre_fast.composed in predict',
    )


def prepare_keras(sized, audio, threads):
    tf = _import('tensorflow')
    keras = _import('keras')
    config = sized.config
    kw = config.kapre_kwargs
    if config.kind == 'mel':
        layer = keras.layers.MelSpectrogram(
            fft_length=config.n_fft,
            sequence_stride=config.hop_length,
            sequence_length=config.win_length,
            window='hann',
            sampling_rate=config.sample_rate,
            num_mel_bins=kw.get('n_mels', 128),
            min_freq=kw.get('mel_f_min', 0.0),
            max_freq=kw.get('mel_f_max') or config.sample_rate / 2,
            power_to_db=config.decibel,
            top_db=config.db_dynamic_range,
            mag_exp=1.0,
            min_power=config.db_amin,
            ref_power=config.db_ref_value,
        )
        x = tf.constant(np.ascontiguousarray(audio[:, :, 0]))
        note = (
            'keras.layers.MelSpectrogram (mag_exp=1, min_power=amin): not the same features: '
            'centred frames with reflect padding (more frames), HTK mel without Slaney '
            'normalisation, window centred in n_fft, top_db from the max of the whole batch, '
            'output (batch, mels, frames)'
        )
        features = None
    elif config.kind == 'stft':
        layer = keras.layers.STFTSpectrogram(
            mode='magnitude',
            frame_length=config.win_length,
            frame_step=config.hop_length,
            fft_length=config.n_fft,
            window='hann',
            periodic=True,
            scaling=None,
            padding='valid',
            data_format='channels_last',
        )
        x = _tf_input(audio)
        note = (
            'keras.layers.STFTSpectrogram(mode="magnitude", periodic Hann, scaling=None): a '
            'DFT as Conv1D with an (n_fft x 2 n_freq) kernel, O(n_fft^2) per frame; '
            'magnitudes floored at sqrt(1e-7)'
        )
        features = np.asarray
    else:
        raise Unavailable('Keras 3 has no log-frequency spectrogram layer')
    function = tf.function(lambda a: layer(a))
    return Prepared(lambda: function(x), features, note)


def prepare_tf_signal(sized, audio, threads):
    tf = _import('tensorflow')
    config = sized.config
    matrix = _filterbank(config)
    weights = None if matrix is None else tf.constant(matrix)

    @tf.function
    def function(a):
        spectrum = tf.signal.stft(
            a[:, :, 0],
            frame_length=config.win_length,
            frame_step=config.hop_length,
            fft_length=config.n_fft,
            window_fn=tf.signal.hann_window,
        )
        features = tf.abs(spectrum)
        if weights is not None:
            features = tf.tensordot(features, weights, axes=1)
        if config.decibel:
            features = _tf_db(features, config)
        return features

    x = _tf_input(audio)
    return Prepared(
        lambda: function(x),
        np.asarray,
        'tf.signal.stft -> tf.abs -> tf.tensordot(kapre filterbank) -> dB, in tf.function',
    )


# ----- NumPy-side libraries -----------------------------------------------------------------------


def prepare_librosa(sized, audio, threads):
    librosa = _import('librosa')
    scipy_fft = _import('scipy.fft')
    config = sized.config
    kw = config.kapre_kwargs
    y = np.ascontiguousarray(audio[:, :, 0])
    pad = config.n_fft - config.win_length
    window = _window_in_fft(config)
    matrix = _filterbank(config) if config.kind == 'log' else None
    stft_args = dict(
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.n_fft,
        window=window,
        center=False,
    )

    def run():
        with scipy_fft.set_workers(threads):
            signal = np.pad(y, ((0, 0), (0, pad))) if pad else y
            if config.kind == 'mel':
                features = librosa.feature.melspectrogram(
                    y=signal,
                    sr=config.sample_rate,
                    power=1.0,
                    n_mels=kw.get('n_mels', 128),
                    fmin=kw.get('mel_f_min', 0.0),
                    fmax=kw.get('mel_f_max'),
                    htk=kw.get('mel_htk', False),
                    norm=kw.get('mel_norm', 'slaney'),
                    **stft_args,
                )
            else:
                features = np.abs(librosa.stft(signal, **stft_args))
                if matrix is not None:
                    features = np.einsum('bft,fk->bkt', features, matrix, optimize=True)
            features = features.transpose(0, 2, 1)  # (batch, frames, features)
            return _numpy_db(features, config) if config.decibel else features

    notes = {
        'mel': 'librosa.feature.melspectrogram(power=1, center=False) + kapre dB in NumPy',
        'stft': 'abs(librosa.stft(center=False))',
        'log': 'abs(librosa.stft(center=False)) x kapre filterbank_log + kapre dB in NumPy '
        '(librosa has no such filterbank)',
    }
    note = notes[config.kind] + '; FFT: scipy.fft with set_workers(threads)'
    if pad:
        note += f'; window padded at the end to n_fft and input end-padded by {pad} (timed)'
    return Prepared(run, np.asarray, note)


def prepare_torch(sized, audio, threads):
    torch = _import('torch')
    config = sized.config
    signal = torch.from_numpy(np.ascontiguousarray(audio[:, :, 0]))
    window = torch.from_numpy(_window_in_fft(config))
    matrix = _filterbank(config)
    weights = None if matrix is None else torch.from_numpy(matrix)
    return Prepared(
        torch_front_end(torch, config, signal, window, weights),
        lambda output: output.numpy(),
        torch_note(config),
    )


def torch_front_end(torch, config, signal, window, weights):
    """run() computing the features of (batch, time) `signal` with torch, on the device the
    tensors are on (bench/gpu.py times it on CUDA): torch.stft(center=False) with `window`
    (win_length samples zero-padded at the end to n_fft) on the input end-padded by
    n_fft - win_length, which gives kapre's frames; abs; matmul with `weights` (n_freq,
    n_features) unless None; kapre's dB. Returns (batch, frames, features)."""
    pad = config.n_fft - config.win_length
    ln10 = float(np.log(10.0))
    db_offset = 10.0 * float(np.log10(max(config.db_amin, config.db_ref_value)))

    def run():
        with torch.inference_mode():
            x = torch.nn.functional.pad(signal, (0, pad)) if pad else signal
            spectrum = torch.stft(
                x,
                n_fft=config.n_fft,
                hop_length=config.hop_length,
                win_length=config.n_fft,
                window=window,
                center=False,
                return_complex=True,
            )
            features = spectrum.abs().transpose(1, 2)  # (batch, frames, n_freq)
            if weights is not None:
                features = torch.matmul(features, weights)
            if config.decibel:
                db = torch.log(torch.clamp_min(features, config.db_amin)) * (10.0 / ln10)
                db = db - db_offset
                peak = torch.amax(db, dim=(1, 2), keepdim=True)
                features = torch.maximum(db, peak - config.db_dynamic_range)
            return features

    return run


def torch_note(config) -> str:
    note = 'torch.stft(center=False) -> abs -> matmul(kapre filterbank) -> dB'
    pad = config.n_fft - config.win_length
    if pad:
        note += f'; window padded at the end to n_fft and input end-padded by {pad} (timed)'
    return note


# ----- JAX ---------------------------------------------------------------------------------------


def _jax(threads: int):
    """jax, with XLA's CPU thread pool asked for `threads` threads if its backend has not
    started in this worker (XLA reads XLA_FLAGS once, then; a worker runs one thread count).
    TensorFlow imports jax when both are installed, but starts no jax backend."""
    jax = _import('jax')
    xla_bridge = _import('jax._src.xla_bridge')
    if not xla_bridge.backends_are_initialized():
        flags = (
            f'--xla_cpu_multi_thread_eigen={"true" if threads > 1 else "false"} '
            f'intra_op_parallelism_threads={threads}'
        )
        os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {flags}'.strip()
    return jax


def _jax_note(text: str) -> str:
    return f'{text}; XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}'


def prepare_jax_jnp(sized, audio, threads):
    """The JAX peer. Keras' MelSpectrogram under JAX needs KERAS_BACKEND=jax when Keras is first
    imported, and a worker (one per thread count) imports Keras under TensorFlow for the other
    methods; so the peer is this jnp composition of kapre's features, under jax.jit."""
    jax = _jax(threads)
    jnp = _import('jax.numpy')
    config = sized.config
    matrix = _filterbank(config)
    weights = None if matrix is None else jax.device_put(matrix)
    window = jax.device_put(_hann(config.win_length))
    starts = np.arange(sized.n_frames) * config.hop_length
    index = jax.device_put(starts[:, None] + np.arange(config.win_length)[None, :])
    db_offset = 10.0 * float(np.log10(max(config.db_amin, config.db_ref_value)))

    @jax.jit
    def function(a):
        frames = a[:, :, 0][:, index] * window  # (batch, frames, win_length)
        # n=n_fft zero-pads each windowed frame at the end: kapre's window padded to n_fft
        features = jnp.abs(jnp.fft.rfft(frames, n=config.n_fft, axis=-1))
        if weights is not None:
            features = features @ weights
        if config.decibel:
            db = 10.0 * jnp.log10(jnp.maximum(features, config.db_amin)) - db_offset
            peak = jnp.max(db, axis=(1, 2), keepdims=True)
            features = jnp.maximum(db, peak - config.db_dynamic_range)
        return features

    x = jax.device_put(audio)
    return Prepared(
        lambda: function(x).block_until_ready(),
        np.asarray,
        _jax_note(
            'jax.jit of a jnp composition: gather frames -> window -> '
            'jnp.fft.rfft(n=n_fft) -> abs -> matmul(kapre filterbank) -> dB '
            '(the JAX peer: keras.layers.MelSpectrogram would need '
            'KERAS_BACKEND=jax in a process of its own)'
        ),
    )


# ----- FFT floors --------------------------------------------------------------------------------


def prepare_scipy_rfft(sized, audio, threads):
    scipy_fft = _import('scipy.fft')
    frames = windowed_frames(sized, audio)
    return Prepared(
        lambda: scipy_fft.rfft(frames, axis=-1, workers=threads),
        _from_spectrum(sized, len(frames)),
        'FFT alone on pre-cut windowed frames: no framing, window, magnitude, '
        'filterbank or dB (checked after |.|, filterbank and dB outside the timing)',
    )


def prepare_ducc0_r2c(sized, audio, threads):
    ducc0 = _import('ducc0')
    frames = windowed_frames(sized, audio)
    out = np.empty((len(frames), sized.config.n_freq), dtype=np.complex64)
    return Prepared(
        lambda: ducc0.fft.r2c(frames, axes=(1,), out=out, nthreads=threads),
        _from_spectrum(sized, len(frames)),
        'FFT alone on pre-cut windowed frames into a preallocated out=',
    )


# ----- kapre_fast --------------------------------------------------------------------------------


def prepare_kapre_fast_cpu(sized, audio, threads):
    cpu = _import('kapre_fast.cpu')
    function = getattr(cpu, FAST_FUNCTIONS[sized.config.kind])
    kwargs = sized.config.kapre_kwargs
    return Prepared(
        lambda: function(audio, threads=threads, **kwargs),
        _tf_channels_last,
        f'kapre_fast.cpu.{FAST_FUNCTIONS[sized.config.kind]}(threads={threads})',
    )


def prepare_kapre_fast_cpu_out(sized, audio, threads):
    cpu = _import('kapre_fast.cpu')
    function = getattr(cpu, FAST_FUNCTIONS[sized.config.kind])
    kwargs = sized.config.kapre_kwargs
    out = function(audio, threads=threads, **kwargs)  # the buffer every timed call refills
    return Prepared(
        lambda: function(audio, threads=threads, out=out, **kwargs),
        _tf_channels_last,
        f'kapre_fast.cpu.{FAST_FUNCTIONS[sized.config.kind]}(threads={threads}, '
        'out=a preallocated result), as the ducc0 floor gets out=',
    )


def prepare_kapre_fast_torch(sized, audio, threads):
    torch = _import('torch')
    kft = _import('kapre_fast.torch')
    function = getattr(kft, FAST_FUNCTIONS[sized.config.kind])
    kwargs = sized.config.kapre_kwargs
    x = torch.from_numpy(audio)
    return Prepared(
        lambda: function(x, threads=threads, **kwargs),
        lambda output: _tf_channels_last(output.numpy()),
        f'kapre_fast.torch.{FAST_FUNCTIONS[sized.config.kind]}(tensor, '
        f'threads={threads}): the custom operator, as torch code calls it',
    )


def prepare_kapre_fast_jax(sized, audio, threads):
    jax = _jax(threads)
    kfj = _import('kapre_fast.jax')
    name = FAST_FUNCTIONS[sized.config.kind]
    function = getattr(kfj, name)
    kwargs = sized.config.kapre_kwargs
    jitted = jax.jit(lambda a: function(a, threads=threads, **kwargs))
    x = jax.device_put(audio)
    return Prepared(
        lambda: jitted(x).block_until_ready(),
        lambda output: _tf_channels_last(np.asarray(output)),
        _jax_note(
            f'jax.jit(kapre_fast.jax.{name}(x, threads={threads})): the XLA '
            'FFI custom call inside the compiled program'
        ),
    )


def prepare_kapre_fast_op(sized, audio, threads):
    tf = _import('tensorflow')
    ops = _import('kapre_fast.ops')
    front_end = _import('kapre_fast').FrontEnd
    spec = getattr(front_end, FAST_FUNCTIONS[sized.config.kind])(**sized.config.kapre_kwargs)
    function = tf.function(lambda a: ops.front_end(a, spec))
    x = _tf_input(audio)
    return Prepared(
        lambda: function(x),
        _tf_channels_last,
        "kapre_fast.ops.front_end in tf.function (TF's intra-op pool)",
    )


def _builtin_function(sized: Sized, jit_compile):
    tf = _import('tensorflow')
    builtin = _import('kapre_fast.builtin')
    front_end = _import('kapre_fast').FrontEnd
    spec = getattr(front_end, FAST_FUNCTIONS[sized.config.kind])(**sized.config.kapre_kwargs)
    return tf.function(lambda a: builtin.front_end(a, spec), jit_compile=jit_compile)


def prepare_kapre_fast_builtin(sized, audio, threads):
    function, x = _builtin_function(sized, False), _tf_input(audio)
    return Prepared(
        lambda: function(x),
        _tf_channels_last,
        'kapre_fast.builtin.front_end (TFLite-builtin TF ops) in tf.function',
    )


def prepare_kapre_fast_builtin_xla(sized, audio, threads):
    function, x = _builtin_function(sized, True), _tf_input(audio)
    return Prepared(
        lambda: function(x),
        _tf_channels_last,
        'the same in tf.function(jit_compile=True): what the layers run under XLA',
    )


def litert_runner(flatbuffer, audio, threads):
    """A call of the TFLite model `flatbuffer` on `audio` in the LiteRT interpreter (XNNPACK,
    num_threads=threads), its input resized to audio's shape once. The call returns the output
    in place (`Interpreter.tensor`: a NumPy view of the interpreter's buffer, valid until the
    next call), as a deployment reads it and as kapre's row returns its TF tensor: its
    `get_tensor` copies the output into a new array each call (config C: 84 MB, 38 ms of page
    faults and copying, a third of the model's own time)."""
    interpreter_module = _import('ai_edge_litert.interpreter')
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer, num_threads=threads)
    (tensor,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(tensor['index'], list(audio.shape))
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]['index']

    def run():
        interpreter.set_tensor(tensor['index'], audio)
        interpreter.invoke()
        return interpreter.tensor(output)()

    return run


def prepare_kapre_fast_litert(sized, audio, threads):
    export = _import('kapre_fast.export')
    run = litert_runner(export.to_tflite(_kapre_fast_model(sized)), audio, threads)
    return Prepared(
        run,
        _tf_channels_last,
        'kapre_fast.export.to_tflite (builtin ops) in the LiteRT interpreter '
        '(ai-edge-litert, XNNPACK), num_threads=threads',
    )


# prepare_kapre_fast_savedmodel and prepare_kapre_fast_onnx are export_table.py's rows, not
# run.py methods (two more conversions per configuration and thread count in `make bench-quick`).


def prepare_kapre_fast_savedmodel(sized, audio, threads):
    import tempfile

    export = _import('kapre_fast.export')
    tf = _import('tensorflow')
    folder = tempfile.mkdtemp(prefix='kapre_fast_export_')
    export.to_savedmodel(_kapre_fast_model(sized), folder)
    loaded = tf.saved_model.load(folder)  # kept alive by run(): it owns the variables
    x = _tf_input(audio)
    return Prepared(
        lambda: loaded.serve(x),
        _tf_channels_last,
        'kapre_fast.export.to_savedmodel (builtin ops), loaded with '
        'tf.saved_model.load, its serve endpoint called (TF intra-op threads)',
    )


def prepare_kapre_fast_onnx(sized, audio, threads):
    export = _import('kapre_fast.export')
    onnxruntime = _import('onnxruntime')
    proto = export.to_onnx(_kapre_fast_model(sized))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), options, providers=['CPUExecutionProvider']
    )
    name = session.get_inputs()[0].name
    return Prepared(
        lambda: session.run(None, {name: audio})[0],
        _tf_channels_last,
        f'kapre_fast.export.to_onnx (tf2onnx, opset {export.ONNX_OPSET}) in '
        f'onnxruntime {onnxruntime.__version__} (CPU), intra_op_num_threads=threads',
    )


def _kapre_fast_model(sized: Sized):
    keras = _import('keras')
    composed = _import('kapre_fast.composed')
    name = KAPRE_FUNCTIONS[sized.config.kind]
    factory = getattr(composed, name, None)
    if factory is None:
        raise Unavailable(f'kapre_fast.composed has no {name}')
    built = factory(input_shape=(sized.n_samples, 1), **sized.config.kapre_kwargs)
    if isinstance(built, keras.Model):
        return built
    return keras.Sequential([keras.Input((sized.n_samples, 1)), built])


def prepare_kapre_fast_composed(sized, audio, threads):
    tf = _import('tensorflow')
    model = _kapre_fast_model(sized)
    function = tf.function(lambda a: model(a, training=False))
    x = _tf_input(audio)
    return Prepared(
        lambda: function(x),
        _tf_channels_last,
        'kapre_fast.composed model called in tf.function (as the kapre row)',
    )


def prepare_kapre_fast_predict(sized, audio, threads):
    model = _kapre_fast_model(sized)
    return Prepared(
        lambda: model.predict(audio, batch_size=sized.batch, verbose=0),
        _tf_channels_last,
        'kapre_fast.composed model.predict(batch_size=batch) (as the kapre predict row)',
    )


# The order of the tables. kapre comes first: the others are compared with its output.
METHODS = [
    Method('kapre', 'kapre 0.4.1', prepare_kapre),
    Method('kapre_xla', 'kapre + XLA', prepare_kapre_xla),
    Method('kapre_predict', 'kapre, Keras predict', prepare_kapre_predict),
    Method('keras', 'Keras 3 layer', prepare_keras),
    Method('tf_signal', 'tf.signal composition', prepare_tf_signal),
    Method('librosa', 'librosa', prepare_librosa),
    Method('torch', 'torch.stft + matmul', prepare_torch),
    Method('jax_jnp', 'jax.jit jnp composition', prepare_jax_jnp),
    Method('scipy_rfft', 'scipy.fft.rfft alone', prepare_scipy_rfft, floor=True),
    Method('ducc0_r2c', 'ducc0 r2c alone (out=)', prepare_ducc0_r2c, floor=True),
    Method('kapre_fast_cpu', 'kapre_fast.cpu', prepare_kapre_fast_cpu),
    Method('kapre_fast_cpu_out', 'kapre_fast.cpu (out=)', prepare_kapre_fast_cpu_out),
    Method('kapre_fast_op', 'kapre_fast TF op', prepare_kapre_fast_op),
    Method('kapre_fast_torch', 'kapre_fast.torch', prepare_kapre_fast_torch),
    Method('kapre_fast_jax', 'kapre_fast.jax (jit)', prepare_kapre_fast_jax),
    Method('kapre_fast_composed', 'kapre_fast.composed', prepare_kapre_fast_composed),
    Method('kapre_fast_predict', 'kapre_fast.composed, Keras predict', prepare_kapre_fast_predict),
    Method('kapre_fast_builtin', 'kapre_fast builtin ops', prepare_kapre_fast_builtin),
    Method(
        'kapre_fast_builtin_xla', 'kapre_fast builtin ops + XLA', prepare_kapre_fast_builtin_xla
    ),
    Method('kapre_fast_litert', 'kapre_fast on LiteRT (TFLite)', prepare_kapre_fast_litert),
]
METHODS_BY_KEY = {method.key: method for method in METHODS}
REFERENCE = 'kapre'


def parse_keys(text: str | None) -> list:
    """'kapre,torch' -> those methods in table order (kapre is always added: the reference);
    None or 'all' -> every method."""
    if text is None or text.strip().lower() == 'all':
        return list(METHODS)
    keys = {part.strip() for part in text.split(',') if part.strip()}
    unknown = sorted(keys - set(METHODS_BY_KEY))
    if unknown:
        raise ValueError(
            f'unknown method(s) {", ".join(unknown)}; choose from {", ".join(METHODS_BY_KEY)}'
        )
    keys.add(REFERENCE)
    return [method for method in METHODS if method.key in keys]
