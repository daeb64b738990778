#!/usr/bin/env bash
# Bounded libFuzzer run of the restricted torch unpickler and zip reader (tests/fuzz/fuzz_torch_pickle.cpp) with ASan + UBSan.
#   scripts/fuzz-torch-pickle.sh [SECONDS=60] [BUILD_DIR=build-fuzz-pickle]
# Seeds also include the checkpoint fixtures (tests/data/torch_ckpt), so the zip reader is fuzzed from real files.
# Needs clang with libFuzzer (Debian 12: apt-get install clang-14 libclang-rt-14-dev). Seeds: tests/fuzz/corpus_pickle
# (committed, replayed by the ctest groups [fuzz] and [checkpoint]); inputs found during the run go to BUILD_DIR/fuzz-corpus, crashers to
# BUILD_DIR/fuzz-artifacts. Exit code 0 = no finding. When it finds one, copy the crasher into tests/fuzz/corpus_pickle after
# fixing the bug, so that ctest keeps replaying it.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${2:-$ROOT/build-fuzz-pickle}"

CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
CC_FUZZ="${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}"
if [ -z "$CXX_FUZZ" ] || [ -z "$CC_FUZZ" ]; then
  echo "fuzz-torch-pickle: clang not found; install it with: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
    "$CXX_FUZZ" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz-torch-pickle: $CXX_FUZZ cannot link libFuzzer; install libclang-rt-14-dev (or your clang's compiler-rt)" >&2
  exit 2
fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DMOH_FUZZ=ON -DMOH_TESTS=OFF -DMOH_CUDA=OFF -DMOH_OPENCV=OFF >/dev/null
ninja -C "$BUILD" -j "${FUZZ_JOBS:-2}" fuzz_torch_pickle

mkdir -p "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts"
echo "fuzz-torch-pickle: fuzzing for ${SECONDS_TO_RUN}s (seeds: tests/fuzz/corpus_pickle, found inputs: $BUILD/fuzz-corpus)"
set +e
"$BUILD/bin/fuzz_torch_pickle" "$BUILD/fuzz-corpus" "$ROOT/tests/fuzz/corpus_pickle" "$ROOT/tests/data/torch_ckpt" \
  -max_total_time="$SECONDS_TO_RUN" -dict="$ROOT/tests/fuzz/torch_pickle.dict" -max_len=16384 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "fuzz-torch-pickle: FINDING (exit $rc); reproducer(s) in $BUILD/fuzz-artifacts/:" >&2
  ls -1 "$BUILD/fuzz-artifacts/" >&2
  exit 1
fi
echo "fuzz-torch-pickle: no findings in ${SECONDS_TO_RUN}s"
