#!/usr/bin/env bash
# The out-of-the-box demo, on the two models that ship in models/ (trained by this toolkit on Fashion-MNIST):
#   1. the MoH-DiT generates 8 pictures of every clothing class (moh-generate, pixel space, guided DDPM),
#   2. the MoH-ViT classifies every generated picture and prints, per requested class, how many it recognises
#      (moh-classify --agreement),
#   3. the MoH-ViT is evaluated on the 10,000 Fashion-MNIST test images (moh-eval, straight from the IDX files).
# Usage: scripts/demo.sh [OUT_DIR=demo-out]. Builds the three apps first (the first build takes ~10 minutes on
# 2 cores); the demo itself runs in about a minute there.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
DATA=${MOH_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
BIN=${MOH_BUILD_DIR:-build}/bin

./scripts/build.sh moh-generate moh-classify moh-eval
[ -d "$DATA" ] || { echo "demo: Fashion-MNIST not found in $DATA (scripts/setup-deps.sh installs dataset-fashion-mnist, or set MOH_FMNIST_DIR)" >&2; exit 1; }
rm -rf "$OUT/samples"
mkdir -p "$OUT"
T0=$(date +%s)

echo "== 1/3  moh-generate: 8 samples of each of the 10 classes (models/moh-dit-fmnist.safetensors)"
"$BIN/moh-generate" --weights models/moh-dit-fmnist.safetensors --class all --num-per-class 8 --batch-size 80 \
  --grid --grid-nrow 8 --out "$OUT/samples"

echo
echo "== 2/3  moh-classify: does the demo ViT recognise each generated sample as the class it was asked for?"
"$BIN/moh-classify" --weights models/moh-vit-fmnist.safetensors --agreement --no-list \
  --json "$OUT/agreement.json" "$OUT/samples"

echo
echo "== 3/3  moh-eval: the demo ViT on the 10,000 Fashion-MNIST test images"
"$BIN/moh-eval" --weights models/moh-vit-fmnist.safetensors --data "$DATA" --split test \
  --json "$OUT/eval.json" --csv "$OUT/eval-per-class.csv"

echo
echo "demo finished in $(( $(date +%s) - T0 )) s. Files written:"
echo "  $OUT/samples/grid.png          the generated samples, one row per 8 (classes in order)"
echo "  $OUT/samples/*.png             each sample (NNNNNN_<class>_<name>.png) + generation.json (settings)"
echo "  $OUT/agreement.json            per-class agreement of the ViT with the requested classes"
echo "  $OUT/eval.json                 top-1 / top-5 (percent), per-class accuracy, images/s"
echo "  $OUT/eval-per-class.csv        per-class accuracy as CSV"
