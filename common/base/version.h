// The tidemark version, set by CMake from the project version, and where its documentation is
// installed.
#pragma once

#include <string>
#include <string_view>

namespace tidemark {
inline constexpr const char* kVersion = TIDEMARK_VERSION;

// A file of the installed documentation, for hints and man pages: docPath("recovery.md") is
// "/usr/share/doc/tidemark/recovery.md" when installed from the package (CMake's
// CMAKE_INSTALL_FULL_DOCDIR, under the install prefix). docPath("") is the folder.
std::string docPath(std::string_view file);
}  // namespace tidemark
