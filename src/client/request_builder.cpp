// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/request_builder.hpp"

#include <string_view>

namespace pcpd::client {

namespace {

wire::IpAddr unspecified_like(const wire::IpAddr& a) {
  // R-MAP-4: the all-zeros address of the family means "no preference" and states the family.
  return a.is_v4() ? wire::IpAddr::v4_any() : wire::IpAddr{};
}

wire::Options build_options(const MappingSpec& spec) {
  wire::Options o;
  o.third_party = spec.third_party;
  o.prefer_failure = spec.prefer_failure;
  for (const auto& f : spec.filters) {
    if (o.filter_count >= wire::kMaxFilters) break;
    o.filters[o.filter_count++] = f;
  }
  if (spec.description) o.description = std::string_view(*spec.description);
  o.checkpoint_required = spec.checkpoint_required;
  // hops-00 R-CAP-1: in a request the Capability field MUST be 0.
  if (spec.capability) o.capability = std::array<std::uint8_t, wire::kCapabilityBytes>{};
  return o;
}

}  // namespace

wire::IpAddr internal_address(const MappingSpec& spec, const wire::IpAddr& client_addr) {
  return spec.third_party ? *spec.third_party : client_addr;
}

wire::Request build_request(const MappingSpec& spec, const wire::Nonce& nonce,
                            const wire::IpAddr& client_addr) {
  wire::Request r;
  r.version = wire::kVersion;
  r.opcode = spec.opcode;
  r.lifetime = spec.lifetime;
  r.client_addr = client_addr;  // RFC 6887 §7.1: the source address this client uses
  const wire::IpAddr internal = internal_address(spec, client_addr);
  const wire::IpAddr ext = spec.suggested_external_addr ? *spec.suggested_external_addr
                                                        : unspecified_like(internal);
  if (spec.opcode == wire::Opcode::Peer) {
    wire::PeerBody b;
    b.nonce = nonce;
    b.protocol = spec.protocol;
    b.internal_port = spec.internal_port;
    b.external_port = spec.suggested_external_port;
    b.external_addr = ext;
    b.remote_port = spec.remote_port;
    b.remote_addr = spec.remote_addr;
    r.body = b;
  } else {
    wire::MapBody b;
    b.nonce = nonce;
    b.protocol = spec.protocol;
    b.internal_port = spec.internal_port;
    b.external_port = spec.suggested_external_port;
    b.external_addr = ext;
    r.body = b;
  }
  r.options = build_options(spec);
  return r;
}

wire::Request build_announce(const wire::IpAddr& client_addr, bool capability) {
  wire::Request r;
  r.opcode = wire::Opcode::Announce;
  r.lifetime = 0;  // RFC 6887 §14.1.1: the client MUST send 0
  r.client_addr = client_addr;
  r.body = wire::AnnounceBody{};
  if (capability) r.options.capability = std::array<std::uint8_t, wire::kCapabilityBytes>{};
  return r;
}

bool response_matches(const wire::Request& request, const wire::Response& response) {
  if (response.opcode != request.opcode) return false;
  switch (request.opcode) {
    case wire::Opcode::Map: {
      // RFC 6887 §11.4: match on nonce, protocol and internal port.
      const auto* q = std::get_if<wire::MapBody>(&request.body);
      const auto* a = std::get_if<wire::MapBody>(&response.body);
      return q && a && q->nonce == a->nonce && q->protocol == a->protocol &&
             q->internal_port == a->internal_port;
    }
    case wire::Opcode::Peer: {
      // RFC 6887 §12.4: also the remote peer address and port.
      const auto* q = std::get_if<wire::PeerBody>(&request.body);
      const auto* a = std::get_if<wire::PeerBody>(&response.body);
      return q && a && q->nonce == a->nonce && q->protocol == a->protocol &&
             q->internal_port == a->internal_port && q->remote_port == a->remote_port &&
             q->remote_addr == a->remote_addr;
    }
    case wire::Opcode::Announce:
      return true;  // no opcode data to compare (§14.1.1)
    default:
      return false;
  }
}

}  // namespace pcpd::client
