// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ctl: the local control socket (/run/pcpd/ctl.sock) shared by the daemon and pcpctl.
// Protocol: one JSON request line per connection:
//   request  {"cmd": "list" | "stats" | "ha" | "ct-touch" | "reload", "args": {...}}\n
// and one of two answers:
//   plain    {"ok": true, "result": ...}\n  or  {"ok": false, "error": "text"}\n
//   stream   {"ok": true, "stream": true}\n, then one JSON object per line (`list`: a mapping
//            each), then {"end": true, "count": N}\n. A connection that ends before the end line
//            was cut short.
// A streamed answer is written in pieces between the daemon's other work (`pcpctl list`
// of 1,000,000 mappings built a 2.5 GB JSON document and held every PCP request for more than
// 10 s; now it holds at most one piece at a time).
// Owns the socket plumbing only; what each command does is the daemon's handler.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace pcpd::ctl {

inline constexpr const char* kDefaultPath = "/run/pcpd/ctl.sock";
// A request is one small JSON object; so is a plain answer's line (a streamed answer has no
// limit: it is read line by line).
inline constexpr std::size_t kMaxRequest = 64 * 1024;
inline constexpr std::size_t kMaxResponse = std::size_t{1} << 30;

// A streamed answer: `next` appends the next piece (whole lines, a few hundred KB at most) to
// `out` and returns false after the last one (whose lines end with the end line).
struct Stream {
  std::function<bool(std::string& out)> next;
};
using Answer = std::variant<nlohmann::json, Stream>;
using Handler = std::function<Answer(const std::string& cmd, const nlohmann::json& args)>;

// Daemon side. Listens on a unix stream socket with mode 0600; only peers with uid 0 or the
// daemon's own uid (SO_PEERCRED) are served.
class CtlServer {
 public:
  // watch(fd, true): call on_writable(fd) whenever fd is writable; watch(fd, false): stop. Without
  // a watch a streamed answer is written to its end at once, like a plain one.
  using Watch = std::function<void(int fd, bool writable)>;
  // At most this many streamed answers at a time; one more closes the one that made no progress
  // for the longest time if that was over kStallSeconds ago, and is refused otherwise.
  static constexpr std::size_t kMaxStreams = 8;
  static constexpr int kStallSeconds = 10;
  // Bytes written for one stream per on_writable() call.
  static constexpr std::size_t kPieceBytes = 64 * 1024;

  // Throws std::runtime_error with a message naming the path when it cannot listen.
  explicit CtlServer(std::string path, Watch watch = {});
  ~CtlServer();
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // Call when fd() is readable: accepts connections, reads each one's request (1 s timeout) and
  // calls the handler. A plain answer (or a handler exception, as {"ok": false}) is written and
  // the connection closed; a streamed one continues in on_writable().
  void on_readable(const Handler& handler);
  // Call when a streaming connection is writable: writes up to kPieceBytes, asking the stream
  // for more as needed; closes the connection at the end or when the peer went away.
  void on_writable(int fd);
  [[nodiscard]] std::size_t streams() const { return streams_.size(); }

 private:
  struct Streaming {
    Stream stream;
    std::string buffer;
    std::size_t sent = 0;
    bool more = true;
    std::chrono::steady_clock::time_point progress;
  };
  // Writes what the socket takes now (at most `budget` bytes); true when the answer is done or
  // the peer is gone (close it).
  static bool pump(int fd, Streaming& s, std::size_t budget);
  void finish(int fd);
  bool make_room();

  std::string path_;
  int fd_ = -1;
  Watch watch_;
  std::map<int, Streaming> streams_;
};

// pcpctl side: sends one request, returns the parsed plain answer ({"ok": false, "error": ...} on
// any local failure, naming the path).
nlohmann::json call(const std::string& path, const std::string& cmd,
                    const nlohmann::json& args = nlohmann::json::object(), int timeout_ms = 10000);

// The same for a command that may stream: `on_item` gets every object of a streamed answer as it
// arrives. Returns the plain answer, or for a stream {"ok": true, "count": N} once the end line
// came ({"ok": false, ...} when the connection ended before it). timeout_ms bounds each read.
nlohmann::json call_stream(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                           const std::function<void(const nlohmann::json&)>& on_item, int timeout_ms = 10000);

}  // namespace pcpd::ctl
