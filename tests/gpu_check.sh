#!/usr/bin/env bash
# The one-shot GPU check (issue 24), for a GPU machine with torch and CuPy (TensorFlow and JAX
# are not needed) from a fresh checkout, in under 8 minutes:
#
#   bash tests/gpu_check.sh OUT
#
# Stages, each through tests/gpu_suite.sh and each with a time budget (seconds, overridable):
#   build     the CUDA module, the torch operators' CUDA kernels and the core for this GPU
#             (BUILD_BUDGET, 200)
#   tests     the emulation, the real kernels, kapre_fast.torch on CUDA and the host integration
#             (graphs, offsets past 2^31, several GPUs: test_gpu_graphs.py) (TESTS_BUDGET, 100)
#   memcheck  compute-sanitizer memcheck on a selection of those tests (MEMCHECK_BUDGET, 70)
#   bench     bench/gpu.py, configurations A-D at batch 128: kapre_fast.gpu and kapre_fast.torch
#             against the CuPy composition (cuFFT + matmul + log) and torch.stft + matmul, with
#             the memory-bandwidth floor (GB/s, % of peak) (BENCH_BUDGET, 80)
#
# Prints one summary line per stage (also in OUT/summary.txt); the stages' logs and the
# benchmark table (bench_table.md) go to OUT. Exit status: 0 when every stage passed, 1 when one
# failed or ran out of time, 2 without a GPU (then nothing is built or run, and OUT/summary.txt
# says so).
set -uo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash tests/gpu_check.sh OUT   (OUT: the folder for the logs and the summary)" >&2
  exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
export PYTHON=${PYTHON:-python3} OUT
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
STATUS=0

say() {
  echo "gpu_check: $*" | tee -a "$SUMMARY"
}

# The pytest result lines ("3 passed, 1 skipped in 2.0s") of the given logs, joined.
pytest_results() {
  local log line results=""
  for log in "$@"; do
    [ -f "$OUT/$log" ] || continue
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error|deselected)' "$OUT/$log" \
      | tail -1 | sed -E 's/^=+ //; s/ =+$//')
    results="$results${results:+; }${log%.log}: ${line:-no result}"
  done
  echo "$results"
}

# Runs tests/gpu_suite.sh STAGE within BUDGET seconds into OUT/NAME.log; returns its status
# (124 when out of time).
stage() {
  local name=$1 budget=$2 suite_stage=$3
  shift 3
  local started=$SECONDS code
  env "$@" timeout --kill-after=15 "$budget" bash tests/gpu_suite.sh "$suite_stage" \
    > "$OUT/$name.log" 2>&1
  code=$?
  ELAPSED=$((SECONDS - started))
  [ "$code" -eq 0 ] || STATUS=1
  return $code
}

verdict() {  # verdict CODE BUDGET: "ok", "FAILED" or "OUT OF TIME"
  if [ "$1" -eq 0 ]; then
    echo ok
  elif [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; then
    echo "OUT OF TIME (budget $2 s)"
  else
    echo "FAILED (exit $1)"
  fi
}

# ---- no GPU: one clear line, nothing built or run ----
if ! bash tests/gpu_suite.sh probe 2> "$OUT/probe.log"; then
  rm -f "$OUT/probe.log"
  say "no CUDA GPU on this machine (nvidia-smi -L lists none, or CuPy counts none):" \
    "nothing built, tested or timed; run it on a machine with a GPU"
  exit 2
fi
rm -f "$OUT/probe.log"
say "GPU: $(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader \
  2>/dev/null | head -1 || echo unknown)"

# ---- build ----
stage build "${BUILD_BUDGET:-200}" build CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 4)"
code=$?
say "build: $(verdict $code "${BUILD_BUDGET:-200}") in ${ELAPSED}s (build.log)"

# ---- tests (even after a failed build: kapre_fast/ may hold an earlier one) ----
stage tests "${TESTS_BUDGET:-100}" test
code=$?
say "tests: $(verdict $code "${TESTS_BUDGET:-100}") in ${ELAPSED}s: $(pytest_results \
  test_gpu_emulation.log test_gpu.log test_torch_gpu.log test_gpu_graphs.log)"

# ---- compute-sanitizer memcheck ----
if command -v compute-sanitizer > /dev/null 2>&1; then
  stage memcheck "${MEMCHECK_BUDGET:-70}" sanitize TOOLS=memcheck
  code=$?
  errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$OUT/sanitize_memcheck.log" 2>/dev/null \
    | tail -1)
  say "memcheck: $(verdict $code "${MEMCHECK_BUDGET:-70}") in ${ELAPSED}s:" \
    "${errors:-no error summary} (sanitize_memcheck.log)"
else
  STATUS=1
  say "memcheck: NOT RUN: compute-sanitizer is not on PATH"
fi

# ---- benchmark ----
stage bench "${BENCH_BUDGET:-80}" bench \
  BENCH_ARGS="--configs A,B,C,D --batches 128 --repeats 10 --warmup 2"
code=$?
table=$(ls -t "$OUT"/*_gpu.md 2>/dev/null | head -1)
if [ -n "$table" ]; then
  cp "$table" "$OUT/bench_table.md"
  line=$(grep -E '^\| A \| 128 \|' "$OUT/bench_table.md" | head -1)
  say "bench: $(verdict $code "${BENCH_BUDGET:-80}") in ${ELAPSED}s: A at 128 (CuPy |" \
    "torch.stft | kapre_fast.gpu | kapre_fast.torch ms ...) ${line:-missing} (bench_table.md)"
else
  [ "$code" -eq 0 ] && code=1 && STATUS=1
  say "bench: $(verdict $code "${BENCH_BUDGET:-80}") in ${ELAPSED}s: no table written" \
    "(bench.log)"
fi

say "$([ $STATUS -eq 0 ] && echo 'all stages passed' || echo 'SOME STAGES FAILED'):" \
  "logs in $OUT"
exit $STATUS
