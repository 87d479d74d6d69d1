"""Sections `finish` (a big log against bare `docker run`) and `viewers` (live SSE viewers of a
burst) of scripts/bench_scale.py. Run as a script, this file is also the helper processes of
`viewers` (so their Python work does not share a GIL with the samplers of the measuring process):

  python3 bench_scale_runs.py probe ADDR INTERVAL_S   probes /health until stdin closes; prints JSON
  python3 bench_scale_runs.py viewers ADDR N          reads a run id from stdin, opens N SSE viewers,
                                                      prints JSON when all have ended
"""
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scale_lib import (Server, f_mib, f_ms, f_ratio, http_req, log, median, parse_ts, pct, post_json,
                             ratio, run_seconds, server_env, table, wait_run, write_pipeline)

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)

PRINT_N = "import sys\nfor i in range(%d): print(i)\n"


def docker_run(image, program, unbuffered):
    env = ["-e", "PYTHONUNBUFFERED=1"] if unbuffered else []
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", *env, image, "python3", "-c", program], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def server_run(srv, pipeline, every_s, limit_s):
    """Trigger -> finished over HTTP: (seconds, run, server CPU seconds, non-200 polls)."""
    c0, t0 = srv.cpu_s(), time.perf_counter()
    run_id = post_json(srv.addr, f"/api/pipelines/{pipeline}/run")["id"]
    run, _, bad = wait_run(srv, run_id, every_s, limit_s)
    return time.perf_counter() - t0, run, srv.cpu_s() - c0, bad


def check_log(srv, run_id, n):
    """Downloads the run's log: does it hold the lines 0..n-1 in order, and which other lines?"""
    host, port = srv.addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    conn.request("GET", f"/api/runs/{run_id}/logs", headers=fastflow_auth.header())
    resp = conn.getresponse()
    if resp.status != 200:
        return {"error": f"HTTP {resp.status}"}
    expect, in_order, other, sample = 0, True, 0, []
    for raw in resp:
        text = raw.decode(errors="replace").rstrip("\n")
        text = text.split("] ", 1)[1] if text.startswith("[") and "] " in text else text
        if text.isdigit():
            in_order &= int(text) == expect
            expect += 1
        else:
            other += 1
            if len(sample) < 3:
                sample.append(text[:200])
    conn.close()
    return {"numbers": expect, "in_order": in_order and expect == n, "other": other, "other_sample": sample}


def timeline(run, seen_at):
    """started_at -> container_started_at, and finished_at -> the poll that saw it (same host clock)."""
    st, cs, fin = (parse_ts(run.get(k)) for k in ("started_at", "container_started_at", "finished_at"))
    return {"to_container_s": cs - st if cs and st else None, "finished_to_seen_s": seen_at - fin if fin else None}


def measure_finish(a, work, res, out):
    pipelines = os.path.join(work, "finish-pipelines")
    program = PRINT_N % a.lines
    write_pipeline(pipelines, "big_log", program)
    write_pipeline(pipelines, "warm", "pass\n")
    srv = Server(a.binary, server_env(a, pipelines, os.path.join(work, "finish-data")), work, "finish")
    res.update(server=[], bare_unbuffered=[], bare_buffered=[], runs=[], problems=srv.problems)
    try:
        log("finish: warm-up (one trivial run, one bare docker run)")
        server_run(srv, "warm", 0.02, a.limit)
        docker_run(a.image, "pass", True)
        for rep in range(a.reps):
            log(f"finish: repetition {rep + 1}/{a.reps}, {a.lines} lines")
            secs, run, cpu, bad = server_run(srv, "big_log", 0.02, a.limit)
            res["server"].append(secs)
            res["runs"].append({"status": run["status"], "log_lines": run.get("log_lines"),
                                "log_bytes": run.get("log_bytes"), "run_s": run_seconds(run), "cpu_s": cpu,
                                "non_200_polls": bad, "error_type": run.get("error_type"),
                                "log_truncated": run.get("log_truncated")})
            res["runs"][-1]["log"] = check_log(srv, run["id"], a.lines)
            res["bare_unbuffered"].append(docker_run(a.image, program, True))
            res["bare_buffered"].append(docker_run(a.image, program, False))
        res["rss_kib"], res["hwm_kib"] = srv.mem_kib()
    finally:
        srv.stop()

    med = {k: median(res[k]) for k in ("server", "bare_unbuffered", "bare_buffered")}
    out(f"\n== finish: a run printing {a.lines:,} lines, {a.reps} repetitions (interleaved) ==")

    def row(name, xs):
        return [name, ", ".join(f"{x:.2f}" for x in xs) + " s", f"{median(xs):.2f} s"]

    table(["series", "each", "median"],
          [row("Fast-Flow: trigger -> finished (poll 20 ms)", res["server"]),
           row("  the run's finished_at - container_started_at", [r["run_s"] for r in res["runs"]]),
           row("  server CPU during the run", [r["cpu_s"] for r in res["runs"]]),
           row("docker run --rm -e PYTHONUNBUFFERED=1 IMAGE python3 -c", res["bare_unbuffered"]),
           row("docker run --rm IMAGE python3 -c (buffered)", res["bare_buffered"])], out)
    out("")
    table(["ratio of medians", "value"],
          [["Fast-Flow trigger->finished / bare unbuffered", f_ratio(ratio(med["server"], med["bare_unbuffered"]))],
           ["bare unbuffered / bare buffered (cost of PYTHONUNBUFFERED=1)",
            f_ratio(ratio(med["bare_unbuffered"], med["bare_buffered"]))]], out)
    out("")
    rows = [[str(i + 1), r["status"], f"{r['log_lines']:,}" if r["log_lines"] is not None else "-",
             str(r["log_bytes"]), str(r["log_truncated"]), str(r["non_200_polls"]), log_cell(r["log"], a.lines)]
            for i, r in enumerate(res["runs"])]
    table(["run", "status", "log_lines", "log_bytes", "truncated", "non-200 polls", "downloaded log"], rows, out)
    out(f"  server after the runs: VmRSS {f_mib(res['rss_kib'])}, VmHWM {f_mib(res['hwm_kib'])}")


def log_cell(c, n):
    if "error" in c:
        return c["error"]
    return (f"0..{n - 1:,} in order: {'yes' if c['in_order'] else 'NO'} ({c['numbers']:,} numbers); "
            f"{c['other']} other line(s)" + (f": {c['other_sample']}" if c["other"] else ""))


class Sampler:
    """Samples the server's VmRSS every 50 ms and probes /health every 100 ms (in a helper
    process) until stopped: peak RSS, /health p50/p99/max."""

    def __init__(self, srv):
        self.srv, self.peak, self.n = srv, 0, 0
        self.stopping = threading.Event()
        self.probe = subprocess.Popen([sys.executable, os.path.abspath(__file__), "probe", srv.addr, "0.1"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._rss, daemon=True)
        self.thread.start()

    def _rss(self):
        while not self.stopping.is_set():
            try:
                self.peak = max(self.peak, self.srv.mem_kib()[0])
                self.n += 1
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join()
        got, _ = self.probe.communicate("", timeout=120)
        h = json.loads(got)
        ms = h["ms"]
        return {"peak_rss_kib": self.peak, "rss_samples": self.n, "health_n": len(ms), "health_fail": h["fail"],
                "health_p50_ms": pct(ms, 50), "health_p99_ms": pct(ms, 99), "health_max_ms": max(ms, default=None)}


def measure_viewers(a, work, res, out):
    pipelines = os.path.join(work, "viewers-pipelines")
    write_pipeline(pipelines, "burst", PRINT_N % a.burst_lines)
    write_pipeline(pipelines, "warm", "pass\n")
    srv = Server(a.binary, server_env(a, pipelines, os.path.join(work, "viewers-data")), work, "viewers")
    res["problems"] = srv.problems
    try:
        server_run(srv, "warm", 0.1, a.limit)
        time.sleep(1)
        res["idle_rss_kib"] = srv.mem_kib()[0]
        log(f"viewers: baseline, {a.burst_lines} lines with no viewer")
        s = Sampler(srv)
        secs, run, cpu, bad = server_run(srv, "burst", 0.1, a.limit)
        res["alone"] = dict(s.stop(), trigger_to_finished_s=secs, run_s=run_seconds(run), cpu_s=cpu,
                            status=run["status"], log_lines=run.get("log_lines"), non_200_polls=bad,
                            **timeline(run, time.time()))
        _, res["alone"]["hwm_kib"] = srv.mem_kib()
        res["alone"]["log"] = check_log(srv, run["id"], a.burst_lines)
        time.sleep(1)
        log(f"viewers: the same run with {a.viewers} live viewers")
        viewers = subprocess.Popen([sys.executable, os.path.abspath(__file__), "viewers", srv.addr, str(a.viewers)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        s = Sampler(srv)
        c0, t0 = srv.cpu_s(), time.perf_counter()
        run_id = post_json(srv.addr, "/api/pipelines/burst/run")["id"]
        viewers.stdin.write(run_id + "\n")
        viewers.stdin.flush()
        run, _, bad = wait_run(srv, run_id, 0.1, a.limit)
        secs, seen_at = time.perf_counter() - t0, time.time()
        got, _ = viewers.communicate(timeout=a.limit)
        cpu = srv.cpu_s() - c0
        res["with"] = dict(s.stop(), trigger_to_finished_s=secs, run_s=run_seconds(run), cpu_s=cpu,
                           status=run["status"], log_lines=run.get("log_lines"), non_200_polls=bad,
                           **timeline(run, seen_at))
        _, res["with"]["hwm_kib"] = srv.mem_kib()
        res["with"]["log"] = check_log(srv, run_id, a.burst_lines)
        got = json.loads(got)
        res["viewer_results"], res["with"]["client_cpu_s"] = got["viewers"], got["client_cpu_s"]
    finally:
        srv.stop()

    al, wi, vs = res["alone"], res["with"], res["viewer_results"]
    n = wi["log_lines"] or 0
    for v in vs:
        v["complete"] = (v["ended"] and not v["dups"] and v["distinct"] == n and v["max_seq"] == n
                         and v["min_seq"] == 1 and not v.get("error"))
    complete = sum(v["complete"] for v in vs)
    out(f"\n== viewers: a burst of {a.burst_lines:,} lines, no viewer against {a.viewers} live SSE viewers ==")
    rows = [["run status / log_lines", f"{al['status']} / {al['log_lines']}", f"{wi['status']} / {wi['log_lines']}", ""],
            ["run duration (finished_at - container_started_at)", f"{al['run_s']:.2f} s", f"{wi['run_s']:.2f} s",
             f_ratio(ratio(wi["run_s"], al["run_s"]))],
            ["trigger -> finished (poll 100 ms)", f"{al['trigger_to_finished_s']:.2f} s",
             f"{wi['trigger_to_finished_s']:.2f} s", f_ratio(ratio(wi["trigger_to_finished_s"], al["trigger_to_finished_s"]))],
            ["  started_at -> container_started_at", f"{al['to_container_s']:.2f} s", f"{wi['to_container_s']:.2f} s",
             f_ratio(ratio(wi["to_container_s"], al["to_container_s"]))],
            ["  finished_at -> seen by the poll", f"{al['finished_to_seen_s']:.2f} s",
             f"{wi['finished_to_seen_s']:.2f} s", "-"],
            ["server CPU, trigger -> all viewers ended", f"{al['cpu_s']:.2f} s", f"{wi['cpu_s']:.2f} s",
             f_ratio(ratio(wi["cpu_s"], al["cpu_s"]))],
            ["peak VmRSS (sampled every 50 ms)", f_mib(al["peak_rss_kib"]), f_mib(wi["peak_rss_kib"]),
             f_ratio(ratio(wi["peak_rss_kib"], al["peak_rss_kib"]))],
            ["VmHWM after", f_mib(al["hwm_kib"]), f_mib(wi["hwm_kib"]), "-"],
            ["/health p50 (every 100 ms)", f_ms(al["health_p50_ms"]), f_ms(wi["health_p50_ms"]),
             f_ratio(ratio(wi["health_p50_ms"], al["health_p50_ms"]))],
            ["/health p99", f_ms(al["health_p99_ms"]), f_ms(wi["health_p99_ms"]),
             f_ratio(ratio(wi["health_p99_ms"], al["health_p99_ms"]))],
            ["/health max", f_ms(al["health_max_ms"]), f_ms(wi["health_max_ms"]),
             f_ratio(ratio(wi["health_max_ms"], al["health_max_ms"]))],
            ["/health probes (failed)", f"{al['health_n']} ({al['health_fail']})", f"{wi['health_n']} ({wi['health_fail']})", ""]]
    table(["", "no viewer", f"{a.viewers} viewers", "ratio"], rows, out)
    out("  (RSS and /health are sampled from the trigger until the run is finished, and with viewers"
        " until the last viewer's stream ended; /health is probed one request at a time)")
    out(f"  downloaded log, no viewer: {log_cell(al['log'], a.burst_lines)}")
    out(f"  downloaded log, {a.viewers} viewers: {log_cell(wi['log'], a.burst_lines)}")
    out(f"  server idle RSS before: {f_mib(res['idle_rss_kib'])}; CPU of the viewers' own process "
        f"({a.viewers} threads, raw sockets, HTTP/1.0): {wi['client_cpu_s']:.2f} s")
    ends = [v["end_s"] for v in vs if v.get("end_s") is not None]
    out(f"  viewers complete (every seq 1..{n:,} exactly once, then the end event): {complete} of {len(vs)}")
    out(f"  viewers with duplicates: {sum(1 for v in vs if v['dups'])} (total {sum(v['dups'] for v in vs):,} duplicate events); "
        f"with gaps: {sum(1 for v in vs if v['distinct'] < n)} (total {sum(max(0, n - v['distinct']) for v in vs):,} missing seqs)")
    out(f"  events per viewer: min {min(v['events'] for v in vs):,}, max {max(v['events'] for v in vs):,}; "
        f"first seq seen min {min(v['min_seq'] or 0 for v in vs)}, max {max(v['min_seq'] or 0 for v in vs)}")
    if ends:
        out(f"  end event after the trigger: median {median(ends):.2f} s, last {max(ends):.2f} s; "
            f"end data: {sorted(set(v.get('end_data') or '-' for v in vs))}")
    errs = sorted(set(v["error"] for v in vs if v.get("error")))
    if errs:
        out(f"  viewer errors ({sum(1 for v in vs if v.get('error'))}): {errs[:5]}")


# --- helper processes ----------------------------------------------------------------------------

def _probe(addr, every):
    ms, fail = [], 0
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        try:
            status, _, secs = http_req(addr, "/health", timeout=30)
            if status == 200:
                ms.append(secs * 1000)
            else:
                fail += 1
        except OSError:
            fail += 1
        stop.wait(every)
    print(json.dumps({"ms": ms, "fail": fail}))


_ID = re.compile(rb"^id:\s*(\d+)\r?$", re.M)


class _Stream:
    """The body of one response on a raw socket: read() gives the next piece, b"" at its end.
    The request is HTTP/1.0, so the body comes close-delimited, not chunked: the server sends
    about one chunk per event, and decoding chunks in Python (http.client does it with several
    calls per chunk) made 50 viewers' client, not the server, set the pace on this 2-core
    machine. A chunked answer is still decoded."""

    def __init__(self, addr, path):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=120)
        self.sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {addr}\r\n{fastflow_auth.header_line()}Accept: text/event-stream\r\n\r\n".encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            got = self.sock.recv(1 << 16)
            if not got:
                raise RuntimeError("connection closed before the response head")
            self.raw += got
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.chunked = any(l.lower().startswith("transfer-encoding:") and "chunked" in l.lower() for l in lines[1:])
        self.done = False

    def read(self):
        while not self.done:
            if not self.chunked:
                if self.raw:
                    out, self.raw = self.raw, b""
                    return out
            else:
                out, pos, raw = [], 0, self.raw
                while True:
                    eol = raw.find(b"\r\n", pos)
                    if eol < 0:
                        break
                    size = int(raw[pos:eol].split(b";", 1)[0], 16)
                    if size == 0:
                        self.done = True
                        break
                    if len(raw) < eol + 2 + size + 2:
                        break
                    out.append(raw[eol + 2: eol + 2 + size])
                    pos = eol + 2 + size + 2
                self.raw = raw[pos:]
                if out:
                    return b"".join(out)
                if self.done:
                    break
            got = self.sock.recv(1 << 18)
            if not got:
                self.done = True
                break
            self.raw += got
        return b""

    def close(self):
        self.sock.close()


def _viewer(addr, run_id, t0, result):
    """Reads one SSE stream to its end event; counts seqs without keeping them all."""
    r = result
    r.update(events=0, distinct=0, dups=0, min_seq=None, max_seq=0, ended=False, end_data=None)
    seen = bytearray()
    stream = None
    try:
        stream = _Stream(addr, f"/api/runs/{run_id}/logs/stream")
        if stream.status != 200:
            r["error"] = f"HTTP {stream.status}: {stream.read()[:200]!r}"
            return
        buf = b""
        expect = 1
        while True:
            chunk = stream.read()
            if not chunk:
                r["error"] = "stream closed without an end event"
                return
            buf += chunk
            cut = buf.rfind(b"\n\n")
            if cut < 0:
                continue
            block, buf = buf[: cut + 2], buf[cut + 2:]
            seqs = [int(x) for x in _ID.findall(block)]
            if seqs:
                r["events"] += len(seqs)
                if r["min_seq"] is None:
                    r["min_seq"] = seqs[0]
                if len(seen) < expect and seqs == list(range(expect, expect + len(seqs))):
                    # fast path, in order and new; the bitmap is only built once that breaks
                    r["distinct"] += len(seqs)
                    expect += len(seqs)
                else:
                    if len(seen) < expect:  # switch to the bitmap: mark everything seen so far
                        seen.extend(b"\1" * (expect - len(seen)))
                    for s in seqs:
                        if s >= len(seen):
                            seen.extend(b"\0" * (s + 1 - len(seen)))
                        if seen[s]:
                            r["dups"] += 1
                        else:
                            seen[s] = 1
                            r["distinct"] += 1
                    expect = max(expect, max(seqs) + 1)
                r["max_seq"] = max(r["max_seq"], max(seqs))
            if b"event: end" in block or b"event:end" in block:
                r["ended"] = True
                r["end_s"] = time.perf_counter() - t0
                m = re.search(rb"event:\s*end\r?\ndata:\s*(.*)", block)
                r["end_data"] = m.group(1).decode(errors="replace") if m else None
                return
            if b"event: error" in block:
                m = re.search(rb"event:\s*error\r?\ndata:\s*(.*)", block)
                r["error"] = "error event: " + (m.group(1).decode(errors="replace") if m else "?")
    except Exception as e:  # noqa: BLE001 - reported
        r["error"] = f"{type(e).__name__}: {e}"
    finally:
        if stream:
            stream.close()


def _viewers(addr, n):
    run_id = sys.stdin.readline().strip()
    t0 = time.perf_counter()
    results = [{} for _ in range(n)]
    threads = [threading.Thread(target=_viewer, args=(addr, run_id, t0, results[i])) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"viewers": results, "client_cpu_s": ru.ru_utime + ru.ru_stime}))


if __name__ == "__main__":
    if sys.argv[1] == "probe":
        _probe(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "viewers":
        _viewers(sys.argv[2], int(sys.argv[3]))
