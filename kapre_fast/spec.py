"""The one validated specification of a kapre-style audio front end.

A `FrontEnd` describes everything `kapre.composed`'s get_* functions take (minus `input_shape` and
`name`): framing, window, FFT size, filterbank, decibel scaling and data layouts. It is checked
once, in `__post_init__`, with messages that name the argument and the value, and it resolves
every default (`win_length`, `hop_length`, `window_name`, `mel_f_max`, `log_f_min`, the data
formats) so that the backends (reference, cpu, gpu, TF ops) see one complete description.

Its weights (the analysis window exactly as `tf.signal` builds it, the mel / log-frequency
filterbanks exactly as kapre builds them) come from `kapre_fast.tables`, which also holds the
MFCC's DCT and PCEN's constants (re-exported here: `mfcc_matrix`, `pcen_constants`); the shared
argument checks are `kapre_fast._checks`.

Only NumPy is imported. `'default'` data formats follow Keras' `image_data_format()` when Keras is
already imported, else `'channels_last'`; this module never imports Keras itself.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
from typing import Optional, Union

import numpy as np

from kapre_fast import _checks, tables
from kapre_fast._checks import (
    _check_bool,
    _check_choice,
    _check_data_format,
    _check_float32_positive,
    _check_int,
    _check_positive,
    _check_real,
)
from kapre_fast.errors import FilterbankRangeError, UnsupportedWindowError

# The weights' module, re-exported: kapre_fast.spec has always been where they are imported from.
from kapre_fast.tables import PCEN_DEFAULTS as PCEN_DEFAULTS
from kapre_fast.tables import PCENConstants as PCENConstants
from kapre_fast.tables import mfcc_matrix as mfcc_matrix
from kapre_fast.tables import pcen_constants as pcen_constants

# Largest supported FFT size (the native core's kMaxFftLength): 2**16 points is 1.5 s at 44.1 kHz,
# far beyond any spectrogram front end; the cap keeps a typo from allocating gigabytes.
MAX_N_FFT = 1 << 16

WINDOW_NAMES = (
    'hann_window',
    'hamming_window',
    'kaiser_window',
    'kaiser_bessel_derived_window',
    'vorbis_window',
)
OUTPUTS = ('magnitude', 'mag_phase', 'complex')
# Whose numbers a front end reproduces (see PRESET_DEFAULTS and FrontEnd's docstring).
COMPATS = ('kapre', 'librosa', 'torchaudio')
PAD_MODES = ('constant', 'reflect')
# Windows the presets take, under kapre's names, built as those libraries build them (periodic).
PRESET_WINDOWS = ('hann_window', 'hamming_window')
FILTERBANKS = ('none', 'mel', 'log')

# kapre's filterbank_log default lowest centre frequency: C1 in Hz.
LOG_F_MIN_DEFAULT = 32.70319566

_FRAMING_ARGS = ('n_fft', 'win_length', 'hop_length', 'window_name', 'pad_begin', 'pad_end')
_DECIBEL_ARGS = ('return_decibel', 'db_amin', 'db_ref_value', 'db_dynamic_range')
_MEL_ARGS = ('sample_rate', 'n_mels', 'mel_f_min', 'mel_f_max', 'mel_htk', 'mel_norm')
_LOG_ARGS = ('sample_rate', 'log_n_bins', 'log_f_min', 'log_bins_per_octave', 'log_spread')
_FORMAT_ARGS = ('input_data_format', 'output_data_format')
# Arguments of a preset (compat='librosa' or 'torchaudio'), named as those libraries name them;
# None means the preset's own default (PRESET_DEFAULTS). With compat='kapre' they stay None.
PRESET_ARGUMENTS = ('compat', 'center', 'pad_mode', 'power', 'amin', 'ref', 'top_db')
# The preset libraries' defaults: librosa.stft / feature.melspectrogram / power_to_db (amin 1e-10;
# amplitude_to_db's 1e-5 when power=1), torchaudio.transforms.MelSpectrogram / AmplitudeToDB
# (amin 1e-10, top_db None: no clamp, here math.inf).
PRESET_DEFAULTS = {
    'librosa': dict(center=True, pad_mode='constant', power=2.0, ref=1.0, top_db=80.0),
    'torchaudio': dict(center=True, pad_mode='reflect', power=2.0, ref=1.0, top_db=math.inf),
}
# What a preset's library takes for the kapre arguments a caller leaves out, where it is not
# kapre's default (library_defaults fills them in). librosa.feature.melspectrogram / mfcc / pcen
# take kapre's: n_fft 2048, hop_length win_length // 4, sample_rate 22050, 128 mels on Slaney's
# scale with Slaney's norm. torchaudio.transforms.Spectrogram / MelSpectrogram / MFCC: n_fft 400,
# hop_length win_length // 2, sample_rate 16000, 128 mels on the HTK scale without norm.
LIBRARY_DEFAULTS = {
    'kapre': {},
    'librosa': {},
    'torchaudio': dict(n_fft=400, sample_rate=16000, mel_htk=True, mel_norm=None),
}
# MFCC: librosa.feature.mfcc's n_mfcc 20 (its power_to_db clamps at top_db 80: the preset's);
# torchaudio.transforms.MFCC's n_mfcc 40 and AmplitudeToDB('power', top_db=80.0).
MFCC_LIBRARY_DEFAULTS = {
    'kapre': dict(n_mfcc=20),
    'librosa': dict(n_mfcc=20),
    'torchaudio': dict(n_mfcc=40, top_db=80.0),
}
# The keyword arguments of each kapre function, in kapre's order, minus `input_shape` and `name`:
# kapre.composed's get_* functions, and kapre's STFT layer for 'stft'. Their defaults are the
# FrontEnd fields' (`FrontEnd.kapre_signature`).
KAPRE_ARGUMENTS = {
    'stft_magnitude': _FRAMING_ARGS + _DECIBEL_ARGS + _FORMAT_ARGS,
    'melspectrogram': _FRAMING_ARGS + _MEL_ARGS + _DECIBEL_ARGS + _FORMAT_ARGS,
    'log_frequency_spectrogram': _FRAMING_ARGS + _LOG_ARGS + _DECIBEL_ARGS + _FORMAT_ARGS,
    'stft_mag_phase': _FRAMING_ARGS + _DECIBEL_ARGS + _FORMAT_ARGS,
    'stft': _FRAMING_ARGS + _FORMAT_ARGS,
}


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """A validated kapre front end: waveform -> frames -> window -> rFFT -> |.| -> filterbank -> dB.

    Construct it directly with field names, or with the constructors that take exactly the
    keyword arguments of the matching kapre function (`FrontEnd.melspectrogram(n_mels=64)`).
    After construction every default is resolved: `win_length`, `hop_length`, `window_name`,
    `mel_f_max`, `log_f_min` and both data formats hold concrete values. The field defaults
    are kapre's; with compat='librosa' or 'torchaudio', fields left out take that library's
    (LIBRARY_DEFAULTS, library_defaults), however the FrontEnd is constructed. Without
    return_decibel the db_* fields are unused, as in kapre: not checked, and set to their
    defaults.
    """

    n_fft: int = 2048
    win_length: Optional[int] = None
    hop_length: Optional[int] = None
    window_name: Optional[str] = None
    pad_begin: bool = False
    pad_end: bool = False
    output: str = 'magnitude'
    filterbank: str = 'none'
    sample_rate: Union[int, float] = 22050
    n_mels: int = 128
    mel_f_min: float = 0.0
    mel_f_max: Optional[float] = None
    mel_htk: bool = False
    mel_norm: Union[str, float, None] = 'slaney'
    log_n_bins: int = 84
    log_f_min: Optional[float] = None
    log_bins_per_octave: int = 12
    log_spread: float = 0.125
    return_decibel: bool = False
    db_amin: float = 1e-5
    db_ref_value: float = 1.0
    db_dynamic_range: float = 80.0
    input_data_format: str = 'default'
    output_data_format: str = 'default'
    compat: str = 'kapre'
    center: Optional[bool] = None
    pad_mode: Optional[str] = None
    power: Optional[float] = None
    amin: Optional[float] = None
    ref: Optional[float] = None
    top_db: Optional[float] = None

    def __post_init__(self):
        resolved = _validated_fields(self)
        for name, value in resolved.items():
            object.__setattr__(self, name, value)

    # ----- constructors mirroring kapre.composed -------------------------------------------------

    @classmethod
    def stft_magnitude(cls, **kwargs) -> 'FrontEnd':
        """The front end of `get_stft_magnitude_layer(**kwargs)`."""
        return cls._from_kapre('stft_magnitude', kwargs)

    @classmethod
    def melspectrogram(cls, **kwargs) -> 'FrontEnd':
        """The front end of `get_melspectrogram_layer(**kwargs)`."""
        return cls._from_kapre('melspectrogram', kwargs, filterbank='mel')

    @classmethod
    def log_frequency_spectrogram(cls, **kwargs) -> 'FrontEnd':
        """The front end of `get_log_frequency_spectrogram_layer(**kwargs)`."""
        return cls._from_kapre('log_frequency_spectrogram', kwargs, filterbank='log')

    @classmethod
    def stft_mag_phase(cls, **kwargs) -> 'FrontEnd':
        """The front end of `get_stft_mag_phase(**kwargs)`: [magnitude (or dB), phase] channels."""
        return cls._from_kapre('stft_mag_phase', kwargs, output='mag_phase')

    @classmethod
    def stft(cls, **kwargs) -> 'FrontEnd':
        """The front end of kapre's `STFT` layer: the complex spectrum."""
        return cls._from_kapre('stft', kwargs, output='complex')

    @classmethod
    def kapre_signature(cls, function: str) -> inspect.Signature:
        """The keyword-only arguments of `FrontEnd.<function>()` (a key of KAPRE_ARGUMENTS),
        in kapre's order and with kapre's defaults: those of the matching fields."""
        return inspect.Signature(
            [
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name])
                for name in KAPRE_ARGUMENTS[function]
            ]
        )

    @classmethod
    def preset_signature(cls) -> inspect.Signature:
        """The keyword-only PRESET_ARGUMENTS with their defaults, which every function takes
        after kapre's arguments."""
        return inspect.Signature(
            [
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name])
                for name in PRESET_ARGUMENTS
            ]
        )

    @classmethod
    def inverted_by_istft(
        cls,
        n_fft=2048,
        win_length=None,
        hop_length=None,
        forward_window_name=None,
        stft_data_format='default',
        waveform_data_format='default',
    ) -> 'FrontEnd':
        """The forward STFT that kapre's `InverseSTFT(**same arguments)` inverts: its window and
        sizes; its input is the waveform layout and its output the STFT layout."""
        return cls.stft(
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            window_name=forward_window_name,
            input_data_format=waveform_data_format,
            output_data_format=stft_data_format,
        )

    def istft_arguments(self) -> dict:
        """The arguments of kapre's InverseSTFT (and the backends' istft) that invert this
        STFT: inverted_by_istft's, back from the spec."""
        return dict(
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            forward_window_name=self.window_name,
            stft_data_format=self.output_data_format,
            waveform_data_format=self.input_data_format,
        )

    @classmethod
    def _from_kapre(cls, function, kwargs, **fixed):
        # Every argument left out takes its default through __init__ (library_defaults).
        allowed = KAPRE_ARGUMENTS[function] + PRESET_ARGUMENTS
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(
                f'FrontEnd.{function}() got unexpected keyword argument(s) '
                f'{", ".join(unknown)}; it takes {", ".join(allowed)}'
            )
        return cls(**kwargs, **fixed)

    # ----- sizes ---------------------------------------------------------------------------------

    @property
    def n_freq(self) -> int:
        """Number of rFFT bins: n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def n_features(self) -> int:
        """Size of the last output axis: n_freq, n_mels or log_n_bins."""
        return {'none': self.n_freq, 'mel': self.n_mels, 'log': self.log_n_bins}[self.filterbank]

    @property
    def frame_length(self) -> int:
        """Samples per frame the kernels cut: win_length for kapre; n_fft for a preset, whose
        window is zero-padded on both sides to n_fft (librosa's and torch.stft's centring)."""
        return self.win_length if self.compat == 'kapre' else self.n_fft

    @property
    def center_padding(self) -> int:
        """Samples a preset pads on each side of the audio (pad_mode) with center: n_fft // 2."""
        return self.n_fft // 2 if self.center else 0

    def without_centring(self) -> 'FrontEnd':
        """This front end for audio its caller has already centred (center=False): what the
        kernels run after a binding pads the audio itself (torch, jax: a differentiable pad
        before the op, as kapre_fast.ops' tf.pad)."""
        return dataclasses.replace(self, center=False) if self.center_padding else self

    @property
    def power_exponent(self) -> int:
        """1: magnitudes |X| (kapre); 2: power |X|^2."""
        return 1 if self.power is None else int(self.power)

    @property
    def decibel(self):
        """(multiplier, amin, ref, dynamic range) of the dB stage, every preset as one formula:
        y = multiplier * (log10(max(x, amin)) - log10(max(amin, ref))), then
        y = max(y, max of y over the example's frames, features and channels - range).
        kapre: 10 * log10 of a MAGNITUDE with db_amin, db_ref_value, db_dynamic_range. librosa:
        power_to_db (10, of power) or amplitude_to_db (20, of magnitudes; its amin and ref
        squared inside power_to_db give the same values), top_db. torchaudio: AmplitudeToDB,
        stype 'power' (10) or 'magnitude' (20); its top_db clamps per spectrogram as well."""
        if self.compat == 'kapre':
            return 10.0, self.db_amin, self.db_ref_value, self.db_dynamic_range
        return (10.0 if self.power_exponent == 2 else 20.0), self.amin, self.ref, self.top_db

    @property
    def pad_begin_length(self) -> int:
        """Zeros prepended to the audio: n_fft - hop_length with pad_begin (n_fft, not win_length,
        as kapre does despite its docstring), else 0."""
        return self.n_fft - self.hop_length if self.pad_begin else 0

    def n_frames(self, n_samples: int, allow_empty: bool = False) -> int:
        """Number of frames for audio of `n_samples` samples, as tf.signal.frame counts them.

        Audio too short for one frame: ValueError saying so, or, with allow_empty (kapre's
        numerics only), 0, as tf.signal.frame and so kapre's layers count it (the Keras layers
        return an empty spectrogram there, as kapre's do). The presets always raise, as
        librosa and torch.stft do.
        """
        n_samples = _check_int('n_samples', n_samples, minimum=0)
        if self.compat != 'kapre':
            return self._preset_n_frames(n_samples)
        total = n_samples + self.pad_begin_length
        frames = frame_count(total, self.win_length, self.hop_length, self.pad_end)
        if frames or allow_empty:
            return frames
        if self.pad_end:
            raise ValueError('audio has 0 samples; pad_end=True still needs at least one sample')
        after = ' (after pad_begin)' if self.pad_begin else ''
        raise ValueError(
            f'audio has {total} samples{after}; one frame needs win_length={self.win_length}'
            ' samples; pass longer audio or pad_end=True'
        )

    def _preset_n_frames(self, n_samples):
        pad = self.center_padding
        if self.pad_mode == 'reflect' and pad and n_samples <= pad:
            raise ValueError(
                f"audio has {n_samples} samples; pad_mode='reflect' pads n_fft // 2 = {pad} "
                f'samples mirrored from inside the audio, which needs more than {pad} samples; '
                "pass longer audio or pad_mode='constant'"
            )
        total = n_samples + 2 * pad
        frames = frame_count(total, self.n_fft, self.hop_length, pad_end=False)
        if not frames:
            centred = f' ({total} with center)' if pad else ''
            raise ValueError(
                f'audio has {n_samples} samples{centred}; one frame needs n_fft={self.n_fft} '
                'samples; pass longer audio' + ('' if pad else ' or center=True')
            )
        return frames

    def output_shape(self, audio_shape, n_features=None, allow_empty=False) -> tuple:
        """The result's shape for audio of `audio_shape` (3 axes in input_data_format; None for
        an axis not known yet, which stays None): (batch, frames, features, channels) or, for
        output_data_format 'channels_first', (batch, channels, frames, features); mag_phase
        doubles the channels. `n_features`: the features axis (default n_features; an MFCC's
        n_mfcc). ValueError (n_frames') for audio too short for one frame; allow_empty: 0
        frames (kapre's layers). Every Python caller's output shape (the Keras layers'
        compute_output_shape, the JAX calls' result shapes); csrc/core/call_checks has the
        kernels'."""
        if len(audio_shape) != 3:
            raise ValueError(f'audio must have 3 axes, got shape {tuple(audio_shape)}')
        if self.input_data_format == 'channels_last':
            batch, time, channels = audio_shape
        else:
            batch, channels, time = audio_shape
        frames = None if time is None else self.n_frames(time, allow_empty)
        if channels is not None and self.output == 'mag_phase':
            channels = 2 * channels
        features = self.n_features if n_features is None else n_features
        return feature_layout(
            batch, channels, frames, features, self.output_data_format == 'channels_first'
        )

    # ----- weights -------------------------------------------------------------------------------

    def window(self) -> np.ndarray:
        """The analysis window (float64, length frame_length): for kapre as tf.signal computes
        it (length win_length); for a preset the periodic window of win_length points
        (scipy.signal.get_window(fftbins=True), torch.hann_window) zero-padded on both sides to
        n_fft, as librosa.stft and torch.stft centre it.

        The array is cached and read-only; copy it before modifying it.
        """
        if self.compat == 'kapre':
            return tables.window(self.window_name, self.win_length)
        return tables.preset_window(self.window_name, self.win_length, self.n_fft)

    def inverse_window(self) -> np.ndarray:
        """The synthesis window of tf.signal.inverse_stft_window_fn(hop_length, forward window):
        the forward window divided by the overlap-added squared forward window (0 where that sum
        is 0). Cached and read-only."""
        return tables.inverse_window(self.window_name, self.win_length, self.hop_length)

    def dense_filterbank(self) -> Optional[np.ndarray]:
        """Dense (n_freq, n_features) float64 filterbank, or None when filterbank == 'none'.

        (Named dense_filterbank because `filterbank` is the field that picks 'none'/'mel'/'log'.)

        mel: librosa.filters.mel(sr=sample_rate, n_fft=(n_freq - 1) * 2, ...) transposed.
        log: kapre.backend.filterbank_log. Cached and read-only.
        """
        key = self._filterbank_key()
        return None if key is None else tables.dense_filterbank(key)

    def sparse_filterbank(self):
        """The filterbank as runs: (start int32[n_features], length int32[n_features],
        weights float32[sum(length)]).

        Filter j is `weights[offset_j : offset_j + length[j]]` applied to frequency bins
        `start[j] : start[j] + length[j]`, where offset_j = sum(length[:j]). Each run spans the
        filter's first to last entry that is non-zero in float32; an all-zero filter has length 0
        (and start 0). Scattering the runs back gives `dense_filterbank().astype(float32)`
        exactly.
        None when filterbank == 'none'. Cached and read-only.
        """
        key = self._filterbank_key()
        return None if key is None else tables.sparse_filterbank(key)

    def _mel_frequencies(self):
        # Where each preset puts the FFT bins the mel triangles are evaluated at (see
        # _fft_frequencies): kapre (n_freq - 1) * 2 points, librosa n_fft points, torchaudio
        # linspace(0, sample_rate // 2, n_freq).
        return {'kapre': 'kapre', 'librosa': self.n_fft, 'torchaudio': 'linspace'}[self.compat]

    def _filterbank_key(self):
        # Only the arguments that shape the matrix, so specs differing in framing share a cache
        # entry.
        if self.filterbank == 'mel':
            return (
                'mel',
                self.sample_rate,
                self.n_freq,
                self.n_mels,
                self.mel_f_min,
                self.mel_f_max,
                self.mel_htk,
                self.mel_norm,
                self._mel_frequencies(),
            )
        if self.filterbank == 'log':
            return (
                'log',
                self.sample_rate,
                self.n_freq,
                self.log_n_bins,
                self.log_bins_per_octave,
                self.log_f_min,
                self.log_spread,
            )
        return None

    # ----- layouts -------------------------------------------------------------------------------

    def layout_input(self, x):
        """A waveform batch in `input_data_format` as a (batch, channels, time) view.

        Works on any array with `ndim`, `shape` and `transpose` (NumPy, CuPy). ValueError unless
        x has 3 axes; for 1 or 2 axes the message says how to add the missing ones.
        """
        if not hasattr(x, 'ndim'):
            x = np.asarray(x)
        channels_last = self.input_data_format == 'channels_last'
        if x.ndim != 3:
            expected = '(batch, time, channels)' if channels_last else '(batch, channels, time)'
            raise ValueError(
                f'audio must have 3 axes {expected} for input_data_format='
                f'{self.input_data_format!r}, got shape {tuple(x.shape)}'
                + _reshape_hint(x.ndim, channels_last)
            )
        return x.transpose(0, 2, 1) if channels_last else x

    def layout_output(self, y):
        """A (batch, channels, frames, features) result in `output_data_format`: channels_last
        is (batch, frames, features, channels), channels_first is returned as it is."""
        if self.output_data_format == 'channels_last':
            return y.transpose(0, 2, 3, 1)
        return y


def frame_count(total: int, frame_length: int, hop_length: int, pad_end: bool) -> int:
    """Frames tf.signal.frame cuts from `total` samples (after any padding in front): with
    pad_end ceil(total / hop_length) (zeros appended up to the last frame's end), else 1 +
    (total - frame_length) // hop_length; 0 where not one frame fits. FrontEnd.n_frames, the TF
    graphs' static shapes (kapre_fast._tf_shapes) and the composition's framing (end_padding,
    JAX's frame) count with it; csrc/core's frame_count is the kernels'."""
    if pad_end:
        return -(-total // hop_length)
    return 1 + (total - frame_length) // hop_length if total >= frame_length else 0


def istft_length(frames: int, hop_length: int, win_length: int) -> int:
    """Samples of the inverse STFT of `frames` frames: (frames - 1) * hop_length + win_length
    (None for frames not known yet)."""
    return None if frames is None else (frames - 1) * hop_length + win_length


def feature_layout(batch, channels, frames, features, channels_first: bool) -> tuple:
    """(batch, channels, frames, features) laid out as channels_first, or as channels_last
    (batch, frames, features, channels)."""
    if channels_first:
        return (batch, channels, frames, features)
    return (batch, frames, features, channels)


def time_axis(data_format: str) -> int:
    """The time axis (audio's samples, a spectrogram's frames) of a tensor in data_format: 1 for
    'channels_last' ((batch, time, ...)), 2 for 'channels_first' ((batch, channels, time, ...))."""
    return 1 if data_format == 'channels_last' else 2


def require_kapre_numerics(spec: FrontEnd, where: str):
    """ValueError naming `where` when `spec` uses a preset, for the paths that compute
    compat='kapre' only (today the builtin inverse STFT; every front end, the GPU and the
    builtin/export path included, runs the presets)."""
    if spec.compat != 'kapre':
        raise ValueError(
            f"compat={spec.compat!r}: {where} computes compat='kapre' only; the presets' inverse "
            'STFT runs in kapre_fast.reference, cpu, gpu, torch, jax and the fused layers'
        )


def _reshape_hint(ndim, channels_last):
    """How to add the missing axes of 1-D or 2-D audio (2-D is ambiguous: both readings)."""
    if ndim == 1:
        view = 'x[None, :, None]' if channels_last else 'x[None, None, :]'
        return f'; for one mono signal pass {view}'
    if ndim == 2:
        mono = 'x[:, :, None]' if channels_last else 'x[:, None, :]'
        one = '(time, channels)' if channels_last else '(channels, time)'
        return (
            f'; for a batch of mono signals (batch, time) pass {mono}, for one signal '
            f'{one} pass x[None]'
        )
    return ''


def check_audio_dtype(dtype) -> np.dtype:
    """Every backend's dtype policy for audio, kapre's: real floating point of any width, or
    integers taken unscaled (int16 samples stay in [-32768, 32767], as kapre casts them to
    float without scaling). TypeError naming `audio` and the dtype for anything else (bool,
    complex, strings, objects). Returns the dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind not in 'fiu':
        raise TypeError(
            'audio must be a real array (floating point, or integers taken unscaled as kapre '
            f'does), got dtype {dtype}'
        )
    return dtype


# ----- validation --------------------------------------------------------------------------------

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(FrontEnd)}


def _check_window_name(value):
    if value is None:
        return 'hann_window'
    if not isinstance(value, str):
        raise TypeError(
            f'window_name must be a string or None, got {type(value).__name__} {value!r}'
        )
    if value not in WINDOW_NAMES:
        raise UnsupportedWindowError(
            f'window_name {value!r} is not supported; the supported windows are '
            f'{", ".join(WINDOW_NAMES)}'
        )
    return value


def _check_mel_norm(value):
    # librosa takes 'slaney', None or a number p for p-norm normalisation of each filter. Of the
    # numbers, only p > 0 (inf: max-norm) means something for a filter; librosa's 0 (count of
    # non-zero weights) and -inf (smallest weight, i.e. 0: no scaling) are rejected here.
    if value is None or value == 'slaney':
        return value
    if isinstance(value, str):
        raise ValueError(f"mel_norm must be 'slaney', None or a number > 0, got {value!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"mel_norm must be 'slaney', None or a number > 0, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    if math.isnan(value) or value <= 0:
        raise ValueError(f"mel_norm must be 'slaney', None or a number > 0, got {value!r}")
    return value


def _validated_fields(spec):
    """Checks every field of `spec`; returns them all with defaults resolved."""
    v = {}
    v['n_fft'] = n_fft = _check_int('n_fft', spec.n_fft, minimum=2)
    if n_fft > MAX_N_FFT:
        raise ValueError(f'n_fft must be <= MAX_N_FFT = {MAX_N_FFT}, got {n_fft}')
    win_length = n_fft if spec.win_length is None else spec.win_length
    v['win_length'] = win_length = _check_int('win_length', win_length, minimum=1)
    hop_length = win_length // 4 if spec.hop_length is None else spec.hop_length
    if spec.hop_length is None and hop_length < 1:
        raise ValueError(
            f'hop_length must be >= 1, got {hop_length} (the default win_length // 4 with '
            f'win_length={win_length}); pass hop_length'
        )
    v['hop_length'] = hop_length = _check_int('hop_length', hop_length, minimum=1)
    for name, value in (('win_length', win_length), ('hop_length', hop_length)):
        if value > MAX_N_FFT:
            raise ValueError(f'{name} must be <= MAX_N_FFT = {MAX_N_FFT}, got {value}')
    v['window_name'] = window_name = _check_window_name(spec.window_name)
    v['pad_begin'] = pad_begin = _check_bool('pad_begin', spec.pad_begin)
    v['pad_end'] = _check_bool('pad_end', spec.pad_end)
    v['output'] = output = _check_choice('output', spec.output, OUTPUTS)
    v['filterbank'] = filterbank = _check_choice('filterbank', spec.filterbank, FILTERBANKS)

    if pad_begin and n_fft < hop_length:
        raise ValueError(
            f'pad_begin=True prepends n_fft - hop_length zeros, which needs hop_length <= n_fft, '
            f'got n_fft={n_fft}, hop_length={hop_length}'
        )
    if window_name == 'kaiser_bessel_derived_window' and win_length % 2:
        raise ValueError(
            f'window_name=kaiser_bessel_derived_window needs an even win_length, got '
            f'{win_length}: tf.signal builds it from two halves and returns win_length - 1 '
            'samples for an odd length, which kapre cannot multiply into its frames (it fails '
            "with TensorFlow's 'Dimensions must be equal' error)"
        )

    sample_rate = _check_real('sample_rate', spec.sample_rate)
    if sample_rate <= 0:
        raise ValueError(f'sample_rate must be > 0, got {sample_rate!r}')
    v['sample_rate'] = (
        int(sample_rate) if isinstance(sample_rate, numbers.Integral) else float(sample_rate)
    )

    v['n_mels'] = _check_int('n_mels', spec.n_mels, minimum=1, whole_floats=True)
    v['mel_f_min'] = mel_f_min = float(_check_real('mel_f_min', spec.mel_f_min))
    if mel_f_min < 0:
        raise ValueError(f'mel_f_min must be >= 0, got {mel_f_min!r}')
    mel_f_max = sample_rate / 2 if spec.mel_f_max is None else spec.mel_f_max
    v['mel_f_max'] = mel_f_max = float(_check_real('mel_f_max', mel_f_max))
    if mel_f_max <= mel_f_min:
        raise ValueError(
            f'mel_f_max must be > mel_f_min, got mel_f_max={mel_f_max!r}, mel_f_min={mel_f_min!r}'
        )
    v['mel_htk'] = _check_bool('mel_htk', spec.mel_htk)
    v['mel_norm'] = _check_mel_norm(spec.mel_norm)

    v['log_n_bins'] = log_n_bins = _check_int('log_n_bins', spec.log_n_bins, minimum=1)
    log_f_min = LOG_F_MIN_DEFAULT if spec.log_f_min is None else spec.log_f_min
    v['log_f_min'] = log_f_min = _check_positive('log_f_min', log_f_min)
    v['log_bins_per_octave'] = bins_per_octave = _check_int(
        'log_bins_per_octave', spec.log_bins_per_octave, minimum=1, whole_floats=True
    )
    v['log_spread'] = _check_positive('log_spread', spec.log_spread)
    if filterbank == 'log':
        # kapre's check, floor division included.
        log_f_max = log_f_min * 2 ** (log_n_bins / bins_per_octave)
        if log_f_max > sample_rate // 2:
            raise FilterbankRangeError(
                f'the log filterbank reaches log_f_min * 2**(log_n_bins / log_bins_per_octave) = '
                f'{log_f_max:g} Hz, above sample_rate // 2 = {sample_rate // 2} Hz (log_f_min='
                f'{log_f_min!r}, log_n_bins={log_n_bins}, log_bins_per_octave={bins_per_octave}, '
                f'sample_rate={sample_rate!r}); reduce log_n_bins or log_f_min, or raise '
                'log_bins_per_octave'
            )

    v['return_decibel'] = return_decibel = _check_bool('return_decibel', spec.return_decibel)
    # As kapre, which builds its MagnitudeToDecibel only with return_decibel: without it the dB
    # arguments are unused, whatever they hold (None included), and take their defaults. With
    # it, amin and ref must stay > 0 and finite in float32, the kernels' precision.
    checks = {
        'db_amin': _check_float32_positive,
        'db_ref_value': _check_float32_positive,
        'db_dynamic_range': _check_positive,
    }
    for name, check in checks.items():
        v[name] = check(name, getattr(spec, name)) if return_decibel else _DEFAULTS[name]

    if output == 'complex' and (filterbank != 'none' or return_decibel):
        raise ValueError(
            f"output='complex' is the raw STFT: it takes neither a filterbank nor decibels, got "
            f'filterbank={filterbank!r}, return_decibel={return_decibel}'
        )
    if output == 'mag_phase' and filterbank != 'none':
        raise ValueError(
            f"output='mag_phase' pairs each frequency bin's magnitude with its phase, so it takes "
            f'no filterbank, got filterbank={filterbank!r}'
        )

    v['input_data_format'] = _check_data_format('input_data_format', spec.input_data_format)
    v['output_data_format'] = _check_data_format('output_data_format', spec.output_data_format)
    v.update(_validated_preset(spec, v))
    return v


def _validated_preset(spec, v):
    """compat and the preset arguments, resolved against the already checked fields `v`."""
    compat = _check_choice('compat', spec.compat, COMPATS)
    given = {name: getattr(spec, name) for name in PRESET_ARGUMENTS[1:]}
    if compat == 'kapre':
        passed = [f'{name}={value!r}' for name, value in given.items() if value is not None]
        if passed:
            raise ValueError(
                f"{', '.join(passed)} are preset arguments: pass compat='librosa' or "
                "'torchaudio' with them (kapre's own are pad_begin, pad_end, db_amin, "
                'db_ref_value, db_dynamic_range)'
            )
        return {'compat': compat}
    kapre_only = [
        f'{name}={v[name]!r}'
        for name in ('pad_begin', 'pad_end', 'db_amin', 'db_ref_value', 'db_dynamic_range')
        if v[name] != _DEFAULTS[name]
    ]
    if kapre_only:
        raise ValueError(
            f"{', '.join(kapre_only)}: kapre's framing and dB arguments do not apply with "
            f'compat={compat!r}; use center/pad_mode and amin/ref/top_db'
        )
    if v['window_name'] not in PRESET_WINDOWS:
        raise ValueError(
            f'window_name={v["window_name"]!r} is not offered with compat={compat!r}; it takes '
            f'{", ".join(PRESET_WINDOWS)} (periodic, as {compat} builds them)'
        )
    if v['win_length'] > v['n_fft']:
        raise ValueError(
            f'win_length={v["win_length"]} must be <= n_fft={v["n_fft"]} with compat={compat!r} '
            '(the window is zero-padded on both sides to n_fft)'
        )
    r = {'compat': compat}
    preset = {**PRESET_DEFAULTS[compat], **{k: x for k, x in given.items() if x is not None}}
    r['center'] = _check_bool('center', preset['center'])
    r['pad_mode'] = _check_choice('pad_mode', preset['pad_mode'], PAD_MODES)
    if v['output'] == 'complex':
        if given['power'] is not None:
            raise ValueError(f'power={given["power"]!r}: the complex STFT takes no power')
        r['power'] = None
    else:
        power = _check_real('power', preset['power'])
        if power not in (1, 2):
            raise ValueError(f'power must be 1 (magnitude) or 2 (power), got {power!r}')
        r['power'] = float(power)
    # librosa.amplitude_to_db's floor is 1e-5, power_to_db's and torchaudio's 1e-10.
    amin = preset.get('amin', 1e-5 if compat == 'librosa' and r['power'] == 1.0 else 1e-10)
    r['amin'] = _check_positive('amin', amin)
    r['ref'] = _check_positive('ref', preset['ref'])
    top_db = _check_real('top_db', preset['top_db'], finite=False)
    if not top_db > 0:
        raise ValueError(f'top_db must be > 0 (math.inf: no clamp), got {top_db!r}')
    r['top_db'] = float(top_db)
    return r


# ----- what an argument left out means ------------------------------------------------------


def library_defaults(given: dict, mfcc: bool = False) -> dict:
    """The arguments a call leaves out that its compat's library sets otherwise than kapre:
    `given` holds the call's explicit arguments (compat among them, or kapre's); the result,
    those of LIBRARY_DEFAULTS[compat] (and MFCC_LIBRARY_DEFAULTS with `mfcc`) not in `given`,
    plus torchaudio's hop_length = win_length // 2 where hop_length is left out or None. An
    unknown compat fills nothing (validation names it)."""
    compat = given.get('compat', 'kapre')
    if not isinstance(compat, str) or compat not in LIBRARY_DEFAULTS:
        return {}
    fills = dict(LIBRARY_DEFAULTS[compat], **(MFCC_LIBRARY_DEFAULTS[compat] if mfcc else {}))
    if compat == 'torchaudio' and given.get('hop_length') is None:
        n_fft = given.get('n_fft', fills['n_fft'])
        win_length = n_fft if given.get('win_length') is None else given['win_length']
        if isinstance(win_length, numbers.Integral) and not isinstance(win_length, bool):
            fills['hop_length'] = max(int(win_length) // 2, 1)
    return {
        name: value
        for name, value in fills.items()
        if name not in given or (name == 'hop_length' and given[name] is None)
    }


def fills_library_defaults(function=None, *, mfcc=False):
    """Decorates `function` (taking kapre's keyword arguments and `compat`, by name or through
    **kwargs) so that, with a preset, the arguments its caller leaves out take that library's
    defaults (library_defaults) instead of kapre's in its signature. Its signature (help(),
    inspect) is unchanged. mfcc: n_mfcc (and torchaudio's top_db) too."""
    if function is None:
        return functools.partial(fills_library_defaults, mfcc=mfcc)
    signature = inspect.signature(function)
    kinds = inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    positional = [p.name for p in signature.parameters.values() if p.kind in kinds]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    accepted = frozenset(signature.parameters)

    # Plain dicts and zip at call time (no inspect.Signature.bind): torch.compile traces this
    # where a spec is built inside compiled code (kapre_fast.torch.istft).
    @functools.wraps(function)
    def with_library_defaults(*args, **kwargs):
        fills = library_defaults({**dict(zip(positional, args)), **kwargs}, mfcc)
        if not takes_any:
            fills = {k: v for k, v in fills.items() if k in accepted}
        return function(*args, **{**kwargs, **fills})

    # inspect.getfullargspec (Keras reads a layer's __init__ through it) ignores __wrapped__.
    with_library_defaults.__signature__ = signature
    return with_library_defaults


# Direct construction too: FrontEnd(compat='torchaudio', filterbank='mel') is torchaudio's
# MelSpectrogram(); dataclasses.replace and every copy pass all fields, so nothing is filled.
FrontEnd.__init__ = fills_library_defaults(FrontEnd.__init__)


# ----- one spec per set of arguments ---------------------------------------------------------


def front_end_of(function: str, kwargs: dict) -> FrontEnd:
    """FrontEnd.<function>(**kwargs) (a key of KAPRE_ARGUMENTS), built and validated once per
    set of arguments: the backends' functions call this on every call, where validation would
    otherwise cost tens of microseconds. The key holds Keras' image_data_format too (it
    resolves 'default' layouts); unhashable arguments skip the cache (and are refused by name by
    the validation)."""
    try:
        key = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:
        return getattr(FrontEnd, function)(**kwargs)
    return _front_end_of(function, key, _checks._keras_image_data_format())


@functools.lru_cache(maxsize=256)
def _front_end_of(function, items, image_data_format):
    del image_data_format  # part of the key only
    return getattr(FrontEnd, function)(**dict(items))
