#!/usr/bin/env python3
"""Time the official MoH code (SkyworkAI/MoH) on the CPU cases `moh-bench` runs, and write the figures as JSON.

The official code is never part of this repository: point --src at a checkout of github.com/SkyworkAI/MoH (the
folder holding MoH-ViT/ and MoH-DiT/) and --timm at a checkout of huggingface/pytorch-image-models (tag v1.0.28
works with Debian's python3-torch 1.13; the golden files were made with it) unless timm is installed. timm imports
torchvision and Pillow (Debian: python3-torch python3-torchvision python3-pil).

Cases (same shapes, batch, threads and dtype as moh-bench on the CPU; random weights, eval mode, no_grad):
  vit: MoH-ViT S-80 / B-75 (MoH-ViT/transnext.py builders), batch --vit-batch (4) at 224x224 -> img/s;
       the official module picks attention_native.AggregatedAttention when swattention is absent (always on CPU).
  dit: MoH-DiT forward (MoH-DiT/models.py DiT_models), batch 2 * --dit-images (1), 32x32 latents -> ms.

Use --rounds R to alternate official and ours (--ours build/bin/moh-bench) R times in one run: each round times
the official case, then runs `moh-bench ... --against` on that round's JSON; the summary gives medians over rounds.

Examples:
  scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80,b75 --out /tmp/official.json
  build/bin/moh-bench vit --device cpu --against /tmp/official.json
  scripts/bench-official.py --src .official/MoH --timm .official/timm --vit s80 --dit MoH-DiT-S/2-90 \\
      --rounds 3 --ours build/bin/moh-bench --out /tmp/side-by-side.json
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

VIT_CASES = {"s75": "moh_transnext_small_75", "s80": "moh_transnext_small_80",
             "b50": "moh_transnext_base_50", "b75": "moh_transnext_base_75"}


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
    p.add_argument("--rounds", type=int, default=1, help="alternate official / ours this many times (needs --ours)")
    p.add_argument("--ours", default="", help="moh-bench binary to run after each official round (--against)")
    p.add_argument("--out", default="", help="write the JSON here (default: stdout)")
    a = p.parse_args(argv)
    if a.rounds > 1 and not a.ours:
        p.error("--rounds > 1 needs --ours")
    return a


def setup_imports(src, timm_dir):
    for sub in ("MoH-ViT", "MoH-DiT"):
        if not os.path.isdir(os.path.join(src, sub)):
            sys.exit(f"bench-official: {src} has no {sub}/ folder; --src must be a SkyworkAI/MoH checkout")
    if timm_dir:
        if not os.path.isdir(os.path.join(timm_dir, "timm")):
            sys.exit(f"bench-official: {timm_dir} has no timm/ package; --timm must be a pytorch-image-models checkout")
        sys.path.insert(0, os.path.abspath(timm_dir))

def time_it(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(max(1, iters)):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    ms.sort()
    return {"median_ms": ms[len(ms) // 2], "min_ms": ms[0], "max_ms": ms[-1]}


def import_from(folder, module):
    folder = os.path.abspath(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"bench-official: importing {folder}/{module}.py failed: {e}. The official code needs timm (or --timm), "
                 f"torchvision and Pillow for this python ({sys.executable}); on Debian: apt-get install python3-torch "
                 f"python3-torchvision python3-pil")


def bench_vit(a, torch, names):
    transnext = import_from(os.path.join(a.src, "MoH-ViT"), "transnext")
    out = []
    for name in names:
        if name not in VIT_CASES:
            sys.exit(f"bench-official: unknown vit case '{name}' (known: {', '.join(VIT_CASES)})")
        torch.manual_seed(0)
        model = getattr(transnext, VIT_CASES[name])(img_size=224, pretrain_size=224).eval()
        x = torch.randn(a.vit_batch, 3, 224, 224)
        with torch.no_grad():
            t = time_it(lambda: model(x), a.warmup, a.iters)
        t.update({"name": name, "model": VIT_CASES[name], "batch": a.vit_batch, "img_size": 224,
                  "images_per_second": a.vit_batch / (t["median_ms"] / 1000.0)})
        print(f"official vit {VIT_CASES[name]}: {t['median_ms']:.1f} ms, {t['images_per_second']:.2f} img/s",
              file=sys.stderr)
        out.append(t)
    return out


def bench_dit(a, torch, names):
    models = import_from(os.path.join(a.src, "MoH-DiT"), "models")
    out = []
    for name in names:
        if name not in models.DiT_models:
            sys.exit(f"bench-official: unknown MoH-DiT model '{name}' (known: {', '.join(models.DiT_models)})")
        torch.manual_seed(0)
        model = models.DiT_models[name](input_size=32, num_classes=1000).eval()
        b = 2 * a.dit_images
        x = torch.randn(b, 4, 32, 32)
        t_ = torch.randint(0, 1000, (b,))
        y = torch.cat([torch.randint(0, 1000, (a.dit_images,)), torch.full((a.dit_images,), 1000)])
        with torch.no_grad():
            t = time_it(lambda: model(x, t_, y), a.warmup, a.iters)
        t.update({"name": "forward", "model": name, "batch": b, "input_size": 32})
        print(f"official dit forward {name} batch {b}: {t['median_ms']:.1f} ms", file=sys.stderr)
        out.append(t)
    return out


def git_rev(path):
    """HEAD of the checkout rooted at `path` ("" when path is not the root of a git checkout)."""
    try:
        git = lambda *a: subprocess.run(["git", "-C", path, *a], capture_output=True, text=True, check=True).stdout.strip()
        return git("rev-parse", "HEAD") if os.path.samefile(git("rev-parse", "--show-toplevel"), path) else ""
    except Exception:
        return ""


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_official(a, torch, tv):
    vit = [] if a.vit in ("", "none") else a.vit.split(",")
    dit = [] if a.dit in ("", "none") else a.dit.split(",")
    res = {"tool": "scripts/bench-official.py", "src": os.path.abspath(a.src), "src_git": git_rev(a.src),
           "timm": os.path.abspath(a.timm) if a.timm else "installed", "timm_git": git_rev(a.timm) if a.timm else "",
           "torch": torch.__version__, "torchvision": tv, "python": platform.python_version(), "cpu": cpu_name(),
           "device": "cpu", "dtype": "fp32", "threads": torch.get_num_threads(), "warmup": a.warmup,
           "iters": a.iters, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if vit:
        res["vit"] = bench_vit(a, torch, vit)
    if dit:
        res["dit"] = bench_dit(a, torch, dit)
    return res


def run_ours(a, official, round_dir, r):
    """Runs moh-bench on the cases of this round with --against; returns its JSON (None when it failed)."""
    src = os.path.join(round_dir, f"official-{r}.json")
    with open(src, "w") as f:
        json.dump(official, f, indent=2)
    outs = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MOH_BENCH_VIT_BATCH=str(a.vit_batch),
               MOH_BENCH_DIT_IMAGES=str(a.dit_images))
    jobs = []
    if official.get("vit"):
        jobs.append(("vit", ["--only"] + [c["name"] for c in official["vit"]]))
    for c in official.get("dit", []):
        jobs.append(("dit", ["--only", "forward", c["model"]]))
    for i, (sub, only) in enumerate(jobs):
        dst = os.path.join(round_dir, f"ours-{r}-{i}.json")
        cmd = [a.ours, sub, "--device", "cpu", "--dtype", "fp32", "--warmup", str(a.warmup), "--iters", str(a.iters),
               "--against", src, "--json", dst] + only
        print("+ " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
        with open(dst) as f:
            outs.setdefault(sub, []).extend(json.load(f)[sub])
    return outs


def main(argv):
    a = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(a.threads)  # before torch starts its thread pool
    setup_imports(a.src, a.timm)
    try:
        import torch
    except ImportError:
        sys.exit(f"bench-official: this python ({sys.executable}) has no torch; on Debian: apt-get install python3-torch")
    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:
        tv = ""
    torch.set_num_threads(a.threads)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(max(1, a.rounds)):
            official = run_official(a, torch, tv)
            ours = run_ours(a, official, tmp, r) if a.ours else None
            rounds.append({"official": official, "ours": ours})
    result = rounds[0]["official"] if not a.ours else summarize(rounds)
    text = json.dumps(result, indent=2) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def summarize(rounds):
    """Medians over rounds of official and ours per case, plus every round's raw figures."""
    table = []
    first = rounds[0]["official"]
    for fam, key in (("vit", "name"), ("dit", "model")):
        for i, case in enumerate(first.get(fam, [])):
            off = [rd["official"][fam][i]["median_ms"] for rd in rounds]
            ours = [c["median_ms"] for rd in rounds for c in (rd["ours"] or {}).get(fam, [])
                    if c.get(key) == case[key] and c.get("batch") == case["batch"]]
            row = {"family": fam, "case": case[key], "model": case["model"], "batch": case["batch"],
                   "official_ms": statistics.median(off), "ours_ms": statistics.median(ours) if ours else None,
                   "official_rounds_ms": off, "ours_rounds_ms": ours}
            if ours:
                row["speedup"] = row["official_ms"] / row["ours_ms"]
            table.append(row)
    print(f"\n{'case':<28} {'batch':>5} {'official ms':>12} {'ours ms':>10} {'ours/official':>14}", file=sys.stderr)
    for row in table:
        sp = f"{row['speedup']:.2f}x" if "speedup" in row else "-"
        ours = f"{row['ours_ms']:.1f}" if row["ours_ms"] else "-"
        print(f"{row['model']:<28} {row['batch']:>5} {row['official_ms']:>12.1f} {ours:>10} {sp:>14}", file=sys.stderr)
    meta = {k: v for k, v in first.items() if k not in ("vit", "dit")}
    return {"side_by_side": table, "rounds": rounds, **meta}


if __name__ == "__main__":
    main(sys.argv[1:])
