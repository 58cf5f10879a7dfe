#!/bin/sh
# Restart latency of `slapenir init`: time from a service's exit to its
# replacement running, over many restarts. The service prints a nanosecond
# timestamp when it starts and right before it exits 1 (a crash the seed's
# policy restarts); latency = start(n+1) - exit(n). It includes init's
# reaping, the exec wrapper (a Go binary: privilege drop) and sh starting.
# Backoff is disabled (reset_after: 0s) so every restart is the "first one".
#
# Usage: bench/restart-latency.sh [restarts]    (from the repository root;
# as root it runs init as PID 1 in a new PID namespace, else as a subreaper)
set -eu
n=${1:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
go build -o "$work/slapenir" ./cmd/slapenir
cat >"$work/services.yaml" <<YAML
services:
  crasher:
    user: "$(id -u)"
    command: [sh, -c, 'echo "up \$(date +%s%N)"; echo "down \$(date +%s%N)"; exit 1']
    restart: {reset_after: 0s}
YAML
echo "nproc: $(nproc)"
grep -m1 'model name' /proc/cpuinfo || true
uname -r
if [ "$(id -u)" = 0 ]; then
	runner="unshare --pid --fork --mount-proc --kill-child"
else
	runner=""
fi
# Run until n restarts are logged, then stop init with SIGTERM.
$runner "$work/slapenir" init --config "$work/services.yaml" --socket "$work/init.sock" >"$work/out" 2>&1 &
pid=$!
while [ "$(grep -c '^\[crasher\] up' "$work/out")" -le "$n" ]; do sleep 0.1; done
# Signal init itself (under unshare it is unshare's only child).
initpid=$pid
[ -n "$runner" ] && initpid=$(ps -o pid= --ppid "$pid")
kill -TERM $initpid; wait "$pid" || true
summarize() {
	sort -n | awk '
	{ v[NR] = $1 }
	END {
		if (NR == 0) { print "no restarts measured"; exit 1 }
		printf "restarts measured: %d\n", NR
		printf "median: %.2f ms\n", v[int((NR + 1) / 2)]
		printf "p90:    %.2f ms\n", v[int(NR * 0.9)]
		printf "p99:    %.2f ms\n", v[int(NR * 0.99)]
		printf "worst:  %.2f ms\n", v[NR]
	}'
}
echo "== slapenir init"
grep -E '^\[crasher\] (up|down) ' "$work/out" | awk -v n="$n" '
	$2 == "down" { down = $3 }
	$2 == "up" && down != "" { print ($3 - down) / 1e6; down = "" }
' | head -n "$n" | summarize
# Baseline on the same machine and load: the same service restarted by a bare
# shell loop (no supervisor, no privilege drop). The difference is init's cost.
echo "== baseline: shell loop"
i=0
while [ $i -le "$n" ]; do
	sh -c 'echo "up $(date +%s%N)"; echo "down $(date +%s%N)"'
	i=$((i + 1))
done | awk '$1 == "down" { d = $2 } $1 == "up" && d != "" { print ($2 - d) / 1e6; d = "" }' | summarize
uptime
