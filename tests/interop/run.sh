#!/usr/bin/env bash
# Interop check: the signed checkpoints, log entries and inclusion/consistency proofs that a real
# Evidentia appliance serves over its HTTP API must verify with an implementation Evidentia did
# not write — Go's golang.org/x/mod/sumdb/note (C2SP signed notes) and .../tlog (RFC 6962/9162
# Merkle proofs) from Debian's golang-golang-x-mod-dev, built with Debian's golang-go in GOPATH
# mode (no Go module proxy, no network beyond apt).
#
# 1. `cargo run --example interop_fixture -- OUT` starts an in-process appliance, fills a
#    tenant's evidence and audit logs through the API and writes good-*.json and tampered-*.json.
# 2. tests/interop/checker/main.go is built and must verify every good fixture and reject every
#    tampered one, each with the error named by its expect_reject.
#
# Idempotent and non-interactive; installs the two Debian packages when missing (as root, or via
# sudo). INTEROP_OUT overrides the output directory, INTEROP_VERBOSE=1 prints every good fixture.
# Exit 0 only if every good fixture verifies and every tampered one is rejected.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/../.." && pwd)"
gopath=/usr/share/gocode
out="${INTEROP_OUT:-${TMPDIR:-/tmp}/evidentia-interop}"

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -f "$gopath/src/golang.org/x/mod/sumdb/note/note.go" ] || need+=(golang-golang-x-mod-dev)
if [ "${#need[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    echo "interop: installing ${need[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$out"
rm -f "$out"/*.json "$out/tlogcheck"
(cd "$crate" && cargo run -q --example interop_fixture -- "$out")

export GO111MODULE=off GOPATH="$gopath" GOFLAGS="" GOCACHE="${GOCACHE:-$out/go-cache}"
go build -o "$out/tlogcheck" "$here/checker/main.go"

shopt -s nullglob
good=("$out"/good-*.json)
bad=("$out"/tampered-*.json)
if [ "${#good[@]}" -eq 0 ] || [ "${#bad[@]}" -eq 0 ]; then
    echo "interop: FAILED: no fixtures in $out"
    exit 1
fi

status=0
verbose=()
[ "${INTEROP_VERBOSE:-0}" = 1 ] && verbose=(-v)
"$out/tlogcheck" "${verbose[@]}" "${good[@]}" || status=1
"$out/tlogcheck" -tampered "${bad[@]}" || status=1

impl="golang.org/x/mod/sumdb/{note,tlog} $(dpkg-query -W -f='${Version}' golang-golang-x-mod-dev 2>/dev/null || echo '?'), $(go version | awk '{print $3}')"
if [ "$status" -eq 0 ]; then
    echo "interop: OK: ${#good[@]} good fixtures verified, ${#bad[@]} tampered fixtures rejected ($impl)"
else
    echo "interop: FAILED (fixtures in $out; checker: $impl)"
fi
exit "$status"
