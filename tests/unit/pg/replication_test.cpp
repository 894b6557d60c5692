// Unit tests of common/pg/basebackup.h that need no server: the BASE_BACKUP command text. The
// stream itself is tested against PostgreSQL in tests/integration/basebackup_test.cpp.
#include "common/pg/replication.h"

#include <doctest/doctest.h>

using namespace tidemark;

TEST_CASE("baseBackupCommand writes the BASE_BACKUP options tidemark needs") {
  SUBCASE("a fast checkpoint without a rate limit") {
    CHECK(
        pg::baseBackupCommand({.label = "tidemark 20261122T101500Z",
                               .fastCheckpoint = true,
                               .manifestChecksums = "CRC32C"}) ==
        "BASE_BACKUP (LABEL 'tidemark 20261122T101500Z', PROGRESS, CHECKPOINT 'fast', WAIT false, "
        "MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TABLESPACE_MAP)");
  }
  SUBCASE("a spread checkpoint with a rate limit in kB/s") {
    CHECK(pg::baseBackupCommand({.label = "tidemark 20261122T101500Z",
                                 .fastCheckpoint = false,
                                 .maxRateKiB = 102400,
                                 .manifestChecksums = "SHA256"}) ==
          "BASE_BACKUP (LABEL 'tidemark 20261122T101500Z', PROGRESS, CHECKPOINT 'spread', WAIT "
          "false, "
          "MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TABLESPACE_MAP, MAX_RATE 102400)");
  }
  SUBCASE("the ends of PostgreSQL's MAX_RATE range are written as given") {
    CHECK(pg::baseBackupCommand({.label = "l", .maxRateKiB = 32}) ==
          "BASE_BACKUP (LABEL 'l', PROGRESS, CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', "
          "MANIFEST_CHECKSUMS 'SHA256', TABLESPACE_MAP, MAX_RATE 32)");
    CHECK(pg::baseBackupCommand({.label = "l", .maxRateKiB = 1048576}) ==
          "BASE_BACKUP (LABEL 'l', PROGRESS, CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', "
          "MANIFEST_CHECKSUMS 'SHA256', TABLESPACE_MAP, MAX_RATE 1048576)");
  }
  SUBCASE("the label and the checksum algorithm are quoted literals") {
    CHECK(
        pg::baseBackupCommand({.label = "it's mine", .manifestChecksums = "NONE"}) ==
        "BASE_BACKUP (LABEL 'it''s mine', PROGRESS, CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', "
        "MANIFEST_CHECKSUMS 'NONE', TABLESPACE_MAP)");
    CHECK(pg::baseBackupCommand({.label = "x', CHECKPOINT 'spread"}) ==
          "BASE_BACKUP (LABEL 'x'', CHECKPOINT ''spread', PROGRESS, CHECKPOINT 'fast', WAIT false, "
          "MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TABLESPACE_MAP)");
  }
}
