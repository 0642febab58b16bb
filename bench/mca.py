"""Static model of the filterbank's inner loops with llvm-mca (issue #29): the kernel's band loop
one band at a time (one dependent FMA chain) and four bands side by side (apply_bands in
csrc/core/isa_kernels.cc), compiled by g++ -O3 for AVX-512 as the kernel is, modelled for
Intel and AMD microarchitectures, so that a machine this project does not have is still
measured by its model. Prints predicted cycles per band-bin (one multiply-add of one band's
bin, one tile of 16 frames).

    python bench/mca.py [--cpus skylake-avx512,icelake-server,sapphirerapids,znver4]

Needs g++ and llvm-mca on PATH; CPUs the installed llvm-mca does not know are reported as such.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The two loops exactly as apply_bands writes them, on the kernel's lane vector (16 floats).
SOURCE = r"""
typedef float V __attribute__((vector_size(64)));
V one_band(const V* mag, const float* w, int n) {
  V acc = V{};
  for (int i = 0; i < n; ++i) acc += mag[i] * w[i];
  return acc;
}
void four_bands(const V* m0, const V* m1, const V* m2, const V* m3, const float* w0,
                const float* w1, const float* w2, const float* w3, int n, V* out) {
  V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
  for (int i = 0; i < n; ++i) {
    a0 += m0[i] * w0[i]; a1 += m1[i] * w1[i]; a2 += m2[i] * w2[i]; a3 += m3[i] * w3[i];
  }
  out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3;
}
"""
LOOPS = {'one band (one FMA chain)': ('one_band', 1), 'four bands side by side': ('four_bands', 4)}
FLAGS = [
    '-O3',
    '-mavx512f',
    '-mavx512dq',
    '-mavx512vl',
    '-mfma',
    '-fno-math-errno',
    '-fno-trapping-math',
]
ITERATIONS = 400


def loop_body(assembly: str, function: str) -> str:
    """The instructions of the innermost loop of `function` that holds an FMA: from a label to
    the conditional jump back to it."""
    match = re.search(rf'^_Z\d+{function}\w*:\n(.*?)\.cfi_endproc', assembly, re.M | re.S)
    lines = match.group(1).splitlines()
    for end, line in enumerate(lines):
        jump = re.match(r'\s+j\w+\s+(\.L\d+)$', line)
        if not jump:
            continue
        start = lines.index(jump.group(1) + ':')
        body = [text for text in lines[start + 1 : end + 1] if not text.strip().startswith('.')]
        if start < end and any('vfmadd' in text for text in body):
            return '\n'.join(body) + '\n'
    raise ValueError(f'no FMA loop found in {function}')


def model(body: str, cpu: str):
    """Predicted cycles per iteration of `body` on `cpu`, or None if llvm-mca does not know it."""
    result = subprocess.run(
        ['llvm-mca', f'-mcpu={cpu}', f'-iterations={ITERATIONS}'],
        input=body,
        capture_output=True,
        text=True,
    )
    found = re.search(r'Total Cycles:\s+(\d+)', result.stdout)
    return int(found.group(1)) / ITERATIONS if result.returncode == 0 and found else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cpus', default='skylake-avx512,icelake-server,sapphirerapids,znver4')
    args = parser.parse_args(argv)
    if not (shutil.which('g++') and shutil.which('llvm-mca')):
        print('mca: needs g++ and llvm-mca on PATH', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / 'loops.cc'
        source.write_text(SOURCE)
        subprocess.run(
            ['g++', *FLAGS, '-S', '-o', str(source.with_suffix('.s')), str(source)], check=True
        )
        assembly = source.with_suffix('.s').read_text()
    version = subprocess.run(['llvm-mca', '--version'], capture_output=True, text=True).stdout
    release = re.search(r'version ([\d.]+)', version)
    flags = ' '.join(FLAGS)
    print(f'llvm-mca {release.group(1) if release else "?"}, g++ {flags}')
    print('predicted cycles per band-bin (one FMA of one band, 16 frames)')
    print('| loop | ' + ' | '.join(args.cpus.split(',')) + ' |')
    print('|---|' + '---|' * len(args.cpus.split(',')))
    for label, (function, bands) in LOOPS.items():
        body = loop_body(assembly, function)
        cells = []
        for cpu in args.cpus.split(','):
            cycles = model(body, cpu)
            cells.append('unknown to this llvm-mca' if cycles is None else f'{cycles / bands:.2f}')
        print(f'| {label} | ' + ' | '.join(cells) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
