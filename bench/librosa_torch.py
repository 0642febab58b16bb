"""librosa's features composed from stock torch ops: the torch peer of bench/front_end_extras.py.

What a torch user writes to get librosa's numbers without librosa in the loop (and without
torchaudio, which has no release for the installed torch): torch.stft(center=True,
pad_mode='constant') with a periodic Hann window of n_fft -> |X|**power -> matmul with
librosa.filters.mel (built once, outside the timing) -> power_to_db (10 log10(max(S, 1e-10)),
clamped top_db below each example's peak) -> matmul with the orthonormal DCT-II (MFCC); or the
mel through librosa.pcen's formulas, its smoother an explicit loop over frames (torch has no IIR
filter op). float32 throughout, as the inputs. Outputs (batch, frames, features).
"""

from __future__ import annotations

import math

import numpy as np


class LibrosaTorch:
    """librosa.feature.melspectrogram's settings (sample_rate, n_fft, hop_length, n_mels, power)
    on (batch, time) float32 tensors."""

    def __init__(self, torch, sample_rate, n_fft, hop_length, n_mels, power=2.0):
        import librosa
        import scipy.fft

        if power not in (1.0, 2.0):
            raise ValueError(f'power must be 1 or 2, got {power!r}')
        self.torch = torch
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.power = power
        # librosa.get_window('hann', n_fft, fftbins=True) is the periodic Hann window.
        self.window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32)
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)  # (mels, freq)
        self.filterbank = torch.from_numpy(np.ascontiguousarray(basis.T, dtype=np.float32))
        # Column j: the DCT of the j-th unit vector, so mel_db @ dct[:, :n_mfcc] is the first
        # n_mfcc coefficients of scipy.fft.dct(type=2, norm='ortho') along the mel axis.
        self.dct = scipy.fft.dct(np.eye(n_mels), type=2, norm='ortho', axis=0).T

    def mel(self, audio):
        """Power (or magnitude) mel spectrogram, (batch, frames, n_mels)."""
        torch = self.torch
        spectrum = torch.stft(
            audio,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode='constant',
            return_complex=True,
        )
        if self.power == 2.0:
            magnitude = spectrum.real.square() + spectrum.imag.square()
        else:
            magnitude = spectrum.abs()
        return torch.matmul(magnitude.transpose(1, 2), self.filterbank)

    def power_to_db(self, mel, top_db=80.0, amin=1e-10):
        """librosa.power_to_db(ref=1.0) per example: the clamp is against each example's peak."""
        torch = self.torch
        db = torch.log10(torch.clamp_min(mel, amin)) * 10.0
        peak = torch.amax(db, dim=(1, 2), keepdim=True)
        return torch.maximum(db, peak - top_db)

    def dct_matrix(self, n_mfcc):
        """(n_mels, n_mfcc) float32 tensor for mel_db @ matrix (built outside the timing)."""
        return self.torch.from_numpy(np.ascontiguousarray(self.dct[:, :n_mfcc], np.float32))

    def mfcc(self, audio, dct_matrix):
        """librosa.feature.mfcc (lifter 0): (batch, frames, n_mfcc)."""
        return self.torch.matmul(self.power_to_db(self.mel(audio)), dct_matrix)

    def pcen(self, audio, gain=0.98, bias=2.0, power=0.5, time_constant=0.4, eps=1e-6):
        """librosa.pcen(mel, sr, hop_length) (max_size=1) of this object's mel, (batch, frames,
        n_mels). The smoother M[t] = (1 - b) M[t - 1] + b S[t] starts from M[-1] = 1, which is
        librosa's zi = lfilter_zi([b], [1, b - 1])."""
        torch = self.torch
        mel = self.mel(audio)
        t_frames = time_constant * self.sample_rate / self.hop_length
        b = (math.sqrt(1 + 4 * t_frames**2) - 1) / (2 * t_frames**2)
        smooth = torch.empty_like(mel)
        state = torch.ones_like(mel[:, 0])
        for t in range(mel.shape[1]):
            state = torch.add(state * (1.0 - b), mel[:, t], alpha=b)
            smooth[:, t] = state
        # librosa's forms, in its order: log-space gain, then its power/bias cases.
        smooth = torch.exp(-gain * (math.log(eps) + torch.log1p(smooth / eps)))
        if power == 0:
            return torch.log1p(mel * smooth)
        if bias == 0:
            return torch.exp(power * (torch.log(mel) + torch.log(smooth)))
        return bias**power * torch.expm1(power * torch.log1p(mel * smooth / bias))
