#!/usr/bin/env python3
"""Hostile-log benchmark for Fast-Flow (stdlib only). Each measurement runs in a fresh server
process, so its peak RSS (VmHWM in /proc/PID/status) belongs to that measurement alone:

  a. unterminated output: a run writes 300 MB to stdout without a newline (LOG_MAX_SIZE_MB=100)
     -> idle RSS before the trigger, peak RSS at the end, final status/error, wall time;
  b. SSE replay: a finished run of 1 000 000 lines (LOG_MAX_SIZE_MB=500) replayed once through
     /api/runs/{id}/logs/stream -> server CPU seconds, against one plain GET /api/runs/{id}/logs;
  c. six parallel downloads of that log in a restarted server -> peak RSS over idle, per log byte.
"""
import argparse
import collections
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)

TERMINAL = {"SUCCESS", "FAILED", "INTERRUPTED"}
MIB = 1024 * 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def request(base, path, method="GET", timeout=60):
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


class Server:
    """One `fastflow` process; its stdout is drained into a short tail for error reports."""

    def __init__(self, binary, env):
        fastflow_auth.sign_in(binary, env)
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self.tail = collections.deque(maxlen=20)
        self.addr = None
        ready = threading.Event()

        def drain():
            for line in self.proc.stdout:
                self.tail.append(line.rstrip())
                m = re.search(r"listening on http://(\S+)", line)
                if m and not ready.is_set():
                    self.addr = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or self.addr is None:
            self.stop()
            raise RuntimeError(f"server did not start (exit {self.proc.returncode}): " + " | ".join(self.tail))
        self.base = f"http://{self.addr}"
        self.status = f"/proc/{self.proc.pid}/status"
        self.last_hwm = None

    def alive(self):
        return self.proc.poll() is None

    def mem_kib(self):
        """(VmRSS, VmHWM) in KiB."""
        with open(self.status) as f:
            v = dict(l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))
        rss, hwm = (int(v[k].split()[0]) for k in ("VmRSS", "VmHWM"))
        self.last_hwm = hwm
        return rss, hwm

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def died(self):
        return f"server died (exit {self.proc.returncode}): " + " | ".join(list(self.tail)[-5:])

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_run(srv, run_id, limit_s, probe_health=False):
    """Polls the run until it is finished, the server dies or `limit_s` passes."""
    deadline = time.monotonic() + limit_s
    health_ms = []
    while time.monotonic() < deadline:
        if not srv.alive():
            return None, health_ms, srv.died()
        try:
            srv.mem_kib()
            if probe_health:
                t = time.perf_counter()
                request(srv.base, "/health", timeout=30)
                health_ms.append((time.perf_counter() - t) * 1000)
            run = request(srv.base, f"/api/runs/{run_id}", timeout=30)
            if run["status"] in TERMINAL:
                return run, health_ms, None
        except (OSError, ValueError, http.client.HTTPException) as e:
            if not srv.alive():
                return None, health_ms, srv.died()
            log(f"  poll error: {e!r}")
        time.sleep(0.5)
    return None, health_ms, f"run not finished after {limit_s} s"


def kill_run(srv, run_id):
    """Cancels an unfinished run (if the server still answers) and removes its container."""
    try:
        if srv.alive():
            request(srv.base, f"/api/runs/{run_id}/cancel", method="POST", timeout=30)
    except Exception as e:  # noqa: BLE001 - best effort
        log(f"  cancel failed: {e!r}")
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=fastflow.run_id={run_id}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def download(base, run_id):
    """Bytes of one full GET /api/runs/{id}/logs."""
    n = 0
    with urllib.request.urlopen(f"{base}/api/runs/{run_id}/logs", timeout=600) as r:
        while chunk := r.read(1 << 20):
            n += len(chunk)
    return n


def sse_replay(addr, run_id):
    """Reads the SSE stream until `event: end`: (log events, stdout events, last seq, end data)."""
    conn = http.client.HTTPConnection(addr, timeout=600)
    conn.request("GET", f"/api/runs/{run_id}/logs/stream", headers=fastflow_auth.header())
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"stream answered HTTP {resp.status}")
    events = stdout = last_seq = 0
    buf, event, data = b"", None, []
    while True:
        chunk = resp.read1(1 << 16)
        if not chunk:
            raise RuntimeError(f"stream closed without an end event after {events} events")
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                data.append(line[5:].strip())
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
            elif not line:
                if event == "end":
                    conn.close()
                    return events, stdout, last_seq, b"".join(data).decode()
                if data:
                    ev = json.loads(b"".join(data))
                    events += 1
                    stdout += ev.get("stream") == "stdout"
                    last_seq = ev.get("seq", last_seq)
                event, data = None, []


def measure_unterminated(a, env, res):
    srv = Server(a.binary, dict(env, LOG_MAX_SIZE_MB="100"))  # the default cap
    try:
        time.sleep(1)
        res["idle_rss_kib"], _ = srv.mem_kib()
        t0 = time.perf_counter()
        run_id = request(srv.base, f"/api/pipelines/{a.unterm_p}/run", method="POST")["id"]
        res["run_id"] = run_id
        log(f"a. run {run_id}: {a.mib} MiB without a newline, up to {a.limit} s")
        run, health_ms, err = wait_run(srv, run_id, a.limit, probe_health=True)
        res["wall_s"] = time.perf_counter() - t0
        res["health_ms_max"] = max(health_ms, default=None)
        res["health_probes"] = len(health_ms)
        if srv.alive():
            _, res["peak_rss_kib"] = srv.mem_kib()
        else:
            res["peak_rss_kib"] = srv.last_hwm  # last value seen before it died
        if run:
            for k in ("status", "error_type", "error_message", "exit_code", "log_lines", "log_bytes",
                      "log_truncated"):
                res[k] = run.get(k)
            with urllib.request.urlopen(f"{srv.base}/api/runs/{run_id}/logs?tail=5", timeout=60) as r:
                # Lines can be 1 MiB long: read them one by one, keep 200 characters of each.
                res["log_tail"] = [raw[:200].decode(errors="replace").rstrip("\n") for raw in r]
        else:
            res["error"] = err
            if srv.alive():
                res["status"] = "still " + request(srv.base, f"/api/runs/{run_id}")["status"]
            kill_run(srv, run_id)
    finally:
        srv.stop()
    if res.get("peak_rss_kib") and res.get("idle_rss_kib"):
        res["peak_over_idle"] = res["peak_rss_kib"] / res["idle_rss_kib"]


def measure_sse(a, env, res):
    srv = Server(a.binary, env)
    try:
        run_id = request(srv.base, f"/api/pipelines/{a.lines_p}/run", method="POST")["id"]
        res["run_id"] = run_id
        log(f"b. run {run_id}: {a.lines} lines")
        run, _, err = wait_run(srv, run_id, a.limit)
        if not run:
            kill_run(srv, run_id)
            raise RuntimeError(err)
        res.update(status=run["status"], log_lines=run.get("log_lines"), log_bytes=run.get("log_bytes"))
        time.sleep(2)
        c0 = srv.cpu_s()
        time.sleep(5)
        res["idle_cpu_5s"] = srv.cpu_s() - c0
        log("b. one SSE replay")
        c0, t0 = srv.cpu_s(), time.perf_counter()
        ev, out, seq, end = sse_replay(srv.addr, run_id)
        res["sse_wall_s"], res["sse_cpu_s"] = time.perf_counter() - t0, srv.cpu_s() - c0
        res.update(sse_events=ev, sse_stdout_events=out, sse_last_seq=seq, sse_end=end)
        log("b. one plain download")
        c0, t0 = srv.cpu_s(), time.perf_counter()
        res["download_bytes"] = download(srv.base, run_id)
        res["dl_wall_s"], res["dl_cpu_s"] = time.perf_counter() - t0, srv.cpu_s() - c0
        res["sse_over_dl_cpu"] = res["sse_cpu_s"] / res["dl_cpu_s"] if res["dl_cpu_s"] else None
    finally:
        if not srv.alive():
            res["error"] = srv.died()
        srv.stop()


def measure_parallel(a, env, run_id, res):
    srv = Server(a.binary, env)
    try:
        res["file_bytes"] = os.path.getsize(os.path.join(env["DATA_DIR"], "logs", f"{run_id}.log"))
        time.sleep(1)
        res["idle_rss_kib"], _ = srv.mem_kib()
        barrier, got = threading.Barrier(6), [None] * 6

        def fetch(i):
            barrier.wait()
            try:
                got[i] = download(srv.base, run_id)
            except Exception as e:  # noqa: BLE001 - reported, not raised
                got[i] = repr(e)

        log("c. six parallel downloads")
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(6)]
        t0 = time.perf_counter()
        [t.start() for t in threads]
        [t.join() for t in threads]
        res["wall_s"] = time.perf_counter() - t0
        res["bytes_each"] = got
        if not srv.alive():
            raise RuntimeError(srv.died())
        _, res["peak_rss_kib"] = srv.mem_kib()
        res["peak_minus_idle_kib"] = res["peak_rss_kib"] - res["idle_rss_kib"]
        res["per_file_byte"] = res["peak_minus_idle_kib"] * 1024 / res["file_bytes"]
    finally:
        srv.stop()


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "kib":
        return f"{v / 1024:.2f} MiB ({v} KiB)"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def table(r):
    a, b, c = r["unterminated"], r["sse"], r["parallel"]
    rows = [("a. unterminated output", None),
            ("idle RSS before trigger", fmt(a.get("idle_rss_kib"), "kib")),
            ("peak RSS (VmHWM) at end", fmt(a.get("peak_rss_kib"), "kib")),
            ("peak / idle", fmt(a.get("peak_over_idle"))),
            ("status / error_type / exit_code", f"{fmt(a.get('status'))} / {fmt(a.get('error_type'))} / {fmt(a.get('exit_code'))}"),
            ("error_message", fmt(a.get("error_message"))),
            ("log_lines / log_bytes / truncated", " / ".join(fmt(a.get(k)) for k in ("log_lines", "log_bytes", "log_truncated"))),
            ("log (last 5 lines, 200 chars each)", fmt(a.get("log_tail"))),
            ("wall time trigger -> finished", fmt(a.get("wall_s"), " s")),
            ("/health max during run", f"{fmt(a.get('health_ms_max'), ' ms')} ({a.get('health_probes')} probes)"),
            ("b. SSE replay vs plain download", None),
            ("run status / log_lines / log_bytes", f"{b.get('status')} / {b.get('log_lines')} / {b.get('log_bytes')}"),
            ("SSE log events (stdout) / last seq", f"{b.get('sse_events')} ({b.get('sse_stdout_events')}) / {b.get('sse_last_seq')}"),
            ("SSE end event data", fmt(b.get("sse_end"))),
            ("server CPU, idle 5 s", fmt(b.get("idle_cpu_5s"), " s")),
            ("server CPU, one SSE replay", fmt(b.get("sse_cpu_s"), " s")),
            ("SSE replay wall time", fmt(b.get("sse_wall_s"), " s")),
            ("server CPU, one plain download", f"{fmt(b.get('dl_cpu_s'), ' s')} ({b.get('download_bytes')} bytes)"),
            ("plain download wall time", fmt(b.get("dl_wall_s"), " s")),
            ("CPU ratio SSE / download", fmt(b.get("sse_over_dl_cpu"))),
            ("c. six parallel downloads", None),
            ("log file on disk", f"{fmt(c.get('file_bytes'))} bytes"),
            ("bytes per download", fmt(c.get("bytes_each"))),
            ("idle RSS", fmt(c.get("idle_rss_kib"), "kib")),
            ("peak RSS (VmHWM)", fmt(c.get("peak_rss_kib"), "kib")),
            ("peak - idle", fmt(c.get("peak_minus_idle_kib"), "kib")),
            ("(peak - idle) / file size", fmt(c.get("per_file_byte"))),
            ("wall time", fmt(c.get("wall_s"), " s"))]
    out = []
    for k, v in rows:
        if v is None:
            err = {"a": a, "b": b, "c": c}[k[0]].get("error")
            out.append(k + (f"   ** {err}" if err else ""))
        else:
            out.append(f"  {k:<36} {v}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    ap.add_argument("--mib", type=int, default=300, help="MiB written without a newline in (a)")
    ap.add_argument("--lines", type=int, default=1_000_000, help="log lines for (b) and (c)")
    ap.add_argument("--limit", type=int, default=600, help="seconds a run may take")
    ap.add_argument("--json", action="store_true", help="JSON summary on stdout (table on stderr)")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fastflow-bench-hostile-")
    tag = str(os.getpid())
    a.unterm_p, a.lines_p = f"unterminated_{tag}", f"lines_{tag}"
    code = {a.unterm_p: "import sys\nb = 'x' * (1 << 20)\nfor _ in range(%d):\n    sys.stdout.write(b)\n"
                        "sys.stdout.flush()\n" % a.mib,
            a.lines_p: 'for i in range(%d):\n    print(f"line {i:07d} " + "x" * 20)\n' % a.lines}
    for name, src in code.items():
        os.makedirs(os.path.join(work, "pipelines", name))
        with open(os.path.join(work, "pipelines", name, "main.py"), "w") as f:
            f.write(src)
    env = dict(os.environ, PORT="0", HOST="127.0.0.1", PIPELINES_DIR=os.path.join(work, "pipelines"),
               WORKER_BASE_IMAGE=a.image, LOG_MAX_SIZE_MB="500", RUST_LOG="info",
               WORKER_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt")
    r = {"binary": a.binary, "unterminated": {}, "sse": {}, "parallel": {}}
    steps = [("unterminated", lambda res: measure_unterminated(a, dict(env, DATA_DIR=os.path.join(work, "data-a")), res)),
             ("sse", lambda res: measure_sse(a, dict(env, DATA_DIR=os.path.join(work, "data-b")), res)),
             ("parallel", lambda res: measure_parallel(a, dict(env, DATA_DIR=os.path.join(work, "data-b")),
                                                       r["sse"]["run_id"], res))]
    try:
        for key, step in steps:
            if key == "parallel" and r["sse"].get("status") != "SUCCESS":
                r[key]["error"] = "skipped: no finished run from (b)"
                continue
            try:
                step(r[key])
            except Exception as e:  # noqa: BLE001 - a failure is a result, not a traceback
                r[key].setdefault("error", f"{type(e).__name__}: {e}")
                log(f"{key}: {r[key]['error']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = table(r)
    if a.json:
        print(text, file=sys.stderr)
        print(json.dumps(r, indent=2))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
