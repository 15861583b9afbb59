#!/usr/bin/env bash
# Makes the Debian 12 base images that ibsol's images are built FROM (debian:12 and debian:12-slim) on this
# machine with debootstrap, for hosts that reach a Debian mirror but no image registry. An image that already
# exists is kept (--force makes both anew). Needs root (debootstrap) and a running Docker engine.
#   deploy/docker/base-images.sh [--force]
# The images use the same Debian mirror as this host's apt (IBSOL_DEBIAN_MIRROR overrides it) and carry over the
# host's apt proxy and release-date settings, so apt-get inside a build reaches the mirror the way the host does.
set -euo pipefail
docker=${DOCKER:-docker}
force=false
case "${1:-}" in
--force) force=true ;;
"") ;;
*)
  echo "usage: $0 [--force]" >&2
  exit 2
  ;;
esac

missing=()
for img in debian:12 debian:12-slim; do
  if $force || ! $docker image inspect "$img" >/dev/null 2>&1; then missing+=("$img"); fi
done
if ((${#missing[@]} == 0)); then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "$0: debootstrap needs root to make ${missing[*]}" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  echo "$0: debootstrap is not installed (apt-get install debootstrap) to make ${missing[*]}" >&2
  exit 1
fi

# The host's mirror for a suite: the first URI of a deb source that lists it (deb822 .sources or one-line
# .list files); empty when the host has none.
host_uri() {
  local suite=$1 f uris=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uris+=$(awk -v s="$suite" '
      function flush() { if (deb && uri != "" && has) print uri; deb = 0; uri = ""; has = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) has = 1 }
      END { flush() }' "$f")$'\n'
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uris+=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) print $i }' "$f")$'\n'
  done
  uris=${uris#"${uris%%[![:space:]]*}"}
  echo "${uris%%$'\n'*}"
}
mirror=${IBSOL_DEBIAN_MIRROR:-$(host_uri bookworm)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(host_uri bookworm-security)
security=${security:-${mirror%/debian}/debian-security}

work=$(mktemp -d "${TMPDIR:-/tmp}/ibsol-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "debootstrap bookworm from $mirror (a few minutes) ..." >&2
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  echo "$0: debootstrap bookworm $mirror failed (log above)" >&2
  exit 1
fi

# apt inside: the same mirror (with updates and security), and the host's Acquire settings that decide whether
# that mirror is reachable and accepted (proxy; a mirror snapshot whose Release files are past Valid-Until).
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
{
  apt-config dump 2>/dev/null | grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date)' || true
  for v in http https; do
    p=$(printenv "${v}_proxy" || printenv "${v^^}_PROXY" || true)
    if [[ -n $p ]]; then echo "Acquire::$v::Proxy \"$p\";"; fi
  done
} >"$root/etc/apt/apt.conf.d/90host-mirror"
[[ -s $root/etc/apt/apt.conf.d/90host-mirror ]] || rm -f "$root/etc/apt/apt.conf.d/90host-mirror"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/dev/*

import() {
  tar --numeric-owner -C "$root" -c . |
    $docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm $mirror" - "$1" >/dev/null
  echo "made $1" >&2
}
if [[ " ${missing[*]} " == *" debian:12 "* ]]; then import debian:12; fi
if [[ " ${missing[*]} " == *" debian:12-slim "* ]]; then
  # slim, as Debian's own: no documentation, manual pages or translations, now or from later installs.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/groff/*
  import debian:12-slim
fi
