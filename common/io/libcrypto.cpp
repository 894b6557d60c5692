// Loading libcrypto on first use.
#include "common/io/libcrypto.h"

#include "common/base/library.h"

namespace tidemark::io {

const LibCrypto& libcrypto() {
  static const LibCrypto api = [] {
    // OpenSSL 3's soname: the one libcurl and libpq load too, so that a process holds one copy.
    const RuntimeLibrary library{.soname = "libcrypto.so.3",
                                 .what = "OpenSSL's libcrypto",
                                 .install = "install OpenSSL 3 (Debian: apt-get install libssl3)",
                                 .newer = "install OpenSSL 3.0 or newer"};
    void* handle = loadLibrary(library);
    LibCrypto a;
#define TIDEMARK_LIBCRYPTO_RESOLVE(name) \
  a.name = reinterpret_cast<decltype(a.name)>(librarySymbol(handle, library, #name));
    TIDEMARK_LIBCRYPTO_FUNCTIONS(TIDEMARK_LIBCRYPTO_RESOLVE)
#undef TIDEMARK_LIBCRYPTO_RESOLVE
    return a;
  }();
  return api;
}

}  // namespace tidemark::io
