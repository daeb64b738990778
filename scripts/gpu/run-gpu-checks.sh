#!/usr/bin/env bash
# Run ON THE GPU MACHINE (PyTorch 2.11 + CUDA 13.0, no OpenCV, no package registry), from the repo root, with
# .deps/usr carried (scripts/gpu/fetch-header-deps.sh run here first). One prepared run that fits in 8 minutes:
#   1. configure build-gpu against the CUDA LibTorch (torch's CMake config adds the sm_90a flags itself);
#   2. build ONLY the GPU test executable (moh_gpu_tests: tests/gpu_*.cpp) and moh-bench, then check that the
#      header-only libraries (stb, nlohmann-json, Catch2 v2, CLI11, Gloo) came from the carried .deps/usr/include;
#   3. run the [gpu] tests first (console log);
#   4. then the benchmarks (moh-bench attention / dit / vit, bf16), each under its own timeout;
#   5. write $OUT/summary.txt last (also when a step fails or times out: an EXIT trap writes it).
# Every step has a timeout cut to what is left of the overall budget (MOH_GPU_BUDGET_S, default 450 s), so the run
# ends inside the device tool's limit with its logs. At most 8 files come back from $OUT: gpu-checks.log (everything),
# build.log, gpu-tests.log, bench-<b>.json per bench (3), bench-official.json when it runs, summary.txt.
#   usage: scripts/gpu/run-gpu-checks.sh [bench...]       (default benches: attention dit vit)
#   device tool: run(command="scripts/gpu/run-gpu-checks.sh", carry=[".deps/usr"], timeout_s=540)
#   (carry .deps/usr, not .deps: .deps/torch2, the second target's venv, is gigabytes)
#   env:   OUT (default ./gpu-out), MOH_GPU_BUDGET_S, MOH_BUILD_TIMEOUT (default 240), MOH_TEST_TIMEOUT (default 90),
#          MOH_BENCH_TIMEOUT (default 60 per bench), MOH_BENCH_ARGS (default "--warmup 2 --iters 5"), MOH_CMAKE_ARGS,
#          MOH_JOBS (default nproc),
#          MOH_GPU_DRY_RUN=1 (print the commands, run none of them: for checking the script on a CPU machine),
#          MOH_GPU_REHEARSAL=1 (on a CPU machine: the same configure and build against the same torch -- the venv of
#            scripts/setup-torch2.sh unless MOH_PYTHON says otherwise --, the header check, then the [gpu] tests and
#            benches up to their first GPU call: each must stop there and nowhere else; see docs/perf/issue16-gpu-run.md),
#          MOH_PYTHON (default python3; the Python whose torch gives LibTorch), MOH_CMAKE (default cmake)
# Without an official checkout (.official/MoH, ignored) the official side-by-side step is skipped and says so:
# scripts/bench-official.py times the official code on the CPU only today.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/gpu-checks.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
BENCHES=${*:-attention dit vit}
BUDGET=${MOH_GPU_BUDGET_S:-450}
DRY=${MOH_GPU_DRY_RUN:-0}
REHEARSAL=${MOH_GPU_REHEARSAL:-0}
PY=${MOH_PYTHON:-python3}
CMAKE=${MOH_CMAKE:-cmake}
if [ "$REHEARSAL" = 1 ] && [ -z "${MOH_PYTHON:-}" ]; then PY=$PWD/.deps/torch2/bin/python; fi
T0=$(date +%s)
declare -A STATUS=()  # step -> "ok (Ns)" / "FAILED rc=N (Ns)" / "TIMEOUT (Ns)" / "skipped: why"
ORDER=()
stamp() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }

# step NAME MAX_SECONDS CMD...: runs CMD under `timeout min(MAX, left - 20)`; records the outcome; returns CMD's rc.
step() {
  local name=$1 max=$2
  shift 2
  ORDER+=("$name")
  local budget
  budget=$(( $(left) - 20 ))
  [ "$budget" -lt "$max" ] && max=$budget
  if [ "$max" -le 5 ]; then
    STATUS[$name]="skipped: out of time budget"
    stamp "$name: skipped (out of time budget)"
    return 124
  fi
  stamp "$name (timeout ${max}s): $*"
  local t rc=0
  t=$(date +%s)
  if [ "$DRY" = 1 ]; then
    echo "    [dry run] $*"
  else
    timeout --kill-after=5 "$max" "$@"
    rc=$?
  fi
  local dt=$(( $(date +%s) - t ))
  case $rc in
    0) STATUS[$name]="ok (${dt}s)" ;;
    124 | 137) STATUS[$name]="TIMEOUT after ${dt}s" ;;
    *) STATUS[$name]="FAILED rc=$rc (${dt}s)" ;;
  esac
  return $rc
}

# shellcheck disable=SC2317  # called from the EXIT trap
summary() {
  local s=$OUT/summary.txt
  {
    echo "MoH GPU checks: $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+local changes)'), $(( $(date +%s) - T0 ))s of ${BUDGET}s"
    echo "machine: ${GPU_INFO:-?}; torch ${TORCH_INFO:-?}"
    [ "$REHEARSAL" = 1 ] && echo "REHEARSAL without a GPU: gpu-tests and bench-* pass when they stop at their first GPU call"
    for n in "${ORDER[@]}"; do printf '  %-22s %s\n' "$n" "${STATUS[$n]:-not reached}"; done
    if [ -f "$OUT/gpu-tests.log" ]; then
      echo "gpu tests:"
      grep -E '^(All tests passed|test cases:|assertions:)' "$OUT/gpu-tests.log" | sed 's/^/  /'
      grep -E 'FAILED:|REQUIRE|CHECK\(' "$OUT/gpu-tests.log" | head -n 20 | sed 's/^/  /'
    fi
    for b in $BENCHES; do
      [ -f "$OUT/bench-$b.json" ] || continue
      echo "bench $b (medians; $OUT/bench-$b.json):"
      python3 - "$OUT/bench-$b.json" <<'PY' 2>/dev/null || echo "  (could not parse)"
import json, sys
d = json.load(open(sys.argv[1]))
# moh-bench writes a list (attention) or {"dit": [...]} / {"vit": [...]}.
rows = d if isinstance(d, list) else next((v for v in d.values() if isinstance(v, list)), [])
for r in rows:
    label = r.get("name", r.get("case", "?"))
    vals = [f"{k}={v:.4g}" for k, v in r.items() if isinstance(v, float)]
    print(f"  {label}: " + ", ".join(vals))
PY
    done
    echo "remaining budget: $(left)s"
  } >"$s"
  cat "$s"
}
trap summary EXIT

if [ "$DRY" = 1 ]; then
  TORCH_PREFIX=/dry-run/torch/share/cmake TORCH_LIB=/dry-run/torch/lib TORCH_INFO="(dry run)" GPU_INFO="(dry run)"
else
  export PYTHONWARNINGS=ignore  # torch without numpy warns on import
  TORCH_PREFIX=$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)')
  TORCH_LIB=$("$PY" -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
  TORCH_INFO=$("$PY" -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda)')
  GPU_INFO=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  [ "$REHEARSAL" = 1 ] && GPU_INFO="rehearsal on $(hostname) without a GPU${GPU_INFO:+ (but nvidia-smi sees $GPU_INFO)}"
fi
if [ -z "$TORCH_PREFIX" ]; then
  ORDER+=(torch)
  STATUS[torch]="FAILED: $PY cannot import torch (the GPU machine's PyTorch 2.11 is needed for its LibTorch; here: scripts/setup-torch2.sh)"
  exit 1
fi
export LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
stamp "torch $TORCH_INFO; GPU $GPU_INFO; benches: $BENCHES"
[ -d .deps/usr/include ] || echo "WARNING: .deps/usr/include missing (run scripts/gpu/fetch-header-deps.sh here and carry .deps/usr)"

# shellcheck disable=SC2086  # MOH_CMAKE_ARGS is a list of words on purpose
step configure 90 "$CMAKE" -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOH_TORCH_DIR="$TORCH_PREFIX" \
  -DMOH_CUDA=ON -DMOH_OPENCV=OFF -DMOH_EXTRA_INCLUDE="$PWD/.deps/usr/include" \
  -DCMAKE_CUDA_ARCHITECTURES=90 ${MOH_CMAKE_ARGS:-} || exit 1

step build "${MOH_BUILD_TIMEOUT:-240}" bash -c "set -o pipefail; ninja -C build-gpu -j${MOH_JOBS:-$(nproc)} \
  moh_gpu_tests moh-bench 2>&1 | tee '$OUT/build.log' | { grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true; }" || exit 1

# The GPU machine has Catch2 v3 and CLI11 2.4 in /usr/include and no stb, nlohmann-json or Gloo: every header of these
# must come from the carried .deps/usr/include (ninja's dependency log lists each object's headers, relative to the
# build folder as ../.deps/usr/include/... or absolute).
step carried-headers 30 bash -c "from_elsewhere=\$(ninja -C build-gpu -t deps | grep -E '/include/(catch2|CLI|nlohmann|stb|gloo)/' \
  | grep -v '/.deps/usr/include/' | sort -u); if [ -n \"\$from_elsewhere\" ]; then echo 'headers not from .deps/usr/include:'; \
  echo \"\$from_elsewhere\" | head -n 20; exit 1; fi; echo \"carried headers used: \$(ninja -C build-gpu -t deps \
  | grep -c '/.deps/usr/include/') includes; .deps/usr is \$(du -sm .deps/usr | cut -f1) MiB (carry limit 64)\"" || exit 1

# Rehearsal: a step whose command must fail, each failure at its first GPU call (CUDA unavailable), nowhere else.
#   stops_at_gpu LOG PATTERN CMD...: runs CMD (output to LOG too); ok when CMD failed and every Catch2 failure
#   (a "FAILED:" line followed by its expression) or the app's error line matches PATTERN.
# shellcheck disable=SC2317  # run through bash -c (exported)
stops_at_gpu() {
  local log=$1 pattern=$2 rc
  shift 2
  "$@" >"$log" 2>&1
  rc=$?
  cat "$log"
  if [ "$rc" -eq 0 ]; then echo "REHEARSAL: expected a stop at the first GPU call, but it passed"; return 1; fi
  local other
  other=$(awk -v pat="$pattern" '/FAILED:/ {want=1; next} want && NF {if ($0 !~ pat) print; want=0}' "$log")
  if [ -n "$other" ]; then echo "REHEARSAL: failures other than the first GPU call:"; echo "$other"; return 1; fi
  if ! grep -qE "$pattern" "$log"; then echo "REHEARSAL: rc=$rc without reaching a GPU call"; return 1; fi
  echo "REHEARSAL: stopped at the first GPU call (rc=$rc), as expected without a GPU"
}
export -f stops_at_gpu  # `step` runs commands under timeout(1), which needs a program: bash -c 'stops_at_gpu ...'

# Tests first (console reporter with per-test durations; Catch2 v2 takes one reporter per run).
if [ "$REHEARSAL" = 1 ]; then
  # The fused kernels are then switched on for the benchmarks, as on the GPU machine after passing tests.
  step gpu-tests "${MOH_TEST_TIMEOUT:-90}" bash -c 'stops_at_gpu "$@"' stops_at_gpu "$OUT/gpu-tests.log" \
    'torch::cuda::is_available\(\)' build-gpu/tests/moh_gpu_tests '[gpu]' --durations yes
  TEST_RC=$?
else
  step gpu-tests "${MOH_TEST_TIMEOUT:-90}" bash -c "build-gpu/tests/moh_gpu_tests '[gpu]' --durations yes 2>&1 | tee '$OUT/gpu-tests.log'; exit \${PIPESTATUS[0]}"
  TEST_RC=$?
fi
# The new fused kernels are opt-in until checked: the benchmarks use them only when every [gpu] test passed.
if [ "$TEST_RC" -eq 0 ]; then
  export MOH_DIT_FUSED_KERNEL=1 MOH_VIT_AGG_KERNEL=1
  ORDER+=(fused-kernels); STATUS[fused-kernels]="on for the benchmarks (MOH_DIT_FUSED_KERNEL=1 MOH_VIT_AGG_KERNEL=1)"
else
  ORDER+=(fused-kernels); STATUS[fused-kernels]="off for the benchmarks: [gpu] tests failed"
fi

for b in $BENCHES; do
  bench=(build-gpu/bin/moh-bench "$b" --device cuda --dtype bf16)
  # shellcheck disable=SC2206  # MOH_BENCH_ARGS is a list of words on purpose
  bench+=(${MOH_BENCH_ARGS:---warmup 2 --iters 5} --json "$OUT/bench-$b.json")
  if [ "$REHEARSAL" = 1 ]; then
    step "bench-$b" "${MOH_BENCH_TIMEOUT:-60}" bash -c 'stops_at_gpu "$@"' stops_at_gpu "$OUT/bench-$b.log" \
      'device cuda: no CUDA device' "${bench[@]}"
  else
    step "bench-$b" "${MOH_BENCH_TIMEOUT:-60}" "${bench[@]}"
  fi
done

if [ -d .official/MoH ] && grep -q 'add_argument("--device"' scripts/bench-official.py; then
  step official-side-by-side 120 python3 scripts/bench-official.py --src .official/MoH --device cuda --vit s80 \
    --out "$OUT/bench-official.json"
else
  ORDER+=(official-side-by-side)
  STATUS[official-side-by-side]="skipped: needs .official/MoH and a CUDA mode in scripts/bench-official.py (CPU-only today)"
fi
stamp "done (gpu tests rc=$TEST_RC)"
exit "$TEST_RC"
