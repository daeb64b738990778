#!/usr/bin/env bash
# On a machine WITHOUT CUDA LibTorch (the Debian CPU-only 1.13 here): compiles the torch CUDA glue
# (common/*/*_cuda.cpp, vit/*_cuda.cpp, dit/*_cuda.cpp) and the [gpu] tests (tests/gpu_*.cpp) with -fsyntax-only
# and MOH_WITH_CUDA=1 against Debian's torch headers (which ship ATen/cuda and c10/cuda) plus the CUDA toolkit
# headers, so that code the CPU build never compiles is at least type-checked. A stub stands in for the one
# generated header CPU builds lack (c10/cuda/impl/cuda_cmake_macros.h).
# Passing says nothing about running: that needs the GPU machine (scripts/gpu/run-gpu-checks.sh).
#   usage: scripts/gpu/check-cuda-glue-syntax.sh [file.cpp ...]     (MOH_BUILD_LOCK=/tmp/moh-build.lock to share cores)
# Default files: every *_cuda.cpp, tests/gpu_*.cpp and every .cpp with a MOH_WITH_CUDA section.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
STUB=$(mktemp -d)
trap 'rm -rf "$STUB"' EXIT
mkdir -p "$STUB/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$STUB/c10/cuda/impl/cuda_cmake_macros.h"
FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then  # the glue, the [gpu] tests, and every other file with a MOH_WITH_CUDA section
  mapfile -t FILES < <( (ls common/*/*_cuda.cpp vit/*_cuda.cpp dit/*_cuda.cpp tests/gpu_*.cpp
    grep -l 'MOH_WITH_CUDA' common/*/*.cpp dit/*.cpp vit/*.cpp parity/*.cpp \
    tests/*.cpp apps/*.cpp apps/bench/*.cpp 2>/dev/null) | sort -u)
fi
fail=0
for f in "${FILES[@]}"; do
  lock=()
  [ -n "${MOH_BUILD_LOCK:-}" ] && lock=(flock "$MOH_BUILD_LOCK")
  if out=$("${lock[@]}" "${CXX:-c++}" -std=c++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -DMOH_WITH_CUDA=1 \
      -DMOH_TEST_DATA='"x"' -DMOH_DATA_DIR='"x"' -DMOH_BIN_DIR='"x"' -D_GLIBCXX_USE_CXX11_ABI=1 -I. \
      -isystem /usr/include/torch/csrc/api/include -isystem "$CUDA_INC" -isystem "$STUB" \
      "$f" 2>&1); then
    echo "ok      $f"
  else
    echo "FAILED  $f"
    echo "$out" | grep -E 'error' | head -n 10
    fail=1
  fi
done
exit $fail
