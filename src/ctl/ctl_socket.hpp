// pcpd::ctl: the local control socket (/run/pcpd/ctl.sock) shared by the daemon and pcpctl.
// Protocol: one JSON object per connection, one line each way:
//   request  {"cmd": "list" | "stats" | "ha" | "ct-touch" | "reload", "args": {...}}\n
//   response {"ok": true, "result": ...}\n  or  {"ok": false, "error": "text"}\n
// Owns the socket plumbing only; what each command does is the daemon's handler.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace pcpd::ctl {

inline constexpr const char* kDefaultPath = "/run/pcpd/ctl.sock";
// A request is one small JSON object; a response can list every mapping (about 300 bytes each,
// so 1,000,000 mappings are about 300 MB).
inline constexpr std::size_t kMaxRequest = 64 * 1024;
inline constexpr std::size_t kMaxResponse = std::size_t{1} << 30;

using Handler = std::function<nlohmann::json(const std::string& cmd, const nlohmann::json& args)>;

// Daemon side. Listens on a unix stream socket with mode 0600; only peers with uid 0 or the
// daemon's own uid (SO_PEERCRED) are served.
class CtlServer {
 public:
  // Throws std::runtime_error with a message naming the path when it cannot listen.
  explicit CtlServer(std::string path);
  ~CtlServer();
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // Call when fd() is readable: accepts one connection, reads its request (1 s timeout), calls
  // the handler, writes the response, closes. A handler exception becomes {"ok": false}.
  void on_readable(const Handler& handler);

 private:
  std::string path_;
  int fd_ = -1;
};

// pcpctl side: sends one request, returns the parsed response ({"ok": false, "error": ...} on
// any local failure, naming the path).
nlohmann::json call(const std::string& path, const std::string& cmd,
                    const nlohmann::json& args = nlohmann::json::object(), int timeout_ms = 10000);

}  // namespace pcpd::ctl
