#!/usr/bin/env bash
# Cascade: build the mediasoup 3.12.16 C++ worker offline against Debian bookworm system libs.
# mediasoup's own install downloads a prebuilt worker from GitHub (or fetches meson subprojects);
# both fail offline, so we build from Debian packages and cache the binary outside the checkout.
# Idempotent: second run exits immediately if the binary already exists.
#
# Env knobs:
#   MS_VERSION      (default 3.12.16)
#   MS_CACHE_DIR    (default ~/.cache/cascade/mediasoup-worker-$MS_VERSION)
#   MS_WORK_DIR     (default ~/.cache/cascade/mediasoup-worker-build)  scratch dir for sources/build
#   MS_JOBS         (default $(nproc))
#   MS_SKIP_APT=1   skip apt-get install (deps already present)
#   MS_FORCE=1      rebuild even if the cached binary exists
#   MS_BUILD_TEST=1 also build + run mediasoup-worker-test (catch2; slower, optional)
# Usage afterwards: export MEDIASOUP_WORKER_BIN=<printed path>  (before npm install AND at runtime)
set -Eeuo pipefail

MS_VERSION="${MS_VERSION:-3.12.16}"
MS_CACHE_DIR="${MS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade/mediasoup-worker-$MS_VERSION}"
MS_WORK_DIR="${MS_WORK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cascade/mediasoup-worker-build}"
MS_JOBS="${MS_JOBS:-$(nproc)}"
BIN="$MS_CACHE_DIR/mediasoup-worker"

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

if [[ -x "$BIN" && "${MS_FORCE:-0}" != 1 ]]; then
  if ldd "$BIN" 2>/dev/null | grep -q "not found"; then
    log "WARNING: cached $BIN has missing shared libs (runtime pkgs removed?), rebuilding:"
    ldd "$BIN" | grep "not found" >&2 || true
  else
    log "already built: $BIN"
    echo "$BIN"
    exit 0
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

# ---------------------------------------------------------------- 2. sources from npm
mkdir -p "$MS_WORK_DIR"
: > "$LOG"
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

# Debian's libsrtp2 headers live in /usr/include/srtp2 but libsrtp2.pc only says -I/usr/include,
# mediasoup does #include <srtp.h>. (Debian's libsrtp2 uses the NSS crypto backend; GCM works.)
mkstub libsrtp2 "option('crypto-library', type: 'combo', choices: ['none', 'openssl', 'nss', 'mbedtls'], value: 'openssl')
option('crypto-library-kdf', type: 'feature', value: 'auto')
option('tests', type: 'feature', value: 'disabled')" <<'EOF'
project('libsrtp2', 'c')
_srtp = dependency('libsrtp2', allow_fallback: false)
libsrtp2_dep = declare_dependency(
  dependencies: _srtp,
  compile_args: ['-I' + _srtp.get_variable(pkgconfig: 'includedir') / 'srtp2'],
)
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
B="$W/out/build"
if [[ ! -f "$B/build.ninja" ]]; then
  step="configuring the build (meson setup)"
  log "meson setup"; rm -rf "$B"
  meson setup "$B" "$W" \
    --wrap-mode=nodownload \
    --buildtype release -Db_ndebug=true -Db_pie=true -Db_staticpic=true >>"$LOG" 2>&1 \
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
mv -f "$BIN.tmp" "$BIN"
log "binary: $BIN ($(du -h "$BIN" | cut -f1))"
echo "$BIN"
