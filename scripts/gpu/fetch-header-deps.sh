#!/usr/bin/env bash
# Run HERE (Debian, with apt): downloads the header-only Debian packages the GPU machine lacks or has in another major
# version (stb, nlohmann-json, Catch2 v2 — it has Catch2 v3 —, CLI11 2.1 — it has 2.4 —, and Gloo's headers, which
# c10d's ProcessGroupGloo.hpp includes and pip's torch does not ship) and extracts them into .deps/usr (ignored by
# git), for the device tool's `carry` (.deps/usr). The GPU build then uses -DMOH_EXTRA_INCLUDE=$PWD/.deps/usr/include,
# so it compiles against the same headers as the builds here; scripts/gpu/run-gpu-checks.sh checks that it did.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps
cd .deps
for pkg in libstb-dev nlohmann-json3-dev catch2 libcli11-dev libgloo-dev; do
  if ! ls ${pkg}_*.deb >/dev/null 2>&1; then apt-get download "$pkg"; fi
done
for f in *.deb; do dpkg -x "$f" .; done
echo "header deps in $(pwd)/usr/include: $(ls usr/include | tr '\n' ' ')"
