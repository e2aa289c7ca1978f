// SPDX-License-Identifier: GPL-2.0-or-later
// CAPABILITY (draft-boucadair-hops-capability-discovery-00, docs/design.md "CAPABILITY"): which replies
// carry the configured capability set, and the transport bits that refuse a request.
#include "core/server_impl.hpp"

namespace pcpd::core {

std::optional<wire::CapabilitySet::Bytes> Server::Impl::capability_to_send() const {
  // R-CAP-3/5: only a configured set is ever sent; nothing is guessed.
  if (!policy.capabilities) return std::nullopt;
  wire::CapabilitySet s = *policy.capabilities;
  // hops-00 §3: A = PCP authentication (RFC 7652), which pcpd does not implement.
  s.set(wire::kCapabilityAuthBit, false);
  return s.bytes();
}

std::optional<wire::CapabilitySet::Bytes> Server::Impl::capability_for(const wire::Request& req,
                                                                       const Reply& reply) const {
  if (reply.kind == Reply::Kind::Drop) return std::nullopt;
  const wire::Opcode op = req.opcode;
  // hops-00 §3: valid for ANNOUNCE, MAP and PEER only.
  if (op != wire::Opcode::Announce && op != wire::Opcode::Map && op != wire::Opcode::Peer)
    return std::nullopt;
  // R-CAP-1/4: asked for (a zero field in the request) -> the set in the response.
  const bool requested = req.options.capability.has_value();
  // R-CAP-6: with `always`, in every MAP response (and ANNOUNCE response) even unrequested.
  const bool always = policy.capability_always && op != wire::Opcode::Peer;
  // R-CAP-8: a request beyond the device's capabilities (a protocol it does not serve, or
  // all ports / all protocols) gets UNSUPP_PROTOCOL together with the set.
  const bool refused = reply.kind == Reply::Kind::Error && op != wire::Opcode::Announce &&
                       reply.response.result == wire::ResultCode::UnsuppProtocol;
  if (!requested && !always && !refused) return std::nullopt;
  return capability_to_send();
}

bool Server::Impl::protocol_outside_capabilities(std::uint8_t protocol) const {
  if (!policy.capabilities) return false;
  const auto bit = wire::capability_bit_for_protocol(protocol);
  return bit.has_value() && !policy.capabilities->test(*bit);
}

}  // namespace pcpd::core
