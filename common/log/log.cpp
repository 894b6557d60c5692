// spdlog setup shared by every binary.
#include "common/log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace tidemark::log {

namespace {

// "%*": the level in capitals, as PostgreSQL writes them (ERROR, WARNING, INFO, DEBUG). The
// "critical" level is only used for the HINT line that follows an error.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view text;
    switch (msg.level) {
      case spdlog::level::critical:
        text = "HINT";
        break;
      case spdlog::level::err:
        text = "ERROR";
        break;
      case spdlog::level::warn:
        text = "WARNING";
        break;
      case spdlog::level::info:
        text = "INFO";
        break;
      default:
        text = "DEBUG";
        break;
    }
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

void applyPattern(spdlog::logger& logger) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e %n[%P] %*: %v");
  logger.set_formatter(std::move(formatter));
}

spdlog::level::level_enum toSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return spdlog::level::err;
    case LogLevel::Warn:
      return spdlog::level::warn;
    case LogLevel::Info:
      return spdlog::level::info;
    case LogLevel::Debug:
      return spdlog::level::debug;
  }
  return spdlog::level::info;
}

}  // namespace

void setup(std::string_view program) {
  auto logger = std::make_shared<spdlog::logger>(std::string(program),
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  applyPattern(*logger);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void configure(const Config& config) {
  auto logger = spdlog::default_logger();
  logger->set_level(toSpdlog(config.log.level));
  if (config.log.file.empty()) return;
  try {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.log.file, false);
    logger->sinks().push_back(file);
    applyPattern(*logger);
  } catch (const spdlog::spdlog_ex& e) {
    spdlog::warn("cannot open log file '{}': {}; logging to stderr only", config.log.file,
                 e.what());
  }
}

void reportError(const Error& error) {
  spdlog::error("{}", error.what());
  if (!error.hint().empty()) spdlog::critical("{}", error.hint());
}

}  // namespace tidemark::log
