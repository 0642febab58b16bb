#!/usr/bin/env bash
# The release matrix (make release-matrix, issue #25): the wheel in dist/ installed into a fresh
# venv per cell beside other framework releases than the one it was built with, then the smoke run
# tests/install/release_smoke.py in each (kapre_fast.cpu vs the reference; a composed Keras model
# fits one step, saves and reloads; the torch operator under torch.compile; the JAX call under
# jax.jit). One summary line per cell, one line per failed part; exit 1 when a cell failed.
#
# Two cells, each one venv holding three framework releases (pip resolves both sets together:
# checked with pip install --dry-run; ml_dtypes 0.7 and numpy 2.0 (TF 2.18's cap) / 2.4 suit all):
#   old: tensorflow 2.18, torch 2.11, jax 0.6   (TF 2.18, torch 2.11 and jax 0.6 from PyPI)
#   new: tensorflow 2.21, torch 2.14.1, jax 0.10 (torch, jax and most CUDA libraries from this
#        machine's disk, TF 2.21 from PyPI)
# Keras is what kapre_fast's [tf] extra and each TensorFlow's requirement resolve to. torch comes
# with its full CUDA dependencies (about 3 GB per cell): torch's CUDA builds do not import without
# them (libcudnn.so.9 missing with --no-deps, checked with torch 2.11), and PyPI has no CPU build.
# The cells install and run side by side (RELEASE_MATRIX_JOBS, default 2): one downloads while the
# other unpacks. The venvs (about 6.6 GB each) stay in build/release-matrix/<cell>-venv for a look
# at a failed cell, beside the logs (<cell>.log); the next run replaces them, make clean removes
# them (removing both takes 2-3 minutes on this loaded VM: 3 min 20 s once, alone). pip installs
# with --no-compile: the smoke run byte-compiles only the modules it imports.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
WORK=$ROOT/build/release-matrix
JOBS=${RELEASE_MATRIX_JOBS:-2}
export TF_CPP_MIN_LOG_LEVEL=2 PIP_DISABLE_PIP_VERSION_CHECK=1

# CELL: the requirements pip installs beside the wheel, then the releases release_smoke.py checks.
CELLS=(old new)
declare -A REQUIREMENTS=(
  [old]='tensorflow==2.18.* torch==2.11.* jax==0.6.*'
  [new]='tensorflow==2.21.* torch==2.14.1 jax==0.10.*'
)
declare -A RELEASES=(
  [old]='tensorflow=2.18 torch=2.11 jax=0.6'
  [new]='tensorflow=2.21 torch=2.14 jax=0.10'
)

wheels=$(ls dist/kapre_fast-*-manylinux*.whl 2>/dev/null || true)
if [ "$(echo "$wheels" | grep -c .)" != 1 ]; then
  echo "release-matrix: need exactly one dist/kapre_fast-*-manylinux*.whl (make wheel), found:" \
    "${wheels:-none}" >&2
  exit 2
fi
wheel=$ROOT/$wheels
echo "== release matrix: $(basename "$wheel"), cells: ${CELLS[*]}"
mkdir -p "$WORK"

cell() {  # NAME: fresh venv, install, smoke run; the summary lines in $WORK/NAME.summary
  local name=$1 venv=$WORK/$1-venv log=$WORK/$1.log start
  start=$(date +%s)
  rm -rf "$venv" "$log" "$WORK/$name.summary"
  {
    $PY -m venv "$venv" &&
      # shellcheck disable=SC2086 (the requirements are words)
      "$venv/bin/pip" install --progress-bar off --no-compile "${wheel}[tf,torch,jax]" \
        ${REQUIREMENTS[$name]}
  } >"$log" 2>&1 || {
    echo "release-matrix $name: FAIL: pip install failed after $(($(date +%s) - start)) s" \
      "(${REQUIREMENTS[$name]}): $(grep -E '^ERROR' "$log" | head -1) (log: $log)" \
      >"$WORK/$name.summary"
    return 1
  }
  local installed=$(($(date +%s) - start)) status=0
  # shellcheck disable=SC2086
  (cd "$WORK" && "$venv/bin/python" "$ROOT/tests/install/release_smoke.py" "$name" \
    ${RELEASES[$name]}) >"$WORK/$name.summary" 2>>"$log" || status=1
  # The smoke run's seconds end its first line; the venv and install's, and the cell's, follow.
  sed -i "1s/\$/ + install $installed s = $(($(date +%s) - start)) s/" "$WORK/$name.summary"
  return $status
}

failed=0
pids=()
for name in "${CELLS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  cell "$name" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for name in "${CELLS[@]}"; do cat "$WORK/$name.summary"; done
exit $failed
