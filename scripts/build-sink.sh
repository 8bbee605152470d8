#!/usr/bin/env bash
# Cascade: build the load sink (load-tests/sink, Go) offline from Debian's Go packages.
#
# The sink is a cheap receive-only WebRTC viewer: hundreds per process, each with real ICE,
# DTLS-SRTP and RTCP. It is written against pion's DTLS/SRTP/RTCP packages as Debian ships
# them (golang-github-pion-webrtc.v3-dev pulls them all in), built in GOPATH mode: Debian
# installs each module's sources under /usr/share/gocode/src without its /vN suffix, so a
# private GOPATH links each /vN import path (github.com/pion/transport/v2, …) to its folder.
# Nothing is downloaded (GOPROXY=off, GOFLAGS=-mod=mod is not used: there is no module).
#
# Idempotent: the binary is rebuilt only when the sources or the Go toolchain changed
# (a hash of both names the build). Prints the binary's path on stdout.
#
# Env knobs:
#   SINK_CACHE_DIR  (default ~/.cache/cascade/sink)   GOPATH, Go build cache and the binary
#   SINK_TEST=1     run the sink's Go unit tests (`go test`) before installing
set -Eeuo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD/load-tests/sink"
CACHE="${SINK_CACHE_DIR:-${CASCADE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade}/sink}"
SYS_GOPATH=/usr/share/gocode
log() { echo "[build-sink] $*" >&2; }

command -v go >/dev/null || { log "go is not installed (Debian package golang-go; scripts/setup.sh test installs it)"; exit 1; }
[[ -d "$SYS_GOPATH/src/github.com/pion/dtls/v2" ]] || { log "pion is not installed (Debian package golang-github-pion-webrtc.v3-dev)"; exit 1; }

sum=$( (go version; cd "$SRC" && sha256sum ./*.go) | sha256sum | cut -c1-16)
BIN="$CACHE/bin/cascade-sink-$sum"
if [[ -x "$BIN" && "${SINK_TEST:-0}" != 1 ]]; then
  echo "$BIN"
  exit 0
fi

# The private GOPATH: only the /vN links. It comes after Debian's, so that an import without
# a suffix (github.com/pion/transport, used by older pion code) still finds Debian's folder.
GP="$CACHE/gopath"
mkdir -p "$GP/src/github.com/pion"
for mod in "$SYS_GOPATH"/src/github.com/pion/*/go.mod; do
  dir=$(dirname "$mod")
  path=$(sed -n 's/^module[[:space:]]*//p' "$mod" | tr -d '\r')
  [[ "$path" =~ /v[0-9]+$ ]] || continue
  link="$GP/src/$path"
  [[ -L "$link" && "$(readlink "$link")" == "$dir" ]] && continue
  mkdir -p "$(dirname "$link")"
  ln -sfn "$dir" "$link"
done

export GO111MODULE=off GOPATH="$SYS_GOPATH:$GP" GOCACHE="$CACHE/go-build" GOPROXY=off GOFLAGS= CGO_ENABLED=0
if [[ "${SINK_TEST:-0}" == 1 ]]; then
  (cd "$SRC" && go vet . && go test -count=1 .) >&2
fi
mkdir -p "$CACHE/bin"
start=$(date +%s)
(cd "$SRC" && go build -trimpath -ldflags='-s -w' -o "$BIN.tmp" .)
mv -f "$BIN.tmp" "$BIN"
# Older builds of the sink are of no further use.
find "$CACHE/bin" -maxdepth 1 -name 'cascade-sink-*' ! -name "cascade-sink-$sum" -delete
ln -sfn "$BIN" "$CACHE/bin/cascade-sink"
log "built $BIN in $(($(date +%s) - start)) s"
echo "$BIN"
