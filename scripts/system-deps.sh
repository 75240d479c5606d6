#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (Chromium for browser tests, redis-server for
# the Redis engine's tests), when missing.
# A missing package is a failure, never a skip: without root to install it, this exits non-zero.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need root to apt-get install ${missing[*]}; install them and rerun" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${missing[@]}"; do
  command -v "$package" >/dev/null 2>&1 || { echo "system-deps: $package still missing after install" >&2; exit 1; }
done
