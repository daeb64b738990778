#!/usr/bin/env bash
# Builds the CPU tree with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) into build-asan/ and runs the CPU
# test suite under them. Exit code 0 = every test passed with no sanitizer report.
#   scripts/sanitize.sh [ctest args...]     e.g. scripts/sanitize.sh -R safetensors
# LibTorch itself is not instrumented: ASan still checks every allocation (it replaces malloc), UBSan checks our code.
# Options: container-overflow checks are off (they need every library instrumented, LibTorch is not); leaks are
# not checked (LibTorch keeps process-lifetime allocations); any UBSan report aborts the test that caused it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MOH_ASAN_BUILD_DIR:-build-asan}
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
T0=$(date +%s)
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOH_CUDA=OFF \
    -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
fi
ninja -C "$BUILD_DIR" -j"${MOH_JOBS:-$(nproc)}"
echo "sanitize: build took $(( $(date +%s) - T0 )) s"
export ASAN_OPTIONS="detect_leaks=0:detect_container_overflow=0:abort_on_error=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
T1=$(date +%s)
(cd "$BUILD_DIR" && ctest -L cpu --output-on-failure -j"${MOH_TEST_JOBS:-2}" --timeout 3000 "$@")
echo "sanitize: tests took $(( $(date +%s) - T1 )) s; total $(( $(date +%s) - T0 )) s"
