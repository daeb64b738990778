#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build and test the toolkit.
# Idempotent and non-interactive; works without a GPU. Run as root or with sudo available.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev              # LibTorch 1.13 (CPU)
  libopenblas0-openmp       # Debian's default reference BLAS makes torch CPU matmuls ~25x slower
  libdnnl-dev               # oneDNN 2.6: the CPU GEMMs of the Linear layers (common/cpu_gemm/)
  libopencv-dev             # optional image backend (stb is always used as fallback)
  libjpeg-dev               # JPEG decoded by libjpeg-turbo directly in OpenCV builds (Pillow's library and settings)
  libstb-dev                # stb_image / stb_image_write
  libcli11-dev catch2 nlohmann-json3-dev
  zlib1g-dev
  dataset-fashion-mnist     # demo training data
  python3-torch             # torchrun, the multi-process launcher (scale-out tests)
  libgloo-dev               # Gloo headers for LibTorch's c10d ProcessGroupGloo (multi-process runs)
  libcpp-httplib-dev        # cpp-httplib 0.11: the HTTP server of moh-serve
  chromium                  # headless browser for scripts/serve-browser-check.sh (moh-serve's page; .ci/run)
)

# Optional: the libFuzzer harness (scripts/fuzz-safetensors.sh) needs clang with its runtime.
if [ "${MOH_WITH_FUZZ:-0}" = 1 ]; then PACKAGES+=(clang-14 libclang-rt-14-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-deps: done"
