#!/usr/bin/env bash
# Run ON THE GPU MACHINE (PyTorch 2.11 + CUDA, no OpenCV, no package registry), from the repo root, with .deps/
# carried (scripts/gpu/fetch-header-deps.sh). Configures against the CUDA LibTorch, builds, runs the GPU-labelled tests
# and the benchmarks, and writes logs under $OUT (default ./gpu-out).
#   usage: scripts/gpu/run-gpu-checks.sh [bench...]     (default benches: attention dit vit)
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/gpu-checks.log
exec > >(tee -a "$LOG") 2>&1
BENCHES=${*:-attention dit vit}
T0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }

TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
stamp "torch $(python3 -c 'import torch;print(torch.__version__, torch.version.cuda)'); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"

stamp configure
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DMOH_CUDA=ON -DMOH_OPENCV=OFF -DMOH_EXTRA_INCLUDE="$PWD/.deps/usr/include" \
  -DCMAKE_CUDA_ARCHITECTURES=90 ${MOH_CMAKE_ARGS:-} || { stamp "configure FAILED"; exit 1; }
stamp build
ninja -C build-gpu -j16 ${MOH_TARGETS:-} 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' ; BUILD_RC=${PIPESTATUS[0]}
[ "$BUILD_RC" -eq 0 ] || { stamp "build FAILED ($BUILD_RC)"; exit 1; }

stamp "GPU tests"
(cd build-gpu && ctest -L gpu --output-on-failure --timeout 300) 2>&1 | tee "$OUT/gpu-tests.log"
TEST_RC=${PIPESTATUS[0]}
if [ "${MOH_CPU_TESTS:-0}" = 1 ]; then
  stamp "CPU tests on the CUDA build"
  (cd build-gpu && ctest -L cpu --output-on-failure --timeout 600 -j8) 2>&1 | tee "$OUT/cpu-tests.log"
fi

for b in $BENCHES; do
  stamp "bench $b"
  timeout ${MOH_BENCH_TIMEOUT:-240} build-gpu/bin/moh-bench "$b" --device cuda --dtype bf16 --json "$OUT/bench-$b.json" 2>&1 | tee "$OUT/bench-$b.log"
done
stamp "done (gpu tests rc=$TEST_RC)"
exit "$TEST_RC"
