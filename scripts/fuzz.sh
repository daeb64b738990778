#!/usr/bin/env bash
# Bounded libFuzzer run (ASan + UBSan) of one harness in tests/fuzz:
#   scripts/fuzz.sh safetensors   [SECONDS=60] [BUILD_DIR=build-fuzz]         the safetensors header parser
#   scripts/fuzz.sh torch-pickle  [SECONDS=60] [BUILD_DIR=build-fuzz-pickle]  the restricted unpickler + zip reader
# (scripts/fuzz-safetensors.sh and scripts/fuzz-torch-pickle.sh call this.) Needs clang with libFuzzer (Debian 12:
# apt-get install clang-14 libclang-rt-14-dev). Seeds: the committed corpus (tests/fuzz/corpus, resp. corpus_pickle
# plus the checkpoint fixtures tests/data/torch_ckpt), replayed by the ctest groups [fuzz] / [checkpoint]; inputs
# found during the run go to BUILD_DIR/fuzz-corpus, crashers to BUILD_DIR/fuzz-artifacts. Exit code 0 = no finding.
# When it finds one, copy the crasher into the committed corpus after fixing the bug, so that ctest keeps replaying it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHAT="${1:-}"
case "$WHAT" in
  safetensors)
    TARGET=fuzz_safetensors; DEFAULT_BUILD=build-fuzz; DICT=safetensors.dict; MAX_LEN=4096
    SEEDS=("$ROOT/tests/fuzz/corpus") ;;
  torch-pickle)
    TARGET=fuzz_torch_pickle; DEFAULT_BUILD=build-fuzz-pickle; DICT=torch_pickle.dict; MAX_LEN=16384
    SEEDS=("$ROOT/tests/fuzz/corpus_pickle" "$ROOT/tests/data/torch_ckpt") ;;
  *) echo "usage: scripts/fuzz.sh safetensors|torch-pickle [SECONDS] [BUILD_DIR]" >&2; exit 2 ;;
esac
NAME="fuzz-$WHAT"
SECONDS_TO_RUN="${2:-60}"
BUILD="${3:-$ROOT/$DEFAULT_BUILD}"

CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
CC_FUZZ="${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}"
if [ -z "$CXX_FUZZ" ] || [ -z "$CC_FUZZ" ]; then
  echo "$NAME: clang not found; install it with: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
    "$CXX_FUZZ" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "$NAME: $CXX_FUZZ cannot link libFuzzer; install libclang-rt-14-dev (or your clang's compiler-rt)" >&2
  exit 2
fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DMOH_FUZZ=ON -DMOH_TESTS=OFF -DMOH_CUDA=OFF -DMOH_OPENCV=OFF >/dev/null
ninja -C "$BUILD" -j "${FUZZ_JOBS:-2}" "$TARGET"

mkdir -p "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts"
echo "$NAME: fuzzing for ${SECONDS_TO_RUN}s (seeds: ${SEEDS[*]}, found inputs: $BUILD/fuzz-corpus)"
set +e
"$BUILD/bin/$TARGET" "$BUILD/fuzz-corpus" "${SEEDS[@]}" \
  -max_total_time="$SECONDS_TO_RUN" -dict="$ROOT/tests/fuzz/$DICT" -max_len="$MAX_LEN" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "$NAME: FINDING (exit $rc); reproducer(s) in $BUILD/fuzz-artifacts/:" >&2
  ls -1 "$BUILD/fuzz-artifacts/" >&2
  exit 1
fi
echo "$NAME: no findings in ${SECONDS_TO_RUN}s"
