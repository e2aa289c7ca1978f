// SPDX-License-Identifier: GPL-2.0-or-later
#include "config/interface_table.hpp"

#include "config/config_parser.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

namespace pcpd::config {

namespace {

std::uint8_t mask_length(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const unsigned char* bytes = nullptr;
  std::size_t n = 0;
  if (mask->sa_family == AF_INET) {
    bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else if (mask->sa_family == AF_INET6) {
    bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  } else {
    return 0;
  }
  int len = 0;
  for (std::size_t i = 0; i < n; ++i) len += std::popcount(static_cast<unsigned>(bytes[i]));
  return static_cast<std::uint8_t>(len);
}

Interface& entry(InterfaceTable& table, const char* name) {
  for (auto& i : table.interfaces)
    if (i.name == name) return i;
  table.interfaces.push_back(Interface{name, ::if_nametoindex(name), {}});
  return table.interfaces.back();
}

}  // namespace

const Interface* InterfaceTable::find(std::string_view name) const {
  for (const auto& i : interfaces)
    if (i.name == name) return &i;
  return nullptr;
}

InterfaceTable system_interfaces() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throw std::system_error(errno, std::generic_category(), "getifaddrs");
  std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, ::freeifaddrs);
  InterfaceTable table;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_name == nullptr) continue;
    Interface& itf = entry(table, i->ifa_name);
    if (i->ifa_addr == nullptr) continue;
    InterfaceAddress a;
    if (i->ifa_addr->sa_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, i->ifa_addr, sizeof sin);
      a.addr = wire::IpAddr::from_v4(ntohl(sin.sin_addr.s_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, i->ifa_addr, sizeof sin6);
      a.addr = wire::IpAddr::from_v6(sin6.sin6_addr.s6_addr);
    } else {
      continue;  // AF_PACKET: the interface exists, it is in the table now
    }
    a.prefix_len = mask_length(i->ifa_netmask);
    itf.addrs.push_back(a);
  }
  return table;
}

std::vector<wire::IpAddr> external_v4_of(const InterfaceTable& table, std::string_view name) {
  std::vector<wire::IpAddr> out;
  const Interface* itf = table.find(name);
  if (itf == nullptr) return out;
  for (const auto& a : itf->addrs)
    if (a.addr.is_v4() && !is_link_local(a.addr) &&
        std::find(out.begin(), out.end(), a.addr) == out.end())
      out.push_back(a.addr);
  return out;
}

bool is_link_local(const wire::IpAddr& addr) {
  if (addr.is_v4()) return (addr.v4() & 0xffff0000u) == 0xa9fe0000u;  // 169.254.0.0/16
  return addr.bytes[0] == 0xfe && (addr.bytes[1] & 0xc0) == 0x80;    // fe80::/10
}

bool is_global_v6(const wire::IpAddr& addr) {
  if (addr.is_v4() || addr.is_unspecified() || is_link_local(addr)) return false;
  if (addr.bytes[0] == 0xff) return false;  // multicast
  static constexpr wire::IpAddr kLoopback = [] {
    wire::IpAddr a;
    a.bytes[15] = 1;
    return a;
  }();
  return addr != kLoopback;
}

std::vector<std::string> resolve_interfaces(Config& c, const InterfaceTable& table) {
  std::vector<std::string> warnings;
  std::vector<wire::Prefix> derived;
  for (const auto& name : c.internal_interfaces) {
    const Interface* itf = table.find(name);
    if (itf == nullptr) {
      if (!c.internal_prefixes_set)
        throw ConfigError(c.file, c.internal_line,
                          "interfaces.internal: no interface named '" + name + "' on this host");
      warnings.push_back("internal interface " + name + " does not exist (yet); reload once it does");
      continue;
    }
    for (const auto& a : itf->addrs) {
      if (is_link_local(a.addr)) continue;
      if (a.addr.is_v4() ? a.prefix_len > 32 : a.prefix_len > 128) continue;
      unsigned len = a.addr.is_v4() ? a.prefix_len + 96u : a.prefix_len;
      wire::Prefix p{a.addr, static_cast<std::uint8_t>(len)};
      for (unsigned bit = len; bit < 128; ++bit)
        p.addr.bytes[bit / 8] = static_cast<std::uint8_t>(p.addr.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
      if (std::find(derived.begin(), derived.end(), p) == derived.end()) derived.push_back(p);
    }
  }
  if (!c.internal_prefixes_set) {
    if (derived.empty())
      throw ConfigError(c.file, c.internal_line,
                        "interfaces.internal: no IPv4 or global IPv6 address on the internal "
                        "interfaces to derive the accepted prefixes from; set "
                        "interfaces.internal_prefixes");
    c.internal_prefixes = std::move(derived);
  }

  if (c.policy.nat44 && !c.external_address_set) {
    c.policy.external_v4.clear();
    const Interface* ext = table.find(c.external_interface);
    if (ext == nullptr) {
      warnings.push_back("external interface " + c.external_interface +
                         " does not exist (yet): no external IPv4 address, NAT44 requests get "
                         "NETWORK_FAILURE until it has one (pcpd follows its addresses)");
    } else {
      c.policy.external_v4 = external_v4_of(table, c.external_interface);
      if (c.policy.external_v4.empty())
        warnings.push_back("external interface " + c.external_interface +
                           " has no IPv4 address (yet): NAT44 requests get NETWORK_FAILURE until "
                           "it has one (pcpd follows its addresses)");
    }
  }
  // hops-00 `auto`: nat44 depends on the external address found just now.
  derive_capabilities(c);
  return warnings;
}

}  // namespace pcpd::config
