"""The official models and inputs timed (MoH-ViT/transnext.py builders, MoH-DiT/models.py DiT_models), timing
and error helpers."""
import os
import sys
import time

from bench_official.cli import VIT_CASES
from bench_official.loading import import_from


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


def rel_error(torch, out, ref):
    out = torch.as_tensor(out).float()
    d = (out - ref).double()
    diff = d.abs().max().item()
    scale = ref.abs().max().item()
    rms, ref_rms = d.pow(2).mean().sqrt().item(), ref.double().pow(2).mean().sqrt().item()
    return {"max_abs_diff": diff, "ref_max_abs": scale, "rel_err": diff / scale if scale > 0 else float("nan"),
            "rel_rms": rms / ref_rms if ref_rms > 0 else float("nan")}


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
        torch.manual_seed(a.input_seed)  # the input: moh-bench --input-seed draws the same (same torch)
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
        torch.manual_seed(a.input_seed)  # the inputs: moh-bench --input-seed draws the same (same torch)
        x = torch.randn(b, 4, 32, 32)
        t_ = torch.randint(0, 1000, (b,))
        y = torch.cat([torch.randint(0, 1000, (a.dit_images,)), torch.full((a.dit_images,), 1000)])
        redrawn = redraw_zero_params(torch, model, 1)
        cases.append(Case("dit", "model", name, name, b, model, (x, t_, y), ["x", "t", "y"],
                          {"name": "forward", "model": name, "batch": b, "input_size": 32,
                           "zero_params_redrawn": redrawn}))
    return cases
