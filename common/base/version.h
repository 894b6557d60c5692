// The tidemark version, set by CMake from the project version.
#pragma once

namespace tidemark {
inline constexpr const char* kVersion = TIDEMARK_VERSION;
}
