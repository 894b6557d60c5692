// Progress bar or periodic progress lines.
#include "common/cli/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/base/text.h"

namespace tidemark {

Progress::Progress(std::string what, std::uint64_t total, int terminal)
    : what_(std::move(what)),
      total_(total),
      terminal_(terminal < 0 ? ::isatty(STDERR_FILENO) == 1 : terminal == 1),
      started_(std::chrono::steady_clock::now()),
      lastReport_(started_) {}

Progress::~Progress() {
  finish();
}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

void Progress::add(std::uint64_t bytes) {
  done_ += bytes;
  report(false);
}

void Progress::report(bool force) {
  auto now = std::chrono::steady_clock::now();
  auto interval = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000);
  if (!force && now - lastReport_ < interval) return;
  lastReport_ = now;
  double elapsed = std::max(seconds(), 1e-3);
  double rate = double(done_) / elapsed;
  std::string eta = "?";
  double fraction = total_ ? std::min(1.0, double(done_) / double(total_)) : 0;
  if (total_ && rate > 0 && done_ < total_) eta = formatDuration(double(total_ - done_) / rate);
  if (terminal_) {
    constexpr int kWidth = 30;
    int filled = int(fraction * kWidth);
    std::string bar =
        std::string(std::size_t(filled), '#') + std::string(std::size_t(kWidth - filled), '.');
    std::string line =
        total_ ? fmt::format("\r[{}] {:3.0f}%  {} of {}  {}/s  ETA {}  ", bar, fraction * 100,
                             humanBytes(done_), humanBytes(total_), humanBytes(std::uint64_t(rate)),
                             eta)
               : fmt::format("\r{}  {}/s  ", humanBytes(done_), humanBytes(std::uint64_t(rate)));
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  } else if (total_) {
    spdlog::info("{}: {:.0f}% ({} of {}), {}/s, ETA {}", what_, fraction * 100, humanBytes(done_),
                 humanBytes(total_), humanBytes(std::uint64_t(rate)), eta);
  } else {
    spdlog::info("{}: {}, {}/s", what_, humanBytes(done_), humanBytes(std::uint64_t(rate)));
  }
}

void Progress::finish() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

std::string formatDuration(double seconds) {
  auto total = std::int64_t(seconds + 0.5);
  if (total >= 3600)
    return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

}  // namespace tidemark
