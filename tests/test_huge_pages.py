"""Large results from the JAX and torch bindings are advised for transparent huge pages before
the kernel's first store (csrc/core/huge_pages.h): their allocators hand out fresh mmap'd memory
that NumPy would have advised itself, and without the advice a 42 MB result costs ~16 ms of
page faults on a THP=madvise machine. Checked in the kernel's own record of the advice: the
VmFlags 'hg' of the mapping that holds the result's 2 MiB-aligned interior."""

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    not Path('/sys/kernel/mm/transparent_hugepage/enabled').exists(),
    reason='needs Linux with transparent huge pages (/proc/self/smaps VmFlags)',
)

HUGE = 2 << 20


def vm_flags(address: int) -> list:
    """The VmFlags of the mapping of this process that contains `address`."""
    inside = False
    for line in Path('/proc/self/smaps').read_text().splitlines():
        head = line.split()[0]
        if '-' in head and not head.endswith(':'):
            low, high = (int(v, 16) for v in head.split('-'))
            inside = low <= address < high
        elif inside and line.startswith('VmFlags:'):
            return line.split()[1:]
    raise AssertionError(f'no mapping holds {address:#x}')


def interior(pointer: int, nbytes: int) -> int:
    """The first 2 MiB boundary inside the buffer (the advice covers whole huge pages only)."""
    begin = (pointer + HUGE - 1) // HUGE * HUGE
    assert begin + HUGE <= pointer + nbytes, 'buffer too small to hold a whole huge page'
    return begin


def audio():
    # 2 x 30 s at 44.1 kHz, n_fft 4096, hop 1024: a 21 MB magnitude result (over the 4 MiB floor)
    return np.random.default_rng(0).standard_normal((2, 44100 * 30, 1)).astype(np.float32)


def test_jax_results_are_advised():
    jnp = pytest.importorskip('jax.numpy')
    kfj = pytest.importorskip('kapre_fast.jax')
    result = kfj.stft_magnitude(jnp.asarray(audio()), n_fft=4096, hop_length=1024)
    result.block_until_ready()
    assert 'hg' in vm_flags(interior(result.unsafe_buffer_pointer(), result.nbytes))


def test_torch_results_are_advised():
    torch = pytest.importorskip('torch')
    kft = pytest.importorskip('kapre_fast.torch')
    result = kft.stft_magnitude(torch.from_numpy(audio()), n_fft=4096, hop_length=1024)
    assert 'hg' in vm_flags(interior(result.data_ptr(), result.nbytes))
    waveform = kft.istft(
        kft.stft(torch.from_numpy(audio()), n_fft=4096, hop_length=1024),
        n_fft=4096,
        hop_length=1024,
    )
    assert 'hg' in vm_flags(interior(waveform.data_ptr(), waveform.nbytes))
