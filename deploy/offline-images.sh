#!/bin/sh
# deploy/offline-images.sh: SLAPENIR's three images (ca, proxy, agent)
# built on this machine without any container registry, so that
# `docker compose up -d` runs without pulling anything.
#
#   1. a Debian base image: debootstrap (from a Debian mirror) then docker
#      import; the root file system is cached as a tarball in
#      ~/.cache/slapenir, so later runs need neither debootstrap nor the mirror;
#   2. slapenir built static from this checkout, and step-ca from the Go
#      module proxy (cached in ~/.cache/slapenir);
#   3. the images, from the repository's own Dockerfiles, with those binaries
#      in their build context and the Debian base as BASE_IMAGE and GO_IMAGE.
#
# With --go-image it also makes a Go image from this machine's toolchain
# (for `docker compose build` without a registry) and prints the .env lines
# that use it.
#
# Needs: docker, go, and (until the tarball is cached) root and debootstrap.
# Idempotent: the base image and the binaries are reused; the three images
# are rebuilt from the current checkout each time.
#
# Settings (environment):
#   SLAPENIR_CA_IMAGE, SLAPENIR_PROXY_IMAGE, SLAPENIR_AGENT_IMAGE
#       the tags to build; the defaults are what docker-compose.yml runs
#       (slapenir-ca:latest, ...). Set them the same for both.
#   SLAPENIR_BASE_IMAGE  the imported Debian base (slapenir-debian:bookworm)
#   INSTALL_AIDER        true to pip install Aider into the agent (needs PyPI;
#                        default false)
#   DEBIAN_MIRROR        for debootstrap (http://deb.debian.org/debian)
#   SLAPENIR_STEPCA_BIN  a step-ca binary to use instead of building one
#   STEP_CA_VERSION      the step-ca release to build (v0.30.2)
set -eu

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

go_image=false
for arg in "$@"; do
	case "$arg" in
	--go-image) go_image=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "offline-images.sh: unknown argument $arg (see --help)" >&2
		exit 2
		;;
	esac
done

say() { printf 'offline-images: %s\n' "$*" >&2; }
die() {
	printf 'offline-images: error: %s\n' "$*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$repo/go.mod" ] || [ ! -f "$repo/agent/Dockerfile" ]; then
	die "run me from a SLAPENIR checkout (no go.mod and agent/Dockerfile above $0)"
fi

CA_IMAGE=${SLAPENIR_CA_IMAGE:-slapenir-ca:latest}
PROXY_IMAGE=${SLAPENIR_PROXY_IMAGE:-slapenir-proxy:latest}
AGENT_IMAGE=${SLAPENIR_AGENT_IMAGE:-slapenir-agent:latest}
BASE=${SLAPENIR_BASE_IMAGE:-slapenir-debian:bookworm}
INSTALL_AIDER=${INSTALL_AIDER:-false}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STEP_CA_VERSION=${STEP_CA_VERSION:-v0.30.2}
cache=${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/slapenir
# The tools the agent's image needs, all in the base (its Dockerfile then
# installs nothing). The name carries a revision: change the list, bump it.
tarball=$cache/debian-bookworm-agent-2.tar
packages=bash,ca-certificates,curl,git,openssh-client,python3,procps,iproute2,iputils-ping

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed): start it, or run as a user in the docker group"
command -v go >/dev/null 2>&1 || die "go is not installed: slapenir and step-ca are built from source with it (https://go.dev/dl/, Go 1.26 or later)"
mkdir -p "$cache"

work=$(mktemp -d "${TMPDIR:-/tmp}/slapenir-offline-images.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT INT TERM

# 1. The Debian base.
if docker image inspect "$BASE" >/dev/null 2>&1; then
	say "base image $BASE: present"
else
	if [ ! -f "$tarball" ]; then
		[ "$(id -u)" = 0 ] || die "making the Debian base needs root (debootstrap): run me with sudo once; the result is cached in $tarball"
		command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
		say "debootstrap bookworm from $MIRROR into $work/root (a minute or two, once)"
		debootstrap --variant=minbase --include="$packages" bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
			tail -20 "$work/debootstrap.log" >&2
			die "debootstrap failed (the whole log was $work/debootstrap.log; is $MIRROR reachable?)"
		}
		tar -C "$work/root" --exclude='./var/cache/apt/archives/*.deb' -cf "$tarball.tmp" . || die "cannot write $tarball.tmp"
		mv "$tarball.tmp" "$tarball"
		rm -rf "$work/root"
		say "cached the base's root file system in $tarball"
	fi
	say "docker import $tarball as $BASE"
	docker import - "$BASE" <"$tarball" >/dev/null || die "docker import of $tarball failed (delete it to make it again)"
fi

# 2. The binaries.
say "building slapenir (static) from $repo"
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/slapenir" ./cmd/slapenir) || die "go build ./cmd/slapenir failed"
stepca=${SLAPENIR_STEPCA_BIN:-}
if [ -z "$stepca" ]; then
	# The same place the tests keep it (internal/testutil/gobin).
	stepca=$cache/step-ca-$STEP_CA_VERSION/step-ca
	if [ ! -x "$stepca" ]; then
		say "building step-ca $STEP_CA_VERSION from the Go module proxy (a few minutes, once; cached in $(dirname "$stepca"))"
		mkdir -p "$(dirname "$stepca")"
		(cd "$work" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$work/bin" go install "github.com/smallstep/certificates/cmd/step-ca@$STEP_CA_VERSION") ||
			die "go install step-ca@$STEP_CA_VERSION failed (needs the Go module proxy; or set SLAPENIR_STEPCA_BIN to a step-ca binary)"
		mv "$work/bin/step-ca" "$stepca"
	fi
fi
[ -x "$stepca" ] || die "step-ca binary $stepca is not executable"

# 3. The images: each Dockerfile's directory as the context, with the
# binaries beside it (what the Dockerfiles take instead of building from
# source, which needs a Go image from a registry).
build() { # tag dir [docker build args...]
	tag=$1 dir=$2
	shift 2
	ctx=$work/ctx-$dir
	mkdir -p "$ctx"
	cp -R "$repo/$dir/." "$ctx/"
	cp "$work/slapenir" "$ctx/slapenir"
	[ "$dir" = ca ] && cp "$stepca" "$ctx/step-ca"
	say "building $tag from $dir/Dockerfile"
	docker build -q --force-rm -t "$tag" --build-arg GO_IMAGE="$BASE" "$@" "$ctx" >"$work/build.log" 2>&1 || {
		cat "$work/build.log" >&2
		die "docker build of $tag failed"
	}
}
build "$CA_IMAGE" ca
build "$PROXY_IMAGE" proxy
build "$AGENT_IMAGE" agent --build-arg BASE_IMAGE="$BASE" --build-arg INSTALL_AIDER="$INSTALL_AIDER"

# The Go image, for docker compose build.
if $go_image; then
	goroot=$(go env GOROOT)
	gover=$(go env GOVERSION)
	goimg=slapenir-go:${gover#go}
	if docker image inspect "$goimg" >/dev/null 2>&1; then
		say "Go image $goimg: present"
	else
		say "making $goimg from this machine's Go ($goroot)"
		mkdir -p "$work/go-ctx"
		cp -R "$goroot" "$work/go-ctx/go"
		# The host's roots: the build reaches the Go module proxy with them.
		cp /etc/ssl/certs/ca-certificates.crt "$work/go-ctx/" 2>/dev/null || die "no /etc/ssl/certs/ca-certificates.crt to give the Go image"
		printf '%s\n' "FROM $BASE" "COPY go /usr/local/go" "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt" \
			"ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local" >"$work/go-ctx/Dockerfile"
		docker build -q --force-rm -t "$goimg" "$work/go-ctx" >/dev/null || die "docker build of $goimg failed"
	fi
	say "for docker compose build without a registry, put in .env:"
	printf 'GO_IMAGE=%s\nBASE_IMAGE=%s\nINSTALL_AIDER=false\n' "$goimg" "$BASE"
fi

say "done: $CA_IMAGE $PROXY_IMAGE $AGENT_IMAGE"
if [ "$INSTALL_AIDER" != true ]; then
	say "the agent has no Aider (INSTALL_AIDER=false): put INSTALL_AIDER=false in .env too"
fi
say "next: cp .env.example .env (once), then docker compose up -d"
