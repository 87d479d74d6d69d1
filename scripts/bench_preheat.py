#!/usr/bin/env python3
"""Pre-heat benchmark: the environment setup time of a pipeline's first run after a git
sync, with UV_PRE_HEAT off (the run resolves and downloads its requirements itself) against
on (the sync warmed them into the uv cache first). Each repetition uses a fresh DATA_DIR, so
a fresh uv cache; the pipeline's requirements come from PyPI. Prints medians and the ratio.

Usage: scripts/bench-preheat.sh [--binary PATH] [-n REPS] [--requirements "pkg==v ..."]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_scale_lib import Server, get_json, http_req, log, median, ratio, server_env  # noqa: E402


def make_repo(root, requirements):
    repo = os.path.join(root, "repo")
    os.makedirs(os.path.join(repo, "deps"))
    with open(os.path.join(repo, "deps", "main.py"), "w") as f:
        f.write("print('ok')\n")
    with open(os.path.join(repo, "deps", "requirements.txt"), "w") as f:
        f.write("\n".join(requirements) + "\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@x", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "deps"], cwd=repo, check=True)
    return repo


def one(a, repo, work, preheat):
    data = tempfile.mkdtemp(dir=work)
    empty = tempfile.mkdtemp(dir=work)
    env = server_env(a, empty, data, GIT_REPO_URL="file://" + repo, UV_PRE_HEAT="true" if preheat else "false")
    srv = Server(a.binary, env, work, "preheat" if preheat else "cold")
    try:
        deadline = time.time() + 600
        warm_s = None
        while time.time() < deadline:
            status = get_json(srv.addr, "/api/sync/status")
            warm = (status.get("pre_heat") or {}).get("deps") or {}
            if status.get("last_sync_ok") and (not preheat or warm.get("state") in ("ready", "failed")):
                warm_s = warm.get("seconds")
                if preheat and warm.get("state") != "ready":
                    raise RuntimeError(f"warm-up failed: {warm}")
                break
            time.sleep(0.2)
        code, body, _ = http_req(srv.addr, "/api/pipelines/deps/run", "POST", b"{}")
        if code != 200:
            raise RuntimeError(f"trigger answered {code}: {body[:200]!r}")
        run_id = __import__("json").loads(body)["id"]
        while time.time() < deadline:
            run = get_json(srv.addr, f"/api/runs/{run_id}")
            if run["status"] in ("SUCCESS", "FAILED", "INTERRUPTED"):
                if run["status"] != "SUCCESS":
                    raise RuntimeError(f"run ended {run['status']}: {run.get('error_message')}")
                return run.get("setup_duration"), warm_s
            time.sleep(0.2)
        raise RuntimeError("run did not finish")
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", default=os.environ.get("FASTFLOW_TEST_IMAGE", "fastflow-runner:latest"))
    ap.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    ap.add_argument("-n", type=int, default=3, help="repetitions of each case")
    ap.add_argument("--requirements", default="requests==2.32.3 pyyaml==6.0.2",
                    help="space-separated requirement lines")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="fastflow-bench-preheat-")
    repo = make_repo(work, a.requirements.split())
    cold, warm, warm_ups = [], [], []
    for i in range(a.n):
        log(f"repetition {i + 1}/{a.n}: UV_PRE_HEAT=false")
        cold.append(one(a, repo, work, False)[0])
        log(f"repetition {i + 1}/{a.n}: UV_PRE_HEAT=true")
        s, w = one(a, repo, work, True)
        warm.append(s)
        warm_ups.append(w)
    print(f"\n== pre-heat: setup time of the first run after a sync (requirements: {a.requirements}) ==")
    print(f"  UV_PRE_HEAT=false  setup {', '.join(f'{x:.2f}' for x in cold)} s  median {median(cold):.2f} s")
    print(f"  UV_PRE_HEAT=true   setup {', '.join(f'{x:.2f}' for x in warm)} s  median {median(warm):.2f} s")
    print(f"  warm-up itself     {', '.join(f'{x:.2f}' for x in warm_ups)} s (in the background, after the sync)")
    r = ratio(median(warm), median(cold))
    print(f"  pre-heated / cold  {r:.2f}x" if r is not None else "  ratio: -")


if __name__ == "__main__":
    main()
