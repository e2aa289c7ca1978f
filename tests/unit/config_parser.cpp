// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_config parser: every key of docs/interfaces.md, its default, and every error path with
// file:line in the message.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "config/config_parser.hpp"
#include "unit/config_fixture.hpp"

using namespace pcpd;
using namespace pcpd::config;

namespace {

using test::expect_error;
using test::kMinimal;
using test::parse;

// kMinimal plus one table with one key: the key is on line 5.
std::string with(const std::string& table, const std::string& line) {
  return kMinimal + "[" + table + "]\n" + line + "\n";
}

wire::IpAddr ip(const char* s) { return *wire::IpAddr::parse(s); }
wire::Prefix pfx(const char* s) { return *wire::Prefix::parse(s); }

}  // namespace

TEST_CASE("config: defaults of a minimal file follow docs/interfaces.md") {
  Config c = parse(kMinimal);
  CHECK(c.file == "test.conf");
  CHECK(c.internal_interfaces == std::vector<std::string>{"lan0"});
  CHECK(c.external_interface == "wan0");
  CHECK_FALSE(c.internal_prefixes_set);
  CHECK(c.internal_prefixes.empty());
  CHECK_FALSE(c.external_address_set);
  CHECK(c.policy.external_v4.empty());
  CHECK(c.internal_line == 2);
  CHECK(c.external_line == 3);
  const core::Policy d{};
  CHECK(c.policy.min_lifetime == 120);
  CHECK(c.policy.max_lifetime == 86400);
  CHECK(c.policy.port_min == 1024);
  CHECK(c.policy.port_max == 65535);
  CHECK(c.policy.protocols == std::vector<std::uint8_t>{6, 17});
  CHECK(c.policy.max_mappings_per_client == 256);
  CHECK(c.policy.max_mappings == 1000000);
  CHECK(c.policy.max_filters_per_mapping == 8);
  CHECK_FALSE(c.policy.allow_all_ports);
  CHECK(c.policy.description_max == 128);
  CHECK(c.policy.denied_internal_ports.empty());
  CHECK(c.policy.nat44);
  CHECK(c.policy.ipv6_firewall);
  CHECK(c.policy.checkpoint.enabled);
  CHECK(c.policy.option_codes.checkpoint_required == 192);
  CHECK(c.elected_mark == 0x1);
  CHECK(c.sticky_mark == 0x2);
  CHECK(c.mapped_mark == 0x8);
  CHECK(c.log_group == 5351);
  CHECK(c.control_socket == "/run/pcpd/ctl.sock");
  CHECK(c.policy.short_error_lifetime == 30);
  CHECK(c.policy.long_error_lifetime == 1800);
  CHECK_FALSE(c.policy.third_party);
  CHECK(c.policy.third_party_allow.empty());
  CHECK(c.policy.natpmp);
  CHECK(c.policy.option_codes.checkpoint_required == d.option_codes.checkpoint_required);
  CHECK(c.announce);
  CHECK(c.announce_copies == 10);
  CHECK(c.nft_table == "pcpd");
  CHECK(c.nft_grace == 30);
  CHECK(c.state_dir == "/var/lib/pcpd");
  CHECK(c.journal);
  CHECK(c.journal_max_mb == 64);
  CHECK(c.port == 5351);
  CHECK(c.log_target == log::Target::Auto);
  CHECK(c.log_level == log::Level::Info);
}

TEST_CASE("config: every key set to a non-default value") {
  Config c = parse(R"([interfaces]
internal = ["lan0", "lan1"]
internal_prefixes = ["192.0.2.0/24", "2001:db8:1::/64"]
external = "wan0"
external_address = ["203.0.113.1", "203.0.113.2"]

[mappings]
min_lifetime = 60
max_lifetime = 7200
port_range = "20000-29999"
protocols = ["tcp", "udp", "sctp", "dccp", "udplite", 47, "50"]
max_per_client = 16
max_total = 5000
max_filters = 4
allow_all_ports = true
description_max = 1016
denied_internal_ports = [22, 25, 22]
nat44 = false
ipv6_firewall = false

[errors]
short_lifetime = 10
long_lifetime = 600

[third_party]
enabled = true
allow = ["192.0.2.128/25", "2001:db8:1::/48"]

[natpmp]
enabled = false

[announce]
enabled = false
copies = 3

[nftables]
table = "pcpd_test"
grace = 0

[checkpoint]
enabled = false
option_code = 200
max_total = 10
max_per_client = 2
rate_per_client = 0.5
burst_per_client = 3
elected_mark = 0x10
sticky_mark = 0x20

[daemon]
control_socket = "/tmp/pcpd-test.sock"
state_dir = "/tmp/pcpd-state"
journal = false
journal_max_mb = 512
port = 15351
log = "stderr"
log_level = "debug"
)");
  CHECK(c.internal_interfaces == std::vector<std::string>{"lan0", "lan1"});
  CHECK(c.internal_prefixes_set);
  CHECK(c.internal_prefixes == std::vector<wire::Prefix>{pfx("192.0.2.0/24"), pfx("2001:db8:1::/64")});
  CHECK(c.external_address_set);
  CHECK(c.policy.external_v4 == std::vector<wire::IpAddr>{ip("203.0.113.1"), ip("203.0.113.2")});
  CHECK(c.policy.min_lifetime == 60);
  CHECK(c.policy.max_lifetime == 7200);
  CHECK(c.policy.port_min == 20000);
  CHECK(c.policy.port_max == 29999);
  CHECK(c.policy.protocols == std::vector<std::uint8_t>{6, 17, 132, 33, 136, 47, 50});
  CHECK(c.policy.max_mappings_per_client == 16);
  CHECK(c.policy.max_mappings == 5000);
  CHECK(c.policy.max_filters_per_mapping == 4);
  CHECK(c.policy.allow_all_ports);
  CHECK(c.policy.description_max == 1016);
  CHECK(c.policy.denied_internal_ports == std::vector<std::uint16_t>{22, 25});
  CHECK_FALSE(c.policy.nat44);
  CHECK_FALSE(c.policy.ipv6_firewall);
  CHECK_FALSE(c.policy.checkpoint.enabled);
  CHECK(c.policy.option_codes.checkpoint_required == 200);
  CHECK(c.policy.checkpoint.max_total == 10);
  CHECK(c.policy.checkpoint.max_per_client == 2);
  CHECK(c.policy.checkpoint.rate_per_client == doctest::Approx(0.5));
  CHECK(c.policy.checkpoint.burst_per_client == doctest::Approx(3.0));
  CHECK(c.elected_mark == 0x10);
  CHECK(c.sticky_mark == 0x20);
  CHECK(c.control_socket == "/tmp/pcpd-test.sock");
  CHECK(c.policy.short_error_lifetime == 10);
  CHECK(c.policy.long_error_lifetime == 600);
  CHECK(c.policy.third_party);
  CHECK(c.policy.third_party_allow == std::vector<wire::Prefix>{pfx("192.0.2.128/25"), pfx("2001:db8:1::/48")});
  CHECK_FALSE(c.policy.natpmp);
  CHECK_FALSE(c.announce);
  CHECK(c.announce_copies == 3);
  CHECK(c.nft_table == "pcpd_test");
  CHECK(c.nft_grace == 0);
  CHECK(c.state_dir == "/tmp/pcpd-state");
  CHECK_FALSE(c.journal);
  CHECK(c.journal_max_mb == 512);
  CHECK(c.port == 15351);
  CHECK(c.log_target == log::Target::Stderr);
  CHECK(c.log_level == log::Level::Debug);
}

TEST_CASE("config: single-port range and log targets/levels") {
  CHECK(parse(with("mappings", "port_range = \"8080\"")).policy.port_min == 8080);
  CHECK(parse(with("mappings", "port_range = \"8080\"")).policy.port_max == 8080);
  CHECK(parse(with("daemon", "log = \"journal\"")).log_target == log::Target::Journal);
  CHECK(parse(with("daemon", "log = \"auto\"")).log_target == log::Target::Auto);
  CHECK(parse(with("daemon", "log_level = \"warning\"")).log_level == log::Level::Warning);
  CHECK(parse(with("daemon", "log_level = \"error\"")).log_level == log::Level::Error);
  CHECK(parse(with("daemon", "log_level = \"info\"")).log_level == log::Level::Info);
  // A range that includes 5350/5351 is fine: core never hands those out (R-MAP-15).
  CHECK(parse(with("mappings", "port_range = \"5000-6000\"")).policy.port_max == 6000);
}

TEST_CASE("config: accepts_source checks the internal prefixes (R-HDR-2)") {
  Config c = parse(R"([interfaces]
internal = ["lan0"]
external = "wan0"
internal_prefixes = ["192.0.2.0/24", "2001:db8:1::/64"]
)");
  CHECK(c.accepts_source(ip("192.0.2.77")));
  CHECK(c.accepts_source(ip("2001:db8:1::5")));
  CHECK_FALSE(c.accepts_source(ip("198.51.100.1")));
  CHECK_FALSE(c.accepts_source(ip("2001:db8:2::5")));
  CHECK_FALSE(c.accepts_source(ip("fe80::1")));
}

TEST_CASE("config errors: TOML syntax, unknown tables and keys") {
  expect_error(kMinimal + "[mappings]\nmin_lifetime = \n", 5, "");
  expect_error(kMinimal + "\n[bogus]\nx = 1\n", 5, "unknown table [bogus]");
  expect_error("stray = 1\n" + kMinimal, 1, "unknown key 'stray'");
  expect_error(kMinimal + "mappings = 5\n", 4, "unknown key 'mappings'");
  expect_error("mappings = 5\n" + kMinimal, 1, "mappings: expected a table, got an integer");
  expect_error(with("mappings", "min_lifetim = 1"), 5, "unknown key 'min_lifetim' in [mappings]");
  expect_error(with("interfaces2", "x = 1"), 4, "unknown table [interfaces2]");
  expect_error(kMinimal + "bogus = true\n", 4, "unknown key 'bogus' in [interfaces]");
  for (const char* table : {"errors", "third_party", "natpmp", "announce", "nftables", "daemon"})
    expect_error(with(table, "nope = 1"), 5, "unknown key 'nope' in [" + std::string(table) + "]");
  expect_error(kMinimal + "[mappings]\nnat44 = true\nnat44 = false\n", 6, "");  // redefinition
}

TEST_CASE("config errors: [interfaces]") {
  expect_error("[interfaces]\nexternal = \"wan0\"\n", 1, "interfaces.internal is required");
  expect_error("[mappings]\nnat44 = true\n", 1, "interfaces.internal is required");
  expect_error("[interfaces]\ninternal = [\"lan0\"]\n", 1, "interfaces.external is required");
  expect_error("[interfaces]\ninternal = \"lan0\"\nexternal = \"wan0\"\n", 2,
               "interfaces.internal: expected an array, got a string");
  expect_error("[interfaces]\ninternal = []\nexternal = \"wan0\"\n", 2,
               "interfaces.internal: needs at least one interface");
  expect_error("[interfaces]\ninternal = [\n  \"lan0\",\n  3,\n]\nexternal = \"wan0\"\n", 4,
               "interfaces.internal: expected strings, got an integer");
  expect_error("[interfaces]\ninternal = [\"lan0\", \"lan0\"]\nexternal = \"wan0\"\n", 2, "listed twice");
  expect_error("[interfaces]\ninternal = [\"a very long interface name\"]\nexternal = \"wan0\"\n", 2,
               "is not an interface name");
  expect_error("[interfaces]\ninternal = [\"lan/0\"]\nexternal = \"wan0\"\n", 2, "is not an interface name");
  expect_error("[interfaces]\ninternal = [\"lan0\"]\nexternal = [\"wan0\"]\n", 3,
               "interfaces.external: expected a string, got an array");
  expect_error("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"\"\n", 3, "is not an interface name");
  expect_error("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"lan0\"\n", 3, "also an internal interface");
  expect_error(kMinimal + "internal_prefixes = [\"192.0.2.0/33\"]\n", 4,
               "interfaces.internal_prefixes: '192.0.2.0/33' is not an address prefix");
  expect_error(kMinimal + "internal_prefixes = [\"lan\"]\n", 4, "is not an address prefix");
  expect_error(kMinimal + "internal_prefixes = []\n", 4, "needs at least one prefix");
  expect_error(kMinimal + "internal_prefixes = \"192.0.2.0/24\"\n", 4, "expected an array");
  expect_error(kMinimal + "external_address = [\"2001:db8::1\"]\n", 4, "is not an IPv4 address");
  expect_error(kMinimal + "external_address = [\"203.0.113.300\"]\n", 4, "is not an address");
  expect_error(kMinimal + "external_address = [\"0.0.0.0\"]\n", 4, "is not a usable address");
  expect_error(kMinimal + "external_address = [\"203.0.113.1\", \"203.0.113.1\"]\n", 4, "listed twice");
  expect_error(kMinimal + "external_address = []\n", 4, "needs at least one address");
  expect_error(kMinimal + "external_address = [1]\n", 4, "expected strings, got an integer");
}

TEST_CASE("config errors: [mappings] lifetimes, quotas and ranges (R-LIFE-2)") {
  expect_error(with("mappings", "min_lifetime = 0"), 5, "mappings.min_lifetime: 0 is out of range [1, 4294967295]");
  expect_error(with("mappings", "max_lifetime = 4294967296"), 5, "mappings.max_lifetime: 4294967296 is out of range");
  expect_error(with("mappings", "min_lifetime = \"120\""), 5, "mappings.min_lifetime: expected an integer, got a string");
  expect_error(with("mappings", "min_lifetime = 1.5"), 5, "expected an integer, got a float");
  expect_error(kMinimal + "[mappings]\nmin_lifetime = 600\nmax_lifetime = 300\n", 6,
               "mappings.min_lifetime (600) is greater than mappings.max_lifetime (300)");
  expect_error(kMinimal + "[mappings]\nmin_lifetime = 90000\n", 5, "greater than mappings.max_lifetime (86400)");
  expect_error(with("mappings", "max_per_client = 0"), 5, "mappings.max_per_client: 0 is out of range");
  expect_error(with("mappings", "max_total = -1"), 5, "mappings.max_total: -1 is out of range");
  expect_error(with("mappings", "max_filters = 45"), 5, "mappings.max_filters: 45 is out of range [0, 44]");
  expect_error(with("mappings", "description_max = 1017"), 5, "mappings.description_max: 1017 is out of range [0, 1016]");
  expect_error(with("checkpoint", "elected_mark = 3"), 5, "checkpoint.elected_mark: 3 is not a single bit");
  expect_error(with("checkpoint", "sticky_mark = 1"), 5, "checkpoint.sticky_mark: must differ from elected_mark");
  expect_error(with("checkpoint", "mapped_mark = 4"), 5,
               "checkpoint.mapped_mark: must differ from elected_mark, sticky_mark and the pinhole bit 0x4");
  expect_error(with("checkpoint", "log_group = 65536"), 5, "checkpoint.log_group: 65536 is out of range");
  expect_error(with("checkpoint", "option_code = 5"), 5, "checkpoint.option_code: 5 is out of range [128, 254]");
  expect_error(with("checkpoint", "option_code = 224"), 5, "collides with the CAPABILITY option code");
  expect_error(with("checkpoint", "option_code = 129"), 5, "is DESCRIPTION, PREFIX64 or PORT_SET");
  expect_error(with("checkpoint", "rate_per_client = \"fast\""), 5, "checkpoint.rate_per_client: expected a number");
  expect_error(with("checkpoint", "burst_per_client = 0"), 5, "checkpoint.burst_per_client: 0.000000 is out of range");
  expect_error(with("checkpoint", "mark = 1"), 5, "unknown key");
  expect_error(with("daemon", "control_socket = \"ctl.sock\""), 5, "daemon.control_socket: 'ctl.sock' is not an absolute path");
  expect_error(with("mappings", "allow_all_ports = 1"), 5, "mappings.allow_all_ports: expected a boolean");
  expect_error(with("mappings", "nat44 = \"yes\""), 5, "mappings.nat44: expected a boolean");
  expect_error(with("mappings", "ipv6_firewall = 0"), 5, "mappings.ipv6_firewall: expected a boolean");
}

TEST_CASE("config errors: [mappings] ports and protocols") {
  expect_error(with("mappings", "port_range = \"0-100\""), 5, "is not a port range");
  expect_error(with("mappings", "port_range = \"1024-65536\""), 5, "is not a port range");
  expect_error(with("mappings", "port_range = \"1024-\""), 5, "is not a port range");
  expect_error(with("mappings", "port_range = \"a-b\""), 5, "is not a port range");
  expect_error(with("mappings", "port_range = \"2000-1000\""), 5, "the first port is greater than the last");
  expect_error(with("mappings", "port_range = \"5350-5351\""), 5, "only 5350/5351");
  expect_error(with("mappings", "port_range = 1024"), 5, "mappings.port_range: expected a string, got an integer");
  expect_error(with("mappings", "protocols = [\"tcp\", \"icmp\"]"), 5, "'icmp' is not tcp, udp, sctp, dccp, udplite or a number 1-255");
  expect_error(with("mappings", "protocols = [0]"), 5, "'0' is not tcp");
  expect_error(with("mappings", "protocols = [256]"), 5, "'256' is not tcp");
  expect_error(with("mappings", "protocols = [\"tcp\", 6]"), 5, "'6' is listed twice");
  expect_error(with("mappings", "protocols = [true]"), 5, "expected protocol names or numbers, got a boolean");
  expect_error(with("mappings", "protocols = []"), 5, "needs at least one protocol");
  expect_error(with("mappings", "protocols = \"tcp\""), 5, "expected an array");
  expect_error(with("mappings", "denied_internal_ports = [22, 0]"), 5, "0 is out of range [1, 65535]");
  expect_error(with("mappings", "denied_internal_ports = [65536]"), 5, "65536 is out of range");
  expect_error(with("mappings", "denied_internal_ports = [\"ssh\"]"), 5, "expected port numbers, got a string");
}

TEST_CASE("config errors: [errors], [third_party], [natpmp], [announce]") {
  expect_error(with("errors", "short_lifetime = 0"), 5, "errors.short_lifetime: 0 is out of range");
  expect_error(with("errors", "long_lifetime = \"30m\""), 5, "errors.long_lifetime: expected an integer");
  expect_error(with("third_party", "enabled = \"no\""), 5, "third_party.enabled: expected a boolean");
  expect_error(with("third_party", "allow = [\"192.0.2.0/24\", \"x\"]"), 5, "third_party.allow: 'x' is not an address prefix");
  expect_error(with("third_party", "allow = \"192.0.2.0/24\""), 5, "third_party.allow: expected an array");
  expect_error(with("natpmp", "enabled = 1"), 5, "natpmp.enabled: expected a boolean");
  expect_error(with("announce", "enabled = []"), 5, "announce.enabled: expected a boolean, got an array");
  expect_error(with("announce", "copies = 0"), 5, "announce.copies: 0 is out of range [1, 10]");
  expect_error(with("announce", "copies = 11"), 5, "announce.copies: 11 is out of range [1, 10]");
}

TEST_CASE("config errors: [nftables], [daemon]") {
  expect_error(with("nftables", "table = \"\""), 5, "nftables.table: '' is not an nftables table name");
  expect_error(with("nftables", "table = \"1pcpd\""), 5, "is not an nftables table name");
  expect_error(with("nftables", "table = \"pc pd\""), 5, "is not an nftables table name");
  expect_error(with("nftables", "table = 5"), 5, "nftables.table: expected a string");
  expect_error(with("nftables", "grace = -1"), 5, "nftables.grace: -1 is out of range [0, 86400]");
  expect_error(with("nftables", "grace = 86401"), 5, "nftables.grace: 86401 is out of range");
  expect_error(with("daemon", "state_dir = \"var/lib/pcpd\""), 5, "daemon.state_dir: 'var/lib/pcpd' is not an absolute path");
  expect_error(with("daemon", "state_dir = \"\""), 5, "is not an absolute path");
  expect_error(with("daemon", "journal = 1"), 5, "daemon.journal");
  expect_error(with("daemon", "journal_max_mb = 0"), 5, "daemon.journal_max_mb");
  expect_error(with("daemon", "port = 0"), 5, "daemon.port: 0 is out of range [1, 65535]");
  expect_error(with("daemon", "port = 70000"), 5, "daemon.port: 70000 is out of range");
  expect_error(with("daemon", "port = \"5351\""), 5, "daemon.port: expected an integer");
  expect_error(with("daemon", "log = \"syslog\""), 5, "daemon.log: 'syslog' is not auto, journal or stderr");
  expect_error(with("daemon", "log_level = \"verbose\""), 5, "daemon.log_level: 'verbose' is not debug, info, warning or error");
  expect_error(with("daemon", "log_level = 7"), 5, "daemon.log_level: expected a string");
}

TEST_CASE("config: parse_config_file reads a file and names it in errors") {
  char path[] = "/tmp/pcpd-config-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path);
    out << kMinimal << "[daemon]\nport = 99999\n";
  }
  try {
    (void)parse_config_file(path);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.file == path);
    CHECK(e.line == 5);
    CHECK(std::string(e.what()) == std::string(path) + ":5: daemon.port: 99999 is out of range [1, 65535]");
  }
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  CHECK(parse_config_file(path).file == path);
  std::remove(path);
  try {
    (void)parse_config_file(path);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.line == 0);
    CHECK(std::string(e.what()).find(std::string(path) + ": cannot open") == 0);
  }
}

TEST_CASE("config: the shipped packaging/pcpd.conf is valid and documents every key") {
  const std::string path = std::string(PCPD_SOURCE_DIR) + "/packaging/pcpd.conf";
  Config c = parse_config_file(path);
  CHECK(c.internal_interfaces == std::vector<std::string>{"lan0"});
  CHECK(c.external_interface == "wan0");
  // The example keeps the defaults (so it documents them).
  CHECK(c.policy.max_lifetime == 86400);
  CHECK(c.port == 5351);
  std::ifstream in(path);
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  for (const char* key :
       {"internal", "internal_prefixes", "external", "external_address", "min_lifetime",
        "max_lifetime", "port_range", "protocols", "max_per_client", "max_total", "max_filters",
        "allow_all_ports", "description_max", "denied_internal_ports", "nat44", "ipv6_firewall",
        "short_lifetime", "long_lifetime", "enabled", "allow", "copies", "table",
        "grace", "state_dir", "journal", "journal_max_mb", "port", "log", "log_level", "[interfaces]", "[mappings]", "[errors]",
        "[third_party]", "[natpmp]", "[announce]", "[nftables]", "[daemon]", "[checkpoint]",
        "option_code", "max_per_client", "rate_per_client", "burst_per_client", "elected_mark",
        "sticky_mark", "mapped_mark", "log_group", "control_socket", "[capability]", "names", "always"}) {
    CAPTURE(key);
    CHECK(text.find(key) != std::string::npos);
  }
}

// [capability] (draft-boucadair-hops-capability-discovery-00, docs/capability.md).
TEST_CASE("config capability: absent table -> no set, never sent (R-CAP-5)") {
  Config c = parse(kMinimal);
  CHECK_FALSE(c.policy.capabilities.has_value());
  CHECK_FALSE(c.policy.capability_always);
  CHECK(c.policy.option_codes.capability == 224);
  CHECK_FALSE(c.capability_auto);
  // A table without names: still no set; the code may move.
  Config d = parse(with("capability", "option_code = 250"));
  CHECK_FALSE(d.policy.capabilities.has_value());
  CHECK(d.policy.option_codes.capability == 250);
}

TEST_CASE("config capability: names, always and option_code") {
  Config c = parse(kMinimal + "[capability]\nnames = [\"nat44\", \"ipv6-firewall\", \"tcp\", \"udp\", \"nptv6\"]\n"
                              "always = true\noption_code = 230\n");
  REQUIRE(c.policy.capabilities.has_value());
  CHECK(c.policy.capabilities->names() ==
        std::vector<std::string>{"nat44", "ipv6-firewall", "nptv6", "tcp", "udp"});
  CHECK(c.policy.capability_always);
  CHECK(c.policy.option_codes.capability == 230);
  CHECK(c.capability_line == 5);
  CHECK_FALSE(c.capability_auto);
  // The transport bits follow mappings.protocols.
  Config s = parse(kMinimal + "[mappings]\nprotocols = [\"tcp\", \"sctp\", \"dccp\", \"udplite\"]\n"
                              "[capability]\nnames = [\"tcp\", \"sctp\", \"dccp\", \"udp-lite\"]\n");
  CHECK(s.policy.capabilities->to_string() == "tcp,udp-lite,dccp,sctp");
}

TEST_CASE("config capability: \"auto\" derives the set from the configuration") {
  SUBCASE("defaults with an external address: nat44, ipv6-firewall, tcp, udp") {
    Config c = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n"
                     "external_address = [\"203.0.113.1\"]\n[capability]\nnames = \"auto\"\n");
    CHECK(c.capability_auto);
    REQUIRE(c.policy.capabilities.has_value());
    CHECK(c.policy.capabilities->to_string() == "nat44,ipv6-firewall,tcp,udp");
    CHECK_FALSE(c.policy.capabilities->test(std::string_view("ipv4-firewall")));
  }
  SUBCASE("no external IPv4 address known yet: no nat44 (R-CAP-5: not guessed)") {
    Config c = parse(with("capability", "names = \"auto\""));
    CHECK(c.policy.capabilities->to_string() == "ipv6-firewall,tcp,udp");
  }
  SUBCASE("nat44 and ipv6_firewall off, other protocols") {
    Config c = parse(kMinimal + "[mappings]\nnat44 = false\nipv6_firewall = false\n"
                                "protocols = [\"udp\", \"sctp\", 47]\n[capability]\nnames = \"auto\"\n");
    CHECK(c.policy.capabilities->to_string() == "udp,sctp");
  }
  SUBCASE("derive_capabilities() again after the external address is known") {
    Config c = parse(with("capability", "names = \"auto\""));
    c.policy.external_v4 = {ip("203.0.113.9")};
    derive_capabilities(c);
    CHECK(c.policy.capabilities->to_string() == "nat44,ipv6-firewall,tcp,udp");
    // Not auto: left alone.
    Config d = parse(with("capability", "names = [\"tcp\", \"udp\"]"));
    d.policy.external_v4 = {ip("203.0.113.9")};
    derive_capabilities(d);
    CHECK(d.policy.capabilities->to_string() == "tcp,udp");
  }
}

TEST_CASE("config capability errors name file:line") {
  expect_error(with("capability", "names = [\"tcp\", \"udp\", \"warp\"]"), 5,
               "capability.names: unknown capability 'warp'");
  expect_error(kMinimal + "[capability]\nnames = [\n  \"tcp\",\n  \"NAT44\",\n  \"udp\"]\n", 7,
               "unknown capability 'NAT44'");
  expect_error(with("capability", "names = \"all\""), 5, "neither \"auto\" nor a list");
  expect_error(with("capability", "names = 3"), 5, "capability.names: expected \"auto\" or an array");
  expect_error(with("capability", "names = [\"tcp\", 1]"), 5, "expected strings");
  expect_error(with("capability", "names = [\"tcp\", \"udp\", \"tcp\"]"), 5, "'tcp' is listed twice");
  expect_error(with("capability", "names = [\"authentication\", \"tcp\", \"udp\"]"), 5,
               "does not implement PCP authentication");
  expect_error(with("capability", "names = [\"port-set\", \"tcp\", \"udp\"]"), 5,
               "does not implement the PORT_SET option");
  expect_error(with("capability", "names = [\"tcp\", \"udp\", \"sctp\"]"), 5,
               "'sctp' is not in mappings.protocols");
  expect_error(with("capability", "names = [\"nat44\", \"tcp\"]"), 5,
               "leaves out 'udp', which mappings.protocols maps");
  expect_error(with("capability", "always = true"), 5, "capability.always: needs capability.names");
  expect_error(with("capability", "option_code = 100"), 5, "out of range [128, 254]");
  expect_error(with("capability", "option_code = 129"), 5, "DESCRIPTION, PREFIX64 or PORT_SET");
  expect_error(with("capability", "option_code = 192"), 5,
               "capability.option_code: collides with the CHECKPOINT_REQUIRED option code");
  expect_error(with("capability", "unknown = 1"), 5, "unknown key 'unknown' in [capability]");
  expect_error(with("capability", "always = 1"), 5, "expected a boolean");
  // Moving both codes apart is fine; moving checkpoint onto capability's is not.
  Config c = parse(kMinimal + "[checkpoint]\noption_code = 224\n[capability]\noption_code = 225\n");
  CHECK(c.policy.option_codes.checkpoint_required == 224);
  CHECK(c.policy.option_codes.capability == 225);
  expect_error(kMinimal + "[capability]\noption_code = 200\n[checkpoint]\noption_code = 200\n", 7,
               "checkpoint.option_code: collides with the CAPABILITY option code");
}

TEST_CASE("config: [[static]] port forwards") {
  const Config c = parse(kMinimal +
                         "[[static]]\nprotocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\nexternal_port = 2222\n"
                         "description = \"nas\"\ncheckpoint = true\n"
                         "[[static]]\nprotocol = \"udp\"\ninternal = \"[2001:db8:1::20]:51820\"\n");
  REQUIRE(c.statics.size() == 2);
  CHECK(c.statics[0].protocol == 6);
  CHECK(c.statics[0].internal_addr == *wire::IpAddr::parse("192.0.2.20"));
  CHECK(c.statics[0].internal_port == 22);
  CHECK(c.statics[0].external_port == 2222);
  CHECK(c.statics[0].external_addr.is_unspecified());
  CHECK(c.statics[0].description == "nas");
  CHECK(c.statics[0].checkpoint);
  CHECK(c.statics[0].line == 6);
  CHECK(c.statics[1].protocol == 17);
  CHECK(c.statics[1].external_port == 51820);  // the internal port: a pinhole
  CHECK_FALSE(c.statics[1].checkpoint);
  // Named external address: one of interfaces.external_address.
  const Config two = parse("[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\n"
                           "external_address = [\"203.0.113.1\", \"203.0.113.2\"]\n"
                           "[[static]]\nprotocol = \"tcp\"\ninternal = \"192.0.2.20:80\"\nexternal_address = \"203.0.113.2\"\n"
                           "[[static]]\nprotocol = \"tcp\"\ninternal = \"192.0.2.21:80\"\nexternal_address = \"203.0.113.1\"\n");
  REQUIRE(two.statics.size() == 2);
  CHECK(two.statics[0].external_addr == *wire::IpAddr::parse("203.0.113.2"));
}

TEST_CASE("config errors: [[static]]") {
  const std::string h = kMinimal + "[[static]]\n";  // the entry's keys start at line 5
  expect_error(h + "internal = \"192.0.2.20:22\"\n", 5, "protocol is required");
  expect_error(h + "protocol = \"icmp\"\ninternal = \"192.0.2.20:22\"\n", 5, "is not one of tcp, udp");
  expect_error(h + "protocol = \"tcp\"\n", 4, "internal is required");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20\"\n", 6, "is not ADDRESS:PORT");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"2001:db8::1:22\"\n", 6, "is not ADDRESS:PORT");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:0\"\n", 6, "is not ADDRESS:PORT");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"224.0.0.1:22\"\n", 6, "unicast");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\nexternal_port = 5351\n", 7, "PCP port");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"[2001:db8::1]:22\"\nexternal_port = 2222\n", 7,
               "keeps the internal port");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\nexternal_address = \"203.0.113.9\"\n", 7,
               "not in interfaces.external_address");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\nbogus = 1\n", 7, "unknown key 'bogus' in [static]");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\n[mappings]\nnat44 = false\n", 6,
               "needs mappings.nat44 = true");
  // Two entries for one endpoint, or on one external port.
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\n[[static]]\nprotocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\nexternal_port = 2\n",
               9, "same internal endpoint and protocol as line 6");
  expect_error(h + "protocol = \"tcp\"\ninternal = \"192.0.2.20:22\"\n[[static]]\nprotocol = \"tcp\"\ninternal = \"192.0.2.21:22\"\n",
               9, "external port 22 is already forwarded at line 6");
  expect_error(kMinimal + "static = 5\n", 4, "unknown key 'static' in [interfaces]");
  expect_error("static = 5\n" + kMinimal, 1, "expected [[static]] tables");
}
