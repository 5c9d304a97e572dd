#!/usr/bin/env bash
# Installs the Debian packages buildgate needs to build, test and run its
# demo.  Only asks apt when something is missing, so repeated runs are fast.
set -euo pipefail
pkgs=(
  # build
  build-essential pkg-config libevent-dev libnghttp2-dev libssl-dev libseccomp-dev
  libprotobuf-c-dev protobuf-c-compiler libjansson-dev zlib1g-dev
  # unit tests and fuzzing
  libcmocka-dev clang libclang-rt-14-dev
  # interop: a real Docker engine, busybox as a root filesystem, the Go client
  docker.io busybox-static golang-go golang-github-docker-docker-dev golang-google-grpc-dev
  golang-github-tonistiigi-fsutil-dev golang-github-gofrs-flock-dev golang-github-google-shlex-dev
  golang-github-grpc-ecosystem-grpc-opentracing-dev
  # differential oracle (tests/oracle): gogo decoders generated from proto/
  gogoprotobuf golang-github-gogo-protobuf-dev protobuf-compiler
  # benchmarks
  nghttp2-client nghttp2-proxy
  # test helpers
  socat curl procps iproute2 util-linux
  # quickstart (prints JSON) and the docs tests (man page lint)
  jq man-db groff-base mandoc
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
