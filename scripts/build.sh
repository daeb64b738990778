#!/usr/bin/env bash
# Configures (once) and builds the toolkit into ./build with Ninja. Extra arguments go to ninja (targets).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MOH_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${MOH_CMAKE_ARGS:-}
fi
ninja -C "$BUILD_DIR" -j"${MOH_JOBS:-$(nproc)}" "$@"
