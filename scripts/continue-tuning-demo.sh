#!/usr/bin/env bash
# Continue-tuning at demo scale (the MoH paper's dense -> MoH recipe, on Fashion-MNIST, on the CPU):
#   1. train a dense model (plain multi-head attention: TransNeXt / DiT) for N steps   models/dense-{vit,dit}-fmnist.json
#   2. convert it to MoH at about 75 % of heads (moh-convert --to-moh)                   models/moh-{vit,dit}-fmnist-ct.json
#   3. continue-tune the converted model for 5, 10 and 25 % of N (moh-train --init-from), each a run of its own
#   4. train the same MoH model from scratch for the same step counts (the dense recipe's peak lr)
#   5. measure each: ViT top-1 on the 10,000 test images; DiT: the test suite's agreement protocol (20 samples per
#      class, seed 1, judged by the demo ViT, models/moh-vit-fmnist.safetensors)
# and writes OUT/results.md + OUT/results.json. Finished steps are skipped on a re-run (delete a file to redo it).
#
#   scripts/continue-tuning-demo.sh vit [OUT]      (default OUT: runs/continue-tuning-vit)
#   scripts/continue-tuning-demo.sh dit [OUT]
# Environment: DENSE_CFG / MOH_CFG (default the two configs above), BIN (default build/bin), DATA (Fashion-MNIST folder; default the Debian dataset's), THREADS (default 1),
# DENSE_STEPS (default: the dense config's train.steps).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND="${1:?usage: scripts/continue-tuning-demo.sh vit|dit [OUT]}"
case "$KIND" in vit|dit) ;; *) echo "continue-tuning-demo: kind must be vit or dit, got '$KIND'" >&2; exit 1 ;; esac
OUT="${2:-runs/continue-tuning-$KIND}"
BIN="${BIN:-build/bin}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
THREADS="${THREADS:-1}"
DENSE_CFG="${DENSE_CFG:-models/dense-$KIND-fmnist.json}"
MOH_CFG="${MOH_CFG:-models/moh-$KIND-fmnist-ct.json}"
JUDGE="models/moh-vit-fmnist.safetensors"
for f in "$BIN/moh-train" "$BIN/moh-convert" "$DENSE_CFG" "$MOH_CFG"; do
  [ -e "$f" ] || { echo "continue-tuning-demo: missing $f (build first: scripts/build.sh)" >&2; exit 1; }
done
N="${DENSE_STEPS:-$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['steps'])" "$DENSE_CFG")}"
DENSE_LR="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['lr'])" "$DENSE_CFG")"
mkdir -p "$OUT"
export OMP_NUM_THREADS="$THREADS"

train() {  # out log args...
  local out="$1" log="$2"; shift 2
  [ -f "$out" ] && return 0
  echo "== $(date -u +%H:%M:%S) moh-train $KIND $* --out $out" | tee -a "$OUT/commands.txt"
  "$BIN/moh-train" "$KIND" --data "$DATA" --threads "$THREADS" --log-every 50 "$@" --out "$out" > "$log"
  tail -n 3 "$log"
}

score() {  # weights -> one number (ViT: top-1 %, DiT: agreement %)
  local w="$1" cache="$1.score"
  if [ ! -f "$cache" ]; then
    if [ "$KIND" = vit ]; then
      "$BIN/moh-eval" --weights "$w" --data "$DATA" --split test --threads "$THREADS" 2>/dev/null |
        awk '/^top1 /{sub("%", "", $2); print $2}' > "$cache.tmp"
    else
      local s="$w.samples"
      rm -rf "$s"
      "$BIN/moh-generate" --weights "$w" --class all --num-per-class 20 --batch-size 100 --seed 1 --device cpu \
        --threads "$THREADS" --out "$s" > /dev/null 2>&1
      "$BIN/moh-classify" --weights "$JUDGE" --agreement --threads "$THREADS" "$s" 2>/dev/null |
        awk '$1 == "all" {sub("%", "", $NF); print $NF}' > "$cache.tmp"
    fi
    [ -s "$cache.tmp" ] || { echo "continue-tuning-demo: could not score $w" >&2; exit 1; }
    mv "$cache.tmp" "$cache"
  fi
  cat "$cache"
}

train "$OUT/dense.safetensors" "$OUT/dense.log" --config "$DENSE_CFG" --steps "$N"
if [ ! -f "$OUT/converted.safetensors" ]; then
  echo "== moh-convert --to-moh $MOH_CFG" | tee -a "$OUT/commands.txt"
  "$BIN/moh-convert" --to-moh "$MOH_CFG" "$OUT/dense.safetensors" "$OUT/converted.safetensors"
fi
declare -A CT SCRATCH
for pct in 5 10 25; do
  s=$(( N * pct / 100 )); wu=$(( (s + 9) / 10 ))
  train "$OUT/ct-$pct.safetensors" "$OUT/ct-$pct.log" --config "$MOH_CFG" --init-from "$OUT/converted.safetensors" \
    --steps "$s" --warmup "$wu"
  train "$OUT/scratch-$pct.safetensors" "$OUT/scratch-$pct.log" --config "$MOH_CFG" --steps "$s" --warmup "$wu" \
    --lr "$DENSE_LR"
done

DENSE=$(score "$OUT/dense.safetensors")
CONV=$(score "$OUT/converted.safetensors")
for pct in 5 10 25; do
  CT[$pct]=$(score "$OUT/ct-$pct.safetensors")
  SCRATCH[$pct]=$(score "$OUT/scratch-$pct.safetensors")
done
metric=$([ "$KIND" = vit ] && echo "top-1 % (10,000 test images)" || echo "agreement % (200 samples, seed 1)")
{
  echo "| $KIND, $metric | dense ($N steps) | converted (0 steps) | 5 % ($(( N * 5 / 100 ))) | 10 % ($(( N / 10 ))) | 25 % ($(( N / 4 ))) |"
  echo "|---|---|---|---|---|---|"
  echo "| dense -> MoH, continue-tuned | $DENSE | $CONV | ${CT[5]} | ${CT[10]} | ${CT[25]} |"
  echo "| MoH from scratch | | | ${SCRATCH[5]} | ${SCRATCH[10]} | ${SCRATCH[25]} |"
  echo "| continue-tuned / dense | 1 | $(python3 -c "print(round($CONV / $DENSE, 3))") | $(python3 -c "print(round(${CT[5]} / $DENSE, 3))") | $(python3 -c "print(round(${CT[10]} / $DENSE, 3))") | $(python3 -c "print(round(${CT[25]} / $DENSE, 3))") |"
} > "$OUT/results.md"
python3 - "$OUT/results.json" <<EOF
import json, sys
json.dump({"kind": "$KIND", "metric": "$metric", "dense_steps": $N, "dense": $DENSE, "converted": $CONV,
           "continue_tuned": {"5": ${CT[5]}, "10": ${CT[10]}, "25": ${CT[25]}},
           "scratch": {"5": ${SCRATCH[5]}, "10": ${SCRATCH[10]}, "25": ${SCRATCH[25]}}}, open(sys.argv[1], "w"), indent=1)
EOF
cat "$OUT/results.md"
