// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket: one JSON line each way, answers far larger than a request, and streamed
// answers (pcpctl list) written piece by piece between other requests.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/ctl_socket.hpp"

namespace {

std::string temp_socket_path() {
  return (std::filesystem::temp_directory_path() / ("pcpd-ctl-test-" + std::to_string(getpid()) + ".sock"))
      .string();
}

// Serves `count` connections of `server` on a thread (bounded: 10 s per connection).
std::thread serve(pcpd::ctl::CtlServer& server, const pcpd::ctl::Handler& handler, int count) {
  return std::thread([&server, handler, count] {
    for (int i = 0; i < count; ++i) {
      pollfd p{server.fd(), POLLIN, 0};
      if (poll(&p, 1, 10000) <= 0) return;
      server.on_readable(handler);
    }
  });
}

}  // namespace

TEST_CASE("pcpctl list: an answer far beyond the 64 KiB request limit arrives whole") {
  // 2,000 mappings of ~300 bytes: `pcpctl list` failed past ~200 mappings when answers shared
  // the request limit.
  const auto path = temp_socket_path();
  pcpd::ctl::CtlServer server(path);
  nlohmann::json big = nlohmann::json::array();
  for (int i = 0; i < 2000; ++i) big.push_back({{"client", "192.0.2.10"}, {"pad", std::string(280, 'x')}, {"i", i}});
  auto t = serve(server, [&](const std::string& cmd, const nlohmann::json&) {
    return cmd == "list" ? big : nlohmann::json(nullptr);
  }, 1);
  auto r = pcpd::ctl::call(path, "list");
  t.join();
  REQUIRE(r.value("ok", false));
  CHECK(r["result"].size() == 2000);
  CHECK(r["result"][1999]["i"] == 1999);
  CHECK(r.dump().size() > 512 * 1024);
}

TEST_CASE("control socket: a request larger than 64 KiB is refused with a message") {
  const auto path = temp_socket_path();
  pcpd::ctl::CtlServer server(path);
  std::atomic<int> calls{0};
  auto t = serve(server, [&](const std::string&, const nlohmann::json&) {
    ++calls;
    return nlohmann::json(true);
  }, 1);
  auto r = pcpd::ctl::call(path, "list", {{"pad", std::string(70 * 1024, 'y')}});
  t.join();
  CHECK_FALSE(r.value("ok", true));
  CHECK(calls == 0);
}

TEST_CASE("control socket: no daemon is an error naming the path") {
  const auto path = temp_socket_path() + ".absent";
  auto r = pcpd::ctl::call(path, "stats", nlohmann::json::object(), 500);
  CHECK_FALSE(r.value("ok", true));
  CHECK(r["error"].get<std::string>().find(path) != std::string::npos);
}

namespace {

// A Stream of `n` numbered JSON lines, `per_piece` a piece, then the end line.
pcpd::ctl::Stream numbers(int n, int per_piece, std::atomic<int>* pieces = nullptr) {
  auto next = std::make_shared<int>(0);
  return pcpd::ctl::Stream{[=](std::string& out) {
    if (pieces != nullptr) ++*pieces;
    for (int k = 0; k < per_piece && *next < n; ++k, ++*next)
      out += nlohmann::json{{"i", *next}, {"pad", std::string(200, 'x')}}.dump() + "\n";
    if (*next < n) return true;
    out += nlohmann::json{{"end", true}, {"count", n}}.dump() + "\n";
    return false;
  }};
}

}  // namespace

TEST_CASE("control socket: a streamed answer (pcpctl list) arrives line by line, in order, with its count") {
  // Without a watch (no event loop) the server writes the stream to its end at once.
  const auto path = temp_socket_path();
  pcpd::ctl::CtlServer server(path);
  auto t = serve(server, [](const std::string&, const nlohmann::json&) -> pcpd::ctl::Answer {
    return numbers(100'000, 256);
  }, 1);
  int expect = 0;
  bool in_order = true;
  auto r = pcpd::ctl::call_stream(path, "list", nlohmann::json::object(), [&](const nlohmann::json& item) {
    in_order = in_order && item["i"] == expect;
    ++expect;
  });
  t.join();
  REQUIRE(r.value("ok", false));
  CHECK(r["count"] == 100'000);
  CHECK(expect == 100'000);
  CHECK(in_order);
}

TEST_CASE("control socket: while a stream is written piece by piece, other requests are answered") {
  // The daemon's way (`pcpctl list` of 1,000,000 mappings held every request for more
  // than 10 s): a watch puts the streaming connection into the event loop, which here is a poll()
  // over the listening socket and the watched connections. A client that reads slowly must not
  // stop a second client's plain request, and each on_writable() writes at most one piece.
  const auto path = temp_socket_path();
  std::set<int> watched;
  std::atomic<int> pieces{0};
  pcpd::ctl::CtlServer server(path, [&](int fd, bool on) {
    if (on) watched.insert(fd); else watched.erase(fd);
  });
  auto handler = [&](const std::string& cmd, const nlohmann::json&) -> pcpd::ctl::Answer {
    if (cmd == "list") return numbers(20'000, 64, &pieces);
    return nlohmann::json("plain");
  };
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    for (int spins = 0; spins < 200'000 && !stop; ++spins) {
      std::vector<pollfd> fds{{server.fd(), POLLIN, 0}};
      for (int fd : watched) fds.push_back({fd, POLLOUT, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) server.on_readable(handler);
      for (std::size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) server.on_writable(fds[i].fd);
    }
  });
  std::atomic<int> items{0};
  nlohmann::json list_result, plain;
  std::thread lister([&] {
    list_result = pcpd::ctl::call_stream(path, "list", nlohmann::json::object(), [&](const nlohmann::json&) {
      if (++items == 100) {
        // Mid-stream: another client gets its plain answer while this one is still reading.
        plain = pcpd::ctl::call(path, "stats");
      }
      if (items % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  });
  lister.join();
  stop = true;
  loop.join();
  REQUIRE(list_result.value("ok", false));
  CHECK(list_result["count"] == 20'000);
  CHECK(items == 20'000);
  REQUIRE(plain.value("ok", false));
  CHECK(plain["result"] == "plain");
  CHECK(pieces > 100);  // written in many pieces, not at once
  CHECK(watched.empty());
  CHECK(server.streams() == 0);
}

TEST_CASE("control socket: a stream that ends before its end line is reported as cut short") {
  const auto path = temp_socket_path();
  std::set<int> watched;
  std::optional<pcpd::ctl::CtlServer> server;
  server.emplace(path, [&](int fd, bool on) {
    if (on) watched.insert(fd); else watched.erase(fd);
  });
  nlohmann::json r;
  int items = 0;
  std::thread client([&] {
    r = pcpd::ctl::call_stream(path, "list", nlohmann::json::object(), [&](const nlohmann::json&) { ++items; }, 5000);
  });
  pollfd p{server->fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  server->on_readable([](const std::string&, const nlohmann::json&) -> pcpd::ctl::Answer { return numbers(100'000, 10); });
  REQUIRE(watched.size() == 1);
  server->on_writable(*watched.begin());  // one piece (64 KiB, cut mid-line), then the daemon goes
  CHECK(server->streams() == 1);
  server.reset();  // closes the connection mid-stream
  client.join();
  CHECK_FALSE(r.value("ok", true));
  CHECK(r["error"].get<std::string>().find("cut short") != std::string::npos);
  CHECK(items > 0);
  CHECK(items < 100'000);
}

TEST_CASE("control socket: at most kMaxStreams streams at a time; one more is refused while none stalls") {
  const auto path = temp_socket_path();
  std::set<int> watched;
  pcpd::ctl::CtlServer server(path, [&](int fd, bool on) {
    if (on) watched.insert(fd); else watched.erase(fd);
  });
  auto handler = [](const std::string&, const nlohmann::json&) -> pcpd::ctl::Answer { return numbers(10, 1); };
  std::vector<int> clients;
  for (std::size_t i = 0; i <= pcpd::ctl::CtlServer::kMaxStreams; ++i) {
    // Raw clients that send a request and never read.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    const std::string req = "{\"cmd\":\"list\"}\n";
    REQUIRE(write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    clients.push_back(fd);
    pollfd p{server.fd(), POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);
    server.on_readable(handler);
  }
  CHECK(server.streams() == pcpd::ctl::CtlServer::kMaxStreams);
  CHECK(watched.size() == pcpd::ctl::CtlServer::kMaxStreams);
  // The last client got a plain refusal.
  char buf[512] = {};
  pollfd p{clients.back(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  const ssize_t n = read(clients.back(), buf, sizeof buf - 1);
  REQUIRE(n > 0);
  const auto refusal = nlohmann::json::parse(std::string(buf, static_cast<std::size_t>(n)));
  CHECK_FALSE(refusal.value("ok", true));
  CHECK(refusal["error"].get<std::string>().find("too many") != std::string::npos);
  for (int fd : clients) close(fd);
}
