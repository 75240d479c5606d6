#!/usr/bin/env bash
# Long variants of the multi-node fault suite (packages/gateway/test/multinode): more publications,
# re-subscribes, TCP cuts, clients and rounds than the CI run, every count bounded by an env var.
#   scripts/soak.sh                     # 3 rounds at the defaults below
#   SOAK_ROUNDS=10 MULTINODE_CUTS=100 scripts/soak.sh
# Files run one at a time (--no-file-parallelism): the fault timings must not fight for 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${SOAK_ROUNDS:-3}
[[ "$rounds" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "soak: SOAK_ROUNDS must be 1..999, got '$rounds'" >&2; exit 2; }
export MULTINODE_PUBLISHES=${MULTINODE_PUBLISHES:-2000}
export MULTINODE_RESUBSCRIBES=${MULTINODE_RESUBSCRIBES:-150}
export MULTINODE_CUTS=${MULTINODE_CUTS:-40}
export MULTINODE_CLIENTS=${MULTINODE_CLIENTS:-300}
export MULTINODE_FEED=${MULTINODE_FEED:-300}
export MULTINODE_PARTITION_MS=${MULTINODE_PARTITION_MS:-20000}

bash scripts/system-deps.sh
for round in $(seq 1 "$rounds"); do
  echo "soak: round $round of $rounds (publishes $MULTINODE_PUBLISHES, re-subscribes $MULTINODE_RESUBSCRIBES, cuts $MULTINODE_CUTS, clients $MULTINODE_CLIENTS, feed $MULTINODE_FEED)" >&2
  npx vitest run --no-file-parallelism packages/gateway/test/multinode
done
