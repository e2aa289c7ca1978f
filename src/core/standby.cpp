// SPDX-License-Identifier: GPL-2.0-or-later
// The hot standby's side of core (RFC 7767 §3, docs/design.md "Mapping state on the standby"):
// an election withdrawn when the peer did not
// acknowledge it, deferred elections made when the peer is back, and the standby's table
// following the changes replicated from the primary.
#include <algorithm>

#include "core/server_impl.hpp"

namespace pcpd::core {

bool Server::withdraw_checkpoint(const Mapping& m) {
  Impl& s = *impl_;
  const Mapping* cur = s.table.find(m);
  if (cur == nullptr || !cur->checkpoint) return false;
  // RFC 7767 §3.2: served without the option after all; the backend unmarks (Replace).
  Mapping next = *cur;
  next.checkpoint = false;
  next.checkpoint_deferred = true;  // the client still asked: elected when the peer is back
  if (!s.apply(Change::replace(std::move(next), *cur))) return false;
  ++s.stats.checkpoint_withdrawn;
  return true;
}

Server::Reelection Server::reelect_deferred() {
  Impl& s = *impl_;
  Reelection out;
  if (!s.policy.checkpoint.enabled) return out;
  const Millis now = s.clock.now();
  // RFC 7767 §3.1 / R-CKPT-4, R-CKPT-7: the caps hold as for a request. The rate limit does
  // not: these elections were asked for already, and the per-client cap bounds them anyway.
  std::size_t total = s.table.elected_count();
  std::unordered_map<IpAddr, std::size_t, wire::IpAddrHash> added;
  ChangeSet cs;
  s.table.visit([&](const Mapping& m) {
    if (!m.checkpoint_deferred || m.expires <= now) return;
    std::size_t& mine = added[m.internal_addr];
    if (total >= s.policy.checkpoint.max_total ||
        s.table.elected_for_internal(m.internal_addr) + mine >= s.policy.checkpoint.max_per_client) {
      ++out.over_cap;  // stays deferred: tried again when the peer next comes back
      return;
    }
    Mapping next = m;
    next.checkpoint = true;
    next.checkpoint_deferred = false;
    cs.changes.push_back(Change::replace(std::move(next), m));
    ++total;
    ++mine;
  });
  if (cs.empty()) return out;
  // One transaction: all elected, or none (and they stay deferred for the next try).
  if (!s.apply(cs)) {
    out.failed = true;
    return out;
  }
  out.elected = cs.changes.size();
  s.stats.checkpoint_reelected += out.elected;
  return out;
}

std::size_t Server::mirror(const ChangeSet& changes) {
  Impl& s = *impl_;
  std::size_t taken = 0;
  for (const Change& c : changes.changes) {
    const Mapping& m = c.mapping;
    const Mapping* cur = s.table.find(m);
    if (c.op == Change::Op::Remove) {
      if (cur == nullptr) {
        ++s.stats.mirror_skipped;
        continue;
      }
      s.table.erase(*cur);
    } else if (cur != nullptr && cur->external_addr == m.external_addr &&
               cur->external_port == m.external_port) {
      s.table.replace(m);  // same key fields: lifetime, election, filters, nonce
    } else {
      // New, or another external endpoint than the one held (replace() keeps key fields).
      if (cur != nullptr) s.table.erase(*cur);
      if (s.table.conflicts(m)) {
        ++s.stats.mirror_skipped;
        continue;
      }
      s.table.insert(m);
    }
    ++taken;
  }
  s.stats.elected = s.table.elected_count();
  return taken;
}

}  // namespace pcpd::core
