#!/usr/bin/env bash
# Cascade's installer, run by `npm start`, `npm test` and `npm run bench` before anything else.
# Idempotent: a second run only checks (a few seconds). Usage: scripts/setup.sh [run|test|bench]
#   run   - what the server needs: the mediasoup worker (built from Debian packages), npm packages, a build
#   test  - plus chromium (end-to-end tests), redis-server, ffmpeg, iproute2 (network namespaces),
#           nginx + openssl (the TLS reverse proxy of testing/src/tlsProxy.ts), miniupnpd-nftables +
#           nftables + iptables (the home router of testing/src/natRouter.ts); their services are
#           neither started nor left enabled: the tests run private instances; Go and pion (the
#           load sink, load-tests/sink, built by scripts/build-sink.sh)
#   bench - plus janus (the peer SFU the capacity benchmark compares against)
# Knobs: CASCADE_SKIP_APT=1 (never call apt-get), CASCADE_CACHE_DIR (default ~/.cache/cascade).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
log() { echo "[setup] $*" >&2; }
started=$(date +%s%N)

# Several commands may start at once (an origin and two relays from one shell): the first
# installs, the others wait for it instead of running npm ci over each other.
CACHE="${CASCADE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade}"
mkdir -p "$CACHE"
exec 9>"$CACHE/setup-$(pwd | sha256sum | cut -c1-12).lock"
flock 9

# ---------------------------------------------------------------- 1. Debian packages
# The worker's build dependencies also pull in its run-time libraries.
PKGS=(build-essential meson ninja-build pkg-config python3 libabsl-dev libsrtp2-dev libuv1-dev
  nlohmann-json3-dev libssl-dev libusrsctp-dev)
case "$MODE" in
  run) ;;
  test) PKGS+=(chromium redis-server ffmpeg iproute2 nginx openssl miniupnpd-nftables nftables iptables golang-go golang-github-pion-webrtc.v3-dev) ;;
  bench) PKGS+=(chromium redis-server ffmpeg iproute2 nginx openssl miniupnpd-nftables nftables iptables golang-go golang-github-pion-webrtc.v3-dev janus) ;;
  *) echo "usage: $0 [run|test|bench]" >&2; exit 64 ;;
esac
if [[ "${CASCADE_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  while read -r name status; do
    [[ "$status" == "installed" ]] || missing+=("$name")
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
  # dpkg-query prints nothing for packages it has never heard of.
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || { [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p"); }
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # Debian starts (and enables) a daemon's service when its package is installed; the tests run
    # private nginx instances and need no system-wide one. A policy-rc.d that says no keeps
    # invoke-rc.d from starting anything during this install (one already there is left alone).
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# Written by cascade scripts/setup.sh during an install; removed after it.\nexit 101\n' | $SUDO tee $policy >/dev/null
      $SUDO chmod 755 $policy
      own_policy=1
      trap '$SUDO rm -f $policy' EXIT
    fi
    $SUDO apt-get update -o DPkg::Lock::Timeout=600 >/dev/null || log "apt-get update failed; trying the install anyway"
    $SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    if ((own_policy)); then $SUDO rm -f $policy; trap - EXIT; fi
    # ... and the package enabled it for the next boot: undo that for what this run installed.
    for p in "${missing[@]}"; do
      case "$p" in nginx) svc=nginx ;; *) continue ;; esac
      if command -v systemctl >/dev/null; then
        $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
        [[ -d /run/systemd/system ]] && { $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; }
      fi
      command -v update-rc.d >/dev/null && { $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true; }
      log "left the $svc service stopped and disabled (the tests start their own)"
    done
  fi
fi

# ---------------------------------------------------------------- 2. the mediasoup worker
export MEDIASOUP_WORKER_BIN="${MEDIASOUP_WORKER_BIN:-$CACHE/mediasoup-worker-3.12.16/mediasoup-worker}"
if [[ ! -x "$MEDIASOUP_WORKER_BIN" ]]; then
  log "building the mediasoup worker from Debian's libraries (first run only, about 4-7 minutes)"
fi
MS_SKIP_APT=1 MS_CACHE_DIR="$(dirname "$MEDIASOUP_WORKER_BIN")" MS_WORK_DIR="$CACHE/mediasoup-worker-build" \
  bash scripts/build-mediasoup-worker.sh >/dev/null

# ---------------------------------------------------------------- 3. npm packages
# MEDIASOUP_WORKER_BIN (exported above) stops mediasoup's postinstall from downloading a worker.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.cascade-install-stamp
# The stamp is written only after a complete install; the spot checks catch a tree damaged since.
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" || ! -x node_modules/.bin/tsc || ! -f node_modules/mediasoup/package.json ]]; then
  log "installing npm packages"
  rm -f "$stamp"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_sum" > "$stamp"
fi

# ---------------------------------------------------------------- 4. build
bash scripts/build.sh
# The load sink (Go, offline from Debian's pion): rebuilt only when its sources changed.
if [[ "$MODE" != run ]]; then
  bash scripts/build-sink.sh >/dev/null
fi

log "ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"
