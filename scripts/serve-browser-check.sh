#!/usr/bin/env bash
# Browser check of moh-serve's page (issue 26) with Debian's headless Chromium (apt-get install chromium): starts
# moh-serve on the demo models (--port 0), makes a demo picture with moh-generate, drives the page over the DevTools
# protocol (scripts/serve-browser-check.mjs, Node 20): classify the picture (top-5 bars), generate one image with
# the live preview, then writes a screenshot (default docs/serve-screenshot.png) and checks the server's /metrics
# saw the page's calls. Prints the elapsed time. Exit 0 = passed.
#   scripts/serve-browser-check.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/serve-screenshot.png}
BIN=${MOH_BUILD_DIR:-build}/bin
STEPS=${STEPS:-50}
t0=$(date +%s.%N)
command -v chromium >/dev/null || { echo "serve-browser-check: chromium not installed (apt-get install chromium)"; exit 1; }
command -v node >/dev/null || { echo "serve-browser-check: node not installed"; exit 1; }
[ -x "$BIN/moh-serve" ] || { echo "serve-browser-check: $BIN/moh-serve not built (needs libcpp-httplib-dev)"; exit 1; }
tmp=$(mktemp -d)
srv=""; chr=""
cleanup() {
  [ -n "$chr" ] && kill "$chr" 2>/dev/null || true
  [ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null && wait "$srv" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN/moh-generate" -q --weights models/moh-dit-fmnist.safetensors --class Sneaker --steps 50 --seed 5 --device cpu --threads 1 \
  --out "$tmp/pic" >/dev/null
pic=$(ls "$tmp"/pic/*.png | head -1)

"$BIN/moh-serve" --port 0 --device cpu --threads 1 --vit models/moh-vit-fmnist.safetensors \
  --dit models/moh-dit-fmnist.safetensors >"$tmp/serve.out" 2>"$tmp/serve.err" &
srv=$!
for _ in $(seq 200); do grep -q "listening on" "$tmp/serve.out" && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$tmp/serve.out") || { cat "$tmp/serve.err"; exit 1; }

chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$tmp/profile" \
  --remote-debugging-port=0 about:blank 2>"$tmp/chrome.err" &
chr=$!
for _ in $(seq 300); do grep -q "DevTools listening on" "$tmp/chrome.err" && break; sleep 0.1; done
ws=$(grep -o 'ws://[^ ]*' "$tmp/chrome.err" | head -1) || { cat "$tmp/chrome.err"; exit 1; }

node --experimental-websocket --no-warnings scripts/serve-browser-check.mjs "$ws" "$url" "$(realpath "$pic")" 7 \
  "$STEPS" "$tmp/shot.png"
cp "$tmp/shot.png" "$OUT"

# The server saw the page's calls.
metrics=$(curl -s "${url}metrics")
for want in 'route="GET /",code="200"' 'route="POST /v1/classify",code="200"' 'route="POST /v1/generate",code="202"' \
            'route="GET /v1/jobs/{id}/preview.png",code="200"' 'route="GET /v1/jobs/{id}/images/{k}.png",code="200"'; do
  grep -qF "$want" <<<"$metrics" || { echo "serve-browser-check: /metrics has no $want"; exit 1; }
done
t1=$(date +%s.%N)
printf 'serve-browser-check: passed in %.1f s; screenshot %s\n' "$(echo "$t1 - $t0" | bc)" "$OUT"
