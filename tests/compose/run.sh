#!/usr/bin/env bash
# The compose stack for real (ctest's `compose`): builds deploy/docker-compose.yml's images, starts the stack
# with 3 runners, its ports on scratch ports of 127.0.0.1, runs the README's "Five minutes with curl"
# walkthrough through the TLS proxy, scales the runners down to 1 in the middle of a 300-file job (which must
# end DONE with every file), and tears it all down.
#   tests/compose/run.sh        exit 0 passed, 1 failed, 77 skipped: Docker cannot run here (reason printed)
# Starts dockerd when it is not running (as root) and stops it again at the end. Keeps the debian:12 and
# debian:12-slim base images (deploy/docker/base-images.sh makes them with debootstrap when missing) and
# Docker's build cache, so a second run does not compile again unless the sources changed; everything else it
# made (containers, volumes, network, its images) is removed. IBSOL_COMPOSE_KEEP=1 leaves a failed stack up
# for a look (then: docker-compose -p ibsol-compose-test -f deploy/docker-compose.yml down -v --rmi all).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
SKIP=77
project=ibsol-compose-test
SOL=$top/docs/example-solution
BIG=300 # files in the job the runners are scaled down under
keep=${IBSOL_COMPOSE_KEEP:-} # read now: every IBSOL_* variable is cleared before the stack starts

t0=$(date +%s)
say() { printf '[compose %4ds] %s\n' $(($(date +%s) - t0)) "$*"; }
skip() {
  echo "SKIPPED: $*"
  exit $SKIP
}
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# --- can Docker run here? ---------------------------------------------------------------------------------
# Debian's client first: it matches Debian's engine (another client on PATH may be a newer, foreign one).
if [[ -x /usr/bin/docker ]]; then docker=/usr/bin/docker; else docker=$(command -v docker) || docker=""; fi
[[ -n $docker ]] || skip "no docker client (deploy/install-deps.sh --test installs Debian's docker.io)"
command -v docker-compose >/dev/null ||
  skip "no docker-compose (deploy/install-deps.sh --test installs Debian's docker-compose)"
command -v python3 >/dev/null || skip "no python3 (the checks read JSON with it)"
# Compose builds through the docker CLI (BuildKit: its cache outlives the images removed at the end).
export PATH="$(dirname "$docker"):$PATH" COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1

# One run at a time on a machine: the project name, the images and the engine are shared. (The lock file is
# opened read-only, which flock needs no more than, so any user who can run Docker can take it.)
lock=/tmp/ibsol-compose-test.lock
[[ -e $lock ]] || { : >"$lock" && chmod 0666 "$lock"; } 2>/dev/null || true
exec 9<"$lock" || fail "cannot open $lock"
flock -w 1800 9 || fail "another tests/compose/run.sh held $lock for 30 minutes"

work=$(mktemp -d "${TMPDIR:-/tmp}/ibsol-compose.XXXXXX")
dockerd_pid=""
stack=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $stack ]]; then
    if ((rc != 0 && rc != SKIP)); then
      say "the stack's state and the last lines of each service's log:"
      compose ps
      for svc in gateway packager marketplace runner proxy; do
        compose logs --no-color --tail 25 "$svc" 2>&1 | cut -c1-400
      done
    fi
    if ((rc != 0 && rc != SKIP)) && [[ $keep == 1 ]]; then
      say "IBSOL_COMPOSE_KEEP=1: the stack stays up (project $project), and so does the engine"
      dockerd_pid=""
    elif ! compose down -v --rmi all --remove-orphans --timeout 10 >"$work/down.log" 2>&1; then
      cat "$work/down.log" >&2
      echo "FAILED: docker-compose down did not remove the stack" >&2
      rc=1
    fi
  fi
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "FAILED: the dockerd this script started (pid $dockerd_pid) did not stop in 30 s" >&2
      rc=1
    fi
  fi
  rm -rf "$work"
  say "took $(($(date +%s) - t0)) s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

engine_up() { $docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! engine_up; then
  out=$($docker version --format '{{.Server.Version}}' 2>&1 >/dev/null | head -n 1) || true
  [[ $(id -u) -eq 0 ]] || skip "the Docker engine does not answer ($out) and starting one needs root"
  command -v dockerd >/dev/null || skip "the Docker engine is not running and dockerd is not installed (docker.io)"
  say "starting dockerd"
  dockerd >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 120); do
    engine_up && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! engine_up; then
    reason=$(grep -iE 'level=(error|fatal)|failed' "$work/dockerd.log" | tail -n 3)
    kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    dockerd_pid=""
    skip "dockerd did not start: ${reason:-no answer in 60 s}"
  fi
fi

say "base images (deploy/docker/base-images.sh: debootstrap when missing)"
DOCKER=$docker "$top/deploy/docker/base-images.sh" || fail "could not make the debian:12 base images (above)"
if ! out=$($docker run --rm --network none debian:12-slim true 2>&1); then
  skip "the Docker engine cannot run a container here: $out"
fi

# --- the stack's settings: scratch ports, test image names, nothing from the caller's environment -------------
# Ports below the kernel's ephemeral range: the stack binds them only after its images are built, and a port the
# kernel hands out meanwhile (to the black-box tests running beside this, which bind port 0) would be taken by
# then ("address already in use", seen in CI).
free_port() {
  python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(10000, max(low, 10001))
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
else:
    raise SystemExit("no free port below the ephemeral range")'
}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^IBSOL_' || true)
http_port=$(free_port)
https_port=$(free_port)
while [[ $https_port == "$http_port" ]]; do https_port=$(free_port); done
export COMPOSE_FILE=$top/deploy/docker-compose.yml COMPOSE_PROJECT_NAME=$project
export IBSOL_IMAGE=$project:latest IBSOL_PROXY_IMAGE=$project-proxy:latest IBSOL_RUNNERS=3
export IBSOL_PUBLIC_HTTP_PORT=$http_port IBSOL_PUBLIC_HTTPS_PORT=$https_port
: >"$work/empty.env"
# --env-file: a developer's deploy/.env must not change what is tested.
compose() { docker-compose --env-file "$work/empty.env" "$@"; }

stack=yes # from here on, the exit tears the stack down
compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true # a run that was killed left it

say "docker-compose build"
if ! compose build >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  fail "docker-compose build failed (its last lines above)"
fi
built=$(grep -oE '^Building [a-z]+' "$work/build.log" | awk '{print $2}' | sort | tr '\n' ' ')
[[ $built == "packager proxy " ]] ||
  fail "docker-compose build built '$built', expected the ibsol image once (packager) and the proxy's"
say "built: $built($(($(date +%s) - t0)) s so far)"

say "docker-compose up -d (IBSOL_RUNNERS=3)"
compose up -d >"$work/up.log" 2>&1 || {
  cat "$work/up.log"
  fail "docker-compose up failed"
}

# Every container of the project (healthy), $1 runners among them.
wait_healthy() {
  local want_runners=$1 deadline=$(($(date +%s) + 120)) states
  while :; do
    states=$($docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
      $(compose ps -q) 2>/dev/null | sort)
    if [[ $(grep -c '^runner healthy$' <<<"$states") == "$want_runners" ]] &&
      [[ $(grep -vc '^runner ' <<<"$states") == 4 ]] && ! grep -qv ' healthy$' <<<"$states"; then
      return 0
    fi
    if (($(date +%s) > deadline)); then
      for c in $(compose ps -q); do $docker inspect -f '{{.Name}}: {{json .State.Health}}' "$c"; done
      fail "the stack did not turn healthy with $want_runners runners in 120 s: $(tr '\n' ',' <<<"$states")"
    fi
    sleep 1
  done
}
wait_healthy 3
say "healthy: gateway, packager, marketplace, proxy and 3 runners"

# The proxy's ports are on loopback only by default (IBSOL_PUBLIC_BIND unset).
proxy=$(compose ps -q proxy)
for p in 80 443; do
  bound=$($docker port "$proxy" "$p/tcp" | sort -u | tr '\n' ' ')
  [[ $bound =~ ^(127\.0\.0\.1:[0-9]+ )+$ ]] || fail "the proxy publishes $p on '$bound', expected 127.0.0.1 only"
done

# --- the README's walkthrough, through the TLS proxy ----------------------------------------------------------
URL=https://localhost:$https_port
TOKEN=$(compose exec -T gateway cat /data/tokens | awk '$3=="admin" && $1 !~ /^#/ {print $1; exit}')
[[ -n $TOKEN ]] || fail "no admin token in the gateway's /data/tokens"
H="Authorization: Bearer $TOKEN"
DRIVE="/admin/my_repo/fs/Instabase Drive"
DRIVE_URL="$URL/api/v2/files/admin/my_repo/fs/Instabase%20Drive"

# api METHOD PATH [curl args]: the answer's body in $body and its HTTP status in $code.
api() {
  local method=$1 path=$2 out
  shift 2
  out=$(curl -ksS --max-time 120 -X "$method" -H "$H" -w '\n%{http_code}' "$@" "$URL$path" 2>&1) ||
    fail "curl -X $method $URL$path: $out"
  code=${out##*$'\n'}
  body=${out%$'\n'*}
}
# check WHAT WANT-CODE PYTHON-CONDITION: the last answer had that status and its JSON (d) meets the condition.
check() {
  local what=$1 want=$2 cond=$3
  [[ $code == "$want" ]] || fail "$what: HTTP $code, expected $want: ${body:0:800}"
  python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
sys.exit(0 if eval("(%s)" % sys.argv[1]) else 1)' "$cond" <<<"$body" || fail "$what: expected $cond in: ${body:0:800}"
}
# jget PYTHON-EXPR: its value on the last answer's JSON (d).
jget() {
  python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1" <<<"$body"
}
# upload LOCAL-FOLDER DRIVE-URL: every file under it with one curl (one connection), each PUT answering 204.
upload() {
  local src=$1 dst=$2 f codes
  : >"$work/upload.cfg"
  while read -r f; do
    printf 'url = "%s/%s"\nupload-file = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{url_effective}\\n"\n' \
      "$dst" "${f#./}" "$src/${f#./}" >>"$work/upload.cfg"
  done < <(cd "$src" && find . -type f | sort)
  codes=$(curl -ksS --no-progress-meter --max-time 300 --parallel --parallel-max 4 -H "$H" -K "$work/upload.cfg") ||
    fail "uploading $src to $dst: $codes"
  if grep -qv '^204 ' <<<"$codes"; then fail "uploading $src: a PUT did not answer 204: $(grep -v '^204 ' <<<"$codes" | head -n 3)"; fi
  [[ $(wc -l <<<"$codes") == $(cd "$src" && find . -type f | wc -l) ]] || fail "uploading $src: not every file was sent"
}

say "walkthrough through $URL"
code=$(curl -ks -o "$work/health.json" -w '%{http_code}' "$URL/healthz")
body=$(cat "$work/health.json")
check "GET /healthz (no token)" 200 'd["status"] == "OK" and d["runners"] == 3'

# 1. Upload a content folder through the files API; list it.
upload "$SOL" "$DRIVE_URL/invoice"
api GET /api/v2/files/admin/my_repo/fs/Instabase%20Drive/invoice
check "folder listing" 200 '{"flow.json", "package.json", "refiners", "demo_data"} <= {n["name"] for n in d["nodes"]}'

# 2. Package it.
api POST /solution/create -d "{\"content_folder\": \"$DRIVE/invoice\", \"output_folder\": \"$DRIVE/build\"}"
check "solution/create" 200 'd["status"] == "OK" and d["name"] == "invoice_demo" and d["version"] == "1.0.0"'
pkg=$(jget 'd["ibsolution_path"]')
[[ $pkg == "$DRIVE/build/invoice_demo-1.0.0.ibsolution" ]] || fail "solution/create wrote '$pkg'"

# 3. Publish, install, browse.
api POST /marketplace/publish -d "{\"ibsolution_path\": \"$pkg\"}"
check "marketplace/publish" 200 'd["status"] == "OK"'
api POST /marketplace/install -d '{"name": "invoice_demo", "version": "latest"}'
check "marketplace/install" 200 'd["status"] == "OK"'
api GET /marketplace/list
check "marketplace/list" 200 'd["status"] == "OK" and "invoice_demo" in json.dumps(d)'
api GET "/marketplace/info?name=invoice_demo"
check "marketplace/info" 200 'd["status"] == "OK" and "1.0.0" in json.dumps(d)'

# 4. run_sync on two files.
printf '{"name": "invoice_demo", "version": "1.0.0", "files": [
  {"file_name": "invoice-1001.txt", "file_content": "%s"},
  {"file_name": "invoice-1002.pdf", "file_content": "%s"}]}' \
  "$(base64 -w0 "$SOL/demo_data/invoice-1001.txt")" "$(base64 -w0 "$SOL/demo_data/invoice-1002.pdf")" >"$work/sync.json"
api POST /api/v1/solution/run_sync --data-binary @"$work/sync.json"
check "run_sync" 200 'd["status"] == "OK" and len(d["records"]) == 2 and
  {"INV-1001", "INV-1002"} <= {r["value"] for rec in d["records"] for r in rec["results"] if r["key"] == "invoice_no"}'

# wait_job JOB SECONDS: polls jobs/status until DONE (bounded); the final answer stays in $body.
wait_job() {
  local job=$1 deadline=$(($(date +%s) + $2))
  while :; do
    api GET "/jobs/status?job_id=$job"
    [[ $code == 200 ]] || fail "jobs/status of $job: HTTP $code: ${body:0:500}"
    [[ $(jget 'd["state"]') == DONE ]] && return 0
    (($(date +%s) > deadline)) && fail "job $job did not end in $2 s: ${body:0:800}"
    sleep 0.5
  done
}

# 5. A folder in the background; follow the job; its results and output folder.
upload "$SOL/demo_data" "$DRIVE_URL/input"
api POST /solution/run -d "{\"name\": \"invoice_demo\", \"version\": \"1.0.0\", \"input_folder\": \"$DRIVE/input\",
  \"settings\": {\"output_has_run_id\": true}}"
check "solution/run" 200 'd["status"] == "OK" and d["job_id"]'
job=$(jget 'd["job_id"]')
wait_job "$job" 120
check "jobs/status" 200 'd["results"][0]["status"] == "OK" and json.loads(d["cur_status"])["status"] == "COMPLETE"'
out_folder=$(jget 'd["results"][0]["output_folder"]')
events=$(curl -ksSN --max-time 30 -H "$H" "$URL/jobs/events?job_id=$job" 2>&1) ||
  fail "jobs/events of an ended job did not end by itself in 30 s: ${events:0:500}"
grep -q '^data: .*COMPLETE' <<<"$events" || fail "jobs/events sent no COMPLETE event: ${events:0:800}"
api GET "/jobs/results?job_id=$job"
check "jobs/results" 200 'd["status"] == "OK" and sorted(r["file_name"] for r in d["records"]) ==
  ["invoice-1001.txt", "invoice-1002.pdf", "invoice-1003-scan.png"]'
api GET "/api/v2/files$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$out_folder")"
check "output folder listing" 200 '"batch.ibflowresults" in {n["name"] for n in d["nodes"]}'
say "walkthrough passed"

# --- 300 files; the runners scaled from 3 down to 1 while the job runs ------------------------------------------
# Every 5th file a scan (OCR takes the time that keeps the job running through the scale-down), the others
# text and PDF invoices.
mkdir "$work/big"
for i in $(seq -w 0 $((BIG - 1))); do
  case $((10#$i % 10)) in
  [05]) cp "$SOL/demo_data/invoice-1003-scan.png" "$work/big/f$i.png" ;;
  [1379]) cp "$SOL/demo_data/invoice-1002.pdf" "$work/big/f$i.pdf" ;;
  *) cp "$SOL/demo_data/invoice-1001.txt" "$work/big/f$i.txt" ;;
  esac
done
upload "$work/big" "$DRIVE_URL/big"
say "uploaded $BIG files"
api POST /solution/run -d "{\"name\": \"invoice_demo\", \"version\": \"1.0.0\", \"input_folder\": \"$DRIVE/big\"}"
check "solution/run (300 files)" 200 'd["status"] == "OK" and d["job_id"]'
job=$(jget 'd["job_id"]')
# Scale down once the job is under way, and not after it ended.
deadline=$(($(date +%s) + 60))
while :; do
  api GET "/jobs/status?job_id=$job"
  check "jobs/status (300 files)" 200 'd["state"] == "PENDING"'
  python3 -c 'import json, sys; c = json.loads(json.loads(sys.stdin.read())["cur_status"]); sys.exit(0 if c["status"] == "RUNNING" and c["index"] >= 10 else 1)' <<<"$body" && break
  (($(date +%s) > deadline)) && fail "the 300-file job did not get under way in 60 s: ${body:0:500}"
  sleep 0.2
done
say "job $job under way ($(jget 'json.loads(d["cur_status"])["curMsg"]')): scaling the runners to 1"
# (--no-recreate: the containers that stay, the runner among them, are left as they are)
compose up -d --scale runner=1 --no-recreate >"$work/scale.log" 2>&1 || {
  cat "$work/scale.log"
  fail "docker-compose up --scale runner=1 failed"
}
[[ $(compose ps -q runner | wc -l) == 1 ]] || fail "runners after --scale runner=1: $(compose ps runner)"
api GET "/jobs/status?job_id=$job"
progress=$(jget 'json.loads(d["cur_status"])["curMsg"]')
[[ $(jget 'd["state"]') == PENDING ]] ||
  fail "the 300-file job ended before the scale-down took effect, so it proved nothing: ${body:0:500}"
say "2 runners stopped with the job at '$progress'"
wait_job "$job" 300
check "the 300-file job after the scale-down" 200 'd["results"][0]["status"] == "OK" and
  json.loads(d["cur_status"])["status"] == "COMPLETE" and json.loads(d["cur_status"])["total"] == 300 and
  json.loads(d["cur_status"])["index"] == 300'
api GET "/jobs/results?job_id=$job"
check "jobs/results (300 files)" 200 'd["status"] == "OK" and len(d["records"]) == 300'
python3 -c 'import json, os, sys
d = json.loads(sys.stdin.read())
names = sorted(r["file_name"] for r in d["records"])
want = sorted(os.listdir(sys.argv[1]))
if names != want:
    missing = sorted(set(want) - set(names)); extra = [n for n in set(names) if names.count(n) > 1]
    sys.exit("records: %d, missing %s, twice %s" % (len(names), missing[:10], extra[:10]))
bad = [r["file_name"] for r in d["records"] if r.get("error")]
if bad:
    sys.exit("files with an error: %s" % bad[:10])' "$work/big" <<<"$body" || fail "jobs/results (300 files) is not one record per file"
wait_healthy 1
say "the 300-file job ended DONE with every file on 1 runner"
