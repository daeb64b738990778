#!/usr/bin/env bash
# Runs torchrun (torch.distributed.run) the same way with Debian's torch 1.13 and with torch 2.x:
#  - torchrun's own options may be spelled with dashes or underscores (--nproc-per-node / --nproc_per_node,
#    --no-python / --no_python): 1.13 knows only the underscore spellings, 2.x takes both, so underscores are passed.
#  - torch 1.x on Python 3.11 crashes on its default --redirects 0 (an IntFlag change); unless -r/-t is given,
#    "-r 2 -t 2" is passed: each rank's stderr goes to the console with a [defaultN]: prefix, stdout is untouched.
#  - MOH_TORCHRUN overrides the launcher command (default: torchrun, else python3 -m torch.distributed.run): a
#    command or a path, e.g. .deps/torch2/bin/torchrun (the tests of a LibTorch 2.x build use that venv's launcher, so
#    that the launcher's store and our processes speak the same c10d version).
# Usage: scripts/torchrun.sh [torchrun options] [--no_python] PROGRAM [ARGS...]
#        scripts/torchrun.sh --check     (exit 0 when a launcher is available; prints it and its torch version)
# Example: scripts/torchrun.sh --nproc_per_node 2 --no_python build/bin/moh-eval --weights m.safetensors --data d/
set -euo pipefail

if [ -n "${MOH_TORCHRUN:-}" ]; then
  read -r -a launcher <<< "$MOH_TORCHRUN"
elif command -v torchrun > /dev/null 2>&1; then
  launcher=(torchrun)
else
  launcher=(python3 -m torch.distributed.run)
fi

# torch's version, without importing torch (fast): the launcher's own Python reads the package metadata.
python=python3
if [ "$(basename "${launcher[0]}")" = torchrun ]; then
  shebang=$(head -n1 "$(command -v "${launcher[0]}")" 2> /dev/null || true)
  case "$shebang" in "#!"*python*) python=${shebang#\#!}; python=${python%% *} ;; esac
elif [[ "$(basename "${launcher[0]}")" == python* ]]; then
  python=${launcher[0]}
fi
version=$("$python" -c "import importlib.metadata as m; print(m.version('torch'))" 2> /dev/null || echo unknown)

if [ "${1:-}" = --check ]; then
  if [ "$version" = unknown ]; then
    if [ -n "${MOH_TORCHRUN:-}" ]; then
      echo "torchrun.sh: MOH_TORCHRUN='$MOH_TORCHRUN' is not a torchrun whose Python has torch (fix or unset it)" >&2
    else
      echo "torchrun.sh: no torch found for '${launcher[*]}' (install python3-torch)" >&2
    fi
    exit 1
  fi
  echo "${launcher[*]} (torch $version)"
  exit 0
fi

# "--some-name" -> "--some_name" (the value, if any, is left alone).
underscored() { local n=${1#--}; echo "--${n//-/_}"; }
opts=()
given_redirect=0
while [ $# -gt 0 ]; do
  arg=$1
  case "$arg" in
    --) shift; break ;;
    --*=*) name=$(underscored "${arg%%=*}"); opts+=("$name=${arg#*=}"); shift
           case "$name" in --redirects|--tee) given_redirect=1 ;; esac ;;
    --no-python|--no_python|--standalone|--module|--run-path|--run_path) opts+=("$(underscored "$arg")"); shift ;;
    -m) opts+=("$arg"); shift ;;
    -r|-t|--redirects|--tee) given_redirect=1; opts+=("$arg" "${2:?$arg needs a value}"); shift 2 ;;
    --*) opts+=("$(underscored "$arg")" "${2:?$arg needs a value}"); shift 2 ;;
    -*) opts+=("$arg" "${2:?$arg needs a value}"); shift 2 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "torchrun.sh: no program given (usage: scripts/torchrun.sh [options] PROGRAM [ARGS...])" >&2
  exit 2
fi

if [ "$given_redirect" = 0 ] && [[ "$version" != 2.* && "$version" != [3-9].* ]]; then
  opts+=(-r 2 -t 2)
fi
[ -z "${MOH_TORCHRUN_ECHO:-}" ] || echo "${launcher[*]} ${opts[*]} $*" >&2
exec "${launcher[@]}" "${opts[@]}" "$@"
