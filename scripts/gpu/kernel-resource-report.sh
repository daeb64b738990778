#!/usr/bin/env bash
# Compiles every kernels/*.cu for sm_80, sm_90 and sm_90a with `-Xptxas -v` (the flags of kernels/CMakeLists.txt:
# -O3 -std=c++17 --expt-relaxed-constexpr) and writes one line per kernel instantiation: registers, spill stores /
# loads, stack frame, shared memory. Runs anywhere nvcc is (no GPU needed). On the shared 2-core machines set
# MOH_BUILD_LOCK=/tmp/moh-build.lock: each nvcc call then takes that lock (others' builds interleave between calls).
#   usage: scripts/gpu/kernel-resource-report.sh [OUT_FILE] [file.cu ...]
# Default output: docs/perf/kernel-resources.txt. sm_90a uses the -gencode form (HOPPER.md: the -arch=sm_90a shorthand
# also runs a plain sm_90 pass on nvcc 13.0).
set -euo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
OUT_FILE=${1:-docs/perf/kernel-resources.txt}
shift || true
SOURCES=("$@")
[ ${#SOURCES[@]} -gt 0 ] || SOURCES=(kernels/*.cu)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$(dirname "$OUT_FILE")"
{
  echo "# MoH CUDA kernels: ptxas resource usage (registers per thread, spill bytes, stack frame, static shared memory)"
  echo "# command: scripts/gpu/kernel-resource-report.sh   (nvcc -O3 -std=c++17 --expt-relaxed-constexpr -Xptxas -v)"
  echo "# nvcc: $("$NVCC" --version | tail -n 2 | head -n 1)"
  echo "# git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- kernels 2>/dev/null || echo ' (kernels/ modified)'); date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# compiled only: these numbers come from the compiler, not from a GPU run"
  printf '%-26s %-7s %5s %6s %6s %6s %7s  %s\n' file arch regs spillS spillL stack smem kernel
} >"$OUT_FILE"
for src in "${SOURCES[@]}"; do
  for arch in sm_80 sm_90 sm_90a; do
    num=${arch#sm_}
    log=$TMP/$(basename "$src").$arch.log
    lock=()
    [ -n "${MOH_BUILD_LOCK:-}" ] && lock=(flock "$MOH_BUILD_LOCK")
    if ! "${lock[@]}" "$NVCC" -c -O3 -std=c++17 --expt-relaxed-constexpr -I. -gencode "arch=compute_${num},code=${arch}" \
        -Xptxas -v "$src" -o "$TMP/out.o" >"$log" 2>&1; then
      echo "COMPILE FAILED: $src for $arch" | tee -a "$OUT_FILE"
      sed 's/^/    /' "$log" | head -n 20 >>"$OUT_FILE"
      continue
    fi
    # ptxas prints, per entry: "Compiling entry function 'NAME' for 'sm_XX'", "Function properties for NAME",
    # "N bytes stack frame, S bytes spill stores, L bytes spill loads", "Used R registers, ... M bytes smem".
    awk -v file="$(basename "$src")" -v arch="$arch" '
      /Compiling entry function/ { match($0, /function '\''[^'\'']*'\''/); name = substr($0, RSTART + 10, RLENGTH - 11);
                                   stack = 0; ss = 0; sl = 0 }
      /bytes stack frame/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "bytes" && $(i+2) == "stack") stack = $i;
                              if ($(i+2) == "spill" && $(i+3) == "stores,") ss = $i;
                              if ($(i+2) == "spill" && $(i+3) == "loads") sl = $i } }
      /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15);
                                smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11);
                                if (name != "") printf "%-26s %-7s %5s %6s %6s %6s %7s  %s\n", file, arch, regs, ss, sl, stack, smem, name;
                                name = "" }
    ' "$log" | while IFS= read -r line; do
      mangled=${line##* }
      printf '%s\n' "${line% *} $(echo "$mangled" | c++filt | cut -c1-160)"
    done >>"$OUT_FILE"
  done
done
echo "wrote $OUT_FILE ($(grep -vc '^#' "$OUT_FILE") lines)"
