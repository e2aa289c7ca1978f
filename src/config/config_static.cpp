// SPDX-License-Identifier: GPL-2.0-or-later
// [[static]]: the operator's permanent port forwards (docs/interfaces.md "[[static]]").
#include "config/config_section.hpp"

#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

#include "wire/capability.hpp"

namespace pcpd::config::detail {
namespace {

// One [[static]] table (docs/interfaces.md "[[static]]").
Config::Static parse_static_entry(const Section& s, const Config& c) {
  s.only({"protocol", "internal", "external_port", "external_address", "description", "checkpoint"});
  Config::Static st;
  st.line = s.line("internal");
  const auto proto = s.string("protocol");
  if (!proto) s.fail(st.line, "[[static]]: protocol is required");
  const auto number = protocol_number(*proto);
  // RFC 6887 §11.1: a mapping with a port needs a protocol with ports.
  constexpr std::uint8_t kWithPorts[] = {6, 17, 33, 132, 136};
  if (!number || std::find(std::begin(kWithPorts), std::end(kWithPorts), *number) == std::end(kWithPorts))
    s.fail_key("protocol", "'" + *proto + "' is not one of tcp, udp, sctp, dccp, udplite (a static mapping forwards a port)");
  st.protocol = *number;
  const auto internal = s.string("internal");
  if (!internal) s.fail(st.line, "[[static]]: internal is required (\"192.0.2.10:22\" or \"[2001:db8::10]:22\")");
  const auto ep = wire::parse_endpoint(*internal);
  if (!ep || ep->port == 0) s.fail_key("internal", "'" + *internal + "' is not ADDRESS:PORT (IPv6 in brackets, port 1-65535)");
  st.internal_addr = ep->addr;
  st.internal_port = ep->port;
  const auto& b = st.internal_addr.bytes;
  const bool multicast = st.internal_addr.is_v4() ? (b[12] & 0xf0) == 0xe0 : b[0] == 0xff;
  const bool loopback = st.internal_addr.is_v4() ? b[12] == 127 : st.internal_addr == *wire::IpAddr::parse("::1");
  if (st.internal_addr.is_unspecified() || multicast || loopback)
    s.fail_key("internal", "'" + *internal + "' is not a host's unicast address");
  const bool v4 = st.internal_addr.is_v4();
  if (v4 && !c.policy.nat44) s.fail_key("internal", "an IPv4 static mapping needs mappings.nat44 = true");
  if (!v4 && !c.policy.ipv6_firewall) s.fail_key("internal", "an IPv6 static mapping needs mappings.ipv6_firewall = true");
  st.external_port = st.internal_port;
  if (auto port = s.integer("external_port", 1, 65535)) {
    // R-MAP-11: an IPv6 pinhole is the internal endpoint itself.
    if (!v4 && *port != st.internal_port) s.fail_key("external_port", "an IPv6 pinhole keeps the internal port");
    st.external_port = static_cast<std::uint16_t>(*port);
  }
  // R-MAP-15: the PCP ports of our own external addresses are never mapped.
  if (v4 && (st.external_port == 5350 || st.external_port == 5351))
    s.fail_key(s.get("external_port") != nullptr ? "external_port" : "internal",
               "external port " + std::to_string(st.external_port) + " is the PCP port of this router");
  if (auto text = s.string("external_address")) {
    auto a = wire::IpAddr::parse(*text);
    if (!v4) s.fail_key("external_address", "an IPv6 pinhole has no external address of its own");
    if (!a || !a->is_v4()) s.fail_key("external_address", "'" + *text + "' is not an IPv4 address");
    const auto& pool = c.policy.external_v4;
    if (!c.external_address_set || std::find(pool.begin(), pool.end(), *a) == pool.end())
      s.fail_key("external_address", "'" + *text + "' is not in interfaces.external_address");
    st.external_addr = *a;
  }
  if (auto d = s.string("description")) {
    // RFC 7220 §3: the same bound as a client's DESCRIPTION.
    if (d->size() > c.policy.description_max)
      s.fail_key("description", "longer than mappings.description_max (" + std::to_string(c.policy.description_max) + " bytes)");
    st.description = *d;
  }
  s.boolean("checkpoint", st.checkpoint);
  return st;
}

// [[static]]: an array of tables, after [interfaces] and [mappings] (it reads both).
}  // namespace

void parse_statics(const toml::node* node, const std::string& file, Config& c) {
  if (node == nullptr) return;
  const auto* arr = node->as_array();
  if (arr == nullptr || !arr->is_array_of_tables())
    throw ConfigError(file, line_of(*node), "static: expected [[static]] tables");
  for (const auto& el : *arr) {
    const auto* t = el.as_table();
    Config::Static st = parse_static_entry(Section(file, "static", t, line_of(el)), c);
    for (const Config::Static& o : c.statics) {
      if (o.protocol == st.protocol && o.internal_addr == st.internal_addr && o.internal_port == st.internal_port)
        throw ConfigError(file, st.line, "[[static]]: the same internal endpoint and protocol as line " + std::to_string(o.line));
      // Same external port: a clash unless both name different external addresses.
      const bool both_v4 = o.internal_addr.is_v4() && st.internal_addr.is_v4();
      const bool other_addr = !o.external_addr.is_unspecified() && !st.external_addr.is_unspecified() &&
                              o.external_addr != st.external_addr;
      if (both_v4 && o.protocol == st.protocol && o.external_port == st.external_port && !other_addr)
        throw ConfigError(file, st.line, "[[static]]: external port " + std::to_string(st.external_port) +
                                             " is already forwarded at line " + std::to_string(o.line));
    }
    c.statics.push_back(std::move(st));
  }
}


}  // namespace pcpd::config::detail
