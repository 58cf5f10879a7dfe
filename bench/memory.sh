#!/usr/bin/env bash
# What the proxy holds in memory (issue 13, aim 4): bytes per idle keep-alive
# connection, RSS beside busy clients, peak RSS of a long scanned stream, and
# what 100 slow readers cost a normal one, and peak RSS under 20 decompression
# bombs at once (issue 23). Usage: bench/memory.sh [flags of bench/memory, e.g.
# -idle 2000 -stream-gib 1, or -only bombs [-bomb-kinds zstd]]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/slapenir" ./cmd/slapenir
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
ulimit -n 65536 2>/dev/null || true
go run ./bench/memory -bin "$out/slapenir" "$@"
