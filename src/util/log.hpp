// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::log: structured events. An event has a stable dotted name and key=value fields:
//   log::warn("nft.apply_failed", {{"ext_port", port}, {"errno", e}});
// Goes to the journal (sd_journal_sendv: PRIORITY, MESSAGE, PCPD_EVENT, PCPD_<KEY>) when running
// under systemd or configured so, else to stderr as one line `level event key=value ...`.
// Owns: Level, Target, Field, RateLimiter and the process-wide sink. Single-threaded use.
// Fields are built before the call: guard costly debug events with log::enabled(Level::Debug).
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace pcpd::log {

enum class Level : std::uint8_t { Debug, Info, Warning, Error };
enum class Target : std::uint8_t { Auto, Journal, Stderr };

[[nodiscard]] std::optional<Level> parse_level(std::string_view text);    // debug, info, ...
[[nodiscard]] std::optional<Target> parse_target(std::string_view text);  // auto, journal, stderr
[[nodiscard]] const char* to_string(Level level);
[[nodiscard]] const char* to_string(Target target);

// One key=value pair. Values are formatted when the Field is built.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, double v);
  // Anything with a to_string() member (wire::IpAddr, wire::Prefix, ...).
  template <typename T>
    requires requires(const T& t) {
      { t.to_string() } -> std::convertible_to<std::string>;
    }
  Field(std::string_view k, const T& v) : key(k), value(v.to_string()) {}

  std::string_view key;
  std::string value;
};
using Fields = std::initializer_list<Field>;

// Chooses the sink and the threshold. Auto = journal when stderr is connected to the journal
// (JOURNAL_STREAM names stderr's device:inode, as systemd sets it), else stderr. Journal falls
// back to stderr when journald's socket does not exist (to_journal() tells).
void configure(Target target, Level level);
void set_level(Level level);
[[nodiscard]] Level level();
[[nodiscard]] bool enabled(Level level);
[[nodiscard]] bool to_journal();  // the sink configure() resolved

// Writes one event if `level` is enabled.
void write(Level level, std::string_view event, Fields fields);
inline void debug(std::string_view event, Fields fields = {}) { write(Level::Debug, event, fields); }
inline void info(std::string_view event, Fields fields = {}) { write(Level::Info, event, fields); }
inline void warn(std::string_view event, Fields fields = {}) { write(Level::Warning, event, fields); }
inline void error(std::string_view event, Fields fields = {}) { write(Level::Error, event, fields); }

// The stderr form: `level event key=value ...`; values with spaces, quotes, '=' or control
// characters (or empty) are double-quoted with C escapes. No trailing newline.
[[nodiscard]] std::string format_line(Level level, std::string_view event, Fields fields);
// The journal field name of a key: PCPD_ + upper-case, anything but [A-Z0-9] becomes '_'.
[[nodiscard]] std::string journal_field_name(std::string_view key);

// Token bucket for per-packet warnings: at most `burst` events per `interval`; the suppressed
// ones are counted and reported as suppressed=N on the next event that passes.
class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit RateLimiter(std::chrono::milliseconds interval = std::chrono::seconds(10),
                       unsigned burst = 5)
      : interval_(interval), burst_(burst) {}

  // True when an event may be logged at `now`; otherwise counts it as suppressed.
  [[nodiscard]] bool allow(TimePoint now);
  // Suppressed events since the last call; resets the count.
  [[nodiscard]] std::uint64_t take_suppressed();

 private:
  std::chrono::milliseconds interval_;
  unsigned burst_;
  unsigned used_ = 0;
  TimePoint window_start_{};
  bool started_ = false;
  std::uint64_t suppressed_ = 0;
};

// Writes the event through `limiter` (now = steady_clock::now()), adding suppressed=N when
// earlier events were dropped.
void limited(RateLimiter& limiter, Level level, std::string_view event, Fields fields);

}  // namespace pcpd::log
