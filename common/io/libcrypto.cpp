// Loading libcrypto on first use.
#include "common/io/libcrypto.h"

namespace tidemark::io {

// OpenSSL 3's soname: the one libcurl and libpq load too, so that a process holds one copy.
constexpr RuntimeLibrary kLibCrypto{
    .soname = "libcrypto.so.3",
    .what = "OpenSSL's libcrypto",
    .install = "install OpenSSL 3 (Debian: apt-get install libssl3)",
    .newer = "install OpenSSL 3.0 or newer"};

const LibCrypto& libcrypto() {
  static const LibCrypto api =
      TIDEMARK_LOAD_LIBRARY(LibCrypto, TIDEMARK_LIBCRYPTO_FUNCTIONS, kLibCrypto);
  return api;
}

}  // namespace tidemark::io
