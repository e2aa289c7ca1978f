// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_config [ha]: the hot-standby peer link keys of docs/interfaces.md, their defaults, the
// peer address[:port] forms, and every error with file:line.
#include <doctest/doctest.h>

#include <string>

#include "config/config_parser.hpp"
#include "unit/config_fixture.hpp"

using namespace pcpd;
using namespace pcpd::config;

namespace {

using test::expect_error;
using test::kMinimal;
using test::parse;

// kMinimal + [ha] (line 4) + `lines` from line 5 on.
std::string ha(const std::string& lines) { return kMinimal + "[ha]\n" + lines + "\n"; }

}  // namespace

TEST_CASE("[ha] absent: the peer link is off, defaults as documented") {
  const Config c = parse(kMinimal);
  CHECK_FALSE(c.ha.enabled);
  CHECK(c.ha.port == 5352);
  CHECK(c.ha.peer_port == 5352);
  CHECK(c.ha.key_file == "/etc/pcpd/ha.key");
  CHECK_FALSE(c.ha.scope_all);
  CHECK(c.ha.ack_timeout_ms == 200);
  CHECK_FALSE(c.ha.listen.has_value());
}

TEST_CASE("[ha] every key") {
  const Config c = parse(ha("peer = \"198.51.100.2\"\nlisten = \"198.51.100.1\"\nport = 6000\n"
                            "key_file = \"/etc/pcpd/k\"\nscope = \"all\"\nack_timeout_ms = 50"));
  CHECK(c.ha.enabled);
  CHECK(c.ha.peer == *wire::IpAddr::parse("198.51.100.2"));
  CHECK(c.ha.listen == wire::IpAddr::parse("198.51.100.1"));
  CHECK(c.ha.port == 6000);
  CHECK(c.ha.peer_port == 6000);  // the peer listens on the same port by default
  CHECK(c.ha.key_file == "/etc/pcpd/k");
  CHECK(c.ha.scope_all);
  CHECK(c.ha.ack_timeout_ms == 50);
  CHECK(c.ha.key_file_line == 8);
}

TEST_CASE("[ha] peer with a port, IPv4 and IPv6") {
  Config c = parse(ha("peer = \"198.51.100.2:7000\"\nport = 6000"));
  CHECK(c.ha.peer_port == 7000);
  CHECK(c.ha.port == 6000);
  c = parse(ha("peer = \"[2001:db8::2]:7001\""));
  CHECK(c.ha.peer == *wire::IpAddr::parse("2001:db8::2"));
  CHECK(c.ha.peer_port == 7001);
  c = parse(ha("peer = \"2001:db8::2\""));
  CHECK(c.ha.peer_port == 5352);
  c = parse(ha("peer = \"[2001:db8::2]\""));
  CHECK(c.ha.peer == *wire::IpAddr::parse("2001:db8::2"));
}

TEST_CASE("[ha] errors name file:line") {
  expect_error(ha("peer = \"not-an-address\""), 5, "ha.peer");
  expect_error(ha("peer = \"0.0.0.0\""), 5, "ha.peer");
  expect_error(ha("peer = \"198.51.100.2:0\""), 5, "address[:port]");
  expect_error(ha("peer = \"198.51.100.2:99999\""), 5, "address[:port]");
  expect_error(ha("peer = \"[2001:db8::2\""), 5, "missing ']'");
  expect_error(ha("peer = 5"), 5, "expected a string");
  expect_error(ha("peer = \"198.51.100.2\"\nlisten = \"nope\""), 6, "ha.listen");
  expect_error(ha("peer = \"198.51.100.2\"\nlisten = \"2001:db8::1\""), 6, "family");
  expect_error(ha("peer = \"198.51.100.2\"\nport = 0"), 6, "out of range");
  expect_error(ha("peer = \"198.51.100.2\"\nkey_file = \"relative/key\""), 6, "absolute path");
  expect_error(ha("peer = \"198.51.100.2\"\nscope = \"some\""), 6, "elected or all");
  expect_error(ha("peer = \"198.51.100.2\"\nack_timeout_ms = 0"), 6, "out of range");
  expect_error(ha("peer = \"198.51.100.2\"\nack_timeout_ms = 10001"), 6, "out of range");
  expect_error(ha("peer = \"198.51.100.2\"\nsecret = 1"), 6, "unknown key 'secret' in [ha]");
  expect_error(ha("scope = \"all\""), 4, "needs peer");
}
