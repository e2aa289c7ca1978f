// SPDX-License-Identifier: GPL-2.0-or-later
// The one request path (docs/design.md "One request"): every PCP and NAT-PMP request,
// alone (handle_datagram, handle_natpmp, handle) or in a receive batch (handle_burst), is decided
// into a transaction (Pending) without touching the datapath or the table; the datapath gets the
// transaction's changes in one nftables transaction (the kernel's cost is per transaction, so one
// per request capped pcpd far below the socket's rate); only if it took them is the transaction
// committed to the table, the counters and the checkpoint buckets. Each request stays all or
// nothing (RFC 6887 §7.3, R-HDR-10): a refused transaction of several requests is dropped and each
// request decided again in its own, so the kernel's refusal reaches only the requests it
// concerns; a refused request alone gets NO_RESOURCES. Expiry is its own transaction, before.
#include <algorithm>
#include <array>
#include <optional>

#include "core/server_impl.hpp"
#include "wire/codec.hpp"

namespace pcpd::core {

using wire::ResultCode;

std::size_t Server::Impl::opcode_index(wire::Opcode op) {
  switch (op) {
    case wire::Opcode::Announce: return 0;
    case wire::Opcode::Map: return 1;
    case wire::Opcode::Peer: return 2;
    default: return 3;
  }
}

void Server::Impl::count_result(Stats& s, ResultCode code) {
  const auto i = static_cast<std::size_t>(code);
  if (i < s.responses_by_result.size()) ++s.responses_by_result[i];
}

void Server::Impl::open() {
  // Empty: carry() leaves it so, whatever the outcome, so that nothing read outside a
  // transaction (readdress, [[static]]) sees decisions of the last one.
  deciding = true;
}

void Server::Impl::stage(const Change& change) {
  pending.stage(change);
  if (request != nullptr) request->staged = true;
}

void Server::Impl::stage(const ChangeSet& changes) {
  for (const Change& c : changes.changes) stage(c);
}

bool Server::Impl::waits(const IpAddr& internal, wire::Opcode op, std::uint8_t protocol,
                         std::uint16_t internal_port, std::uint16_t suggested_port) const {
  if (pending.empty()) return false;
  if (op != wire::Opcode::Map && op != wire::Opcode::Peer) return false;  // reads no mapping
  // Port 0: a bulk or wildcard delete, or an all-ports MAP: reads every mapping of an address
  // (or of an external address): first in a transaction of its own.
  if (internal_port == 0) return true;
  // Its mapping, its binding: read from the table, so nothing of the transaction may be on them.
  if (pending.touches(EndpointKey{internal, protocol, internal_port})) return true;
  // A suggestion of an external port the transaction frees: decided once it is free.
  return suggested_port != 0 && pending.releases(protocol, suggested_port);
}

bool Server::Impl::decide(BurstItem& it, Decided& d) {
  const bool pf_charged = d.pf_charged;
  d = Decided{};
  d.pf_charged = pf_charged;
  it.reply = 0;
  it.hold = false;
  it.decision = Reply{};
  request = &d;
  const bool decided_now = it.natpmp ? decide_natpmp(it, d) : decide_pcp(it, d);
  request = nullptr;
  // RFC 7767 §3: an honoured election is answered once the standby holds it (the daemon's HA
  // peer decides whether there is one).
  it.hold = decided_now && d.staged && it.decision.kind == Reply::Kind::Success &&
            it.decision.response.options.checkpoint_required;
  return decided_now;
}

bool Server::Impl::decide_pcp(BurstItem& it, Decided& d) {
  const wire::DecodedRequest decoded = wire::decode_request(it.datagram, policy.option_codes);
  if (const auto* reject = std::get_if<wire::Reject>(&decoded)) {
    d.done = true;
    if (reject->action == wire::Reject::Action::Drop) {
      ++tally().dropped;  // RFC 6887 §8.2 silent drops
      return true;
    }
    count_result(tally(), reject->code);
    // R-HDR-6: not parsed -> the reserved bits keep the copied client address bits.
    it.reply = wire::encode_error_response(it.datagram, reject->code, error_lifetime(reject->code),
                                           epoch.at(clock.now()), false, it.out);
    return true;
  }
  const auto& req = std::get<wire::Request>(decoded);
  if (!pending.empty()) {
    const IpAddr internal = req.options.third_party ? *req.options.third_party : it.ctx.source;
    std::uint8_t protocol = 0;
    std::uint16_t port = 0, suggested = 0;
    if (const auto* m = std::get_if<wire::MapBody>(&req.body)) {
      protocol = m->protocol, port = m->internal_port, suggested = m->external_port;
    } else if (const auto* p = std::get_if<wire::PeerBody>(&req.body)) {
      protocol = p->protocol, port = p->internal_port, suggested = p->external_port;
    }
    if (waits(internal, req.opcode, protocol, port, suggested)) return false;
  }
  d.opcode = opcode_index(req.opcode);
  it.decision = handle(req, it.ctx);
  return true;
}

void Server::Impl::encode(BurstItem& it, const Decided& d) const {
  if (d.done) return;
  if (it.natpmp) {
    encode_natpmp(it, d);
    return;
  }
  const Reply& r = it.decision;
  switch (r.kind) {
    case Reply::Kind::Drop: it.reply = 0; return;
    case Reply::Kind::Success: it.reply = wire::encode_response(r.response, it.out, policy.option_codes); return;
    case Reply::Kind::Error:
      // R-CAP-8, R-CAP-5: the copied CAPABILITY option becomes the configured set (or goes).
      it.reply = wire::encode_error_response(it.datagram, r.response.result, r.response.lifetime,
                                             r.response.epoch, r.parsed, it.out,
                                             r.response.options.capability, policy.option_codes);
      return;
  }
}

bool Server::Impl::carry() {
  if (!pending.changes().empty() && !datapath.apply(pending.changes())) {
    deciding = false;  // dropped: the table never held it
    pending.clear();
    return false;
  }
  commit();
  pending.clear();
  return true;
}

void Server::Impl::commit() {
  deciding = false;
  table.commit(pending.changes());
  for (const Mapping& m : pending.table_only()) table.replace(m);
  add_counts(stats, pending.stats);
  const Millis now = clock.now();
  for (const Pending::ElectionRecord& e : pending.elections)
    checkpoint_limiter.record(policy.checkpoint, e.election, e.internal, now, stats);
  stats.elected = table.elected_count();  // RFC 7767 gauge follows the table
  if (nonce_sink)
    for (const NonceConflict& c : pending.conflicts) nonce_sink(c);
}

void Server::Impl::fail(Reply& r, const Decided& d, bool natpmp) {
  // RFC 6887 §7.3 / R-HDR-10 (STYLE.md "Apply"): all or nothing; nothing of it is anywhere.
  ++stats.datapath_errors;
  if (natpmp) {
    ++stats.natpmp_requests;
    ++stats.natpmp_errors;
  } else {
    ++stats.requests_by_opcode[d.opcode];
    count_result(stats, ResultCode::NoResources);
  }
  r.kind = Reply::Kind::Error;
  r.parsed = true;
  r.response.result = ResultCode::NoResources;
  r.response.lifetime = error_lifetime(ResultCode::NoResources);
  r.response.epoch = epoch.at(clock.now());
  r.response.options.checkpoint_required = false;
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
  // Mappings past their lifetime leave first, in their own transaction, so no request sees one:
  // a new client may take the key or port, and a nonce check never runs against it.
  s.expire_due();
  // RFC 6887 §18.1: the rate limits first, once; a retry below does not charge them again.
  for (BurstItem& it : items) {
    it.reply = 0;
    it.hold = false;
    it.admitted = it.natpmp ? s.admit_natpmp(it.ctx) : !s.rate_limited(it.ctx);
  }
  if (s.decided.size() < items.size()) s.decided.resize(items.size());
  std::fill_n(s.decided.begin(), items.size(), Impl::Decided{});
  if (items.size() > 1) s.prefetch(items);

  // A request whose transaction (it alone) the datapath refused: NO_RESOURCES.
  auto refused = [&s](BurstItem& it, Impl::Decided& d) {
    s.fail(it.decision, d, it.natpmp);
    it.hold = false;
  };
  // One request in its own transaction.
  auto alone = [&s, &refused](BurstItem& it, Impl::Decided& d) {
    s.open();
    (void)s.decide(it, d);  // an empty transaction: nothing to wait for
    if (!s.carry()) refused(it, d);
    s.encode(it, d);
  };

  std::size_t i = 0;
  while (i < items.size()) {
    // Decide from i until a request must wait for what is decided before it (or the end).
    s.open();
    std::size_t end = i, requests = 0;
    for (; end < items.size(); ++end) {
      if (!items[end].admitted) continue;
      if (!s.decide(items[end], s.decided[end])) break;
      ++requests;
    }
    const bool several = s.pending.changes().changes.size() > 0 && requests > 1;
    if (s.carry()) {
      if (several) ++s.stats.bursts;
      for (std::size_t k = i; k < end; ++k)
        if (items[k].admitted) s.encode(items[k], s.decided[k]);
    } else if (requests == 1) {
      for (std::size_t k = i; k < end; ++k)
        if (items[k].admitted) {
          refused(items[k], s.decided[k]);
          s.encode(items[k], s.decided[k]);
        }
    } else {
      // Refused: the kernel holds none of it, the table never did. Each request again in its
      // own transaction (R-HDR-10); what the first decisions counted went with the drop.
      ++s.stats.burst_retries;
      for (std::size_t k = i; k < end; ++k)
        if (items[k].admitted) alone(items[k], s.decided[k]);
    }
    i = end;
  }
}

namespace {

// One datagram as a burst of one (Server::handle_datagram, Server::handle_natpmp).
std::size_t handle_one(Server& server, std::span<const std::uint8_t> datagram, const Context& ctx,
                       bool natpmp, std::span<std::uint8_t> out) {
  BurstItem it;
  it.datagram = datagram;
  it.ctx = ctx;
  it.natpmp = natpmp;
  it.out = out;
  server.handle_burst(std::span<BurstItem>(&it, 1));
  return it.reply;
}

}  // namespace

std::size_t Server::handle_datagram(std::span<const std::uint8_t> datagram, const Context& ctx,
                                    std::span<std::uint8_t> out) {
  return handle_one(*this, datagram, ctx, false, out);
}

std::size_t Server::handle_natpmp(std::span<const std::uint8_t> datagram, const Context& ctx,
                                  std::span<std::uint8_t> out) {
  return handle_one(*this, datagram, ctx, true, out);
}

Reply Server::handle(const wire::Request& request, const Context& ctx) {
  // A decoded request (tests, tools): the same transaction as a datagram's, no rate limits.
  Impl& s = *impl_;
  s.expire_due();
  Impl::Decided d;
  s.request = &d;
  s.open();
  Reply r = s.handle(request, ctx);
  s.request = nullptr;
  d.opcode = Impl::opcode_index(request.opcode);
  if (!s.carry()) {
    s.fail(r, d, false);
    // R-RC-4: an error copies the request's fields, not the ones the success would have had.
    const auto capability = r.response.options.capability;
    r = s.error(request, ResultCode::NoResources);
    r.response.options.capability = capability;
  }
  return r;
}

}  // namespace pcpd::core
