// SPDX-License-Identifier: GPL-2.0-or-later
// Nonce ownership conflicts (RFC 6887 §11.3 / R-MAP-7, R-OWN-2) and the operator's deletes.
#include <algorithm>

#include "core/server_impl.hpp"

namespace pcpd::core {

bool Server::Impl::may_take_over(const Mapping& cur, const wire::Nonce& nonce, const Target& t) {
  NonceConflict c;
  c.client = t.client;
  c.third_party = t.third_party;
  c.mapping = cur;
  // Only the host the mapping belongs to, asking for itself: a THIRD_PARTY request (or a
  // mapping made by one) proves nothing about who holds the nonce.
  const bool owner = !t.third_party && !cur.third_party && cur.client_addr == t.client &&
                     cur.internal_addr == t.internal;
  const bool nonceless = cur.origin == Origin::NatPmp && cur.nonce == wire::Nonce{};
  if (owner && nonceless) {
    // NAT-PMP has no nonce: its mappings belong to the source address (RFC 6886 §3.3), so the
    // same host asking by PCP is the owner by NAT-PMP's own rule.
    c.outcome = NonceConflict::Outcome::NatPmpTaken;
  } else if (owner && policy.nonce_change == Policy::NonceChange::SameHost) {
    c.outcome = NonceConflict::Outcome::Replaced;
  } else {
    c.outcome = NonceConflict::Outcome::Refused;
  }
  if (c.outcome == NonceConflict::Outcome::Refused) {
    ++tally().nonce_refused;
  } else {
    ++tally().nonce_replaced;
  }
  (void)nonce;  // the new nonce is the request's; the caller stores it
  const bool take = c.outcome != NonceConflict::Outcome::Refused;
  pending.conflicts.push_back(std::move(c));  // reported once the transaction is in (commit())
  return take;
}

void Server::set_nonce_conflict_sink(std::function<void(const NonceConflict&)> sink) {
  impl_->nonce_sink = std::move(sink);
}

std::optional<std::size_t> Server::remove_mapping(MappingKind kind, const IpAddr& internal_addr,
                                                  std::uint8_t protocol, std::uint16_t internal_port,
                                                  const IpAddr& remote_addr, std::uint16_t remote_port) {
  Impl& s = *impl_;
  const Mapping* m = s.table.find(kind, EndpointKey{internal_addr, protocol, internal_port},
                                  remote_addr, remote_port);
  if (m == nullptr) return 0;
  if (m->is_static()) return kStaticRefused;  // the configuration's: removed by editing it
  // Deleted: its connections go too, as with the client's own delete.
  if (!s.apply(Change::removal(*m))) return std::nullopt;
  ++s.stats.deleted;
  return 1;
}

std::optional<std::size_t> Server::remove_client(const IpAddr& addr) {
  Impl& s = *impl_;
  ChangeSet cs;
  s.table.visit([&](const Mapping& m) {
    if (!m.is_static() && (m.internal_addr == addr || m.client_addr == addr))
      cs.changes.push_back(Change::removal(m));
  });
  if (!s.apply(cs)) return std::nullopt;
  s.stats.deleted += cs.changes.size();
  return cs.changes.size();
}

}  // namespace pcpd::core
