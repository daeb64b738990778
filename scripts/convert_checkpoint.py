#!/usr/bin/env python3
"""Convert official MoH checkpoints (torch pickles) to safetensors with the official state_dict key names.

Handles what the official code writes and what is published for it:
  * MoH-DiT train.py checkpoints  {"model", "ema", "opt", "args": argparse.Namespace}  -> the "ema" weights
    (what download.py find_model / sample.py use); bare DiT state dicts as they are.
  * MoH-ViT (MoH-TransNeXt, DeiT-style main.py) checkpoints {"model", "optimizer", "lr_scheduler", "epoch",
    "args", ...} -> the "model" weights.
  * SD VAE files: diffusers diffusion_pytorch_model.bin (legacy query/key/value/proj_attn names), CompVis/ldm
    .ckpt files (tensors under "state_dict"; loss.* dropped) and full Stable Diffusion checkpoints (only the
    first_stage_model.* part is kept, prefix removed). Names are kept in their dialect: the C++ loader
    (dit/vae.h) detects and maps all three.
  * DataParallel / torch.compile prefixes "module." and "_orig_mod." are removed.
  * --key picks any other entry of a training dict.

Security: a torch pickle can run arbitrary code when loaded with plain pickle / torch.load(weights_only=False).
This script reads the zip archive itself and unpickles data.pkl with a RESTRICTED unpickler: only OrderedDict,
torch.Size, dtypes, storage types and a few harmless builtins resolve to real objects, tensor rebuilds are our own
as_strided views of the raw storage bytes, and every other global (argparse.Namespace, numpy scalars, pathlib
paths, anything else) becomes an inert placeholder that only records its arguments - nothing named by the file
is ever called. (torch.load's pickle_module argument cannot be used for this: torch 1.13 ignores it unless
weights_only=True, and weights_only=True rejects argparse.Namespace.) Legacy pre-1.6 files go through
torch.load(weights_only=True) when available. --trust-pickle falls back to plain torch.load for files you trust.
Convert once, then ship and load the .safetensors (which holds no code).

Needs only PyTorch (safetensors is written by this script; no `safetensors` package).

Examples:
  convert_checkpoint.py MoH-DiT-XL-90.pt moh-dit-xl-2-90.safetensors --name MoH-DiT-XL/2-90
  convert_checkpoint.py moh_transnext_small_80.pth moh-vit-s-80.safetensors
  convert_checkpoint.py diffusion_pytorch_model.bin sd-vae-ft-ema.safetensors --kind vae
  convert_checkpoint.py v1-5-pruned-emaonly.ckpt sd-vae.safetensors --kind vae --decoder-only
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

try:
    import torch
except ImportError:  # pragma: no cover - message for users without PyTorch
    sys.exit("convert_checkpoint.py needs PyTorch (pip install torch, or apt install python3-torch)")


# ---------------------------------------------------------------------------------------------- restricted load
class Opaque:
    """Inert stand-in for a global the restricted unpickler does not trust (e.g. argparse.Namespace)."""

    _qualname = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *args, **kwargs):  # an Opaque used as a callable inside REDUCE
        return type(self)(*args, **kwargs)

    def as_json(self):
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
            state = state[1]
        if isinstance(state, dict):
            return {str(k): _jsonable(v) for k, v in state.items()}
        return {"class": self._qualname, "args": _jsonable(self.args), "state": _jsonable(state)}


def _opaque_class(module, name):
    return type(name, (Opaque,), {"_qualname": module + "." + name})


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, Opaque):
        return v.as_json()
    return str(v)


# Storage classes named in torch pickles -> element dtype of the raw bytes in data/<key>.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


# Our own versions of torch's tensor-rebuild functions: storages are flat tensors here, so a view is as_strided.
def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if storage.numel() == 0:
        return torch.empty(tuple(size), dtype=storage.dtype)
    return storage.as_strided(tuple(size), tuple(stride), storage_offset)


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    return func(*args)


_REAL = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in _REAL (plus storage types and torch dtypes); everything else -> Opaque."""

    def __init__(self, f, read_record=None):
        super().__init__(f, encoding="utf-8")
        self._read_record = read_record
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in _REAL:
            return _REAL[(module, name)]
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch":
            obj = getattr(torch, name, None)
            if isinstance(obj, (torch.dtype, torch.layout, torch.memory_format)):
                return obj
        return _opaque_class(module, name)

    def persistent_load(self, saved_id):
        # ('storage', storage_type, key, location, numel): raw little-endian bytes in <archive>/data/<key>.
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError("unsupported persistent id %r" % (saved_id,))
        storage_type, key = saved_id[1], str(saved_id[2])
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else storage_type
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError("unknown storage type %r" % (storage_type,))
        if key not in self._storages:
            raw = bytearray(self._read_record(key))
            if len(raw) == 0:
                self._storages[key] = torch.empty(0, dtype=dtype)
            else:
                flat = torch.frombuffer(raw, dtype=torch.uint8)
                self._storages[key] = flat.view(dtype) if dtype != torch.uint8 else flat
        return self._storages[key]


def load_checkpoint(path, trust=False):
    """Loads a torch checkpoint. Default: the zip format (torch >= 1.6) through RestrictedUnpickler, reading the
    archive directly (torch.load cannot take a custom unpickler reliably across versions). trust=True: plain
    torch.load(weights_only=False), which executes whatever the pickle says - only for files you trust."""
    if trust:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except TypeError:
            return torch.load(path, map_location="cpu")
    if not zipfile.is_zipfile(path):
        try:  # legacy (pre-1.6) format: torch's own weights-only unpickler, when this torch has one
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SystemExit("%s is a legacy (non-zip) torch file that the safe loader cannot read (%s); "
                             "re-run with --trust-pickle if you trust its origin" % (path, e))
    with zipfile.ZipFile(path) as zf:
        pkls = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkls:
            raise SystemExit("%s is a zip file without data.pkl: not a torch checkpoint" % path)
        prefix = pkls[0][: -len("data.pkl")]
        if prefix + "byteorder" in zf.namelist() and zf.read(prefix + "byteorder").strip() != b"little":
            raise SystemExit("%s stores big-endian tensors, which this converter does not handle" % path)
        up = RestrictedUnpickler(io.BytesIO(zf.read(pkls[0])), read_record=lambda k: zf.read(prefix + "data/" + k))
        return up.load()


# ---------------------------------------------------------------------------------------------- selection
def is_tensor_dict(obj):
    return isinstance(obj, dict) and len(obj) > 0 and all(torch.is_tensor(v) for v in obj.values())


def guess_kind(keys):
    keys = list(keys)
    if any(k.startswith(("first_stage_model.", "post_quant_conv.", "decoder.conv_in.", "encoder.conv_in."))
           for k in keys):
        return "vae"
    if any(k.split(".", 1)[-1].startswith(("x_embedder.", "t_embedder.", "y_embedder.")) or
           k.startswith(("x_embedder.", "t_embedder.")) for k in keys):
        return "dit"
    if any(k.startswith(("patch_embed1.", "block1.", "module.patch_embed1.")) for k in keys):
        return "vit"
    return "unknown"


def all_keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            if isinstance(v, dict):
                for sub in all_keys(v):
                    yield sub


def select_state_dict(ckpt, kind, key):
    """Returns (state_dict, which entry was used, args or None)."""
    if not isinstance(ckpt, dict):
        raise SystemExit("checkpoint is a %s, not a dict of tensors or a training dict" % type(ckpt).__name__)
    args = ckpt.get("args") if "args" in ckpt else None
    if key is not None:
        if key not in ckpt:
            raise SystemExit("--key %r is not in the checkpoint; top-level keys: %s" % (key, sorted(map(str, ckpt))))
        return ckpt[key], key, args
    if is_tensor_dict(ckpt):
        return ckpt, "(bare state dict)", None
    order = {"dit": ["ema", "model", "state_dict"],    # download.py find_model: "ema" when present
             "vit": ["model", "model_ema", "state_dict"],  # DeiT/TransNeXt main.py saves "model"
             "vae": ["state_dict", "model"]}.get(kind, ["ema", "model", "state_dict"])
    for k in order:
        if k in ckpt and isinstance(ckpt[k], dict):
            return ckpt[k], k, args
    raise SystemExit("cannot find the weights in this checkpoint (top-level keys: %s); pass --key NAME"
                     % sorted(map(str, ckpt)))


def clean_keys(sd, kind, decoder_only):
    out = collections.OrderedDict()
    skipped = []
    full_sd = kind == "vae" and any(k.startswith("first_stage_model.") for k in sd)
    for k, v in sd.items():
        if not torch.is_tensor(v):
            skipped.append(k)
            continue
        if full_sd:
            if not k.startswith("first_stage_model."):
                continue
            k = k[len("first_stage_model."):]
        for p in ("module.", "_orig_mod."):
            while k.startswith(p):
                k = k[len(p):]
        if kind == "vae" and (k.startswith("loss.") or (decoder_only and k.startswith(("encoder.", "quant_conv.")))):
            continue
        if k in out:
            raise SystemExit("two tensors map to the same key %r after removing prefixes" % k)
        out[k] = v
    return out, skipped


# ---------------------------------------------------------------------------------------------- safetensors
_DTYPES = {
    torch.float64: ("F64", torch.int64), torch.float32: ("F32", torch.int32), torch.float16: ("F16", torch.int16),
    torch.bfloat16: ("BF16", torch.int16), torch.int64: ("I64", torch.int64), torch.int32: ("I32", torch.int32),
    torch.int16: ("I16", torch.int16), torch.int8: ("I8", torch.int8), torch.uint8: ("U8", torch.uint8),
    torch.bool: ("BOOL", torch.uint8),
}


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    _, as_int = _DTYPES[t.dtype]
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    elif t.dtype != as_int:
        t = t.view(as_int)  # same element size: reinterpret the bits (works for bf16, which numpy lacks)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    """Writes the safetensors format (8-byte LE header size, JSON header padded to 8, raw LE data), atomically."""
    if sys.byteorder != "little":
        raise SystemExit("this converter writes little-endian data and must run on a little-endian machine")
    header, offset = {}, 0
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise SystemExit("tensor %r has dtype %s, which safetensors cannot hold here" % (name, t.dtype))
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * ((8 - len(blob) % 8) % 8)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for t in tensors.values():
                f.write(tensor_bytes(t))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("input", help="official checkpoint (.pt/.pth/.bin/.ckpt)")
    ap.add_argument("output", help="output .safetensors")
    ap.add_argument("--kind", choices=["auto", "dit", "vit", "vae"], default="auto",
                    help="model family (default: guessed from the key names)")
    ap.add_argument("--key", help="take the weights from this top-level entry (e.g. model, ema, state_dict)")
    ap.add_argument("--name", help="model name stored in the metadata (default: args.model when present)")
    ap.add_argument("--dtype", choices=["keep", "fp32", "fp16", "bf16"], default="keep",
                    help="cast floating-point tensors (default: keep)")
    ap.add_argument("--decoder-only", action="store_true", help="VAE: drop encoder.* and quant_conv.*")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="load with plain torch.load(weights_only=False): runs code from the file; trusted files only")
    ap.add_argument("--vae-config", help="VAE: diffusers config.json to record as metadata 'vae_config'")
    a = ap.parse_args(argv)

    if not os.path.isfile(a.input):
        raise SystemExit("input checkpoint %r does not exist" % a.input)
    ckpt = load_checkpoint(a.input, trust=a.trust_pickle)
    kind = a.kind if a.kind != "auto" else guess_kind(all_keys(ckpt))
    sd, used, args = select_state_dict(ckpt, kind, a.key)
    if not isinstance(sd, dict):
        raise SystemExit("entry %r is a %s, not a state dict" % (used, type(sd).__name__))
    if kind == "unknown":
        kind = guess_kind(sd.keys())
    sd, skipped = clean_keys(sd, kind, a.decoder_only)
    if not sd:
        raise SystemExit("no tensors found in entry %r" % used)
    if a.dtype != "keep":
        target = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
        sd = collections.OrderedDict((k, v.to(target) if v.is_floating_point() else v) for k, v in sd.items())

    args_json = args.as_json() if isinstance(args, Opaque) else _jsonable(args) if args is not None else None
    name = a.name or (args_json.get("model") if isinstance(args_json, dict) else None) or os.path.basename(a.input)
    meta = {"format": "pt", "model_name": name, "kind": kind, "source_file": os.path.basename(a.input),
            "source_entry": used, "converter": "moh scripts/convert_checkpoint.py"}
    if args_json is not None:
        meta["args"] = json.dumps(args_json, sort_keys=True)
    if a.vae_config:
        with open(a.vae_config) as f:
            meta["vae_config"] = json.dumps(json.load(f))
    write_safetensors(a.output, sd, meta)
    n = sum(v.numel() for v in sd.values())
    print("wrote %s: %d tensors, %d values, kind %s, from entry %s%s"
          % (a.output, len(sd), n, kind, used, (" (skipped non-tensors: %s)" % skipped[:5]) if skipped else ""))


if __name__ == "__main__":
    main()
