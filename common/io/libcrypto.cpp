// Loading libcrypto on first use.
#include "common/io/libcrypto.h"

#include <dlfcn.h>

#include "common/base/error.h"

namespace tidemark::io {

const LibCrypto& libcrypto() {
  static const LibCrypto api = [] {
    // OpenSSL 3's soname: the one libcurl and libpq load too, so that a process holds one copy.
    void* library = ::dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
      throw Error(ErrorCode::Unsupported,
                  fmt::format("cannot load OpenSSL's libcrypto: {}", ::dlerror()),
                  "install OpenSSL 3 (Debian: apt-get install libssl3)");
    auto symbol = [&](const char* name) {
      void* address = ::dlsym(library, name);
      if (address == nullptr)
        throw Error(ErrorCode::Unsupported,
                    fmt::format("libcrypto.so.3 has no '{}': it is not OpenSSL 3", name),
                    "install OpenSSL 3 (Debian: apt-get install libssl3)");
      return address;
    };
    LibCrypto a;
#define TIDEMARK_LIBCRYPTO_RESOLVE(name) a.name = reinterpret_cast<decltype(a.name)>(symbol(#name));
    TIDEMARK_LIBCRYPTO_FUNCTIONS(TIDEMARK_LIBCRYPTO_RESOLVE)
#undef TIDEMARK_LIBCRYPTO_RESOLVE
    return a;
  }();
  return api;
}

}  // namespace tidemark::io
