#!/usr/bin/env python3
"""Writes the PyTorch-checkpoint fixtures under tests/data/torch_ckpt/ (committed with this script).

Run with Debian's python3 + python3-torch (1.13):  /usr/bin/python3 scripts/make-torch-fixtures.py

Good fixtures (torch.save zip files) come with a twin NAME.expected.safetensors holding the tensors the C++ reader
must produce (names after layout selection and prefix stripping, contiguous bytes): tests/test_torch_checkpoint.cpp
compares them bit for bit. The safetensors twins are written by hand here (there is no safetensors package): 8-byte
little-endian header length, JSON header, raw data.

Hostile fixtures are raw bytes assembled here (hand-written pickles, cut or patched zips). They are NEVER loaded in
Python: some of them would run os.system / eval if unpickled.
"""
import argparse
import collections
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "torch_ckpt")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def path(name):
    return os.path.join(OUT, name)


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def write_safetensors(name, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for key, t in tensors.items():
        b = tensor_bytes(t)
        header[key] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path(name), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def save_pair(stem, obj, expected):
    """torch.save(obj) as STEM and the tensors the reader must find as STEM.expected.safetensors."""
    torch.save(obj, path(stem))
    write_safetensors(stem + ".expected.safetensors", expected)


def rnd(*shape, dtype=torch.float32, gen=None):
    return torch.randn(*shape, generator=gen).to(dtype)


def small_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(collections.OrderedDict([
        ("fc1", torch.nn.Linear(4, 3)), ("norm", torch.nn.LayerNorm(3)), ("bn", torch.nn.BatchNorm1d(3)),
        ("fc2", torch.nn.Linear(3, 2, bias=False))]))


# ------------------------------------------------------------------------------------------------ good files
def good_fixtures():
    # Bare state dict of a real module (Parameters, BatchNorm's int64 num_batches_tracked).
    m = small_model(0)
    sd = collections.OrderedDict((k, v.clone()) for k, v in m.state_dict().items())  # m is trained below
    save_pair("bare.pth", sd, dict(sd))

    # MoH-ViT main.py layout: model + optimizer + scheduler + scaler + argparse.Namespace args.
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m(torch.randn(5, 4)).sum().backward()
    opt.step()
    args = argparse.Namespace(model="moh_transnext_small_80", lr=1e-3, epochs=300, drop_path=0.3, input_size=224,
                              data_path="/data/imagenet", amp=True, resume="", layer_scale=None, betas=[0.9, 0.999])
    train = {"model": m.state_dict(), "optimizer": opt.state_dict(),
             "lr_scheduler": {"base_lrs": [1e-3], "last_epoch": 12}, "epoch": 12,
             "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 7}, "args": args,
             "max_accuracy": 81.25}
    save_pair("train_vit.pth", train, dict(m.state_dict()))

    # MoH-DiT train.py layout: model, ema, opt, args -> the ema weights; --key model -> the model weights.
    ema = small_model(1)
    dit = {"model": m.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
           "args": argparse.Namespace(model="DiT-XL/2", image_size=256, num_classes=1000, global_seed=0)}
    save_pair("train_dit.pt", dit, dict(ema.state_dict()))  # also shares no storage with "model"
    write_safetensors("train_dit.pt.model.expected.safetensors", dict(m.state_dict()))

    # DistributedDataParallel and torch.compile wrappers (also combined).
    save_pair("ddp.pth", {"model": {"module." + k: v for k, v in sd.items()}}, dict(sd))
    save_pair("compiled.pth", {"_orig_mod." + k: v for k, v in sd.items()}, dict(sd))
    save_pair("ddp_compiled.pth", {"module._orig_mod." + k: v for k, v in sd.items()}, dict(sd))

    # Every dtype, fp16 and bf16 storages among them.
    g = torch.Generator().manual_seed(3)
    dt = collections.OrderedDict([
        ("half", rnd(3, 5, dtype=torch.float16, gen=g)), ("bf16", rnd(4, 3, dtype=torch.bfloat16, gen=g)),
        ("f64", rnd(2, 2, dtype=torch.float64, gen=g)), ("i64", torch.arange(-3, 4, dtype=torch.int64)),
        ("i32", torch.tensor([1, -2, 2**31 - 1], dtype=torch.int32)), ("i16", torch.tensor([-5, 7], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127], dtype=torch.int8)), ("u8", torch.tensor([0, 255, 9], dtype=torch.uint8)),
        ("flags", torch.tensor([True, False, True])), ("scalar", torch.tensor(2.5)),
        ("param", torch.nn.Parameter(rnd(2, 3, gen=g)))])  # a Parameter: _rebuild_parameter
    save_pair("dtypes.pth", {"state_dict": dt}, dict(dt))

    # Views with offsets and strides into one shared storage (stored once by torch.save).
    base = torch.arange(64, dtype=torch.float32) * 0.5
    grid = base.view(8, 8)
    views = collections.OrderedDict([
        ("base", base), ("slice", base[8:24].view(4, 4)), ("column", grid[:, 1]), ("transposed", grid.t()),
        ("every_other", grid[1::2, ::3]), ("one", base[5:6]), ("scalar_view", base[10]), ("empty", base[3:3]),
        ("broadcast", base[7:8].expand(3, 4))])
    save_pair("views.pth", views, {k: v.clone() for k, v in views.items()})

    # The same bare dict with every entry deflated and no alignment padding (python's zipfile): exercises the
    # inflate and copy paths.
    rewrite_zip("bare.pth", "deflated.pth", compression=zipfile.ZIP_DEFLATED)
    write_safetensors("deflated.pth.expected.safetensors", dict(sd))


# ------------------------------------------------------------------------------------------------ zip surgery
def zip_entries(name):
    with zipfile.ZipFile(path(name)) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(name, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path(name), "w", compression=compression) as z:
        for n, data in entries:
            z.writestr(zipfile.ZipInfo(n, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)


def rewrite_zip(src, dst, compression=zipfile.ZIP_STORED, drop=None, replace=None):
    out = []
    for n, data in zip_entries(src):
        if drop and n.endswith(drop):
            continue
        if replace and n.endswith(replace[0]):
            data = replace[1](data)
        out.append((n, data))
    write_zip(dst, out, compression)


# ------------------------------------------------------------------------------------------------ pickle assembly
# Only what the hostile fixtures need; opcodes per Python's pickletools.
def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if -2**31 <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    b = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def p_tuple(*items):
    return b"(" + b"".join(items) + b"t"


def p_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def p_tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    pid = p_tuple(p_str("storage"), p_global("torch", storage), p_str(key), p_str("cpu"), p_int(numel))
    args = p_tuple(pid + b"Q", p_int(offset), p_tuple(*map(p_int, size)), p_tuple(*map(p_int, stride)), b"\x89",
                   p_global("collections", "OrderedDict") + b")R")
    return p_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def p_dict(items):
    return b"}(" + b"".join(p_str(k) + v for k, v in items) + b"u"


def proto(body):
    return b"\x80\x02" + body + b"."


def torch_zip(name, pkl, storages, compression=zipfile.ZIP_STORED):
    entries = [("archive/data.pkl", pkl)] + [("archive/data/" + k, v) for k, v in storages.items()]
    entries.append(("archive/version", b"3\n"))
    write_zip(name, entries, compression)


def hostile_fixtures():
    four = struct.pack("<4f", 1, 2, 3, 4)
    good = p_dict([("w", p_tensor("0", 4, 0, (2, 2), (2, 1)))])
    # Sanity anchor: a hand-assembled file that is valid (so the hostile ones differ in one thing only).
    torch_zip("hand_valid.pth", proto(good), {"0": four})
    write_safetensors("hand_valid.pth.expected.safetensors", {"w": torch.tensor([[1., 2.], [3., 4.]])})

    data = open(path("train_vit.pth"), "rb").read()
    with open(path("bad_truncated.pth"), "wb") as f:  # cut in the middle: no central directory
        f.write(data[: len(data) // 2])
    cd = data.rfind(b"PK\x01\x02")  # last central-directory entry: break its signature
    with open(path("bad_central_dir.pth"), "wb") as f:
        f.write(data[:cd] + b"PK\x01\x09" + data[cd + 4:])
    eocd = data.rfind(b"PK\x05\x06")  # central directory offset pointing past the end of the file
    with open(path("bad_cd_offset.pth"), "wb") as f:
        f.write(data[: eocd + 16] + struct.pack("<I", len(data) + 1000) + data[eocd + 20:])
    rewrite_zip("bare.pth", "bad_missing_storage.pth", drop="/data/0")
    rewrite_zip("bare.pth", "bad_truncated_storage.pth", replace=("/data/0", lambda b: b[: len(b) // 2]))

    torch_zip("bad_view_past_storage.pth", proto(p_dict([("w", p_tensor("0", 4, 1, (2, 2), (2, 1)))])), {"0": four})
    torch_zip("bad_shape_overflow.pth", proto(p_dict([("w", p_tensor("0", 4, 0, (2**40, 2**40), (0, 0)))])), {"0": four})
    torch_zip("bad_negative_stride.pth", proto(p_dict([("w", p_tensor("0", 4, 0, (2,), (-1,)))])), {"0": four})
    torch_zip("bad_memo.pth", proto(b"}q\x00(" + p_str("w") + b"h\x07u"), {})  # BINGET 7: never PUT
    # 100k nested lists under 'args' next to valid weights; deflated, so the fixture stays tiny.
    deep = b"]" * 100000 + b"a" * 99999
    torch_zip("bad_deep_nesting.pth", proto(p_dict([("model", good), ("args", deep)])), {"0": four},
              compression=zipfile.ZIP_DEFLATED)
    # Payloads that would run code if unpickled by Python. Never load these.
    torch_zip("bad_os_system.pth", proto(p_dict([("model", good), ("x", p_global("os", "system") +
                                                                   p_tuple(p_str("echo pwned")) + b"R")])), {"0": four})
    torch_zip("bad_eval.pth", proto(p_global("builtins", "eval") + p_tuple(p_str("print('pwned')")) + b"R"), {"0": four})
    stack_global = b"\x80\x04" + b"\x8c\x08builtins\x8c\x04exec\x93" + b"\x8c\x0cprint('hi')\x85R."
    torch_zip("bad_exec_stack_global.pth", stack_global, {"0": four})
    # Not a torch.save zip: a zip without data.pkl, and a legacy (pre-1.6) torch file.
    write_zip("bad_no_pickle.pth", [("readme.txt", b"hello")])
    torch.save({"w": torch.ones(2)}, path("bad_legacy.pth"), _use_new_zipfile_serialization=False)
    # Whole module pickled (torch.save(model)): its class is not on the allow-list.
    torch.save(torch.nn.Linear(2, 2), path("bad_whole_module.pth"))


def fuzz_seeds():
    """data.pkl of some good fixtures plus hand-made pickles, as seeds for tests/fuzz/fuzz_torch_pickle.cpp."""
    seeds = os.path.join(OUT, "..", "..", "fuzz", "corpus_pickle")
    os.makedirs(seeds, exist_ok=True)
    for stem in ["bare.pth", "train_vit.pth", "train_dit.pt", "dtypes.pth", "views.pth"]:
        for n, data in zip_entries(stem):
            if n.endswith("/data.pkl"):
                open(os.path.join(seeds, "torch_" + stem.replace(".", "_")), "wb").write(data)
    hand = {
        "hand_valid": proto(p_dict([("w", p_tensor("0", 4, 0, (2, 2), (2, 1)))])),
        "hand_view_past": proto(p_dict([("w", p_tensor("0", 4, 1, (2, 2), (2, 1)))])),
        "hand_memo": proto(b"}q\x00(" + p_str("w") + b"h\x07u"),
        "hand_eval": proto(p_global("builtins", "eval") + p_tuple(p_str("1")) + b"R"),
        "hand_deep": proto(b"]" * 300 + b"a" * 299),
        "hand_proto4": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x86\x94h\x00.",
    }
    for k, v in hand.items():
        open(os.path.join(seeds, k), "wb").write(v)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    good_fixtures()
    hostile_fixtures()
    fuzz_seeds()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
