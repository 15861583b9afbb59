#!/bin/sh
# ibsol container entrypoint (installed as /usr/local/bin/ibsol): the first argument picks the daemon.
#   ibsol gateway|packager|marketplace|runner [--flags]   run that daemon in the foreground (as PID 1's child
#                                                         or PID 1: it exits cleanly on SIGTERM)
#   ibsol op SERVICE OP [JSON-ARGS]                       send one op with ibsol-op (docker compose exec ...)
#   ibsol healthcheck [DAEMON]                            the container's health probe
#   ibsol login|package|publish|install|uninstall|unpublish|list|info|run|jobs|files|test|--version ...
#                                                         the client command (ibsol-client in the image)
#   ibsol COMMAND [ARGS]                                  any other program (sh, ls ...), for debugging
# Settings are IBSOL_* environment variables, as everywhere (see ibsol-<daemon> --help).
set -eu
bin=${IBSOL_BIN_DIR:-/usr/local/bin}

usage() {
  echo "usage: ibsol gateway|packager|marketplace|runner [--flags]  |  ibsol op SERVICE OP [JSON-ARGS]" >&2
}

# A service listening on every interface (tcp://0.0.0.0:PORT) is reached on loopback from its own container.
loopback() {
  case "$1" in
  tcp://0.0.0.0:* | tcp4://0.0.0.0:* | tcp://\*:*) echo "tcp://127.0.0.1:${1##*:}" ;;
  tcp://\[::\]:* | tcp6://\[::\]:*) echo "tcp://[::1]:${1##*:}" ;;
  *) echo "$1" ;;
  esac
}

is_true() {
  case "$1" in 1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss] | [Oo][Nn]) return 0 ;; *) return 1 ;; esac
}

if [ $# -eq 0 ]; then
  usage
  exit 2
fi
cmd=$1
shift
case "$cmd" in
gateway | packager | marketplace | runner)
  exec "$bin/ibsol-$cmd" "$@"
  ;;
op)
  if [ -n "${IBSOL_PACKAGER_URL:-}" ] && ! is_true "${IBSOL_PACKAGER_DIALS:-false}"; then
    IBSOL_PACKAGER_URL=$(loopback "$IBSOL_PACKAGER_URL")
    export IBSOL_PACKAGER_URL
  fi
  if [ -n "${IBSOL_MARKETPLACE_URL:-}" ] && ! is_true "${IBSOL_MARKETPLACE_DIALS:-false}"; then
    IBSOL_MARKETPLACE_URL=$(loopback "$IBSOL_MARKETPLACE_URL")
    export IBSOL_MARKETPLACE_URL
  fi
  exec "$bin/ibsol-op" "$@"
  ;;
healthcheck)
  exec "$bin/ibsol-healthcheck" "$@"
  ;;
login | package | publish | install | uninstall | unpublish | list | info | run | jobs | files | test | --version)
  exec "$bin/ibsol-client" "$cmd" "$@"
  ;;
-h | --help | help)
  usage
  exit 0
  ;;
*)
  exec "$cmd" "$@"
  ;;
esac
