#!/usr/bin/env python3
"""Load run for moh-serve's POST /v1/classify: starts build/bin/moh-serve on the demo ViT (--port 0), sends
--requests raw-body classify requests from --clients threads (keep-alive connections), and reports throughput and
p50/p99 latency, plus the forward passes and mean batch size from /metrics. Runs each --max-batch value given in
turn (default: 16, then 1 = no batching) and writes the results as JSON (--out).

  scripts/serve-load.py                      # 2,000 requests, 8 clients, --max-batch 16 vs 1
  scripts/serve-load.py --requests 200 --max-batch 8
"""
import argparse, datetime, glob, http.client, json, os, platform, re, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("MOH_BUILD_DIR", os.path.join(ROOT, "build")), "bin")


def pictures(tmp):
    out = os.path.join(tmp, "pics")
    subprocess.run([os.path.join(BIN, "moh-generate"), "-q", "--weights", os.path.join(ROOT, "models/moh-dit-fmnist.safetensors"),
                    "--class", "all", "--steps", "20", "--seed", "5", "--device", "cpu", "--threads", "1", "--out", out], check=True)
    return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(out, "*.png")))]


def start_server(args):
    p = subprocess.Popen([os.path.join(BIN, "moh-serve"), "--port", "0", "--device", "cpu", "--vit",
                          os.path.join(ROOT, "models/moh-vit-fmnist.safetensors")] + args,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        p.kill()
        sys.exit("moh-serve did not start: " + line)
    return p, int(m.group(1))


def run(port, pics, requests, clients):
    lat, errors, lock, counter = [], [], threading.Lock(), iter(range(requests))

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/classify?topk=1", body=pics[i % len(pics)], headers={"Content-Type": "image/png"})
                r = conn.getresponse()
                body = r.read()
                ok = r.status == 200 and json.loads(body)["results"][0]["ok"]
            except (http.client.HTTPException, OSError) as e:
                ok, body = False, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            dt = time.perf_counter() - t0
            with lock:
                (lat if ok else errors).append(dt if ok else body[:200])
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else None
    return {"requests": requests, "ok": len(lat), "errors": len(errors), "first_error": errors[0].decode(errors="replace") if errors else None,
            "seconds": round(wall, 3), "requests_per_second": round(len(lat) / wall, 1),
            "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(lat[-1] * 1000, 2) if lat else None}


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search("\n" + name + r" ([0-9.e+-]+)", text)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--max-batch", type=int, nargs="+", default=[16, 1])
    ap.add_argument("--batch-window-ms", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="moh-serve --threads (0: its default)")
    ap.add_argument("--out", default="", help="write the results as JSON here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pics = pictures(tmp)
        results = []
        for mb in a.max_batch:
            extra = ["--max-batch", str(mb), "--batch-window-ms", str(a.batch_window_ms)]
            if a.threads: extra += ["--threads", str(a.threads)]
            p, port = start_server(extra)
            try:
                run(port, pics, min(100, a.requests), a.clients)  # warm-up (not counted)
                passes0, images0 = metric(port, "moh_classify_forward_passes_total"), metric(port, "moh_classify_images_total")
                r = run(port, pics, a.requests, a.clients)
                passes = metric(port, "moh_classify_forward_passes_total") - passes0
                images = metric(port, "moh_classify_images_total") - images0
                r.update({"max_batch": mb, "batch_window_ms": a.batch_window_ms, "clients": a.clients,
                          "forward_passes": int(passes), "mean_batch": round(images / max(1, passes), 2)})
                results.append(r)
                print(json.dumps(r), flush=True)
            finally:
                p.terminate()
                p.wait(timeout=30)
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc = {"what": "moh-serve POST /v1/classify load run (scripts/serve-load.py), demo ViT moh-vit-fmnist, CPU fp32",
           "git_revision": rev, "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%MZ"),
           "machine": f"{platform.node()} {os.cpu_count()} CPUs (shared VM)", "results": results}
    if a.out:
        with open(a.out, "w") as f: json.dump(doc, f, indent=2); f.write("\n")


if __name__ == "__main__":
    main()
