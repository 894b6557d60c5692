# The Debian package, built by scripts/package with CPack's DEB generator: what `cmake --install`
# installs (binaries, man pages, documentation, systemd units, alert rules), with the example
# configuration as the conffile /etc/tidemark/tidemark.toml (TIDEMARK_INSTALL_CONFIG) and a
# postinst that gives it to group postgres. Dependencies come from dpkg-shlibdeps.

# What Debian asks of every package's documentation folder: the copyright file and a changelog,
# gzipped reproducibly.
set(TIDEMARK_DEBIAN_DIR ${CMAKE_BINARY_DIR}/debian)
configure_file(${PROJECT_SOURCE_DIR}/contrib/debian/changelog.in ${TIDEMARK_DEBIAN_DIR}/changelog @ONLY)
add_custom_command(OUTPUT ${TIDEMARK_DEBIAN_DIR}/changelog.gz
  COMMAND sh -c "gzip -9n < \"$1\" > \"$2\"" sh ${TIDEMARK_DEBIAN_DIR}/changelog
    ${TIDEMARK_DEBIAN_DIR}/changelog.gz
  DEPENDS ${TIDEMARK_DEBIAN_DIR}/changelog
  VERBATIM)
add_custom_target(debian-changelog ALL DEPENDS ${TIDEMARK_DEBIAN_DIR}/changelog.gz)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/debian/copyright ${TIDEMARK_DEBIAN_DIR}/changelog.gz
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The configuration is mode 0640 on purpose (group postgres, given by the postinst).
if(TIDEMARK_INSTALL_CONFIG)
  install(FILES ${PROJECT_SOURCE_DIR}/contrib/debian/lintian-overrides
    DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME tidemark)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tidemark)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tidemark maintainers <tidemark@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PostgreSQL WAL archiving and point-in-time recovery")
# The maintainer address is a placeholder until the project has one.
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "tidemark archives PostgreSQL's WAL through archive_command and\n"
  "restore_command, takes base backups over the replication protocol and\n"
  "restores a cluster to a point in time, from a filesystem or S3 repository:\n"
  "compressed, optionally encrypted, verified on the way back.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries the binaries link: found by dpkg-shlibdeps (libc6, and libpq5: tidemark
# and basebackup link it). libcurl (for S3 repositories), libcrypto (OpenSSL 3: libssl3), liblz4
# and libzstd, loaded at run time (dlopen), are invisible to it, so they are named here (with the
# versions their shlibs files give) and CPack adds them to what it found (docs/decisions.md).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcurl4, libssl3, liblz4-1 (>= 1.9.4), libzstd1 (>= 1.5.2)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(control_extra ${PROJECT_SOURCE_DIR}/contrib/debian/postinst)
if(TIDEMARK_INSTALL_CONFIG)
  file(WRITE ${TIDEMARK_DEBIAN_DIR}/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/tidemark/tidemark.toml\n")
  list(APPEND control_extra ${TIDEMARK_DEBIAN_DIR}/conffiles)
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${control_extra}")
include(CPack)
