"""FrontEnd: validation, resolved defaults, sizes, layouts, and its weights against the originals
(tf.signal windows, librosa.filters.mel, kapre.backend.filterbank_log)."""

import dataclasses
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from kapre_fast.errors import FilterbankRangeError, UnsupportedWindowError
from kapre_fast.spec import MAX_N_FFT, WINDOW_NAMES, FrontEnd

# ----- validation ----------------------------------------------------------------------------

# (keyword arguments, exception type, text the message must contain)
BAD_ARGUMENTS = [
    (dict(n_fft=1), ValueError, 'n_fft'),
    (dict(n_fft=MAX_N_FFT + 1), ValueError, 'n_fft'),
    (dict(win_length=MAX_N_FFT + 1), ValueError, 'win_length'),
    (dict(hop_length=2**31), ValueError, 'hop_length'),
    (dict(n_fft=512.0), TypeError, 'n_fft'),
    (dict(n_fft=True), TypeError, 'n_fft'),
    (dict(n_fft='512'), TypeError, 'n_fft'),
    (dict(win_length=0), ValueError, 'win_length'),
    (dict(win_length=256.5), TypeError, 'win_length'),
    (dict(hop_length=0), ValueError, 'hop_length must be >= 1, got 0'),
    (dict(hop_length=-3), ValueError, 'hop_length'),
    (dict(hop_length=False), TypeError, 'hop_length'),
    (dict(n_fft=8, win_length=3), ValueError, 'hop_length'),  # default 3 // 4 == 0
    (dict(n_fft=256, hop_length=300, pad_begin=True), ValueError, 'hop_length'),
    (dict(window_name='blackman_window'), UnsupportedWindowError, 'window_name'),
    (dict(window_name='hann'), UnsupportedWindowError, 'kaiser_bessel_derived_window'),
    (dict(window_name=3), TypeError, 'window_name'),
    (dict(window_name='kaiser_bessel_derived_window', win_length=255), ValueError, 'win_length'),
    (dict(pad_begin=2), TypeError, 'pad_begin'),
    (dict(pad_end='yes'), TypeError, 'pad_end'),
    (dict(output='power'), ValueError, 'output'),
    (dict(output=None), TypeError, 'output'),
    (dict(filterbank='bark'), ValueError, 'filterbank'),
    (dict(filterbank='mel', output='complex'), ValueError, 'filterbank'),
    (dict(return_decibel=True, output='complex'), ValueError, 'return_decibel'),
    (dict(filterbank='log', output='mag_phase'), ValueError, 'filterbank'),
    (dict(sample_rate=0), ValueError, 'sample_rate'),
    (dict(sample_rate=-16000), ValueError, 'sample_rate'),
    (dict(sample_rate=math.inf), ValueError, 'sample_rate'),
    (dict(sample_rate='22050'), TypeError, 'sample_rate'),
    (dict(n_mels=0), ValueError, 'n_mels'),
    (dict(n_mels=64.5), TypeError, 'n_mels'),
    (dict(n_mels=math.inf), TypeError, 'n_mels'),
    (dict(mel_f_min=-1.0), ValueError, 'mel_f_min'),
    (dict(mel_f_min=math.nan), ValueError, 'mel_f_min'),
    (dict(mel_f_min=4000.0, mel_f_max=4000.0), ValueError, 'mel_f_max'),
    (dict(mel_f_min=12000.0), ValueError, 'mel_f_max'),  # above the default fmax, 11025
    (dict(mel_f_max='8000'), TypeError, 'mel_f_max'),
    (dict(mel_htk=None), TypeError, 'mel_htk'),
    (dict(mel_norm='l2'), ValueError, 'mel_norm'),
    (dict(mel_norm=0), ValueError, 'mel_norm'),
    (dict(mel_norm=-2), ValueError, 'mel_norm'),
    (dict(mel_norm=-math.inf), ValueError, 'mel_norm'),
    (dict(mel_norm=True), TypeError, 'mel_norm'),
    (dict(mel_norm=[2]), TypeError, 'mel_norm'),
    (dict(log_n_bins=0), ValueError, 'log_n_bins'),
    (dict(log_f_min=0.0), ValueError, 'log_f_min'),
    (dict(log_bins_per_octave=0), ValueError, 'log_bins_per_octave'),
    (dict(log_bins_per_octave=12.5), TypeError, 'log_bins_per_octave'),
    (dict(log_spread=0.0), ValueError, 'log_spread'),
    (dict(log_spread=math.inf), ValueError, 'log_spread'),
    (dict(filterbank='log', sample_rate=8000), FilterbankRangeError, 'log_n_bins'),
    (dict(filterbank='log', log_f_min=200.0), FilterbankRangeError, 'log_f_min'),
    (dict(return_decibel='no'), TypeError, 'return_decibel'),
    (dict(db_amin=0.0, return_decibel=True), ValueError, 'db_amin'),
    (dict(db_amin=-1e-5, return_decibel=True), ValueError, 'db_amin'),
    (dict(db_ref_value=0, return_decibel=True), ValueError, 'db_ref_value'),
    (dict(db_ref_value=math.nan, return_decibel=True), ValueError, 'db_ref_value'),
    (dict(db_dynamic_range=-80.0, return_decibel=True), ValueError, 'db_dynamic_range'),
    (dict(db_dynamic_range=math.inf, return_decibel=True), ValueError, 'db_dynamic_range'),
    (dict(db_dynamic_range=None, return_decibel=True), TypeError, 'db_dynamic_range'),
    (dict(input_data_format='channels_middle'), ValueError, 'input_data_format'),
    (dict(input_data_format=None), TypeError, 'input_data_format'),
    (dict(output_data_format='NHWC'), ValueError, 'output_data_format'),
    (dict(output_data_format=1), TypeError, 'output_data_format'),
]


@pytest.mark.parametrize(
    'kwargs, error, text', BAD_ARGUMENTS, ids=[repr(kw) for kw, _, _ in BAD_ARGUMENTS]
)
def test_bad_argument_raises_naming_it(kwargs, error, text):
    with pytest.raises(error, match=text.replace('(', r'\(').replace('*', r'\*')):
        FrontEnd(**kwargs)


def test_error_types_keep_kapres_types():
    with pytest.raises(NotImplementedError):
        FrontEnd(window_name='blackman_window')
    with pytest.raises(ValueError):
        FrontEnd(window_name='blackman_window')
    with pytest.raises(RuntimeError):
        FrontEnd.log_frequency_spectrogram(sample_rate=8000)
    with pytest.raises(ValueError):
        FrontEnd.log_frequency_spectrogram(sample_rate=8000)


def test_messages_name_the_value():
    with pytest.raises(ValueError, match='hop_length must be >= 1, got 0'):
        FrontEnd(hop_length=0)
    with pytest.raises(UnsupportedWindowError, match="'boxcar'.*hann_window, hamming_window"):
        FrontEnd(window_name='boxcar')
    with pytest.raises(ValueError, match=r'win_length - 1 samples'):
        FrontEnd(window_name='kaiser_bessel_derived_window', n_fft=512, win_length=511)


def test_log_range_check_is_kapres_floor_division():
    # The default top is 32.70319566 * 2**7 = 4186.009 Hz. kapre compares it with
    # sample_rate // 2, so 8373 Hz fails although its Nyquist frequency, 4186.5 Hz, is above it.
    FrontEnd.log_frequency_spectrogram(sample_rate=8374)
    with pytest.raises(FilterbankRangeError):
        FrontEnd.log_frequency_spectrogram(sample_rate=8373)


# ----- defaults and values -------------------------------------------------------------------


def test_defaults_are_resolved():
    spec = FrontEnd()
    assert (spec.n_fft, spec.win_length, spec.hop_length) == (2048, 2048, 512)
    assert spec.window_name == 'hann_window'
    assert spec.mel_f_max == 11025.0
    assert spec.log_f_min == 32.70319566
    assert spec.input_data_format in ('channels_last', 'channels_first')
    assert FrontEnd(n_fft=512, win_length=400).hop_length == 100
    assert FrontEnd(sample_rate=16000).mel_f_max == 8000.0


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    spec = FrontEnd(
        n_fft=np.int64(512),
        hop_length=np.int32(128),
        db_amin=np.float32(1e-4),
        pad_end=np.bool_(True),
        mel_norm=np.int64(2),
    )
    assert type(spec.n_fft) is int and type(spec.hop_length) is int
    assert type(spec.db_amin) is float and type(spec.pad_end) is bool
    assert spec.mel_norm == 2.0
    assert spec == FrontEnd(
        n_fft=512, hop_length=128, db_amin=float(np.float32(1e-4)), pad_end=True, mel_norm=2
    )


def test_mel_norm_accepts_librosas_positive_norms():
    for norm in ('slaney', None, 1, 2, 2.5, math.inf):
        assert FrontEnd(mel_norm=norm).mel_norm == norm


def test_default_data_format_follows_keras_when_imported():
    keras = pytest.importorskip('keras')
    before = keras.config.image_data_format()
    try:
        keras.config.set_image_data_format('channels_first')
        spec = FrontEnd()
        assert spec.input_data_format == spec.output_data_format == 'channels_first'
        assert FrontEnd(output_data_format='channels_last').output_data_format == 'channels_last'
    finally:
        keras.config.set_image_data_format(before)


def test_default_data_format_without_keras_is_channels_last_and_imports_nothing():
    code = (
        'import sys; from kapre_fast.spec import FrontEnd; s = FrontEnd(); '
        "assert s.input_data_format == s.output_data_format == 'channels_last'; "
        "assert not {'keras', 'tensorflow'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, '-c', code], check=True)


def test_is_frozen_and_hashable():
    spec = FrontEnd.melspectrogram(n_fft=1024)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_fft = 512
    assert hash(spec) == hash(FrontEnd.melspectrogram(n_fft=1024))
    # Resolved defaults make spelled-out and implicit arguments equal.
    assert spec == FrontEnd(
        n_fft=1024, win_length=1024, hop_length=256, window_name='hann_window', filterbank='mel'
    )


# ----- constructors mirroring kapre.composed -------------------------------------------------


def test_constructors_set_the_kind():
    assert FrontEnd.stft_magnitude().filterbank == 'none'
    assert FrontEnd.melspectrogram(n_mels=40).filterbank == 'mel'
    assert FrontEnd.melspectrogram(n_mels=40).n_features == 40
    assert FrontEnd.log_frequency_spectrogram(log_n_bins=60).n_features == 60
    assert FrontEnd.stft_mag_phase().output == 'mag_phase'
    assert FrontEnd.stft().output == 'complex'
    assert FrontEnd.stft(n_fft=512).n_features == 257


@pytest.mark.parametrize(
    'constructor, kwargs, unknown',
    [
        ('stft_magnitude', dict(n_mels=64), 'n_mels'),
        ('stft_magnitude', dict(input_shape=(100, 1)), 'input_shape'),
        ('melspectrogram', dict(log_n_bins=64, name='x'), 'log_n_bins, name'),
        ('log_frequency_spectrogram', dict(mel_htk=True), 'mel_htk'),
        ('stft_mag_phase', dict(sample_rate=16000), 'sample_rate'),
        ('stft', dict(return_decibel=True), 'return_decibel'),
        ('melspectrogram', dict(filterbank='log'), 'filterbank'),
    ],
)
def test_constructors_reject_unknown_arguments(constructor, kwargs, unknown):
    with pytest.raises(TypeError, match=f'unexpected keyword argument.*{unknown}'):
        getattr(FrontEnd, constructor)(**kwargs)


# ----- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'kwargs, n_samples, frames',
    [
        (dict(n_fft=400, hop_length=100), 400, 1),
        (dict(n_fft=400, hop_length=100), 499, 1),
        (dict(n_fft=400, hop_length=100), 500, 2),
        (dict(n_fft=400, hop_length=100, pad_end=True), 1, 1),
        (dict(n_fft=400, hop_length=100, pad_end=True), 500, 5),
        (dict(n_fft=400, hop_length=100, pad_end=True), 501, 6),
        (dict(n_fft=400, hop_length=100, pad_begin=True), 100, 1),
        (dict(n_fft=400, hop_length=100, pad_begin=True, pad_end=True), 0, 3),
        (dict(n_fft=512, win_length=300, hop_length=400), 1000, 2),
    ],
)
def test_n_frames(kwargs, n_samples, frames):
    assert FrontEnd(**kwargs).n_frames(n_samples) == frames


def test_n_frames_matches_tf_signal_frame():
    tf = pytest.importorskip('tensorflow')
    for n_fft, win, hop in [(512, 512, 128), (511, 300, 77), (256, 400, 97), (64, 33, 50)]:
        for pad_begin in (False, True) if hop <= n_fft else (False,):
            for pad_end in (False, True):
                spec = FrontEnd(
                    n_fft=n_fft,
                    win_length=win,
                    hop_length=hop,
                    pad_begin=pad_begin,
                    pad_end=pad_end,
                )
                for n in (win, win + 1, 3 * win + 5, 1000):
                    signal = tf.zeros([n + spec.pad_begin_length])
                    framed = tf.signal.frame(signal, win, hop, pad_end=pad_end)
                    assert spec.n_frames(n) == framed.shape[0]


def test_too_short_audio_names_the_lengths():
    with pytest.raises(
        ValueError,
        match='audio has 300 samples; one frame needs win_length=400 '
        'samples; pass longer audio or pad_end=True',
    ):
        FrontEnd(n_fft=400, hop_length=100).n_frames(300)
    with pytest.raises(ValueError, match=r'audio has 390 samples \(after pad_begin\)'):
        FrontEnd(n_fft=512, win_length=400, hop_length=212, pad_begin=True).n_frames(90)
    with pytest.raises(ValueError, match='0 samples'):
        FrontEnd(pad_end=True).n_frames(0)
    with pytest.raises(ValueError, match='n_samples'):
        FrontEnd().n_frames(-1)


@pytest.mark.parametrize(
    'spec',
    [
        FrontEnd(n_fft=256, hop_length=70, pad_end=True),
        FrontEnd.melspectrogram(
            n_fft=256,
            win_length=200,
            hop_length=64,
            pad_begin=True,
            n_mels=20,
            input_data_format='channels_first',
            output_data_format='channels_first',
        ),
        FrontEnd.stft_mag_phase(n_fft=128, hop_length=33, output_data_format='channels_first'),
        FrontEnd.stft(n_fft=128, hop_length=40),
        FrontEnd.melspectrogram(compat='librosa', n_fft=256, hop_length=64, n_mels=16),
        FrontEnd.stft_magnitude(compat='torchaudio', n_fft=200, input_data_format='channels_first'),
    ],
    ids=str,
)
def test_output_shape_is_what_the_kernel_returns(spec):
    from kapre_fast import cpu

    for batch, channels, time in [(1, 1, 400), (2, 3, 1001)]:
        dims = (batch, time, channels)
        if spec.input_data_format == 'channels_first':
            dims = (batch, channels, time)
        audio = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        assert spec.output_shape(dims) == cpu.compute(spec, audio).shape
        # An axis not known yet stays unknown; the others are still computed.
        unknown = tuple(None if d in (batch, channels) else d for d in dims)
        if spec.output_data_format == 'channels_first':
            expected = (None, None, *spec.output_shape(dims)[2:])
        else:
            expected = (None, *spec.output_shape(dims)[1:3], None)
        assert spec.output_shape(unknown) == expected


def test_output_shape_of_short_audio():
    spec = FrontEnd(n_fft=400, hop_length=100)
    with pytest.raises(ValueError, match='audio has 300 samples; one frame needs win_length=400'):
        spec.output_shape((1, 300, 1))
    assert spec.output_shape((1, 300, 1), allow_empty=True) == (1, 0, 201, 1)
    assert spec.output_shape((1, 300, 1), n_features=13, allow_empty=True) == (1, 0, 13, 1)
    with pytest.raises(ValueError, match=r'3 axes, got shape \(300,\)'):
        spec.output_shape((300,))


def test_sizes():
    spec = FrontEnd(n_fft=511, hop_length=100, pad_begin=True)
    assert (spec.n_freq, spec.n_features, spec.pad_begin_length) == (256, 256, 411)
    assert FrontEnd(n_fft=512, hop_length=100).pad_begin_length == 0


# ----- layouts -------------------------------------------------------------------------------


def test_layouts():
    last = FrontEnd(input_data_format='channels_last', output_data_format='channels_last')
    first = FrontEnd(input_data_format='channels_first', output_data_format='channels_first')
    x = np.zeros((4, 1000, 2))
    assert last.layout_input(x).shape == (4, 2, 1000)
    assert first.layout_input(x).shape == (4, 1000, 2)
    y = np.zeros((4, 2, 7, 129))
    assert last.layout_output(y).shape == (4, 7, 129, 2)
    assert first.layout_output(y) is y
    with pytest.raises(ValueError, match=r'\(batch, time, channels\).*channels_last.*\(1000,\)'):
        last.layout_input(np.zeros(1000))
    with pytest.raises(ValueError, match=r'\(batch, channels, time\).*channels_first'):
        first.layout_input(np.zeros((1, 1, 1, 1000)))


# ----- windows -------------------------------------------------------------------------------

WINDOW_LENGTHS = [1, 2, 3, 4, 5, 16, 33, 255, 256, 400, 511, 1024, 2047]


@pytest.mark.parametrize('name', WINDOW_NAMES)
def test_window_matches_tf_signal(name):
    tf = pytest.importorskip('tensorflow')
    window_fn = getattr(tf.signal, name)
    for length in WINDOW_LENGTHS:
        if name == 'kaiser_bessel_derived_window' and length % 2:
            continue  # rejected by FrontEnd: TF returns length - 1 samples
        ours = FrontEnd(
            n_fft=max(length, 2), win_length=length, hop_length=1, window_name=name
        ).window()
        theirs = window_fn(length).numpy()
        assert ours.dtype == np.float64 and ours.shape == (length,)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6, err_msg=f'length {length}')


def test_odd_tf_kbd_window_is_one_short():
    # Why FrontEnd rejects odd kaiser_bessel_derived windows.
    tf = pytest.importorskip('tensorflow')
    assert tf.signal.kaiser_bessel_derived_window(7).shape == (6,)


def test_default_window_is_hann_and_read_only():
    window = FrontEnd(n_fft=512).window()
    np.testing.assert_array_equal(window, FrontEnd(n_fft=512, window_name='hann_window').window())
    with pytest.raises(ValueError):
        window[0] = 1.0


@pytest.mark.parametrize('name', WINDOW_NAMES)
@pytest.mark.parametrize('win_length, hop_length', [(512, 128), (400, 100), (256, 96), (64, 64)])
def test_inverse_window_matches_tf_signal(name, win_length, hop_length):
    tf = pytest.importorskip('tensorflow')
    spec = FrontEnd(n_fft=win_length, hop_length=hop_length, window_name=name)
    inverse_fn = tf.signal.inverse_stft_window_fn(hop_length, getattr(tf.signal, name))
    theirs = inverse_fn(win_length, dtype=tf.float64).numpy()
    np.testing.assert_allclose(spec.inverse_window(), theirs, rtol=1e-6, atol=1e-9)


# ----- filterbanks ---------------------------------------------------------------------------

MEL_CASES = [
    (sample_rate, n_fft, n_mels, f_min, f_max, htk, norm)
    for sample_rate, n_fft, n_mels in [
        (22050, 2048, 128),
        (16000, 511, 40),
        (44100, 1024, 96),
        (8000, 256, 128),
    ]
    for f_min, f_max in [(0.0, None), (300.0, None), (50.0, 4000.0), (20.0, 6000.0)]
    for htk in (False, True)
    for norm in ('slaney', None, 1, 2, math.inf)
]


@pytest.mark.parametrize('sample_rate, n_fft, n_mels, f_min, f_max, htk, norm', MEL_CASES)
def test_mel_filterbank_matches_librosa(sample_rate, n_fft, n_mels, f_min, f_max, htk, norm):
    librosa = pytest.importorskip('librosa')
    spec = FrontEnd.melspectrogram(
        n_fft=n_fft,
        sample_rate=sample_rate,
        n_mels=n_mels,
        mel_f_min=f_min,
        mel_f_max=f_max,
        mel_htk=htk,
        mel_norm=norm,
    )
    ours = spec.dense_filterbank()
    assert ours.shape == (n_fft // 2 + 1, n_mels) and ours.dtype == np.float64
    kwargs = dict(
        sr=sample_rate,
        n_fft=(spec.n_freq - 1) * 2,
        n_mels=n_mels,
        fmin=f_min,
        fmax=f_max,
        htk=htk,
        norm=norm,
    )
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Empty filters detected" for the small FFTs
        as_kapre_uses_it = librosa.filters.mel(**kwargs).T  # float32
        in_float64 = librosa.filters.mel(**kwargs, dtype=np.float64).T
    peak = np.abs(in_float64).max()
    assert np.abs(ours - as_kapre_uses_it).max() <= 1e-6 * peak
    assert np.abs(ours - in_float64).max() <= 1e-12 * peak


LOG_CASES = [
    (22050, 2048, 84, 12, None, 0.125),
    (22050, 511, 84, 12, None, 0.125),
    (16000, 1024, 60, 12, 55.0, 0.3),
    (44100, 4096, 96, 24, 40.0, 0.125),
    (8000, 256, 24, 12, 100.0, 0.5),
    (16000, 64, 36, 12, None, 0.125),  # coarse FFT: some filters fall between bins
]


@pytest.mark.parametrize('sample_rate, n_fft, n_bins, bins_per_octave, f_min, spread', LOG_CASES)
def test_log_filterbank_matches_kapre(sample_rate, n_fft, n_bins, bins_per_octave, f_min, spread):
    pytest.importorskip('tensorflow')
    from kapre.backend import filterbank_log

    spec = FrontEnd.log_frequency_spectrogram(
        n_fft=n_fft,
        sample_rate=sample_rate,
        log_n_bins=n_bins,
        log_bins_per_octave=bins_per_octave,
        log_f_min=f_min,
        log_spread=spread,
    )
    ours = spec.dense_filterbank()
    theirs = filterbank_log(
        sample_rate=sample_rate,
        n_freq=n_fft // 2 + 1,
        n_bins=n_bins,
        bins_per_octave=bins_per_octave,
        f_min=f_min,
        spread=spread,
    ).numpy()
    assert ours.shape == theirs.shape == (n_fft // 2 + 1, n_bins)
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(ours).max()


def test_no_filterbank():
    assert FrontEnd().dense_filterbank() is None
    assert FrontEnd().sparse_filterbank() is None


@pytest.mark.parametrize(
    'spec',
    [
        FrontEnd.melspectrogram(),
        FrontEnd.melspectrogram(n_fft=256, n_mels=128, sample_rate=22050),  # empty filters
        FrontEnd.melspectrogram(n_fft=1023, mel_htk=True, mel_norm=None, mel_f_min=300.0),
        FrontEnd.log_frequency_spectrogram(),
        FrontEnd.log_frequency_spectrogram(n_fft=64, sample_rate=16000, log_n_bins=36),
    ],
    ids=['mel', 'mel-empty-filters', 'mel-htk-odd', 'log', 'log-coarse'],
)
def test_sparse_filterbank_rebuilds_the_dense_one(spec):
    start, length, weights = spec.sparse_filterbank()
    assert (start.dtype, length.dtype, weights.dtype) == (np.int32, np.int32, np.float32)
    assert start.shape == length.shape == (spec.n_features,)
    assert weights.shape == (length.sum(),)
    dense = spec.dense_filterbank().astype(np.float32)
    rebuilt = np.zeros_like(dense)
    offsets = np.concatenate([[0], np.cumsum(length)])
    for j in range(spec.n_features):
        rebuilt[start[j] : start[j] + length[j], j] = weights[offsets[j] : offsets[j + 1]]
        if length[j]:  # each run starts and ends on a non-zero weight
            assert weights[offsets[j]] != 0 and weights[offsets[j + 1] - 1] != 0
    np.testing.assert_array_equal(rebuilt, dense)
    assert length.sum() < dense.size  # actually sparse


def test_empty_mel_filters_have_zero_length():
    spec = FrontEnd.melspectrogram(n_fft=256, n_mels=128, sample_rate=22050)
    start, length, _ = spec.sparse_filterbank()
    empty = ~spec.dense_filterbank().any(axis=0)
    assert empty.any()
    assert (length[empty] == 0).all() and (start[empty] == 0).all()


def test_filterbanks_are_cached_and_read_only():
    spec = FrontEnd.melspectrogram(n_fft=1024)
    # A spec differing only in framing shares the cached weights.
    other_framing = FrontEnd.melspectrogram(n_fft=1024, hop_length=100)
    assert spec.dense_filterbank() is other_framing.dense_filterbank()
    assert spec.sparse_filterbank() is spec.sparse_filterbank()
    with pytest.raises(ValueError):
        spec.dense_filterbank()[0, 0] = 1.0
    with pytest.raises(ValueError):
        spec.sparse_filterbank()[2][0] = 1.0


def test_front_end_of_builds_each_spec_once_and_follows_keras_layout(monkeypatch):
    from kapre_fast import _checks
    from kapre_fast import spec as spec_module

    first = spec_module.front_end_of('melspectrogram', dict(n_fft=256, n_mels=20))
    assert first is spec_module.front_end_of('melspectrogram', dict(n_mels=20, n_fft=256))
    assert first == FrontEnd.melspectrogram(n_fft=256, n_mels=20)
    # 'default' layouts resolve from Keras' image_data_format: a change gives another spec.
    monkeypatch.setattr(_checks, '_keras_image_data_format', lambda: 'channels_first')
    other = spec_module.front_end_of('melspectrogram', dict(n_fft=256, n_mels=20))
    assert other.input_data_format == 'channels_first' and other is not first
    with pytest.raises(TypeError, match='mel_norm'):  # unhashable: not cached, still checked
        spec_module.front_end_of('melspectrogram', dict(mel_norm=[2]))
