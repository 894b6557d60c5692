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
