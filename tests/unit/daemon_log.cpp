// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_util logging: the stderr line format, quoting, journal field names, level threshold and
// the rate limiter for per-packet warnings.
#include <doctest/doctest.h>

#include <cstdio>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "util/log.hpp"
#include "wire/ip_addr.hpp"

using namespace pcpd;
using namespace std::chrono_literals;

namespace {

// Runs `f` with stderr redirected to a temporary file; returns what was written.
template <typename F>
std::string capture_stderr(F&& f) {
  char path[] = "/tmp/pcpd-log-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  f();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  unlink(path);
  return out;
}

}  // namespace

TEST_CASE("log: one line `level event key=value`") {
  auto addr = *wire::IpAddr::parse("192.0.2.1");
  CHECK(log::format_line(log::Level::Info, "daemon.start", {}) == "info daemon.start");
  CHECK(log::format_line(log::Level::Warning, "nft.apply_failed",
                         {{"ext_port", std::uint16_t{8080}}, {"errno", -1}, {"client", addr},
                          {"ok", false}, {"text", "abc"}, {"ratio", 0.5}}) ==
        "warning nft.apply_failed ext_port=8080 errno=-1 client=192.0.2.1 ok=false text=abc ratio=0.5");
  CHECK(log::format_line(log::Level::Debug, "e", {{"s", std::string("x")}}) == "debug e s=x");
  CHECK(log::format_line(log::Level::Error, "e", {{"p", *wire::Prefix::parse("2001:db8::/32")}}) ==
        "error e p=2001:db8::/32");
}

TEST_CASE("log: values that need it are quoted and escaped") {
  CHECK(log::format_line(log::Level::Error, "config.invalid",
                         {{"message", "pcpd.conf:3: bad \"x\""}, {"empty", ""}, {"eq", "a=b"},
                          {"nl", "a\nb"}, {"bs", "a\\b"}, {"ctl", std::string("\x01", 1)}}) ==
        "error config.invalid message=\"pcpd.conf:3: bad \\\"x\\\"\" empty=\"\" eq=\"a=b\" "
        "nl=\"a\\nb\" bs=\"a\\\\b\" ctl=\"\\x01\"");
}

TEST_CASE("log: journal field names") {
  CHECK(log::journal_field_name("ext_port") == "PCPD_EXT_PORT");
  CHECK(log::journal_field_name("Client.Addr-6") == "PCPD_CLIENT_ADDR_6");
}

TEST_CASE("log: level and target names") {
  CHECK(log::parse_level("debug") == log::Level::Debug);
  CHECK(log::parse_level("warning") == log::Level::Warning);
  CHECK_FALSE(log::parse_level("warn").has_value());
  CHECK(log::parse_target("journal") == log::Target::Journal);
  CHECK_FALSE(log::parse_target("file").has_value());
  CHECK(std::string(log::to_string(log::Level::Error)) == "error");
  CHECK(std::string(log::to_string(log::Target::Stderr)) == "stderr");
}

TEST_CASE("log: the threshold filters events written to stderr") {
  log::configure(log::Target::Stderr, log::Level::Info);
  CHECK_FALSE(log::to_journal());
  CHECK_FALSE(log::enabled(log::Level::Debug));
  CHECK(log::enabled(log::Level::Warning));
  auto out = capture_stderr([] {
    log::debug("hidden.event", {{"k", 1}});
    log::info("shown.event", {{"k", 2}});
    log::warn("warn.event");
    log::error("error.event", {{"why", "x y"}});
  });
  CHECK(out == "info shown.event k=2\nwarning warn.event\nerror error.event why=\"x y\"\n");
  log::set_level(log::Level::Debug);
  CHECK(log::level() == log::Level::Debug);
  out = capture_stderr([] { log::debug("now.shown"); });
  CHECK(out == "debug now.shown\n");
  log::configure(log::Target::Stderr, log::Level::Info);
}

TEST_CASE("log: auto without JOURNAL_STREAM uses stderr") {
  unsetenv("JOURNAL_STREAM");
  log::configure(log::Target::Auto, log::Level::Info);
  CHECK_FALSE(log::to_journal());
  setenv("JOURNAL_STREAM", "1:2", 1);  // not stderr's device:inode
  log::configure(log::Target::Auto, log::Level::Info);
  CHECK_FALSE(log::to_journal());
  unsetenv("JOURNAL_STREAM");
  log::configure(log::Target::Stderr, log::Level::Info);
}

TEST_CASE("log: journal target falls back to stderr without journald's socket") {
  const bool socket_exists = access("/run/systemd/journal/socket", F_OK) == 0;
  log::configure(log::Target::Journal, log::Level::Info);
  CHECK(log::to_journal() == socket_exists);
  log::configure(log::Target::Stderr, log::Level::Info);
  CHECK_FALSE(log::to_journal());
}

TEST_CASE("log: RateLimiter allows a burst per interval and counts the rest") {
  log::RateLimiter rl(1000ms, 3);
  auto t0 = std::chrono::steady_clock::time_point{} + 5s;
  CHECK(rl.allow(t0));
  CHECK(rl.allow(t0 + 1ms));
  CHECK(rl.allow(t0 + 2ms));
  CHECK_FALSE(rl.allow(t0 + 3ms));
  CHECK_FALSE(rl.allow(t0 + 999ms));
  CHECK(rl.take_suppressed() == 2);
  CHECK(rl.take_suppressed() == 0);
  CHECK(rl.allow(t0 + 1000ms));  // new window
  CHECK(rl.allow(t0 + 1001ms));
  CHECK(rl.allow(t0 + 1002ms));
  CHECK_FALSE(rl.allow(t0 + 1003ms));
}

TEST_CASE("log: limited() reports how many were suppressed") {
  log::configure(log::Target::Stderr, log::Level::Info);
  log::RateLimiter rl(1h, 1);
  auto out = capture_stderr([&] {
    for (int i = 0; i < 5; ++i) log::limited(rl, log::Level::Warning, "pkt.drop", {{"n", i}});
  });
  CHECK(out == "warning pkt.drop n=0\n");
  log::RateLimiter quick(0ms, 1);  // every call opens a new window
  out = capture_stderr([&] {
    log::limited(quick, log::Level::Warning, "a", {});
    log::limited(quick, log::Level::Debug, "hidden", {});  // below threshold: not counted
    log::limited(quick, log::Level::Warning, "b", {{"k", "v"}});
  });
  CHECK(out == "warning a\nwarning b k=v\n");
  log::RateLimiter window(200ms, 1);
  out = capture_stderr([&] {
    for (int i = 0; i < 4; ++i) log::limited(window, log::Level::Warning, "c", {{"i", i}});
    usleep(250'000);
    log::limited(window, log::Level::Warning, "c", {{"i", 9}});
  });
  CHECK(out == "warning c i=0\nwarning c i=9 suppressed=3\n");
}
