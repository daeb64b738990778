#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root, after scripts/gpu/run-gpu-checks.sh configured build-gpu/ (if it did
# not, this script configures it the same way). Trains the two demo models on Fashion-MNIST with moh-train:
#   models/moh-vit-fmnist.json -> $OUT/moh-vit-fmnist.safetensors  (+ test accuracy in train-vit.log)
#   models/moh-dit-fmnist.json -> $OUT/moh-dit-fmnist.safetensors  (EMA weights, pixel space)
# The GPU machine has no Debian packages: pass the folder holding train-images-idx3-ubyte.gz,
# train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (carry it in an ignored folder,
# e.g. build-data/fashion-mnist copied from /usr/share/datasets/fashion-mnist).
#   usage: scripts/gpu/train-demo.sh FASHION_MNIST_DIR [vit|dit|both]
# Budget: ~4 minutes for both on an H200 (measured there with LibTorch 2.11: ~5,000 images/s for either model at
# batch 256, overhead-bound; the configs use batch 512). Each run gets a wall-clock budget (--time-limit: the step
# count and cosine schedule are fitted to the measured speed, then the model is exported and, for the ViT,
# evaluated) and a hard timeout as a safety net (a killed run leaves only its last --ckpt-every checkpoint).
# Env overrides: VIT_STEPS, DIT_STEPS, VIT_TIME, DIT_TIME (budgets, s), VIT_TIMEOUT, DIT_TIMEOUT (hard limits, s).
set -uo pipefail
DATA=${1:?usage: scripts/gpu/train-demo.sh FASHION_MNIST_DIR [vit|dit|both]}
WHAT=${2:-both}
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/train-demo.log") 2>&1
T0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$DATA/$f.gz" ] || [ -f "$DATA/$f" ] || { stamp "missing $DATA/$f(.gz): pass the Fashion-MNIST folder"; exit 1; }
done

TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}

if [ ! -f build-gpu/build.ninja ]; then
  stamp "configure build-gpu (run-gpu-checks.sh did not)"
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
    -DMOH_CUDA=ON -DMOH_OPENCV=OFF -DMOH_EXTRA_INCLUDE="$PWD/.deps/usr/include" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DMOH_TESTS=OFF ${MOH_CMAKE_ARGS:-} || { stamp "configure FAILED"; exit 1; }
fi
stamp "build moh-train"
ninja -C build-gpu -j16 moh-train 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)'
[ "${PIPESTATUS[0]}" -eq 0 ] || { stamp "build FAILED"; exit 1; }
BIN=build-gpu/bin/moh-train
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true

RC=0
run() {  # kind steps budget timeout
  local kind=$1 steps=$2 budget=$3 limit=$4
  local args=(--config "models/moh-$kind-fmnist.json" --data "$DATA" --device cuda --time-limit "$budget"
              --out "$OUT/moh-$kind-fmnist.safetensors" --ckpt "$OUT/moh-$kind-fmnist.ckpt.safetensors"
              --ckpt-every 1000)
  [ -n "$steps" ] && args+=(--steps "$steps")
  stamp "train $kind ${steps:+($steps steps)}"
  timeout "$limit" "$BIN" "$kind" "${args[@]}" 2>&1 | tee "$OUT/train-$kind.log"
  local rc=${PIPESTATUS[0]}
  stamp "train $kind exit $rc"
  [ "$rc" -eq 0 ] || RC=$rc
}
case "$WHAT" in
  vit) run vit "${VIT_STEPS:-}" "${VIT_TIME:-95}" "${VIT_TIMEOUT:-150}" ;;
  dit) run dit "${DIT_STEPS:-}" "${DIT_TIME:-110}" "${DIT_TIMEOUT:-170}" ;;
  both) run vit "${VIT_STEPS:-}" "${VIT_TIME:-95}" "${VIT_TIMEOUT:-150}"
        run dit "${DIT_STEPS:-}" "${DIT_TIME:-110}" "${DIT_TIMEOUT:-170}" ;;
  *) stamp "unknown model '$WHAT' (vit, dit or both)"; exit 1 ;;
esac
grep -h "test accuracy" "$OUT"/train-vit.log 2>/dev/null
ls -l "$OUT"/*.safetensors 2>/dev/null
stamp "done (rc=$RC)"
exit "$RC"
