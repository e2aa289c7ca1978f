// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_config interface step: defaults of internal_prefixes and external_address from a faked
// InterfaceTable, its errors and warnings, and system_interfaces() on this host.
#include <doctest/doctest.h>

#include "config/config_parser.hpp"
#include "config/interface_table.hpp"

using namespace pcpd;
using namespace pcpd::config;

namespace {

wire::IpAddr ip(const char* s) { return *wire::IpAddr::parse(s); }
wire::Prefix pfx(const char* s) { return *wire::Prefix::parse(s); }

InterfaceTable host() {
  InterfaceTable t;
  t.interfaces.push_back({"lo", 1, {{ip("127.0.0.1"), 8}, {ip("::1"), 128}}});
  t.interfaces.push_back({"lan0", 2,
                          {{ip("192.0.2.1"), 24},
                           {ip("169.254.7.1"), 16},
                           {ip("fe80::1"), 64},
                           {ip("2001:db8:1::1"), 64}}});
  t.interfaces.push_back({"lan1", 3, {{ip("198.51.100.1"), 25}, {ip("192.0.2.9"), 24}}});
  t.interfaces.push_back({"wan0", 4, {{ip("203.0.113.7"), 24}, {ip("2001:db8:ff::2"), 64}, {ip("203.0.113.8"), 32}}});
  t.interfaces.push_back({"wan1", 5, {{ip("fe80::9"), 64}}});
  return t;
}

Config parse(const std::string& text) { return parse_config_text(text, "t.conf"); }

}  // namespace

TEST_CASE("interfaces: default internal_prefixes are the non-link-local prefixes of internal") {
  Config c = parse("[interfaces]\ninternal = [\"lan0\", \"lan1\"]\nexternal = \"wan0\"\n");
  auto warnings = resolve_interfaces(c, host());
  CHECK(warnings.empty());
  CHECK(c.internal_prefixes == std::vector<wire::Prefix>{pfx("192.0.2.0/24"), pfx("2001:db8:1::/64"),
                                                          pfx("198.51.100.0/25")});
  CHECK(c.accepts_source(ip("192.0.2.200")));
  CHECK_FALSE(c.accepts_source(ip("169.254.7.2")));
  CHECK_FALSE(c.accepts_source(ip("fe80::2")));
  CHECK_FALSE(c.accepts_source(ip("198.51.100.200")));
}

TEST_CASE("interfaces: default external_address is the IPv4 addresses of external") {
  Config c = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n");
  (void)resolve_interfaces(c, host());
  CHECK(c.policy.external_v4 == std::vector<wire::IpAddr>{ip("203.0.113.7"), ip("203.0.113.8")});
}

TEST_CASE("interfaces: values given in the file are kept") {
  Config c = parse(
      "[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n"
      "internal_prefixes = [\"192.0.2.0/28\"]\nexternal_address = [\"198.51.100.99\"]\n");
  (void)resolve_interfaces(c, host());
  CHECK(c.internal_prefixes == std::vector<wire::Prefix>{pfx("192.0.2.0/28")});
  CHECK(c.policy.external_v4 == std::vector<wire::IpAddr>{ip("198.51.100.99")});
}

TEST_CASE("interfaces: no NAT44, no external address needed") {
  Config c = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan1\"\n[mappings]\nnat44 = false\n");
  auto warnings = resolve_interfaces(c, host());
  CHECK(warnings.empty());
  CHECK(c.policy.external_v4.empty());
}

TEST_CASE("interfaces: errors name the line of interfaces.internal") {
  Config c = parse("# comment\n[interfaces]\nexternal = \"wan0\"\ninternal = [\"lan9\"]\n");
  try {
    (void)resolve_interfaces(c, host());
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "t.conf:4: interfaces.internal: no interface named 'lan9' on this host");
  }
  Config only_ll = parse("[interfaces]\ninternal = [\"wan1\"]\nexternal = \"wan0\"\n");
  try {
    (void)resolve_interfaces(only_ll, host());
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.line == 2);
    CHECK(std::string(e.what()).find("set interfaces.internal_prefixes") != std::string::npos);
  }
}

TEST_CASE("interfaces: warnings for what may come later") {
  Config c = parse(
      "[interfaces]\ninternal = [\"lan0\", \"lan9\"]\nexternal = \"ppp0\"\n"
      "internal_prefixes = [\"192.0.2.0/24\"]\n");
  auto warnings = resolve_interfaces(c, host());
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("lan9") != std::string::npos);
  CHECK(warnings[1].find("ppp0") != std::string::npos);
  CHECK(c.policy.external_v4.empty());
  Config v6only = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan1\"\n");
  warnings = resolve_interfaces(v6only, host());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("has no IPv4 address") != std::string::npos);
}

TEST_CASE("interfaces: address classes") {
  CHECK(is_link_local(ip("fe80::1")));
  CHECK(is_link_local(ip("febf::1")));
  CHECK_FALSE(is_link_local(ip("fec0::1")));
  CHECK(is_link_local(ip("169.254.1.1")));
  CHECK_FALSE(is_link_local(ip("192.0.2.1")));
  CHECK(is_global_v6(ip("2001:db8::1")));
  CHECK_FALSE(is_global_v6(ip("fe80::1")));
  CHECK_FALSE(is_global_v6(ip("::1")));
  CHECK_FALSE(is_global_v6(ip("ff02::1")));
  CHECK_FALSE(is_global_v6(ip("192.0.2.1")));
}

TEST_CASE("interfaces: system_interfaces() sees the loopback interface") {
  InterfaceTable t = system_interfaces();
  const Interface* lo = t.find("lo");
  REQUIRE(lo != nullptr);
  CHECK(lo->index > 0);
  bool has_127 = false;
  for (const auto& a : lo->addrs)
    if (a.addr == ip("127.0.0.1")) has_127 = a.prefix_len == 8;
  CHECK(has_127);
}

TEST_CASE("interfaces: capability \"auto\" gains nat44 once the external address is found") {
  Config c = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n[capability]\nnames = \"auto\"\n");
  REQUIRE(c.policy.capabilities.has_value());
  CHECK_FALSE(c.policy.capabilities->test(std::string_view("nat44")));
  (void)resolve_interfaces(c, host());
  CHECK(c.policy.capabilities->to_string() == "nat44,ipv6-firewall,tcp,udp");
  // An external interface without IPv4: no NAT44 to claim (R-CAP-5).
  Config d = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan1\"\n[capability]\nnames = \"auto\"\n");
  (void)resolve_interfaces(d, host());
  CHECK(d.policy.capabilities->to_string() == "ipv6-firewall,tcp,udp");
}
