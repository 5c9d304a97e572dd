#!/usr/bin/env bash
# Build tests/interop/client into build/bgclient, offline, in GOPATH mode,
# against the BuildKit/grpc Go packages Debian ships.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/bgclient"
need=(golang-go golang-github-docker-docker-dev golang-google-grpc-dev golang-github-tonistiigi-fsutil-dev
      golang-github-gofrs-flock-dev golang-github-google-shlex-dev golang-github-grpc-ecosystem-grpc-opentracing-dev
      golang-golang-x-net-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
	echo "build-client: installing ${missing[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
# up to date? (newer than every client source)
if [[ -x "$out" && -z "$(find "$root/tests/interop/client" -newer "$out" -type f)" ]]; then
	exit 0
fi
gp="$(mktemp -d /tmp/bgclient-gopath.XXXXXX)"
trap 'rm -rf "$gp"' EXIT
mkdir -p "$gp/src" "$root/build"
ln -s "$root/tests/interop/client" "$gp/src/bgclient"
cache="${GOCACHE:-$root/build/go-cache}"
(cd "$gp/src/bgclient" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE="$cache" \
	GOPROXY=off CGO_ENABLED=0 go build -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "build-client: built $out" >&2
