#!/usr/bin/env bash
# Run HERE (Debian, with apt): downloads the header-only Debian packages the GPU machine lacks (stb, nlohmann-json,
# Catch2 v2 — that machine has only Catch2 v3) and extracts them into .deps/ (ignored by git), for the device
# tool's `carry`. The GPU build then uses -DMOH_EXTRA_INCLUDE=$PWD/.deps/usr/include.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps
cd .deps
for pkg in libstb-dev nlohmann-json3-dev catch2; do
  if ! ls ${pkg}_*.deb >/dev/null 2>&1; then apt-get download "$pkg"; fi
done
for f in *.deb; do dpkg -x "$f" .; done
echo "header deps in $(pwd)/usr/include: $(ls usr/include | tr '\n' ' ')"
