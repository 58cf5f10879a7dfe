#!/bin/sh
# bench/dlp.sh — what outbound DLP costs on the request path: the same 4 KiB
# prompt through the in-process proxy with dlp off and enforced, run
# alternately (one round each, ROUNDS times) in one process, and the scanner
# alone. Prints each round and the ratio of the means.
#   ROUNDS=5 BENCHTIME=2s bench/dlp.sh
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-2s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "dlp: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), go $(go env GOVERSION)"
go test -c -o "$out.test" ./internal/proxy/
trap 'rm -f "$out" "$out.test"' EXIT
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	for b in BenchmarkForwardPrompt BenchmarkForwardPromptDLP; do
		(cd internal/proxy && "$out.test" -test.run '^$' -test.bench "^$b\$" -test.benchtime "$BENCHTIME") | grep '^Benchmark' | tee -a "$out"
	done
	i=$((i + 1))
done
go test -run '^$' -bench . -benchtime 1s -count 3 -cpu 1 ./internal/dlp/ | grep '^Benchmark'
awk '/^BenchmarkForwardPrompt-/ {off += $3; n++} /^BenchmarkForwardPromptDLP-/ {on += $3; m++}
     END { if (n && m) printf "mean ns/op: off %.0f, enforce %.0f; enforce/off = %.3f\n", off/n, on/m, (on/m)/(off/n) }' "$out"
