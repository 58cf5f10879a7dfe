#!/bin/sh
# Time to first token and time per token of a streamed /api/chat, directly to
# the fake Ollama and through the relay's Ollama helper → proxy (plaintext and
# mTLS), short (10-token) and long (2,000-token) streams, in one run.
# Usage: bench/relay.sh [go test flags…]   (run from the repository root)
set -eu
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
exec go test -run '^$' -bench 'BenchmarkStream' -benchtime 100x -count 3 "$@" ./internal/relay/
