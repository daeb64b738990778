#!/usr/bin/env python3
"""Golden files of the two dense baselines, from their official code (Debian python3-torch 1.13, CPU):

  dit_model_dense.safetensors   facebookresearch/DiT models.DiT (timm Attention, no router), tiny random weights
  vit_model_dense.safetensors   DaiShiResearch/TransNeXt classification/transnext.TransNeXt (native aggregated
                                attention, no router), tiny random weights
  manifests/dit_*.json          state_dict keys and shapes of the twelve DiT_models (input_size 32, 1000 classes)
  manifests/transnext_*.json    the same for transnext_{micro,tiny,small,base} (img_size 224, 1000 classes)

Same layout and conventions as the MoH goldens in tests/data/golden (README there): official state_dict keys,
in.* / out.* / mid.* tensors, an fp32-vs-fp64 report and the recommended tolerance. The writer, hooks and
random initialisers are the project's golden helpers (the `gen/` folder of the shared golden set, --gen); the
models are the unmodified official classes imported from their checkouts (fetched by the user, not committed):

  /usr/bin/python3 scripts/make-dense-goldens.py --gen ../shared/golden/gen --dit-src DiT --transnext-src TransNeXt \
      --timm-src .official/timm --out tests/data/golden
"""
import argparse
import copy
import json
import os
import subprocess
import sys
from functools import partial

DIT_MODEL = {  # facebookresearch/DiT DiT(...) kwargs; "moh": False is our config flag, not passed to DiT
    "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 72, "depth": 3, "num_heads": 6,
    "mlp_ratio": 4.0, "class_dropout_prob": 0.1, "num_classes": 10, "learn_sigma": True,
}
VIT_MODEL = {  # TransNeXt(...) kwargs (norm_eps -> norm_layer)
    "img_size": 64, "pretrain_size": None, "window_size": [3, 3, 3, None], "patch_size": 4, "in_chans": 3,
    "num_classes": 10, "embed_dims": [24, 32, 48, 64], "num_heads": [3, 4, 4, 8], "mlp_ratios": [4, 4, 2, 2],
    "qkv_bias": True, "norm_eps": 1e-6, "depths": [1, 2, 1, 1], "sr_ratios": [8, 4, 2, 1], "fixed_pool_size": None,
}


def git_rev(path):
    try:
        return subprocess.check_output(["git", "-C", path, "rev-parse", "HEAD"], text=True).strip()
    except Exception:  # an exported tree without .git
        return "unknown"


def dit_golden(C, GD, src, out_dir, sources):
    sys.path.insert(0, src)
    import models  # facebookresearch/DiT models.py
    seed = 7000
    import torch
    torch.manual_seed(seed)
    g = C.gen(seed)
    model = models.DiT(**DIT_MODEL).eval()
    init = {"weight_std_max": 0.2, "weight_std_min": 0.02, "bias_std": 0.05, "embed_std": 0.5, "router_gain": 3.0}
    GD.randomize(model, g, init)
    S, ch = DIT_MODEL["input_size"], DIT_MODEL["in_channels"]
    fwd = {"t": [3, 517, 999], "y": [1, 7, 10]}
    t = torch.tensor(fwd["t"], dtype=torch.int64)
    y = torch.tensor(fwd["y"], dtype=torch.int64)
    x = C.randn(g, len(t), ch, S, S)
    out, mids, _ = GD.traced_forward(model, x, t, y)
    cfg = {"t": [250, 600, 250, 600], "y": [3, 8, 10, 10], "cfg_scale": 4.0}
    ct = torch.tensor(cfg["t"], dtype=torch.int64)
    cy = torch.tensor(cfg["y"], dtype=torch.int64)
    zh = C.randn(g, len(ct) // 2, ch, S, S)
    cx = torch.cat([zh, zh], 0)
    with torch.no_grad():
        cfg_out = model.forward_with_cfg(cx, ct, cy, cfg["cfg_scale"])
    m64 = GD.make_fp64(model)
    out64, mids64, _ = GD.traced_forward(m64, x.double(), t, y)
    with torch.no_grad():
        cfg_out64 = m64.forward_with_cfg(cx.double(), ct, cy, cfg["cfg_scale"])
    o32, o64 = {"out.y": out, "out.cfg_y": cfg_out}, {"out.y": out64, "out.cfg_y": cfg_out64}
    for i in range(DIT_MODEL["depth"]):
        o32[f"mid.blocks.{i}"], o64[f"mid.blocks.{i}"] = mids[f"mid.blocks.{i}"], mids64[f"mid.blocks.{i}"]
    rep = C.diff_report(o32, o64)
    tol = C.suggest_tolerance(rep)
    G = C.Golden("dit_model", "tiny_dense_dit",
                 "Official facebookresearch/DiT models.DiT(**config.model without 'moh') (plain timm Attention, no "
                 "router), eval mode, all parameters re-initialised randomly except pos_embed.")
    G.add_state_dict(model.state_dict())
    G.add("in.x", x, "latent input (B, in_channels, input_size, input_size)")
    G.add("in.t", t, "timesteps (B,) int64")
    G.add("in.y", y, "class labels (B,) int64; value num_classes = null label")
    G.add("out.y", out, "model(x, t, y): (B, 2*in_channels, H, W)")
    G.add("mid.t_embedder", mids["mid.t_embedder"], "t_embedder(t): (B, D)")
    G.add("mid.y_embedder", mids["mid.y_embedder"], "y_embedder(y, train=False): (B, D)")
    for i in range(DIT_MODEL["depth"]):
        G.add(f"mid.blocks.{i}", mids[f"mid.blocks.{i}"], f"output of blocks[{i}] (B, T, D)")
        G.add(f"mid.blocks.{i}.attn", mids[f"mid.blocks.{i}.attn"], f"blocks[{i}].attn(...) (B, T, D)")
    G.add("mid.final_layer", mids["mid.final_layer"], "final_layer(x, c) before unpatchify: (B, T, p*p*out)")
    G.add("in.cfg_x", cx, "forward_with_cfg input: cat([z, z])")
    G.add("in.cfg_t", ct, "forward_with_cfg timesteps (2n,)")
    G.add("in.cfg_y", cy, "forward_with_cfg labels (2n,)")
    G.add("in.cfg_scale", torch.tensor([cfg["cfg_scale"]], dtype=torch.float32), "guidance scale")
    G.add("out.cfg_y", cfg_out, "model.forward_with_cfg(cfg_x, cfg_t, cfg_y, cfg_scale) (guides channels [0,3))")
    conf = {"model": dict(DIT_MODEL, moh=False), "seed": seed, "forward": fwd, "cfg": cfg, "init": init,
            "official_call": "models.DiT(**{k: v for k, v in model.items() if k != 'moh'}).eval()  (facebookresearch/DiT)",
            "out_channels": model.out_channels, "num_patches": model.x_embedder.num_patches}
    G.write(os.path.join(out_dir, "dit_model_dense.safetensors"), conf, sources, rep, tol, {})
    print("dit dense: worst fp64-vs-fp32", tol["worst_fp64_vs_fp32"], "out std", float(out.std()))
    sys.path.remove(src)
    del sys.modules["models"]


def vit_golden(C, GV, src, out_dir, sources):
    sys.path.insert(0, os.path.join(src, "classification"))
    import torch
    import torch.nn as nn
    import transnext  # DaiShiResearch/TransNeXt classification/transnext.py
    import attention_native
    assert transnext.AggregatedAttention is attention_native.AggregatedAttention, "expected the native fallback"
    seed = 8000
    torch.manual_seed(seed)
    g = C.gen(seed)
    kw = dict(VIT_MODEL)
    eps = kw.pop("norm_eps")
    model = transnext.TransNeXt(norm_layer=partial(nn.LayerNorm, eps=eps), **kw).eval()
    GV.randomize(model, g)
    S = VIT_MODEL["img_size"]
    x = C.randn(g, 2, VIT_MODEL["in_chans"], S, S)
    logits, mids, _, _ = GV.traced_model(model, x)
    logits64, mids64, _, _ = GV.traced_model(copy.deepcopy(model).double(), x.double())
    o32 = {"out.logits": logits, "mid.features": mids["mid.features"]}
    o64 = {"out.logits": logits64, "mid.features": mids64["mid.features"]}
    for i in range(4):
        o32[f"mid.norm{i + 1}"], o64[f"mid.norm{i + 1}"] = mids[f"mid.norm{i + 1}"], mids64[f"mid.norm{i + 1}"]
    rep = C.diff_report(o32, o64)
    tol = C.suggest_tolerance(rep)
    G = C.Golden("vit_model", "tiny_dense_transnext",
                 "Official TransNeXt classification/transnext.TransNeXt(**config.model without 'moh', norm_layer="
                 "partial(nn.LayerNorm, eps=norm_eps)) in eval mode, all parameters re-initialised randomly; "
                 "stages 1-3 attention_native.AggregatedAttention, stage 4 the plain Attention (no router).")
    G.add_state_dict(model.state_dict())
    G.add("in.x", x, "input images (B, 3, img_size, img_size)")
    G.add("out.logits", logits, "model(x) (B, num_classes)")
    G.add("mid.features", mids["mid.features"], "forward_features(x) (B, C4)")
    for i in range(4):
        G.add(f"mid.patch_embed{i + 1}", mids[f"mid.patch_embed{i + 1}"],
              f"patch_embed{i + 1}(x)[0]: conv + flatten + LayerNorm (B, N, C)")
        for j in range(VIT_MODEL["depths"][i]):
            G.add(f"mid.block{i + 1}.{j}", mids[f"mid.block{i + 1}.{j}"], f"output of block{i + 1}[{j}] (B, N, C)")
            G.add(f"mid.block{i + 1}.{j}.attn", mids[f"mid.block{i + 1}.{j}.attn"], "attention output (B, N, C)")
        G.add(f"mid.norm{i + 1}", mids[f"mid.norm{i + 1}"], f"norm{i + 1} output (B, N, C)")
    for n, b in GV.nonpersistent_buffers(model).items():
        G.add("buf." + n, b.float() if b.dtype == torch.float64 else b,
              "non-persistent buffer (NOT in state_dict; recomputed at construction)" +
              (" (bool stored as I64)" if b.dtype == torch.bool else ""))
    conf = {"model": dict(VIT_MODEL, moh=False), "batch": 2, "seed": seed,
            "official_call": "transnext.TransNeXt(norm_layer=partial(nn.LayerNorm, eps=model.norm_eps), "
                             "**{k: v for k, v in model.items() if k not in ('norm_eps', 'moh')}).eval()  "
                             "(DaiShiResearch/TransNeXt classification/)",
            "aggregated_attention_impl": "attention_native (swattention CUDA extension absent)"}
    G.write(os.path.join(out_dir, "vit_model_dense.safetensors"), conf, sources, rep, tol, {})
    print("vit dense: worst fp64-vs-fp32", tol["worst_fp64_vs_fp32"], "logits std", float(logits.std()))


def dit_manifests(C, GM, src, out_dir, sources):
    import re
    import torch
    sys.path.insert(0, src)
    import models  # facebookresearch/DiT models.py
    for name, fn in models.DiT_models.items():
        m = fn(input_size=32, num_classes=1000)
        sd = m.state_dict()
        cfgd = {"input_size": 32, "num_classes": 1000, "patch_size": m.patch_size, "in_channels": m.in_channels,
                "out_channels": m.out_channels, "learn_sigma": m.learn_sigma, "hidden_size": m.pos_embed.shape[-1],
                "depth": len(m.blocks), "mlp_ratio": 4.0, "class_dropout_prob": m.y_embedder.dropout_prob,
                "num_heads": [b.attn.num_heads for b in m.blocks], "head_dim": [b.attn.head_dim for b in m.blocks],
                "moh": False}
        obj = {"name": name, "family": "dit",
               "official_constructor": f"models.DiT_models['{name}'](input_size=32, num_classes=1000)  "
                                       "(facebookresearch/DiT)",
               "config": cfgd, "sources": sources, "num_tensors": len(sd),
               "num_params": int(sum(v.numel() for v in sd.values())), "state_dict": GM.entries(sd)}
        GM.write(os.path.join(out_dir, "dit_" + re.sub(r"[^A-Za-z0-9]+", "_", name[4:]).strip("_") + ".json"), obj)
        del m, sd
    sys.path.remove(src)
    del sys.modules["models"]


def transnext_manifests(C, GM, src, out_dir, sources):
    sys.path.insert(0, os.path.join(src, "classification"))
    import transnext
    for name in ["transnext_micro", "transnext_tiny", "transnext_small", "transnext_base"]:
        m = getattr(transnext, name)(img_size=224, num_classes=1000)
        sd = m.state_dict()
        blocks = [getattr(m, f"block{i + 1}") for i in range(4)]
        heads = [bl[0].attn.num_heads for bl in blocks]
        cfgd = {"img_size": 224, "pretrain_size": 224, "num_classes": 1000,
                "embed_dims": [getattr(m, f"norm{i + 1}").normalized_shape[0] for i in range(4)],
                "depths": m.depths, "num_heads": heads,
                "shared_head": heads, "routed_head": [0, 0, 0, 0],  # ours: a dense stage uses every head
                "attention_class": [type(bl[0].attn).__name__ for bl in blocks],
                "window_size": [getattr(bl[0].attn, "window_size", None) for bl in blocks],
                "sr_ratios": [getattr(bl[0].attn, "sr_ratio", 1) for bl in blocks],
                "norm_eps": blocks[0][0].norm1.eps, "qkv_bias": True, "patch_size": 4, "moh": False,
                "mlp_hidden": [bl[0].mlp.fc2.in_features for bl in blocks]}
        obj = {"name": name, "family": "transnext",
               "official_constructor": f"transnext.{name}(img_size=224, num_classes=1000)  (DaiShiResearch/TransNeXt)",
               "config": cfgd, "sources": sources, "num_tensors": len(sd),
               "num_params": int(sum(v.numel() for v in sd.values())), "state_dict": GM.entries(sd),
               "nonpersistent_buffers_at_img_size_224": GM.nonpersistent(m)}
        GM.write(os.path.join(out_dir, name + ".json"), obj)
        del m, sd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", required=True, help="the golden helpers folder (common.py, gen_dit_model.py, gen_vit.py)")
    ap.add_argument("--dit-src", required=True, help="checkout of facebookresearch/DiT")
    ap.add_argument("--transnext-src", required=True, help="checkout of DaiShiResearch/TransNeXt")
    ap.add_argument("--timm-src", required=True, help="checkout of pytorch-image-models (v1.0.28)")
    ap.add_argument("--out", default="tests/data/golden")
    a = ap.parse_args()
    for p in (a.gen, a.dit_src, a.transnext_src, a.timm_src):
        if not os.path.isdir(p):
            sys.exit(f"make-dense-goldens: folder not found: {p}")
    sys.path.insert(0, a.timm_src)
    sys.path.insert(0, a.gen)
    import common as C
    import gen_dit_model as GD
    import gen_vit as GV
    import gen_manifests as GM
    import torch
    torch.set_num_threads(1)  # gen_manifests sets every core at import; goldens are made on one (reproducible)
    sources = {"DiT": {"repo": "facebookresearch/DiT", "commit": git_rev(a.dit_src)},
               "TransNeXt": {"repo": "DaiShiResearch/TransNeXt", "commit": git_rev(a.transnext_src)},
               "timm": {"repo": "huggingface/pytorch-image-models", "commit": git_rev(a.timm_src)}}
    os.makedirs(a.out, exist_ok=True)
    dit_golden(C, GD, a.dit_src, a.out, sources)
    vit_golden(C, GV, a.transnext_src, a.out, sources)
    os.makedirs(os.path.join(a.out, "manifests"), exist_ok=True)
    dit_manifests(C, GM, a.dit_src, os.path.join(a.out, "manifests"), sources)
    transnext_manifests(C, GM, a.transnext_src, os.path.join(a.out, "manifests"), sources)
    print(json.dumps(sources))


if __name__ == "__main__":
    main()
