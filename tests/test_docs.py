"""The documentation (issue #26): README.md stays a front page (at most 150 lines), docs/ builds
with MkDocs --strict where mkdocs is installed, and every ```python block of docs/*.md and
README.md runs: a page's blocks in order, in one fresh interpreter per page (later blocks may use
earlier names), in an empty temporary folder. A page whose code needs a module that is not
installed here (CuPy, a GPU) is skipped, naming it; any other failure fails the test."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / 'docs'
if not DOCS.exists():  # an installed wheel's tests, without the checkout's docs
    pytest.skip('no docs/ folder beside the tests', allow_module_level=True)
PAGES = sorted(DOCS.glob('*.md')) + [REPO / 'README.md']
BLOCK = re.compile(r'^```python\n(.*?)^```', re.MULTILINE | re.DOTALL)
# The exit status a page's script uses for "a module it needs is not installed".
MISSING = 3
RUNNER = (
    """
import runpy, sys
try:
    runpy.run_path(sys.argv[1], run_name='__main__')
except ModuleNotFoundError as error:
    print(f'missing module: {error.name}', file=sys.stderr)
    sys.exit(%d)
"""
    % MISSING
)


def blocks(page):
    return BLOCK.findall(page.read_text())


def test_readme_is_a_front_page():
    lines = (REPO / 'README.md').read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    for page in DOCS.glob('*.md'):  # every page is linked from the README (index: the site's)
        assert page.name == 'index.md' or f'docs/{page.name}' in '\n'.join(lines), page.name


@pytest.mark.parametrize('page', [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path):
    script = tmp_path / 'page.py'
    script.write_text('\n\n'.join(blocks(page)))
    result = subprocess.run(
        [sys.executable, '-c', RUNNER, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode == MISSING:
        pytest.skip(f'{page.name}: {result.stderr.strip().splitlines()[-1]}')
    assert result.returncode == 0, f'{page.name}:\n{result.stderr[-3000:]}'


def test_mkdocs_builds_strict(tmp_path):
    pytest.importorskip('mkdocs')
    pytest.importorskip('material')
    result = subprocess.run(
        [sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp_path / 'site')],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
