#!/usr/bin/env bash
# Configures (once) and builds the toolkit into ./build with Ninja. Extra arguments go to ninja (targets).
# MOH_TORCH=2: the second target instead, against PyPI's torch 2.11 CUDA wheel (scripts/setup-torch2.sh installs it
# into .deps/torch2 if needed) with MOH_CUDA=ON, into ./build-torch2 (kernels for sm_90, the GPU machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=()
if [ "${MOH_TORCH:-}" = 2 ]; then
  BUILD_DIR=${MOH_BUILD_DIR:-build-torch2}
  TORCH_DIR=$(./scripts/setup-torch2.sh | tail -n 1)
  ARGS=(-DMOH_TORCH_DIR="$TORCH_DIR" -DMOH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${MOH_CUDA_ARCHS:-90}")
else
  BUILD_DIR=${MOH_BUILD_DIR:-build}
fi
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # shellcheck disable=SC2086  # MOH_CMAKE_ARGS is a list of words on purpose
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${ARGS[@]}" ${MOH_CMAKE_ARGS:-}
fi
ninja -C "$BUILD_DIR" -j"${MOH_JOBS:-$(nproc)}" "$@"
