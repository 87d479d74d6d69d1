#!/usr/bin/env python3
"""Scheduler benchmark: N pipelines, each with an every-minute cron, for M minutes.

Runs the server twice on fresh data: once with the pipelines unscheduled (the baseline: the
same discovery, watcher and dispatcher, no schedules) and once scheduled. The Docker engine is
pointed at a port where nothing listens, so queued runs stay queued and only the scheduler's
own work is measured (no containers start). Reports the server's CPU in both, their ratio, and
the lag from each slot's time to its run row being written (runs.started_at), read from the
SQLite database afterwards.
"""
import argparse, json, os, shutil, socket, sqlite3, subprocess, sys, tempfile, time

import fastflow_auth  # noqa: E402  (signs the requests in; scripts/fastflow_auth.py)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks

def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

def write_pipelines(root, n, scheduled):
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        d = os.path.join(root, f"p{i:04d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "main.py"), "w") as f:
            f.write("print('hi')\n")
        meta = {"schedule_cron": "* * * * *", "overlap": "allow"} if scheduled else {}
        with open(os.path.join(d, "pipeline.json"), "w") as f:
            json.dump(meta, f)

def wait_ready(port, proc, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("server did not start")

def measure(binary, n, minutes, scheduled):
    work = tempfile.mkdtemp(prefix="ff-bench-sched-")
    try:
        write_pipelines(os.path.join(work, "pipelines"), n, scheduled)
        port = free_port()
        env = dict(os.environ,
                   DATA_DIR=os.path.join(work, "data"),
                   PIPELINES_DIR=os.path.join(work, "pipelines"),
                   PORT=str(port),
                   DOCKER_HOST="tcp://127.0.0.1:9",  # nothing listens: the engine is "away"
                   WORKER_BASE_IMAGE="none",
                   LOG_LEVEL="warn")
        fastflow_auth.sign_in(binary, env)
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, proc)
            # Start on a minute boundary + 2 s, so the window holds exactly `minutes` slots per job.
            now = time.time()
            time.sleep((60 - now % 60) + 2)
            cpu0, t0 = cpu_seconds(proc.pid), time.time()
            time.sleep(minutes * 60)
            cpu1, t1 = cpu_seconds(proc.pid), time.time()
            rss = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        lags = []
        slots = 0
        if scheduled:
            db = sqlite3.connect(os.path.join(work, "data", "fastflow.db"))
            # julianday() reads both stored forms (with `T` or a space, any fraction, an offset).
            lags = [row[0] for row in db.execute(
                "SELECT (julianday(r.started_at) - julianday(s.scheduled_time)) * 86400000.0"
                " FROM schedule_slots s JOIN runs r ON r.id = s.run_id")]
            slots = db.execute("SELECT COUNT(*) FROM schedule_slots").fetchone()[0]
        return {"cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0), "rss_mib": rss, "lags_ms": sorted(lags), "slots": slots}
    finally:
        shutil.rmtree(work, ignore_errors=True)

def pct(values, p):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--pipelines", type=int, default=1000)
    ap.add_argument("--minutes", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    base = measure(a.binary, a.pipelines, a.minutes, scheduled=False)
    sched = measure(a.binary, a.pipelines, a.minutes, scheduled=True)
    lags = sched["lags_ms"]
    out = {
        "pipelines": a.pipelines, "minutes": a.minutes,
        "baseline_cpu_percent": round(base["cpu_percent"], 3),
        "scheduled_cpu_percent": round(sched["cpu_percent"], 3),
        "cpu_ratio": round(sched["cpu_percent"] / base["cpu_percent"], 1) if base["cpu_percent"] > 0 else None,
        "baseline_rss_mib": round(base["rss_mib"], 1), "scheduled_rss_mib": round(sched["rss_mib"], 1),
        "slots_recorded": sched["slots"], "runs_queued": len(lags),
        "lag_p50_ms": round(pct(lags, 50), 1), "lag_p99_ms": round(pct(lags, 99), 1),
        "lag_max_ms": round(lags[-1], 1) if lags else None,
    }
    if a.json:
        print(json.dumps(out))
        return
    print(f"{a.pipelines} pipelines, every-minute cron, {a.minutes} min window")
    print(f"  CPU  baseline (unscheduled) {out['baseline_cpu_percent']:.2f}%  scheduled {out['scheduled_cpu_percent']:.2f}%  ratio {out['cpu_ratio']}x")
    print(f"  RSS  baseline {out['baseline_rss_mib']} MiB  scheduled {out['scheduled_rss_mib']} MiB")
    print(f"  slots recorded {out['slots_recorded']}, runs queued {out['runs_queued']}")
    print(f"  lag slot → run queued: p50 {out['lag_p50_ms']} ms  p99 {out['lag_p99_ms']} ms  max {out['lag_max_ms']} ms")

if __name__ == "__main__":
    main()
