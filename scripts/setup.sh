#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests, the demo and the benchmarks need.
# Safe to run again. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  build-essential cmake pkg-config git
  gsoap libgsoap-dev               # SOAP engine and wsdl2h/soapcpp2
  libpugixml-dev libpoco-dev libssl-dev libsqlite3-dev sqlite3 libarchive-dev
  libboost-test-dev
  libsodium-dev                    # Argon2id password hashes of the users file
  libxml2-utils                    # xmllint: XSD validation in tests
  python3 python3-zeep             # a generic SOAP client for interoperability tests
  clang libclang-rt-14-dev         # libFuzzer targets and sanitizer runtime
  chromium                         # browser views checked headless
  curl wrk nginx-light             # benchmarks (nginx is only a reference, never started as a service)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
# The unprivileged system user node agents started as root run package code as (node-agent
# --run-as, default rm-svc): packages never run as root.
if ! getent passwd rm-svc >/dev/null; then
  echo "setup: creating the system user rm-svc"
  $SUDO useradd --system --no-create-home --shell /usr/sbin/nologin rm-svc
fi
