#!/usr/bin/env bash
# What SLAPENIR's Ollama path adds to a real Ollama (issue 24): the delay to
# the first token and per token of a streamed /api/chat, through the agent's
# helper → relay → proxy (mTLS) of `slapenir up --unconfined`, against the
# same server asked directly, in interleaved rounds; and the proxy's CPU
# time per request. The server is Ollama 0.17.4 built from the Go module
# proxy (cached; the first run takes ~10 CPU-minutes, and needs Debian's
# nlohmann-json3-dev libstb-dev g++) serving a tiny random-weight model
# made on the spot (internal/testutil/realollama): its tokens cost well
# under a millisecond, so what the path adds is not hidden under a large
# model's compute.
#
# Usage (from the repository root):
#   bench/ollama-path.sh                       ROUNDS=5 REQUESTS=10 TOKENS=64
#   ROUNDS=9 TOKENS=200 bench/ollama-path.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) nproc=$(nproc) load $(cut -d' ' -f1-3 /proc/loadavg) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
SLAPENIR_BENCH_OLLAMA_PATH=1 go test -count=1 -timeout 30m -run '^TestOllamaPath$' ./bench/ollamapath/ -v "$@" |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok '
