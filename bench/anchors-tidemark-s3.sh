# shellcheck shell=bash
# bench/anchors-tidemark-s3.sh -- tidemark's push-ahead against S3 in the bench-anchors harness
# (../shared/bench-anchors), side by side with pgBackRest 2.45's synchronous and asynchronous push
# to the same radosgw over HTTPS, in the same run. It loads the harness's variants/s3.sh (the
# pgBackRest variants pgbr-s3-sync and pgbr-s3-async-pm2, and tm-s3-lz4: tidemark with its
# default configuration, push-ahead 4) and adds, for the archiver drain (25):
#   tm-s3-lz4-paN: archive.push-ahead N (TM_S3_PUSH_AHEAD, default "0 8 16"; 0 = one file per
#                  call, the behaviour before push-ahead), a fresh key prefix per run and an empty
#                  spool (pg_wal/tidemark of the server's data directory), as the others get.
# Usage (from ../shared/bench-anchors; the S3 server is started and stopped by the caller):
#   eval "$(../tools/start-rgw.sh -p 19300 -d /tmp/bench-rgw -b bench --tls-port 19343 --store memstore)"
#   export S3_ENDPOINT_TLS S3_CA_FILE S3_REGION S3_BUCKET S3_ACCESS_KEY S3_SECRET_KEY
#   TM_BIN=<prefix>/bin BENCH_EXTRA=<project>/bench/anchors-tidemark-s3.sh RESULTS_DIR=/tmp/r \
#     VARIANTS='cp+sync *s3*' RUNS=5 bash 25-archiver-drain.sh
#   ../tools/stop-rgw.sh -d /tmp/bench-rgw --purge
: "${TM_BIN:?set TM_BIN to the folder with the tidemark binaries}"
# shellcheck disable=SC1091 # the harness's own file
source "$BENCH_DIR/variants/s3.sh"
TM_S3_PUSH_AHEAD=${TM_S3_PUSH_AHEAD:-0 8 16}
if [[ $SCRIPT_NAME == archiver ]]; then
  for n in $TM_S3_PUSH_AHEAD; do
    v=tm-s3-lz4-pa$n
    tm_s3 "$v"
    add_archiver_variant "$v" \
      "$TM_BIN/tidemark-archive-push --config $BENCH_TMP/conf/$v.toml --archive-push-ahead=$n %p" \
      "$(tm_fresh "$v") && rm -rf $D/pg_wal/tidemark && { $(tm_stanza_s3 "$v" "$D"); }" /dev/null
  done
fi
