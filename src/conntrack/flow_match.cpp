// SPDX-License-Identifier: GPL-2.0-or-later
#include "conntrack/flow_match.hpp"

namespace pcpd::ct {

bool belongs_to(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig, const FlowTuple& reply) {
  if (m.protocol != 0 && m.protocol != protocol) return false;
  auto port_ok = [](std::uint16_t want, std::uint16_t have) { return want == 0 || want == have; };
  if (m.kind == core::MappingKind::Peer)
    return orig.src == m.internal_addr && orig.src_port == m.internal_port && orig.dst == m.remote_addr &&
           orig.dst_port == m.remote_port;
  if (!m.is_v4())
    return orig.dst == m.internal_addr && port_ok(m.internal_port, orig.dst_port);
  const bool inbound = orig.dst == m.external_addr && port_ok(m.external_port, orig.dst_port) &&
                       reply.src == m.internal_addr && port_ok(m.internal_port, reply.src_port);
  const bool outbound = orig.src == m.internal_addr && port_ok(m.internal_port, orig.src_port) &&
                        reply.dst == m.external_addr && port_ok(m.external_port, reply.dst_port);
  return inbound || outbound;
}

bool checkpoint_match(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig) {
  // The election keys always carry a protocol and ports (all-protocols / all-ports mappings have
  // no elements at all, nft/element.hpp).
  if (m.protocol != protocol) return false;
  const bool from_internal = orig.src == m.internal_addr && orig.src_port == m.internal_port;
  if (m.kind == core::MappingKind::Peer)
    return from_internal && orig.dst == m.remote_addr && orig.dst_port == m.remote_port;
  if (!m.is_v4())
    return from_internal || (orig.dst == m.internal_addr && orig.dst_port == m.internal_port);
  return from_internal || (orig.dst == m.external_addr && orig.dst_port == m.external_port);
}

}  // namespace pcpd::ct
