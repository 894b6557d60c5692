// spdlog's compiled part, built into tidemark from Debian's headers (libspdlog-dev) rather than
// loaded from libspdlog.so: one shared library fewer for every process to load
// (docs/decisions.md, "Few shared libraries at start"). Every source is compiled with
// SPDLOG_COMPILED_LIB (the tidemark_spdlog target), so spdlog's headers only declare what this
// file defines: one registry and one default logger per process.
#ifndef SPDLOG_COMPILED_LIB
#error "compile with SPDLOG_COMPILED_LIB (link the tidemark_spdlog target)"
#endif

#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/file_helper-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/basic_file_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_sinks-inl.h>
#include <spdlog/spdlog-inl.h>
#include <spdlog/version.h>

#include <mutex>

// The list below is spdlog 1.10's (its src/*.cpp); another version may declare others.
static_assert(SPDLOG_VER_MAJOR == 1 && SPDLOG_VER_MINOR == 10,
              "common/thirdparty/spdlog.cpp includes and instantiates spdlog 1.10's compiled "
              "part: compare the lists with the installed spdlog's src/*.cpp");

// The sink templates tidemark and its tests use, and the one of the registry's first default
// logger, which the headers declare without their definitions.
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stdout_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::base_sink<spdlog::details::null_mutex>;
template class spdlog::sinks::basic_file_sink<std::mutex>;
template class spdlog::sinks::stdout_sink_base<spdlog::details::console_mutex>;
template class spdlog::sinks::stderr_sink<spdlog::details::console_mutex>;
