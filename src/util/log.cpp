// SPDX-License-Identifier: GPL-2.0-or-later
#include "util/log.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace pcpd::log {

namespace {

using FieldSpan = std::span<const Field>;

struct Sink {
  Level threshold = Level::Info;
  bool journal = false;
};

Sink& sink() {
  static Sink s;
  return s;
}

int syslog_priority(Level level) {
  switch (level) {
    case Level::Debug: return 7;
    case Level::Info: return 6;
    case Level::Warning: return 4;
    case Level::Error: return 3;
  }
  return 6;
}

// systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to stdout/stderr.
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr || *env == '\0') return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

bool journal_available() { return ::access("/run/systemd/journal/socket", F_OK) == 0; }

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void append_value(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string format_message(std::string_view event, FieldSpan fields) {
  std::string out(event);
  for (const auto& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    append_value(out, f.value);
  }
  return out;
}

void write_stderr(Level level, std::string_view event, FieldSpan fields) {
  std::string line = to_string(level);
  line += ' ';
  line += format_message(event, fields);
  line += '\n';
  // One write per line so that concurrent writers never interleave within a line.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void send_journal(Level level, std::string_view event, FieldSpan fields) {
  std::vector<std::string> strings;
  strings.reserve(fields.size() + 4);
  strings.push_back("PRIORITY=" + std::to_string(syslog_priority(level)));
  strings.push_back("SYSLOG_IDENTIFIER=pcpd");
  strings.push_back("MESSAGE=" + format_message(event, fields));
  strings.push_back("PCPD_EVENT=" + std::string(event));
  for (const auto& f : fields) strings.push_back(journal_field_name(f.key) + "=" + f.value);
  std::vector<iovec> iov;
  iov.reserve(strings.size());
  for (auto& s : strings) iov.push_back(iovec{s.data(), s.size()});
  if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
    // The journal socket is gone (e.g. journald restarting): fall back to stderr.
    write_stderr(level, event, fields);
  }
}

void emit(Level level, std::string_view event, FieldSpan fields) {
  if (sink().journal) {
    send_journal(level, event, fields);
  } else {
    write_stderr(level, event, fields);
  }
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  value = buf;
}

std::optional<Level> parse_level(std::string_view text) {
  if (text == "debug") return Level::Debug;
  if (text == "info") return Level::Info;
  if (text == "warning") return Level::Warning;
  if (text == "error") return Level::Error;
  return std::nullopt;
}

std::optional<Target> parse_target(std::string_view text) {
  if (text == "auto") return Target::Auto;
  if (text == "journal") return Target::Journal;
  if (text == "stderr") return Target::Stderr;
  return std::nullopt;
}

const char* to_string(Level level) {
  switch (level) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warning: return "warning";
    case Level::Error: return "error";
  }
  return "?";
}

const char* to_string(Target target) {
  switch (target) {
    case Target::Auto: return "auto";
    case Target::Journal: return "journal";
    case Target::Stderr: return "stderr";
  }
  return "?";
}

void configure(Target target, Level level) {
  sink().threshold = level;
  switch (target) {
    // sd_journal_sendv() reports success when journald is absent (ENOENT): check the socket, so
    // that events are never silently lost.
    case Target::Journal: sink().journal = journal_available(); break;
    case Target::Stderr: sink().journal = false; break;
    case Target::Auto: sink().journal = stderr_is_journal(); break;
  }
}

void set_level(Level level) { sink().threshold = level; }
Level level() { return sink().threshold; }
bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(sink().threshold); }
bool to_journal() { return sink().journal; }

void write(Level level, std::string_view event, Fields fields) {
  if (!enabled(level)) return;
  emit(level, event, FieldSpan(fields.begin(), fields.size()));
}

std::string format_line(Level level, std::string_view event, Fields fields) {
  std::string out = to_string(level);
  out += ' ';
  out += format_message(event, FieldSpan(fields.begin(), fields.size()));
  return out;
}

std::string journal_field_name(std::string_view key) {
  std::string out = "PCPD_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') out += static_cast<char>(c - 'a' + 'A');
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out += c;
    else out += '_';
  }
  return out;
}

bool RateLimiter::allow(TimePoint now) {
  if (!started_ || now - window_start_ >= interval_) {
    started_ = true;
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    return true;
  }
  ++suppressed_;
  return false;
}

std::uint64_t RateLimiter::take_suppressed() {
  auto n = suppressed_;
  suppressed_ = 0;
  return n;
}

void limited(RateLimiter& limiter, Level level, std::string_view event, Fields fields) {
  if (!enabled(level)) return;
  if (!limiter.allow(std::chrono::steady_clock::now())) return;
  auto suppressed = limiter.take_suppressed();
  if (suppressed == 0) {
    emit(level, event, FieldSpan(fields.begin(), fields.size()));
    return;
  }
  std::vector<Field> all(fields.begin(), fields.end());
  all.emplace_back("suppressed", suppressed);
  emit(level, event, FieldSpan(all.data(), all.size()));
}

}  // namespace pcpd::log
