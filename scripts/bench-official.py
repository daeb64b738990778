#!/usr/bin/env python3
"""Time the official MoH code (SkyworkAI/MoH) on the CPU cases `moh-bench` runs, and write the figures as JSON.

The official code is never part of this repository: point --src at a checkout of github.com/SkyworkAI/MoH (the
folder holding MoH-ViT/ and MoH-DiT/; 2cefd57 was used so far) and --timm at a checkout of
huggingface/pytorch-image-models (tag v1.0.28 works with Debian's torch 1.13 and with torch 2.11; the golden files
were made with it) unless timm is installed. Put both under the ignored .official/ (git clones, so that their
revisions land in the JSON). timm imports torchvision and Pillow.

One run is on one torch, the one of the python that runs this script:
  torch 1.13: Debian's /usr/bin/python3 (apt-get install python3-torch python3-torchvision python3-pil).
  torch 2.x:  .deps/torch2/bin/python (scripts/setup-torch2.sh), with torchvision, numpy, Pillow, onnx,
              onnxscript and onnxruntime in .official/py2 (scripts/setup-bench-official.sh). The script puts
              --py2 (default .official/py2) on sys.path itself when its stamp names this python's torch.

Cases (same shapes, batch, threads and dtype as moh-bench on the CPU; random weights, eval mode, no_grad):
  vit: MoH-ViT S-80 / B-75 (MoH-ViT/transnext.py builders), batch --vit-batch (4) at 224x224 -> img/s;
       the official module picks attention_native.AggregatedAttention when swattention is absent (always on CPU).
  dit: MoH-DiT forward (MoH-DiT/models.py DiT_models), batch 2 * --dit-images (1), 32x32 latents -> ms.
       The official init zeroes the adaLN-Zero and final layers, so its random-weight output is identically 0;
       those all-zero parameters are redrawn (seeded, moh-bench's scale rule) so that the error columns mean
       something. The work done (shapes, routing, GEMMs) is the same.

Modes (--modes, comma list or 'all'; eager always runs: it is the reference and what moh-bench --against reads):
  eager     fp32, as the official code runs. The case's top-level keys (median_ms, images_per_second, ...) are
            these figures.
  compile   torch.compile(model) (inductor on the CPU, default mode; torch >= 2). The first call compiles; its
            time is compile_s (cold: a fresh inductor cache unless TORCHINDUCTOR_CACHE_DIR is set, though the
            C++ precompiled headers in /tmp/torchinductor_$USER outlive a run; compile workers = --threads unless
            TORCHINDUCTOR_COMPILE_THREADS is set); the warm-up and timed iterations follow it.
  autocast  torch.autocast("cpu", dtype=torch.bfloat16) around the fp32 model.
  onnx      torch.onnx.export (the torch's default exporter first, dynamo on 2.x; then the legacy TorchScript
            exporter, dynamo=False; --onnx-exporter picks one) and ONNX Runtime's CPU execution provider,
            intra_op threads = --threads. --opset 0 (default) leaves the dynamo exporter its own opset (its
            down-conversion of these graphs to 17 fails on 2.11) and gives the legacy exporter 17. Export and
            session-creation times are reported; a failed export is recorded with each attempt's exception
            (first line and root cause), never ending the run. torch 1.13 has no onnxruntime (not in Debian).
  Every non-eager mode reports its error against the eager fp32 output of the same input: max |out - ref| /
  max |ref| (one element decides it; a token routed to another head moves it) and rms(out - ref) / rms(ref)
  (random weights: ViT top-1 agreement would mean nothing). The inputs are drawn from --input-seed right before
  use, as moh-bench --input-seed does, so with the same torch ours and the official code see the same input. A mode this torch lacks is 'skipped' with
  the reason; one that raises is 'failed' with the exception's first line; the other modes go on.

Use --rounds R to alternate official and ours (--ours build/bin/moh-bench) R times in one run: each round times
the official case in every mode, then runs `moh-bench ... --against` on that round's JSON (ours = moh-bench fp32);
the summary table gives medians over rounds per case and mode and ours/official = official ms / ours ms (> 1: ours
is faster). Models, compiled functions and ONNX sessions are made once and reused by every round.

The code lives in scripts/bench_official/ (cli, loading, cases, modes, machine, rounds, failures); this file is
the entry point.

Examples (from the repository root):
  scripts/setup-torch2.sh && scripts/setup-bench-official.sh
  /usr/bin/python3 scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80,b75 \\
      --out /tmp/official.json                                   # torch 1.13, eager
  build/bin/moh-bench vit --device cpu --against /tmp/official.json
  /usr/bin/python3 scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80 \\
      --dit MoH-DiT-S/2-90 --rounds 3 --ours build/bin/moh-bench --out /tmp/side-by-side-113.json
  .deps/torch2/bin/python scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80,b75 \\
      --dit MoH-DiT-S/2-90,MoH-DiT-XL/2-90 --modes all --rounds 3 --ours build/bin/moh-bench \\
      --out /tmp/side-by-side-211.json                           # torch 2.11: eager, compile, autocast, onnx
  .deps/torch2/bin/python scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80 \\
      --dit none --modes onnx --onnx-dir /tmp/moh-onnx            # keep the .onnx files
"""
import contextlib
import json
import os
import shutil
import sys
import tempfile

from bench_official.cli import parse_args
from bench_official.machine import ENV_PREFIXES
from bench_official.rounds import run


def main(argv):
    a = parse_args(argv, __doc__)
    env_at_start = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    os.environ["OMP_NUM_THREADS"] = str(a.threads)  # before torch starts its thread pool
    tmp_root = tempfile.mkdtemp(prefix="bench-official-")
    if "compile" in a.modes:
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(a.threads))
        if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
            compile_cache = f"TORCHINDUCTOR_CACHE_DIR={os.environ['TORCHINDUCTOR_CACHE_DIR']} (may be warm)"
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp_root, "inductor")
            compile_cache = "fresh temporary folder (cold compile)"
    else:
        compile_cache = ""
    real_stdout = sys.stdout
    try:
        # The official modules print (e.g. 'swattention package not found'); stdout may carry the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            result = run(a, env_at_start, compile_cache, tmp_root)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    text = json.dumps(result, indent=2) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        real_stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
