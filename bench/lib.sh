# Shared helpers for the bench/ scripts: cleanup, packages, building tidemark, the WAL corpus
# (a throwaway PostgreSQL 15 running pgbench), timing, medians and the result table.
# Sourced, not run. Expects `set -euo pipefail` in the caller.

export LC_ALL=C # EPOCHREALTIME and printf must use '.' as the decimal point

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SEGMENT_SIZE=$((16 * 1024 * 1024))

# The benchmark passes every setting on the command line: the caller's TIDEMARK_* variables
# (an unknown one is even an error for tidemark) must not change what is measured.
for _var in $(compgen -e TIDEMARK_ || true); do unset "$_var"; done
unset _var

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# ---- cleanup: every process started in the background and every temporary folder ----------

declare -A TRACKED_PIDS=()   # pid -> what it is ("postgres" is stopped gently first)
declare -a TEMP_DIRS=()

kill_pid() { # pid [gentle-signal]: signal, wait up to 30 s, then SIGKILL; never by name
	local pid=$1 sig=${2:-TERM} i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop after SIG$sig, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
	local rc=$? pid dir
	trap - EXIT INT TERM
	for pid in "${!TRACKED_PIDS[@]}"; do
		if [[ ${TRACKED_PIDS[$pid]} == postgres ]]; then
			kill_pid "$pid" INT # PostgreSQL's fast shutdown
		else
			kill_pid "$pid" TERM
		fi
	done
	for dir in "${TEMP_DIRS[@]}"; do
		[[ -n $dir && -d $dir ]] && rm -rf -- "$dir"
	done
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_temp_dir() { # VAR: sets VAR to a new folder under $TMPDIR, removed at exit
	# Not "dir=$(make_temp_dir)": a command substitution's subshell would record the folder in
	# its own copy of TEMP_DIRS, and nothing would remove it.
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/tidemark-bench.XXXXXX")
	TEMP_DIRS+=("$dir")
	printf -v "$1" '%s' "$dir"
}

# Runs a command in the background, tracked so that the exit trap stops it, and waits for it.
# The trap runs at once on a signal (a foreground child would delay it).
run_tracked() {
	local pid rc=0
	"$@" &
	pid=$!
	TRACKED_PIDS[$pid]=$1
	wait "$pid" || rc=$?
	unset "TRACKED_PIDS[$pid]"
	return "$rc"
}

# ---- packages ----------------------------------------------------------------------------

APT_UPDATED=0
apt_install() { # packages...: installs them quietly (apt-get update first, once)
	[[ $(id -u) == 0 ]] || die "missing packages: $* (run as root, or install them: apt-get install $*)"
	command -v apt-get >/dev/null || die "missing packages: $* (no apt-get here: install them by hand)"
	log "installing $*"
	if ((APT_UPDATED == 0)); then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Installs what the benchmarks run, only when something is missing.
ensure_tools() { # extra-packages-needed-by-the-caller...
	local -a missing=()
	local pair cmd pkg
	for pair in zstd:zstd lz4:lz4 /usr/bin/time:time sha256sum:coreutils dd:coreutils \
		setpriv:util-linux "$@"; do
		cmd=${pair%%:*} pkg=${pair#*:}
		if [[ $cmd == /* ]]; then [[ -x $cmd ]] && continue; else command -v "$cmd" >/dev/null && continue; fi
		[[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

ensure_postgres() {
	local -a missing=()
	[[ -x $PG_BIN/postgres && -x $PG_BIN/initdb ]] || missing+=(postgresql-15)
	[[ -x $PG_BIN/pgbench && -x $PG_BIN/psql ]] || missing+=(postgresql-15 postgresql-client-15)
	((${#missing[@]} == 0)) || apt_install postgresql-15 postgresql-client-15
	[[ -x $PG_BIN/postgres ]] || die "no PostgreSQL 15 in $PG_BIN"
}

# ---- tidemark binaries ---------------------------------------------------------------------

# Sets PUSH and GET. $BENCH_BIN_DIR: use the binaries there as they are. $BENCH_REV: build that
# commit, exported into <clone>/build-bench-<sha>/src, in <clone>/build-bench-<sha>/build.
# Otherwise configure ($BENCH_BUILD_TYPE, default RelWithDebInfo) and build (incrementally)
# the working tree the project in $BENCH_BUILD_DIR (default <clone>/build-bench, a folder
# no one else builds in, so a concurrent rebuild of build/ cannot swap binaries mid-run), then
# install into a temporary prefix and run from there.
ensure_tidemark() {
	if [[ -n ${BENCH_BIN_DIR:-} ]]; then
		PUSH=$BENCH_BIN_DIR/tidemark-archive-push
		GET=$BENCH_BIN_DIR/tidemark-archive-get
		[[ -x $PUSH && -x $GET ]] || die "no tidemark-archive-push/-get in BENCH_BIN_DIR '$BENCH_BIN_DIR'"
		return
	fi
	local build=${BENCH_BUILD_DIR:-$ROOT_DIR/build-bench} prefix buildlog
	local -a missing=()
	local pair
	for pair in cmake:cmake ninja:ninja-build g++:g++ pkg-config:pkg-config; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	# The libraries CMakeLists.txt finds, by their Debian package.
	for pair in libssl-dev libcurl4-openssl-dev libpq-dev libtomlplusplus-dev libfmt-dev libspdlog-dev \
		nlohmann-json3-dev liblz4-dev libzstd-dev; do
		package_installed "$pair" || missing+=("$pair")
	done
	((${#missing[@]} == 0)) || apt_install "${missing[@]}"

	make_temp_dir buildlog
	buildlog+=/build.log
	local src=$ROOT_DIR
	if [[ -n ${BENCH_REV:-} ]]; then
		# A committed revision, exported with git archive: others' uncommitted edits in this
		# checkout stay out of the measurement, and the figures name an exact commit.
		REV_SHA=$(git -C "$ROOT_DIR" rev-parse --verify "$BENCH_REV^{commit}") ||
			die "BENCH_REV '$BENCH_REV' is not a commit"
		local base=$ROOT_DIR/build-bench-${REV_SHA:0:12}
		src=$base/src build=$base/build
		if [[ ! -d $src ]]; then
			log "exporting $REV_SHA into $src"
			rm -rf -- "$src.tmp"
			mkdir -p "$src.tmp"
			git -C "$ROOT_DIR" archive --format=tar "$REV_SHA" | tar -x -C "$src.tmp"
			mv "$src.tmp" "$src"
		fi
	fi
	BUILD_TYPE=${BENCH_BUILD_TYPE:-RelWithDebInfo} # the project's default
	log "configuring tidemark in $build ($BUILD_TYPE)"
	cmake -S "$src" -B "$build" -G Ninja -DTIDEMARK_TESTS=OFF -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
		>"$buildlog" 2>&1 || { cat "$buildlog" >&2; die "cmake configure failed"; }
	log "building tidemark in $build"
	cmake --build "$build" --target tidemark-archive-push tidemark-archive-get >"$buildlog" 2>&1 ||
		{ cat "$buildlog" >&2; die "build failed"; }
	make_temp_dir prefix
	cmake --install "$build" --prefix "$prefix" >"$buildlog" 2>&1 ||
		{ cat "$buildlog" >&2; die "cmake --install failed"; }
	PUSH=$prefix/bin/tidemark-archive-push
	GET=$prefix/bin/tidemark-archive-get
}

# ---- the WAL corpus --------------------------------------------------------------------------

CORPUS_DIR=${BENCH_CORPUS:-$BENCH_DIR/.corpus}

corpus_segments() { # prints the paths of the cached segments, sorted
	[[ -d $CORPUS_DIR ]] || return 0
	find "$CORPUS_DIR" -maxdepth 1 -type f -size "${SEGMENT_SIZE}c" -regextype posix-extended \
		-regex '.*/[0-9A-F]{24}' | sort
}

as_postgres() { # command...: runs it as the 'postgres' OS user when we are root (exec: same pid)
	if [[ $(id -u) == 0 ]]; then
		exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		exec "$@"
	fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local i port
	for ((i = 0; i < 100; i++)); do
		port=$((20000 + RANDOM % 40000))
		if port_free "$port"; then
			printf '%s\n' "$port"
			return
		fi
	done
	die "no free loopback port found"
}

# Ensures CORPUS_DIR holds at least $1 segments from a pgbench run; $2=1 regenerates anyway.
ensure_corpus() {
	local want=$1 regenerate=${2:-0} have
	have=$(corpus_segments | wc -l)
	if ((regenerate == 0 && have >= want)); then
		log "using $want of the $have cached WAL segments in $CORPUS_DIR"
		return
	fi
	ensure_postgres
	local tmp data archive port pg_pid="" attempt ready i segments
	make_temp_dir tmp
	data=$tmp/data archive=$tmp/archive
	mkdir -p "$archive"
	if [[ $(id -u) == 0 ]]; then
		id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run PostgreSQL as (PostgreSQL refuses root)"
		chown -R postgres: "$tmp"
	fi
	chmod 0755 "$tmp"
	log "generating $want WAL segments: initdb in $tmp"
	(cd "$tmp" && as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync) \
		>"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }

	for attempt in 1 2 3; do
		port=$(free_port)
		(cd "$tmp" && as_postgres "$PG_BIN/postgres" -D "$data" \
			-c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$tmp" \
			-c wal_level=replica -c archive_mode=on -c archive_command="cp %p $archive/%f" \
			-c max_wal_size=1GB -c fsync=off -c synchronous_commit=off) >"$tmp/postgres.log" 2>&1 &
		pg_pid=$!
		TRACKED_PIDS[$pg_pid]=postgres
		ready=0
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pg_pid" 2>/dev/null || break
			if "$PG_BIN/pg_isready" -q -h "$tmp" -p "$port" -U postgres; then
				ready=1
				break
			fi
			sleep 0.1
		done
		((ready)) && break
		kill_pid "$pg_pid" INT
		unset "TRACKED_PIDS[$pg_pid]"
		pg_pid=""
		log "PostgreSQL did not start on port $port (attempt $attempt): $(tail -n 3 "$tmp/postgres.log")"
	done
	[[ -n $pg_pid ]] || die "could not start PostgreSQL (log: $tmp/postgres.log)"
	log "PostgreSQL 15 running as pid $pg_pid on 127.0.0.1:$port"

	local -a conn=(-h "$tmp" -p "$port" -U postgres)
	run_tracked "$PG_BIN/pgbench" "${conn[@]}" -i -s 10 -q postgres >"$tmp/pgbench-init.log" 2>&1 ||
		{ cat "$tmp/pgbench-init.log" >&2; die "pgbench -i failed"; }
	# Traffic until `want` segments are complete (written past), then one switch so the last is
	# archived too; most segments are thus filled by real traffic, not by a switch.
	local first current
	# psql answers at once: it runs in the foreground (a command substitution cannot track it).
	first=$(( 16#$("$PG_BIN/psql" "${conn[@]}" -XAtqc \
		"select substr(pg_walfile_name('0/1000000'::pg_lsn), 17, 8)" postgres) ))
	for ((i = 0; i < 100; i++)); do
		current=$("$PG_BIN/psql" "${conn[@]}" -XAtqc \
			"select pg_walfile_name(pg_current_wal_lsn())" postgres)
		current=$(( 16#${current:8:8} * 256 + 16#${current:16:8} ))
		((current - first >= want)) && break
		log "pgbench traffic: $((current - first)) of $want segments written"
		# A checkpoint first: the updates after it log full-page images, as on a real server.
		run_tracked "$PG_BIN/psql" "${conn[@]}" -XAtqc "checkpoint" postgres >/dev/null
		run_tracked "$PG_BIN/pgbench" "${conn[@]}" -c 2 -j 2 -T 10 -n postgres >>"$tmp/pgbench.log" 2>&1 ||
			{ tail -n 20 "$tmp/pgbench.log" >&2; die "pgbench failed"; }
	done
	run_tracked "$PG_BIN/psql" "${conn[@]}" -XAtqc "select pg_switch_wal()" postgres >/dev/null
	for ((i = 0; i < 600; i++)); do
		segments=$(find "$archive" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)
		((segments >= want)) && break
		sleep 0.1
	done
	((segments >= want)) || die "only $segments of $want segments were archived (log: $tmp/postgres.log)"
	log "stopping PostgreSQL (pid $pg_pid)"
	kill_pid "$pg_pid" INT
	unset "TRACKED_PIDS[$pg_pid]"

	# Replace the cache whole: a new folder next to it, then a rename.
	local staging="$CORPUS_DIR.new.$$"
	TEMP_DIRS+=("$staging") # gone after the rename; removed if we stop before it
	rm -rf -- "$staging"
	mkdir -p "$staging"
	find "$archive" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' \
		-exec cp -t "$staging" {} +
	chmod 0644 "$staging"/*
	{
		echo "generated $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/lib.sh ensure_corpus"
		echo "$("$PG_BIN/postgres" --version); pgbench -i -s 10, then rounds of checkpoint + pgbench -c 2 -j 2 -T 10"
		echo "segments: $(find "$archive" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)"
	} >"$staging/README"
	rm -rf -- "$CORPUS_DIR"
	mv "$staging" "$CORPUS_DIR"
	log "cached $(corpus_segments | wc -l) segments in $CORPUS_DIR"
}

# ---- measuring -------------------------------------------------------------------------------

# RUN prefixes every process a measured method starts: empty while timing, GNU time while
# measuring peak RSS (appending each process's maximum resident set, in KiB, to a file).
# shellcheck disable=SC2034 # the methods expand it
RUN=()

declare -A TIMES=()    # method -> microseconds, one per file per timed round
declare -A PEAK_KIB=() # method -> peak RSS of any one of its processes
declare -A STORED=()   # method -> bytes it wrote for the whole corpus (round 0)

# Runs every method of METHODS (shell functions taking SOURCE OUTDIR) on every file of FILES,
# one call per file, in ROUNDS timed rounds after one untimed round under GNU time (peak RSS,
# stored bytes, and a warm-up). OUTDIR is a fresh empty folder per method and round in WORK
# (a fresh repository for tidemark). The calls are interleaved: for each file, every method
# in an order rotated per file and round, so a burst of load elsewhere on the machine lands on
# all methods alike. After each call (untimed) the files it wrote are counted and deleted,
# except a repository's stanza.json: deleting unsynced output also cancels its writeback,
# which would otherwise slow down the next call.
run_methods() {
	local round i k m out t0 t1 bytes nm=${#METHODS[@]} nf=${#FILES[@]}
	for m in "${METHODS[@]}"; do
		TIMES[$m]="" STORED[$m]=0
		: >"$WORK/rss.$m"
	done
	sync
	for ((round = 0; round <= ROUNDS; round++)); do
		if ((round == 0)); then log "round 0: peak RSS and stored size (untimed)"; else log "round $round of $ROUNDS"; fi
		for m in "${METHODS[@]}"; do mkdir "$WORK/out.$m"; done
		for ((i = 0; i < nf; i++)); do
			for ((k = 0; k < nm; k++)); do
				m=${METHODS[(i + round + k) % nm]}
				out=$WORK/out.$m
				if ((round == 0)); then RUN=(/usr/bin/time -a -o "$WORK/rss.$m" -f %M); else RUN=(); fi
				t0=$EPOCHREALTIME
				"$m" "${FILES[i]}" "$out"
				t1=$EPOCHREALTIME
				# shellcheck disable=SC2034
				RUN=()
				bytes=$(find "$out" -type f ! -name stanza.json -printf '%s\n' -delete | awk '{ s += $1 } END { print s + 0 }')
				if ((round == 0)); then
					STORED[$m]=$((STORED[$m] + bytes))
				else
					TIMES[$m]+="$((${t1/./} - ${t0/./})) "
				fi
			done
		done
		for m in "${METHODS[@]}"; do rm -rf -- "$WORK/out.$m"; done
	done
	for m in "${METHODS[@]}"; do
		PEAK_KIB[$m]=$(sort -n "$WORK/rss.$m" | tail -n 1)
	done
}

median_us() { # microseconds... -> median
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

percentile_us() { # p microseconds... -> nearest-rank percentile
	local p=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 } END {
		r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# ---- reporting -------------------------------------------------------------------------------

machine_line() {
	local cpu
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	printf '%s, %s cores, %s, kernel %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")" "$(nproc)" \
		"${cpu:-unknown CPU}" "$(uname -r)"
}

tidemark_revision() {
	if [[ -n ${BENCH_BIN_DIR:-} ]]; then
		printf 'binaries from %s\n' "$BENCH_BIN_DIR"
		return
	fi
	if [[ -n ${REV_SHA:-} ]]; then
		printf '%s (BENCH_REV, committed tree)\n' "${REV_SHA:0:12}"
		return
	fi
	local rev
	rev=$(git -C "$ROOT_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	# Only what goes into the binaries; others' uncommitted tests or docs do not matter here.
	if [[ $rev != unknown ]] &&
		[[ -n $(git -C "$ROOT_DIR" status --porcelain -- CMakeLists.txt common archive-push archive-get 2>/dev/null) ]]; then
		rev+=" (working tree, with uncommitted changes)"
	else
		rev+=" (working tree)"
	fi
	printf '%s\n' "$rev"
}

print_header() { # title
	local fs
	fs=$(df --output=fstype "${TMPDIR:-/tmp}" | tail -n 1)
	echo "# $1"
	echo "# $(date '+%Y-%m-%d %H:%M %Z'); $(machine_line)"
	echo "# tidemark $(tidemark_revision), ${BUILD_TYPE:-prebuilt} build; $("$PG_BIN/postgres" --version 2>/dev/null || true)"
	echo "# $NFILES segments of 16 MiB from $CORPUS_DIR; $ROUNDS timed rounds + 1 untimed RSS round;" \
		"output in ${TMPDIR:-/tmp} ($fs)"
	echo "# load average at the end (1, 5, 15 min): $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "# zstd $(zstd -V | sed -n 's/.* v\([0-9.]*\).*/\1/p'), lz4 $(lz4 -V 2>&1 | sed -n 's/.* v\([0-9.]*\).*/\1/p')," \
		"$(sha256sum --version | head -n 1)"
}

# Table row: label method [reference-method...]: median and p90 ms per segment, MB/s (10^6
# plain bytes per second at the median), peak RSS, stored/plain, then for each reference the
# ratio of this method's median to the reference's.
print_row() {
	local label=$1 method=$2 med p90 mbs rss stored ref ratio
	shift 2
	# shellcheck disable=SC2086
	med=$(median_us ${TIMES[$method]})
	# shellcheck disable=SC2086
	p90=$(percentile_us 90 ${TIMES[$method]})
	mbs=$(awk -v m="$med" -v b="$SEGMENT_SIZE" 'BEGIN { printf "%.0f", (m > 0 ? b / m : 0) }')
	rss=$(awk -v k="${PEAK_KIB[$method]:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
	if ((${STORED[$method]:-0} > 0)); then
		stored=$(awk -v s="${STORED[$method]}" -v p="$((NFILES * SEGMENT_SIZE))" 'BEGIN { printf "%.1f%%", 100 * s / p }')
	else
		stored=-
	fi
	printf '%-34s %8.1f %8.1f %7s %8s %8s' "$label" "$(awk -v m="$med" 'BEGIN { print m / 1000 }')" \
		"$(awk -v m="$p90" 'BEGIN { print m / 1000 }')" "$mbs" "$rss" "$stored"
	for ref in "$@"; do
		if [[ $ref == - ]]; then
			printf ' %10s' -
			continue
		fi
		# shellcheck disable=SC2086
		ratio=$(awk -v a="$med" -v b="$(median_us ${TIMES[$ref]})" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
		printf ' %10s' "$ratio"
	done
	printf '\n'
}

print_columns() { # reference-column-titles...
	local title
	printf '%-34s %8s %8s %7s %8s %8s' "method (one process per segment)" "med ms" "p90 ms" "MB/s" \
		"RSS MiB" "stored"
	for title in "$@"; do printf ' %10s' "$title"; done
	printf '\n'
}

