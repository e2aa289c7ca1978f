// SPDX-License-Identifier: GPL-2.0-or-later
// Server::handle_burst: the requests of one receive batch, their changes applied to the datapath
// in one transaction (the kernel's cost is per nftables transaction, so one per request
// capped pcpd far below the socket's rate). Each request stays all or nothing (RFC 6887 §7.3,
// R-HDR-10): a refused transaction installs nothing, and the burst is then rolled back and each
// request applied on its own, so the kernel's refusal reaches only the requests it concerns.
#include <algorithm>
#include <array>
#include <optional>

#include "core/server_impl.hpp"
#include "wire/codec.hpp"

namespace pcpd::core {

namespace {

// The change that undoes `c` in the table (MappingTable::commit applies it).
Change inverse(const Change& c) {
  Change u;
  switch (c.op) {
    case Change::Op::Add:
      u.op = Change::Op::Remove;
      u.mapping = c.mapping;
      break;
    case Change::Op::Remove:
      u.op = Change::Op::Add;
      u.mapping = c.mapping;
      break;
    case Change::Op::Replace:
      u.op = Change::Op::Replace;
      u.mapping = c.previous;
      u.previous = c.mapping;
      break;
  }
  return u;
}

}  // namespace

void Server::Impl::roll_back(const Burst& b) {
  // Newest first: a port or key freed and taken again within the burst is handed back in the
  // order it was taken.
  ChangeSet undo;
  undo.changes.reserve(b.staged.changes.size());
  for (auto it = b.staged.changes.rbegin(); it != b.staged.changes.rend(); ++it)
    undo.changes.push_back(inverse(*it));
  table.commit(undo);
  for (auto it = b.buckets.rbegin(); it != b.buckets.rend(); ++it) checkpoint_limiter.restore(*it);
  // R-PF-3: the retry charges these requests again.
  const Policy::RateLimit pf = prefer_failure_bucket();
  for (const IpAddr& client : b.prefer_failure) prefer_failure_limiter.refund(pf, client);
  stats.elected = table.elected_count();
}

void Server::Impl::prefetch(std::span<const BurstItem> items) const {
  // At 1,000,000 mappings each request's index slot and mapping are cache misses (and
  // TLB misses). Started for the whole burst first, in two passes (the slots, then the mappings
  // they name), the misses overlap instead of each request waiting for its own. The keys come
  // from wire::peek_lookup (a hint: THIRD_PARTY or a malformed request only waste a load).
  constexpr std::size_t kChunk = 64;
  struct Hint {
    EndpointKey internal;
    std::optional<PeerKey> peer;
  };
  std::array<Hint, kChunk> hints;
  for (std::size_t at = 0; at < items.size(); at += kChunk) {
    std::size_t n = 0;
    for (const BurstItem& it : items.subspan(at, std::min(kChunk, items.size() - at))) {
      if (!it.admitted || it.natpmp) continue;
      const auto h = wire::peek_lookup(it.datagram);
      if (!h) continue;
      Hint& x = hints[n++];
      x.internal = EndpointKey{it.ctx.source, h->protocol, h->internal_port};
      x.peer.reset();
      if (h->opcode == wire::Opcode::Peer) x.peer = PeerKey{x.internal, h->remote_addr, h->remote_port};
      table.prefetch_map_index(x.internal);
      if (x.peer) table.prefetch_peer_index(*x.peer);
    }
    for (std::size_t i = 0; i < n; ++i) {
      table.prefetch_map_record(hints[i].internal);
      if (hints[i].peer) table.prefetch_peer_record(*hints[i].peer);
    }
  }
}

void Server::handle_burst(std::span<BurstItem> items) {
  Impl& s = *impl_;
  // RFC 6887 §18.1: the rate limits first, once; a retry below does not charge them again.
  for (BurstItem& it : items) {
    it.reply = 0;
    it.admitted = it.natpmp ? s.admit_natpmp(it.ctx) : !s.rate_limited(it.ctx);
  }
  auto handle_one = [&s](BurstItem& it) {
    if (!it.admitted) return;
    it.reply = it.natpmp ? s.natpmp_datagram(it.datagram, it.ctx, it.out)
                         : s.pcp_datagram(it.datagram, it.ctx, it.out);
  };

  if (items.size() == 1) {  // one request: its own transaction anyway
    handle_one(items.front());
    return;
  }

  s.prefetch(items);
  const Stats before = s.stats;
  Impl::Burst& b = s.burst_storage;
  // Reused between bursts, but not kept at the size of a rare huge one (a bulk delete of a
  // client's 65,535 mappings stages them all).
  constexpr std::size_t kKeepStaged = 4096;
  if (b.staged.changes.capacity() > kKeepStaged) b.staged.changes = {};
  b.staged.changes.clear();
  b.buckets.clear();
  b.prefer_failure.clear();
  b.conflicts.clear();
  s.burst = &b;
  for (BurstItem& it : items) handle_one(it);
  s.burst = nullptr;
  auto report_conflicts = [&s, &b] {
    if (s.nonce_sink)
      for (const NonceConflict& c : b.conflicts) s.nonce_sink(c);
  };
  if (b.staged.empty()) {  // nothing for the kernel (errors, ANNOUNCE, no-op deletes)
    report_conflicts();
    return;
  }
  if (s.datapath.apply(b.staged)) {
    ++s.stats.bursts;
    report_conflicts();
    return;
  }
  // Refused: the kernel holds none of it. Back to the state before the burst, then each request
  // in its own transaction (R-HDR-10); the replies written above are overwritten.
  s.roll_back(b);
  s.stats = before;  // the retries count what they do, datapath_errors included
  ++s.stats.burst_retries;
  for (BurstItem& it : items) handle_one(it);
}

}  // namespace pcpd::core
