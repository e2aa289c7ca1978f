// SPDX-License-Identifier: GPL-2.0-or-later
// Every table of pcpd.conf but [[static]], one parse_* function each (keys: docs/interfaces.md).
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
#include "wire/protocol_names.hpp"
#include "config/config_parser.hpp"

namespace pcpd::config::detail {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::optional<std::uint8_t> protocol_number(std::string_view name) {
  const auto p = wire::parse_protocol(name);
  if (!p || *p == 0) return std::nullopt;  // "all" is no protocol of a mapping
  return p;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || p != text.data() + text.size() || text.empty() || n < 1 || n > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(n);
}

bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == '/' || c == ':' || u <= 0x20 || u >= 0x7f;
  });
}

bool valid_nft_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void parse_interfaces(const Section& s, Config& c) {
  s.only({"internal", "internal_prefixes", "external", "external_address"});
  const auto* internal = s.array("internal");
  if (internal == nullptr) s.fail(s.line("internal"), "interfaces.internal is required");
  c.internal_line = s.line("internal");
  s.each_string("internal", *internal, [&](const std::string& name, int line) {
    if (!valid_ifname(name)) s.fail(line, "interfaces.internal: '" + name + "' is not an interface name");
    if (std::find(c.internal_interfaces.begin(), c.internal_interfaces.end(), name) !=
        c.internal_interfaces.end())
      s.fail(line, "interfaces.internal: '" + name + "' is listed twice");
    c.internal_interfaces.push_back(name);
  });
  if (c.internal_interfaces.empty()) s.fail_key("internal", "needs at least one interface");

  auto external = s.string("external");
  if (!external) s.fail(s.line("external"), "interfaces.external is required");
  c.external_line = s.line("external");
  if (!valid_ifname(*external)) s.fail_key("external", "'" + *external + "' is not an interface name");
  if (std::find(c.internal_interfaces.begin(), c.internal_interfaces.end(), *external) !=
      c.internal_interfaces.end())
    s.fail_key("external", "'" + *external + "' is also an internal interface");
  c.external_interface = *external;

  if (const auto* prefixes = s.array("internal_prefixes")) {
    s.each_string("internal_prefixes", *prefixes, [&](const std::string& text, int line) {
      auto p = wire::Prefix::parse(text);
      if (!p) s.fail(line, "interfaces.internal_prefixes: '" + text + "' is not an address prefix");
      c.internal_prefixes.push_back(*p);
    });
    if (c.internal_prefixes.empty())
      s.fail_key("internal_prefixes", "needs at least one prefix (or leave it out for the default)");
    c.internal_prefixes_set = true;
  }

  if (const auto* addrs = s.array("external_address")) {
    s.each_string("external_address", *addrs, [&](const std::string& text, int line) {
      auto a = wire::IpAddr::parse(text);
      if (!a) s.fail(line, "interfaces.external_address: '" + text + "' is not an address");
      if (!a->is_v4()) s.fail(line, "interfaces.external_address: '" + text + "' is not an IPv4 address");
      if (a->is_unspecified())
        s.fail(line, "interfaces.external_address: '" + text + "' is not a usable address");
      if (std::find(c.policy.external_v4.begin(), c.policy.external_v4.end(), *a) !=
          c.policy.external_v4.end())
        s.fail(line, "interfaces.external_address: '" + text + "' is listed twice");
      c.policy.external_v4.push_back(*a);
    });
    if (c.policy.external_v4.empty())
      s.fail_key("external_address", "needs at least one address (or leave it out for the default)");
    c.external_address_set = true;
  }
}

void parse_mappings(const Section& s, Config& c) {
  s.only({"min_lifetime", "max_lifetime", "port_range", "protocols", "max_per_client", "max_total",
          "max_filters", "allow_all_ports", "description_max", "denied_internal_ports", "nat44",
          "ipv6_firewall", "nonce_change"});
  auto& p = c.policy;
  s.u32("min_lifetime", p.min_lifetime, 1);
  s.u32("max_lifetime", p.max_lifetime, 1);
  if (p.min_lifetime > p.max_lifetime)
    s.fail(std::max(s.line("min_lifetime"), s.line("max_lifetime")),
           "mappings.min_lifetime (" + std::to_string(p.min_lifetime) +
               ") is greater than mappings.max_lifetime (" + std::to_string(p.max_lifetime) + ")");

  if (auto range = s.string("port_range")) {
    std::string_view r = *range;
    auto dash = r.find('-');
    auto lo = parse_port(r.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : parse_port(r.substr(dash + 1));
    if (!lo || !hi)
      s.fail_key("port_range", "'" + *range + "' is not a port range like \"1024-65535\" (ports 1-65535)");
    if (*lo > *hi) s.fail_key("port_range", "'" + *range + "': the first port is greater than the last");
    // R-MAP-15: 5350 and 5351 are never handed out, so a range of only those is empty.
    if (*lo >= wire::kClientPort && *hi <= wire::kServerPort)
      s.fail_key("port_range", "'" + *range + "' holds only 5350/5351, which are never handed out");
    p.port_min = *lo;
    p.port_max = *hi;
  }

  if (const auto* protos = s.array("protocols")) {
    p.protocols.clear();
    for (const auto& el : *protos) {
      std::optional<std::uint8_t> num;
      std::string shown;
      if (const auto* str = el.as_string()) {
        shown = str->get();
        num = protocol_number(shown);
      } else if (const auto* i = el.as_integer()) {
        shown = std::to_string(i->get());
        if (i->get() >= 1 && i->get() <= 255) num = static_cast<std::uint8_t>(i->get());
      } else {
        s.fail(line_of(el), "mappings.protocols: expected protocol names or numbers, got " +
                                std::string(type_name(el.type())));
      }
      if (!num)
        s.fail(line_of(el), "mappings.protocols: '" + shown +
                                "' is not tcp, udp, sctp, dccp, udplite or a number 1-255");
      if (std::find(p.protocols.begin(), p.protocols.end(), *num) != p.protocols.end())
        s.fail(line_of(el), "mappings.protocols: '" + shown + "' is listed twice");
      p.protocols.push_back(*num);
    }
    if (p.protocols.empty()) s.fail_key("protocols", "needs at least one protocol");
  }

  s.u32("max_per_client", p.max_mappings_per_client, 1);
  s.u32("max_total", p.max_mappings, 1);
  s.u32("max_filters", p.max_filters_per_mapping, 0, static_cast<std::int64_t>(wire::kMaxFilters));
  s.boolean("allow_all_ports", p.allow_all_ports);
  if (auto nc = s.string("nonce_change")) {
    if (*nc != "refuse" && *nc != "same_host")
      s.fail_key("nonce_change", "'" + *nc + "' is not refuse or same_host");
    p.nonce_change = *nc == "same_host" ? core::Policy::NonceChange::SameHost : core::Policy::NonceChange::Refuse;
  }
  s.u32("description_max", p.description_max, 0, static_cast<std::int64_t>(wire::kMaxDescription));

  if (const auto* ports = s.array("denied_internal_ports")) {
    for (const auto& el : *ports) {
      const auto* i = el.as_integer();
      if (i == nullptr)
        s.fail(line_of(el), "mappings.denied_internal_ports: expected port numbers, got " +
                                std::string(type_name(el.type())));
      if (i->get() < 1 || i->get() > 65535)
        s.fail(line_of(el), "mappings.denied_internal_ports: " + std::to_string(i->get()) +
                                " is out of range [1, 65535]");
      auto port = static_cast<std::uint16_t>(i->get());
      if (std::find(p.denied_internal_ports.begin(), p.denied_internal_ports.end(), port) ==
          p.denied_internal_ports.end())
        p.denied_internal_ports.push_back(port);
    }
  }
  s.boolean("nat44", p.nat44);
  s.boolean("ipv6_firewall", p.ipv6_firewall);
}

void parse_errors(const Section& s, Config& c) {
  s.only({"short_lifetime", "long_lifetime"});
  s.u32("short_lifetime", c.policy.short_error_lifetime, 1);
  s.u32("long_lifetime", c.policy.long_error_lifetime, 1);
}

void parse_third_party(const Section& s, Config& c) {
  s.only({"enabled", "allow"});
  s.boolean("enabled", c.policy.third_party);
  if (const auto* allow = s.array("allow")) {
    s.each_string("allow", *allow, [&](const std::string& text, int line) {
      auto p = wire::Prefix::parse(text);
      if (!p) s.fail(line, "third_party.allow: '" + text + "' is not an address prefix");
      c.policy.third_party_allow.push_back(*p);
    });
  }
}

void parse_natpmp(const Section& s, Config& c) {
  s.only({"enabled"});
  s.boolean("enabled", c.policy.natpmp);
}

void parse_announce(const Section& s, Config& c) {
  s.only({"enabled", "copies"});
  s.boolean("enabled", c.announce);
  // RFC 6887 §14.1.3: up to 10 copies.
  s.u32("copies", c.announce_copies, 1, 10);
}

void parse_nftables(const Section& s, Config& c) {
  s.only({"table", "grace"});
  if (auto t = s.string("table")) {
    if (!valid_nft_name(*t))
      s.fail_key("table", "'" + *t + "' is not an nftables table name (letter, then letters, digits, _ or -)");
    c.nft_table = *t;
  }
  s.u32("grace", c.nft_grace, 0, 86400);
}

// [checkpoint]: CHECKPOINT_REQUIRED (RFC 7767) limits and the ct mark bits of the HA recipe.
void parse_checkpoint(const Section& s, Config& c) {
  s.only({"enabled", "option_code", "max_total", "max_per_client", "rate_per_client",
          "burst_per_client", "elected_mark", "sticky_mark", "mapped_mark", "log_group"});
  auto& k = c.policy.checkpoint;
  s.boolean("enabled", k.enabled);
  // RFC 6887 §7.3: 128..255 are optional-to-process, which is what RFC 7767 asks for; the two
  // reserved codes and the codes the codec already gives a meaning are refused.
  if (auto code = s.integer("option_code", 128, 254)) {
    if (*code == 128 || *code == 129 || *code == 130)
      s.fail_key("option_code", std::to_string(*code) + " is DESCRIPTION, PREFIX64 or PORT_SET");
    c.policy.option_codes.checkpoint_required = static_cast<std::uint8_t>(*code);
  }
  s.u32("max_total", k.max_total, 0);
  s.u32("max_per_client", k.max_per_client, 0);
  s.number("rate_per_client", k.rate_per_client, 0.0, 1e6);
  s.number("burst_per_client", k.burst_per_client, 1.0, 1e6);
  auto single_bit = [&](std::string_view key, std::uint32_t& out) {
    if (auto v = s.integer(key, 1, 0x80000000LL)) {
      if ((*v & (*v - 1)) != 0) s.fail_key(key, std::to_string(*v) + " is not a single bit");
      out = static_cast<std::uint32_t>(*v);
    }
  };
  single_bit("elected_mark", c.elected_mark);
  single_bit("sticky_mark", c.sticky_mark);
  single_bit("mapped_mark", c.mapped_mark);
  if (c.elected_mark == c.sticky_mark)
    s.fail_key("sticky_mark", "must differ from elected_mark");
  // 0x4 is pcpd.nft's IPv6 pinhole bit, which the operator's forward chain accepts.
  if (c.mapped_mark == c.elected_mark || c.mapped_mark == c.sticky_mark || c.mapped_mark == 0x4)
    s.fail_key("mapped_mark", "must differ from elected_mark, sticky_mark and the pinhole bit 0x4");
  if (auto g = s.integer("log_group", 0, 65535)) c.log_group = static_cast<std::uint16_t>(*g);
}

// [limits]: request rate limits (RFC 6887 §18.1, R-QUOTA-5, R-SEC-3), token buckets checked
// before decoding (core/rate_limiter.hpp); a rate of 0 turns its bucket off.
void parse_limits(const Section& s, Config& c) {
  s.only({"client_rate", "client_burst", "global_rate", "global_burst", "prefer_failure_rate",
          "prefer_failure_burst"});
  auto& k = c.policy.rate_limit;
  s.number("client_rate", k.client_rate, 0.0, 1e9);
  s.number("client_burst", k.client_burst, 1.0, 1e9);
  s.number("global_rate", k.global_rate, 0.0, 1e9);
  // A burst below 1 would refuse every request: the range starts at 1.
  s.number("global_burst", k.global_burst, 1.0, 1e9);
  s.number("prefer_failure_rate", k.prefer_failure_rate, 0.0, 1e9);
  s.number("prefer_failure_burst", k.prefer_failure_burst, 1.0, 1e9);
}

// [capability]: the CAPABILITY option (draft-boucadair-hops-capability-discovery-00).
void parse_capability(const Section& s, Config& c) {
  s.only({"names", "option_code", "always"});
  auto& p = c.policy;
  // RFC 6887 §7.3: 128..254 are optional-to-process, the range hops-00 asks IANA for; the codes
  // the codec gives another meaning are refused (CHECKPOINT_REQUIRED: parse_config_text).
  if (auto code = s.integer("option_code", 128, 254)) {
    if (*code == 128 || *code == 129 || *code == 130)
      s.fail_key("option_code", std::to_string(*code) + " is DESCRIPTION, PREFIX64 or PORT_SET");
    p.option_codes.capability = static_cast<std::uint8_t>(*code);
  }
  s.boolean("always", p.capability_always);
  const auto* names = s.get("names");
  c.capability_line = s.line("names");
  if (names == nullptr) {
    // R-CAP-5: no set configured, none is ever sent.
    if (p.capability_always) s.fail_key("always", "needs capability.names");
    return;
  }
  if (const auto* text = names->as_string()) {
    if (text->get() != "auto")
      s.fail_key("names", "'" + text->get() + "' is neither \"auto\" nor a list of capability names");
    c.capability_auto = true;
    derive_capabilities(c);
    return;
  }
  const auto* list = names->as_array();
  if (list == nullptr) s.wrong_type("names", *names, "\"auto\" or an array of names");
  wire::CapabilitySet set;
  s.each_string("names", *list, [&](const std::string& name, int line) {
    const wire::CapabilityBit* bit = wire::capability_by_name(name);
    if (bit == nullptr) {
      std::string known;
      for (const auto& b : wire::kCapabilityBits) {
        if (b.bit == wire::kCapabilityAuthBit || b.name == "port-set") continue;
        known += known.empty() ? "" : ", ";
        known += b.name;
      }
      s.fail(line, "capability.names: unknown capability '" + name + "' (known: " + known + ")");
    }
    // Claims about pcpd itself that would be false (R-CAP-4: the bits it really supports).
    if (bit->bit == wire::kCapabilityAuthBit)
      s.fail(line, "capability.names: pcpd does not implement PCP authentication (RFC 7652)");
    if (bit->name == "port-set")
      s.fail(line, "capability.names: pcpd does not implement the PORT_SET option (RFC 7753)");
    if (set.test(bit->bit)) s.fail(line, "capability.names: '" + name + "' is listed twice");
    // The transport bits must match mappings.protocols: core refuses a protocol whose bit is
    // clear (R-CAP-8), and a set bit for a protocol pcpd does not map would be a false claim.
    if (bit->protocol != 0 &&
        std::find(p.protocols.begin(), p.protocols.end(), bit->protocol) == p.protocols.end())
      s.fail(line, "capability.names: '" + name + "' is not in mappings.protocols");
    set.set(bit->bit);
  });
  for (std::uint8_t proto : p.protocols) {
    const auto bit = wire::capability_bit_for_protocol(proto);
    if (bit && !set.test(*bit))
      s.fail_key("names", "leaves out '" + std::string(wire::capability_by_bit(*bit)->name) +
                              "', which mappings.protocols maps (its MAP/PEER requests would get "
                              "UNSUPP_PROTOCOL); add it or remove it from mappings.protocols");
  }
  p.capabilities = set;
}

// [ha]: the hot-standby peer link (src/pcpd/ha_peer.hpp).
void parse_ha(const Section& s, Config& c) {
  s.only({"peer", "listen", "port", "key_file", "scope", "ack_timeout_ms", "role_file"});
  auto& h = c.ha;
  bool peer_port_given = false;
  if (auto p = s.string("peer")) {
    // "198.51.100.2", "198.51.100.2:5352", "[2001:db8::2]:5352" or "2001:db8::2".
    std::string_view text = *p;
    std::optional<std::uint16_t> port;
    if (!text.empty() && text.front() == '[') {
      const auto close = text.find(']');
      if (close == std::string_view::npos) s.fail_key("peer", "'" + *p + "': missing ']'");
      if (close + 1 < text.size()) {
        if (text[close + 1] != ':' || !(port = parse_port(text.substr(close + 2))))
          s.fail_key("peer", "'" + *p + "': expected [address]:port");
      }
      text = text.substr(1, close - 1);
    } else if (const auto colon = text.find(':');
               colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
      if (!(port = parse_port(text.substr(colon + 1))) || *port == 0)
        s.fail_key("peer", "'" + *p + "': expected address[:port]");
      text = text.substr(0, colon);
    }
    auto a = wire::IpAddr::parse(text);
    if (!a || a->is_unspecified()) s.fail_key("peer", "'" + *p + "' is not an IP address[:port]");
    h.peer = *a;
    if (port) h.peer_port = *port;
    peer_port_given = port.has_value();
    h.enabled = true;
  }
  if (auto l = s.string("listen")) {
    auto a = wire::IpAddr::parse(*l);
    if (!a) s.fail_key("listen", "'" + *l + "' is not an IP address");
    h.listen = *a;
  }
  if (auto port = s.integer("port", 1, 65535)) h.port = static_cast<std::uint16_t>(*port);
  if (!peer_port_given) h.peer_port = h.port;  // the peer listens on the same port by default
  if (auto f = s.string("key_file")) {
    if (f->empty() || f->front() != '/') s.fail_key("key_file", "'" + *f + "' is not an absolute path");
    h.key_file = *f;
  }
  h.key_file_line = s.line("key_file");
  if (auto f = s.string("role_file")) {
    if (!f->empty() && f->front() != '/') s.fail_key("role_file", "'" + *f + "' is not an absolute path");
    h.role_file = *f;
  }
  if (auto sc = s.string("scope")) {
    if (*sc != "elected" && *sc != "all") s.fail_key("scope", "'" + *sc + "' is not elected or all");
    h.scope_all = *sc == "all";
  }
  // RFC 7767 §3: the response waits at most this long for the peer.
  s.u32("ack_timeout_ms", h.ack_timeout_ms, 1, 10000);
  if (!h.enabled && (s.get("listen") || s.get("key_file") || s.get("scope") || s.get("port") ||
                     s.get("ack_timeout_ms") || s.get("role_file")))
    s.fail(s.line("listen"), "[ha] needs peer (the other router's address on the sync network)");
  if (h.listen && h.listen->is_v4() != h.peer.is_v4())
    s.fail_key("listen", "address family differs from ha.peer");
}

void parse_daemon(const Section& s, Config& c) {
  s.only({"state_dir", "journal", "journal_max_mb", "port", "log", "log_level", "control_socket"});
  s.boolean("journal", c.journal);
  if (auto mb = s.integer("journal_max_mb", 1, 65536)) c.journal_max_mb = static_cast<std::uint32_t>(*mb);
  if (auto path = s.string("control_socket")) {
    if (path->empty() || path->front() != '/' || path->size() >= 108)
      s.fail_key("control_socket", "'" + *path + "' is not an absolute path shorter than 108 bytes");
    c.control_socket = *path;
  }
  if (auto dir = s.string("state_dir")) {
    if (dir->empty() || dir->front() != '/') s.fail_key("state_dir", "'" + *dir + "' is not an absolute path");
    c.state_dir = *dir;
  }
  if (auto port = s.integer("port", 1, 65535)) c.port = static_cast<std::uint16_t>(*port);
  if (auto t = s.string("log")) {
    auto target = log::parse_target(*t);
    if (!target) s.fail_key("log", "'" + *t + "' is not auto, journal or stderr");
    c.log_target = *target;
  }
  if (auto l = s.string("log_level")) {
    auto level = log::parse_level(*l);
    if (!level) s.fail_key("log_level", "'" + *l + "' is not debug, info, warning or error");
    c.log_level = *level;
  }
}

}  // namespace pcpd::config::detail
