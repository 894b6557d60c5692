// Where the documentation is installed (TIDEMARK_DOCDIR, set by CMake for this file alone).
#include "common/base/version.h"

namespace tidemark {

std::string docPath(std::string_view file) {
  std::string path = TIDEMARK_DOCDIR;
  if (!file.empty()) path += "/" + std::string(file);
  return path;
}

}  // namespace tidemark
