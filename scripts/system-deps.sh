#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real, when missing: Chromium for browser tests,
# redis-server (standalone and Cluster) and redis-sentinel for the Redis engine's tests, HAProxy and nginx
# in front of the multi-node tests, iproute2 and nftables for their network-namespace black hole.
# A missing package is a failure, never a skip: without root to install it, this exits non-zero.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)

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
for command in chromium redis-server redis-sentinel redis-cli haproxy nginx ip nft; do
  command -v "$command" >/dev/null 2>&1 || { echo "system-deps: $command still missing after install" >&2; exit 1; }
done
# The packages' own services are not ours: tests start their own processes on free loopback ports.
for service in redis-server redis-sentinel haproxy nginx; do
  service "$service" stop >/dev/null 2>&1 || true
done
