// SPDX-License-Identifier: GPL-2.0-or-later
// MAP (RFC 6887 §11.3): create, refresh, delete (§15), with PREFER_FAILURE (§13.2), FILTER
// (§13.3), THIRD_PARTY (§13.1) and DESCRIPTION (RFC 7220).
#include <algorithm>

#include "core/mapping_options.hpp"
#include "core/server_impl.hpp"

namespace pcpd::core {

using wire::ResultCode;

namespace {

constexpr std::uint8_t kSctp = 132;

wire::MapBody assigned(const wire::MapBody& req, const Mapping& m) {
  wire::MapBody b = req;  // R-MAP-9: nonce, protocol and internal port copied
  b.external_port = m.external_port;
  b.external_addr = m.external_addr;
  return b;
}

}  // namespace

Reply Server::Impl::handle_map(const wire::Request& req, const wire::MapBody& body,
                               const Target& t) {
  const wire::Options& o = req.options;
  // RFC 6887 §11.3, §15 / R-MAP-2 (local decision, Correction C4): protocol 0 with a port.
  if (body.protocol == 0 && body.internal_port != 0)
    return error(req, ResultCode::MalformedRequest);
  if (req.lifetime == 0) return map_delete(req, body, t);  // RFC 6887 §15 / R-LIFE-1

  // RFC 6887 §13.2 / R-PF-5: PREFER_FAILURE needs a full suggestion (port and address).
  if (o.prefer_failure && (body.external_port == 0 || body.external_addr.is_unspecified()))
    return error(req, ResultCode::MalformedOption);
  if (auto e = check_filters(o.filter_list(), t.internal)) return error(req, *e);  // R-FLT-4/5

  // RFC 6887 §11.3 / R-MAP-3 (correction C3): all-ports (port 0) or all-protocols (protocol 0).
  // A request that cannot be granted in full MUST get UNSUPP_PROTOCOL, and R-MAP-3 answers a
  // policy refusal (allow_all_ports off) the same way. All protocols: the kernel's keys carry
  // a protocol, so never. All ports: with allow_all_ports, by PCP (NAT-PMP has no such
  // request), without FILTER (the filter sets are keyed by one port).
  const bool all_ports = body.internal_port == 0;
  if (body.protocol == 0) return error(req, ResultCode::UnsuppProtocol);
  if (all_ports && (!policy.allow_all_ports || t.origin != Origin::Pcp || o.filter_count > 0))
    return error(req, ResultCode::UnsuppProtocol);
  if (auto e = check_endpoint(t, body.protocol, body.internal_port)) return error(req, *e);

  const EndpointKey key{t.internal, body.protocol, body.internal_port};
  const Millis now = clock.now();
  const std::uint32_t lifetime = clamp_lifetime(req.lifetime);

  if (const Mapping* cur = table.find_map(key)) {
    // RFC 6887 §11.3 / R-MAP-6, R-PF-2: PREFER_FAILURE naming another external endpoint, checked
    // first; the error lifetime is the conflicting mapping's remaining lifetime (MAY, §13.2).
    if (o.prefer_failure && !suggestion_matches(body.external_addr, body.external_port,
                                                cur->external_addr, cur->external_port))
      return error(req, ResultCode::CannotProvideExternal, cur->remaining(now));
    // RFC 6887 §11.3 / R-MAP-6: a static mapping is reported as it is, lifetime 2^32-1,
    // whatever the nonce; the request changes nothing.
    if (cur->is_static()) {
      Reply r = success(req, assigned(body, *cur), kStaticLifetime);
      r.response.options.third_party = o.third_party;
      r.response.options.prefer_failure = o.prefer_failure;
      r.response.options.checkpoint_required = o.checkpoint_required && cur->checkpoint;  // R-CKPT-2
      return r;
    }
    // RFC 6887 §11.3 / R-MAP-7, R-OWN-2: another nonce -> NOT_AUTHORIZED, remaining lifetime,
    // unless the owner may take it over: a NAT-PMP mapping (all-zero nonce) by its own host,
    // or any of its own with mappings.nonce_change = same_host (may_take_over).
    if (cur->nonce != body.nonce && !may_take_over(*cur, body.nonce, t))
      return error(req, ResultCode::NotAuthorized, cur->remaining(now));

    // R-MAP-6 refresh: same external endpoint whatever the suggestion; lifetime up or down.
    Mapping next = *cur;
    next.nonce = body.nonce;  // the same, or the owner's new one (may_take_over)
    auto filters = merge_filters(cur->filters, o.filter_list(), policy.max_filters_per_mapping);
    if (!filters) return error(req, ResultCode::ExcessiveRemotePeers);  // R-FLT-3
    next.filters = std::move(*filters);  // R-FLT-6: no FILTER keeps the current ones
    const auto description = apply_description(next, o, policy.description_max);
    next.lifetime = lifetime;
    next.expires = now + Seconds(lifetime);
    next.origin = t.origin;
    next.client_addr = t.client;
    next.reply_port = t.reply_port;
    next.reply_local = t.reply_local;
    next.third_party = t.third_party;
    // RFC 7767 §3.1 / R-CKPT-5: after the refresh checks, the option elects, its absence
    // un-elects; a change of election alone is still a Replace (the backend marks/unmarks).
    const Election election = elect(req, t, cur);
    next.checkpoint = elected(election);
    next.checkpoint_deferred = election == Election::RefusedPeer;  // elected when the peer is back

    stage(Change::replace(next, *cur));
    ++tally().refreshed;
    record_election(election, t);
    Reply r = success(req, assigned(body, next), lifetime);
    echo_options(r, o, true, description, next.checkpoint);
    return r;
  }

  // New MAP mapping. R-QUOTA-1/2.
  if (auto e = check_quota(t.internal)) return error(req, *e);
  Mapping m;
  m.kind = MappingKind::Map;
  m.origin = t.origin;
  m.protocol = body.protocol;  // R-MAP-8: exactly the requested protocol
  m.internal_addr = t.internal;
  m.internal_port = body.internal_port;
  m.client_addr = t.client;
  m.reply_port = t.reply_port;
  m.reply_local = t.reply_local;
  m.nonce = body.nonce;
  m.lifetime = lifetime;
  m.expires = now + Seconds(lifetime);
  m.third_party = t.third_party;
  auto filters = merge_filters({}, o.filter_list(), policy.max_filters_per_mapping);
  if (!filters) return error(req, ResultCode::ExcessiveRemotePeers);  // R-FLT-3
  m.filters = std::move(*filters);
  const auto description = apply_description(m, o, policy.description_max);

  // RFC 6887 §13.2 / R-PF-3: a client probing ports with PREFER_FAILURE creates is slowed
  // down; the answer over the limit does not depend on the port, so it tells nothing.
  if (o.prefer_failure && prefer_failure_limited(t.client)) return error(req, ResultCode::CannotProvideExternal);
  // RFC 6887 §11.3 (R-MAP-5): SCTP implies PREFER_FAILURE semantics.
  const bool strict = o.prefer_failure || body.protocol == kSctp;
  if (all_ports) {
    auto ext = choose_all_ports(key, body.external_addr, strict);
    if (const auto* code = std::get_if<ResultCode>(&ext)) return error(req, *code);
    m.external_addr = std::get<External>(ext).addr;
    m.external_port = 0;  // every port, each kept as it is
  } else if (auto e = bind_external(m, key, body.external_addr, body.external_port, strict)) {
    return error(req, *e);
  }
  add_mapping(m, req, t);
  Reply r = success(req, assigned(body, m), lifetime);
  echo_options(r, o, true, description, m.checkpoint);
  return r;
}

Reply Server::Impl::map_delete(const wire::Request& req, const wire::MapBody& body,
                               const Target& t) {
  const wire::Options& o = req.options;
  // RFC 6887 §11.3, §13.3 / R-OPT-4, R-FLT-6: PREFER_FAILURE or FILTER make no sense here.
  if (o.prefer_failure || o.filter_count > 0) return error(req, ResultCode::MalformedOption);

  if (body.protocol == 0 && body.internal_port == 0) {
    // R-TP-6: THIRD_PARTY with the all-zeros address -> all that this client may delete.
    if (t.third_party && t.internal.is_unspecified())
      return bulk_delete(req, t.client, true, 0);
    // RFC 6887 §15 / R-LIFE-6: all explicit mappings of the internal address, no nonce check
    // (local decision (a)).
    return bulk_delete(req, t.internal, false, 0);
  }

  // One mapping, or (protocol P, port 0) the wildcard for P only (R-LIFE-6 decision (b)).
  const EndpointKey key{t.internal, body.protocol, body.internal_port};
  const Mapping* cur = table.find_map(key);
  if (cur == nullptr) {
    // RFC 6887 §15 / R-LIFE-5: MAP cannot delete an outbound (PEER-created) mapping.
    if (table.binding(key).has_value()) return error(req, ResultCode::NotAuthorized);
    // R-LIFE-4: deleting nothing is SUCCESS, lifetime 0, so a retransmission gets the same.
    Reply r = success(req, body, 0);
    r.response.options.third_party = o.third_party;
    return r;
  }
  const Millis now = clock.now();
  // RFC 6887 §15 / R-LIFE-5: a static mapping is the operator's; no request deletes it.
  if (cur->is_static()) return error(req, ResultCode::NotAuthorized);
  // RFC 6887 §11.3 / R-OWN-2: a delete is validated by the nonce too.
  if (cur->nonce != body.nonce && !may_take_over(*cur, body.nonce, t))
    return error(req, ResultCode::NotAuthorized, cur->remaining(now));

  stage(Change::removal(*cur));
  ++tally().deleted;
  // R-LIFE-4: the suggested external fields (ignored) are copied into the assigned ones.
  Reply r = success(req, body, 0);
  r.response.options.third_party = o.third_party;
  return r;
}

Reply Server::Impl::bulk_delete(const wire::Request& req, const IpAddr& who, bool by_client,
                                std::uint8_t protocol) {
  // Only explicit MAP mappings; PEER-created (outbound) and static ones are skipped (RFC 6887
  // §15, R-LIFE-6).
  ChangeSet cs;
  for (const Mapping* m : by_client ? table.of_client(who) : table.of_internal(who)) {
    if (m->kind != MappingKind::Map || m->is_static()) continue;
    if (protocol != 0 && m->protocol != protocol) continue;
    cs.changes.push_back(Change::removal(*m));
  }
  stage(cs);
  tally().deleted += cs.changes.size();
  Reply r = success(req, req.body, 0);  // SUCCESS even when nothing matched
  r.response.options.third_party = req.options.third_party;
  return r;
}

}  // namespace pcpd::core
