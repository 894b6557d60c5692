# shellcheck shell=bash
# Shared helpers for the bench/ scripts: cleanup, packages, building tidemark, the WAL corpus
# (a throwaway PostgreSQL 15 running pgbench), timing, medians and the result table.
# Sourced, not run. Expects `set -euo pipefail` in the caller.

export LC_ALL=C # EPOCHREALTIME and printf must use '.' as the decimal point
LOAD_AT_START=$(cut -d ' ' -f 1-3 /proc/loadavg)

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
declare -a CLEANUP_HOOKS=()  # functions run at exit after the tracked processes are stopped

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

kill_group() { # pgid: like kill_pid, for the process group a setsid started (see run_tracked_group)
	local pgid=$1 i
	kill -0 -- "-$pgid" 2>/dev/null || { kill_pid "$pgid" TERM; return 0; }
	kill -TERM -- "-$pgid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 -- "-$pgid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 -- "-$pgid" 2>/dev/null; then
		log "process group $pgid did not stop after SIGTERM, sending SIGKILL"
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait "$pgid" 2>/dev/null || true
}

bench_cleanup() {
	local rc=$? pid dir hook
	trap - EXIT INT TERM
	for pid in "${!TRACKED_PIDS[@]}"; do
		case ${TRACKED_PIDS[$pid]} in
		postgres) kill_pid "$pid" INT ;; # PostgreSQL's fast shutdown
		group) kill_group "$pid" ;;
		*) kill_pid "$pid" TERM ;;
		esac
	done
	for hook in "${CLEANUP_HOOKS[@]}"; do
		"$hook" || log "cleanup step $hook failed"
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

# The same, in a session (and process group) of its own, stopped whole by the exit trap: for a
# wrapper that does not pass signals on (GNU time) around the command that matters. In a script
# (no job control) a background child is not a group leader, so setsid needs no fork and the pid
# is the group's; if it ever forks, kill_group falls back to the pid.
run_tracked_group() {
	local pid rc=0
	setsid "$@" &
	pid=$!
	TRACKED_PIDS[$pid]=group
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

# Sets PUSH, GET and BASEBACKUP (tidemark-basebackup; absent before it existed: the caller that
# needs it checks). $BENCH_BIN_DIR: use the binaries there as they are. $BENCH_REV: build that
# commit, exported into <clone>/build-bench-<sha>/src, in <clone>/build-bench-<sha>/build.
# Otherwise configure ($BENCH_BUILD_TYPE, default RelWithDebInfo) and build (incrementally)
# the working tree the project in $BENCH_BUILD_DIR (default <clone>/build-bench, a folder
# no one else builds in, so a concurrent rebuild of build/ cannot swap binaries mid-run), then
# install into a temporary prefix and run from there.
ensure_tidemark() {
	if [[ -n ${BENCH_BIN_DIR:-} ]]; then
		PUSH=$BENCH_BIN_DIR/tidemark-archive-push
		GET=$BENCH_BIN_DIR/tidemark-archive-get
		# shellcheck disable=SC2034 # bench/basebackup runs it
		BASEBACKUP=$BENCH_BIN_DIR/tidemark-basebackup
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
	# Every target (the tests are off): cmake --install installs every program the revision has.
	cmake --build "$build" >"$buildlog" 2>&1 || { cat "$buildlog" >&2; die "build failed"; }
	make_temp_dir prefix
	cmake --install "$build" --prefix "$prefix" >"$buildlog" 2>&1 ||
		{ cat "$buildlog" >&2; die "cmake --install failed"; }
	chmod 0755 "$prefix" # PostgreSQL runs archive_command as 'postgres' (bench/basebackup)
	PUSH=$prefix/bin/tidemark-archive-push
	GET=$prefix/bin/tidemark-archive-get
	# shellcheck disable=SC2034 # bench/basebackup runs it
	BASEBACKUP=$prefix/bin/tidemark-basebackup
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

# Starts PostgreSQL 15 on DATA (owned by the 'postgres' OS user when we are root) as that user,
# listening on 127.0.0.1 on a free port (three tries) and on a unix socket in SOCKDIR (also its
# working folder), with the settings given (-c name=value...); its output goes to LOG. Sets
# PG_PID, tracked (the exit trap stops it: fast shutdown), and PG_PORT.
pg_start() { # data sockdir log [postgres-arguments...]
	local data=$1 sockdir=$2 logfile=$3 attempt ready i
	shift 3
	PG_PID=""
	for attempt in 1 2 3; do
		PG_PORT=$(free_port)
		(cd "$sockdir" && as_postgres "$PG_BIN/postgres" -D "$data" \
			-c listen_addresses=127.0.0.1 -c port="$PG_PORT" -c unix_socket_directories="$sockdir" "$@") \
			>"$logfile" 2>&1 &
		PG_PID=$!
		TRACKED_PIDS[$PG_PID]=postgres
		ready=0
		for ((i = 0; i < 600; i++)); do
			kill -0 "$PG_PID" 2>/dev/null || break
			if "$PG_BIN/pg_isready" -q -h "$sockdir" -p "$PG_PORT" -U postgres; then
				ready=1
				break
			fi
			sleep 0.1
		done
		((ready)) && break
		kill_pid "$PG_PID" INT
		unset "TRACKED_PIDS[$PG_PID]"
		PG_PID=""
		log "PostgreSQL did not start on port $PG_PORT (attempt $attempt): $(tail -n 3 "$logfile")"
	done
	[[ -n $PG_PID ]] || die "could not start PostgreSQL (log: $logfile)"
	log "PostgreSQL 15 running as pid $PG_PID on 127.0.0.1:$PG_PORT"
}

pg_stop() { # stops the server pg_start started (fast shutdown), and waits for it
	[[ -n ${PG_PID:-} ]] || return 0
	log "stopping PostgreSQL (pid $PG_PID)"
	kill_pid "$PG_PID" INT
	unset "TRACKED_PIDS[$PG_PID]"
	PG_PID=""
}

# Ensures CORPUS_DIR holds at least $1 segments from a pgbench run; $2=1 regenerates anyway.
ensure_corpus() {
	local want=$1 regenerate=${2:-0} have
	have=$(corpus_segments | wc -l)
	# The corpus keeps its cluster's pg_control and PG_VERSION too: tidemark stanza-create reads
	# the stanza's identity there (corpus_stanza_create).
	if ((regenerate == 0 && have >= want)) && [[ -f $CORPUS_DIR/pgdata/global/pg_control ]]; then
		log "using $want of the $have cached WAL segments in $CORPUS_DIR"
		return
	fi
	ensure_postgres
	local tmp data archive port i segments
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

	pg_start "$data" "$tmp" "$tmp/postgres.log" \
		-c wal_level=replica -c archive_mode=on -c archive_command="cp %p $archive/%f" \
		-c max_wal_size=1GB -c fsync=off -c synchronous_commit=off
	port=$PG_PORT

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
	pg_stop

	# Replace the cache whole: a new folder next to it, then a rename.
	local staging="$CORPUS_DIR.new.$$"
	TEMP_DIRS+=("$staging") # gone after the rename; removed if we stop before it
	rm -rf -- "$staging"
	mkdir -p "$staging"
	find "$archive" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' \
		-exec cp -t "$staging" {} +
	chmod 0644 "$staging"/*
	mkdir -p "$staging/pgdata/global"
	cp "$data/global/pg_control" "$staging/pgdata/global/" && cp "$data/PG_VERSION" "$staging/pgdata/"
	chmod -R a+rX "$staging/pgdata"
	{
		echo "generated $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/lib.sh ensure_corpus"
		echo "$("$PG_BIN/postgres" --version); pgbench -i -s 10, then rounds of checkpoint + pgbench -c 2 -j 2 -T 10"
		echo "segments: $(find "$archive" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)"
	} >"$staging/README"
	rm -rf -- "$CORPUS_DIR"
	mv "$staging" "$CORPUS_DIR"
	log "cached $(corpus_segments | wc -l) segments in $CORPUS_DIR"
}

# tidemark stanza-create for the corpus's cluster, with tidemark's flags ("$@": --config,
# --stanza, --repo-path, encryption): writers never create a stanza.
corpus_stanza_create() {
	"${PUSH%/*}/tidemark" stanza-create --pgdata "$CORPUS_DIR/pgdata" "$@" >/dev/null 2>>"${TM_LOG:-/dev/stderr}" ||
		die "tidemark stanza-create failed ($*)"
}

# ---- S3: a loopback radosgw (scripts/s3-server), or the caller's ---------------------------

# The S3 columns (BENCH_S3=0 leaves them out). The server: BENCH_S3_ENV, the env file a running
# `scripts/s3-server start` wrote (DIR/s3.env), to reuse it (left running; the objects this
# run wrote are deleted at exit); otherwise a dedicated radosgw in a temporary folder on a free
# port, stopped at exit. Either way every key this run writes is below S3_RUN, a prefix unique
# to the run.
BENCH_S3=${BENCH_S3:-1}
S3_EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 # SHA-256 of no bytes
S3_SERVER_DIR="" S3_START_PID=""

free_port_range() { # N: prints a port P (>= 20000) such that P..P+N-1 are all free on 127.0.0.1
	local i p n=$1 k ok
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		ok=1
		for ((k = 0; k < n; k++)); do
			port_free $((p + k)) || { ok=0; break; }
		done
		if ((ok)); then
			printf '%s\n' "$p"
			return
		fi
	done
	die "no $n consecutive free loopback ports found"
}

s3_server_stop() {
	[[ -n $S3_SERVER_DIR ]] || return 0
	local i
	if [[ -n $S3_START_PID ]] && kill -0 "$S3_START_PID" 2>/dev/null; then
		# A start cut short. Its process group (setsid): the script, the subshells of its pipelines
		# and the ceph commands they wait on (which hang once the monitor is gone), the daemons.
		log "stopping scripts/s3-server start (process group $S3_START_PID)"
		kill -TERM -- "-$S3_START_PID" 2>/dev/null || kill -TERM "$S3_START_PID" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 -- "-$S3_START_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$S3_START_PID" 2>/dev/null || true
		wait "$S3_START_PID" 2>/dev/null || true
	fi
	log "stopping radosgw (scripts/s3-server stop -d $S3_SERVER_DIR)"
	"$ROOT_DIR/scripts/s3-server" stop -d "$S3_SERVER_DIR" >/dev/null 2>&1
}

# Signed request to the server, for the untimed set-up and checks (the measured methods spell out
# their own curl command). curl 7.88 signs with --aws-sigv4 but does not add the payload hash
# header S3 requires: the caller passes it.
s3_curl() { curl -sS -f --aws-sigv4 "aws:amz:$S3_RGN:s3" --user "$S3_AK:$S3_SK" "$@"; }

# Query values: curl signs the query as written, so it must already be in canonical (encoded) form.
s3_query_encode() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c"; out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

s3_list() { # prefix: prints "key size" for every object below the prefix
	local prefix=$1 after="" page lines
	while :; do
		page=$(s3_curl -H "x-amz-content-sha256: $S3_EMPTY_SHA" \
			"$S3_URL/$S3_BKT?list-type=2&prefix=$(s3_query_encode "$prefix")${after:+&start-after=$(s3_query_encode "$after")}") ||
			return 1
		lines=$(printf '%s' "$page" | grep -o '<Key>[^<]*</Key>\|<Size>[0-9]*</Size>' | sed 's/<[^>]*>//g' | paste -d ' ' - -)
		[[ -n $lines ]] || return 0
		printf '%s\n' "$lines"
		[[ $page == *'<IsTruncated>true</IsTruncated>'* ]] || return 0
		after=$(printf '%s\n' "$lines" | tail -n 1 | cut -d ' ' -f 1)
	done
}

s3_delete_prefix() { # prefix: deletes every object below it (DeleteObjects, 1000 keys a request)
	local -a keys
	local i body md5 sha
	mapfile -t keys < <(s3_list "$1" | cut -d ' ' -f 1)
	((${#keys[@]})) || return 0
	for ((i = 0; i < ${#keys[@]}; i += 1000)); do
		body=$(printf '<Object><Key>%s</Key></Object>' "${keys[@]:i:1000}")
		body="<Delete><Quiet>true</Quiet>$body</Delete>"
		md5=$(printf '%s' "$body" | openssl dgst -md5 -binary | base64)
		sha=$(printf '%s' "$body" | sha256sum | cut -c 1-64)
		s3_curl -o /dev/null -H "x-amz-content-sha256: $sha" -H "Content-MD5: $md5" \
			-H 'Content-Type: application/xml' --data-binary "$body" "$S3_URL/$S3_BKT?delete=" || return 1
	done
}

# Frees what deleted objects still hold. radosgw deletes an object's first 4 MiB at once and
# leaves the rest to its garbage collector, which waits 2 hours: a run writes gigabytes, which
# memstore keeps in the OSD's memory. Only on our own server.
s3_collect_garbage() {
	[[ -n $S3_SERVER_DIR ]] || return 0
	radosgw-admin -c "$S3_SERVER_DIR/ceph.conf" gc process --include-all >/dev/null 2>&1 ||
		log "radosgw-admin gc process failed (the deleted objects stay in memory until radosgw collects them)"
}

s3_delete_run() { # at exit, on a reused server: deletes every object below S3_RUN
	[[ -n ${S3_RUN:-} && -n ${S3_URL:-} ]] || return 0
	log "deleting the objects below $S3_RUN/ on $S3_URL"
	s3_delete_prefix "$S3_RUN/"
}

# Sets S3_URL (endpoint), S3_BKT, S3_RGN, S3_AK, S3_SK, S3_SERVER (a description), S3_RUN, and
# writes S3_CONFIG: the tidemark configuration for that server (repo.type = "s3", uri-style path;
# repo.path, the key prefix, is given per call). Call after ensure_tools and ensure_tidemark.
ensure_s3() {
	local envfile tmp port line key value
	ensure_tools curl:curl openssl:openssl
	if [[ -n ${BENCH_S3_ENV:-} ]]; then
		envfile=$BENCH_S3_ENV
		[[ -r $envfile ]] || die "BENCH_S3_ENV '$envfile' is not a readable file"
		S3_SERVER="existing server from BENCH_S3_ENV=$envfile"
	else
		make_temp_dir tmp
		port=$(free_port_range 12) # scripts/s3-server uses PORT (radosgw) to PORT+11 (monitor, OSD)
		S3_SERVER_DIR=$tmp/s3
		CLEANUP_HOOKS+=(s3_server_stop) # before the start: a start cut short is stopped too
		log "starting radosgw on 127.0.0.1:$port: scripts/s3-server start -d $S3_SERVER_DIR -p $port"
		# In a session of its own, so that s3_server_stop can stop all of a start cut short; waited for
		# in the background (like run_tracked) so that a signal is acted upon at once.
		setsid "$ROOT_DIR/scripts/s3-server" start -d "$S3_SERVER_DIR" -p "$port" >"$tmp/s3-server.log" 2>&1 &
		S3_START_PID=$!
		wait "$S3_START_PID" || { tail -n 20 "$tmp/s3-server.log" >&2; die "scripts/s3-server start failed"; }
		S3_START_PID=""
		envfile=$S3_SERVER_DIR/s3.env
		S3_SERVER="dedicated radosgw ($(radosgw --version 2>/dev/null | awk '{ print "ceph " $3 " " $5 }'), memstore) on 127.0.0.1:$port, scripts/s3-server"
	fi
	S3_URL="" S3_BKT="" S3_RGN="" S3_AK="" S3_SK=""
	while IFS= read -r line; do # KEY=VALUE lines, read rather than sourced
		key=${line%%=*} value=${line#*=}
		case $key in
		S3_ENDPOINT) S3_URL=$value ;;
		S3_BUCKET) S3_BKT=$value ;;
		S3_REGION) S3_RGN=$value ;;
		S3_ACCESS_KEY) S3_AK=$value ;;
		S3_SECRET_KEY) S3_SK=$value ;;
		esac
	done <"$envfile"
	S3_RGN=${S3_RGN:-us-east-1}
	[[ -n $S3_URL && -n $S3_BKT && -n $S3_AK && -n $S3_SK ]] ||
		die "$envfile lacks one of S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY"
	# Straight to the server: no proxy from the caller's environment (curl and libcurl read it),
	# no AWS_* fallback reaching tidemark (its configuration sets everything).
	unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
	for key in $(compgen -e AWS_ || true); do unset "$key"; done
	S3_RUN=bench-$(date -u +%Y%m%dT%H%M%S)-$$
	[[ -n ${BENCH_S3_ENV:-} ]] && CLEANUP_HOOKS+=(s3_delete_run)
	make_temp_dir tmp
	S3_CONFIG=$tmp/s3.toml
	(umask 077 && cat >"$S3_CONFIG" <<-TOML
		[repo]
		type = "s3"
		[s3]
		bucket = "$S3_BKT"
		endpoint = "$S3_URL"
		region = "$S3_RGN"
		uri-style = "path"
		access-key-id = "$S3_AK"
		secret-access-key = "$S3_SK"
	TOML
	)
	s3_curl -o /dev/null -I -H "x-amz-content-sha256: $S3_EMPTY_SHA" "$S3_URL/$S3_BKT" ||
		die "a signed HEAD of bucket '$S3_BKT' at $S3_URL failed"
	log "S3: bucket '$S3_BKT' at $S3_URL, key prefix $S3_RUN/"
}

print_s3_header() {
	echo "# s3: $S3_SERVER; bucket $S3_BKT at $S3_URL, path style, keys below $S3_RUN/"
	echo "# $(curl --version | head -n 1 | cut -d ' ' -f 1-2) (the baseline and tidemark's libcurl alike)"
}

# ---- measuring -------------------------------------------------------------------------------

# RUN prefixes every process a measured method starts: empty while timing, GNU time while
# measuring peak RSS (appending each process's maximum resident set, in KiB, to a file).
# shellcheck disable=SC2034 # the methods expand it
RUN=()

declare -A TIMES=()    # method -> microseconds, one per file per timed round
declare -A PEAK_KIB=() # method -> peak RSS of any one of its processes
declare -A STORED=()   # method -> bytes it wrote for the whole corpus (round 0)
BENCH_ROUND=0          # the round run_methods is in (0: the untimed one)

# Runs every method of METHODS (shell functions taking SOURCE OUTDIR) on every file of FILES,
# one call per file, in ROUNDS timed rounds after one untimed round under GNU time (peak RSS,
# stored bytes, and a warm-up). OUTDIR is a fresh empty folder per method and round in WORK
# (a fresh repository for tidemark; prepare_METHOD OUTDIR, when defined, readies it untimed). The
# calls are interleaved: for each file, every method
# in an order rotated per file and round, so a burst of load elsewhere on the machine lands on
# all methods alike. After each call (untimed) the files it wrote are counted and deleted,
# except a repository's stanza.json: deleting unsynced output also cancels its writeback,
# which would otherwise slow down the next call. After each round, $ROUND_HOOK (a function
# name, if set) is called with the round's number, untimed.
run_methods() {
	local round i k m out t0 t1 bytes nm=${#METHODS[@]} nf=${#FILES[@]}
	for m in "${METHODS[@]}"; do
		TIMES[$m]="" STORED[$m]=0
		: >"$WORK/rss.$m"
	done
	sync
	for ((round = 0; round <= ROUNDS; round++)); do
		if ((round == 0)); then log "round 0: peak RSS and stored size (untimed)"; else log "round $round of $ROUNDS"; fi
		# shellcheck disable=SC2034
		BENCH_ROUND=$round # the methods may read it (the S3 ones: a fresh key prefix per round)
		for m in "${METHODS[@]}"; do
			mkdir "$WORK/out.$m"
			# A method may prepare its fresh folder, untimed (tidemark: create the stanza).
			if declare -F "prepare_$m" >/dev/null; then "prepare_$m" "$WORK/out.$m"; fi
		done
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
		if [[ -n ${ROUND_HOOK:-} ]]; then "$ROUND_HOOK" "$round"; fi
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
	# Only what goes into the binaries; others' uncommitted tests, docs or scripts do not matter here.
	if [[ $rev != unknown ]] && [[ -n $(git -C "$ROOT_DIR" status --porcelain -- . ':(exclude)docs' ':(exclude)tests' \
		':(exclude)bench' ':(exclude)scripts' ':(exclude)*.md' 2>/dev/null) ]]; then
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
	echo "# load average (1, 5, 15 min) at the start: $LOAD_AT_START, at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "# zstd $(zstd -V | sed -n 's/.* v\([0-9.]*\).*/\1/p'), lz4 $(lz4 -V 2>&1 | sed -n 's/.* v\([0-9.]*\).*/\1/p')," \
		"$(sha256sum --version | head -n 1)"
}

# Table row: label method [reference-method...]: median and p90 ms per segment, MB/s (10^6
# plain bytes per second at the median), peak RSS, stored/plain, then for each reference the
# ratio of this method's median to the reference's ("a+b": to the sum of the medians of a and
# b; "-": an empty cell).
print_row() {
	local label=$1 method=$2 med p90 mbs rss stored ref ratio sum part
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
		sum=0
		for part in ${ref//+/ }; do
			# shellcheck disable=SC2086
			sum=$((sum + $(median_us ${TIMES[$part]})))
		done
		ratio=$(awk -v a="$med" -v b="$sum" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
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


# ---- a pgbench database of a given scale, cached (bench/basebackup, bench/recover) -----------

GIB=$((1024 * 1024 * 1024))

AS_PG=() # runs a command as 'postgres' when we are root (setpriv execs: same process, same pid)
if [[ $(id -u) == 0 ]]; then AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
pg_own() { if [[ $(id -u) == 0 ]]; then chown postgres: "$@"; fi; }

free_bytes() { df --output=avail -B1 "$1" | tail -n 1 | tr -d ' '; }

check_space() { # folder bytes what
	local avail
	avail=$(free_bytes "$1")
	((avail >= $2)) || die "$3 needs about $(($2 / GIB + 1)) GiB free in $1 (df: $((avail / GIB)) GiB available)"
	log "$1: $((avail / GIB)) GiB free ($3 needs about $(($2 / GIB + 1)) GiB)"
}

# The cache of `pgbench -i -s SCALE`: $BENCH_PGDATA, default bench/.pgdata-s<SCALE>/ (git-ignored),
# holding data/ (a cleanly shut down PostgreSQL 15 cluster) and a README.
pgbench_cache_dir() { printf '%s\n' "${BENCH_PGDATA:-$BENCH_DIR/.pgdata-s$1}"; }

pgbench_db_estimate() { echo $(($1 * 16 * 1024 * 1024)); } # bytes: about 15 MiB per unit of scale

pgbench_cache_valid() { # scale
	local cache
	cache=$(pgbench_cache_dir "$1")
	[[ -f $cache/README && -f $cache/data/PG_VERSION ]] || return 1
	[[ $(<"$cache/data/PG_VERSION") == 15 ]] || return 1
	grep -qx "scale: $1" "$cache/README" || return 1
	"$PG_BIN/pg_controldata" "$cache/data" 2>/dev/null | grep -q '^Database cluster state: *shut down$'
}

# Puts a scale-SCALE pgbench database, shut down, in DATA (a new folder, owned by 'postgres'):
# a copy of the cache, made first when it is missing or invalid or REGENERATE is 1. WORK is a
# scratch folder (logs), SOCK the server's socket folder while it generates. Checks free space.
pgbench_cluster() { # scale data work sock regenerate
	local scale=$1 data=$2 work=$3 sock=$4 regenerate=$5 cache estimate need staging
	cache=$(pgbench_cache_dir "$scale")
	estimate=$(pgbench_db_estimate "$scale")
	if ((regenerate == 0)) && pgbench_cache_valid "$scale"; then
		log "copying the cached scale-$scale database from $cache into $data"
		cp -a "$cache/data" "$data"
		return
	fi
	mkdir -p "$(dirname "$cache")"
	need=$((estimate + GIB))
	if [[ $(stat -c %d "$work") == $(stat -c %d "$(dirname "$cache")") ]]; then
		need=$((need + estimate))
	fi
	check_space "$(dirname "$cache")" "$need" "the scale-$scale database and its cache"
	log "creating the scale-$scale pgbench database: initdb in $data"
	mkdir -m 0700 "$data"
	pg_own "$data"
	(cd "$work" && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync) \
		>"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
	# Fast to load (no WAL for the COPY into new tables, no fsync); shut down cleanly and synced
	# before it is cached.
	pg_start "$data" "$sock" "$work/postgres-init.log" -c wal_level=minimal -c max_wal_senders=0 \
		-c archive_mode=off -c fsync=off -c max_wal_size=4GB
	log "pgbench -i -s $scale (a few minutes)"
	run_tracked "$PG_BIN/pgbench" -h "$sock" -p "$PG_PORT" -U postgres -i -s "$scale" -q postgres \
		>"$work/pgbench-init.log" 2>&1 || { tail -n 20 "$work/pgbench-init.log" >&2; die "pgbench -i failed"; }
	run_tracked "$PG_BIN/psql" -XAtq -h "$sock" -p "$PG_PORT" -U postgres -c checkpoint postgres >/dev/null
	pg_stop
	sync
	"$PG_BIN/pg_controldata" "$data" | grep -q '^Database cluster state: *shut down$' ||
		die "the new database was not shut down cleanly (log: $work/postgres-init.log)"
	# Replace the cache whole: a copy next to it, then a rename.
	staging=$cache.new.$$
	TEMP_DIRS+=("$staging") # gone after the rename; removed if we stop before it
	rm -rf -- "$staging"
	mkdir -p "$staging"
	log "caching the database in $cache"
	cp -a "$data" "$staging/data"
	{
		echo "generated $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/${0##*/}"
		echo "$("$PG_BIN/postgres" --version); initdb -E UTF8, pgbench -i -s $scale, checkpoint, fast shutdown"
		echo "scale: $scale"
	} >"$staging/README"
	sync
	rm -rf -- "$cache"
	mv "$staging" "$cache"
}

median() { # numbers... -> their median (decimals allowed)
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	if (NR == 0) { print 0; exit }
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
