#!/usr/bin/env bash
# Build the differential oracle's Go program into build/bgoracle, offline, in
# GOPATH mode (as tests/interop/build-client.sh builds the interop client):
#   - BuildKit v0.8's own generated decoders, as Debian ships them under
#     /usr/share/gocode (github.com/moby/buildkit/...), imported as they are;
#   - gogo/protobuf decoders generated now, with Debian's protoc-gen-gogofast,
#     from the project's proto/*.proto (fields newer than v0.8) and from
#     tests/oracle/extra.proto (what proto/ leaves undeclared).
# Generated code lives only under build/oracle-gopath.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/bgoracle"
need=(golang-go golang-github-docker-docker-dev golang-github-gogo-protobuf-dev gogoprotobuf protobuf-compiler)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
	echo "oracle build: installing ${missing[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
srcs=("$root"/tests/oracle/bgoracle/*.go "$root"/proto/*.proto "$root"/tests/oracle/extra.proto "$0")
if [[ -x "$out" ]]; then
	stale=0
	for f in "${srcs[@]}"; do [[ "$f" -nt "$out" ]] && stale=1; done
	((stale)) || exit 0
fi
gp="$root/build/oracle-gopath"
rm -rf "$gp/src"
mkdir -p "$gp/src/bgoracle/gen"
for f in "$root"/tests/oracle/bgoracle/*.go; do ln -s "$f" "$gp/src/bgoracle/"; done

# proto/X.proto -> package bgoracle/gen/X (one Go package per file: their
# proto packages differ).
maps="Mproto/ops.proto=bgoracle/gen/ops,Mproto/control.proto=bgoracle/gen/control,Mproto/gateway.proto=bgoracle/gen/gateway"
maps+=",Mproto/sourcepolicy.proto=bgoracle/gen/sourcepolicy,Mproto/worker.proto=bgoracle/gen/worker"
maps+=",Mtests/oracle/extra.proto=bgoracle/gen/extra"
tmp="$(mktemp -d /tmp/bgoracle-gen.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
for p in "$root"/proto/*.proto "$root"/tests/oracle/extra.proto; do
	rel="${p#"$root"/}"
	name="$(basename "$p" .proto)"
	mkdir -p "$tmp/$name" "$gp/src/bgoracle/gen/$name"
	(cd "$root" && protoc --proto_path=. --gogofast_out="$maps:$tmp/$name" "$rel")
	g="$(find "$tmp/$name" -name '*.pb.go')"
	# BuildKit v0.8's packages register the same proto names (pb.Op, ...)
	# in gogo's global registry, where a second enum is a panic: register
	# the generated copies under a prefix.  The wire code is untouched.
	sed -e 's/proto\.RegisterEnum("/proto.RegisterEnum("bgoracle./' \
	    -e 's/proto\.RegisterType(\([^,]*\), "/proto.RegisterType(\1, "bgoracle./' \
	    -e 's/proto\.RegisterMapType(\([^,]*\), "/proto.RegisterMapType(\1, "bgoracle./' \
	    -e 's/proto\.RegisterFile("/proto.RegisterFile("bgoracle\//' \
	    "$g" >"$gp/src/bgoracle/gen/$name/$name.pb.go"
done
# BuildKit v0.8's gateway.pb.go calls gogo's fast-path methods on fsutil's
# Stat, which Debian's newer fsutil/types no longer generates: shadow that one
# package with gogofast code generated from Debian's own stat.proto.
fsu=/usr/share/gocode/src/github.com/tonistiigi/fsutil/types
mkdir -p "$tmp/fsutil" "$gp/src/github.com/tonistiigi/fsutil/types"
(cd "$fsu" && protoc --proto_path=. --gogofast_out="$tmp/fsutil" stat.proto)
cp "$(find "$tmp/fsutil" -name '*.pb.go')" "$gp/src/github.com/tonistiigi/fsutil/types/stat.pb.go"
cache="${GOCACHE:-$root/build/go-cache}"
(cd "$gp/src/bgoracle" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE="$cache" \
	GOPROXY=off CGO_ENABLED=0 go build -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "oracle build: built $out" >&2
