#!/usr/bin/env bash
# Runs the whole ibsol stack on this machine:
#   deploy/local.sh up       install missing packages, build, start, install the example solution
#                            (the README's first command)
#   deploy/local.sh start    start every daemon in the background; returns once /healthz answers 200
#   deploy/local.sh stop     stop them by their recorded pids
#   deploy/local.sh status   show which daemons run and what /healthz says
# Settings (environment): IBSOL_DATA (data root, default ./var), IBSOL_HTTP_PORT (default 8080),
# IBSOL_RUNNERS (runner instances, default 2), IBSOL_BIN (build folder, default ./build); every other
# IBSOL_* setting is passed to the daemons as it is (see any daemon's --help).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
export IBSOL_DATA=${IBSOL_DATA:-./var}
if ! err=$(mkdir -p "$IBSOL_DATA" 2>&1); then
  echo "ibsol: IBSOL_DATA: cannot create data root '$IBSOL_DATA': ${err##*: }" >&2
  exit 1
fi
IBSOL_DATA=$(cd "$IBSOL_DATA" && pwd)
export IBSOL_DATA
export IBSOL_HTTP_PORT=${IBSOL_HTTP_PORT:-8080}
IBSOL_RUNNERS=${IBSOL_RUNNERS:-2}
bin=${IBSOL_BIN:-$top/build}
run="$IBSOL_DATA/run"
logs="$IBSOL_DATA/logs"
url="http://127.0.0.1:$IBSOL_HTTP_PORT"

daemon_bin() {
  case "$1" in
  runner*) echo "$bin/runner/ibsol-runner" ;;
  *) echo "$bin/$1/ibsol-$1" ;;
  esac
}

names() {
  echo packager marketplace gateway
  for ((i = 1; i <= IBSOL_RUNNERS; i++)); do echo "runner$i"; done
}

alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

# bounded: something else on the port that never answers must not hang start
healthz() { curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$url/healthz" 2>/dev/null || true; }

fail_with_log() {
  echo "ibsol: $1 did not come up; its log ($logs/$1.log) ends with:" >&2
  tail -n 20 "$logs/$1.log" >&2 || true
  stop_all >/dev/null 2>&1 || true
  exit 1
}

start_all() {
  if ! [[ "$IBSOL_RUNNERS" =~ ^[0-9]+$ ]] || ((IBSOL_RUNNERS < 1)); then
    echo "ibsol: IBSOL_RUNNERS must be a whole number of at least 1, not '$IBSOL_RUNNERS'" >&2
    exit 1
  fi
  for n in $(names); do
    if [[ ! -x $(daemon_bin "$n") ]]; then
      echo "ibsol: $(daemon_bin "$n") is missing: build first (deploy/local.sh up)" >&2
      exit 1
    fi
  done
  # the logs live in the data root: a data root that is not writable is reported here, naming the setting
  if ! err=$(mkdir -p "$run" "$logs" 2>&1) || [[ ! -w $IBSOL_DATA ]]; then
    echo "ibsol: IBSOL_DATA: data root '$IBSOL_DATA' is not writable${err:+: ${err##*: }}" >&2
    exit 1
  fi
  for n in $(names); do
    if alive "$n"; then
      echo "ibsol: $n is already running (pid $(cat "$run/$n.pid")); stop first" >&2
      exit 1
    fi
  done
  for n in $(names); do
    IBSOL_INSTANCE="$n" nohup "$(daemon_bin "$n")" >>"$logs/$n.log" 2>&1 &
    echo $! >"$run/$n.pid"
  done
  # Wait for /healthz; a daemon that exits meanwhile is reported with its log.
  for _ in $(seq 1 150); do
    for n in $(names); do alive "$n" || fail_with_log "$n"; done
    if [[ $(healthz) == 200 ]]; then
      # the answer may come from another server on the port while our gateway has just failed to bind it
      sleep 0.2
      for n in $(names); do alive "$n" || fail_with_log "$n"; done
      token=$(awk '$3 == "admin" && $1 !~ /^#/ {print $1; exit}' "$IBSOL_DATA/tokens")
      cat <<MSG
ibsol is up at $url  (data root $IBSOL_DATA, $IBSOL_RUNNERS runners, logs in $logs)
admin token: $token
web page: $url/  (log in with the token)
try:
  curl -s -H "Authorization: Bearer $token" $url/marketplace/list
  $bin/cli/ibsol login $url --token $token && $bin/cli/ibsol list
MSG
      return 0
    fi
    sleep 0.2
  done
  echo "ibsol: /healthz did not answer 200 within 30 s: $(curl -s --max-time 2 "$url/healthz" || true)" >&2
  fail_with_log gateway
}

stop_all() {
  local pids=()
  for n in $(names) $(cd "$run" 2>/dev/null && ls -- *.pid 2>/dev/null | sed 's/\.pid$//'); do
    if alive "$n"; then
      kill -TERM "$(cat "$run/$n.pid")" 2>/dev/null || true
      pids+=("$(cat "$run/$n.pid")")
    fi
    rm -f "$run/$n.pid"
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  echo "ibsol: stopped"
}

status_all() {
  local rc=0
  for n in $(names); do
    if alive "$n"; then echo "$n: running (pid $(cat "$run/$n.pid"))"; else echo "$n: stopped"; rc=3; fi
  done
  echo "healthz: $(curl -s --max-time 2 "$url/healthz" 2>/dev/null || echo 'no answer')"
  return $rc
}

case "${1:-}" in
up)
  "$top/deploy/install-deps.sh"
  "$top/deploy/build.sh" "$bin"
  start_all
  "$top/deploy/example.sh"
  cat <<MSG
first runs (the README walks through them):
  curl -s -H "Authorization: Bearer $token" $url/api/v1/solution/run_sync -d '{"name": "invoice_demo", "version": "1.0.0",
    "files": [{"file_name": "a.txt", "file_content": "$(base64 -w0 "$top/docs/example-solution/demo_data/invoice-1001.txt")"}]}'
  curl -s -H "Authorization: Bearer $token" $url/solution/run -d '{"name": "invoice_demo", "version": "1.0.0",
    "input_folder": "/admin/examples/invoice_demo/input"}'
MSG
  ;;
start) start_all ;;
stop) stop_all ;;
status) status_all ;;
restart)
  stop_all
  start_all
  ;;
*)
  echo "usage: deploy/local.sh up|start|stop|status|restart" >&2
  exit 2
  ;;
esac
