"""The report of one run: machine description, JSON, a markdown table and a PNG bar chart.

Files are named <UTC date-time>_<host> so that runs never overwrite each other; a full run also
copies its markdown to latest.md.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

LIBRARIES = (
    'tensorflow',
    'keras',
    'kapre',
    'librosa',
    'numpy',
    'scipy',
    'torch',
    'ducc0',
    'threadpoolctl',
    'matplotlib',
    'numba',
    'soxr',
)
ISA_FLAGS = ('avx512f', 'avx512bw', 'avx512vl', 'avx2', 'fma')


# ----- machine and versions ----------------------------------------------------------------------


def machine_info(load_before=None, load_after=None) -> dict:
    flags, model = set(), platform.processor() or platform.machine()
    mhz = family = None
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            key, _, value = line.partition(':')
            key = key.strip()
            if key == 'model name':
                model = value.strip()
            elif key == 'flags':
                flags = set(value.split())
            elif key == 'cpu MHz' and mhz is None:
                mhz = float(value)
            elif key == 'cpu family' and family is None:
                family = int(value)
    except (OSError, ValueError):
        pass
    memory = None
    try:
        match = re.search(r'MemTotal:\s+(\d+) kB', Path('/proc/meminfo').read_text())
        memory = round(int(match.group(1)) / 2**20, 1) if match else None
    except OSError:
        pass
    from bench.timing import available_cores

    return {
        'host': socket.gethostname(),
        'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'cpu_model': model,
        'cpu_count': os.cpu_count(),
        'available_cores': available_cores(),
        'isa_flags': {flag: flag in flags for flag in ISA_FLAGS},
        'cpu_mhz': mhz,
        'cpu_family': family,
        'memory_gib': memory,
        'platform': platform.platform(),
        'python': platform.python_version(),
        'load_average_before': list(load_before) if load_before else None,
        'load_average_after': list(load_after) if load_after else None,
    }


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import kapre_fast

        versions['kapre_fast'] = kapre_fast.__version__
    except ImportError as error:
        versions['kapre_fast'] = f'not importable ({error})'
    return versions


def kapre_fast_build(package: Path, source: Path, checkout: Path = None) -> dict:
    """What kapre_fast was run from: the copy `package` the workers imported (its
    _build_info.json and a fingerprint of each native library), the folder `source` it was
    copied from, and the git commit and number of changed files of `checkout` (default: the
    folder above `source`; bench/run.py passes its own checkout, as it times an installed
    copy)."""
    info = {'source': str(source), 'benchmarked_copy': str(package)}
    try:
        info['build_info'] = json.loads((package / '_build_info.json').read_text())
    except (OSError, ValueError):
        info['build_info'] = None
    info['native'] = {
        path.name: {
            'sha256': hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            'modified_utc': datetime.datetime.fromtimestamp(
                path.stat().st_mtime, datetime.timezone.utc
            ).isoformat(timespec='seconds'),
        }
        for path in sorted(package.glob('*.so'))
    }
    try:
        root = checkout or source.parent
        info['git_commit'] = subprocess.run(
            ['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ['git', 'status', '--porcelain'], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        info['git_changed_files'] = len(changed.splitlines())
    except (OSError, subprocess.CalledProcessError):
        info['git_commit'] = None
    return info


def describe_error(error: BaseException) -> str:
    """The first line of `ExceptionType: message`, at most 300 characters: for the report."""
    text = f'{type(error).__name__}: {error}'.strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first[:300]


def kapre_fast_isa() -> str:
    try:
        from kapre_fast import _loader

        return _loader.core().isa()
    except Exception as error:  # the report still says why
        return f'unknown ({type(error).__name__}: {error})'


def core_peak(machine: dict):
    """(float32 FLOP per cycle of one core, the assumption in words), read from the CPU's
    features: two FMA units as wide as the widest vector set (AVX-512: 16 lanes; AMD before
    Zen 5, family 25, runs 512-bit operations as two 256-bit halves), an FMA being 2 FLOP."""
    flags = machine.get('isa_flags') or {}
    if flags.get('avx512f') and machine.get('cpu_family') != 25:
        return 64, 'AVX-512: 2 FMA units x 16 lanes x 2'
    if flags.get('avx512f') or (flags.get('avx2') and flags.get('fma')):
        return 32, '2 FMA units x 8 lanes x 2 (AVX2, or AVX-512 on 256-bit units)'
    return 16, 'SSE2: 4 lanes, 2 add/mul units x 2'


def roofline(results: dict, name: str, method: str = 'kapre_fast_cpu') -> str:
    """One markdown line: `method`'s GFLOP/s on the nominal FFT count and its share of the
    peak of the cores it ran on, per thread count; '' without a clock rate or a result."""
    m = results['machine']
    if not m.get('cpu_mhz'):
        return ''
    per_cycle, assumption = core_peak(m)
    peak = m['cpu_mhz'] / 1e3 * per_cycle
    index = _index(results)
    cells = []
    for threads in results['thread_counts']:
        record = index.get((name, threads, method))
        if record and record.get('status') == 'ok':
            gflops = results['configs'][name]['work']['fft_flops'] / record['median_s'] / 1e9
            cells.append(
                f'{threads} thread{"s" if threads > 1 else ""}: {gflops:.1f} GFLOP/s '
                f'({gflops / (peak * threads):.0%} of peak)'
            )
    if not cells:
        return ''
    return (
        f'- roofline, {method} on the nominal 2.5 N log2 N FFT count: '
        + '; '.join(cells)
        + f'. Peak {peak:.0f} GFLOP/s per core: {m["cpu_mhz"] / 1e3:.2f} GHz as '
        f'/proc/cpuinfo reports it x {per_cycle} FLOP/cycle ({assumption}; turbo not '
        'counted). Operations per tile: bench/opcount.py.'
    )


# ----- derived numbers ---------------------------------------------------------------------------


def _index(results: dict) -> dict:
    return {(r['config'], r['threads'], r['method']): r for r in results['results']}


def derived(results: dict, record: dict) -> dict:
    """x-realtime, speed-ups vs kapre and kapre + XLA, FFT GFLOP/s for an 'ok' record."""
    work = results['configs'][record['config']]['work']
    index = _index(results)
    median = record['median_s']
    out = {
        'x_realtime': work['audio_seconds'] / median,
        'fft_gflops': work['fft_flops'] / median / 1e9,
    }
    for key, name in (('kapre', 'vs_kapre'), ('kapre_xla', 'vs_kapre_xla')):
        base = index.get((record['config'], record['threads'], key))
        out[name] = base['median_s'] / median if base and base.get('status') == 'ok' else None
    return out


def _add_derived(results: dict):
    for record in results['results']:
        if record.get('status') == 'ok':
            record['derived'] = derived(results, record)


# ----- markdown ----------------------------------------------------------------------------------


def _ms(seconds):
    return (
        '-'
        if seconds is None
        else f'{seconds * 1e3:.3g}'
        if seconds < 1e-2
        else f'{seconds * 1e3:.1f}'
    )


def _ratio(value):
    return '-' if value is None else f'{value:.2f}x'


def _difference(record, decibel, reference='kapre') -> str:
    acc = record.get('accuracy')
    if record['method'] == reference:
        return 'reference'
    if not acc:
        return '-'
    if not acc.get('comparable'):
        return 'n/a'
    db = f'{acc["max_abs_db"]:.2g} dB'
    if (
        acc.get('max_abs_db_above_floor') is not None
        and acc['max_abs_db_above_floor'] < acc['max_abs_db']
    ):
        db += f' ({acc["max_abs_db_above_floor"]:.2g} above floor+20)'
    if not decibel:
        db = f'{acc["max_rel"]:.2g} rel, {db}'
    if acc.get('non_finite'):
        db += f', {acc["non_finite"]} non-finite'
    return db


def markdown(results: dict) -> str:
    m, v = results['machine'], results['versions']
    flags = ', '.join(f'{k} {"yes" if on else "no"}' for k, on in m['isa_flags'].items())
    lines = [
        '# kapre_fast CPU benchmark'
        + (' (QUICK smoke run: small inputs, not a measurement)' if results['quick'] else '')
        + (
            ' (FAILED: a kapre_fast method did not run; not a measurement)'
            if results.get('kapre_fast_failed')
            else ''
        ),
        '',
        f'- date (UTC): {m["date_utc"]}; host: {m["host"]}; wall time of the run: '
        f'{results["wall_s"]:.0f} s',
        f'- CPU: {m["cpu_model"]}, {m["cpu_count"]} logical cores ({m["available_cores"]} '
        f'available), {m["memory_gib"]} GiB; flags: {flags}',
        f'- load average (1, 5, 15 min) before: {_load(m["load_average_before"])}, after: '
        f'{_load(m["load_average_after"])} (other work on the machine skews timings)',
        f'- kapre_fast {v.get("kapre_fast")} kernel ISA: **{results["kapre_fast_isa"]}**; '
        f'{_build(results)}',
        f'- Python {m["python"]}; '
        + ', '.join(
            f'{name} {version}' for name, version in v.items() if name != 'kapre_fast' and version
        ),
        f'- BLAS / OpenMP (threadpoolctl, per worker): {_blas(results)}',
        f'- environment: {_environment(results)}',
        f'- command: `{results["command"]}`',
        '',
        'Median wall time of repeated calls on the same prepared input (first call and warm-up '
        f'excluded; timing order: {_order(results)}). x-realtime = audio seconds / wall '
        "seconds. vs kapre / vs XLA = that method's speed-up over kapre / kapre + XLA at the "
        'same thread count (> 1: faster). '
        'GFLOP/s = FFT work model (frames x 5 N log2 N / 2) / wall time, the same yardstick for '
        "every method. Max diff = largest difference from kapre's output (dB; magnitude "
        'configurations also relative to the largest magnitude). FFT floors transform '
        'pre-cut windowed frames only.',
        '',
    ]
    lines += _summary(results)
    index = _index(results)
    for name, config in results['configs'].items():
        work = config['work']
        lines += [
            f'## {name}: {config["title"]}',
            '',
            f'Input {work["batch"]} x {work["seconds_per_example"]:g} s '
            f'({work["audio_seconds"]:g} s of audio), {work["frames_total"]} frames of '
            f'{work["n_fft"]} points, FFT work {work["fft_flops"] / 1e9:.3g} GFLOP; windowed '
            f'frames {work["windowed_frames_bytes"] / 1e6:.0f} MB, spectrum '
            f'{work["spectrum_bytes"] / 1e6:.0f} MB, output {work["output_bytes"] / 1e6:.1f} MB.',
            '',
            '| method | threads | median ms | IQR ms | min ms | first call ms | x-realtime '
            '| vs kapre | vs XLA | GFLOP/s | max diff vs kapre |',
            '|---|---|---|---|---|---|---|---|---|---|---|',
        ]
        notes = {}
        for method in results['methods']:
            for threads in results['thread_counts']:
                record = index.get((name, threads, method['key']))
                if record is None:
                    continue
                label = method['label'] + (' (floor)' if method['floor'] else '')
                if record['status'] != 'ok':
                    notes.setdefault(method['label'], f'{record["status"]}: {record["reason"]}')
                    if threads == results['thread_counts'][0]:
                        lines.append(f'| {label} | - | {record["status"]} | | | | | | | | |')
                    continue
                if record.get('note'):
                    notes.setdefault(method['label'], record['note'])
                d = record['derived']
                decibel = bool(config['kapre_kwargs'].get('return_decibel'))
                lines.append(
                    f'| {label} | {threads} | {_ms(record["median_s"])} | '
                    f'{_ms(record["p25_s"])}-{_ms(record["p75_s"])} | {_ms(record["min_s"])} | '
                    f'{_ms(record["first_call_s"])} | {d["x_realtime"]:.0f} | '
                    f'{_ratio(d["vs_kapre"])} | {_ratio(d["vs_kapre_xla"])} | '
                    f'{d["fft_gflops"]:.1f} | {_difference(record, decibel)} |'
                )
        lines.append('')
        lines += [f'- {label}: {note}' for label, note in notes.items()]
        lines += [line for line in (roofline(results, name),) if line]
        lines.append('')
    if results.get('plot'):
        lines += [f'![median time per method]({results["plot"]})', '']
    return '\n'.join(lines)


def _summary(results) -> list:
    index = _index(results)
    lines = [
        '## Summary (median ms)',
        '',
        '| config | threads | kapre | kapre + XLA | best other baseline (same features) '
        '| ducc0 floor '
        '| kapre_fast.cpu | kapre_fast op | cpu vs kapre | cpu vs XLA |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    others = ('keras', 'tf_signal', 'librosa', 'torch')
    for name in results['configs']:
        for threads in results['thread_counts']:

            def get(key):
                record = index.get((name, threads, key))
                return record if record and record.get('status') == 'ok' else None

            same = [
                get(k)
                for k in others
                if get(k) and (get(k).get('accuracy') or {}).get('comparable')
            ]
            best = min(same, key=lambda r: r['median_s'], default=None)
            cpu = get('kapre_fast_cpu')
            cells = [name, str(threads)]
            cells += [_ms(get(k)['median_s']) if get(k) else '-' for k in ('kapre', 'kapre_xla')]
            cells.append(f'{_ms(best["median_s"])} ({best["label"]})' if best else '-')
            cells += [
                _ms(get(k)['median_s']) if get(k) else '-'
                for k in ('ducc0_r2c', 'kapre_fast_cpu', 'kapre_fast_op')
            ]
            cells += [
                _ratio(cpu['derived']['vs_kapre']) if cpu else '-',
                _ratio(cpu['derived']['vs_kapre_xla']) if cpu else '-',
            ]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return lines + ['']


def _build(results) -> str:
    build = results.get('kapre_fast_build') or {}
    if 'error' in build:
        return f'kapre_fast not found: {build["error"]}'
    commit = build.get('git_commit')
    if build.get('benchmarked_copy') == build.get('source'):  # bench/gpu.py imports it in place
        text = f'from {build.get("source")}, '
    else:
        text = f'a copy of {build.get("source")} taken at the start of the run, '
    text += f'checkout {commit[:10]}' if commit else 'not a git checkout'
    if build.get('git_changed_files'):
        text += f' + {build["git_changed_files"]} changed/untracked files'
    native = ', '.join(
        f'{name} {entry["sha256"][:8]}' for name, entry in (build.get('native') or {}).items()
    )
    return text + (f'; native libraries (sha256): {native}' if native else '')


def _order(results) -> str:
    if results.get('order') == 'interleaved':
        return (
            'interleaved rounds, one call of each method per round (several-thread rows '
            "include other libraries' spinning threads)"
        )
    return "blocks, each method's calls back to back"


def _load(values) -> str:
    return '-' if not values else ', '.join(f'{value:.2f}' for value in values)


def _blas(results) -> str:
    parts = []
    for worker in results['workers']:
        pools = worker.get('blas') or (worker.get('controls') or {}).get('threadpoolctl') or []
        described = '; '.join(
            f'{p.get("internal_api")} {p.get("version") or ""} '
            f'{("kernel " + p["architecture"]) if p.get("architecture") else ""} '
            f'x{p.get("num_threads")} ({Path(p.get("filepath") or "?").name})'.replace('  ', ' ')
            for p in pools
        )
        parts.append(f'{worker["threads"]} thr: {described or "none found"}')
    return ' | '.join(parts)


def _environment(results) -> str:
    env = results['environment']
    removed = ', '.join(f'{k}={v}' for k, v in env['removed'].items()) or 'none was set'
    text = f'OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset by the runner ({removed})'
    if env['still_set']:
        text += f'; STILL SET: {env["still_set"]}'
    return text


# ----- chart -------------------------------------------------------------------------------------


def plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullFormatter

    index = _index(results)
    names = list(results['configs'])
    threads = results['thread_counts']
    columns = min(2, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7.5 * columns, 4.8 * rows), squeeze=False)
    height = 0.8 / len(threads)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for axis, name in zip(axes.flat, names):
        labels = []
        for row, method in enumerate(results['methods']):
            labels.append(method['label'] + (' (floor)' if method['floor'] else ''))
            statuses = {
                (index.get((name, count, method['key'])) or {}).get('status') for count in threads
            }
            if 'ok' not in statuses:
                axis.text(
                    0.01,
                    row,
                    'not run'
                    if statuses == {None}
                    else ' / '.join(sorted(s for s in statuses if s)),
                    transform=axis.get_yaxis_transform(),
                    va='center',
                    fontsize=7,
                    color='grey',
                )
            for k, count in enumerate(threads):
                record = index.get((name, count, method['key']))
                if not record or record.get('status') != 'ok':
                    continue
                ms = record['median_s'] * 1e3
                axis.barh(
                    row + (k - (len(threads) - 1) / 2) * height,
                    ms,
                    height,
                    color=colours[k % len(colours)],
                    hatch='//' if method['floor'] else None,
                )
                axis.text(
                    ms,
                    row + (k - (len(threads) - 1) / 2) * height,
                    f' {ms:.3g}',
                    va='center',
                    fontsize=7,
                )
        axis.set_yticks(range(len(labels)), labels, fontsize=8)
        for tick, method in zip(axis.get_yticklabels(), results['methods']):
            if method['key'].startswith('kapre_fast'):
                tick.set_fontweight('bold')
        axis.invert_yaxis()
        axis.set_xscale('log')
        axis.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
        low, high = axis.get_xlim()
        axis.set_xlim(low, high * 2.5)  # room for the value labels
        axis.set_xlabel('median ms (log scale, lower is better)')
        axis.set_title(f'{name}: {results["configs"][name]["title"]}', fontsize=9)
        axis.grid(axis='x', which='both', alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    handles = [
        Patch(color=colours[k % len(colours)], label=f'{count} thread{"s" if count > 1 else ""}')
        for k, count in enumerate(threads)
    ]
    handles.append(
        Patch(
            facecolor='white',
            edgecolor='black',
            hatch='//',
            label='FFT alone on pre-cut frames (floor)',
        )
    )
    figure.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=9)
    title = (
        f'kapre_fast CPU benchmark, {results["machine"]["cpu_model"]}, '
        f'{results["machine"]["date_utc"][:10]}'
    )
    figure.suptitle(title + (' (quick smoke run)' if results['quick'] else ''), fontsize=10)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_panels(panels: list, title: str, path: Path):
    """A chart of (panel title, [(method label, {threads: median ms})]) panels, one horizontal bar
    per method and thread count, log scale: for the side reports (bench/stft_paths.py)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    counts = sorted({t for _, bars in panels for _, by in bars for t in by})
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7.5 * columns, 3.2 * rows), squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    height = 0.8 / max(1, len(counts))
    for axis, (panel, bars) in zip(axes.flat, panels):
        for row, (_, by_threads) in enumerate(bars):
            for k, count in enumerate(counts):
                if count not in by_threads:
                    continue
                y = row + (k - (len(counts) - 1) / 2) * height
                axis.barh(y, by_threads[count], height, color=colours[k % len(colours)])
                axis.text(
                    by_threads[count], y, f' {by_threads[count]:.3g}', va='center', fontsize=7
                )
        axis.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
        axis.invert_yaxis()
        axis.set_xscale('log')
        values = [ms for _, by in bars for ms in by.values()]
        if values:  # bars start a decade below the fastest, so their lengths compare
            axis.set_xlim(min(values) / 10, max(values) * 2.5)
        axis.set_xlabel('median ms (log scale, lower is better)')
        axis.set_title(textwrap.fill(panel, 60), fontsize=9)
        axis.grid(axis='x', which='both', alpha=0.3)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.legend(
        handles=[
            Patch(color=colours[k % len(colours)], label=f'{c} thread{"s" if c > 1 else ""}')
            for k, c in enumerate(counts)
        ],
        loc='lower center',
        ncol=len(counts),
        fontsize=9,
    )
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def save_panels_chart(panels: list, title: str, folder: Path, stem: str):
    """plot_panels into <folder>/<stem>.png; its path, or None (said on stderr) without
    matplotlib."""
    path = folder / f'{stem}.png'
    try:
        plot_panels(panels, title, path)
    except ImportError as error:
        print(f'no chart: matplotlib unavailable ({error})', file=sys.stderr)
        return None
    return path


# ----- files -------------------------------------------------------------------------------------


def file_stem(results: dict, tag: str = None) -> str:
    """<UTC date>-<time>_<tag, else host>[_quick], from the run's machine record."""
    machine = results['machine']
    stamp = machine['date_utc'][:19].replace('-', '').replace(':', '').replace('T', '-')
    host = re.sub(r'[^A-Za-z0-9_.-]+', '_', tag or machine['host'])[:40]
    return f'{stamp}_{host}' + ('_quick' if results.get('quick') else '')


def save(results: dict, text: str, folder: Path, stem: str) -> dict:
    """Writes <stem>.json (the results) and <stem>.md (`text`) into `folder`; returns their
    paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {'json': folder / f'{stem}.json', 'markdown': folder / f'{stem}.md'}
    paths['json'].write_text(json.dumps(results, indent=1, sort_keys=False) + '\n')
    paths['markdown'].write_text(text + '\n')
    return paths


def write(results: dict, folder: Path, latest: bool, plot_chart: bool = True) -> dict:
    """Writes <stem>.json, <stem>.md and <stem>.png into `folder` (and latest.md when `latest`);
    returns their paths and the markdown text. Writing the same results again (run.py
    --rerender) overwrites the same files."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = file_stem(results)
    results.pop('plot', None)
    _add_derived(results)
    paths = {}
    if plot_chart:
        try:
            plot(results, folder / f'{stem}.png')
            results['plot'] = f'{stem}.png'
            paths['png'] = folder / f'{stem}.png'
        except ImportError as error:
            results['plot_error'] = f'matplotlib unavailable: {error}'
    text = markdown(results)
    paths.update(save(results, text, folder, stem))
    if latest:
        paths['latest'] = folder / 'latest.md'
        shutil.copyfile(paths['markdown'], paths['latest'])
    paths['markdown_text'] = text
    return paths
