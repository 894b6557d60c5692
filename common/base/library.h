// Shared libraries loaded at run time (dlopen) instead of linked: only the calls that use one pay
// for loading it (libcurl for S3, libcrypto; docs/decisions.md).
#pragma once

namespace tidemark {

// A library tidemark loads at run time, and what to tell the operator when it cannot.
struct RuntimeLibrary {
  const char* soname;   // "libcurl.so.4"
  const char* what;     // "libcurl for the s3 repository"
  const char* install;  // the hint when it cannot be loaded
  const char* newer;    // the hint when it lacks a function
};

// Loads `library` (RTLD_NOW | RTLD_LOCAL; a library already in the process is shared). Throws
// Error(Unsupported) naming it and the fix when it cannot.
void* loadLibrary(const RuntimeLibrary& library);

// The address of `name` in `handle` (from loadLibrary(library)). Throws Error(Unsupported) when
// the library lacks it.
void* librarySymbol(void* handle, const RuntimeLibrary& library, const char* name);

}  // namespace tidemark

// A library's functions are named once, in an X-macro list, and become the members of a struct of
// pointers typed as the library's own header declares them:
//   #define TIDEMARK_ZSTD_FUNCTIONS(X) X(ZSTD_createCCtx) X(ZSTD_isError)
//   struct ZstdApi { TIDEMARK_ZSTD_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER) };
//   static const ZstdApi api = TIDEMARK_LOAD_LIBRARY(ZstdApi, TIDEMARK_ZSTD_FUNCTIONS, kZstd);
// The header's declarations keep the calls type-checked; the link leaves the library out, so a
// direct call fails to link rather than loading it behind our back.
#define TIDEMARK_LIBRARY_MEMBER(name) decltype(&::name) name;

// Loads `library` (a RuntimeLibrary) and returns an `Api` whose members, one per name of the
// X-macro list `LIST`, point at the library's functions of those names. Throws as loadLibrary and
// librarySymbol do: nothing is half-resolved (in a function-local static, the next call tries
// again). A name the library's header defines as a macro of another (OpenSSL 3's EVP_MD_size for
// EVP_MD_get_size) is looked up by the name it stands for, the one its member is declared as.
#define TIDEMARK_LOAD_LIBRARY(Api, LIST, library)                        \
  [](const ::tidemark::RuntimeLibrary& tidemark_library_) {              \
    void* tidemark_handle_ = ::tidemark::loadLibrary(tidemark_library_); \
    Api tidemark_api_{};                                                 \
    LIST(TIDEMARK_LIBRARY_RESOLVE_)                                      \
    return tidemark_api_;                                                \
  }(library)
// `name` is macro-expanded here before TIDEMARK_LIBRARY_NAME_ quotes it, as in the member's
// declaration.
#define TIDEMARK_LIBRARY_RESOLVE_(name)                                                          \
  tidemark_api_.name = reinterpret_cast<decltype(tidemark_api_.name)>(::tidemark::librarySymbol( \
      tidemark_handle_, tidemark_library_, TIDEMARK_LIBRARY_NAME_(name)));
#define TIDEMARK_LIBRARY_NAME_(name) #name
