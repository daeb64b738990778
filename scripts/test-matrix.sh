#!/usr/bin/env bash
# Runs the CPU test suite under BLAS-kernel / thread settings that stand for other machines, so that a bound or a
# determinism promise that holds only for this CPU's default kernels fails here first. Each setting is one ctest run
# of the built tree (build it first: scripts/build.sh); all must pass. Prints a timing line per setting.
#
#   scripts/test-matrix.sh                 # the full matrix below (the [demo] group and the consumer build left out)
#   MOH_MATRIX="haswell-1 skylakex-2" scripts/test-matrix.sh     # a subset, by name
#
# Settings (OpenBLAS picks its kernels by OPENBLAS_CORETYPE; Debian's OpenBLAS is built with DYNAMIC_ARCH):
#   haswell-1    OPENBLAS_CORETYPE=Haswell,  OMP_NUM_THREADS=1  (AVX2 kernels, as CI machines' environments may set)
#   native-3     OPENBLAS_CORETYPE unset,    OMP_NUM_THREADS=3  (OpenBLAS's own choice, more threads than cores)
#   skylakex-2   OPENBLAS_CORETYPE=SkylakeX, OMP_NUM_THREADS=2  (AVX-512 kernels)
#   sandy-2      OPENBLAS_CORETYPE=Sandybridge, OMP_NUM_THREADS=2 (AVX without FMA: other rounding)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MOH_BUILD_DIR:-build}
[ -f "$BUILD_DIR/CTestTestfile.cmake" ] || { echo "test-matrix: no build in $BUILD_DIR; run scripts/build.sh first" >&2; exit 1; }
MATRIX=${MOH_MATRIX:-"haswell-1 native-3 skylakex-2 sandy-2"}
EXCLUDE=${MOH_MATRIX_EXCLUDE:-"^(demo|consumer)$"}

failed=()
for setting in $MATRIX; do
  case "$setting" in
    haswell-1)  envs=(OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1) ;;
    native-3)   envs=(-u OPENBLAS_CORETYPE OMP_NUM_THREADS=3) ;;
    skylakex-2) envs=(OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2) ;;
    sandy-2)    envs=(OPENBLAS_CORETYPE=Sandybridge OMP_NUM_THREADS=2) ;;
    *) echo "test-matrix: unknown setting '$setting' (haswell-1, native-3, skylakex-2, sandy-2)" >&2; exit 1 ;;
  esac
  echo "== test-matrix: $setting (${envs[*]})"
  t0=$(date +%s)
  if (cd "$BUILD_DIR" && env "${envs[@]}" ctest -L cpu -E "$EXCLUDE" --output-on-failure -j"${MOH_TEST_JOBS:-2}" \
        --timeout 1200); then
    echo "== test-matrix: $setting passed in $(( $(date +%s) - t0 )) s"
  else
    echo "== test-matrix: $setting FAILED after $(( $(date +%s) - t0 )) s"
    failed+=("$setting")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-matrix: failed under: ${failed[*]}" >&2
  exit 1
fi
echo "test-matrix: all settings passed ($MATRIX)"
