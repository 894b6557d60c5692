// libcrypto (OpenSSL 3), loaded on first use rather than linked.
//
// Linked, libcrypto costs every tidemark process about 2.5 ms before main() on the machines we
// measure on (relocating its data is a third of a start's page faults, docs/benchmarks.md), also
// the calls that need no cryptography at all: an archive-push that push-ahead acknowledged, an
// archive-get served from the prefetch spool, --version. Code calls OpenSSL through libcrypto():
// the OpenSSL headers still declare every type and constant, and the link leaves libcrypto out,
// so that a direct call fails to link rather than loading it behind our back.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/base/library.h"

namespace tidemark::io {

// Every libcrypto function tidemark calls.
#define TIDEMARK_LIBCRYPTO_FUNCTIONS(X) \
  X(CRYPTO_memcmp)                      \
  X(EVP_CIPHER_CTX_ctrl)                \
  X(EVP_CIPHER_CTX_free)                \
  X(EVP_CIPHER_CTX_new)                 \
  X(EVP_CipherInit_ex)                  \
  X(EVP_DecodeBlock)                    \
  X(EVP_DecryptFinal_ex)                \
  X(EVP_DecryptInit_ex)                 \
  X(EVP_DecryptUpdate)                  \
  X(EVP_Digest)                         \
  X(EVP_DigestFinal_ex)                 \
  X(EVP_DigestInit_ex)                  \
  X(EVP_DigestUpdate)                   \
  X(EVP_EncodeBlock)                    \
  X(EVP_EncryptFinal_ex)                \
  X(EVP_EncryptInit_ex)                 \
  X(EVP_EncryptUpdate)                  \
  X(EVP_KDF_CTX_free)                   \
  X(EVP_KDF_CTX_new)                    \
  X(EVP_KDF_derive)                     \
  X(EVP_KDF_fetch)                      \
  X(EVP_KDF_free)                       \
  X(EVP_MD_CTX_free)                    \
  X(EVP_MD_CTX_new)                     \
  X(EVP_aes_256_gcm)                    \
  X(EVP_md5)                            \
  X(EVP_sha256)                         \
  X(HMAC)                               \
  X(OPENSSL_cleanse)                    \
  X(OSSL_PARAM_construct_end)           \
  X(OSSL_PARAM_construct_octet_string)  \
  X(OSSL_PARAM_construct_utf8_string)   \
  X(RAND_bytes)

// The functions, by their OpenSSL names and types.
struct LibCrypto {
  TIDEMARK_LIBCRYPTO_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

// Loads libcrypto.so.3 on the first call (once per process, safe from any thread). Throws
// Error(Unsupported) naming the package to install when it cannot be loaded or lacks a function.
const LibCrypto& libcrypto();

}  // namespace tidemark::io
