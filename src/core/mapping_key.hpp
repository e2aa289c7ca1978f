// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core mapping keys: the lookup keys of the mapping table and their hashes.
// Owns EndpointKey (address, protocol, port) and PeerKey (the PEER 5-tuple). Standard library and
// wire::IpAddr only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/mapping.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::core {

// An (address, protocol, port) triple: the internal endpoint of a MAP mapping (RFC 6887 §11.1,
// R-MAP-10) or an external endpoint.
struct EndpointKey {
  IpAddr addr{};
  std::uint8_t protocol = 0;
  std::uint16_t port = 0;
  friend constexpr bool operator==(const EndpointKey&, const EndpointKey&) = default;
};

// The PEER key (RFC 6887 §12.1): internal endpoint plus remote peer address and port.
struct PeerKey {
  EndpointKey internal{};
  IpAddr remote_addr{};
  std::uint16_t remote_port = 0;
  friend constexpr bool operator==(const PeerKey&, const PeerKey&) = default;
};

struct EndpointKeyHash {
  std::size_t operator()(const EndpointKey& k) const noexcept {
    const std::uint64_t tail = (std::uint64_t{k.protocol} << 16) | k.port;
    return wire::IpAddrHash{}(k.addr) ^ static_cast<std::size_t>((tail + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull);
  }
};

struct PeerKeyHash {
  std::size_t operator()(const PeerKey& k) const noexcept {
    const std::size_t a = EndpointKeyHash{}(k.internal);
    const std::size_t b = wire::IpAddrHash{}(k.remote_addr);
    return a ^ (b * 0x94D049BB133111EBull) ^ (static_cast<std::size_t>(k.remote_port) << 7);
  }
};

[[nodiscard]] inline EndpointKey internal_key(const Mapping& m) {
  return {m.internal_addr, m.protocol, m.internal_port};
}
[[nodiscard]] inline EndpointKey external_key(const Mapping& m) {
  return {m.external_addr, m.protocol, m.external_port};
}
[[nodiscard]] inline PeerKey peer_key(const Mapping& m) {
  return {internal_key(m), m.remote_addr, m.remote_port};
}

}  // namespace pcpd::core
