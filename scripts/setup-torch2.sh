#!/usr/bin/env bash
# Installs the second build target's LibTorch: PyPI's torch==2.11.* wheel (the GPU machine's PyTorch; PyPI's
# default Linux x86_64 wheel for 2.11 is the CUDA 13.0 build, with the nvidia-*-cu13 / cuda-toolkit 13.0 wheels)
# into a venv at .deps/torch2 (ignored by git). Idempotent: when that torch is installed it only prints.
# Last line of output: the CMake prefix path, for MOH_TORCH_DIR (see README "Building against LibTorch 2.x").
# Env: MOH_TORCH_SPEC (default 'torch==2.11.*'), MOH_TORCH_VENV (default .deps/torch2), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${MOH_TORCH_SPEC:-torch==2.11.*}
VENV=${MOH_TORCH_VENV:-$PWD/.deps/torch2}
PY=${PYTHON:-python3}
STAMP="$VENV/.moh-torch-spec"

prefix() { PYTHONWARNINGS=ignore "$VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SPEC" ] && P=$(prefix) && [ -f "$P/Torch/TorchConfig.cmake" ]; then
  echo "setup-torch2: $SPEC already installed in $VENV" >&2
  echo "$P"
  exit 0
fi

T0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
# The full dependency set (CUDA runtime, cuBLAS, cuDNN, NCCL, ... wheels): libtorch_cuda.so's RUNPATH finds
# them under site-packages/nvidia/, as on a GPU machine with a pip-installed torch.
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "$SPEC"
echo "$SPEC" > "$STAMP"
PYTHONWARNINGS=ignore "$VENV/bin/python" - >&2 <<'PY'
import torch
print(f"setup-torch2: torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cxx11 ABI {int(torch._C._GLIBCXX_USE_CXX11_ABI)}")
PY
echo "setup-torch2: installed in $(( $(date +%s) - T0 )) s ($(du -sh "$VENV" | cut -f1))" >&2
prefix
