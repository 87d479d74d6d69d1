#!/usr/bin/env bash
# Builds the server image with the Dockerfile and starts docker-compose.yaml with
# Debian's docker-compose (1.29), then checks the stack from the outside:
#
#   - the orchestrator container becomes healthy, /ready answers 200 with every check ok;
#   - it runs as uid 10001 on a read-only root file system, without the Docker socket;
#   - the socket proxy stand-in lets through what its variables allow and refuses the rest;
#   - a pipeline run started through the API succeeds through the proxy, and its bind
#     mounts are the host's directories (it reads a file of its own folder and writes
#     into the uv cache, which the test finds on the host);
#   - with the proxy recreated with POST=0 a run fails at once naming the refusal (403),
#     and runs again once POST=1 is back;
#   - the image's size is printed.
#
# Without registry access the base images come from scripts/build-base-images.sh and
# the socket proxy is its stand-in (tests/compose/docker-compose.test.yaml); production
# uses the real rust, debian and tecnativa/docker-socket-proxy images.
#
# Usage: scripts/test-compose-stack.sh          (as root; .ci/run calls it)
# Env:   FASTFLOW_TEST_IMAGE  runner image (default fastflow-runner:latest; built when missing)
#        KEEP_STACK=1         leave the stack running at the end (for a look; remove it yourself)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runner_image="${FASTFLOW_TEST_IMAGE:-fastflow-runner:latest}"
pipeline="compose_stack_probe"
t_start=$(date +%s)

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }
need docker "apt-get install -y docker.io"
need docker-compose "apt-get install -y docker-compose"
need python3 "apt-get install -y python3"
need curl "apt-get install -y curl"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (base images use debootstrap; the data folder is handed to uid 10001)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "error: the Docker engine does not answer (is dockerd running?)" >&2; exit 1; }

log() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
secs() { echo $(( $(date +%s) - $1 )); }

# --- the stack's files ------------------------------------------------------------
project="ffstack$$$(date +%s)"
work="$(mktemp -d /var/tmp/fastflow-stack-work.XXXXXX)"
home="$(mktemp -d /var/tmp/fastflow-stack.XXXXXX)"
env_file="$work/stack.env"
orch=""
started=""

compose() {
  docker-compose --ansi never --project-name "$project" --env-file "$env_file" \
    -f "$root/docker-compose.yaml" -f "$root/tests/compose/docker-compose.test.yaml" "$@"
}

teardown() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ -n "$started" ]; then
    echo
    echo "---- docker-compose logs (last 150 lines per service) ----" >&2
    compose logs --no-color --tail=150 >&2
    echo "---- end of logs ----" >&2
  fi
  if [ -n "${KEEP_STACK:-}" ] && [ -n "$started" ]; then
    echo "KEEP_STACK: left running as project $project (FASTFLOW_HOME $home, env file $env_file)"
    exit "$rc"
  fi
  if [ -n "$started" ]; then
    compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1
    # Run containers that outlived the server (a failure mid-run): only ours, by pipeline
    # name and by a mount under this test's folder.
    for c in $(docker ps -aq --filter "label=fastflow.pipeline=$pipeline"); do
      docker inspect --format '{{range .Mounts}}{{.Source}} {{end}}' "$c" | grep -q "$home" && docker rm -f "$c" >/dev/null
    done
  fi
  rm -rf "$work" "$home"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

fail() {
  echo >&2
  echo "FAIL: $*" >&2
  exit 1
}

# --- images the build starts from ----------------------------------------------
log "base images (stand-ins without a registry)"
t0=$(date +%s)
bash "$root/scripts/build-base-images.sh"
t_base=$(secs "$t0")
if ! docker image inspect "$runner_image" >/dev/null 2>&1; then
  log "building the runner image $runner_image"
  bash "$root/scripts/build-runner-image.sh" "$runner_image"
fi

# --- FASTFLOW_HOME with one pipeline -----------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
marker="stack-marker-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
chmod 755 "$home"
mkdir -p "$home/data" "$home/pipelines/$pipeline"
# The image runs as uid 10001, and its runs too: the data folder must be theirs.
chown 10001 "$home/data"
printf '%s\n' "$marker" >"$home/pipelines/$pipeline/marker.txt"
cat >"$home/pipelines/$pipeline/pipeline.json" <<'EOF'
{"description": "compose stack test: proves the run's mounts are the host's folders", "timeout": 120}
EOF
cat >"$home/pipelines/$pipeline/main.py" <<'EOF'
import os
import pathlib

# The working directory is the pipeline folder, bind-mounted from the host.
marker = pathlib.Path("marker.txt").read_text().strip()
print(f"STACK-PROBE cwd={os.getcwd()} uid={os.getuid()} marker={marker}")
# The uv cache is bind-mounted read-write from DATA_DIR/uv_cache on the host.
out = pathlib.Path(os.environ["UV_CACHE_DIR"]) / f"stack-probe-{os.environ['FASTFLOW_RUN_ID']}.txt"
out.write_text(marker + "\n")
print(f"STACK-PROBE wrote {out}")
EOF
chmod -R a+rX "$home/pipelines"
encryption_key="$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
cat >"$env_file" <<EOF
ENCRYPTION_KEY=$encryption_key
FASTFLOW_HOME=$home
PORT=$port
BASE_URL=http://127.0.0.1:$port
WORKER_BASE_IMAGE=$runner_image
METRICS_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
FASTFLOW_ENV_FILE=$env_file
EOF
base="http://127.0.0.1:$port"

# --- build and start ----------------------------------------------------------------
log "compose file check (docker-compose $(docker-compose version --short))"
compose config -q || fail "docker-compose does not accept docker-compose.yaml with the test override"

log "building fastflow:latest with the Dockerfile (docker-compose build; output in the log on failure)"
t0=$(date +%s)
previous_image="$(docker image inspect fastflow:latest --format '{{.Id}}' 2>/dev/null || true)"
if ! compose build orchestrator >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log" >&2
  fail "the Dockerfile did not build (last lines above)"
fi
t_build=$(secs "$t0")
ok "image built in ${t_build}s"
# A changed tree leaves the previous build behind: its build stage alone (the compiled
# target folder) is over 1 GB. Remove that stage and the previous image once they are
# replaced; an image still in use stays (docker rmi refuses).
stage_file=/var/tmp/fastflow-stack-build-stage.id
stage="$(awk '/^ ---> [0-9a-f]+$/ { id = $2 } /^Step [0-9]+\/[0-9]+ : FROM / { if (++from == 2) { print id; exit } }' "$work/build.log")"
if [ -n "$stage" ]; then
  old_stage="$(cat "$stage_file" 2>/dev/null || true)"
  [ -z "$old_stage" ] || [ "$old_stage" = "$stage" ] || docker rmi "$old_stage" >/dev/null 2>&1 || true
  echo "$stage" >"$stage_file"
fi
current_image="$(docker image inspect fastflow:latest --format '{{.Id}}')"
[ -z "$previous_image" ] || [ "$previous_image" = "$current_image" ] || docker rmi "$previous_image" >/dev/null 2>&1 || true

log "starting the stack (project $project, FASTFLOW_HOME $home, port $port)"
started=1
compose up -d || fail "docker-compose up failed"
orch="$(compose ps -q orchestrator)"
[ -n "$orch" ] || fail "no orchestrator container after docker-compose up"

# --- healthy and ready ------------------------------------------------------------
log "waiting for the orchestrator to be healthy (HEALTHCHECK of the Dockerfile)"
t0=$(date +%s)
health=""
while [ "$(secs "$t0")" -lt 180 ]; do
  state="$(docker inspect --format '{{.State.Status}}' "$orch")"
  health="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$orch")"
  [ "$state" = running ] || fail "the orchestrator container is $state, not running (exit code $(docker inspect --format '{{.State.ExitCode}}' "$orch"))"
  [ "$health" = healthy ] && break
  [ -n "$health" ] || fail "the orchestrator container has no health check (the Dockerfile's HEALTHCHECK is missing)"
  sleep 2
done
[ "$health" = healthy ] || fail "the orchestrator did not become healthy within 180s (health: $health; last probe: $(docker inspect --format '{{with .State.Health}}{{range .Log}}{{.Output}}{{end}}{{end}}' "$orch" | tail -n 3))"
ok "healthy after $(secs "$t0")s"

log "GET /ready"
t0=$(date +%s)
code=""
while [ "$(secs "$t0")" -lt 60 ]; do
  code="$(curl -s -o "$work/ready.json" -w '%{http_code}' --max-time 10 "$base/ready" || true)"
  [ "$code" = 200 ] && break
  sleep 2
done
python3 -m json.tool "$work/ready.json" 2>/dev/null || cat "$work/ready.json"
[ "$code" = 200 ] || fail "/ready answered ${code:-nothing} instead of 200 within 60s (body above)"
python3 - "$work/ready.json" <<'PY' || fail "/ready answered 200 but not every named check is ok (body above)"
import json, sys
d = json.load(open(sys.argv[1]))
checks = d.get("checks") or {}
want = {"database", "pipelines", "engine", "runner_image", "disk"}
missing = want - checks.keys()
bad = [k for k, v in checks.items() if not (isinstance(v, dict) and v.get("ok") is True)]
if missing or bad or d.get("ready") is not True:
    sys.exit(f"missing checks {sorted(missing)}, not ok {bad}, ready={d.get('ready')}")
if "tcp://docker-proxy:2375" not in str(checks["engine"].get("host")):
    sys.exit(f"engine host is {checks['engine'].get('host')}, not the proxy")
PY
ok "ready: database, pipelines, engine (tcp://docker-proxy:2375), runner_image, disk all ok"

# --- the container itself -------------------------------------------------------------
log "the orchestrator container"
user="$(docker inspect --format '{{.Config.User}}' "$orch")"
uid="$(docker exec "$orch" id -u)"
[ "$uid" = 10001 ] || fail "the server runs as uid $uid, not 10001 (image USER: $user)"
ok "runs as uid $uid (image USER $user)"
[ "$(docker inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$orch")" = true ] || fail "the root file system is not read-only (read_only: true in docker-compose.yaml)"
if docker exec "$orch" sh -c 'touch /opt/fastflow/probe' 2>/dev/null; then
  fail "the root file system took a write (/opt/fastflow/probe)"
fi
docker exec "$orch" sh -c 'touch /tmp/probe && rm /tmp/probe' || fail "/tmp is not writable (tmpfs in docker-compose.yaml)"
ok "read-only root file system (a write to /opt/fastflow fails), /tmp writable"
mounts="$(docker inspect --format '{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' "$orch")"
case "$mounts" in *docker.sock*) fail "the orchestrator has the Docker socket mounted ($mounts)" ;; esac
docker exec "$orch" sh -c '! test -e /var/run/docker.sock' || fail "/var/run/docker.sock exists inside the orchestrator"
[ "$mounts" = "$home:$home " ] || fail "the orchestrator's mounts are '$mounts', expected FASTFLOW_HOME at the same path ($home:$home)"
ok "no Docker socket; one mount, FASTFLOW_HOME at the same path inside ($home)"
caps="$(docker inspect --format '{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}' "$orch")"
case "$caps" in *ALL*no-new-privileges*) ok "capabilities dropped, no-new-privileges ($caps)" ;;
  *) fail "expected cap_drop ALL and no-new-privileges, got $caps" ;; esac

# --- the socket proxy stand-in's allow-list -------------------------------------------
# Raw HTTP from inside the orchestrator (its image has bash, not curl).
proxy_code() {
  docker exec "$orch" timeout 10 bash -c '
    exec 3<>/dev/tcp/docker-proxy/2375 || exit 1
    printf "%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" "$0" "$1" >&3
    read -r _ code _ <&3 && printf "%s" "$code"' "$1" "$2" 2>/dev/null || echo "no-answer"
}
expect_codes() {
  local method path want got
  while read -r method path want; do
    [ -n "$method" ] || continue
    got="$(proxy_code "$method" "$path")"
    [ "$got" = "$want" ] || fail "proxy: $method $path answered $got, expected $want (stand-in allow-list, env: $(docker inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$(compose ps -q docker-proxy)" | tr ' ' '\n' | grep -E '^(POST|CONTAINERS|IMAGES|INFO|PING|EVENTS|VERSION)=' | tr '\n' ' '))"
    printf '    ok: %-6s %-32s %s\n' "$method" "$path" "$got"
  done
}
log "socket proxy allow-list (CONTAINERS IMAGES INFO POST PING = 1, EVENTS VERSION = 0, the rest default 0)"
expect_codes <<'EOF'
GET  /_ping                   200
HEAD /v1.41/_ping             200
GET  /v1.41/containers/json   200
GET  /images/json             200
GET  /info                    200
GET  /version                 403
GET  /v1.41/events            403
GET  /volumes                 403
GET  /networks                403
GET  /exec/none/json          403
GET  /system/df               403
POST /build                   403
POST /v1.41/swarm/init        403
POST /containers/create       400
EOF

# --- a run through the proxy ----------------------------------------------------------
log "API token (fastflow token create, inside the container)"
token="$(docker exec "$orch" fastflow token create --name compose-stack-test --role write)" || fail "fastflow token create failed"
case "$token" in ff_*) ok "token made" ;; *) fail "fastflow token create printed '$token', not a token" ;; esac
auth="Authorization: Bearer $token"

# Starts a run of the probe pipeline; prints its id.
trigger() {
  local code
  code="$(curl -sS -o "$work/trigger.json" -w '%{http_code}' --max-time 20 -X POST -H "$auth" \
    -H 'Content-Type: application/json' -d '{}' "$base/api/pipelines/$pipeline/run")" || true
  [ "$code" = 200 ] || [ "$code" = 201 ] || [ "$code" = 202 ] \
    || fail "POST /api/pipelines/$pipeline/run answered ${code:-nothing}: $(cat "$work/trigger.json" 2>/dev/null)"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/trigger.json"
}
# Waits up to $2 seconds for run $1 to finish; prints its final status.
wait_run() {
  local id="$1" limit="$2" t0 status=""
  t0=$(date +%s)
  while [ "$(secs "$t0")" -lt "$limit" ]; do
    curl -sS -o "$work/run.json" --max-time 10 -H "$auth" "$base/api/runs/$id" || true
    status="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status",""))' "$work/run.json" 2>/dev/null || true)"
    case "$status" in SUCCESS|FAILED|INTERRUPTED) echo "$status"; return 0 ;; esac
    sleep 1
  done
  echo "${status:-unknown}"
}
run_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$work/run.json" "$1"; }

log "a run of $pipeline through the proxy"
t0=$(date +%s)
run_id="$(trigger)"
status="$(wait_run "$run_id" 180)"
curl -sS -o "$work/run.log" --max-time 20 -H "$auth" "$base/api/runs/$run_id/logs" || true
sed 's/^/    | /' "$work/run.log"
[ "$status" = SUCCESS ] || fail "run $run_id ended $status, not SUCCESS (error: $(run_field error_message))"
ok "run $run_id: SUCCESS in $(secs "$t0")s"
grep -q "STACK-PROBE cwd=/app uid=10001 marker=$marker" "$work/run.log" \
  || fail "the run's log lacks 'STACK-PROBE cwd=/app uid=10001 marker=$marker': its /app is not the host's pipeline folder"
ok "the run read marker.txt from its folder: /app is the host's $home/pipelines/$pipeline"
written="$home/data/uv_cache/stack-probe-$run_id.txt"
[ "$(cat "$written" 2>/dev/null)" = "$marker" ] \
  || fail "$written is missing or wrong on the host: the run's /cache/uv is not the host's DATA_DIR/uv_cache"
ok "the run wrote $written on the host (its /cache/uv is the host's DATA_DIR/uv_cache)"
compose logs --no-color docker-proxy >"$work/proxy.log" 2>&1
grep -Eq '"POST (/v[0-9.]+)?/containers/create' "$work/proxy.log" \
  || fail "the proxy's log shows no container create: the run did not go through it"
ok "the proxy logged the run's calls ($(grep -Ec '"(GET|POST|DELETE|HEAD) ' "$work/proxy.log") requests, container create among them)"

# --- a refused call ---------------------------------------------------------------------
log "recreating the proxy with POST=0 (only GET and HEAD pass)"
FASTFLOW_TEST_PROXY_POST=0 compose up -d --no-deps docker-proxy
t0=$(date +%s)
until [ "$(proxy_code GET /_ping)" = 200 ]; do
  [ "$(secs "$t0")" -lt 60 ] || fail "the recreated proxy does not answer /_ping within 60s"
  sleep 1
done
expect_codes <<'EOF'
GET  /containers/json         200
POST /containers/create       403
DELETE /containers/none       403
EOF
t0=$(date +%s)
run_id="$(trigger)"
status="$(wait_run "$run_id" 90)"
err="$(run_field error_message)"
echo "    error_message: $err"
[ "$status" = FAILED ] || fail "with POST=0 the run ended '$status' after $(secs "$t0")s, expected FAILED within 90s"
case "$err" in *403*) ;; *) fail "the failed run's error does not name the refusal (403): $err" ;; esac
case "$err" in *proxy*) ;; *) fail "the failed run's error does not mention the socket proxy: $err" ;; esac
ok "refused: the run failed in $(secs "$t0")s with the proxy's 403 named"

log "POST=1 again: runs work again"
compose up -d --no-deps docker-proxy
t0=$(date +%s)
until [ "$(proxy_code GET /_ping)" = 200 ]; do
  [ "$(secs "$t0")" -lt 60 ] || fail "the recreated proxy does not answer /_ping within 60s"
  sleep 1
done
run_id="$(trigger)"
status="$(wait_run "$run_id" 180)"
[ "$status" = SUCCESS ] || fail "after restoring POST=1 the run ended $status (error: $(run_field error_message))"
ok "run $run_id: SUCCESS"

# --- facts -------------------------------------------------------------------------------
size="$(docker image inspect fastflow:latest --format '{{.Size}}')"
log "done: every check passed"
echo "    image fastflow:latest: $(( size / 1000000 )) MB ($size bytes)"
echo "    base images ${t_base}s, image build ${t_build}s, whole stack test $(secs "$t_start")s"
