"""Command line of scripts/bench-official.py: the official cases, modes and options."""
import argparse
import os


VIT_CASES = {"s75": "moh_transnext_small_75", "s80": "moh_transnext_small_80",
             "b50": "moh_transnext_base_50", "b75": "moh_transnext_base_75"}


MODES = ("eager", "compile", "autocast", "onnx")


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv, doc):
    """`doc`: the script's docstring (its first line is the description, the whole is the --help epilog)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    p.add_argument("--src", required=True, help="SkyworkAI/MoH checkout (holds MoH-ViT/ and MoH-DiT/)")
    p.add_argument("--timm", default="", help="pytorch-image-models checkout (its root), when timm is not installed")
    p.add_argument("--vit", default="s80,b75", help="comma list of vit cases (s75,s80,b50,b75) or 'none'")
    p.add_argument("--dit", default="none", help="comma list of MoH-DiT models (e.g. MoH-DiT-S/2-90) or 'none'")
    p.add_argument("--vit-batch", type=int, default=int(os.environ.get("MOH_BENCH_VIT_BATCH", 4)))
    p.add_argument("--dit-images", type=int, default=int(os.environ.get("MOH_BENCH_DIT_IMAGES", 1)),
                   help="n: the DiT forward runs batch 2n (n images with classifier-free guidance)")
    p.add_argument("--input-seed", type=int, default=0,
                   help="seed of the forward inputs (default 0); passed to moh-bench, which draws the very same input")
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
    if a.input_seed < 0:
        p.error(f"--input-seed must be 0 or more (moh-bench takes an unsigned seed), got {a.input_seed}")
    if a.rounds > 1 and not a.ours:
        p.error("--rounds > 1 needs --ours")
    modes = MODES if a.modes.strip() == "all" else [m.strip() for m in a.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"--modes: unknown {', '.join(unknown)} (known: {', '.join(MODES)}, all)")
    a.modes = ["eager"] + [m for m in MODES if m in modes and m != "eager"]
    return a
