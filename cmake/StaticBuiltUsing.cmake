# Run by CPack after it has made the Debian package (CPACK_POST_BUILD_SCRIPTS, cmake/Package.cmake):
# adds the Static-Built-Using field, which CPack cannot write, to the package's control file after
# Depends, and builds the package again from the same tree (ownership root and gzip, as CPack made
# it).
foreach(deb ${CPACK_PACKAGE_FILES})
  if(NOT deb MATCHES "\\.deb$")
    continue()
  endif()
  set(tree ${CPACK_TOPLEVEL_DIRECTORY}/static-built-using)
  file(REMOVE_RECURSE ${tree})
  execute_process(COMMAND dpkg-deb -R ${deb} ${tree} COMMAND_ERROR_IS_FATAL ANY)
  file(READ ${tree}/DEBIAN/control control)
  if(NOT control MATCHES "\nStatic-Built-Using:")
    string(REGEX REPLACE "(\nDepends:[^\n]*\n)" "\\1Static-Built-Using: ${CPACK_TIDEMARK_STATIC_BUILT_USING}\n"
      control "${control}")
    if(NOT control MATCHES "\nStatic-Built-Using:")
      message(FATAL_ERROR "${deb}: its control file has no Depends line to put Static-Built-Using after")
    endif()
    file(WRITE ${tree}/DEBIAN/control "${control}")
    execute_process(COMMAND dpkg-deb --root-owner-group -Zgzip -b ${tree} ${deb}
      OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  endif()
  file(REMOVE_RECURSE ${tree})
endforeach()
