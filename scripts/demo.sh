#!/usr/bin/env bash
# The out-of-the-box demo: builds the toolkit and checks it against the reference outputs of the official Python
# code that ship in tests/data/golden (MoH attention, MoH-DiT, diffusion samplers, VAE decoder, MoH-ViT, preprocessing).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh moh-parity
./build/bin/moh-parity tests/data/golden/*.safetensors
