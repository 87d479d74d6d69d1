"""Helpers for scripts/bench_scale.py (stdlib only): the server process, HTTP, the load client
(wrk when installed, else a Python keep-alive thread pool), statistics, tables, and seeding a
database with a realistic run history (cached under /var/tmp, keyed by schema and run count).
"""
import collections
import concurrent.futures as cf
import datetime
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)

TERMINAL = {"SUCCESS", "FAILED", "INTERRUPTED"}
CACHE_DIR = "/var/tmp/fastflow-bench-scale-cache"
SEED_VERSION = 1  # bump when the generated history changes, so cached databases are not reused
BENCH_KEY = "YmVuY2gtc2NhbGUtYmVuY2gtc2NhbGUtYmVuY2gtISE="  # 32 bytes, url-safe base64 (Fernet)



def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]


def median(values):
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


# --- HTTP ----------------------------------------------------------------------------------------

def http_req(addr, path, method="GET", body=None, timeout=60):
    """(status, body bytes, seconds) of one request on a fresh connection; never raises on a status."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    t0 = time.perf_counter()
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers={**(headers or {}), **fastflow_auth.header()})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0
    finally:
        conn.close()


def get_json(addr, path, timeout=60):
    status, data, _ = http_req(addr, path, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {data[:200]!r}")
    return json.loads(data)


def post_json(addr, path, timeout=60):
    status, data, _ = http_req(addr, path, "POST", b"{}", timeout=timeout)
    if status != 200:
        raise RuntimeError(f"POST {path} answered {status}: {data[:200]!r}")
    return json.loads(data)


_TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def parse_ts(s):
    """Seconds since the epoch of an RFC 3339 time (any number of fractional digits)."""
    if not s:
        return None
    m = _TS.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    t = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec),
                          tzinfo=datetime.timezone.utc).timestamp()
    if frac:
        t += int(frac) / 10 ** len(frac)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        tz = tz[1:].replace(":", "")
        t -= sign * (int(tz[:2]) * 3600 + int(tz[2:]) * 60)
    return t


def run_seconds(run):
    """finished_at - container_started_at of a run answer, in seconds."""
    a, b = parse_ts(run.get("container_started_at")), parse_ts(run.get("finished_at"))
    return b - a if a is not None and b is not None else None


# --- the server ----------------------------------------------------------------------------------

def write_pipeline(root, name, code):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "main.py"), "w") as f:
        f.write(code)


def server_env(a, pipelines_dir, data_dir, db_path=None, **extra):
    # A fixed ENCRYPTION_KEY (Fernet format; nothing secret is stored), so no server generates one.
    env = dict(os.environ, HOST="127.0.0.1", DATA_DIR=data_dir, PIPELINES_DIR=pipelines_dir,
               LOGS_DIR=os.path.join(data_dir, "logs"), WORKER_BASE_IMAGE=a.image, RUST_LOG="warn",
               ENCRYPTION_KEY=BENCH_KEY)
    env["DATABASE_URL"] = "sqlite://" + (db_path or os.path.join(data_dir, "fastflow.db"))
    if os.path.isfile(a.ca_bundle):
        env["WORKER_CA_BUNDLE"] = a.ca_bundle
    env.update({k: str(v) for k, v in extra.items()})
    return env


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Server:
    """One `fastflow` process on a free port. `startup_s` is spawn -> first 200 on /health.
    Its output is drained: WARN/ERROR lines are kept (they are reported), plus a short tail."""

    def __init__(self, binary, env, cwd, label, limit_s=120):
        self.port = free_port()
        env = dict(env, PORT=str(self.port))
        self.addr = f"127.0.0.1:{self.port}"
        self.base = "http://" + self.addr
        self.label = label
        self.problems = []
        self.tail = collections.deque(maxlen=20)
        t0 = time.perf_counter()
        # cwd is a scratch directory, so no `.env` of the checkout is loaded.
        fastflow_auth.sign_in(binary, env)
        self.proc = subprocess.Popen([binary], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + limit_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(self.died())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{label}: no 200 on /health within {limit_s} s")
            try:
                if http_req(self.addr, "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.002)
        self.startup_s = time.perf_counter() - t0
        self.status_file = f"/proc/{self.proc.pid}/status"

    def _drain(self):
        for line in self.proc.stdout:
            line = _ANSI.sub("", line.rstrip())
            self.tail.append(line)
            if re.search(r"\b(WARN|ERROR)\b", line):
                # Without its time stamp, so repeated lines can be counted.
                self.problems.append(f"[{self.label}] " + re.sub(r"^\d{4}-\d\d-\d\dT\S+\s+", "", line))

    def alive(self):
        return self.proc.poll() is None

    def died(self):
        time.sleep(0.2)
        return f"{self.label}: server died (exit {self.proc.returncode}): " + " | ".join(list(self.tail)[-5:])

    def mem_kib(self):
        """(VmRSS, VmHWM) in KiB."""
        with open(self.status_file) as f:
            v = dict(l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))
        return int(v["VmRSS"].split()[0]), int(v["VmHWM"].split()[0])

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.problems.append(f"{self.label}: did not stop within 30 s of SIGTERM; killed")
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.1)  # let the drain thread read the last lines


def wait_run(srv, run_id, every_s, limit_s):
    """Polls GET /api/runs/{id} until the run is terminal: (run, seconds until seen, non-200 count)."""
    t0 = time.perf_counter()
    bad = 0
    while time.perf_counter() - t0 < limit_s:
        if not srv.alive():
            raise RuntimeError(srv.died())
        status, data, _ = http_req(srv.addr, f"/api/runs/{run_id}", timeout=60)
        if status == 200:
            run = json.loads(data)
            if run["status"] in TERMINAL:
                return run, time.perf_counter() - t0, bad
        else:
            bad += 1
        time.sleep(every_s)
    raise RuntimeError(f"run {run_id} not finished after {limit_s} s")


# --- load ----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def load(addr, path, seconds, conns, use_wrk):
    """Loads one URL with `conns` concurrent keep-alive clients for `seconds`:
    {req_s, p50_ms, p99_ms, requests, non_200, errors, tool}."""
    if use_wrk:
        out = subprocess.run(["wrk", "-t", str(min(conns, os.cpu_count() or 1)), "-c", str(conns),
                              "-d", f"{seconds}s", "--timeout", "30s", "--latency", f"http://{addr}{path}"],
                             capture_output=True, text=True).stdout
        r = {"tool": "wrk", "non_200": 0, "errors": 0}
        for line in out.splitlines():
            line = line.strip()
            if m := re.match(r"Requests/sec:\s+([\d.]+)", line):
                r["req_s"] = float(m.group(1))
            elif m := re.match(r"(\d+) requests in", line):
                r["requests"] = int(m.group(1))
            elif m := re.match(r"50(?:\.0+)?%\s+(\S+)", line):
                r["p50_ms"] = _wrk_ms(m.group(1))
            elif m := re.match(r"99(?:\.0+)?%\s+(\S+)", line):
                r["p99_ms"] = _wrk_ms(m.group(1))
            elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
                r["non_200"] = int(m.group(1))
            elif line.startswith("Socket errors:"):
                r["errors"] = sum(int(x) for x in re.findall(r"\d+", line))
                r["socket_errors"] = line
        if "req_s" not in r:
            r["error"] = "wrk output not understood: " + out[-300:]
        return r
    host, port = addr.rsplit(":", 1)
    end = time.perf_counter() + seconds
    lat, statuses, errors = [], collections.Counter(), [0]
    lock = threading.Lock()

    def client():
        conn, mine = None, []
        while time.perf_counter() < end:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                t = time.perf_counter()
                conn.request("GET", path, headers=fastflow_auth.header())
                resp = conn.getresponse()
                resp.read()
                mine.append((time.perf_counter() - t) * 1000)
                with lock:
                    statuses[resp.status] += 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn = None
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(conns) as pool:
        list(pool.map(lambda _: client(), range(conns)))
    wall = time.perf_counter() - t0
    return {"tool": "python", "req_s": len(lat) / wall, "requests": len(lat), "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99), "non_200": sum(n for s, n in statuses.items() if s != 200),
            "errors": errors[0]}


# --- output --------------------------------------------------------------------------------------

def f_ms(v):
    return "-" if v is None else (f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms")


def f_num(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"


def f_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def f_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def table(headers, rows, out):
    """A plain text table; the first column left-aligned, the others right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells):
        return "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out(line([str(h) for h in headers]))
    out("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        out(line(r))


# --- seeding a run history -----------------------------------------------------------------------

def schema_fingerprint(db_path):
    con = sqlite3.connect(db_path)
    try:
        rows = sorted(con.execute("SELECT name, sql FROM sqlite_master"), key=lambda r: (r[0], r[1] or ""))
    finally:
        con.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def zipf_weights(n, s=1.1):
    return [1 / (i + 1) ** s for i in range(n)]


_DAYS = {}


def _iso(us):
    """The text sqlx stores for a chrono DateTime<Utc>: YYYY-MM-DDTHH:MM:SS.ffffff+00:00."""
    sec, frac = divmod(us, 1_000_000)
    day, s = divmod(sec, 86400)
    d = _DAYS.get(day)
    if d is None:
        d = _DAYS[day] = datetime.datetime.fromtimestamp(day * 86400, datetime.timezone.utc).strftime("%Y-%m-%dT")
    return "%s%02d:%02d:%02d.%06d+00:00" % (d, s // 3600, s // 60 % 60, s % 60, frac)


def _uuid4(bits):
    """A version-4 UUID string from 128 random bits."""
    h = "%032x" % ((bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


SEED_COLUMNS = ["id", "pipeline_name", "status", "triggered_by", "env_vars", "parameters", "started_at",
                "claimed_at", "container_started_at", "finished_at", "exit_code", "error_type",
                "error_message", "image", "container_id", "log_file", "log_lines", "log_bytes",
                "log_truncated", "attempt", "setup_duration"]
OUTCOMES = [  # (cumulative probability, status, error_type, exit_code, error_message)
    (0.850, "SUCCESS", None, 0, None),
    (0.940, "FAILED", "pipeline_error", 1, "main.py exited with code 1"),
    (0.945, "FAILED", "timeout", None, "timed out after 3600 s"),
    (0.950, "FAILED", "oom", 137, "out of memory (limit 512 MiB)"),
    (1.000, "INTERRUPTED", "cancelled", None, "cancelled by user"),
]


def _rows(n, names, image, rng):
    """n finished runs over the last 365 days, oldest first (so rowid follows started_at)."""
    now_us = int(time.time() * 1e6) - 60_000_000
    span = 365 * 86400 * 1_000_000
    starts = sorted(rng.randrange(now_us - span, now_us) for _ in range(n))
    pipes = rng.choices(names, weights=zipf_weights(len(names)), k=n)
    rand, bits, lognorm = rng.random, rng.getrandbits, rng.lognormvariate
    for us, pipe in zip(starts, pipes):
        r = rand()
        for cum, status, etype, code, msg in OUTCOMES:
            if r < cum:
                break
        t = rand()
        trig = "scheduler" if t < 0.80 else ("manual" if t < 0.95 else "webhook")
        cs = us + 250_000 + int(rand() * 100_000)
        fin = cs + int(lognorm(1.2, 0.6) * 1e6)
        lines = 1 + int(rand() * 200)
        rid = _uuid4(bits(128))
        yield (rid, pipe, status, trig, "{}", "{}", _iso(us), _iso(us + 8_000), _iso(cs), _iso(fin),
               code, etype, msg, image, "%064x" % bits(256), rid + ".log", lines,
               lines * 37, 0, 1, round((cs - us) / 1e6, 3))


def _fill_counters(con, out):
    """Fills run_counters / pipeline_counters by aggregation when they exist and are empty
    (a server that maintains them with triggers has filled them while we inserted)."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "run_counters" in tables:
        if con.execute("SELECT COUNT(*) FROM run_counters").fetchone()[0] == 0:
            con.execute(
                "INSERT INTO run_counters (day, pipeline_name, total, succeeded, failed, interrupted, duration_sum)"
                " SELECT strftime('%Y-%m-%d', finished_at), pipeline_name, COUNT(*), SUM(status='SUCCESS'),"
                " SUM(status='FAILED'), SUM(status='INTERRUPTED'),"
                " SUM((julianday(finished_at)-julianday(container_started_at))*86400.0) FROM runs GROUP BY 1, 2")
            out.append("run_counters filled by aggregation")
        else:
            out.append("run_counters already filled (by the server's triggers)")
    if "pipeline_counters" in tables:
        cols = {r[1]: r for r in con.execute("PRAGMA table_info(pipeline_counters)")}
        if con.execute("SELECT COUNT(*) FROM pipeline_counters").fetchone()[0]:
            out.append("pipeline_counters already filled (by the server's triggers)")
            return
        known = {"pipeline_name": "pipeline_name", "total": "COUNT(*)", "total_runs": "COUNT(*)",
                 "succeeded": "SUM(status='SUCCESS')", "successful_runs": "SUM(status='SUCCESS')",
                 "failed": "SUM(status='FAILED')", "failed_runs": "SUM(status='FAILED')",
                 "interrupted": "SUM(status='INTERRUPTED')",
                 "duration_sum": "SUM((julianday(finished_at)-julianday(container_started_at))*86400.0)"}
        use = [c for c in cols if c in known]
        # PRAGMA table_info: (cid, name, type, notnull, dflt_value, pk)
        missing = [c for c, r in cols.items() if c not in known and r[3] and r[4] is None]
        if missing:
            out.append(f"pipeline_counters NOT filled: no value known for required column(s) {missing}")
            return
        con.execute(f"INSERT INTO pipeline_counters ({', '.join(use)}) SELECT {', '.join(known[c] for c in use)}"
                    " FROM runs GROUP BY pipeline_name")
        skipped = [c for c in cols if c not in known]
        out.append(f"pipeline_counters filled by aggregation ({', '.join(use)}"
                   + (f"; left to defaults: {', '.join(skipped)}" if skipped else "") + ")")


def seed(db_path, n, names, image):
    """Inserts n runs (one transaction) and fills the counters: a dict with what was done."""
    t0 = time.perf_counter()
    con = sqlite3.connect(db_path, isolation_level=None)
    notes = []
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1048576")  # 1 GiB: index pages stay in memory while seeding
        con.execute("PRAGMA temp_store=MEMORY")  # statement journals (a trigger on runs) in memory
        have = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
        cols = [c for c in SEED_COLUMNS if c in have]
        idx = [SEED_COLUMNS.index(c) for c in cols]
        if len(cols) < len(SEED_COLUMNS):
            notes.append(f"runs lacks column(s) {sorted(set(SEED_COLUMNS) - set(cols))}: not inserted")
        sql = f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        rng = random.Random(8)
        rows = _rows(n, names, image, rng)
        con.execute("BEGIN")
        while True:
            chunk = [tuple(r[i] for i in idx) for r in _take(rows, 50_000)]
            if not chunk:
                break
            con.executemany(sql, chunk)
        _fill_counters(con, notes)
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return {"seed_s": time.perf_counter() - t0, "notes": notes}


def _take(it, k):
    out = []
    for x in it:
        out.append(x)
        if len(out) == k:
            break
    return out


def prepare_db(a, db_path, n, names, pipelines_dir, scratch, use_cache):
    """A database at db_path with the server's schema and n runs: migrated by starting the
    server once on an empty file, then seeded (or copied from the cache)."""
    data = os.path.join(scratch, "migrate-data")
    srv = Server(a.binary, server_env(a, pipelines_dir, data, db_path), scratch, "migrate")
    srv.stop()
    con = sqlite3.connect(db_path)  # the migrations may still be in the WAL: move them into the file
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    fp = schema_fingerprint(db_path)
    key = f"{fp[:16]}-{n}-v{SEED_VERSION}"
    cached = os.path.join(CACHE_DIR, key + ".db")
    info = {"runs": n, "schema": fp[:16], "problems": srv.problems}
    if use_cache and os.path.exists(cached):
        t0 = time.perf_counter()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                os.remove(db_path + suffix)  # checkpointed above; nothing of it may apply to the copy
        shutil.copyfile(cached, db_path)
        with open(cached + ".json") as f:
            info.update(json.load(f), cached=cached, copy_s=time.perf_counter() - t0)
    else:
        info.update(seed(db_path, n, names, a.image))
        if use_cache:
            os.makedirs(CACHE_DIR, exist_ok=True)
            shutil.copyfile(db_path, cached + ".tmp")
            with open(cached + ".json", "w") as f:
                json.dump({"seed_s": info["seed_s"], "notes": info["notes"]}, f)
            os.replace(cached + ".tmp", cached)
            info["cached_as"] = cached
    info["db_bytes"] = os.path.getsize(db_path)
    con = sqlite3.connect(db_path)
    info["rows"] = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    con.close()
    return info
