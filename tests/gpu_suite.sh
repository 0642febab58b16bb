#!/usr/bin/env bash
# The GPU suite, for a machine with a CUDA GPU (CuPy for CUDA 13, nvcc, cmake, ninja, pybind11;
# TensorFlow is not needed):
#
#   bash tests/gpu_suite.sh [probe|build|test|sanitize|bench|all]     (default: all)
#
#   probe     only the GPU check below (exit 0 with a GPU, 2 without): tests/gpu_check.sh asks it
#   build     the CUDA module (and, with torch, the torch operators' CUDA kernels) for this GPU's
#             architecture into build/gpu, copied into kapre_fast/
#   test      host emulation + the real kernels against the reference and the emulation,
#             kapre_fast.torch on CUDA tensors, and the host integration on the GPU (CUDA graphs,
#             offsets past 2^31, several GPUs: test_gpu_graphs.py); every file runs even when an
#             earlier one fails, the stage fails if any did
#   sanitize  the GPU tests under compute-sanitizer (the tools in $TOOLS, default memcheck,
#             racecheck, synccheck, initcheck)
#   bench     bench/gpu.py: kapre_fast.gpu vs the CuPy composition (and torch), batches 1/16/128;
#             $BENCH_ARGS replaces those defaults (e.g. "--configs A,B --batches 128")
#
# Each stage is one command of a few minutes. Logs and benchmark results go to $OUT when it is
# set (the device tool's output folder), else to build/gpu-suite/ and bench/results/. Without a
# GPU it prints one line and exits 2, having built and written nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
LOGS=${OUT:-$ROOT/build/gpu-suite}
RESULTS=${OUT:-$ROOT/bench/results}
STAGE=${1:-all}

case "$STAGE" in
  probe|build|test|sanitize|bench|all) ;;
  *) echo "usage: bash tests/gpu_suite.sh [probe|build|test|sanitize|bench|all]" >&2; exit 2 ;;
esac

# A GPU: nvidia-smi lists one, or (without nvidia-smi) CuPy counts one.
has_gpu() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -q '^GPU '
  else
    "$PY" -c 'import cupy, sys; sys.exit(cupy.cuda.runtime.getDeviceCount() == 0)' \
      >/dev/null 2>&1
  fi
}

# Every stage builds or runs CUDA code: without a GPU, stop before anything is built or written
# (a build would land in kapre_fast/ and change what the checkout's root imports).
if ! has_gpu; then
  echo "tests/gpu_suite.sh: no CUDA GPU on this machine (nvidia-smi -L lists none, or CuPy" \
    "counts none): nothing built or run; run it on a machine with a GPU" >&2
  exit 2
fi
[ "$STAGE" = probe ] && exit 0
mkdir -p "$LOGS"

# This GPU's compute capability as CMake wants it (9.0 -> 90); 90 where nvidia-smi cannot say.
gpu_arch() {
  local cap
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  echo "${cap:-90}"
}

build() {
  local arch
  arch=$(gpu_arch)
  echo "== build: CUDA kernels for sm_$arch"
  # The torch operators (and their CUDA kernels) too when this Python has torch: AUTO.
  cmake -S . -B build/gpu -G Ninja -DKAPRE_FAST_TF=OFF -DKAPRE_FAST_CUDA=ON \
    -DKAPRE_FAST_TORCH=AUTO -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")"
  cmake --build build/gpu
  # Copy, then rename: a library some process has loaded is replaced, never overwritten.
  local f
  for f in build/gpu/*.so build/gpu/_build_info.json; do
    cp "$f" kapre_fast/.incoming && mv kapre_fast/.incoming "kapre_fast/$(basename "$f")"
  done
}

# One pytest run from tests/ into $LOGS/<log>; records a failure in $FAILED and goes on.
FAILED=0
pytest_into() {
  local log=$1
  shift
  (cd tests && PYTHONPATH="$ROOT" $PY -m pytest -q -p no:cacheprovider "$@") 2>&1 \
    | tee "$LOGS/$log" || FAILED=1
}

run_tests() {
  # The GPU-only files first: the emulation's (last) run in CI too.
  echo "== test: the host integration on the GPU (graphs, large offsets, several GPUs)"
  pytest_into test_gpu_graphs.log -rs -m gpu test_gpu_graphs.py
  echo "== test: kapre_fast.torch on CUDA tensors (the torch operators' CUDA kernels)"
  pytest_into test_torch_gpu.log -rs -m gpu test_torch.py
  echo "== test: the real kernels against the reference and the emulation"
  pytest_into test_gpu.log -rs -m gpu test_gpu.py
  echo "== test: host emulation"
  pytest_into test_gpu_emulation.log test_gpu_emulation.py test_gpu_launch_safety.py \
    test_gpu_presets.py test_fuzz_gpu.py
  return $FAILED
}

# The sanitizer's selection: the kernels' paths (test_gpu.py) and the host integration's
# uploads, captures and empty calls (test_gpu_graphs.py).
SANITIZE_K="every_pipeline or istft or concurrent or misaligned or round_robin"
SANITIZE_K="$SANITIZE_K or zero_size or first_use or swallowed"

sanitize() {
  # CuPy's memory pool off: one cudaMalloc per array, so every out-of-bounds access is seen.
  local tool
  for tool in ${TOOLS:-memcheck racecheck synccheck initcheck}; do
    echo "== sanitize: $tool"
    (cd tests && KAPRE_FAST_TEST_NO_CUPY_POOL=1 PYTHONPATH="$ROOT" \
      compute-sanitizer --tool "$tool" --error-exitcode 1 --target-processes all \
      $PY -m pytest -q -p no:cacheprovider -x -m gpu test_gpu.py test_gpu_graphs.py \
      -k "$SANITIZE_K") \
      2>&1 | tee "$LOGS/sanitize_$tool.log" || FAILED=1
  done
  return $FAILED
}

bench() {
  echo "== bench: results in $RESULTS"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  $PY bench/gpu.py --out "$RESULTS" ${BENCH_ARGS:-} 2>&1 | tee "$LOGS/bench_gpu.log"
}

case "$STAGE" in
  build) build ;;
  test) run_tests ;;
  sanitize) sanitize ;;
  bench) bench ;;
  all) build && run_tests && sanitize && bench ;;
esac
