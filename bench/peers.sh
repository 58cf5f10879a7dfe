#!/usr/bin/env bash
# SLAPENIR beside its egress peers, in one run on loopback (issue 13):
# direct to the origin, nginx (reverse proxy, upstream keep-alive), squid,
# tinyproxy, and SLAPENIR's forward way, its X-Target-URL way and its
# forward way with a credential configured for the origin (every response
# scanned). wrk drives each at 1 and 64 connections for 1 KiB and 64 KiB
# bodies, in ROUNDS interleaved rounds (each round runs every peer once, so
# a change in the machine's load hits all of them alike); then curl moves
# BULK_MB through each. It prints medians with min–max, and the ratios to
# direct, nginx and squid, and the load average before and after.
#
# Usage (as root, to install what is missing from Debian):
#   bench/peers.sh                    ROUNDS=3 DURATION=3s BULK_MB=1024 by default
#   ROUNDS=5 DURATION=10s bench/peers.sh
#   PPROF=1 bench/peers.sh            also serve Go's profiler on 127.0.0.1:16060
#                                     (plain) and :16061 (credential) while it runs
#   BASELINE=ac326fe bench/peers.sh   also run SLAPENIR built from that git revision
#                                     (base, base-cred) in the same rounds: a
#                                     before/after in one run
#
# SLAPENIR runs with --insecure-plaintext (wrk speaks no client
# certificates): this measures the proxy's own path, not the mTLS handshake
# (bench/proxy.sh measures that). Audit goes to a file, as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
BULK_MB=${BULK_MB:-1024}

need=()
for pkg in wrk:wrk nginx:nginx-light squid:squid tinyproxy:tinyproxy curl:curl; do
	command -v "${pkg%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pkg%%:*}" ] || [ -x "/usr/bin/${pkg%%:*}" ] || need+=("${pkg#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "peers: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Installed to be run by this script only: no daemon started by the
	# packages (squid would take port 3128).
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
	fi
	apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
SQUID=$(command -v squid || echo /usr/sbin/squid)
TINYPROXY=$(command -v tinyproxy || echo /usr/bin/tinyproxy)

work=$(mktemp -d)
chmod 755 "$work" # nginx and squid workers drop to their own users
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	"$SQUID" -f "$work/squid.conf" -k shutdown >/dev/null 2>&1 || true
	sleep 0.5
	rm -rf "$work"
}
trap cleanup EXIT

ORIGIN=127.0.0.1:18080 NGINX_RP=127.0.0.1:18081 SQUID_PORT=18082 TINY_PORT=18083
SLP=127.0.0.1:18084 SLP_CRED=127.0.0.1:18085 BASE=127.0.0.1:18086 BASE_CRED=127.0.0.1:18087

# The origin: nginx serving static files (the fastest upstream here).
mkdir -p "$work/www" "$work/nginx"
# Text bodies (as API answers are), cut to size with truncate: a pipe into
# head would end base64 with SIGPIPE, which pipefail turns into an exit.
for n in 1024:1k 65536:64k; do
	head -c "${n%%:*}" /dev/urandom | base64 -w 0 >"$work/www/${n#*:}"
	truncate -s "${n%%:*}" "$work/www/${n#*:}"
done
head -c $((BULK_MB * 1024 * 1024)) /dev/urandom >"$work/www/bulk"
cat >"$work/nginx.conf" <<EOF
daemon on;
pid $work/nginx.pid;
worker_processes 1;
error_log $work/nginx/error.log crit;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
	uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
	keepalive_requests 1000000;
	upstream origin { server $ORIGIN; keepalive 128; }
	server { listen $ORIGIN; root $work/www; sendfile on; }
	server {
		listen $NGINX_RP;
		location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
	}
}
EOF
"$NGINX" -c "$work/nginx.conf" -p "$work/nginx"

cat >"$work/squid.conf" <<EOF
http_port 127.0.0.1:$SQUID_PORT
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
cache deny all
access_log none
cache_log /dev/null
pid_filename $work/squid.pid
coredump_dir $work
workers 1
EOF
"$SQUID" -f "$work/squid.conf" -N >/dev/null 2>&1 &
pids+=($!)

cat >"$work/tinyproxy.conf" <<EOF
Port $TINY_PORT
Listen 127.0.0.1
Timeout 600
MaxClients 1024
Allow 127.0.0.1
LogLevel Critical
PidFile "$work/tinyproxy.pid"
EOF
"$TINYPROXY" -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
pids+=($!)

go build -o "$work/slapenir" ./cmd/slapenir
slp_conf() { # listen, extra yaml
	cat <<EOF
listen: "$1"
policy:
  default: allow
  private_allow: ["127.0.0.1"]
audit:
  file: "$work/audit-${1##*:}.jsonl"
  stdout: false
limits:
  rate_per_second: 0
$2
EOF
}
slp_conf "$SLP" "" >"$work/slp.yaml"
slp_conf "$SLP_CRED" "secrets:
  credentials:
    - name: bench
      env: BENCH_TOKEN
      hosts: [\"$ORIGIN\"]" >"$work/slp-cred.yaml"
pprof1=() pprof2=()
if [ -n "${PPROF:-}" ]; then
	pprof1=(--pprof 127.0.0.1:16060) pprof2=(--pprof 127.0.0.1:16061)
	echo "profiles while it runs: go tool pprof http://127.0.0.1:16060/debug/pprof/profile?seconds=10 (plain), :16061 (credential)" >&2
fi
BENCH_TOKEN=bench-real-token-0123456789abcdef "$work/slapenir" proxy --config "$work/slp.yaml" --state-dir "$work/s1" --insecure-plaintext "${pprof1[@]}" 2>"$work/slp.log" &
pids+=($!)
BENCH_TOKEN=bench-real-token-0123456789abcdef "$work/slapenir" proxy --config "$work/slp-cred.yaml" --state-dir "$work/s2" --insecure-plaintext "${pprof2[@]}" 2>"$work/slp-cred.log" &
pids+=($!)
if [ -n "${BASELINE:-}" ]; then
	git worktree add -q --detach "$work/base-src" "$BASELINE"
	(cd "$work/base-src" && go build -o "$work/slapenir-base" ./cmd/slapenir)
	git worktree remove --force "$work/base-src"
	slp_conf "$BASE" "" >"$work/base.yaml"
	slp_conf "$BASE_CRED" "secrets:
  credentials:
    - name: bench
      env: BENCH_TOKEN
      hosts: [\"$ORIGIN\"]" >"$work/base-cred.yaml"
	BENCH_TOKEN=bench-real-token-0123456789abcdef "$work/slapenir-base" proxy --config "$work/base.yaml" --state-dir "$work/s3" --insecure-plaintext 2>"$work/base.log" &
	pids+=($!)
	BENCH_TOKEN=bench-real-token-0123456789abcdef "$work/slapenir-base" proxy --config "$work/base-cred.yaml" --state-dir "$work/s4" --insecure-plaintext 2>"$work/base-cred.log" &
	pids+=($!)
fi

wait_http() { # url [proxy]
	for _ in $(seq 100); do
		if curl -sf -o /dev/null ${2:+-x "$2"} "$1"; then return 0; fi
		sleep 0.1
	done
	echo "peers: $1 ${2:+through $2 }does not answer" >&2
	exit 1
}
wait_http "http://$ORIGIN/1k"
wait_http "http://$NGINX_RP/1k"
wait_http "http://$ORIGIN/1k" "http://127.0.0.1:$SQUID_PORT"
wait_http "http://$ORIGIN/1k" "http://127.0.0.1:$TINY_PORT"
wait_http "http://$ORIGIN/1k" "http://$SLP"
wait_http "http://$ORIGIN/1k" "http://$SLP_CRED"

# wrk as a forward-proxy client: an absolute-form request line to the proxy.
cat >"$work/forward.lua" <<'EOF'
local target, host
init = function(args) target = args[1]; host = args[2] end
request = function() return wrk.format("GET", target, { Host = host }) end
EOF
cat >"$work/target.lua" <<'EOF'
local path, target
init = function(args) path = args[1]; target = args[2] end
request = function() return wrk.format("GET", path, { ["X-Target-URL"] = target }) end
EOF

peers=(direct nginx squid tinyproxy slapenir slapenir-target slapenir-cred)
if [ -n "${BASELINE:-}" ]; then
	wait_http "http://$ORIGIN/1k" "http://$BASE"
	wait_http "http://$ORIGIN/1k" "http://$BASE_CRED"
	peers+=(base base-cred)
fi
# run_wrk PEER SIZE CONNS prints "rps p50ms"
run_wrk() {
	local peer=$1 size=$2 c=$3 t=2 out
	[ "$c" -lt 2 ] && t=1
	local url="http://$ORIGIN/$size"
	case $peer in
	direct) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency "$url") ;;
	nginx) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency "http://$NGINX_RP/$size") ;;
	squid) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://127.0.0.1:$SQUID_PORT" -- "$url" "$ORIGIN") ;;
	tinyproxy) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://127.0.0.1:$TINY_PORT" -- "$url" "$ORIGIN") ;;
	slapenir) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://$SLP" -- "$url" "$ORIGIN") ;;
	slapenir-target) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/target.lua" "http://$SLP" -- "/$size" "http://$ORIGIN") ;;
	slapenir-cred) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://$SLP_CRED" -- "$url" "$ORIGIN") ;;
	base) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://$BASE" -- "$url" "$ORIGIN") ;;
	base-cred) out=$(wrk -t$t -c"$c" -d"$DURATION" --latency -s "$work/forward.lua" "http://$BASE_CRED" -- "$url" "$ORIGIN") ;;
	esac
	if grep -q "Non-2xx" <<<"$out"; then
		echo "peers: $peer answered errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	local rps p50
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
	echo "$rps $p50"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $("$NGINX" -v 2>&1 | cut -d' ' -f3), $("$SQUID" -v | head -1 | cut -d' ' -f1-4), tinyproxy $("$TINYPROXY" -v 2>&1 | awk '{print $2}'), $(go version | cut -d' ' -f3)"
echo "rounds: $ROUNDS × $DURATION per peer and case, interleaved"
echo
res="$work/results"
: >"$res"
for round in $(seq "$ROUNDS"); do
	for size in 1k 64k; do
		for c in 1 64; do
			for peer in "${peers[@]}"; do
				read -r rps p50 <<<"$(run_wrk "$peer" "$size" "$c")"
				echo "$size $c $peer $round $rps $p50" >>"$res"
			done
		done
	done
	echo "round $round done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done

# Bulk: BULK_MB through each, MB/s, interleaved the same way.
for round in $(seq "$ROUNDS"); do
	for peer in "${peers[@]}"; do
		case $peer in
		direct) args=("http://$ORIGIN/bulk") ;;
		nginx) args=("http://$NGINX_RP/bulk") ;;
		squid) args=(-x "http://127.0.0.1:$SQUID_PORT" "http://$ORIGIN/bulk") ;;
		tinyproxy) args=(-x "http://127.0.0.1:$TINY_PORT" "http://$ORIGIN/bulk") ;;
		slapenir) args=(-x "http://$SLP" "http://$ORIGIN/bulk") ;;
		slapenir-target) args=(-H "X-Target-URL: http://$ORIGIN" "http://$SLP/bulk") ;;
		slapenir-cred) args=(-x "http://$SLP_CRED" "http://$ORIGIN/bulk") ;;
		base) args=(-x "http://$BASE" "http://$ORIGIN/bulk") ;;
		base-cred) args=(-x "http://$BASE_CRED" "http://$ORIGIN/bulk") ;;
		esac
		bps=$(curl -sS -o /dev/null -w '%{speed_download}' "${args[@]}")
		echo "bulk 1 $peer $round $(awk -v b="$bps" 'BEGIN {printf "%.1f", b / 1e6}') 0" >>"$res"
	done
done

awk -v peers="${peers[*]}" '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
function hi(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
{
	k = $1 " " $2 " " $3
	rps[k] = rps[k] " " $5; lat[k] = lat[k] " " $6
	if (!(($1 " " $2) in seen)) { seen[$1 " " $2] = 1; cases[++nc] = $1 " " $2 }
}
END {
	np = split(peers, P, " ")
	for (ci = 1; ci <= nc; ci++) {
		split(cases[ci], cs, " ")
		bulk = cs[1] == "bulk"
		if (bulk) printf "\n%s MiB bulk, one connection: MB/s\n", ENVIRON["BULK_MB"]
		else printf "\n%s body, %s connection(s): req/s (median, min–max), p50 latency\n", cs[1], cs[2]
		printf "  %-16s %10s %19s %9s %8s %8s %8s\n", "peer", bulk ? "MB/s" : "req/s", "min–max", bulk ? "" : "p50 ms", "×direct", "×nginx", "×squid"
		d = median(rps[cases[ci] " direct"]); n = median(rps[cases[ci] " nginx"]); s = median(rps[cases[ci] " squid"])
		for (pi = 1; pi <= np; pi++) {
			k = cases[ci] " " P[pi]; m = median(rps[k])
			printf "  %-16s %10.1f %9s–%-9s %9s %8.2f %8.2f %8.2f\n", P[pi], m, lo(rps[k]), hi(rps[k]), bulk ? "" : sprintf("%.3f", median(lat[k])), m / d, m / n, m / s
		}
	}
}' "$res"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
