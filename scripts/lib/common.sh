# Shared by scripts/test, scripts/demo and bench/: package installation, the build, and the
# unprivileged user PostgreSQL runs as. Source it; it defines functions and changes nothing.

# Everything the build needs, from Debian.
TM_BUILD_PACKAGES=(g++ cmake ninja-build pkg-config libssl-dev libcurl4-openssl-dev libpq-dev
  liblz4-dev libzstd-dev libtomlplusplus-dev libspdlog-dev nlohmann-json3-dev libpugixml-dev doctest-dev
  ccache)
# What checks the sources before the build: the committed .clang-format is clang-format 14's.
TM_CHECK_PACKAGES=(clang-format-14)
# What the integration tests, the demo and the benchmarks run; tzdata: the time zone database
# --target-time's zone names are read from (the unit tests use it too).
TM_RUNTIME_PACKAGES=(postgresql-15 postgresql-client-15 tzdata)
# What only the integration tests use: libfaketime (a client whose clock is off), strace, and
# the checkers of contrib/: promtool (package prometheus) and systemd-analyze (systemd).
TM_TEST_PACKAGES=(faketime strace prometheus systemd)
# What scripts/package checks the Debian package with.
TM_PACKAGE_PACKAGES=(lintian)
# The S3 server of the integration tests (scripts/s3-server): Ceph's RADOS Gateway.
TM_S3_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl openssl)

TM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TM_PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

tm_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

tm_as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs the packages that are missing; quiet (and quick) when none is.
tm_install_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  tm_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages install servers (postgresql-15 a cluster, prometheus its server) that the scripts
  # never use: a policy-rc.d for the duration of the install keeps them from being started.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# tidemark scripts: no service starts while packages install\nexit 101\n' |
      tm_as_root tee "$policy" >/dev/null
    tm_as_root chmod 755 "$policy"
    own_policy=1
  fi
  local status=0
  if ! tm_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    tm_as_root apt-get update -qq >/dev/null
    tm_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  fi
  ((own_policy)) && tm_as_root rm -f "$policy"
  return "$status"
}

# PostgreSQL refuses to run as root: as root, tests and the demo run it as 'postgres'.
tm_ensure_pg_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

# Configures and builds into DIR with extra cmake arguments, through ccache when it is installed
# (TM_BUILD_PACKAGES has it): scripts/package compiles the product's sources as the test build did
# and gets them from the cache. Paths are hashed relative to the clone, so that another build
# folder or clone hits too. The cache is ccache's own (ccache -k cache_dir: ~/.cache/ccache unless
# configured), or .cache/ccache in the clone when that cannot be written.
tm_build() {
  local dir=$1
  shift
  local launcher=()
  if command -v ccache >/dev/null; then
    export CCACHE_BASEDIR=$TM_ROOT CCACHE_NOHASHDIR=true
    if [[ -z ${CCACHE_DIR:-} ]]; then
      local own
      own=$(ccache -k cache_dir 2>/dev/null) || own=""
      if [[ -z $own ]] || ! { mkdir -p "$own" 2>/dev/null && [[ -w $own ]]; }; then
        export CCACHE_DIR=$TM_ROOT/.cache/ccache
      fi
    fi
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  else  # a build folder configured with it stays usable
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)
  fi
  cmake -S "$TM_ROOT" -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
  cmake --build "$dir"
}

# Fails, listing the files, when a tracked C++ file is not as clang-format 14 formats it.
tm_check_format() {
  local unformatted=() file
  while IFS= read -r file; do
    clang-format-14 --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
  done < <(git -C "$TM_ROOT" ls-files '*.cpp' '*.h')
  ((${#unformatted[@]} == 0)) && return 0
  echo "not formatted (run: clang-format-14 -i \$(git ls-files '*.cpp' '*.h')):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  return 1
}

# Fails on an include relative to the including file ("../config/config.h"): it would reach past
# the module boundaries the build enforces (docs/architecture.md).
tm_check_includes() {
  local relative
  relative=$(git -C "$TM_ROOT" grep -n -E '#include "\.\.?/' -- '*.cpp' '*.h' || true)
  [[ -z $relative ]] && return 0
  echo "relative includes (write them from the root: \"common/<module>/<file>.h\"):" >&2
  echo "$relative" >&2
  return 1
}

# A TCP port on 127.0.0.1 where nothing listens.
tm_free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  echo "no free port found" >&2
  return 1
}

# Stops a process this shell started: SIGINT (PostgreSQL: fast shutdown), SIGKILL after
# $2 seconds (default 30), then reaps it. An exited child stays a zombie until reaped, and
# kill -0 succeeds on zombies, so the state is read from /proc.
tm_stop_pid() {
  local pid=$1 grace=${2:-30} state
  [[ -n $pid ]] || return 0
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq $((grace * 10))); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    [[ $state == Z || $state == gone ]] && break
    sleep 0.1
  done
  [[ $state == Z || $state == gone ]] || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The binaries the Debian package must hold, each with its man page.
TM_BINARIES=(tidemark tidemark-archive-push tidemark-archive-get tidemark-basebackup tidemark-recover)

# Fails, saying what is wrong, unless the Debian package DEB holds every binary and its man page,
# /etc/tidemark/tidemark.toml as a conffile and a Static-Built-Using field, and lintian reports no
# error on it.
tm_check_package() {
  local deb=$1 contents missing=() program
  contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
  for program in "${TM_BINARIES[@]}"; do
    grep -qx "./usr/bin/$program" <<<"$contents" || missing+=("/usr/bin/$program")
    grep -qx "./usr/share/man/man1/$program.1.gz" <<<"$contents" ||
      missing+=("/usr/share/man/man1/$program.1.gz")
  done
  grep -qx "./etc/tidemark/tidemark.toml" <<<"$contents" || missing+=("/etc/tidemark/tidemark.toml")
  dpkg-deb -I "$deb" conffiles 2>/dev/null | grep -qx "/etc/tidemark/tidemark.toml" ||
    missing+=("the conffile entry of /etc/tidemark/tidemark.toml")
  [[ -n $(dpkg-deb -f "$deb" Static-Built-Using) ]] ||
    missing+=("the Static-Built-Using field (cmake/StaticBuiltUsing.cmake)")
  if ((${#missing[@]})); then
    echo "$deb lacks:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    return 1
  fi
  # Errors fail; warnings are reported, not fatal.
  lintian --fail-on error "$deb" >&2
}
