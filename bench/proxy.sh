#!/usr/bin/env bash
# Measures what the proxy adds on loopback: small-request throughput and
# latency direct vs through each way in, and streamed-chunk delay direct vs
# through the proxy. Usage: bench/proxy.sh [proxybench flags, e.g. -n 50000]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/slapenir" ./cmd/slapenir
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
go run ./bench/proxybench -bin "$out/slapenir" "$@"
