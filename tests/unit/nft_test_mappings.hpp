// SPDX-License-Identifier: GPL-2.0-or-later
// Sample mappings for the nft tests (unit and kernel). Documentation addresses only.
#pragma once

#include "core/mapping.hpp"

namespace pcpd::nft_test {

inline wire::IpAddr ip(const char* text) { return *wire::IpAddr::parse(text); }

inline wire::Nonce nonce(std::uint8_t seed) {
  wire::Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(seed + i * 17);
  return n;
}

inline core::Mapping map4(std::uint16_t ext_port, std::uint16_t int_port = 80, const char* internal = "192.0.2.10") {
  core::Mapping m;
  m.kind = core::MappingKind::Map;
  m.protocol = 6;
  m.internal_addr = ip(internal);
  m.internal_port = int_port;
  m.external_addr = ip("203.0.113.1");
  m.external_port = ext_port;
  m.client_addr = m.internal_addr;
  m.nonce = nonce(static_cast<std::uint8_t>(ext_port));
  m.lifetime = 3600;
  return m;
}

inline core::Mapping pin6(std::uint16_t port, const char* internal = "2001:db8:1::10") {
  core::Mapping m;
  m.kind = core::MappingKind::Map;
  m.protocol = 17;
  m.internal_addr = ip(internal);
  m.internal_port = port;
  m.external_addr = m.internal_addr;
  m.external_port = port;
  m.client_addr = m.internal_addr;
  m.nonce = nonce(static_cast<std::uint8_t>(port));
  m.lifetime = 600;
  return m;
}

inline core::Mapping peer4(std::uint16_t int_port) {
  core::Mapping m = map4(40000, int_port);
  m.kind = core::MappingKind::Peer;
  m.remote_addr = ip("198.51.100.20");
  m.remote_port = 443;
  return m;
}

inline core::Mapping peer6(std::uint16_t int_port) {
  core::Mapping m = pin6(int_port);
  m.kind = core::MappingKind::Peer;
  m.protocol = 6;
  m.remote_addr = ip("2001:db8:ff::20");
  m.remote_port = 443;
  return m;
}

inline wire::Filter filter(const char* prefix, std::uint16_t port) {
  auto p = wire::Prefix::parse(prefix);
  return wire::Filter{p->length, port, p->addr};
}

}  // namespace pcpd::nft_test
