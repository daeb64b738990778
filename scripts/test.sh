#!/usr/bin/env bash
# Builds everything and runs the CPU test suite (ctest label "cpu"). GPU tests run on a GPU machine with
# scripts/gpu/run-gpu-checks.sh. MOH_TORCH=2: the same against PyPI's torch 2.11 CUDA wheel in ./build-torch2
# (see scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${MOH_TORCH:-}" = 2 ]; then BUILD_DIR=${MOH_BUILD_DIR:-build-torch2}; else BUILD_DIR=${MOH_BUILD_DIR:-build}; fi
T0=$(date +%s)
MOH_BUILD_DIR=$BUILD_DIR ./scripts/build.sh
echo "build took $(( $(date +%s) - T0 )) s"
cd "$BUILD_DIR"
ctest -L cpu --output-on-failure -j"${MOH_TEST_JOBS:-2}" --timeout 1200
echo "build + tests took $(( $(date +%s) - T0 )) s"
