# tidemark_module(): one folder, one static library, and the layering the build enforces.
#
# A module's headers are reachable only through the include root of its own library: each header
# of the folder is linked into ${CMAKE_BINARY_DIR}/include/<name>/<folder>/, and that root is
# added to the library's public include directories. Sources are never on the include path
# themselves, so `#include "common/storage/s3/s3.h"` compiles only in a target that links
# tidemark_storage_s3 (directly, or through a module that links it PUBLIC). A forbidden include
# is a compile error: "fatal error: common/...: No such file or directory". The allowed links are
# drawn and explained in docs/architecture.md.
#
#   tidemark_module(NAME io FOLDER common/io SOURCES ... DEPENDS base PRIVATE_DEPENDS ...)
#
# DEPENDS: tidemark modules (without the prefix) this module's headers need; PRIVATE_DEPENDS:
# modules only its sources need; LIBRARIES / PRIVATE_LIBRARIES: third-party targets.
#
# Every module links tidemark_spdlog (any module may log): spdlog's headers are on the system
# include path, and a source that includes them without the target's SPDLOG_COMPILED_LIB
# definition compiles spdlog header-only, with its own registry and an unconfigured default
# logger, so its lines would lose the binary's log format and the log file.
function(tidemark_module)
  cmake_parse_arguments(M "" "NAME;FOLDER"
                        "SOURCES;DEPENDS;PRIVATE_DEPENDS;LIBRARIES;PRIVATE_LIBRARIES" ${ARGN})
  set(target tidemark_${M_NAME})
  set(root ${CMAKE_BINARY_DIR}/include/${M_NAME})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/${M_FOLDER})
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${M_FOLDER}/*.h)
  foreach(header ${headers})
    get_filename_component(leaf ${header} NAME)
    file(CREATE_LINK ${header} ${root}/${M_FOLDER}/${leaf} SYMBOLIC)
  endforeach()

  list(TRANSFORM M_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/${M_FOLDER}/)
  add_library(${target} STATIC ${M_SOURCES})
  target_include_directories(${target} PUBLIC ${root})
  list(TRANSFORM M_DEPENDS PREPEND tidemark_)
  list(TRANSFORM M_PRIVATE_DEPENDS PREPEND tidemark_)
  target_link_libraries(${target} PUBLIC ${M_DEPENDS} ${M_LIBRARIES} tidemark_spdlog
                                  PRIVATE ${M_PRIVATE_DEPENDS} ${M_PRIVATE_LIBRARIES})
endfunction()
