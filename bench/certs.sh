#!/bin/sh
# Benchmarks of the certificate side (issue 3): enrollment and renewal against
# a real, local step-ca (built once and cached, see internal/testutil/stepca),
# and the mTLS handshake with reloading certificates.
# Usage: bench/certs.sh [count]   (run from the repository root)
set -eu
n=${1:-20}
echo "# $(date -u +%FT%TZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# go test -run '^\$' -bench . -benchtime ${n}x ./internal/pki/enroll/"
go test -run '^$' -bench . -benchtime "${n}x" ./internal/pki/enroll/ 2>/dev/null | grep -E '^(Benchmark|cpu|ok)'
echo "# go test -run '^\$' -bench . -benchmem ./internal/pki/reload/"
go test -run '^$' -bench . -benchmem ./internal/pki/reload/ | grep -E '^(Benchmark|ok)'
