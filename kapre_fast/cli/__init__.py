"""The `kapre-fast` command: spectrogram pictures, batch feature extraction, a quick benchmark
and a demo, all computed by kapre_fast's fused kernels.

    kapre-fast spec speech.wav -o speech.png          # labelled mel spectrogram picture
    kapre-fast features audio/ -o feats/               # one .npy per audio file (recursive)
    kapre-fast features a.wav b.flac -o feats.npz      # or one .npz for all of them
    kapre-fast bench                                   # kapre_fast vs kapre / tf.signal / librosa
    kapre-fast demo                                    # synthesised audio, timed, and a picture
    kapre-fast export model.keras --format tflite -o model.tflite  # runs without kapre_fast

Reading audio needs soundfile and pictures need matplotlib (`pip install ".[cli]"` in the
source checkout);
the baselines of `bench` are used when installed. Errors are printed as
`kapre-fast: error: ...` without a traceback: exit status 2 for a bad command line (unknown or
invalid option value, missing input), 1 for anything else (unreadable audio, a failed file).
TensorFlow's C++ log lines (e.g. "failed call to cuInit" on a machine without a GPU) are off
(TF_CPP_MIN_LOG_LEVEL=3) unless the environment sets that variable.
"""

import os

# Before anything imports TensorFlow; the user's own setting wins.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from kapre_fast.cli.main import build_parser, main  # noqa: E402

__all__ = ['build_parser', 'main']
