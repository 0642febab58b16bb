#!/usr/bin/env bash
# The install test (make install-test; CI runs it after make wheel): the wheel in dist/ goes into
# a fresh venv where no compiler can run (CC=false CXX=false, nvcc off PATH), so pip can only
# install what was built; then the smoke run (tests/install/smoke.py) on every instruction set
# this CPU has, the command line's version and demo. Then the sdist is installed into the same
# venv the usual way (compilers back) and the smoke run repeated.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
export TF_CPP_MIN_LOG_LEVEL=2  # the smoke runs print their own lines
WORK=$ROOT/build/install-test
wheel=$(ls dist/kapre_fast-*-manylinux*.whl)
sdist=$(ls dist/kapre_fast-*.tar.gz)
version=$(basename "$wheel" | cut -d- -f2)
echo "== install test: $(basename "$wheel") and $(basename "$sdist"), version $version"
# The [tf] extra admits every supported TensorFlow (docs/install.md); this test installs the one
# the wheel's op library was built for (its _build_info.json), which it must load in. The other
# releases are make release-matrix's.
built_tf=$($PY -c 'import json, sys, zipfile
print(json.loads(zipfile.ZipFile(sys.argv[1]).read("kapre_fast/_build_info.json"))["tensorflow"])' \
  "$wheel")
tf_release=()
[ -z "$built_tf" ] || tf_release=("tensorflow==$(echo "$built_tf" | cut -d. -f1-2).*")

rm -rf "$WORK" && mkdir -p "$WORK"
$PY -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
$VPY -m pip install --quiet --upgrade pip

# The instruction sets this CPU can run, beside the one detected by default.
isas=(sse2)
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && isas+=(avx2)

smoke() {  # from outside the checkout, so only the installed package can be imported
  (cd "$WORK" && for isa in "${isas[@]}"; do
     KAPRE_FAST_ISA=$isa $VPY "$ROOT/tests/install/smoke.py" "$version" "$isa"
   done && $VPY "$ROOT/tests/install/smoke.py" "$version")
}

(
  export CC=false CXX=false CUDACXX=false
  PATH=$(echo "$PATH" | tr ':' '\n' | while read -r dir; do
           [ -x "$dir/nvcc" ] || printf '%s:' "$dir"; done)
  export PATH=${PATH%:}
  if command -v nvcc >/dev/null; then echo "nvcc is still on PATH" >&2; exit 1; fi
  $VPY -m pip install --quiet "${wheel}[tf,cli]" "${tf_release[@]}"
  smoke
  [ "$("$WORK/venv/bin/kapre-fast" --version)" = "kapre-fast $version" ]
  (cd "$WORK" && "$WORK/venv/bin/kapre-fast" demo -o demo.png && test -s demo.png)
)
echo "== wheel: ok"

$VPY -m pip uninstall --quiet --yes kapre_fast
$VPY -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" ninja cmake
$VPY -m pip install --quiet --no-build-isolation "$sdist"
smoke
echo "== sdist: ok"
