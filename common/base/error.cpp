// Lookups over the error table in error.h.
#include "common/base/error.h"

#include <cerrno>
#include <cstring>

namespace tidemark {

int exitStatus(ErrorCode code) {
  switch (code) {
#define TIDEMARK_ERROR_STATUS(name, status, what) \
  case ErrorCode::name:                           \
    return status;
    TIDEMARK_ERRORS(TIDEMARK_ERROR_STATUS)
#undef TIDEMARK_ERROR_STATUS
  }
  return 99;
}

const std::vector<ErrorCode>& allErrorCodes() {
  static const std::vector<ErrorCode> codes = {
#define TIDEMARK_ERROR_CODE(name, status, what) ErrorCode::name,
      TIDEMARK_ERRORS(TIDEMARK_ERROR_CODE)
#undef TIDEMARK_ERROR_CODE
  };
  return codes;
}

std::string_view errorMeaning(ErrorCode code) {
  switch (code) {
#define TIDEMARK_ERROR_WHAT(name, status, what) \
  case ErrorCode::name:                         \
    return what;
    TIDEMARK_ERRORS(TIDEMARK_ERROR_WHAT)
#undef TIDEMARK_ERROR_WHAT
  }
  return "unknown error";
}

std::string_view errorName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Usage:
      return "usage";
    case ErrorCode::Config:
      return "config";
    case ErrorCode::Storage:
      return "storage";
    case ErrorCode::Corrupt:
      return "corrupt";
    case ErrorCode::Conflict:
      return "conflict";
    case ErrorCode::ForeignCluster:
      return "foreign-cluster";
    case ErrorCode::InvalidInput:
      return "invalid-input";
    case ErrorCode::LocalIo:
      return "local-io";
    case ErrorCode::Unsupported:
      return "unsupported";
    case ErrorCode::Database:
      return "database";
    case ErrorCode::Timeout:
      return "timeout";
    case ErrorCode::Interrupted:
      return "interrupted";
    case ErrorCode::Locked:
      return "locked";
    case ErrorCode::Unhealthy:
      return "unhealthy";
    case ErrorCode::Internal:
      return "internal";
  }
  return "unknown";
}

std::string errnoText(int err) {
  char buffer[256];
  // GNU strerror_r returns a pointer that may or may not be `buffer`.
  return std::string(strerror_r(err, buffer, sizeof buffer));
}

bool transientErrno(int err) {
  return err == EIO || err == ETIMEDOUT || err == ESTALE || err == EAGAIN || err == EINTR;
}

}  // namespace tidemark
