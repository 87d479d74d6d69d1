#!/usr/bin/env python3
"""Scale benchmark for Fast-Flow (stdlib only): does the server stay fast as the work grows?
Every figure is printed next to a baseline measured in the same run, with their ratio:

  lists      history scale: the list pages and API endpoints under 10 concurrent clients on a
             database of 1 000 runs (baseline) and one of --runs runs (default 1 000 000);
             req/s, p50, p99, ratio big/small; server RSS after the load.
  finish     a run that prints --lines lines as fast as it can: trigger -> finished, against a
             bare `docker run --rm IMAGE python3 -c ...` with and without PYTHONUNBUFFERED=1.
  viewers    --viewers live SSE viewers of a --burst-lines burst: run duration, peak RSS and
             /health latency against the same run with no viewer; every viewer got every line?
  pipelines  --pipelines folders (default 100,5000): start-up, time for a new folder to appear,
             /pipelines and /api/pipelines under load, ratio large/small.

Sections: --only lists,finish,viewers,pipelines (default: all). The load client is `wrk` when
installed (apt-get install wrk), else a Python keep-alive thread pool.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scale_lib import (Server, f_mib, f_ms, f_num, f_ratio, get_json, http_req, load, log, median,
                             prepare_db, ratio, server_env, table, write_pipeline)
import bench_scale_runs

SECTIONS = ["lists", "finish", "viewers", "pipelines"]
N_PIPELINES = 50
ENDPOINTS = ["/", "/fragments/dashboard", "/system", "/runs?trigger=manual", "/runs?error_type=oom",
             "/runs?from=2026-06-01&to=2026-06-30", "/runs?pipeline=etl_00&trigger=webhook", "/pipelines", "/pipelines/etl_00", "/pipelines/etl_49", "/runs", "/runs?pipeline=etl_00",
             "/runs?status=FAILED", "/runs?pipeline=etl_03&status=INTERRUPTED", "/api/pipelines",
             "/api/pipelines/etl_00", "/api/runs", "/api/runs?pipeline_name=etl_00",
             "/api/runs?status_filter=FAILED", "/api/runs?pipeline_name=etl_03&status_filter=INTERRUPTED",
             "/api/pipelines/etl_00/runs", "/api/runs?offset=90000&limit=50"]
KEYSET = "keyset page at row ~90 000"


def keyset_path(srv, target_rows):
    """/api/runs?limit=50&cursor=C where C is reached by following next_cursor with limit=1000
    from the first page, or None when the server gives no next_cursor. (path, rows skipped, note)."""
    first = get_json(srv.addr, "/api/runs?limit=50")
    if "next_cursor" not in first:
        return None, 0, "no next_cursor in /api/runs?limit=50"
    cursor, skipped, path = None, 0, "/api/runs?limit=1000"
    while skipped < target_rows:
        page = get_json(srv.addr, path, timeout=120)
        if not page.get("runs"):
            break
        skipped += len(page["runs"])
        if not page.get("next_cursor"):
            break
        cursor = page["next_cursor"]
        path = "/api/runs?limit=1000&cursor=" + urllib.parse.quote(str(cursor), safe="")
    if cursor is None:
        cursor = first.get("next_cursor")
        skipped = len(first.get("runs", []))
    if cursor is None:
        return None, skipped, "no next_cursor after the first page"
    return "/api/runs?limit=50&cursor=" + urllib.parse.quote(str(cursor), safe=""), skipped, None


def measure_lists(a, work, res, out):
    pipelines = os.path.join(work, "lists-pipelines")
    names = [f"etl_{i:02d}" for i in range(N_PIPELINES)]
    for name in names:
        write_pipeline(pipelines, name, 'print("hi")\n')
    use_wrk = shutil.which("wrk") is not None and not a.no_wrk
    dbs = {}
    for label, n in (("small", a.small_runs), ("big", a.runs)):
        db = os.path.join(work, f"lists-{label}.db")
        log(f"lists: preparing the {label} database ({n} runs)")
        dbs[label] = prepare_db(a, db, n, names, pipelines, work, use_cache=(label == "big" and not a.no_cache))
        dbs[label]["path"] = db
    res["databases"] = {k: {x: y for x, y in v.items() if x != "path"} for k, v in dbs.items()}
    res["tool"] = "wrk" if use_wrk else "python"
    per = {}
    for label, info in dbs.items():
        data = os.path.join(work, f"lists-data-{label}")
        srv = Server(a.binary, server_env(a, pipelines, data, info["path"]), work, f"lists-{label}")
        try:
            r = per[label] = {"startup_s": srv.startup_s, "endpoints": {}, "problems": srv.problems}
            idle = srv.mem_kib()
            r["idle_rss_kib"] = idle[0]
            paths = list(ENDPOINTS)
            ks, skipped, note = keyset_path(srv, 90_000)
            r["keyset"] = {"path": ks, "rows_skipped": skipped, "note": note}
            for path in paths + ([ks] if ks else []):
                name = KEYSET if path == ks else path
                status, body, secs = http_req(srv.addr, path, timeout=120)
                e = r["endpoints"][name] = {"first_status": status, "first_ms": secs * 1000}
                if status != 200:
                    e["first_body"] = body[:300].decode(errors="replace")
                    log(f"  {label} {path}: HTTP {status}")
                    continue
                e["single_ms"] = median([http_req(srv.addr, path, timeout=120)[2] * 1000 for _ in range(3)])
                log(f"  {label} {name}: {a.seconds} s at {a.clients} clients")
                e.update(load(srv.addr, path, a.seconds, a.clients, use_wrk))
                if not srv.alive():
                    raise RuntimeError(srv.died())
            r["rss_kib"], r["hwm_kib"] = srv.mem_kib()
        finally:
            srv.stop()
    res.update(per)

    out(f"\n== lists: history scale, {a.clients} concurrent clients, {a.seconds} s per endpoint "
        f"(load: {res['tool']}) ==")
    rows = []
    for label, info in res["databases"].items():
        how = (f"copied from cache in {info['copy_s']:.1f} s (seeded originally in {info['seed_s']:.1f} s)"
               if "copy_s" in info else f"seeded in {info['seed_s']:.1f} s")
        rows.append([label, f"{info['rows']:,}", f"{info['db_bytes'] / 2**20:.1f} MiB", how,
                     "; ".join(info.get("notes", []))])
    table(["database", "runs", "file size", "seed", "counters"], rows, out)
    s, b = per["small"], per["big"]
    out("")
    rows, notes, single = [], [], []
    for name in ENDPOINTS + [KEYSET]:
        es, eb = s["endpoints"].get(name), b["endpoints"].get(name)
        if es is None and eb is None:
            rows.append([name] + ["-"] * 9)
            notes.append(f"{name}: not measured: " + (b["keyset"]["note"] or s["keyset"]["note"] or "-"))
            continue
        cells = [name]
        for e in (es, eb):
            if e is None or e.get("first_status") != 200:
                cells += [f"HTTP {e.get('first_status') if e else '-'}", "-", "-"]
            else:
                cells += [f_num(e.get("req_s")), f_ms(e.get("p50_ms")), f_ms(e.get("p99_ms"))]
        ok = es and eb and es.get("req_s") and eb.get("req_s")
        cells += [f_ratio(ratio(eb["req_s"], es["req_s"])) if ok else "-",
                  f_ratio(ratio(eb.get("p50_ms"), es.get("p50_ms"))) if ok else "-",
                  f_ratio(ratio(eb.get("p99_ms"), es.get("p99_ms"))) if ok else "-"]
        rows.append(cells)
        for lbl, e in (("small", es), ("big", eb)):
            if e and e.get("first_status", 200) != 200:
                notes.append(f"{name} ({lbl}): HTTP {e['first_status']}: {e.get('first_body', '')[:200]}")
            elif e and (e.get("non_200") or e.get("errors") or e.get("error")):
                notes.append(f"{name} ({lbl}): {e.get('non_200', 0)} non-200 answers, {e.get('errors', 0)} socket errors"
                             + (f" ({e['socket_errors']})" if e.get("socket_errors") else "") + (f"; {e['error']}" if e.get("error") else ""))
        if es and eb and es.get("single_ms") and eb.get("single_ms"):
            single.append([name, f_ms(es["single_ms"]), f_ms(eb["single_ms"]), f_ratio(ratio(eb["single_ms"], es["single_ms"]))])
    table(["endpoint", "small req/s", "p50", "p99", "big req/s", "p50", "p99", "req/s b/s", "p50 b/s", "p99 b/s"], rows, out)
    out("  (b/s = big / small)")
    for n in notes:
        out("  ** " + n)
    out("")
    out("  one client: median of 3 sequential requests (after the first, which checked for 200)")
    table(["endpoint", "small", "big", "big/small"], single, out)
    for label in ("small", "big"):
        k = per[label]["keyset"]
        out(f"  keyset ({label}): " + (f"{k['path'][:80]}... after {k['rows_skipped']:,} rows" if k["path"]
                                      else f"not supported ({k['note']})"))
    out("")
    table(["server", "small", "big", "big/small"],
          [["start-up until /health", f_ms(s["startup_s"] * 1000), f_ms(b["startup_s"] * 1000),
            f_ratio(ratio(b["startup_s"], s["startup_s"]))],
           ["RSS idle after start", f_mib(s["idle_rss_kib"]), f_mib(b["idle_rss_kib"]),
            f_ratio(ratio(b["idle_rss_kib"], s["idle_rss_kib"]))],
           ["VmRSS after the load", f_mib(s["rss_kib"]), f_mib(b["rss_kib"]),
            f_ratio(ratio(b["rss_kib"], s["rss_kib"]))],
           ["VmHWM after the load", f_mib(s["hwm_kib"]), f_mib(b["hwm_kib"]),
            f_ratio(ratio(b["hwm_kib"], s["hwm_kib"]))]], out)


# The page shows 100 pipelines a page; the API lists all unless asked for a page.
LIST_PATHS = ("/pipelines", "/api/pipelines?limit=100", "/api/pipelines")


def measure_pipelines(a, work, res, out):
    use_wrk = shutil.which("wrk") is not None and not a.no_wrk
    sizes = [int(x) for x in a.pipelines.split(",")]
    for n in sizes:
        root = os.path.join(work, f"many-{n}")
        for i in range(n):
            write_pipeline(root, f"p{i:05d}", 'print("hi")\n')
        data = os.path.join(work, f"many-data-{n}")
        env = server_env(a, root, data)
        r = res[str(n)] = {"startups_s": [], "appear_s": [], "list_ms": [], "problems": []}
        log(f"pipelines: {n} folders, 3 starts")
        for _ in range(3):
            srv = Server(a.binary, env, work, f"pipelines-{n}")
            r["startups_s"].append(srv.startup_s)
            if len(r["startups_s"]) < 3:
                srv.stop()
                r["problems"] += srv.problems
        try:
            time.sleep(1)
            r["idle_rss_kib"] = srv.mem_kib()[0]
            r["listed"] = len(get_json(srv.addr, "/api/pipelines"))
            for k in range(5):
                name = f"new_{k}"
                t0 = time.perf_counter()
                write_pipeline(root, name, 'print("new")\n')
                while time.perf_counter() - t0 < 30:
                    t = time.perf_counter()
                    # A search, so the poll measures discovery rather than the full list's size.
                    status, body, _ = http_req(srv.addr, f"/api/pipelines?q={name}", timeout=60)
                    r["list_ms"].append((time.perf_counter() - t) * 1000)
                    if status == 200 and f'"name":"{name}"' in body.decode():
                        r["appear_s"].append(time.perf_counter() - t0)
                        break
                    time.sleep(0.01)
                else:
                    r["appear_s"].append(None)
                time.sleep(1)
            for path in LIST_PATHS:
                log(f"  {n} pipelines {path}: {a.seconds} s at {a.clients} clients")
                status = http_req(srv.addr, path, timeout=60)[0]
                r[path] = load(srv.addr, path, a.seconds, a.clients, use_wrk) if status == 200 else {"first_status": status}
            r["rss_kib"], r["hwm_kib"] = srv.mem_kib()
        finally:
            srv.stop()
            r["problems"] += srv.problems

    lo, hi = str(sizes[0]), str(sizes[-1])
    L, H = res[lo], res[hi]
    out(f"\n== pipelines: {lo} against {hi} pipeline folders (no runs) ==")

    def appear(r):
        xs = [x for x in r["appear_s"] if x is not None]
        return median(xs) * 1000 if xs else None

    rows = [["discovered (GET /api/pipelines)", str(L["listed"]), str(H["listed"]), "-"],
            ["start-up until /health (3 starts)", ", ".join(f"{x * 1000:.0f}" for x in L["startups_s"]) + " ms",
             ", ".join(f"{x * 1000:.0f}" for x in H["startups_s"]) + " ms", "-"],
            ["start-up, median of 3", f_ms(median(L["startups_s"]) * 1000), f_ms(median(H["startups_s"]) * 1000),
             f_ratio(ratio(median(H["startups_s"]), median(L["startups_s"])))],
            ["new folder -> in /api/pipelines, median of 5", f_ms(appear(L)), f_ms(appear(H)),
             f_ratio(ratio(appear(H), appear(L)))],
            ["  (each of the 5)", ", ".join("-" if x is None else f"{x * 1000:.0f}" for x in L["appear_s"]) + " ms",
             ", ".join("-" if x is None else f"{x * 1000:.0f}" for x in H["appear_s"]) + " ms", "-"],
            ["  one poll of /api/pipelines?q=NAME, median", f_ms(median(L["list_ms"])), f_ms(median(H["list_ms"])),
             f_ratio(ratio(median(H["list_ms"]), median(L["list_ms"])))],
            ["RSS idle", f_mib(L["idle_rss_kib"]), f_mib(H["idle_rss_kib"]),
             f_ratio(ratio(H["idle_rss_kib"], L["idle_rss_kib"]))]]
    for path in LIST_PATHS:
        for key, label, f in (("req_s", "req/s", f_num), ("p50_ms", "p50", f_ms), ("p99_ms", "p99", f_ms)):
            lv, hv = L[path].get(key), H[path].get(key)
            rows.append([f"{path} {label} ({a.clients} clients)", f(lv), f(hv), f_ratio(ratio(hv, lv))])
        bad = [f"{n}: {r[path].get('first_status', 200)} first, {r[path].get('non_200', 0)} non-200, "
               f"{r[path].get('errors', 0)} socket errors" for n, r in ((lo, L), (hi, H))
               if r[path].get("first_status", 200) != 200 or r[path].get("non_200") or r[path].get("errors")]
        if bad:
            rows.append([f"{path} errors", "; ".join(bad), "", ""])
    rows += [["VmRSS after the load", f_mib(L["rss_kib"]), f_mib(H["rss_kib"]), f_ratio(ratio(H["rss_kib"], L["rss_kib"]))],
             ["VmHWM after the load", f_mib(L["hwm_kib"]), f_mib(H["hwm_kib"]), f_ratio(ratio(H["hwm_kib"], L["hwm_kib"]))]]
    table(["", lo, hi, f"{hi}/{lo}"], rows, out)


def describe(binary):
    """`fastflow --version`, and `git describe` of the checkout the binary was built from
    (found through the dep-info file cargo writes next to it)."""
    parts = []
    try:
        parts.append(subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip())
    except OSError as e:
        parts.append(f"--version failed: {e}")
    src = None
    try:
        with open(os.path.splitext(binary)[0] + ".d") as f:
            for tok in f.read().split():
                if tok.endswith("/src/main.rs"):
                    src = tok[: -len("/src/main.rs")]
                    break
    except OSError:
        pass
    if src:
        d = subprocess.run(["git", "-C", src, "describe", "--always", "--dirty", "--tags"],
                           capture_output=True, text=True).stdout.strip()
        parts.append(f"built from {src} at {d or '(not a git checkout)'}")
    else:
        parts.append("source checkout unknown (no dep-info file next to the binary)")
    return "; ".join(parts)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    ap.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    ap.add_argument("--runs", type=int, default=1_000_000, help="runs in the big database (lists)")
    ap.add_argument("--small-runs", type=int, default=1_000, help="runs in the small database (lists)")
    ap.add_argument("--seconds", type=int, default=5, help="load duration per endpoint")
    ap.add_argument("--clients", type=int, default=10, help="concurrent clients of the load")
    ap.add_argument("--no-cache", action="store_true", help="seed the big database afresh, do not cache it")
    ap.add_argument("--no-wrk", action="store_true", help="use the Python load client even if wrk is installed")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines of the big log (finish)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per series (finish)")
    ap.add_argument("--viewers", type=int, default=50, help="live SSE viewers (viewers)")
    ap.add_argument("--burst-lines", type=int, default=200_000, help="lines of the burst (viewers)")
    ap.add_argument("--pipelines", default="100,5000", help="pipeline folder counts: small,large (pipelines)")
    ap.add_argument("--limit", type=int, default=900, help="seconds a run may take")
    ap.add_argument("--json", action="store_true", help="JSON results on stdout (tables on stderr)")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")

    out = (lambda s="": print(s, file=sys.stderr, flush=True)) if a.json else (lambda s="": print(s, flush=True))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    header = {"binary": a.binary, "version": describe(a.binary), "cores": os.cpu_count(), "cpu": cpu_model(),
              "memory_gib": round(mem, 1), "image": a.image,
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
              "sections": only}
    out("Fast-Flow scale benchmark (scripts/bench_scale.py)")
    out(f"  binary   {header['binary']}")
    out(f"  version  {header['version']}")
    out(f"  machine  {header['cores']} cores ({header['cpu']}), {header['memory_gib']} GiB, {platform.platform()}")
    out(f"  image    {a.image}")
    out(f"  date     {header['date']}")
    out(f"  sections {', '.join(only)}")
    out(f"  load     {loadavg()} (1/5/15-min load average at the start; other jobs on the machine show here)")
    results = {"header": header}
    work = tempfile.mkdtemp(prefix="fastflow-bench-scale-", dir="/var/tmp")
    steps = {"lists": measure_lists, "finish": bench_scale_runs.measure_finish,
             "viewers": bench_scale_runs.measure_viewers, "pipelines": measure_pipelines}
    try:
        for name in SECTIONS:
            if name not in only:
                continue
            res = results[name] = {}
            t0 = time.perf_counter()
            try:
                steps[name](a, work, res, out)
            except Exception as e:  # noqa: BLE001 - a failure is a result, not a traceback
                res["error"] = f"{type(e).__name__}: {e}"
                out(f"\n== {name}: FAILED: {res['error']}")
            res["section_s"] = time.perf_counter() - t0
            log(f"{name}: {res['section_s']:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problems = []
    for name in only:
        problems += _problems(results.get(name, {}))
    out("\n== server WARN/ERROR log lines (grouped with numbers masked; first of each shown) ==")
    groups = {}
    for p in problems:
        key = re.sub(r"\d+(\.\d+)?", "#", p)[:300]
        g = groups.setdefault(key, {"n": 0, "first": p, "elapsed": []})
        g["n"] += 1
        if m := re.search(r"elapsed_secs=([\d.]+)", p):
            g["elapsed"].append(float(m.group(1)))
    for g in groups.values():
        el = f" [elapsed_secs {min(g['elapsed']):.2f}..{max(g['elapsed']):.2f}]" if g["elapsed"] else ""
        out(f"  ({g['n']}x){el} {g['first'][:300]}")
    if not groups:
        out("  none")
    results["server_warnings"] = [{"count": g["n"], "first": g["first"]} for g in groups.values()]
    results["loadavg_end"] = loadavg()
    out(f"\n  load average at the end: {results['loadavg_end']}")
    if a.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


def _problems(node):
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            found += list(v) if k == "problems" and isinstance(v, list) else _problems(v)
    return found


if __name__ == "__main__":
    sys.exit(main())
