#!/usr/bin/env bash
# ctest "consumer": installs the toolkit from BUILD_DIR into a temporary prefix, builds tests/consumer against it
# with find_package(moh), and checks that its classification of a demo picture equals moh-classify's.
# Usage: run-consumer-test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/moh-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/moh/moh-config.cmake" || { echo "no moh-config.cmake installed"; exit 1; }
test -f "$work/prefix/include/moh/vit/classifier.h" || { echo "headers not installed"; exit 1; }
gen=()
command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S "$src/tests/consumer" -B "$work/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j "${MOH_JOBS:-2}" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
# A Fashion-MNIST-like picture: the ViT demo model's own card image would do too; any 28x28 gray picture works.
weights="$src/models/moh-vit-fmnist.safetensors"
image="$src/tests/data/images/gray8.png"
ours=$("$work/build/classify_one" "$weights" "$image")
echo "$ours"
test "$(echo "$ours" | wc -l)" -eq 3 || { echo "expected 3 lines"; exit 1; }
# The same top-1 as the app (which uses the in-tree libraries).
want=$("$build/bin/moh-classify" --weights "$weights" --topk 1 --json - "$image" |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["top"][0]["index"])')
got=$(echo "$ours" | head -1 | cut -d' ' -f1)
test "$got" = "$want" || { echo "consumer top-1 $got != moh-classify top-1 $want"; exit 1; }
echo "consumer OK: top-1 $got"
