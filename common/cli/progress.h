// Progress of a long transfer: a bar redrawn in place on a terminal, otherwise a log line every
// few seconds (cron, systemd and pipes get a readable log, not control characters).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tidemark {

class Progress {
 public:
  // `what` names the transfer in log lines ("backup 20261122T101500Z"); `total` may be 0
  // (unknown) and set later. `terminal` defaults to whether stderr is a terminal.
  explicit Progress(std::string what, std::uint64_t total = 0, int terminal = -1);
  ~Progress();
  void setTotal(std::uint64_t total) { total_ = total; }
  void add(std::uint64_t bytes);
  // Clears the bar (on a terminal) so that the next log line starts clean.
  void finish();
  std::uint64_t done() const { return done_; }
  double seconds() const;

 private:
  void report(bool force);
  std::string what_;
  std::uint64_t total_ = 0, done_ = 0;
  bool terminal_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_, lastReport_;
};

// "1:05:03" / "4:07".
std::string formatDuration(double seconds);

}  // namespace tidemark
