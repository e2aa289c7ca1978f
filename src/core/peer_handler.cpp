// SPDX-License-Identifier: GPL-2.0-or-later
// PEER (RFC 6887 §12.3): create or extend an outbound mapping; never delete or shorten it.
#include <algorithm>

#include "core/mapping_options.hpp"
#include "core/server_impl.hpp"

namespace pcpd::core {

using wire::ResultCode;

namespace {

wire::PeerBody assigned(const wire::PeerBody& req, const Mapping& m) {
  wire::PeerBody b = req;  // nonce, protocol, internal port, remote peer copied
  b.external_port = m.external_port;
  b.external_addr = m.external_addr;
  return b;
}

}  // namespace

Reply Server::Impl::handle_peer(const wire::Request& req, const wire::PeerBody& body,
                                const Target& t) {
  const wire::Options& o = req.options;
  // RFC 6887 §12.1 / R-PEER-5, R-OPT-7: PREFER_FAILURE in PEER is MALFORMED_REQUEST.
  if (o.prefer_failure) return error(req, ResultCode::MalformedRequest);
  // R-OPT-7 (local decision): FILTER is MAP-only and mandatory to process.
  if (o.filter_count > 0) return error(req, ResultCode::MalformedOption);
  // RFC 6887 §12.1 / R-PEER-2 (local decision on the code): no zero protocol or ports.
  if (body.protocol == 0 || body.internal_port == 0 || body.remote_port == 0)
    return error(req, ResultCode::MalformedRequest);
  // RFC 6887 §10 / R-PEER-6: the remote peer is in the internal address's family; R-PEER-7:
  // an unusable destination (the unspecified address) is refused like an invalid implicit one.
  if (body.remote_addr.is_v4() != t.internal.is_v4() || body.remote_addr.is_unspecified())
    return error(req, ResultCode::MalformedRequest);
  if (auto e = check_endpoint(t, body.protocol, body.internal_port)) return error(req, *e);

  const EndpointKey key{t.internal, body.protocol, body.internal_port};
  const PeerKey pkey{key, body.remote_addr, body.remote_port};
  const Millis now = clock.now();

  if (const Mapping* cur = table.find_peer(pkey)) {
    // R-PEER-9 (docs/design.md "Decisions"): the MAP nonce rule; error lifetime = remaining lifetime.
    if (cur->nonce != body.nonce && !may_take_over(*cur, body.nonce, t))
      return error(req, ResultCode::NotAuthorized, cur->remaining(now));
    // RFC 6887 §12.3 / R-PEER-4: a suggestion naming another external endpoint.
    if (!suggestion_matches(body.external_addr, body.external_port, cur->external_addr,
                            cur->external_port))
      return error(req, ResultCode::CannotProvideExternal);
    // RFC 6887 §12.3, §15 / R-PEER-3, R-PEER-7: never shorten or delete; a lower (or zero)
    // request is a query answered with the current remaining lifetime.
    Mapping next = *cur;
    if (req.lifetime != 0) {
      const std::uint32_t lifetime = clamp_lifetime(req.lifetime);
      if (now + Seconds(lifetime) > cur->expires) {
        next.expires = now + Seconds(lifetime);
        next.lifetime = lifetime;
      }
    }
    const auto description = apply_description(next, o, policy.description_max);
    next.nonce = body.nonce;  // the same, or the owner's new one (may_take_over)
    next.origin = t.origin;
    next.client_addr = t.client;
    next.reply_port = t.reply_port;
    next.reply_local = t.reply_local;
    next.third_party = t.third_party;
    // RFC 7767 §3.1 / R-CKPT-5: any PEER on the mapping renews its election (a lifetime query
    // included): the option elects, its absence un-elects.
    const Election election = elect(req, t, cur);
    next.checkpoint = elected(election);
    next.checkpoint_deferred = election == Election::RefusedPeer;  // elected when the peer is back

    if (next.expires != cur->expires || !next.same_but_expiry(*cur)) {
      stage(Change::replace(next, *cur));
      ++tally().refreshed;
    } else if (next.reply_port != cur->reply_port || next.reply_local != cur->reply_local) {
      // Only where a Mapping Update would go changed (a lifetime query from a new socket):
      // not datapath state, so the table alone (R-ANN-7: the last response's address).
      pending.stage_table_only(next);
    }
    record_election(election, t);
    Reply r = success(req, assigned(body, next), next.remaining(now));
    echo_options(r, o, false, description, next.checkpoint);
    return r;
  }

  // R-PEER-3, docs/design.md "Decisions": PEER never deletes; lifetime 0 without a mapping asks for
  // nothing that exists -> MALFORMED_REQUEST.
  if (req.lifetime == 0) return error(req, ResultCode::MalformedRequest);
  if (auto e = check_quota(t.internal)) return error(req, *e);  // R-QUOTA-1/2
  const std::uint32_t lifetime = clamp_lifetime(req.lifetime);
  Mapping m;
  m.kind = MappingKind::Peer;
  m.origin = t.origin;
  m.protocol = body.protocol;
  m.internal_addr = t.internal;
  m.internal_port = body.internal_port;
  m.remote_addr = body.remote_addr;
  m.remote_port = body.remote_port;
  m.client_addr = t.client;
  m.reply_port = t.reply_port;
  m.reply_local = t.reply_local;
  m.nonce = body.nonce;
  m.lifetime = lifetime;
  m.expires = now + Seconds(lifetime);
  m.third_party = t.third_party;
  const auto description = apply_description(m, o, policy.description_max);

  // Endpoint-independent mapping (R-MAP-12 the other way round): the endpoint's MAP binding if
  // it has one; a suggestion that cannot be honoured is refused either way (R-PEER-4).
  if (auto e = bind_external(m, key, body.external_addr, body.external_port, true)) return error(req, *e);
  add_mapping(m, req, t);
  Reply r = success(req, assigned(body, m), lifetime);
  echo_options(r, o, false, description, m.checkpoint);
  return r;
}

}  // namespace pcpd::core
