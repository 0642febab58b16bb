"""Static model of the kernel's hot per-tile loops with llvm-mca (issue #29), compiled by g++ -O3
for AVX-512 as the kernel is and modelled for Intel and AMD microarchitectures, so that a
machine this project does not have is still measured by its model:

- the filterbank's band loop one band at a time (one dependent FMA chain) and four bands side by
  side (apply_bands in csrc/core/isa_kernels.cc): cycles per band-bin (one multiply-add of one
  band's bin for a tile of 16 frames);
- the dB loop (decibel() and the running maximum, frontend_task): cycles per feature vector;
- PCEN's smoother step and the inverse STFT's overlap-add (csrc/core/pcen.cc, the istft
  kernel): cycles per 16 floats.

Beside the predictions, the measured time stamp counts of the same stages on this machine
(the newest bench/results/stages-*.json: counts per band-bin and per dB vector of configs A, B
and D), so a model can be held against a measurement.

    python bench/mca.py [--cpus skylake-avx512,icelake-server,sapphirerapids,znver4]

Needs g++ and llvm-mca on PATH (the newest llvm-mca-N found is used: znver4 needs LLVM >= 17;
Debian 12 has llvm-19); CPUs the llvm-mca does not know are reported as such.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import timing  # noqa: E402  (standard library only)

# The two loops exactly as apply_bands writes them, on the kernel's lane vector (16 floats).
SOURCE = r"""
#include <immintrin.h>
#include "fast_log.h"
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
typedef int VI __attribute__((vector_size(64)));
// decibel() of isa_kernels.cc on its fast path (every lane a positive normal float: the mask
// test stays, the libm fallback is cold), then the offset and the running maximum.
V decibel_loop(V* values, int n, float amin, float offset) {
  V vmax = V{} - __builtin_inff();
  for (int k = 0; k < n; ++k) {
    V x = values[k];
    x = x < amin ? V{} + amin : x;
    const VI bad = ~((x >= 1.17549435e-38f) & (x <= 3.40282347e+38f));
    if (__builtin_expect(_mm512_test_epi32_mask((__m512i)bad, (__m512i)bad) != 0, 0)) return x;
    const VI bits = (VI)x;
    VI e = ((bits >> 23) & 0xff) - 126;
    V m = (V)((bits & 0x007fffff) | 0x3f000000);
    const VI small = m < kLogSqrtHalf;
    e += small;
    m = m + (V)((VI)m & small) - 1.0f;
    const V ef = __builtin_convertvector(e, V);
    const V db = log_of_reduced(m, ef) * 4.342944819032518f - offset;  // the kernel's own code
    values[k] = db;
    vmax = (vmax < db) | (db != db) ? db : vmax;
  }
  return vmax;
}
// PCEN's smoother step over one frame's features (pcen.cc), GCC-vectorised.
void pcen_smoother(float* state, const float* frame, int n, float keep, float b) {
  for (int k = 0; k < n; ++k) state[k] = keep * state[k] + b * frame[k];
}
// The inverse STFT's windowed overlap-add of one frame.
void overlap_add(float* out, const float* frame, const float* window, int n) {
  for (int k = 0; k < n; ++k) out[k] += frame[k] * window[k];
}
"""
# label: (function, units of work per loop iteration, unit)
LOOPS = {
    'filterbank, one band (one FMA chain)': ('one_band', 1, 'band-bin'),
    'filterbank, four bands side by side': ('four_bands', 4, 'band-bin'),
    'dB + running maximum': ('decibel_loop', 1, 'feature vector'),
    'PCEN smoother step': ('pcen_smoother', 1, '16 floats'),
    'istft overlap-add': ('overlap_add', 1, '16 floats'),
}
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
# csrc/core: the loops include the kernels' own fast_log.h.
CORE = Path(__file__).resolve().parent.parent / 'csrc' / 'core'


def loop_body(assembly: str, function: str) -> str:
    """The instructions of the innermost loop of `function` that holds an FMA: from a label to
    the conditional jump back to it."""
    match = re.search(rf'^_Z\d+{function}\w*:\n(.*?)\.cfi_endproc', assembly, re.M | re.S)
    lines = match.group(1).splitlines()
    best = None
    for end, line in enumerate(lines):
        jump = re.match(r'\s+j\w+\s+(\.L\d+)$', line)
        if not jump:
            continue
        start = lines.index(jump.group(1) + ':')
        body = [text for text in lines[start + 1 : end + 1] if not text.strip().startswith('.')]
        vector = sum('zmm' in text for text in body)
        if start < end and any('vfmadd' in text for text in body) and vector:
            if best is None or vector > best[0]:  # the main vector loop, not a remainder loop
                best = (vector, '\n'.join(body) + '\n')
    if best is None:
        raise ValueError(f'no FMA loop found in {function}')
    return best[1]


def llvm_mca() -> str | None:
    """The newest llvm-mca on PATH (llvm-mca-19 before llvm-mca-14 before a plain llvm-mca)."""
    for version in range(30, 9, -1):
        if shutil.which(f'llvm-mca-{version}'):
            return f'llvm-mca-{version}'
    return 'llvm-mca' if shutil.which('llvm-mca') else None


def model(body: str, cpu: str, tool: str = 'llvm-mca'):
    """Predicted cycles per iteration of `body` on `cpu`, or None if llvm-mca does not know it."""
    result = subprocess.run(
        [tool, f'-mcpu={cpu}', f'-iterations={ITERATIONS}'],
        input=body,
        capture_output=True,
        text=True,
    )
    found = re.search(r'Total Cycles:\s+(\d+)', result.stdout)
    return int(found.group(1)) / ITERATIONS if result.returncode == 0 and found else None


def measured() -> dict:
    """{label: 'A 0.93, D 0.91'}: time stamp counts per unit in the newest stages-*.json of
    bench/results (bench/stages.py on this project's machine), with its CPU."""
    runs = sorted(timing.PUBLISHED_FOLDER.glob('stages-*.json'))
    if not runs:
        return {}
    run = json.loads(runs[-1].read_text())
    filterbank, decibel = [], []
    for record in run['records']:
        per_tile = {
            stage: count / record['counts']['tiles'] for stage, count in record['counts'].items()
        }
        if record['band_bins_per_tile']:
            filterbank.append(
                f'{record["config"]} {per_tile["filterbank"] / record["band_bins_per_tile"]:.2f}'
            )
        features = record.get('features_per_tile') or _features(record['config'])
        if per_tile.get('decibel') and features:
            decibel.append(f'{record["config"]} {per_tile["decibel"] / features:.1f}')
    where = f'{run["machine"]["cpu_model"]} family {run["machine"].get("cpu_family", "?")}'
    return {
        'filterbank, four bands side by side': ', '.join(filterbank) + f' ({where})',
        'dB + running maximum': ', '.join(decibel) + f' ({where})',
    }


def _features(name: str) -> int:
    """The filterbank bands (dB vectors per tile) of a bench configuration."""
    from bench import configs

    from kapre_fast import FrontEnd

    config = configs.CONFIGS[name]
    function = {'mel': 'melspectrogram', 'log': 'log_frequency_spectrogram'}.get(config.kind)
    if function is None:
        return 0
    return len(getattr(FrontEnd, function)(**config.kapre_kwargs).sparse_filterbank()[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cpus', default='skylake-avx512,icelake-server,sapphirerapids,znver4')
    args = parser.parse_args(argv)
    tool = llvm_mca()
    if not (shutil.which('g++') and tool):
        print('mca: needs g++ and llvm-mca on PATH', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / 'loops.cc'
        source.write_text(SOURCE)
        subprocess.run(
            ['g++', *FLAGS, f'-I{CORE}', '-S', '-o', str(source.with_suffix('.s')), str(source)],
            check=True,
        )
        assembly = source.with_suffix('.s').read_text()
    version = subprocess.run([tool, '--version'], capture_output=True, text=True).stdout
    release = re.search(r'version ([\d.]+)', version)
    flags = ' '.join(FLAGS)
    cpus = args.cpus.split(',')
    print(f'{tool} {release.group(1) if release else "?"}, g++ {flags}')
    print('predicted cycles per unit of work (16 frames or 16 floats a vector); measured: time')
    print('stamp counts per unit from the newest bench/results/stages-*.json')
    print('| loop | unit | ' + ' | '.join(cpus) + ' | measured here |')
    print('|---|---|' + '---|' * len(cpus) + '---|')
    found = measured()
    for label, (function, units, unit) in LOOPS.items():
        body = loop_body(assembly, function)
        cells = []
        for cpu in cpus:
            cycles = model(body, cpu, tool)
            cells.append('unknown to this llvm-mca' if cycles is None else f'{cycles / units:.2f}')
        print(f'| {label} | {unit} | ' + ' | '.join(cells) + f' | {found.get(label, "-")} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
