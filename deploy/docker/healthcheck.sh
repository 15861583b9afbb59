#!/bin/sh
# ibsol container health probe (installed as /usr/local/bin/ibsol-healthcheck):  ibsol-healthcheck [DAEMON]
# DAEMON defaults to the ibsol daemon running in this container (found in /proc).
#   gateway                GET /healthz on the gateway's own port answers, and packager and marketplace are
#                          up (an attached runner is not required: see below)
#   packager, marketplace  `ibsol-op SERVICE ping` on the service's own URL answers (when it listens)
#   runner                 the runner holds an established TCP connection to the gateway's runner port
#                          (runners dial, so nothing can ping them from inside their container)
# Exit 0 healthy, 1 unhealthy (Docker's convention); the reason goes to stdout (docker inspect shows it).
set -eu
bin=${IBSOL_BIN_DIR:-/usr/local/bin}

detect() {
  for f in /proc/[0-9]*/cmdline; do
    a0=$(tr '\0' '\n' <"$f" 2>/dev/null | head -n 1) || continue
    case "${a0##*/}" in
    ibsol-gateway | ibsol-packager | ibsol-marketplace | ibsol-runner)
      a0=${a0##*/}
      echo "${a0#ibsol-}"
      return 0
      ;;
    esac
  done
  return 1
}

is_true() {
  case "$1" in 1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss] | [Oo][Nn]) return 0 ;; *) return 1 ;; esac
}

loopback() {
  case "$1" in
  tcp://0.0.0.0:* | tcp4://0.0.0.0:* | tcp://\*:*) echo "tcp://127.0.0.1:${1##*:}" ;;
  tcp://\[::\]:* | tcp6://\[::\]:*) echo "tcp://[::1]:${1##*:}" ;;
  *) echo "$1" ;;
  esac
}

# Is there an ESTABLISHED (st 01) TCP connection whose remote port is $1?
connected_to_port() {
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && $4 == "01" && substr($3, length($3) - 4) == p { found = 1 }
    END { exit found ? 0 : 1 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

daemon=${1:-}
if [ -z "$daemon" ]; then
  daemon=$(detect) || {
    echo "no ibsol daemon runs in this container"
    exit 1
  }
fi

case "$daemon" in
gateway)
  # Healthy: the gateway answers HTTP and reaches packager and marketplace. Runners are not part of it: they
  # dial in and come and go (--scale, restarts) and have their own check; /healthz answers 503 while none is
  # attached (services.runner "down", "runners": 0), which is reported here but is not the gateway's fault.
  host=${IBSOL_HTTP_HOST:-127.0.0.1}
  case "$host" in 0.0.0.0 | "" | \* | ::) host=127.0.0.1 ;; *:*) host="[$host]" ;; esac
  url="http://$host:${IBSOL_HTTP_PORT:-8080}/healthz"
  if ! out=$(curl -sS --max-time 5 -w ' HTTP %{http_code}' "$url" 2>&1); then
    echo "gateway: $url: $(printf '%s' "${out% HTTP *}")"
    exit 1
  fi
  code=${out##* HTTP }
  body=${out% HTTP *}
  case "$code" in
  2??)
    echo "gateway: $body"
    exit 0
    ;;
  503)
    case "$body" in *'"packager":"up"'*) case "$body" in *'"marketplace":"up"'*)
      echo "gateway: up, no runner attached: $body"
      exit 0
      ;;
    esac ;; esac
    ;;
  esac
  echo "gateway: $url answered $code: $body"
  exit 1
  ;;
packager | marketplace)
  if [ "$daemon" = packager ]; then
    url=${IBSOL_PACKAGER_URL:-} dials=${IBSOL_PACKAGER_DIALS:-false}
  else
    url=${IBSOL_MARKETPLACE_URL:-} dials=${IBSOL_MARKETPLACE_DIALS:-false}
  fi
  if is_true "$dials"; then
    # A dialing service is reached by listening on its URL, which the gateway holds: check the connection.
    port=${url##*:}
    case "$url" in tcp*://*) connected_to_port "$port" && exit 0 ;; *) exit 0 ;; esac
    echo "$daemon: no connection to the gateway at $url"
    exit 1
  fi
  set -- --timeout-ms 5000 --connect-timeout-ms 3000
  if [ -n "$url" ]; then set -- "$@" --url "$(loopback "$url")"; fi
  if out=$("$bin/ibsol-op" "$@" "$daemon" ping 2>&1); then
    echo "$out"
    exit 0
  fi
  echo "$daemon: $out"
  exit 1
  ;;
runner)
  url=${IBSOL_RUNNER_URL:-}
  case "$url" in
  tcp*://*:*)
    port=${url##*:}
    if connected_to_port "$port"; then
      echo "runner: connected to the gateway at $url"
      exit 0
    fi
    echo "runner: no connection to the gateway at $url"
    exit 1
    ;;
  esac
  # ipc:// (one host): a running runner re-dials on its own; being alive is all we can see from here.
  if detect >/dev/null; then exit 0; fi
  echo "runner: not running"
  exit 1
  ;;
*)
  echo "usage: ibsol-healthcheck [gateway|packager|marketplace|runner]"
  exit 1
  ;;
esac
