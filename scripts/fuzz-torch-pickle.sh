#!/usr/bin/env bash
# Bounded libFuzzer run of the restricted torch unpickler and zip reader:
#   scripts/fuzz-torch-pickle.sh [SECONDS=60] [BUILD_DIR=build-fuzz-pickle]   (see scripts/fuzz.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" torch-pickle "$@"
