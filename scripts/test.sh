#!/usr/bin/env bash
# Builds everything and runs the CPU test suite (ctest label "cpu"). GPU tests run on a GPU machine with
# scripts/gpu/run-gpu-checks.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MOH_BUILD_DIR:-build}
T0=$(date +%s)
MOH_BUILD_DIR=$BUILD_DIR ./scripts/build.sh
echo "build took $(( $(date +%s) - T0 )) s"
cd "$BUILD_DIR"
ctest -L cpu --output-on-failure -j"${MOH_TEST_JOBS:-2}" --timeout 1200
echo "build + tests took $(( $(date +%s) - T0 )) s"
