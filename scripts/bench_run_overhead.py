#!/usr/bin/env python3
"""Run-overhead, start-up and memory benchmark for Fast-Flow (stdlib only).

Measured in one run, on the same machine and image:
  * N trivial runs triggered over HTTP until finished (end event of the SSE log
    stream) vs N bare `docker run --rm IMAGE python3 -c pass`;
  * N runs of a pipeline with requirements.txt (warm uv cache) vs the equivalent
    `docker run --rm ... uv run --no-project --with-requirements ...`;
  * server start-up time until /health answers, and idle RSS, with 100 pipelines.
Prints min/median/max and the ratios of the medians.
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


def fmt(name, xs):
    lo, med, hi = stats(xs)
    return f"{name:<44} min {lo*1000:7.1f} ms   median {med*1000:7.1f} ms   max {hi*1000:7.1f} ms"


def write_pipeline(root, name, main, reqs=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "main.py"), "w") as f:
        f.write(main)
    if reqs:
        with open(os.path.join(d, "requirements.txt"), "w") as f:
            f.write(reqs)


def wait_health(base, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/health", timeout=0.5) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.002)
    return False


def run_over_http(base, pipeline):
    """Seconds from the trigger request to the stream's end event; asserts success."""
    t0 = time.perf_counter()
    req = urllib.request.Request(base + f"/api/pipelines/{pipeline}/run", data=b"{}", method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        run_id = json.load(r)["id"]
    with urllib.request.urlopen(base + f"/api/runs/{run_id}/logs/stream") as stream:
        for raw in stream:
            if raw.startswith(b"event: end"):
                break
    elapsed = time.perf_counter() - t0
    with urllib.request.urlopen(base + f"/api/runs/{run_id}") as r:
        run = json.load(r)
    if run["status"] != "SUCCESS":
        sys.exit(f"benchmark run failed: {run}")
    return elapsed


def docker_run(args):
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fastflow-bench-")
    pipelines = os.path.join(work, "pipelines")
    write_pipeline(pipelines, "trivial", "pass\n")
    write_pipeline(pipelines, "with_reqs", "import six\n", "six==1.16.0\n")
    for i in range(98):
        write_pipeline(pipelines, f"filler_{i:03d}", "print('filler')\n")
        with open(os.path.join(pipelines, f"filler_{i:03d}", "pipeline.json"), "w") as f:
            json.dump({"description": f"filler {i}", "tags": ["bench"], "mem_hard_limit": "256m", "timeout": 60}, f)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), DATA_DIR=os.path.join(work, "data"), PIPELINES_DIR=pipelines,
               WORKER_BASE_IMAGE=a.image, RUST_LOG="warn")
    ca_args = []
    if os.path.isfile(a.ca_bundle):
        env["WORKER_CA_BUNDLE"] = a.ca_bundle
        ca_args = ["-v", f"{a.ca_bundle}:/etc/fastflow/ca-bundle.crt:ro", "-e", "SSL_CERT_FILE=/etc/fastflow/ca-bundle.crt",
                   "-e", "UV_SYSTEM_CERTS=1"]

    # Start-up: first start creates the database; measure the second (the steady state) too.
    startups = []
    for attempt in range(3):
        t0 = time.perf_counter()
        fastflow_auth.sign_in(a.binary, env)
        proc = subprocess.Popen([a.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_health(base, time.monotonic() + 30):
            proc.kill()
            sys.exit("server did not answer /health within 30 s")
        startups.append(time.perf_counter() - t0)
        if attempt < 2:
            proc.terminate()
            proc.wait()
    time.sleep(1.0)
    idle_rss = rss_kib(proc.pid)
    with urllib.request.urlopen(base + "/api/pipelines") as r:
        discovered = len(json.load(r))

    try:
        # Warm everything once: image in page cache, uv cache filled.
        run_over_http(base, "trivial")
        run_over_http(base, "with_reqs")
        docker_run([a.image, "python3", "-c", "pass"])

        ff_trivial, bare = [], []
        for _ in range(a.n):  # interleaved, so drift affects both sides alike
            ff_trivial.append(run_over_http(base, "trivial"))
            bare.append(docker_run([a.image, "python3", "-c", "pass"]))

        cache = os.path.join(work, "data", "uv_cache")
        uv_args = ["-v", f"{os.path.join(pipelines, 'with_reqs')}:/app:ro", "-v", f"{cache}:/cache/uv",
                   "-e", "UV_CACHE_DIR=/cache/uv", "-e", "HOME=/tmp", "--user", "1001:1001" if os.geteuid() == 0 else f"{os.geteuid()}:{os.getegid()}",
                   *ca_args, a.image, "uv", "run", "--no-project", "--with-requirements", "/app/requirements.txt", "/app/main.py"]
        docker_run(uv_args)
        ff_reqs, bare_uv = [], []
        for _ in range(a.n):
            ff_reqs.append(run_over_http(base, "with_reqs"))
            bare_uv.append(docker_run(uv_args))
        busy_rss = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)

    print(f"image: {a.image}   runs per series: {a.n}   cores: {os.cpu_count()}")
    print(fmt("Fast-Flow trivial run (HTTP trigger -> end)", ff_trivial))
    print(fmt("docker run --rm IMAGE python3 -c pass", bare))
    print(f"{'ratio of medians (trivial)':<44} {statistics.median(ff_trivial) / statistics.median(bare):.3f}   (target <= 1.05)")
    print(fmt("Fast-Flow run with requirements.txt (warm)", ff_reqs))
    print(fmt("docker run --rm ... uv run --with-requirements", bare_uv))
    print(f"{'ratio of medians (requirements, warm)':<44} {statistics.median(ff_reqs) / statistics.median(bare_uv):.3f}")
    print(f"{'start-up until /health (first, warm, warm)':<44} " + ", ".join(f"{s*1000:.0f} ms" for s in startups)
          + "   (target <= 200 ms; Python original: 14 s)")
    print(f"{'idle RSS with ' + str(discovered) + ' pipelines':<44} {idle_rss/1024:.1f} MiB   (target <= 20 MB; Python original: 177 MB)")
    print(f"{'RSS after the benchmark runs':<44} {busy_rss/1024:.1f} MiB")


if __name__ == "__main__":
    main()
