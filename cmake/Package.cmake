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

# Static-Built-Using: the Debian source packages whose code the binaries contain (fmt, spdlog,
# toml++ and nlohmann-json compiled from their headers, pugixml, libstdc++ and libgcc linked from
# their static libraries), so that Debian's tools list tidemark for a rebuild after a fix in one
# of them. Each is found from a file the build used (dpkg-query -S), at the version installed.
# CPack writes no such field: cmake/StaticBuiltUsing.cmake adds it once the package is made.
# Not on a system without dpkg (no Debian package is built there), nor under the sanitizers
# (which link the shared C++ runtime).
function(tidemark_static_built_using out)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.a
    OUTPUT_VARIABLE libstdcxx OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-libgcc-file-name
    OUTPUT_VARIABLE libgcc OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(sources)
  foreach(variable fmt_CONFIG spdlog_CONFIG tomlplusplus_CONFIG nlohmann_json_CONFIG
      pugixml_CONFIG libstdcxx libgcc)
    set(file "${${variable}}")
    if(file)
      get_filename_component(file "${file}" REALPATH)
      execute_process(COMMAND dpkg-query -S "${file}" OUTPUT_VARIABLE owner RESULT_VARIABLE failed
        ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      # "libfmt-dev:amd64: /usr/lib/...": the package with its architecture (two of a Multi-Arch
      # package may be installed), one owner only.
      string(REGEX MATCH "^[^ ,]+: /" owner "${owner}")
      string(REGEX REPLACE ": /$" "" package "${owner}")
    endif()
    if(package)
      execute_process(COMMAND dpkg-query -W "-f=\${source:Package} (= \${source:Version})"
        "${package}" OUTPUT_VARIABLE source RESULT_VARIABLE failed ERROR_QUIET
        OUTPUT_STRIP_TRAILING_WHITESPACE)
    endif()
    if(NOT file OR NOT package OR failed OR NOT source MATCHES "^[^ ]+ \\(= [^)]+\\)$")
      message(STATUS "Cannot tell which Debian source package ${variable} ('${file}') comes "
        "from: the package gets no Static-Built-Using field (scripts/package refuses it); "
        "install the dependencies from Debian (scripts/lib/common.sh lists them)")
      return()
    endif()
    list(APPEND sources "${source}")
    unset(package)
  endforeach()
  list(REMOVE_DUPLICATES sources)
  list(SORT sources)
  list(JOIN sources ", " field)
  set(${out} "${field}" PARENT_SCOPE)
endfunction()
find_program(TIDEMARK_DPKG_QUERY dpkg-query)
if(TIDEMARK_DPKG_QUERY AND NOT TIDEMARK_SANITIZE)
  tidemark_static_built_using(CPACK_TIDEMARK_STATIC_BUILT_USING)
  if(CPACK_TIDEMARK_STATIC_BUILT_USING)
    set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/StaticBuiltUsing.cmake)
  endif()
endif()
include(CPack)
