#!/usr/bin/env bash
# Bounded libFuzzer run of the safetensors header parser: scripts/fuzz-safetensors.sh [SECONDS=60] [BUILD_DIR=build-fuzz]
# (see scripts/fuzz.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" safetensors "$@"
