#!/usr/bin/env python3
"""Run-engine benchmark for Fast-Flow (stdlib only), measured in one run:

  1. burst: 20 simultaneous trigger requests -> time until all are accepted, until
     all runs finished, /health latency during the burst, and the most containers
     running at once (from `docker events`);
  2. drain: N trivial runs queued at once and drained -> runs/s, and zero lost /
     zero duplicated, verified by counting container starts (`docker events`) and
     finished rows; baseline: the same number of bare `docker run --rm` with the
     same parallelism (MAX_CONCURRENT_RUNS workers), ratio of throughputs.
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url):
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


class ContainerEvents:
    """Counts `start` and `die` events of containers with a pipeline label."""

    def __init__(self, pipeline):
        self.proc = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container",
             "--filter", f"label=fastflow.pipeline={pipeline}"],
            stdout=subprocess.PIPE, text=True)
        self.starts = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)  # let `docker events` subscribe before anything starts

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self.lock:
                if ev.get("status") == "start":
                    self.starts.append(ev["Actor"]["Attributes"].get("fastflow.run_id"))
                    self.running += 1
                    self.max_running = max(self.max_running, self.running)
                elif ev.get("status") == "die":
                    self.running -= 1

    def stop(self):
        time.sleep(0.5)
        self.proc.terminate()


def count(base, pipeline, status):
    return get(f"{base}/api/runs?pipeline_name={pipeline}&status_filter={status}&limit=1")["total"]


def wait_all_finished(base, pipeline, deadline_s):
    """Waits until the pipeline has no queued or running run (two cheap count queries
    per check, so the harness does not load the server it measures)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if count(base, pipeline, "PENDING") == 0 and count(base, pipeline, "RUNNING") == 0:
            return True
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    ap.add_argument("--drain", type=int, default=1000, help="runs queued at once for the drain test")
    ap.add_argument("--max-concurrent", type=int, default=10)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fastflow-bench-engine-")
    tag = str(os.getpid())
    burst_p, drain_p = f"burst_{tag}", f"drain_{tag}"
    for name, code in ((burst_p, "import time\ntime.sleep(1)\n"), (drain_p, "pass\n")):
        os.makedirs(os.path.join(work, "pipelines", name))
        with open(os.path.join(work, "pipelines", name, "main.py"), "w") as f:
            f.write(code)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), DATA_DIR=os.path.join(work, "data"),
               PIPELINES_DIR=os.path.join(work, "pipelines"), WORKER_BASE_IMAGE=a.image,
               MAX_CONCURRENT_RUNS=str(a.max_concurrent), RUST_LOG="warn")
    fastflow_auth.sign_in(a.binary, env)
    server = subprocess.Popen([a.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                get(base + "/health")
                break
            except OSError:
                time.sleep(0.05)
        post(f"{base}/api/pipelines/{drain_p}/run")  # warm-up
        time.sleep(3)

        # 1. burst of 20 simultaneous triggers
        events = ContainerEvents(burst_p)
        health_ms = []
        stop_probe = threading.Event()

        def probe():
            while not stop_probe.is_set():
                t = time.perf_counter()
                get(base + "/health")
                health_ms.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(20) as pool:
            barrier = threading.Barrier(20)

            def fire():
                barrier.wait()
                return post(f"{base}/api/pipelines/{burst_p}/run")["id"]

            ids = list(pool.map(lambda _: fire(), range(20)))
        accepted = time.perf_counter() - t0
        wait_all_finished(base, burst_p, 300)
        finished = time.perf_counter() - t0
        stop_probe.set()
        prober.join()
        events.stop()
        ok = count(base, burst_p, "SUCCESS")
        pending = [None] * (20 - ok)
        print(f"burst: 20 simultaneous triggers, MAX_CONCURRENT_RUNS={a.max_concurrent}")
        print(f"  all accepted after        {accepted*1000:8.1f} ms")
        print(f"  all finished after        {finished:8.2f} s   ({ok} SUCCESS, {len(pending)} not SUCCESS)")
        print(f"  max containers at once    {events.max_running:8d}")
        print(f"  /health during the burst  median {statistics.median(health_ms):.1f} ms, max {max(health_ms):.1f} ms ({len(health_ms)} probes)")

        # 2. drain N trivial runs queued at once
        n = a.drain
        events = ContainerEvents(drain_p)
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda _: post(f"{base}/api/pipelines/{drain_p}/run")["id"], range(n)))
        queued = time.perf_counter() - t0
        wait_all_finished(base, drain_p, 3600)
        drained = time.perf_counter() - t0
        events.stop()
        starts = [s for s in events.starts if s in set(ids)]
        ok = count(base, drain_p, "SUCCESS") - 1  # minus the warm-up run
        pending = [None] * (count(base, drain_p, "PENDING") + count(base, drain_p, "RUNNING"))
        ff_rate = n / drained
        print(f"drain: {n} trivial runs queued at once")
        print(f"  all queued after          {queued:8.2f} s")
        print(f"  all finished after        {drained:8.2f} s   -> {ff_rate:.2f} runs/s")
        print(f"  rows finished SUCCESS     {ok} of {n}; unfinished {len(pending)}")
        print(f"  containers started        {len(starts)} ({len(set(starts))} distinct runs)"
              f" -> lost {n - len(set(starts))}, duplicated {len(starts) - len(set(starts))}")
        print(f"  max containers at once    {events.max_running}")
    finally:
        server.terminate()
        server.wait()

    # Baseline: the same number of bare `docker run --rm` with the same parallelism.
    def bare(_):
        subprocess.run(["docker", "run", "--rm", a.image, "python3", "-c", "pass"], check=True,
                       stdout=subprocess.DEVNULL)

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(a.max_concurrent) as pool:
        list(pool.map(bare, range(n)))
    base_rate = n / (time.perf_counter() - t0)
    print(f"baseline: {n} x `docker run --rm IMAGE python3 -c pass`, {a.max_concurrent} in parallel -> {base_rate:.2f} runs/s")
    print(f"  throughput ratio Fast-Flow / baseline: {ff_rate / base_rate:.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
