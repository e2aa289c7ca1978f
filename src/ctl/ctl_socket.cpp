#include "ctl/ctl_socket.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

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

// Reads until '\n' or EOF, at most max bytes, waiting at most timeout_ms for each read.
bool read_line(int fd, std::string& out, std::size_t max, int timeout_ms) {
  char buf[65536];
  while (out.size() < max) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !out.empty();
    const std::string_view got(buf, static_cast<std::size_t>(n));
    out.append(got);
    if (got.find('\n') != std::string_view::npos) return true;  // only the new bytes: O(n) in all
  }
  return false;
}

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

CtlServer::CtlServer(std::string path) : path_(std::move(path)) {
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
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

void CtlServer::on_readable(const Handler& handler) {
  for (int i = 0; i < 16; ++i) {  // bounded: at most 16 pending connections per wake-up
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    nlohmann::json response;
    std::string line;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
      response = {{"ok", false}, {"error", "permission denied"}};
    } else if (!read_line(c, line, kMaxRequest, 1000)) {
      response = {{"ok", false}, {"error", "no request (expected one JSON line)"}};
    } else {
      try {
        auto req = nlohmann::json::parse(line);
        auto cmd = req.value("cmd", std::string{});
        auto args = req.contains("args") ? req["args"] : nlohmann::json::object();
        response = {{"ok", true}, {"result", handler(cmd, args)}};
      } catch (const std::exception& e) {
        response = {{"ok", false}, {"error", e.what()}};
      }
    }
    // The daemon writes the whole answer before serving anything else; a pcpctl that stops
    // reading (a suspended pager) costs it at most this long per send, then the answer is cut.
    const timeval send_timeout{2, 0};
    (void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    (void)write_all(c, response.dump() + "\n");
    close(c);
  }
}

nlohmann::json call(const std::string& path, const std::string& cmd, const nlohmann::json& args,
                    int timeout_ms) {
  auto fail = [&](const std::string& what) {
    return nlohmann::json{{"ok", false}, {"error", path + ": " + what}};
  };
  sockaddr_un sa;
  try {
    sa = make_addr(path);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::strerror(errno));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
    auto r = fail(std::string(std::strerror(errno)) + " (is pcpd running? are you root?)");
    close(fd);
    return r;
  }
  nlohmann::json req{{"cmd", cmd}, {"args", args}};
  std::string line;
  bool ok = write_all(fd, req.dump() + "\n") && read_line(fd, line, kMaxResponse, timeout_ms);
  close(fd);
  if (!ok) return fail("no response");
  try {
    return nlohmann::json::parse(line);
  } catch (const std::exception& e) {
    return fail(std::string("bad response: ") + e.what());
  }
}

}  // namespace pcpd::ctl
