#!/usr/bin/env bash
# Cascade: build the mediasoup 3.12.16 C++ worker offline against Debian bookworm system libs.
# mediasoup's own install downloads a prebuilt worker from GitHub (or fetches meson subprojects);
# both fail offline, so we build from Debian packages and cache the binary outside the checkout.
# Idempotent: a second run exits at once if the binary was built with the same settings
# (build-info.json next to it records them, with the flags, for BENCHMARKS.md).
#
# SRTP: Debian's libsrtp2 is built against NSS, whose per-packet contexts cost about two
# thirds of the worker's per-viewer time (measured, BENCHMARKS.md). By default the worker is
# linked statically to a libsrtp2 rebuilt from Debian's own source package (same version and
# patches, fetched with `apt-get source` through a private apt configuration: the system's is
# not touched) against OpenSSL, whose AES uses AES-NI: what mediasoup's own build does.
# Where the source package cannot be fetched, it falls back to Debian's libsrtp2 and says so.
# Users with internet access can still let mediasoup's npm install download its prebuilt
# worker instead (npm install without MEDIASOUP_WORKER_BIN) and point mediasoup.workerBin at it.
#
# Env knobs:
#   MS_VERSION      (default 3.12.16)
#   MS_CACHE_DIR    (default ~/.cache/cascade/mediasoup-worker-$MS_VERSION)
#   MS_WORK_DIR     (default ~/.cache/cascade/mediasoup-worker-build)  scratch dir for sources/build
#   MS_JOBS         (default $(nproc))
#   MS_SRTP         openssl (default: libsrtp2 rebuilt against OpenSSL) | system (Debian's, NSS)
#   MS_LTO=1        link-time optimisation (default 0)
#   MS_SKIP_APT=1   skip apt-get install (deps already present)
#   MS_FORCE=1      rebuild even if the cached binary exists
#   MS_BUILD_TEST=1 also build + run mediasoup-worker-test (catch2; slower, optional)
# Usage afterwards: export MEDIASOUP_WORKER_BIN=<printed path>  (before npm install AND at runtime)
set -Eeuo pipefail

MS_VERSION="${MS_VERSION:-3.12.16}"
MS_CACHE_DIR="${MS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade/mediasoup-worker-$MS_VERSION}"
MS_WORK_DIR="${MS_WORK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade/mediasoup-worker-build}"
MS_JOBS="${MS_JOBS:-$(nproc)}"
MS_SRTP="${MS_SRTP:-openssl}"
MS_LTO="${MS_LTO:-0}"
BIN="$MS_CACHE_DIR/mediasoup-worker"
INFO="$MS_CACHE_DIR/build-info.json"
[[ "$MS_SRTP" == openssl || "$MS_SRTP" == system ]] || { echo "[build-worker] MS_SRTP is openssl or system" >&2; exit 64; }
# What the binary is built with; a cached binary built otherwise is rebuilt.
want_key="mediasoup=$MS_VERSION srtp=$MS_SRTP lto=$MS_LTO"

log() { echo "[build-worker] $*" >&2; }

# What failed, where its output is, and what to check: not just the exit status of some step.
LOG="$MS_WORK_DIR/build.log"
step="checking the cache"
on_error() {
  local rc=$?
  [[ $BASHPID == $$ ]] || exit "$rc"   # a subshell's failure is reported once, by the script
  log "FAILED while $step (exit status $rc)"
  if [[ -s "$LOG" ]]; then log "last lines of $LOG:"; tail -n 25 "$LOG" >&2; fi
  log "The worker is built from Debian packages (build-essential meson ninja-build pkg-config libabsl-dev"
  log "libsrtp2-dev libuv1-dev nlohmann-json3-dev libssl-dev libusrsctp-dev) and the mediasoup@$MS_VERSION"
  log "sources from the npm registry: check that both are reachable and installed, then run again."
  exit "$rc"
}
trap on_error ERR

have_key=""
[[ -f "$INFO" ]] && have_key=$(sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' "$INFO" | head -1)
# A binary from before build-info.json existed was built against Debian's libsrtp2.
[[ -x "$BIN" && ! -f "$INFO" ]] && have_key="mediasoup=$MS_VERSION srtp=system lto=0"
if [[ -x "$BIN" && "${MS_FORCE:-0}" != 1 ]]; then
  if ldd "$BIN" 2>/dev/null | grep -q "not found"; then
    log "WARNING: cached $BIN has missing shared libs (runtime pkgs removed?), rebuilding:"
    ldd "$BIN" | grep "not found" >&2 || true
  elif [[ "$have_key" == "$want_key" || "$have_key" == "$want_key fallback" ]]; then
    log "already built: $BIN"
    echo "$BIN"
    exit 0
  else
    log "cached $BIN was built with [$have_key], wanted [$want_key]: rebuilding"
  fi
fi

# ---------------------------------------------------------------- 1. apt deps
APT_PKGS=(build-essential meson ninja-build pkg-config python3
  libabsl-dev libsrtp2-dev libuv1-dev nlohmann-json3-dev libssl-dev libusrsctp-dev)
[[ "${MS_BUILD_TEST:-0}" == 1 ]] && APT_PKGS+=(catch2)
step="installing Debian packages"
if [[ "${MS_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -o DPkg::Lock::Timeout=600 >/dev/null || true
    $SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
  fi
fi

mkdir -p "$MS_WORK_DIR"
: > "$LOG"

# ---------------------------------------------------------------- 1b. libsrtp2 against OpenSSL
# Debian's source package of the installed libsrtp2 (its version, its patches), fetched through
# a private apt configuration whose deb-src entries mirror the system's deb entries.
srtp_note="Debian's libsrtp2 $(dpkg-query -W -f='${Version}' libsrtp2-1 2>/dev/null || echo '?') (NSS crypto backend)"
SRTP_PREFIX=""
if [[ "$MS_SRTP" == openssl ]]; then
  srtp_version=$(dpkg-query -W -f='${Version}' libsrtp2-1 2>/dev/null || true)
  SRTP_PREFIX="$MS_WORK_DIR/libsrtp2-openssl-${srtp_version:-unknown}"
  if [[ ! -f "$SRTP_PREFIX/lib/libsrtp2.a" ]]; then
    step="fetching and building libsrtp2 $srtp_version against OpenSSL"
    log "building libsrtp2 $srtp_version from Debian's source package against OpenSSL"
    A="$MS_WORK_DIR/apt-src"
    rm -rf "$A" "$SRTP_PREFIX"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/src"
    apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Target-Of: deb' 2>/dev/null | sort -u \
      | awk 'NF == 3 { print "deb-src " $1 " " $2 " " $3 }' > "$A/sources.list"
    APT_SRC=(-o "Dir::Etc::SourceList=$A/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$A/lists"
      -o "Dir::Cache=$A/cache" -o Debug::NoLocking=1)
    [[ $(id -u) == 0 ]] && APT_SRC+=(-o APT::Sandbox::User=root)
    if [[ -n "$srtp_version" && -s "$A/sources.list" ]] \
      && apt-get "${APT_SRC[@]}" update >>"$LOG" 2>&1 \
      && (cd "$A/src" && apt-get "${APT_SRC[@]}" source "libsrtp2=$srtp_version" >>"$LOG" 2>&1); then
      SS=$(find "$A/src" -mindepth 1 -maxdepth 1 -type d -name 'libsrtp2-*' | head -1)
      # The library only, -O3, OpenSSL's AES (AES-NI) and HMAC: static (linked into the worker),
      # and shared (the capacity benchmark can run Janus on it too, a like-for-like baseline).
      meson setup "$A/build" "$SS" --prefix "$SRTP_PREFIX" --libdir lib --buildtype release -Db_ndebug=true \
        -Ddefault_library=both -Db_staticpic=true -Dcrypto-library=openssl \
        -Dtests=disabled -Dpcap-tests=disabled -Ddoc=disabled -Dfuzzer=disabled >>"$LOG" 2>&1
      ninja -C "$A/build" -j"$MS_JOBS" >>"$LOG" 2>&1
      ninja -C "$A/build" install >>"$LOG" 2>&1
      rm -rf "$A"
    else
      log "WARNING: cannot fetch Debian's libsrtp2 source package (no deb-src reachable for the system's archive?):"
      log "         the worker uses Debian's NSS-backed libsrtp2, which costs more CPU per viewer (see $LOG)"
      SRTP_PREFIX=""
      want_key="$want_key fallback"
    fi
  fi
  if [[ -n "$SRTP_PREFIX" ]]; then
    srtp_note="libsrtp2 $srtp_version rebuilt from Debian's source package against OpenSSL $(openssl version | cut -d' ' -f2) (static, meson release: -O3)"
  fi
fi

# ---------------------------------------------------------------- 2. sources from npm
step="fetching mediasoup@$MS_VERSION from the npm registry"
SRC="$MS_WORK_DIR/mediasoup-$MS_VERSION"
if [[ ! -f "$SRC/worker/meson.build" ]]; then
  log "fetching mediasoup@$MS_VERSION sources via npm pack"
  rm -rf "$SRC" "$SRC.tmp" "$MS_WORK_DIR/pack"
  mkdir -p "$MS_WORK_DIR/pack"
  (cd "$MS_WORK_DIR/pack" && npm pack --loglevel=error "mediasoup@$MS_VERSION" >>"$LOG" 2>&1)
  mkdir -p "$SRC.tmp"
  tar -xzf "$MS_WORK_DIR"/pack/mediasoup-"$MS_VERSION".tgz -C "$SRC.tmp" --strip-components=1
  mv "$SRC.tmp" "$SRC"   # atomic-ish: a half-extracted tree is never taken as complete
  rm -rf "$MS_WORK_DIR/pack"
fi
W="$SRC/worker"

# ---------------------------------------------------------------- 3. offline prep
step="preparing the sources for an offline build"
# 3a. Debian bookworm ships meson 1.0.1; mediasoup asks for >= 1.1.0 (nothing 1.1-specific is used).
sed -i "s/meson_version: '>= 1.1.0'/meson_version: '>= 1.0.0'/" "$W/meson.build"

# 3b. Replace each wrap's subproject by a stub that maps to system libs.
#     Directory names must match `directory =` in each .wrap so meson never downloads.
SP="$W/subprojects"
wrapdir() { sed -n 's/^directory *= *//p' "$SP/$1.wrap"; }
mkstub() { # $1=wrap name; stdin = meson.build ; $2 = meson_options.txt content (optional)
  local d="$SP/$(wrapdir "$1")"
  rm -rf "$d"; mkdir -p "$d"
  cat > "$d/meson.build"
  [[ -n "${2:-}" ]] && printf '%s\n' "$2" > "$d/meson_options.txt"
  echo 'int ms_system_lib_stub_symbol_'"${1//[^a-zA-Z0-9]/_}"'(void) { return 0; }' > "$d/stub.c"
}

mkstub openssl <<'EOF'
project('openssl', 'c')
openssl_dep = dependency('openssl', allow_fallback: false)
libcrypto_dep = dependency('libcrypto', allow_fallback: false)
libssl_dep = dependency('libssl', allow_fallback: false)
# only referenced by link_whole of the (not built by default) libmediasoup-worker
libcrypto_lib = static_library('crypto_stub', 'stub.c')
libssl_lib = static_library('ssl_stub', 'stub.c')
EOF

mkstub nlohmann_json <<'EOF'
project('nlohmann_json', 'cpp')
nlohmann_json_dep = dependency('nlohmann_json', allow_fallback: false)
EOF

mkstub libuv "option('build_tests', type: 'boolean', value: false)
option('build_benchmarks', type: 'boolean', value: false)" <<'EOF'
project('libuv', 'c')
libuv_dep = dependency('libuv', allow_fallback: false)
libuv = static_library('uv_stub', 'stub.c')
EOF

# libsrtp2: the OpenSSL build above (linked statically) when the build folder is configured with
# -Dlibsrtp2:srtp_prefix=<prefix>, else Debian's (NSS backend; GCM works). One stub for both, so
# that build folders of either kind can share the source tree. Its headers live in
# <prefix>/include/srtp2 while libsrtp2.pc only says -I<prefix>/include, and mediasoup does
# #include <srtp.h>.
mkstub libsrtp2 "option('crypto-library', type: 'combo', choices: ['none', 'openssl', 'nss', 'mbedtls'], value: 'openssl')
option('crypto-library-kdf', type: 'feature', value: 'auto')
option('tests', type: 'feature', value: 'disabled')
option('srtp_prefix', type: 'string', value: '')" <<'EOF'
project('libsrtp2', 'c')
_prefix = get_option('srtp_prefix')
if _prefix != ''
  libsrtp2_dep = declare_dependency(
    compile_args: ['-I' + _prefix / 'include' / 'srtp2'],
    link_args: [_prefix / 'lib' / 'libsrtp2.a'],
    dependencies: dependency('libcrypto', allow_fallback: false),
  )
else
  _srtp = dependency('libsrtp2', allow_fallback: false)
  libsrtp2_dep = declare_dependency(
    dependencies: _srtp,
    compile_args: ['-I' + _srtp.get_variable(pkgconfig: 'includedir') / 'srtp2'],
  )
endif
libsrtp2 = static_library('srtp2_stub', 'stub.c')
EOF

mkstub usrsctp "option('sctp_build_programs', type: 'boolean', value: false)" <<'EOF'
project('usrsctp', 'c')
usrsctp_dep = dependency('usrsctp', allow_fallback: false)
usrsctp = static_library('usrsctp_stub', 'stub.c')
EOF

mkstub abseil-cpp <<'EOF'
project('abseil-cpp', 'c', 'cpp')
_d = {}
foreach n : ['flat_hash_map', 'flat_hash_set', 'btree', 'inlined_vector', 'memory',
             'strings', 'optional', 'variant', 'bad_optional_access']
  _d += {n: dependency('absl_' + n, allow_fallback: false)}
endforeach
absl_container_dep = declare_dependency(dependencies: [
  _d['flat_hash_map'], _d['flat_hash_set'], _d['btree'], _d['inlined_vector'], _d['memory']])
absl_strings_dep = _d['strings']
absl_types_dep = declare_dependency(dependencies: [_d['optional'], _d['variant'], _d['bad_optional_access']])
absl_container_lib = static_library('absl_container_stub', 'stub.c')
EOF

# catch2 is only needed for mediasoup-worker-test (not built by default); keep it optional.
mkstub catch2 <<'EOF'
project('catch2', 'cpp')
catch2_dep = dependency('catch2', required: false, allow_fallback: false)
EOF

# ---------------------------------------------------------------- 4. configure + build
# One build folder per setting, so that switching back and forth only relinks.
B="$W/out/build-srtp-$([[ -n "$SRTP_PREFIX" ]] && echo openssl || echo system)-lto$MS_LTO"
MESON_OPTS=(--buildtype release -Db_ndebug=true -Db_pie=true -Db_staticpic=true -Db_lto="$([[ "$MS_LTO" == 1 ]] && echo true || echo false)"
  -Dlibsrtp2:srtp_prefix="$SRTP_PREFIX")
if [[ ! -f "$B/build.ninja" ]]; then
  step="configuring the build (meson setup)"
  log "meson setup ${MESON_OPTS[*]}"; rm -rf "$B"
  meson setup "$B" "$W" --wrap-mode=nodownload "${MESON_OPTS[@]}" >>"$LOG" 2>&1 \
    || { rm -rf "$B"; false; }   # a half-configured tree would be taken as ready next time
fi
step="compiling (ninja)"
log "ninja -j$MS_JOBS mediasoup-worker (output in $LOG)"
start=$(date +%s)
ninja -C "$B" -j"$MS_JOBS" mediasoup-worker >>"$LOG" 2>&1
log "build took $(( $(date +%s) - start ))s"

if [[ "${MS_BUILD_TEST:-0}" == 1 ]]; then
  ninja -C "$B" -j"$MS_JOBS" mediasoup-worker-test
  # The npm tarball does not ship worker/test/data/* fixtures, so the 2 test cases that read
  # data/*.raw / data/H264_SVC/*.bin fail with "cannot open file" -> exclude exactly those two.
  (cd "$W" && "$B/mediasoup-worker-test" --use-colour=no \
     "~Scenario: parse RTP packets" "~Scenario: parse RTP packets with H264 SVC") | tail -3
fi

step="installing the binary in $MS_CACHE_DIR"
mkdir -p "$MS_CACHE_DIR"
install -m 0755 "$B/mediasoup-worker" "$BIN.tmp"
strip "$BIN.tmp" || true
# The record BENCHMARKS.md quotes: what was built, how, and against what.
json() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1" | tr -d '\n'; }
flags=$(grep -m1 -A4 '^build mediasoup-worker.p/.*\.cpp\.o:' "$B/build.ninja" | sed -n 's/^ *ARGS = //p' | tr ' ' '\n' \
  | grep -E '^-(O|f|m|D(NDEBUG|MS_)|std=|g)' | sort -u | tr '\n' ' ')
cat > "$INFO.tmp" <<EOF
{
  "key": "$want_key",
  "mediasoup": "$MS_VERSION",
  "srtp": "$(json "$srtp_note")",
  "srtpLibDir": "$([[ -n "$SRTP_PREFIX" && -f "$SRTP_PREFIX/lib/libsrtp2.so.1" ]] && json "$SRTP_PREFIX/lib")",
  "meson": "$(json "${MESON_OPTS[*]} --wrap-mode=nodownload; Debian's abseil, libuv, OpenSSL $(openssl version | cut -d' ' -f2), usrsctp, nlohmann-json")",
  "compiler": "$(json "$(c++ --version | head -1)")",
  "compileFlags": "$(json "$flags")",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv -f "$BIN.tmp" "$BIN"
mv -f "$INFO.tmp" "$INFO"
log "binary: $BIN ($(du -h "$BIN" | cut -f1)); $srtp_note"
echo "$BIN"
