// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Mapping: one PCP/NAT-PMP mapping as core, the datapath backends, recovery and the
// control socket see it. Owns Mapping, MappingKind, Origin. Depends on wire types only.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "core/clock.hpp"
#include "wire/ip_addr.hpp"
#include "wire/messages.hpp"

namespace pcpd::core {

using wire::IpAddr;

enum class MappingKind : std::uint8_t {
  Map,   // RFC 6887 §11: inbound (NAT44 DNAT + endpoint-independent SNAT, or IPv6 pinhole)
  Peer,  // RFC 6887 §12: outbound flow to one remote peer (SNAT by 5-tuple)
};

// Static: a permanent port forward from the configuration ([[static]], RFC 6887 §11.3 "static
// mapping"): no nonce, no expiry, never deleted or changed by a request (R-MAP-6, R-LIFE-5).
enum class Origin : std::uint8_t { Pcp, NatPmp, Static };

// Mapping::expires of a static mapping: it never comes due.
inline constexpr Millis kNever = Millis::max();
// The lifetime a static mapping is reported with (RFC 6887 §11.3: 2^32-1).
inline constexpr std::uint32_t kStaticLifetime = 0xFFFFFFFFu;

// Internal address family decides the datapath: IPv4 (mapped) = NAT44, IPv6 = firewall pinhole
// (external endpoint = internal endpoint, R-MAP-11).
struct Mapping {
  MappingKind kind = MappingKind::Map;
  Origin origin = Origin::Pcp;
  std::uint8_t protocol = 0;           // IANA number; 0 = all protocols (R-MAP-2/3)
  IpAddr internal_addr{};
  std::uint16_t internal_port = 0;     // 0 = all ports
  IpAddr external_addr{};
  std::uint16_t external_port = 0;
  IpAddr remote_addr{};                // PEER only
  std::uint16_t remote_port = 0;       // PEER only
  IpAddr client_addr{};                // the requester (differs from internal_addr with THIRD_PARTY)
  wire::Nonce nonce{};
  Millis expires{0};                   // on the core Clock
  std::uint32_t lifetime = 0;          // last granted lifetime, seconds
  bool third_party = false;
  bool checkpoint = false;             // RFC 7767 elected (CHECKPOINT_REQUIRED honoured)
  // The client's last request asked for CHECKPOINT_REQUIRED and only the missing standby peer
  // stood in the way (RFC 7767 §3.2: served without the option). RFC 7767 lets a server serve
  // such a request; it does not ask it to forget the client's wish: Server::reelect_deferred
  // elects these mappings once the peer is back. Never true together with `checkpoint`.
  bool checkpoint_deferred = false;
  std::vector<wire::Filter> filters;   // FILTER (RFC 6887 §13.3); empty = no filtering
  std::string description;             // RFC 7220, already truncated to the configured maximum
  // Where the last response for this mapping went, for Mapping Update (RFC 6887 §14.2: the
  // unsolicited response goes to the client address and port of the mapping's last response):
  // the request's source port, and the server address it was sent to as Server::local_address
  // index + 1 (clients check the source, R-SEC-5). 0 = unknown (recovered after a restart,
  // mirrored from the peer, NAT-PMP). Not datapath state: not in same_but_expiry, not persisted.
  std::uint16_t reply_port = 0;
  std::uint8_t reply_local = 0;

  [[nodiscard]] bool is_v4() const { return internal_addr.is_v4(); }
  [[nodiscard]] bool is_static() const { return origin == Origin::Static; }
  // Every field the kernel and the state files hold, but `lifetime` and `expires`: one list, so
  // that a field added above is compared everywhere once it is added here.
  [[nodiscard]] auto identity() const {
    return std::tie(kind, origin, protocol, internal_addr, internal_port, external_addr, external_port, remote_addr,
                    remote_port, client_addr, nonce, third_party, checkpoint, checkpoint_deferred, filters,
                    description);
  }
  // `o` is this mapping refreshed with nothing else changed (so the datapath only restarts its
  // timers): every field but `expires` (and where Mapping Update goes) equal.
  [[nodiscard]] bool same_but_expiry(const Mapping& o) const { return lifetime == o.lifetime && identity() == o.identity(); }
  friend bool operator==(const Mapping&, const Mapping&) = default;
  // Remaining lifetime in whole seconds, rounded up; 0 when expired.
  [[nodiscard]] std::uint32_t remaining(Millis now) const {
    if (expires == kNever) return kStaticLifetime;
    if (expires <= now) return 0;
    return static_cast<std::uint32_t>((expires - now + Millis(999)).count() / 1000);
  }
};

}  // namespace pcpd::core
