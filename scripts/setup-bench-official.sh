#!/usr/bin/env bash
# Installs what scripts/bench-official.py needs beside the torch 2.x venv into .official/py2 (ignored by git):
# the torchvision built for that torch (without its dependencies, so never a second torch), numpy, Pillow, onnx,
# onnxscript (torch.onnx's default exporter in 2.x) and onnxruntime, plus those packages' dependencies that the
# venv lacks. The venv itself (.deps/torch2, made by setup-torch2.sh) is a build target and gets nothing: the
# packages go in with `pip install --target` run by its python. bench-official.py puts .official/py2 on sys.path
# itself when it runs on torch >= 2 (or set PYTHONPATH=.official/py2).
# Idempotent: when the stamp matches and the imports work it only prints. Needs PyPI.
# Env: MOH_TORCH_VENV (default .deps/torch2), MOH_BENCH_PY2 (default .official/py2),
#      MOH_BENCH_EXTRAS (default 'numpy pillow onnx onnxscript onnxruntime').
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MOH_TORCH_VENV:-$PWD/.deps/torch2}
DEST=${MOH_BENCH_PY2:-$PWD/.official/py2}
EXTRAS=${MOH_BENCH_EXTRAS:-numpy pillow onnx onnxscript onnxruntime}
PY=$VENV/bin/python
STAMP=$DEST/.moh-bench-extras

[ -x "$PY" ] || { echo "setup-bench-official: no $PY; run scripts/setup-torch2.sh first" >&2; exit 1; }
TORCH=$(PYTHONWARNINGS=ignore PYTHONNOUSERSITE=1 "$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
IFS=. read -r MAJOR MINOR _ <<<"$TORCH"
[ "$MAJOR" = 2 ] || { echo "setup-bench-official: $VENV has torch $TORCH; this script knows torch 2.x only" >&2; exit 1; }
TV="torchvision==0.$((MINOR + 15)).*"   # torch 2.N pairs with torchvision 0.(N+15): 2.0/0.15 ... 2.11/0.26
WANT="torch $TORCH; $TV; $EXTRAS"

verify() {
  [ ! -e "$DEST/torch" ] || { echo "setup-bench-official: $DEST holds a torch package; remove $DEST" >&2; return 1; }
  PYTHONPATH=$DEST PYTHONWARNINGS=ignore PYTHONNOUSERSITE=1 "$PY" - "$VENV" <<'PY' >&2
import os, sys
import torch, torchvision, numpy, PIL, onnx, onnxscript, onnxruntime
venv = os.path.realpath(sys.argv[1])
assert os.path.realpath(torch.__file__).startswith(venv + os.sep), f"torch comes from {torch.__file__}, not {venv}"
print(f"setup-bench-official: torch {torch.__version__} (venv), torchvision {torchvision.__version__}, "
      f"numpy {numpy.__version__}, Pillow {PIL.__version__}, onnx {onnx.__version__}, "
      f"onnxscript {onnxscript.__version__}, onnxruntime {onnxruntime.__version__}")
PY
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && verify; then
  echo "setup-bench-official: already installed in $DEST" >&2
  exit 0
fi

T0=$(date +%s)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pip_() { PYTHONNOUSERSITE=1 "$PY" -m pip --disable-pip-version-check -q "$@"; }
# What the extras need beyond the venv: pip's resolver, run against the venv (dry run), lists exactly that.
# shellcheck disable=SC2086
pip_ install --dry-run --report "$TMP/report.json" $EXTRAS
"$PY" - "$TMP/report.json" >"$TMP/pins" <<'PY'
import json, sys
names = [(i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(open(sys.argv[1]))["install"]]
bad = [n for n, _ in names if n.lower() in ("torch", "triton") or n.lower().startswith("nvidia-")]
if bad:
    sys.exit(f"setup-bench-official: the extras would pull {', '.join(bad)}; refusing (one torch only)")
print("\n".join(f"{n}=={v}" for n, v in names))
PY
echo "setup-bench-official: installing into $DEST: $TV (no deps) $(tr '\n' ' ' <"$TMP/pins")" >&2
# Into a fresh folder, then swapped in: a rerun never mixes two installs.
pip_ install --no-deps --target "$TMP/py2" "$TV" -r "$TMP/pins"
rm -rf "$TMP/py2/bin"  # console scripts with the venv's python in their #! line; not needed
[ ! -e "$TMP/py2/torch" ] || { echo "setup-bench-official: a torch package landed in the target; refusing" >&2; exit 1; }
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP/py2" "$DEST"
verify
PYTHONPATH=$DEST PYTHONNOUSERSITE=1 "$PY" -m pip --disable-pip-version-check check >&2 ||
  echo "setup-bench-official: warning: pip check reports the conflicts above" >&2
echo "$WANT" >"$STAMP"
echo "setup-bench-official: installed in $(( $(date +%s) - T0 )) s ($(du -sh "$DEST" | cut -f1))" >&2
