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
  max |ref| (random weights: ViT top-1 agreement would mean nothing). A mode this torch lacks is 'skipped' with
  the reason; one that raises is 'failed' with the exception's first line; the other modes go on.

Use --rounds R to alternate official and ours (--ours build/bin/moh-bench) R times in one run: each round times
the official case in every mode, then runs `moh-bench ... --against` on that round's JSON (ours = moh-bench fp32);
the summary table gives medians over rounds per case and mode and ours/official = official ms / ours ms (> 1: ours
is faster). Models, compiled functions and ONNX sessions are made once and reused by every round.

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
import argparse
import contextlib
import ctypes
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

VIT_CASES = {"s75": "moh_transnext_small_75", "s80": "moh_transnext_small_80",
             "b50": "moh_transnext_base_50", "b75": "moh_transnext_base_75"}
MODES = ("eager", "compile", "autocast", "onnx")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")
ENV_PREFIXES = ("OMP_", "OPENBLAS_", "GOTO", "MKL_", "DNNL_", "ONEDNN_", "KMP_", "GOMP_", "ATEN_", "TORCH_",
                "TORCHINDUCTOR_", "ORT_", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--src", required=True, help="SkyworkAI/MoH checkout (holds MoH-ViT/ and MoH-DiT/)")
    p.add_argument("--timm", default="", help="pytorch-image-models checkout (its root), when timm is not installed")
    p.add_argument("--vit", default="s80,b75", help="comma list of vit cases (s75,s80,b50,b75) or 'none'")
    p.add_argument("--dit", default="none", help="comma list of MoH-DiT models (e.g. MoH-DiT-S/2-90) or 'none'")
    p.add_argument("--vit-batch", type=int, default=int(os.environ.get("MOH_BENCH_VIT_BATCH", 4)))
    p.add_argument("--dit-images", type=int, default=int(os.environ.get("MOH_BENCH_DIT_IMAGES", 1)),
                   help="n: the DiT forward runs batch 2n (n images with classifier-free guidance)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--modes", default="eager",
                   help="comma list of eager,compile,autocast,onnx or 'all' (eager always runs; default eager)")
    p.add_argument("--opset", type=int, default=0,
                   help="ONNX opset asked of the exporter (default: the dynamo exporter's own, 17 for the legacy one)")
    p.add_argument("--onnx-exporter", choices=("auto", "dynamo", "torchscript"), default="auto",
                   help="auto (default): the torch's default exporter, then the legacy TorchScript one on failure")
    p.add_argument("--onnx-dir", default="", help="keep the exported .onnx files here (default: a temporary folder)")
    p.add_argument("--py2", default=os.path.join(REPO, ".official", "py2"),
                   help="extra packages for torch 2.x (scripts/setup-bench-official.sh); put on sys.path when its "
                        "stamp names this python's torch")
    p.add_argument("--rounds", type=int, default=1, help="alternate official / ours this many times (needs --ours)")
    p.add_argument("--ours", default="", help="moh-bench binary to run after each official round (--against)")
    p.add_argument("--out", default="", help="write the JSON here (default: stdout)")
    a = p.parse_args(argv)
    if a.rounds > 1 and not a.ours:
        p.error("--rounds > 1 needs --ours")
    modes = MODES if a.modes.strip() == "all" else [m.strip() for m in a.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"--modes: unknown {', '.join(unknown)} (known: {', '.join(MODES)}, all)")
    a.modes = ["eager"] + [m for m in MODES if m in modes and m != "eager"]
    return a


def setup_imports(src, timm_dir):
    for sub in ("MoH-ViT", "MoH-DiT"):
        if not os.path.isdir(os.path.join(src, sub)):
            sys.exit(f"bench-official: {src} has no {sub}/ folder; --src must be a SkyworkAI/MoH checkout")
    if timm_dir:
        if not os.path.isdir(os.path.join(timm_dir, "timm")):
            sys.exit(f"bench-official: {timm_dir} has no timm/ package; --timm must be a pytorch-image-models checkout")
        sys.path.insert(0, os.path.abspath(timm_dir))


def setup_py2(folder):
    """Puts the torch-2 extras on sys.path (before torch is imported: torch binds numpy at import) when the stamp
    written by setup-bench-official.sh names the torch of this python. Returns a note for the JSON."""
    stamp = os.path.join(folder, ".moh-bench-extras")
    if not os.path.isfile(stamp):
        return "absent"
    try:
        from importlib import metadata
        have = metadata.version("torch").split("+")[0]
    except Exception as e:  # no torch metadata: leave the folder out
        return f"not used: torch version unknown ({e})"
    with open(stamp) as f:
        built = f.read().split(";")[0].replace("torch", "").strip()
    if built != have:
        return f"not used: built for torch {built}, this python has torch {have}"
    if os.path.abspath(folder) not in sys.path:
        sys.path.insert(0, os.path.abspath(folder))
    return f"on sys.path ({os.path.abspath(folder)})"


def time_it(fn, warmup, iters):
    """Median / min / max ms of fn() after warm-up calls; also returns the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    ms = []
    for _ in range(max(1, iters)):
        t0 = time.perf_counter()
        out = fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    ms.sort()
    return {"median_ms": ms[len(ms) // 2], "min_ms": ms[0], "max_ms": ms[-1]}, out


def import_from(folder, module):
    folder = os.path.abspath(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"bench-official: importing {folder}/{module}.py failed: {e}. The official code needs timm (or --timm), "
                 f"torchvision and Pillow for this python ({sys.executable}); on Debian: apt-get install python3-torch "
                 f"python3-torchvision python3-pil; for .deps/torch2: scripts/setup-bench-official.sh")


def first_line(e):
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".strip()


def root_cause(e):
    """The first line of the deepest exception of the __cause__ / __context__ chain ("" when e is its own root)."""
    seen, r = {id(e)}, e
    while True:
        nxt = r.__cause__ if r.__cause__ is not None else (None if r.__suppress_context__ else r.__context__)
        if nxt is None or id(nxt) in seen:
            break
        r = nxt
        seen.add(id(r))
    return "" if r is e else first_line(r)


def failure(stage, e):
    d = {"status": "failed", "stage": stage, "error": first_line(e)}
    cause = root_cause(e)
    if cause and cause != d["error"]:
        d["root_cause"] = cause
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        d["raised_at"] = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno} ({tb[-1].name})"
    return d


def rel_error(torch, out, ref):
    out = torch.as_tensor(out).float()
    diff = (out - ref).abs().max().item()
    scale = ref.abs().max().item()
    return {"max_abs_diff": diff, "ref_max_abs": scale, "rel_err": diff / scale if scale > 0 else float("nan")}


class Case:
    """One model and input, built once; the mode state (compiled function, ONNX session) lives here across rounds."""

    def __init__(self, family, key, name, model_name, batch, model, inputs, input_names, info):
        self.family, self.key, self.name, self.model_name, self.batch = family, key, name, model_name, batch
        self.model, self.inputs, self.input_names, self.info = model, inputs, input_names, info
        self.ref = None     # eager fp32 output (float tensor)
        self.state = {}     # mode -> {"fn": callable or None, "once": {...} recorded once, "dead": {...} if failed}


def build_vit(a, torch, names):
    transnext = import_from(os.path.join(a.src, "MoH-ViT"), "transnext")
    cases = []
    for name in names:
        if name not in VIT_CASES:
            sys.exit(f"bench-official: unknown vit case '{name}' (known: {', '.join(VIT_CASES)})")
        torch.manual_seed(0)
        model = getattr(transnext, VIT_CASES[name])(img_size=224, pretrain_size=224).eval()
        x = torch.randn(a.vit_batch, 3, 224, 224)
        cases.append(Case("vit", "name", name, VIT_CASES[name], a.vit_batch, model, (x,), ["x"],
                          {"name": name, "model": VIT_CASES[name], "batch": a.vit_batch, "img_size": 224}))
    return cases


def redraw_zero_params(torch, model, seed):
    """Redraws the parameters that are all zero (DiT's adaLN-Zero / final layer init) with moh-bench's rule: N(0, s),
    s = clamp(1/sqrt(fan_in), 0.02, 0.2) for matrices, 0.05 for vectors. Returns how many it redrew."""
    g = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.is_floating_point() and p.numel() > 0 and not bool(p.any()):
                std = min(max(1.0 / (p[0].numel() ** 0.5), 0.02), 0.2) if p.dim() >= 2 else 0.05
                p.copy_(torch.randn(p.shape, generator=g) * std)
                n += 1
    return n


def build_dit(a, torch, names):
    models = import_from(os.path.join(a.src, "MoH-DiT"), "models")
    cases = []
    for name in names:
        if name not in models.DiT_models:
            sys.exit(f"bench-official: unknown MoH-DiT model '{name}' (known: {', '.join(models.DiT_models)})")
        torch.manual_seed(0)
        model = models.DiT_models[name](input_size=32, num_classes=1000).eval()
        b = 2 * a.dit_images
        x = torch.randn(b, 4, 32, 32)
        t_ = torch.randint(0, 1000, (b,))
        y = torch.cat([torch.randint(0, 1000, (a.dit_images,)), torch.full((a.dit_images,), 1000)])
        redrawn = redraw_zero_params(torch, model, 1)
        cases.append(Case("dit", "model", name, name, b, model, (x, t_, y), ["x", "t", "y"],
                          {"name": "forward", "model": name, "batch": b, "input_size": 32,
                           "zero_params_redrawn": redrawn}))
    return cases


# ---- modes -------------------------------------------------------------------------------------------------------

def mode_unavailable(torch, mode):
    """Why `mode` cannot run on this torch ("" when it can)."""
    if mode == "compile" and not hasattr(torch, "compile"):
        return f"torch.compile needs torch >= 2.0; this is torch {torch.__version__}"
    if mode == "autocast":
        if not hasattr(torch, "autocast"):
            return f"torch.autocast is missing in torch {torch.__version__}"
    if mode == "onnx":
        if not hasattr(torch, "onnx"):
            return "torch.onnx is missing"
        try:
            import onnxruntime  # noqa: F401
        except Exception as e:
            return (f"onnxruntime is not importable for this python ({sys.executable}): {first_line(e)}"
                    + ("; for .deps/torch2 run scripts/setup-bench-official.sh" if torch.__version__ >= "2" else
                       "; Debian packages no onnxruntime: run the onnx mode on torch 2.x (.deps/torch2)"))
    return ""


def prepare_compile(a, torch, case):
    fn = torch.compile(case.model)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = fn(*case.inputs)
    once = {"compile_s": time.perf_counter() - t0, "backend": "inductor", "compile_mode": "default"}
    once.update(rel_error(torch, out, case.ref))
    return (lambda: fn(*case.inputs)), once


def prepare_autocast(a, torch, case):
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return case.model(*case.inputs)
    with torch.no_grad():
        out = run()
    once = {"autocast_dtype": "bfloat16", "out_dtype": str(out.dtype).replace("torch.", "")}
    once.update(rel_error(torch, out, case.ref))
    return run, once


def default_exporter(torch):
    import inspect
    try:
        p = inspect.signature(torch.onnx.export).parameters.get("dynamo")
    except (TypeError, ValueError):
        p = None
    if p is None:
        return "torchscript", False
    return ("dynamo" if p.default else "torchscript"), True


def export_onnx(a, torch, case, path):
    """Tries the torch's default exporter, then the legacy TorchScript one (dynamo=False). Returns the info dict;
    raises the last exception when every attempt failed (each attempt's error is kept on it)."""
    first, has_dynamo_kw = default_exporter(torch)
    legacy_opset = a.opset or 17
    attempts = [(first, {"opset_version": a.opset or None} if first == "dynamo" else {"opset_version": legacy_opset})]
    if has_dynamo_kw and first == "dynamo":
        attempts.append(("torchscript", {"dynamo": False, "opset_version": legacy_opset}))
    if a.onnx_exporter != "auto":
        attempts = [(n, kw) for n, kw in attempts if n == a.onnx_exporter]
        if not attempts:
            err = RuntimeError(f"--onnx-exporter {a.onnx_exporter}: torch {torch.__version__} has only the "
                               f"{first} exporter")
            err.moh_attempts = []
            raise err
    tried = []
    for exporter, kw in attempts:
        for f in os.listdir(os.path.dirname(path)):  # leftovers of a failed attempt (external data too)
            if f.startswith(os.path.basename(path)):
                os.remove(os.path.join(os.path.dirname(path), f))
        t0 = time.perf_counter()
        try:
            with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
                torch.onnx.export(case.model, case.inputs, path, input_names=case.input_names, output_names=["out"],
                                  **kw)
            if not os.path.isfile(path):
                raise RuntimeError(f"the exporter wrote no file at {path}")
        except Exception as e:
            d = {"exporter": exporter, **failure("export", e), "seconds": time.perf_counter() - t0}
            d.pop("status")
            tried.append(d)
            print(f"official {case.family} {case.name} onnx: {exporter} export failed: {d['error']}"
                  + (f" (root cause: {d['root_cause']})" if "root_cause" in d else ""), file=sys.stderr)
            last = e
            continue
        info = {"exporter": exporter, "export_s": time.perf_counter() - t0,
                "opset_asked": kw["opset_version"] or "exporter default",
                "failed_attempts": tried}
        try:
            import onnx
            m = onnx.load(path, load_external_data=False)
            info["opset"] = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
            info["nodes"] = len(m.graph.node)
        except Exception as e:
            info["opset"] = None
            info["onnx_load_error"] = first_line(e)
        info["file_mb"] = sum(os.path.getsize(os.path.join(os.path.dirname(path), f))
                              for f in os.listdir(os.path.dirname(path)) if f.startswith(os.path.basename(path))) / 2**20
        return info
    last.moh_attempts = tried
    raise last


def prepare_onnx(a, torch, case, onnx_dir):
    import onnxruntime as ort
    sub = os.path.join(onnx_dir, f"{case.family}-{re.sub(r'[^A-Za-z0-9_.-]', '_', case.name)}")
    os.makedirs(sub, exist_ok=True)
    info = export_onnx(a, torch, case, os.path.join(sub, "model.onnx"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(os.path.join(sub, "model.onnx"), so, providers=["CPUExecutionProvider"])
    info["session_s"] = time.perf_counter() - t0
    info["providers"] = sess.get_providers()
    info["intra_op_threads"] = a.threads
    have = [i.name for i in sess.get_inputs()]
    feed = {n: x.numpy() for n, x in zip(case.input_names, case.inputs) if n in have}
    missing = [n for n in have if n not in feed]
    if missing:
        raise RuntimeError(f"the exported graph asks for inputs {missing}, not among {case.input_names}")
    info["graph_inputs"] = have
    out = sess.run(None, feed)[0]
    info.update(rel_error(torch, torch.from_numpy(out), case.ref))
    if not a.onnx_dir:
        info["file"] = "(temporary)"
    else:
        info["file"] = os.path.join(sub, "model.onnx")
    return (lambda: sess.run(None, feed)), info


def run_mode(a, torch, case, mode, onnx_dir):
    """One round of one mode on one case: the entry for the JSON."""
    st = case.state.setdefault(mode, {})
    if "dead" in st:
        return dict(st["dead"])
    if mode == "eager":
        with torch.no_grad():
            t, out = time_it(lambda: case.model(*case.inputs), a.warmup, a.iters)
        if case.ref is None:
            case.ref = out.detach().float().clone()
        return {"status": "ok", **t}
    if "fn" not in st:
        why = mode_unavailable(torch, mode)
        if why:
            st["dead"] = {"status": "skipped", "reason": why}
            return dict(st["dead"])
        try:
            prep = {"compile": prepare_compile, "autocast": prepare_autocast}.get(mode)
            st["fn"], st["once"] = prep(a, torch, case) if prep else prepare_onnx(a, torch, case, onnx_dir)
        except Exception as e:
            stage = {"compile": "compile", "onnx": "export" if hasattr(e, "moh_attempts") else "session"}.get(mode, "run")
            st["dead"] = failure(stage, e)
            if hasattr(e, "moh_attempts"):
                st["dead"]["attempts"] = e.moh_attempts
                st["dead"]["why"] = "; ".join(f"{x['exporter']} exporter: {x.get('root_cause') or x['error']}"
                                              for x in e.moh_attempts) or st["dead"]["error"]
            if mode == "compile":
                with contextlib.suppress(Exception):
                    torch._dynamo.reset()
            print(f"official {case.family} {case.name} {mode}: {st['dead']['status']} at {stage}: "
                  f"{st['dead']['error']}", file=sys.stderr)
            return dict(st["dead"])
    try:
        with torch.no_grad():
            t, _ = time_it(st["fn"], a.warmup, a.iters)
    except Exception as e:
        st["dead"] = failure("run", e)
        print(f"official {case.family} {case.name} {mode}: failed: {st['dead']['error']}", file=sys.stderr)
        return dict(st["dead"])
    return {"status": "ok", **t, **st["once"]}


# ---- machine and run metadata ------------------------------------------------------------------------------------

def git_rev(path):
    """HEAD of the checkout rooted at `path` ("" when path is not the root of a git checkout)."""
    try:
        git = lambda *a: subprocess.run(["git", "-C", path, *a], capture_output=True, text=True, check=True).stdout.strip()
        return git("rev-parse", "HEAD") if os.path.samefile(git("rev-parse", "--show-toplevel"), path) else ""
    except Exception:
        return ""


def git_describe(path):
    try:
        r = subprocess.run(["git", "-C", path, "describe", "--tags", "--always", "--dirty"], capture_output=True,
                           text=True, check=True)
        return r.stdout.strip()
    except Exception:
        return ""


def cpu_info():
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name or platform.processor(), [f for f in CPU_FLAGS if f in flags]


def openblas_cores():
    """Core names reported by every OpenBLAS loaded in this process (openblas_get_corename)."""
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in libs:
                    libs.append(path)
    except OSError:
        return []
    out = []
    for lib in libs:
        d = {"lib": lib, "of": "numpy" if "numpy" in lib else "torch / system"}
        try:
            h = ctypes.CDLL(lib)
            for prefix in ("", "scipy_"):
                for suffix in ("", "64_"):
                    fn = getattr(h, f"{prefix}openblas_get_corename{suffix}", None)
                    if fn is None:
                        continue
                    fn.restype = ctypes.c_char_p
                    d["core"] = fn().decode()
                    cfg = getattr(h, f"{prefix}openblas_get_config{suffix}", None)
                    if cfg is not None:
                        cfg.restype = ctypes.c_char_p
                        d["config"] = cfg().decode().strip()
                    break
                if "core" in d:
                    break
        except Exception as e:
            d["error"] = first_line(e)
        out.append(d)
    return out


def versions(torch):
    v = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "timm", "numpy", "onnx", "onnxscript", "onnxruntime", "PIL"):
        try:
            m = __import__(mod)
            v["Pillow" if mod == "PIL" else mod] = getattr(m, "__version__", "?")
        except Exception:
            pass
    return v


def torch_build(torch):
    b = {}
    try:
        show = torch.__config__.show()
        keep = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "CPU capability", "Intel(R) MKL",
                "oneDNN", "OpenMP")
        b["config"] = [l.strip(" -") for l in show.splitlines() if any(k in l for k in keep) and "Build settings" not in l]
        settings = next((l for l in show.splitlines() if "Build settings:" in l), "")
        wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION", "PERF_WITH_AVX512")
        b["build_settings"] = {k: v for k, v in re.findall(r"(\w+)=([^,]*)", settings) if k in wanted}
        b["parallel_info"] = [l.strip() for l in torch.__config__.parallel_info().splitlines() if l.strip()]
    except Exception as e:
        b["error"] = first_line(e)
    with contextlib.suppress(Exception):
        b["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    with contextlib.suppress(Exception):
        b["mkldnn"] = torch.backends.mkldnn.is_available()
        b["mkl"] = torch.backends.mkl.is_available()
    return b


def run_meta(a, torch, env_at_start, py2_note, compile_cache):
    cpu, flags = cpu_info()
    return {"tool": "scripts/bench-official.py", "src": os.path.abspath(a.src), "src_git": git_rev(a.src),
            "timm": os.path.abspath(a.timm) if a.timm else "installed", "timm_git": git_rev(a.timm) if a.timm else "",
            "timm_describe": git_describe(a.timm) if a.timm else "",
            "repo_git": git_rev(REPO), "repo_describe": git_describe(REPO),
            "torch": torch.__version__, "torchvision": versions(torch).get("torchvision", ""),
            "python": platform.python_version(), "python_executable": sys.executable, "cpu": cpu, "cpu_flags": flags,
            "nproc": os.cpu_count(), "device": "cpu", "dtype": "fp32", "threads": torch.get_num_threads(),
            "warmup": a.warmup, "iters": a.iters, "modes": a.modes, "versions": versions(torch),
            "torch_build": torch_build(torch), "openblas": openblas_cores(),
            "openblas_coretype_env": env_at_start.get("OPENBLAS_CORETYPE", ""), "env_at_start": env_at_start,
            "env_set_by_script": {"OMP_NUM_THREADS": str(a.threads)}, "py2": py2_note, "compile_cache": compile_cache,
            "ours": os.path.abspath(a.ours) if a.ours else "", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# ---- rounds ------------------------------------------------------------------------------------------------------

def run_official(a, torch, cases, meta, onnx_dir):
    res = dict(meta, date=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    for case in cases:
        modes = {}
        for mode in a.modes:
            e = run_mode(a, torch, case, mode, onnx_dir)
            if e["status"] == "ok" and case.family == "vit":
                e["images_per_second"] = case.batch / (e["median_ms"] / 1000.0)
            modes[mode] = e
            if e["status"] == "ok":
                extra = "".join(f", {k} {e[k]:.3g}" for k in ("rel_err", "compile_s", "export_s") if k in e)
                print(f"official {case.family} {case.model_name} batch {case.batch} {mode}: {e['median_ms']:.1f} ms"
                      + (f", {e['images_per_second']:.2f} img/s" if "images_per_second" in e else "") + extra,
                      file=sys.stderr)
        eager = modes["eager"]
        entry = dict(case.info)
        entry.update({k: eager[k] for k in ("median_ms", "min_ms", "max_ms", "images_per_second") if k in eager})
        entry["modes"] = modes
        res.setdefault(case.family, []).append(entry)
    return res


def run_ours(a, official, round_dir, r, weights):
    """Runs moh-bench on the cases of this round with --against, each on the official model's weights (`weights`:
    (family, case name) -> .pth); returns its JSON (with "mixed": the same in mixed precision, when autocast runs)."""
    src = os.path.join(round_dir, f"official-{r}.json")
    with open(src, "w") as f:
        json.dump(official, f, indent=2)
    outs = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MOH_BENCH_VIT_BATCH=str(a.vit_batch),
               MOH_BENCH_DIT_IMAGES=str(a.dit_images))
    jobs = []
    for c in official.get("vit", []):
        jobs.append(("vit", ["--only", c["name"], "--weights", weights[("vit", c["name"])]]))
    for c in official.get("dit", []):
        jobs.append(("dit", ["--only", "forward", c["model"], "--weights", weights[("dit", c["model"])]]))
    for i, (sub, only) in enumerate(jobs):
        dst = os.path.join(round_dir, f"ours-{r}-{i}.json")
        cmd = [a.ours, sub, "--device", "cpu", "--dtype", "fp32", "--warmup", str(a.warmup), "--iters", str(a.iters),
               "--against", src, "--json", dst] + only
        print("+ " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
        with open(dst) as f:
            outs.setdefault(sub, []).extend(json.load(f)[sub])
    if "autocast" in a.modes:  # ours in mixed precision (bf16 GEMMs) beside the official CPU autocast bf16
        for i, (sub, only) in enumerate(jobs):
            dst = os.path.join(round_dir, f"ours-mixed-{r}-{i}.json")
            cmd = [a.ours, sub, "--device", "cpu", "--dtype", "mixed", "--warmup", str(a.warmup), "--iters",
                   str(a.iters), "--json", dst] + only
            print("+ " + " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
            with open(dst) as f:
                outs.setdefault("mixed", {}).setdefault(sub, []).extend(json.load(f)[sub])
    return outs


def main(argv):
    a = parse_args(argv)
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


def run(a, env_at_start, compile_cache, tmp_root):
    setup_imports(a.src, a.timm)
    py2_note = setup_py2(a.py2)
    try:
        import torch
    except ImportError:
        sys.exit(f"bench-official: this python ({sys.executable}) has no torch; on Debian: apt-get install python3-torch; "
                 f"torch 2.x: scripts/setup-torch2.sh, then run with .deps/torch2/bin/python")
    torch.set_num_threads(a.threads)
    vit = [] if a.vit in ("", "none") else a.vit.split(",")
    dit = [] if a.dit in ("", "none") else a.dit.split(",")
    cases = (build_vit(a, torch, vit) if vit else []) + (build_dit(a, torch, dit) if dit else [])
    onnx_dir = os.path.abspath(a.onnx_dir) if a.onnx_dir else os.path.join(tmp_root, "onnx")
    meta = run_meta(a, torch, env_at_start, py2_note, compile_cache)
    weights = {}
    if a.ours:
        # ours runs on the official model's very weights (torch.save of its state_dict, read by moh-bench --weights
        # as an official checkpoint): the same routing, and error figures of the same model
        for case in cases:
            path = os.path.join(tmp_root, f"weights-{case.family}-{case.name.replace('/', '_')}.pth")
            torch.save(case.model.state_dict(), path)
            weights[(case.family, case.name)] = path
    rounds = []
    for r in range(max(1, a.rounds)):
        official = run_official(a, torch, cases, meta, onnx_dir)
        ours = run_ours(a, official, tmp_root, r, weights) if a.ours else None
        rounds.append({"official": official, "ours": ours})
    summary = summarize(rounds, a.modes)
    if not a.ours:
        return rounds[0]["official"]  # the file moh-bench --against reads
    return summary


def summarize(rounds, modes):
    """Medians over rounds of official (every mode) and ours per case, plus every round's raw figures; prints the
    table. side_by_side keeps its eager-only rows; side_by_side_modes has one row per case and mode."""
    table, by_mode = [], []
    first = rounds[0]["official"]
    for fam, key in (("vit", "name"), ("dit", "model")):
        for i, case in enumerate(first.get(fam, [])):
            def ours_of(runs):
                return [c for rd in rounds for c in runs(rd.get("ours") or {}).get(fam, [])
                        if c.get(key) == case[key] and c.get("batch") == case["batch"]]
            for mode in modes:
                # autocast bf16 is compared with ours in mixed precision, every other mode with ours in fp32
                mine = ours_of((lambda o: o.get("mixed", {})) if mode == "autocast" else (lambda o: o))
                ours = [c["median_ms"] for c in mine]
                ours_ms = statistics.median(ours) if ours else None
                entries = [rd["official"][fam][i]["modes"][mode] for rd in rounds]
                ok = [e for e in entries if e["status"] == "ok"]
                off = [e["median_ms"] for e in ok]
                row = {"family": fam, "case": case[key], "model": case["model"], "batch": case["batch"], "mode": mode,
                       "status": "ok" if ok else entries[0]["status"],
                       "official_ms": statistics.median(off) if off else None, "ours_ms": ours_ms,
                       "official_rounds_ms": off, "ours_rounds_ms": ours}
                if off and fam == "vit":
                    row["official_images_per_second"] = case["batch"] / (row["official_ms"] / 1000.0)
                if off and ours_ms:
                    row["ours_over_official"] = row["official_ms"] / ours_ms
                if mine and "rel_err_vs_fp32" in mine[-1]:
                    row["ours_rel_err"] = mine[-1]["rel_err_vs_fp32"]
                last = ok[-1] if ok else entries[0]
                for k in ("rel_err", "max_abs_diff", "compile_s", "export_s", "session_s", "exporter", "opset",
                          "reason", "error", "root_cause", "why"):
                    if k in last:
                        row[k] = last[k]
                by_mode.append(row)
                if mode == "eager":
                    t = {k: row[k] for k in ("family", "case", "model", "batch", "official_ms", "ours_ms",
                                             "official_rounds_ms", "ours_rounds_ms")}
                    if "ours_over_official" in row:
                        t["speedup"] = row["ours_over_official"]
                    table.append(t)
    print(f"\nmedians over {len(rounds)} round(s); ours = moh-bench fp32 (mixed beside autocast); ours/official = official ms / ours ms "
          f"(> 1: ours faster); rel err = max|out - eager fp32| / max|eager fp32|", file=sys.stderr)
    print(f"{'case':<26} {'batch':>5} {'mode':<9} {'official ms':>12} {'img/s':>7} {'ours ms':>9} {'ours/official':>13} "
          f"{'rel err':>8} {'ours err':>8}  note", file=sys.stderr)
    for row in by_mode:
        ok = row["status"] == "ok"
        off = f"{row['official_ms']:.1f}" if ok else row["status"]
        ips = f"{row['official_images_per_second']:.2f}" if "official_images_per_second" in row else "-"
        ours = f"{row['ours_ms']:.1f}" if row["ours_ms"] else "-"
        sp = f"{row['ours_over_official']:.2f}x" if "ours_over_official" in row else "-"
        err = f"{row['rel_err']:.1e}" if "rel_err" in row else "-"
        our_err = f"{row['ours_rel_err']:.1e}" if "ours_rel_err" in row else "-"
        if ok:
            note = ", ".join(f"{k} {row[k]:.1f} s" for k in ("compile_s", "export_s") if k in row)
            if "exporter" in row:
                note += f" ({row['exporter']} exporter, opset {row.get('opset')})"
        else:
            note = row.get("reason") or row.get("why") or row.get("error", "")
        print(f"{row['model']:<26} {row['batch']:>5} {row['mode']:<9} {off:>12} {ips:>7} {ours:>9} {sp:>13} {err:>8} {our_err:>8}  "
              f"{note[:160]}", file=sys.stderr)
    meta = {k: v for k, v in first.items() if k not in ("vit", "dit")}
    return {"side_by_side": table, "side_by_side_modes": by_mode, "rounds": rounds, **meta}


if __name__ == "__main__":
    main(sys.argv[1:])
