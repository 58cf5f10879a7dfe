#!/usr/bin/env bash
# What the redactor costs a streamed LLM token (issue 23): time to the first
# token, time per token, and each NDJSON line's delay at p50/p99, directly to
# the fake Ollama and through the Ollama helper → relay → proxy over mTLS,
# with and without a credential in the proxy's vault (with one, every
# response is scanned and held back by the redactor). With BASELINE set, the
# same benchmarks (this tree's internal/relay/bench_test.go) also run on the
# code of that git revision, interleaved round by round with this tree's, so
# before and after meet the same machine load. Prints every run, then the
# median of each figure per version and path.
#
#   BASELINE=a13c152 ROUNDS=3 bench/stream-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BENCHTIME=${BENCHTIME:-50x}
out=$(mktemp -d)
wt=
cleanup() {
	[ -n "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1
	rm -rf "$out"
}
trap cleanup EXIT
echo "# $(date -u +%FT%TZ) nproc=$(nproc) load $(cut -d' ' -f1-3 /proc/loadavg) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
go test -c -o "$out/after.test" ./internal/relay/
versions=after
if [ -n "${BASELINE:-}" ]; then
	wt="$out/baseline"
	git worktree add -q --detach "$wt" "$BASELINE"
	cp internal/relay/bench_test.go "$wt/internal/relay/"
	(cd "$wt" && go test -c -o "$out/before.test" ./internal/relay/)
	versions="before after"
fi
for round in $(seq "$ROUNDS"); do
	for v in $versions; do
		(cd internal/relay && "$out/$v.test" -test.run '^$' -test.bench 'BenchmarkStream|BenchmarkChunkDelay' -test.benchtime "$BENCHTIME") |
			grep '^Benchmark' | sed "s/^/$v round $round: /" | tee -a "$out/all"
	done
done
echo "# medians over $ROUNDS rounds"
awk '{
	v = $1; name = $4; sub(/-[0-9]+$/, "", name)
	for (i = 6; i < NF; i += 2) printf "%s %s %s\t%s\n", v, name, $(i+1), $i
}' "$out/all" | sort -t "$(printf '\t')" -k1,1 -k2,2g |
	awk -F '\t' '{ n[$1]++; vals[$1, n[$1]] = $2 }
	END { for (k in n) printf "%-60s %s\n", k, vals[k, int((n[k] + 1) / 2)] }' | sort
