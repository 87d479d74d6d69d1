#!/usr/bin/env python3
"""What masking secret values costs a log-heavy run (stdlib only).

Two pipelines print the same lines, every tenth one holding a secret-looking
value. `plain` lists no secrets, so nothing is masked; `masked` lists five
stored secrets, that value among them, so each line is searched for all five
and every tenth is rewritten. Both run N times, alternating, in one server;
each time is trigger → the log stream's end event. Prints min/median/max and
the ratio of the medians, and checks the masked log holds `***` and never the
value.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)

SECRET = "sk_live_bench_secret_value_0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def run_once(base, pipeline):
    t0 = time.perf_counter()
    run_id = post(base, f"/api/pipelines/{pipeline}/run", {})["id"]
    with urllib.request.urlopen(base + f"/api/runs/{run_id}/logs/stream") as stream:
        for raw in stream:
            if raw.startswith(b"event: end"):
                break
    elapsed = time.perf_counter() - t0
    with urllib.request.urlopen(base + f"/api/runs/{run_id}") as r:
        run = json.load(r)
    if run["status"] != "SUCCESS":
        sys.exit(f"benchmark run failed: {run}")
    return elapsed, run_id


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="ff-bench-mask-")
    main_py = (
        "import sys\n"
        f"n = {args.lines}\n"
        "w = sys.stdout.write\n"
        "for i in range(n):\n"
        f"    w(f'row {{i}} status=ok user=alice token={SECRET} done\\n' if i % 10 == 0 else f'row {{i}} status=ok user=alice bytes=4096 done\\n')\n"
    )
    for name, meta in [("plain", {}), ("masked", {"secrets": ["S1", "S2", "S3", "S4", "S5"]})]:
        d = os.path.join(root, "pipelines", name)
        os.makedirs(d)
        with open(os.path.join(d, "main.py"), "w") as f:
            f.write(main_py)
        with open(os.path.join(d, "pipeline.json"), "w") as f:
            json.dump(meta, f)
    port = free_port()
    env = dict(os.environ, DATA_DIR=os.path.join(root, "data"), PIPELINES_DIR=os.path.join(root, "pipelines"),
               PORT=str(port), WORKER_BASE_IMAGE=args.image, RUST_LOG="warn")
    ca = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.isfile(ca):
        env["WORKER_CA_BUNDLE"] = ca
    fastflow_auth.sign_in(args.binary, env)
    server = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=0.5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("server did not start")
                time.sleep(0.05)
        for i, value in enumerate([SECRET, "another-secret-1", "another-secret-2", "another-secret-3", "x" * 40]):
            post(base, "/api/secrets", {"key": f"S{i + 1}", "value": value})
        run_once(base, "plain")  # warm the image and page cache once
        times = {"plain": [], "masked": []}
        last = {}
        for _ in range(args.n):
            for name in ("plain", "masked"):
                t, run_id = run_once(base, name)
                times[name].append(t)
                last[name] = run_id
        with urllib.request.urlopen(base + f"/api/runs/{last['masked']}/logs") as r:
            log = r.read().decode()
        if SECRET in log or "token=*** done" not in log:
            sys.exit("the masked log is wrong")
        print(f"{args.lines} lines per run, every tenth holding a secret; {args.n} runs each")
        for name, label in [("plain", "no secrets listed (nothing masked)"), ("masked", "5 secrets listed (masked)")]:
            xs = times[name]
            print(f"{label:<38} min {min(xs):6.2f} s   median {statistics.median(xs):6.2f} s   max {max(xs):6.2f} s")
        ratio = statistics.median(times["masked"]) / statistics.median(times["plain"])
        print(f"ratio masked / plain (medians): {ratio:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
