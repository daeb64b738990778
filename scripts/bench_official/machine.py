"""Machine and run metadata for the JSON: CPU model and flags, BLAS, library versions, environment, git."""
import contextlib
import ctypes
import os
import platform
import re
import subprocess
import sys
import time

from bench_official.cli import REPO
from bench_official.failures import first_line


CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")


ENV_PREFIXES = ("OMP_", "OPENBLAS_", "GOTO", "MKL_", "DNNL_", "ONEDNN_", "KMP_", "GOMP_", "ATEN_", "TORCH_",
                "TORCHINDUCTOR_", "ORT_", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH")


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
