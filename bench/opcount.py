"""Operation-count model of the fused CPU kernel: vector operations per tile of W frames.

A tile is W frames of one signal in the W lanes of every vector (csrc/core/isa_kernels.cc), so
each count below is of whole-vector instructions, per stage, as the code is written (after
GCC's FMA contraction: a * b + c is one fma). Loads include broadcast twiddle/window/weight
loads; shuffles are in-register permutes. Spills, address arithmetic and loop control are not
counted: the model is what the algorithm asks for, the floor that fewer operations must lower.

    python bench/opcount.py                      # per-stage table, configs A-D, 16 lanes
    python bench/opcount.py --ms A=8.1,D=3.2     # and measured ms per call (1 thread) against it

The issue bound assumes one core that each cycle retires at most 4 vector FP ops (adds,
multiplies, fmas, shuffles), 2 of them multiplies/fmas, 2 loads and 1 store (a Zen 5-class
AVX-512 core; state other figures with --fp/--mul/--loads/--stores).
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
from pathlib import Path

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.configs import CONFIGS, FAST_FUNCTIONS, parse_names  # noqa: E402

KINDS = ('add', 'mul', 'fma', 'shuf', 'load', 'store')
Ops = collections.Counter

# One complex multiply by a broadcast twiddle: 2 mul + 2 fma, 2 broadcast loads.
CMUL = Ops(mul=2, fma=2, load=2)
# dft16's inner products j1 * k2 (constant twiddles) that are complex multiplies.
DFT16_INNER_CMULS = 9


def butterfly(radix: int, twiddled: bool) -> Ops:
    """Operations of one radix-`radix` butterfly (one output column of a Stockham pass)."""
    if radix == 2:
        ops = Ops(add=4)
    elif radix == 4:
        ops = Ops(add=16)
    elif radix == 8:
        ops = Ops(add=52, mul=4)  # two length-4 DFTs, first stage, w8 and w8^3 as (a +- b) h
    elif radix == 16:
        ops = Ops(add=128)  # 8 length-4 DFTs
        for _ in range(DFT16_INNER_CMULS):
            ops.update(mul=2, fma=2)  # constant twiddles: no loads
    else:  # odd prime p: sums and differences of pairs, then H dot products of length H
        h = radix // 2
        ops = Ops(add=4 * h + 2 * h + 4 * h, fma=4 * h * h, load=2 * h * h)
        twiddled = True  # pass_odd always multiplies
    ops.update(load=2 * radix, store=2 * radix)
    if twiddled:
        for _ in range(radix - 1):
            ops.update(CMUL)
    return ops


def factorize(n: int) -> list:
    """The radices of fft_plan.cc's factorize, in pass order (smallest first)."""
    radices = []
    while n % 16 == 0:
        radices.append(16)
        n //= 16
    for r in (8, 4, 2):
        if n % r == 0:
            radices.append(r)
            n //= r
    p = 3
    while n > 1 and p <= 31:
        while n % p == 0:
            radices.append(p)
            n //= p
        p += 2
    if n > 1:
        raise ValueError(f'length with prime factor {n} runs Bluestein: not modelled')
    return sorted(radices)


def complex_passes(n: int, label: str = '') -> list:
    """(stage name, ops) of a Stockham complex FFT of length n."""
    stages, cur = [], n
    for radix in factorize(n):
        m = cur // radix
        ops = Ops()
        for _ in range(n // radix):
            ops.update(butterfly(radix, twiddled=m > 1))
        stages.append((f'{label}radix {radix}' + (' (no twiddles)' if m == 1 else ''), ops))
        cur = m
    return stages


def fft_stages(n_fft: int, lanes: int) -> list:
    """The real FFT's passes: blocked (radix 16, then 16 sub-FFTs) where the kernel blocks."""
    nc = n_fft // 2
    blocked = nc % 16 == 0 and nc >= 256 and 4 * nc * 4 * lanes > 32768
    if not blocked:
        return complex_passes(nc)
    first = Ops()
    for _ in range(nc // 16):
        first.update(butterfly(16, twiddled=True))
    stages = [('blocks: radix 16', first)]
    for name, ops in complex_passes(nc // 16, 'sub-FFTs: '):
        stages.append((name, Ops({k: 16 * v for k, v in ops.items()})))
    return stages


def tile_model(config, lanes: int = 16) -> list:
    """(stage, Ops) for one interior tile of `config` (a bench.configs.Config)."""
    from kapre_fast import FrontEnd, _weights

    n, hop = config.n_fft, config.hop_length
    used = min(config.win_length, n)
    head = min(hop, used)
    transposes = math.ceil(head / lanes)
    shuffles_per_transpose = {16: 64, 8: 24, 4: 8}[lanes]
    framing = Ops(
        load=lanes * transposes + (used - head) + used,  # rows, new samples, window
        shuf=shuffles_per_transpose * transposes + (used - head),
        mul=used,
        store=n,
    )  # zero padding stored too
    # Where the framing is fused into the blocked first pass (hop a multiple of n / 16), its n
    # stores go to the butterfly's 32-vector staging in L1, not to the packed input: the same
    # count, less traffic; the model counts operations, not where they land.
    stages = [('framing + window', framing)] + fft_stages(n, lanes)

    spec = getattr(FrontEnd, FAST_FUNCTIONS[config.kind])(**config.kapre_kwargs)
    start, length, _ = _weights.bands(spec)
    h = n // 2
    last_bin = int((start + length).max()) - 1 if len(start) else h
    # One iteration per pair (k, h - k): 4 loads, 4 adds, w^k O (a twiddle multiply), then per
    # bin kept 2 adds, |.|^2 (mul + fma), sqrt (rsqrt + 4 mul/fma + 3 compare/logic: counted as
    # adds), the scale and a store.
    split = Ops()
    magnitude = Ops(add=2 + 1 + 3, mul=1 + 2 + 1, fma=1 + 2, store=1)
    for k in range(1, h // 2 + 1):
        split.update(load=4, add=4)
        split.update(CMUL)
        split.update(magnitude)
        if 2 * k < h and h - k <= last_bin:
            split.update(magnitude)
    stages.append(('split + magnitude', split))

    n_values = len(start) or h + 1
    if len(start):
        weights = int(length.sum())
        stages.append(('filterbank', Ops(load=2 * weights, fma=weights, store=len(start))))
    if config.decibel:
        # clamp (compare, blend), log10 (about 20 add/mul/fma), offset, running max (3).
        per_value = Ops(add=2 + 8 + 1 + 3, fma=11, mul=3, load=1, store=1)
        stages.append(('dB', Ops({k: v * n_values for k, v in per_value.items()})))
    blocks = math.ceil(n_values / lanes)
    stages.append(
        (
            'output transpose + store',
            Ops(load=lanes * blocks, shuf=shuffles_per_transpose * blocks, store=lanes * blocks),
        )
    )
    return stages


def issue_cycles(ops: Ops, fp=4, mul=2, loads=2, stores=1) -> float:
    """Cycles the core needs at the very least to issue `ops` (see the module docstring)."""
    return max(
        (ops['add'] + ops['mul'] + ops['fma'] + ops['shuf']) / fp,
        (ops['mul'] + ops['fma']) / mul,
        ops['load'] / loads,
        ops['store'] / stores,
    )


def tiles_per_call(sized, lanes: int) -> int:
    return sized.batch * math.ceil(sized.n_frames / lanes)


def markdown(names, lanes: int, measured: dict, ghz: float, limits: dict) -> str:
    lines = [
        f'Vector operations per tile of {lanes} frames (FMA = 1 op; issue bound: '
        f'{limits["fp"]} FP ops, {limits["mul"]} mul/fma, {limits["loads"]} loads, '
        f'{limits["stores"]} store per cycle; {ghz:g} GHz)',
        '',
    ]
    for name in names:
        config = CONFIGS[name]
        stages = tile_model(config, lanes)
        lines += [
            f'## {name}: {config.title}',
            '',
            '| stage | ' + ' | '.join(KINDS) + ' | bound cycles |',
            '|---|' + '---|' * (len(KINDS) + 1),
        ]
        total = Ops()
        for stage, ops in stages:
            total.update(ops)
            lines.append(
                f'| {stage} | '
                + ' | '.join(str(ops[k]) for k in KINDS)
                + f' | {issue_cycles(ops, **limits):.0f} |'
            )
        bound = issue_cycles(total, **limits)
        lines.append(
            '| **tile** | ' + ' | '.join(f'**{total[k]}**' for k in KINDS) + f' | **{bound:.0f}** |'
        )
        sized = config.sized(False)
        tiles = tiles_per_call(sized, lanes)
        flops = 2.5 * config.n_fft * math.log2(config.n_fft) * lanes
        line = (
            f'\n{tiles} tiles per call; nominal FFT work {flops / 1e3:.0f} kFLOP per tile; '
            f'issue bound {bound * tiles / ghz / 1e6:.2f} ms per call at 1 thread'
        )
        if name in measured:
            cycles = measured[name] * 1e-3 * ghz * 1e9 / tiles
            line += (
                f'; measured {measured[name]:g} ms = {cycles:.0f} cycles per tile, '
                f"{bound / cycles:.0%} of the bound's rate"
            )
        lines += [line, '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', default='all')
    parser.add_argument('--lanes', type=int, default=16, choices=(4, 8, 16))
    parser.add_argument('--ms', default='', help='measured ms per call, e.g. A=8.1,B=2.0')
    parser.add_argument('--ghz', type=float, default=None, help='default: /proc/cpuinfo')
    parser.add_argument('--fp', type=float, default=4)
    parser.add_argument('--mul', type=float, default=2)
    parser.add_argument('--loads', type=float, default=2)
    parser.add_argument('--stores', type=float, default=1)
    args = parser.parse_args(argv)
    measured = {
        k.strip().upper(): float(v)
        for k, v in (item.split('=') for item in args.ms.split(',') if item.strip())
    }
    ghz = args.ghz
    if ghz is None:
        from bench.report import machine_info

        ghz = (machine_info().get('cpu_mhz') or 1000.0) / 1e3
    limits = dict(fp=args.fp, mul=args.mul, loads=args.loads, stores=args.stores)
    print(markdown(parse_names(args.configs), args.lanes, measured, ghz, limits))
    return 0


if __name__ == '__main__':
    sys.exit(main())
