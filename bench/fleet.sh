#!/usr/bin/env bash
# One proxy, a fleet of agents (issue 15): handshakes per second, added
# latency at p50/p99 with every agent at once, memory per idle agent
# connection, and every audit record's identity checked.
# Usage: bench/fleet.sh [flags of bench/fleet, e.g. -agents 1000 -round 5s]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/slapenir" ./cmd/slapenir
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
go run ./bench/fleet -bin "$out/slapenir" "$@"
