#!/usr/bin/env bash
# Installs the Debian 12 packages ibsol needs to build and run (and, with --test, to run its tests and
# benchmarks). Installs only what is missing; needs root or sudo when something is. --list prints the build
# packages instead.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libnng-dev libmsgpack-dev libcivetweb-dev libjansson-dev
  libzip-dev libpcre2-dev libpoppler-glib-dev libcairo2-dev libtesseract-dev tesseract-ocr-eng libssl-dev
  uuid-dev libcurl4-openssl-dev curl python3 python3-yaml)
test_pkgs=(libcmocka-dev python3 python3-pytest python3-requests poppler-utils zip unzip wrk clang
  libclang-rt-14-dev docker-compose python3-jsonschema iproute2 docker.io debootstrap
  qpdf openssl chromium chromium-driver python3-selenium tmux gdb)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi
# --list: print the build packages, one a line, and install nothing (the Docker image's build stage installs
# them, so its cached layer survives changes to the test packages).
if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${build_pkgs[@]}"
  exit 0
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
