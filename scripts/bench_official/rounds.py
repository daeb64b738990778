"""Alternating rounds: the official cases in every mode, then moh-bench --against on the same weights; the
summary table of medians."""
import json
import os
import statistics
import subprocess
import sys
import time

from bench_official.cases import build_dit, build_vit
from bench_official.loading import setup_imports, setup_py2
from bench_official.machine import run_meta
from bench_official.modes import run_mode


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
               "--input-seed", str(a.input_seed),
               "--against", src, "--json", dst] + only
        print("+ " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
        with open(dst) as f:
            outs.setdefault(sub, []).extend(json.load(f)[sub])
    if "autocast" in a.modes:  # ours in mixed precision (bf16 GEMMs) beside the official CPU autocast bf16
        for i, (sub, only) in enumerate(jobs):
            dst = os.path.join(round_dir, f"ours-mixed-{r}-{i}.json")
            cmd = [a.ours, sub, "--device", "cpu", "--dtype", "mixed", "--warmup", str(a.warmup), "--iters",
                   str(a.iters), "--input-seed", str(a.input_seed), "--json", dst] + only
            print("+ " + " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
            with open(dst) as f:
                outs.setdefault("mixed", {}).setdefault(sub, []).extend(json.load(f)[sub])
    return outs


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
                for src, dst in (("rel_err_vs_fp32", "ours_rel_err"), ("rel_rms_vs_fp32", "ours_rel_rms")):
                    if mine and src in mine[-1]:
                        row[dst] = mine[-1][src]
                last = ok[-1] if ok else entries[0]
                for k in ("rel_err", "rel_rms", "max_abs_diff", "compile_s", "export_s", "session_s", "exporter", "opset",
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
          f"(> 1: ours faster); rel err = max|out - eager fp32| / max|eager fp32|, rms = rms(out - eager fp32) / "
          f"rms(eager fp32)", file=sys.stderr)
    print(f"{'case':<26} {'batch':>5} {'mode':<9} {'official ms':>12} {'img/s':>7} {'ours ms':>9} {'ours/official':>13} "
          f"{'rel err':>8} {'ours err':>8} {'rms':>8} {'ours rms':>8}  note", file=sys.stderr)
    for row in by_mode:
        ok = row["status"] == "ok"
        off = f"{row['official_ms']:.1f}" if ok else row["status"]
        ips = f"{row['official_images_per_second']:.2f}" if "official_images_per_second" in row else "-"
        ours = f"{row['ours_ms']:.1f}" if row["ours_ms"] else "-"
        sp = f"{row['ours_over_official']:.2f}x" if "ours_over_official" in row else "-"
        err = f"{row['rel_err']:.1e}" if "rel_err" in row else "-"
        our_err = f"{row['ours_rel_err']:.1e}" if "ours_rel_err" in row else "-"
        rms = f"{row['rel_rms']:.1e}" if "rel_rms" in row else "-"
        our_rms = f"{row['ours_rel_rms']:.1e}" if "ours_rel_rms" in row else "-"
        if ok:
            note = ", ".join(f"{k} {row[k]:.1f} s" for k in ("compile_s", "export_s") if k in row)
            if "exporter" in row:
                note += f" ({row['exporter']} exporter, opset {row.get('opset')})"
        else:
            note = row.get("reason") or row.get("why") or row.get("error", "")
        print(f"{row['model']:<26} {row['batch']:>5} {row['mode']:<9} {off:>12} {ips:>7} {ours:>9} {sp:>13} {err:>8} {our_err:>8} {rms:>8} {our_rms:>8}  "
              f"{note[:160]}", file=sys.stderr)
    meta = {k: v for k, v in first.items() if k not in ("vit", "dit")}
    return {"side_by_side": table, "side_by_side_modes": by_mode, "rounds": rounds, **meta}
