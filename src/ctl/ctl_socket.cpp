// SPDX-License-Identifier: GPL-2.0-or-later
#include "ctl/ctl_socket.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace pcpd::ctl {
namespace {

sockaddr_un make_addr(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

// Reads lines from a socket, keeping what follows a line for the next one.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n' (the rest before EOF counts as a line); false on EOF with
  // nothing left, a read error, a line of more than `max` bytes, or no data for timeout_ms.
  bool next(std::string& line, std::size_t max, int timeout_ms) {
    for (;;) {
      if (const auto nl = buffer_.find('\n', scan_); nl != std::string::npos) {
        if (nl - start_ > max) return false;
        line.assign(buffer_, start_, nl - start_);
        start_ = scan_ = nl + 1;  // the bytes before are dropped at the next read, not per line
        return true;
      }
      scan_ = buffer_.size();  // only new bytes are searched: O(n) in all
      if (buffer_.size() - start_ > max) return false;
      if (eof_) {
        if (start_ == buffer_.size()) return false;
        line.assign(buffer_, start_);
        start_ = scan_ = buffer_.size();
        return true;
      }
      buffer_.erase(0, start_);
      scan_ -= start_;
      start_ = 0;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      char buf[65536];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) eof_ = true;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
  std::size_t start_ = 0;  // the first byte not returned yet
  std::size_t scan_ = 0;   // where the search for the next '\n' goes on
  bool eof_ = false;
};

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

CtlServer::CtlServer(std::string path, Watch watch) : path_(std::move(path)), watch_(std::move(watch)) {
  auto sa = make_addr(path_);
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("control socket: " + std::string(std::strerror(errno)));
  unlink(path_.c_str());  // a stale socket from a killed daemon
  mode_t old = umask(0177);
  int rc = bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  umask(old);
  if (rc < 0 || listen(fd_, 16) < 0) {
    std::string err = std::strerror(errno);
    close(fd_);
    throw std::runtime_error("control socket " + path_ + ": " + err);
  }
}

CtlServer::~CtlServer() {
  for (const auto& [c, s] : streams_) close(c);
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

bool CtlServer::pump(int fd, Streaming& s, std::size_t budget) {
  for (;;) {
    if (s.sent == s.buffer.size()) {
      s.buffer.clear();
      s.sent = 0;
      if (!s.more) return true;
      if (budget == 0) return false;
      s.more = s.stream.next(s.buffer);
      continue;
    }
    if (budget == 0) return false;
    const std::size_t len = std::min(s.buffer.size() - s.sent, budget);
    const ssize_t n = send(fd, s.buffer.data() + s.sent, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) return true;  // the peer went away
    s.sent += static_cast<std::size_t>(n);
    budget -= static_cast<std::size_t>(n);
    s.progress = std::chrono::steady_clock::now();
  }
}

void CtlServer::finish(int fd) {
  if (watch_) watch_(fd, false);
  close(fd);
  streams_.erase(fd);
}

bool CtlServer::make_room() {
  if (streams_.size() < kMaxStreams) return true;
  // A pcpctl that stopped reading (a suspended pager) holds a connection and a cursor; the one
  // stalled the longest goes when it has not moved for kStallSeconds.
  auto oldest = streams_.begin();
  for (auto it = streams_.begin(); it != streams_.end(); ++it)
    if (it->second.progress < oldest->second.progress) oldest = it;
  if (std::chrono::steady_clock::now() - oldest->second.progress < std::chrono::seconds(kStallSeconds)) return false;
  finish(oldest->first);
  return true;
}

void CtlServer::on_readable(const Handler& handler) {
  for (int i = 0; i < 16; ++i) {  // bounded: at most 16 pending connections per wake-up
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    nlohmann::json response;
    std::string line;
    LineReader reader(c);
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
      response = {{"ok", false}, {"error", "permission denied"}};
    } else if (!reader.next(line, kMaxRequest, 1000)) {
      response = {{"ok", false}, {"error", "no request (expected one JSON line)"}};
    } else {
      try {
        auto req = nlohmann::json::parse(line);
        auto cmd = req.value("cmd", std::string{});
        auto args = req.contains("args") ? req["args"] : nlohmann::json::object();
        Answer answer = handler(cmd, args);
        if (auto* stream = std::get_if<Stream>(&answer)) {
          if (make_room()) {
            Streaming& s = streams_[c];
            s.stream = std::move(*stream);
            s.buffer = nlohmann::json{{"ok", true}, {"stream", true}}.dump() + "\n";
            s.progress = std::chrono::steady_clock::now();
            if (watch_) {
              (void)fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
              watch_(c, true);
              continue;
            }
            // No event loop: to the end now, waiting at most 2 s for the peer each time.
            while (!pump(c, s, kPieceBytes)) {
              pollfd p{c, POLLOUT, 0};
              if (poll(&p, 1, 2000) <= 0) break;
            }
            streams_.erase(c);
            close(c);
            continue;
          }
          response = {{"ok", false}, {"error", "too many answers in progress, try again"}};
        } else {
          response = {{"ok", true}, {"result", std::move(std::get<nlohmann::json>(answer))}};
        }
      } catch (const std::exception& e) {
        response = {{"ok", false}, {"error", e.what()}};
      }
    }
    // The daemon writes a plain answer before serving anything else; a pcpctl that stops
    // reading costs it at most this long per send, then the answer is cut.
    const timeval send_timeout{2, 0};
    (void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    (void)write_all(c, response.dump() + "\n");
    close(c);
  }
}

void CtlServer::on_writable(int fd) {
  auto it = streams_.find(fd);
  if (it == streams_.end()) return;
  if (pump(fd, it->second, kPieceBytes)) finish(fd);
}

namespace {

// Connects and sends the request; -1 and `error` set on failure.
int send_request(const std::string& path, const std::string& cmd, const nlohmann::json& args, std::string& error) {
  sockaddr_un sa;
  try {
    sa = make_addr(path);
  } catch (const std::exception& e) {
    error = e.what();
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
    error = std::string(std::strerror(errno)) + " (is pcpd running? are you root?)";
    close(fd);
    return -1;
  }
  nlohmann::json req{{"cmd", cmd}, {"args", args}};
  if (!write_all(fd, req.dump() + "\n")) {
    error = "cannot send the request";
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

nlohmann::json call(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                    int timeout_ms) {
  return call_stream(path, cmd, args, nullptr, timeout_ms);
}

nlohmann::json call_stream(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                           const std::function<void(const nlohmann::json&)>& on_item, int timeout_ms) {
  auto fail = [&](const std::string& what) {
    return nlohmann::json{{"ok", false}, {"error", path + ": " + what}};
  };
  std::string error;
  const int fd = send_request(path, cmd, args, error);
  if (fd < 0) return fail(error);
  LineReader reader(fd);
  std::string line;
  nlohmann::json result;
  try {
    if (!reader.next(line, kMaxResponse, timeout_ms)) {
      close(fd);
      return fail("no response");
    }
    result = nlohmann::json::parse(line);
    if (result.value("stream", false)) {
      // JSON Lines until the end line (see the header).
      result = fail("the answer was cut short");
      while (reader.next(line, kMaxResponse, timeout_ms)) {
        auto item = nlohmann::json::parse(line, nullptr, false);
        if (item.is_discarded()) break;  // a last line without its end: cut short
        if (item.is_object() && item.value("end", false)) {
          result = {{"ok", true}, {"count", item.value("count", 0)}};
          break;
        }
        if (on_item) on_item(item);
      }
    }
  } catch (const std::exception& e) {
    result = fail(std::string("bad response: ") + e.what());
  }
  close(fd);
  return result;
}

}  // namespace pcpd::ctl
