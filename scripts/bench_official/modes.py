"""The official code's run modes: eager fp32, torch.compile, CPU autocast bf16, ONNX Runtime."""
import contextlib
import os
import re
import sys
import time

from bench_official.cases import rel_error, time_it
from bench_official.failures import failure, first_line


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
