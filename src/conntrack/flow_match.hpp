// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct flow matching: which conntrack entries belong to a mapping. Pure, for ConntrackSync and
// its unit tests; the kernel side is ct_kernel.hpp.
#pragma once

#include <cstdint>

#include "core/mapping.hpp"

namespace pcpd::ct {

struct FlowTuple {
  wire::IpAddr src{};
  wire::IpAddr dst{};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  bool operator==(const FlowTuple&) const = default;
};

// Whether the connection (protocol, original and reply tuples) belongs to mapping `m`, i.e. must
// go when the mapping is deleted (RFC 6887 §15: a deleted mapping's flows end with it):
//   MAP NAT44   inbound: orig dst = external endpoint and reply src = internal endpoint;
//               outbound through its SNAT: orig src = internal endpoint, reply dst = external
//   MAP IPv6    orig dst = the pinhole endpoint
//   PEER        orig src = internal endpoint and orig dst = remote endpoint
bool belongs_to(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig, const FlowTuple& reply);

// Whether the connection is one pcpd.nft's elect4/elect6 chains elect for mapping `m` (its election
// keys, see nft/element.hpp), so that marking at election time and the per-packet rule agree:
//   MAP NAT44   orig dst = external endpoint, or orig src = internal endpoint
//   MAP IPv6    orig dst = pinhole endpoint, or orig src = pinhole endpoint
//   PEER        the 5-tuple (orig src = internal endpoint, orig dst = remote endpoint)
bool checkpoint_match(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig);

}  // namespace pcpd::ct
