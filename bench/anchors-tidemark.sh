# shellcheck shell=bash
# bench/anchors-tidemark.sh -- tidemark in the bench-anchors harness (../shared/bench-anchors),
# side by side with pgBackRest 2.45 and the plain references, in the same run:
#   TM_BIN=<install prefix>/bin BENCH_EXTRA=$PWD/bench/anchors-tidemark.sh \
#     RESULTS_DIR=/tmp/bench-results VARIANTS='cp+sync pgbr-async-lz4-pm2 tm-*' bash 25-archiver-drain.sh
# Copied from the harness's variants/tidemark.sh (2026-12-04) and extended for issue 14:
#   archiver (25): tm-lz4-paN, tm-zstd1-paN: archive.push-ahead N (TM_PUSH_AHEAD, default "0 2 4 8";
#                  0 = one file per call, the behaviour before push-ahead); the spool
#                  (pg_wal/tidemark of the server's data directory) is emptied before each run
#   get (30):      tm-get-gaN: archive.get-ahead N (TM_GET_AHEAD, default "0 16"); recovery.signal
#                  in the data directory (the prefetcher runs only in recovery)
#   pitr (50):     tm-get-gaN as restore_command, same N
# Before every run of every variant of 30 and 50 (untimed: setups, preps) a prefetcher left by an
# earlier tidemark run is stopped (recovery.signal removed; it exits by itself within one batch),
# so that no run starts warm or shares the CPU with another run's prefetcher.
# Every tidemark variant gets an empty configuration (stanza "bench") and flags.
# backup/restore (40) and pitr (50): the source cluster's archive_command also pushes into a
# tidemark repository ($BENCH_TMP/tm-repo, lz4) through ARCHIVE_EXTRA, since a tidemark
# backup waits for its WAL and restore_command = tidemark-archive-get reads from there.
: "${TM_BIN:?set TM_BIN to the folder with the tidemark binaries}"
TM_CONF=${TM_CONF:-/tmp/tm-bench-empty.toml}
[ -f "$TM_CONF" ] || { echo 'stanza = "bench"' > "$TM_CONF"; chmod 644 "$TM_CONF"; }
TM_PUSH_AHEAD=${TM_PUSH_AHEAD:-0 2 4 8}
TM_GET_AHEAD=${TM_GET_AHEAD:-0 16}
# tm_push COMPRESSION [FLAGS...]: archive_command into the posix repository $VDIR
tm_push() { local c=$1; shift; echo "$TM_BIN/tidemark-archive-push --config $TM_CONF --repo-type=posix --repo-path=\"\$VDIR\" --compress-type=$c $* %p"; }
# tm_stanza_cmd REPO PGDATA: shell text that creates the stanza when stanza-create exists
tm_stanza_cmd() {
  echo "if $TM_BIN/tidemark stanza-create --help >/dev/null 2>&1; then $TM_BIN/tidemark stanza-create --config $TM_CONF --repo-type=posix --repo-path=$1 --pgdata $2 >/dev/null; fi"
}
tm_repo_init() { # the repository fed by the source cluster's archive_command (run in PGDATA)
  TM_REPO=$BENCH_TMP/tm-repo; mkdir -p "$TM_REPO"; chown "$PGUSER_OS:" "$TM_REPO"
  ARCHIVE_EXTRA="{ [ -e $TM_REPO/bench/stanza.json ] || { $(tm_stanza_cmd "$TM_REPO" "\$PWD"); }; } && $TM_BIN/tidemark-archive-push --config $TM_CONF --repo-path=$TM_REPO --compress-type=lz4 %p"
}
# tm_wait_prefetchers: shell text (bash) that waits for every tidemark-archive-get process naming a
# path in $BENCH_TMP (a prefetcher of this script's runs) to exit; after 30 s, SIGTERM by pid (they
# are this run's own processes). "^" and "ge[t]": the pattern must match neither the shell that
# runs it nor a shell whose command names tidemark-archive-get (a prep writing restore_command).
tm_wait_prefetchers() {
  local pat="^$TM_BIN/tidemark-archive-ge[t] .*$BENCH_TMP/"
  echo "for i in \$(seq 300); do pgrep -f -- '$pat' >/dev/null || break; sleep 0.1; done; for p in \$(pgrep -f -- '$pat'); do echo \"prefetcher \$p still running after 30 s: SIGTERM\" >&2; kill \$p; done"
}
# tm_stop_prefetchers DATADIR: shell text that ends the prefetchers of DATADIR (it leaves
# recovery: they check between batches and exit), waits for them, and removes its spool.
tm_stop_prefetchers() {
  echo "rm -f $1/recovery.signal $1/standby.signal; $(tm_wait_prefetchers); rm -rf $1/pg_wal/tidemark"
}
case "$SCRIPT_NAME" in
push)
  mk="mkdir -p \"\$VDIR\"; $(tm_stanza_cmd '"$VDIR"' "$CORPUS/pgdata")"
  add_push_variant tm-lz4 "$(tm_push lz4)" "$mk"
  add_push_variant tm-zstd1 "$(tm_push zstd --compress-level=1)" "$mk"
  add_push_variant tm-none "$(tm_push none)" "$mk"
  ;;
archiver)
  # A fresh repository and stanza per run (VDIR), and an empty spool.
  mk="mkdir -p \"\$VDIR\"; rm -rf $D/pg_wal/tidemark; $(tm_stanza_cmd '"$VDIR"' "$D")"
  for n in $TM_PUSH_AHEAD; do
    add_archiver_variant "tm-lz4-pa$n" "$(tm_push lz4 --archive-push-ahead="$n")" "$mk"
  done
  for n in 0 4; do
    add_archiver_variant "tm-zstd1-pa$n" "$(tm_push zstd --compress-level=1 --archive-push-ahead="$n")" "$mk"
  done
  ;;
get)
  stop=$(tm_stop_prefetchers "$SKEL")
  # The archive, filled once (untimed) by one push per segment, without push-ahead.
  fill='[ -d "$BENCH_TMP/tm-arch" ] || { mkdir -p "$BENCH_TMP/tm-arch"; '"$(tm_stanza_cmd '"$BENCH_TMP/tm-arch"' "$CORPUS/pgdata")"'; while read -r f; do
       '"$TM_BIN"'/tidemark-archive-push --config '"$TM_CONF"' --repo-type=posix --repo-path="$BENCH_TMP/tm-arch" --compress-type=lz4 --archive-push-ahead=0 "$CORPUS/seg/$f" >/dev/null 2>&1 || exit 1;
     done < "$BENCH_TMP/seglist"; }'
  # Every variant's run starts with no prefetcher running (see the top).
  for i in "${!GET_SETUPS[@]}"; do GET_SETUPS[$i]="$stop${GET_SETUPS[$i]:+; ${GET_SETUPS[$i]}}"; done
  for n in $TM_GET_AHEAD; do
    add_get_variant "tm-get-ga$n" \
      "$TM_BIN/tidemark-archive-get --config $TM_CONF --repo-type=posix --repo-path=\"\$BENCH_TMP/tm-arch\" --archive-get-ahead=$n %f \"%p\"" \
      "$stop; $fill && touch $SKEL/recovery.signal"
  done
  ;;
backup)
  tm_repo_init
  tm_arch=""; "$TM_BIN/tidemark-recover" --help 2>&1 | grep -q -- '--archiving' && tm_arch=" --archiving=off"
  for c in lz4 zstd; do
    add_backup_variant "tm-bb-$c" \
      "$TM_BIN/tidemark-basebackup --config $TM_CONF --repo-path=$TM_REPO --pg-conninfo='host=$SOCK port=$PORT user=postgres' --compress-type=$c --compress-level=1" \
      "rm -rf $TM_REPO/bench/backups" "$TM_REPO/bench/backups"
  done
  add_restore_variant tm-recover-lz4 "$TM_BIN/tidemark-recover --config $TM_CONF --repo-path=$TM_REPO --pgdata=\$RDIR$tm_arch" tm-bb-lz4
  add_restore_variant tm-recover-zstd "$TM_BIN/tidemark-recover --config $TM_CONF --repo-path=$TM_REPO --pgdata=\$RDIR$tm_arch" tm-bb-zstd
  ;;
pitr)
  tm_repo_init
  # No prefetcher of an earlier run may still be fetching while this run's server starts (the
  # prep runs after the timed restore, before the timed start). Its RDIR is gone by then.
  wait_fetch=$(tm_wait_prefetchers)
  for i in "${!PITR_PREPS[@]}"; do PITR_PREPS[$i]="$wait_fetch; ${PITR_PREPS[$i]}"; done
  for n in $TM_GET_AHEAD; do
    add_pitr_variant "tm-get-ga$n" "$wait_fetch; echo \"restore_command = '$TM_BIN/tidemark-archive-get --config $TM_CONF --repo-path=$TM_REPO --archive-get-ahead=$n %f \\\"%p\\\"'\" >> \$RDIR/postgresql.auto.conf"
  done
  ;;
esac
