"""The release matrix's smoke run (make release-matrix, tests/install/release_matrix.sh): an
INSTALLED kapre_fast wheel beside one set of framework releases, in a fresh venv.

    python release_smoke.py CELL [tensorflow=2.18] [torch=2.11] [jax=0.6]

Each FRAMEWORK=RELEASE names a framework the cell must have installed at that release (a prefix
of its version); the parts then run, each in a process of its own (a framework that fails to
load, or crashes, takes only its own part down):

- cpu:   kapre_fast.cpu equals kapre_fast.reference (float32 rounding), as in smoke.py;
- tf:    a kapre_fast.composed model fits one step, saves (.keras), reloads, and the reloaded
         model's outputs equal the original's;
- torch: kapre_fast.torch's operator under torch.compile(fullgraph=True) equals eager, and both
         equal kapre_fast.cpu;
- jax:   kapre_fast.jax's call under jax.jit equals kapre_fast.cpu and the reference.

Prints one summary line for the cell (the releases, each part's result, seconds), then one line
per failed part with its reason. A part that fails to import kapre_fast's bindings must raise an
ImportError naming the installed release and saying what to do (install or rebuild): the line
says whether it did. Exits 1 when any part failed.
"""

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from smoke import check_against_reference, composed_classifier, two_tones, voiced_noise

PARTS = ('cpu', 'tf', 'torch', 'jax')
# The distribution each part needs, as FRAMEWORK=RELEASE names it on the command line.
DISTRIBUTIONS = {'tf': 'tensorflow', 'torch': 'torch', 'jax': 'jax'}
MEL = dict(n_fft=512, hop_length=128, sample_rate=16000, n_mels=40, return_decibel=True)
PART_TIMEOUT_S = 600


def check_cpu():
    check_against_reference()


def check_tf():
    import keras

    x, labels = two_tones()
    model = composed_classifier(x.shape[1])
    history = model.fit(x, labels, epochs=1, batch_size=len(x), verbose=0).history['loss']
    assert np.isfinite(history[0]), f'loss after one step: {history}'
    before = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'composed.keras')
        model.save(path)
        reloaded = keras.models.load_model(path)
    after = reloaded.predict(x, verbose=0)
    np.testing.assert_array_equal(after, before, err_msg='the reloaded model differs')


def check_torch():
    import torch

    import kapre_fast.torch as kft
    from kapre_fast import cpu

    x = voiced_noise()
    audio = torch.from_numpy(x)
    eager = kft.melspectrogram(audio, **MEL)
    compiled = torch.compile(lambda a: kft.melspectrogram(a, **MEL), fullgraph=True)(audio)
    np.testing.assert_array_equal(compiled.numpy(), eager.numpy(), err_msg='compiled vs eager')
    np.testing.assert_array_equal(eager.numpy(), cpu.melspectrogram(x, **MEL), err_msg='vs cpu')


def check_jax():
    import jax

    import kapre_fast.jax as kfj
    from kapre_fast import cpu, reference

    x = voiced_noise()
    jitted = np.asarray(jax.jit(lambda a: kfj.melspectrogram(a, **MEL))(x))
    np.testing.assert_array_equal(jitted, cpu.melspectrogram(x, **MEL), err_msg='jit vs cpu')
    plain = dict(MEL, return_decibel=False)
    ours = np.asarray(jax.jit(lambda a: kfj.melspectrogram(a, **plain))(x))
    truth = reference.melspectrogram(x, **plain)
    error = np.abs(ours - truth).max() / np.abs(truth).max()
    assert error < 1e-5, f'jit vs reference: relative error {error:.2e}'


def one_line(text, limit=400):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + '...'


def run_part(part):
    """In the part's own process: the check, then 'ok' or the reason it failed (last line)."""
    try:
        globals()[f'check_{part}']()
    except ImportError as error:
        print(f'reason: {import_error_verdict(part, error)}: {one_line(error)}')
        return 1
    except Exception as error:  # noqa: BLE001 (every failure is reported as the part's line)
        print(f'reason: {type(error).__name__}: {one_line(error)}')
        return 1
    print('reason: ok')
    return 0


def import_error_verdict(part, error):
    """Whether an ImportError says what to do: names the installed release and a remedy."""
    distribution = DISTRIBUTIONS.get(part)
    message = str(error).lower()
    if distribution is None:
        return 'ImportError'
    installed = importlib.metadata.version(distribution).split('+')[0]
    says_what_to_do = installed in message and ('install' in message or 'rebuild' in message)
    if says_what_to_do:
        return 'ImportError (clear: names the release and what to do)'
    return 'ImportError (UNCLEAR: does not name the release and what to do)'


def installed_releases(wanted):
    """{framework: installed version} for the wanted ones; ValueError when one is missing or at
    another release."""
    found = {}
    for framework, release in wanted.items():
        try:
            version = importlib.metadata.version(framework)
        except importlib.metadata.PackageNotFoundError:
            raise ValueError(f'{framework} is not installed (wanted {release})') from None
        if version != release and not version.startswith(release + '.'):
            raise ValueError(f'{framework} {version} is installed, not {release}')
        found[framework] = version
    return found


def parse_wanted(arguments):
    wanted = {}
    for argument in arguments:
        framework, equals, release = argument.partition('=')
        if not equals or framework not in DISTRIBUTIONS.values() or not release:
            raise SystemExit(
                f'release_smoke.py: FRAMEWORK=RELEASE with FRAMEWORK one of '
                f'{sorted(DISTRIBUTIONS.values())}, got {argument!r}'
            )
        wanted[framework] = release
    return wanted


def main(arguments):
    if arguments[:1] == ['--part']:
        return run_part(arguments[1])
    if not arguments:
        raise SystemExit(__doc__)
    cell, wanted = arguments[0], parse_wanted(arguments[1:])
    start = time.monotonic()
    try:
        releases = installed_releases(wanted)
    except ValueError as error:
        print(f'release-matrix {cell}: FAIL: {error}')
        return 1
    described = [f'{name} {version}' for name, version in releases.items()]
    if 'tensorflow' in releases:
        described.insert(1, f'keras {importlib.metadata.version("keras")}')
    parts = ['cpu'] + [part for part in PARTS[1:] if DISTRIBUTIONS[part] in releases]
    results = {}
    for part in parts:
        part_start = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, __file__, '--part', part],
                capture_output=True,
                text=True,
                timeout=PART_TIMEOUT_S,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith('reason: ')]
            reason = lines[-1][len('reason: ') :] if lines else ''
            if done.returncode != 0 and not reason:  # crashed before reporting
                tail = (done.stderr.strip().splitlines() or ['no output'])[-1]
                reason = f'exit status {done.returncode}: {one_line(tail)}'
            passed = done.returncode == 0 and reason == 'ok'
        except subprocess.TimeoutExpired:
            passed, reason = False, f'timed out after {PART_TIMEOUT_S} s'
        results[part] = (passed, reason, time.monotonic() - part_start)
    failed = [part for part, (passed, _, _) in results.items() if not passed]
    verdicts = ', '.join(
        f'{part} {"ok" if passed else "FAIL"} {seconds:.0f} s'
        for part, (passed, _, seconds) in results.items()
    )
    status = 'FAIL' if failed else 'ok'
    print(
        f'release-matrix {cell}: {status}: {", ".join(described)} | {verdicts} | '
        f'{time.monotonic() - start:.0f} s'
    )
    for part in failed:
        print(f'  {cell} {part}: {results[part][1]}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
