#!/usr/bin/env bash
# Central drains an edge backlog into PostgreSQL (issue 10): a Go benchmark
# posts pre-built gzip batches of location messages to hearth-central's
# batch endpoint over loopback HTTP, several batches in flight per edge,
# into a throwaway PostgreSQL cluster (or the server HEARTH_TEST_PG names),
# and reports msgs/s. Settings (environment):
#   DRAIN_BATCHES          batches to send (default 2000: 1,000,000 messages of 500)
#   HEARTH_DRAIN_BATCH     messages per batch (default 500, the forwarder's default)
#   HEARTH_DRAIN_EDGES     edges (homes) sending at once (default 4)
#   HEARTH_DRAIN_INFLIGHT  batches in flight per edge (default 2)
#   DRAIN_ROUNDS           runs (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(mktemp -d /tmp/hearth-drain.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
go test -c -o "$BIN/central.test" ./central/
for _ in $(seq "${DRAIN_ROUNDS:-1}"); do
  (cd central && "$BIN/central.test" -test.run '^$' -test.bench 'CentralDrain_Postgres$' -test.benchtime "${DRAIN_BATCHES:-2000}x" -test.v) |
    grep -E 'Benchmark|messages in|FAIL|SKIP|skip' || true
done
