"""Many threads at once, and many calls in a row: results stay exact, memory stays flat."""

import threading

import numpy as np
import pytest

from kapre_fast import _loader, cpu

SIZES = [(256, 64), (400, 160), (512, 128), (1000, 250), (2048, 512), (257, 100), (768, 192)]


def _job(n_fft, hop, seed):
    x = np.random.default_rng(seed).standard_normal((2, 6000, 2)).astype(np.float32)
    return lambda: cpu.melspectrogram(
        x, n_fft=n_fft, hop_length=hop, n_mels=40, sample_rate=16000, return_decibel=True, threads=2
    )


def test_threads_calling_with_different_sizes_get_exact_results():
    jobs = [_job(n, h, i) for i, (n, h) in enumerate(SIZES * 3)]
    expected = [job() for job in jobs]
    results = [None] * len(jobs)
    errors = []

    def run(i):
        try:
            for _ in range(3):
                results[i] = jobs[i]()
        except Exception as error:  # surfaced below with the failing index
            errors.append((i, error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def _rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__('os').path.exists('/proc/self/statm'), reason='needs Linux')
def test_repeated_calls_do_not_grow_memory():
    x = np.random.default_rng(0).standard_normal((4, 8000, 1)).astype(np.float32)
    call = lambda: cpu.melspectrogram(
        x, n_fft=512, hop_length=128, n_mels=64, sample_rate=16000, return_decibel=True, threads=2
    )
    for _ in range(200):
        call()
    before = _rss_bytes()
    for _ in range(3000):
        call()
    grown = _rss_bytes() - before
    assert grown < 8 << 20, f'RSS grew by {grown / 2**20:.1f} MiB over 3000 calls'


def test_plan_cache_is_bounded_under_ever_new_sizes():
    core = _loader.core()
    x = np.ones((1, 3000, 1), np.float32)

    def run(offset):
        for n in range(300 + offset, 420 + offset, 3):
            cpu.stft_magnitude(x, n_fft=n, hop_length=n, threads=1)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert core.plan_cache_size() <= 64


def _mel(x, threads):
    return cpu.melspectrogram(
        x,
        n_fft=512,
        hop_length=128,
        n_mels=64,
        sample_rate=16000,
        return_decibel=True,
        threads=threads,
    )


@pytest.mark.skipif(not hasattr(__import__('os'), 'fork'), reason='needs fork')
def test_a_forked_child_computes_with_threads_after_the_parent_did():
    # The parent's worker threads do not exist in a child: its calls must start their own.
    import os
    import time

    x = np.random.default_rng(1).standard_normal((6, 9000, 1)).astype(np.float32)
    expected = _mel(x, 3)  # the parent's pool is up now
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, just the verdict as the exit status
        try:
            same = all(np.array_equal(_mel(x, t), expected) for t in (2, 3, 1))
        finally:
            os._exit(0 if same else 1)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail('the forked child hung computing with threads')
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    np.testing.assert_array_equal(_mel(x, 2), expected)  # and the parent's pool still works


def test_the_process_exits_with_the_worker_threads_waiting():
    import subprocess
    import sys

    code = (
        'import numpy as np\nfrom kapre_fast import cpu\n'
        'x = np.ones((4, 8000, 1), np.float32)\n'
        'for t in (2, 4, 3):\n'
        '    cpu.stft_magnitude(x, n_fft=256, hop_length=64, threads=t)\n'
        'print("done")\n'
    )
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == 'done'
