// Loading shared libraries at run time.
#include "common/base/library.h"

#include <dlfcn.h>

#include "common/base/error.h"

namespace tidemark {

void* loadLibrary(const RuntimeLibrary& library) {
  void* handle = ::dlopen(library.soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr)
    throw Error(ErrorCode::Unsupported,
                fmt::format("cannot load {}: {}", library.what, ::dlerror()), library.install);
  return handle;
}

void* librarySymbol(void* handle, const RuntimeLibrary& library, const char* name) {
  void* address = ::dlsym(handle, name);
  if (address == nullptr)
    throw Error(ErrorCode::Unsupported,
                fmt::format("{} has no '{}': it is too old", library.soname, name), library.newer);
  return address;
}

}  // namespace tidemark
