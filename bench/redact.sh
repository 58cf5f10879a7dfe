#!/bin/sh
# Redactor throughput, one core, every encoding on, 1 / 100 / 1,000 secrets.
# Usage: bench/redact.sh [extra go test flags]   (run from the repository root)
set -eu
echo "nproc: $(nproc)"
grep -m1 'model name' /proc/cpuinfo || true
go version
exec go test -run '^$' -bench 'Writer|New' -benchtime 3s -count 3 -cpu 1 "$@" ./internal/redact/
