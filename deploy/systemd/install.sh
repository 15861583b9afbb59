#!/usr/bin/env bash
# Installs ibsol's systemd units on this host (Debian 12):
#   cmake --install build            # the binaries, to /usr/local/bin (build first: deploy/build.sh build)
#   sudo deploy/systemd/install.sh   # user ibsol, /var/lib/ibsol, /etc/ibsol/ibsol.env, the units; prints what next
# Idempotent: an existing /etc/ibsol/ibsol.env is kept (the new template goes beside it as ibsol.env.new).
# Settings (environment): IBSOL_DATA (data root to create, default /var/lib/ibsol), SYSTEMD_DIR (default
# /etc/systemd/system), BINDIR (where the binaries are, default /usr/local/bin).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=${IBSOL_DATA:-/var/lib/ibsol}
unitdir=${SYSTEMD_DIR:-/etc/systemd/system}
bindir=${BINDIR:-/usr/local/bin}
units=(ibsol.target ibsol-gateway.service ibsol-packager.service ibsol-marketplace.service ibsol-runner@.service)

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: run as root (sudo deploy/systemd/install.sh)" >&2
  exit 1
fi
for b in ibsol-gateway ibsol-packager ibsol-marketplace ibsol-runner ibsol-op; do
  if [[ ! -x "$bindir/$b" ]]; then
    echo "install.sh: $bindir/$b is missing: build and install the binaries first (cmake --install build)" >&2
    exit 1
  fi
done

if ! getent group ibsol >/dev/null; then groupadd --system ibsol; fi
if ! getent passwd ibsol >/dev/null; then
  useradd --system --gid ibsol --home-dir "$data" --no-create-home --shell /usr/sbin/nologin ibsol
fi
install -d -o ibsol -g ibsol -m 0750 "$data"
install -d -o root -g ibsol -m 0750 /etc/ibsol
if [[ -e /etc/ibsol/ibsol.env ]]; then
  install -o root -g ibsol -m 0640 "$here/ibsol.env" /etc/ibsol/ibsol.env.new
  echo "kept /etc/ibsol/ibsol.env; the current template is /etc/ibsol/ibsol.env.new"
else
  install -o root -g ibsol -m 0640 "$here/ibsol.env" /etc/ibsol/ibsol.env
  if [[ "$data" != /var/lib/ibsol ]]; then
    sed -i "s#^IBSOL_DATA=.*#IBSOL_DATA=$data#" /etc/ibsol/ibsol.env
  fi
fi
install -d "$unitdir"
for u in "${units[@]}"; do
  sed "s#/usr/local/bin/#$bindir/#g" "$here/$u" >"$unitdir/$u.tmp"
  chmod 0644 "$unitdir/$u.tmp"
  mv "$unitdir/$u.tmp" "$unitdir/$u"
done
if [[ "$data" != /var/lib/ibsol ]]; then
  # The units may write only to the data root.
  for u in ibsol-gateway.service ibsol-packager.service ibsol-marketplace.service ibsol-runner@.service; do
    sed -i "s#^ReadWritePaths=.*#ReadWritePaths=$data#; s#^Environment=IBSOL_DATA=.*#Environment=IBSOL_DATA=$data#" \
      "$unitdir/$u"
  done
fi
if [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
else
  echo "(systemd is not running here: skipped systemctl daemon-reload)"
fi

cat <<MSG
ibsol units installed in $unitdir, data root $data, settings in /etc/ibsol/ibsol.env.
Next:
  1. Review /etc/ibsol/ibsol.env (one host: the defaults work; across hosts: tcp:// URLs, see its comments).
  2. Start everything with two runners, and at every boot:
       systemctl enable --now ibsol.target ibsol-packager ibsol-marketplace ibsol-gateway ibsol-runner@1 ibsol-runner@2
     More runners: systemctl enable --now ibsol-runner@3 ...   Fewer: systemctl disable --now ibsol-runner@2
  3. Check:  curl -s http://127.0.0.1:8080/healthz     systemctl status 'ibsol-*'     journalctl -u ibsol-gateway -f
     Admin token (created on first start): awk '\$3 == "admin" && \$1 !~ /^#/ {print \$1; exit}' $data/tokens
  4. Put a TLS proxy in front of 127.0.0.1:8080 (deploy/docker/Caddyfile, with IBSOL_UPSTREAM=127.0.0.1:8080).
MSG
