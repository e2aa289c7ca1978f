// The control socket: one JSON line each way, answers far larger than a request.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include <poll.h>
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
