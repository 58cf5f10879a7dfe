#!/usr/bin/env bash
# Time from `slapenir up` to the placeholder agent's first heartbeat, and the
# resident memory of every process at rest (after REST seconds).
#
#   bench/up-startup.sh [RUNS] [--unconfined]
#
# Run from the repository root. As root the agent gets its own network
# namespace behind enforce; pass --unconfined to measure without it.
set -euo pipefail
runs=${1:-5}
shift || true
extra=("$@")
rest=${REST:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
go build -o "$work/slapenir" ./cmd/slapenir

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "-"; }
name_of() { tr '\0' ' ' < "/proc/$1/cmdline" | awk '{print $1" "$2}'; }

echo "runs=$runs mode=${extra[*]:-default} nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for i in $(seq "$runs"); do
  state="$work/state$i"
  log="$work/up$i.log"
  start=$(date +%s%N)
  env -u OLLAMA_HOST -u STEP_CA_URL "$work/slapenir" up --state-dir "$state" "${extra[@]}" >"$log" 2>&1 &
  up=$!
  until grep -q 'Heartbeat #1 - Agent is running' "$log"; do
    kill -0 "$up" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.005
  done
  end=$(date +%s%N)
  echo "run $i: up to first heartbeat $(( (end - start) / 1000000 )) ms"
  if [ "$i" = "$runs" ]; then
    sleep "$rest"
    echo "resident memory after ${rest}s at rest (VmRSS, KiB):"
    # up and every descendant of it.
    pids="$up"
    frontier="$up"
    while [ -n "$frontier" ]; do
      next=""
      for p in $frontier; do
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do next="$next $c"; done
      done
      pids="$pids $next"
      frontier=$(echo $next)
    done
    for p in $pids; do printf '  %-8s %-40s %s\n' "$p" "$(name_of "$p")" "$(rss_kib "$p")"; done
  fi
  kill -INT "$up"
  wait "$up" || true
done
