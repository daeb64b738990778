#!/usr/bin/env bash
# Bounded libFuzzer run of the safetensors header parser (tests/fuzz/fuzz_safetensors.cpp) with ASan + UBSan.
#   scripts/fuzz-safetensors.sh [SECONDS=60] [BUILD_DIR=build-fuzz]
# Needs clang with libFuzzer (Debian 12: apt-get install clang-14 libclang-rt-14-dev). Seeds: tests/fuzz/corpus
# (committed, replayed by the ctest group [fuzz]); inputs found during the run go to BUILD_DIR/fuzz-corpus, crashers to
# BUILD_DIR/fuzz-artifacts. Exit code 0 = no finding. When it finds one, copy the crasher into tests/fuzz/corpus after
# fixing the bug, so that ctest keeps replaying it.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${2:-$ROOT/build-fuzz}"

CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
CC_FUZZ="${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}"
if [ -z "$CXX_FUZZ" ] || [ -z "$CC_FUZZ" ]; then
  echo "fuzz-safetensors: clang not found; install it with: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
    "$CXX_FUZZ" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz-safetensors: $CXX_FUZZ cannot link libFuzzer; install libclang-rt-14-dev (or your clang's compiler-rt)" >&2
  exit 2
fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DMOH_FUZZ=ON -DMOH_TESTS=OFF -DMOH_CUDA=OFF -DMOH_OPENCV=OFF >/dev/null
ninja -C "$BUILD" fuzz_safetensors

mkdir -p "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts"
echo "fuzz-safetensors: fuzzing for ${SECONDS_TO_RUN}s (seeds: tests/fuzz/corpus, found inputs: $BUILD/fuzz-corpus)"
set +e
"$BUILD/bin/fuzz_safetensors" "$BUILD/fuzz-corpus" "$ROOT/tests/fuzz/corpus" \
  -max_total_time="$SECONDS_TO_RUN" -dict="$ROOT/tests/fuzz/safetensors.dict" -max_len=4096 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "fuzz-safetensors: FINDING (exit $rc); reproducer(s) in $BUILD/fuzz-artifacts/:" >&2
  ls -1 "$BUILD/fuzz-artifacts/" >&2
  exit 1
fi
echo "fuzz-safetensors: no findings in ${SECONDS_TO_RUN}s"
