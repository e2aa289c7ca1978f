// SPDX-License-Identifier: GPL-2.0-or-later
// NAT-PMP (RFC 6886) beside PCP (RFC 6887 App. A): one table and one epoch (R-PMP-5). A NAT-PMP
// map is a PCP MAP with the all-zero nonce, keyed by (source, protocol, internal port). A PCP
// request from the same host takes a NAT-PMP mapping over (NAT-PMP's owner is the source
// address; Server::Impl::may_take_over); a NAT-PMP request on a PCP mapping with a non-zero
// nonce is refused (NAT-PMP result 2) unless mappings.nonce_change = same_host.
#include "core/server_impl.hpp"
#include "wire/natpmp.hpp"

namespace pcpd::core {

namespace natpmp = wire::natpmp;
using wire::ResultCode;

namespace {

constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kTcp = 6;

// RFC 6886 §3.5 has six result codes; PCP's finer ones fold into them.
natpmp::Result to_natpmp(ResultCode code) {
  switch (code) {
    case ResultCode::Success: return natpmp::Result::Success;
    case ResultCode::NetworkFailure: return natpmp::Result::NetworkFailure;
    case ResultCode::NoResources:
    case ResultCode::UserExQuota:
    case ResultCode::ExcessiveRemotePeers: return natpmp::Result::OutOfResources;
    default: return natpmp::Result::NotAuthorized;  // refused: policy, nonce, protocol, ...
  }
}

}  // namespace

bool Server::Impl::admit_natpmp(const Context& ctx) {
  // R-PMP-1: NAT-PMP is IPv4 only; disabled by policy -> as if nobody listened.
  if (!policy.natpmp || !ctx.source.is_v4()) {
    ++stats.dropped;
    return false;
  }
  // RFC 6887 §18.1: NAT-PMP counts against the same per-client and global buckets as PCP.
  return !rate_limited(ctx);
}

bool Server::Impl::decide_natpmp(BurstItem& it, Decided& d) {
  const Context& ctx = it.ctx;
  const natpmp::Decoded decoded = natpmp::decode_request(it.datagram);
  const natpmp::Request* req = std::get_if<natpmp::Request>(&decoded);
  const bool map = req != nullptr && req->op != natpmp::Op::ExternalAddress;
  const std::uint8_t protocol = map && req->op == natpmp::Op::MapUdp ? kUdp : kTcp;
  // The same rule as for PCP (Server::Impl::waits): its mapping must be read from the table.
  if (map && waits(ctx.source, wire::Opcode::Map, protocol, req->internal_port,
                   req->lifetime == 0 ? 0 : req->suggested_external_port))
    return false;

  Stats& counts = tally();
  ++counts.natpmp_requests;
  const std::uint32_t ep = epoch.at(clock.now());
  if (const auto* reject = std::get_if<natpmp::Reject>(&decoded)) {
    d.done = true;
    if (reject->action == natpmp::Reject::Action::Drop) {
      ++counts.dropped;  // a response (opcode >= 128) or too short (R-PMP-2)
      return true;
    }
    ++counts.natpmp_errors;
    // RFC 6886 §3.5 (R-PMP-2): an unsupported opcode gets the whole request back.
    it.reply = reject->result == natpmp::Result::UnsupportedOpcode
                   ? natpmp::encode_unsupported_opcode(it.datagram, it.out)
                   : natpmp::encode_error(reject->opcode, reject->result, ep, it.out);
    return true;
  }

  if (!map) {
    d.done = true;
    // RFC 6886 §3.2: the first external address; none yet -> Network Failure.
    if (policy.external_v4.empty() || !policy.nat44) {
      ++counts.natpmp_errors;
      it.reply = natpmp::encode_external_address(natpmp::Result::NetworkFailure, ep, 0, it.out);
      return true;
    }
    it.reply = natpmp::encode_external_address(natpmp::Result::Success, ep,
                                               policy.external_v4.front().v4(), it.out);
    return true;
  }

  // The same request as PCP would see it: MAP, all-zero nonce, suggested port, no address
  // preference, client address = source (so ADDRESS_MISMATCH cannot apply).
  wire::Request pcp;
  pcp.opcode = wire::Opcode::Map;
  pcp.lifetime = req->lifetime;
  pcp.client_addr = ctx.source;
  wire::MapBody body;
  body.protocol = protocol;
  body.internal_port = req->internal_port;
  // R-PMP-3: on a delete the suggested external port MUST be ignored.
  body.external_port = req->lifetime == 0 ? 0 : req->suggested_external_port;
  body.external_addr = IpAddr::v4_any();
  pcp.body = body;
  const Target t{ctx.source, ctx.source, false, Origin::NatPmp};

  d.natpmp_map = true;
  d.natpmp_op = req->op;
  d.natpmp_port = req->internal_port;
  d.natpmp_lifetime = req->lifetime;
  if (req->lifetime == 0 && req->internal_port == 0)
    // R-PMP-3: internal port 0 + lifetime 0 removes all of this client's mappings of the
    // protocol (explicit MAP mappings, PCP- or NAT-PMP-made, without a nonce check).
    it.decision = bulk_delete(pcp, ctx.source, false, protocol);
  else
    // Create, refresh (lifetime clamped, R-LIFE-2) or delete, exactly as PCP does; a taken
    // suggested port gets another one (no PREFER_FAILURE in NAT-PMP).
    it.decision = handle_map(pcp, body, t);
  if (to_natpmp(it.decision.response.result) != natpmp::Result::Success) ++counts.natpmp_errors;
  return true;
}

void Server::Impl::encode_natpmp(BurstItem& it, const Decided& d) const {
  if (!d.natpmp_map) return;
  const std::uint32_t ep = epoch.at(clock.now());
  const natpmp::Result result = to_natpmp(it.decision.response.result);
  if (result != natpmp::Result::Success) {
    it.reply = natpmp::encode_map(d.natpmp_op, result, ep, d.natpmp_port, 0, 0, it.out);
    return;
  }
  const auto& granted = std::get<wire::MapBody>(it.decision.response.body);
  // RFC 6886 §3.4: a delete answers external port 0 and lifetime 0.
  const std::uint16_t ext_port = d.natpmp_lifetime == 0 ? 0 : granted.external_port;
  it.reply = natpmp::encode_map(d.natpmp_op, result, ep, d.natpmp_port, ext_port,
                                it.decision.response.lifetime, it.out);
}

std::size_t Server::encode_natpmp_announce(std::span<std::uint8_t> out) const {
  // RFC 6886 §3.2.1 / R-PMP-4: gratuitous external-address response.
  const Impl& s = *impl_;
  if (s.policy.external_v4.empty() || !s.policy.nat44)
    return natpmp::encode_external_address(natpmp::Result::NetworkFailure, epoch(), 0, out);
  return natpmp::encode_external_address(natpmp::Result::Success, epoch(),
                                         s.policy.external_v4.front().v4(), out);
}

}  // namespace pcpd::core
