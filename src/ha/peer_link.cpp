// SPDX-License-Identifier: GPL-2.0-or-later
// PeerLink: header checks (replay, peer restart), the outgoing stream with its acks and tokens,
// and the incoming stream applied to the ReplicatedSet.
#include "ha/peer_link.hpp"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>

#include "util/result.hpp"

namespace pcpd::ha {

namespace {

constexpr std::size_t kRetiredIds = 16;     // earlier sender ids of the peer, refused as replays
constexpr std::size_t kTokenHistory = 4096; // resolved tokens is_acked() still knows
constexpr std::size_t kChunkOverhead = kHeaderSize + 8 + 2 + kHmacSize;
constexpr std::size_t kChangeOverhead = kHeaderSize + 2 + kHmacSize;

// Greedy packing of records under `budget` bytes; a record that fits nowhere goes alone.
template <typename T, typename SizeOf>
std::vector<std::vector<T>> pack(std::vector<T> records, std::size_t budget, SizeOf size_of) {
  std::vector<std::vector<T>> out;
  std::size_t used = 0;
  for (T& r : records) {
    const std::size_t n = size_of(r);
    if (out.empty() || (used + n > budget && !out.back().empty()) ||
        out.back().size() == std::numeric_limits<std::uint16_t>::max()) {
      out.emplace_back();
      used = 0;
    }
    out.back().push_back(std::move(r));
    used += n;
  }
  return out;
}

}  // namespace

core::ChangeSet datapath_changes(const LinkEvent& event) {
  core::ChangeSet out;
  if (const auto* s = std::get_if<link_event::SnapshotReady>(&event)) return s->changes;
  if (const auto* u = std::get_if<link_event::Upsert>(&event)) {
    core::Change c;
    c.mapping = u->mapping;
    if (u->previous) {
      c.op = core::Change::Op::Replace;
      c.previous = *u->previous;
    }
    out.changes.push_back(std::move(c));
  }
  if (const auto* r = std::get_if<link_event::Remove>(&event)) {
    core::Change c;
    c.op = core::Change::Op::Remove;
    c.mapping = r->mapping;
    out.changes.push_back(std::move(c));
  }
  return out;
}

PeerLink::PeerLink(LinkKey key, std::uint32_t sender_id, LinkSettings settings)
    : key_(std::move(key)), sender_id_(sender_id), settings_(settings) {
  PCPD_ASSERT(sender_id_ != 0);
  PCPD_ASSERT(settings_.max_in_flight > 0);
  PCPD_ASSERT(settings_.max_datagram > kChunkOverhead + kMappingFixedSize);
}

// ---- role and requests from the caller -------------------------------------------------------

void PeerLink::set_role(Role role, core::Millis now) {
  if (role == role_) return;
  const bool was_primary = role_ == Role::Primary;
  role_ = role;
  if (was_primary) {
    drop_stream(/*abandon_tokens=*/true);
    need_snapshot_ = false;
  }
  if (role_ == Role::Primary) {
    // The peer holds the old primary's set at best: it needs ours. What we received stops
    // being a copy of anything (synced() was for the caller to read before this call).
    rx_snapshot_ = false;
    rx_buffer_.clear();
    rx_reorder_.clear();
    synced_with_ = 0;
    need_snapshot_ = true;
    maybe_want_snapshot();
  }
  send_hello(now);
}

void PeerLink::set_epoch_origin(core::Millis origin) { epoch_origin_ = origin; }

void PeerLink::assume_installed(std::vector<core::Mapping> mappings) {
  // Static mappings are this router's own: a snapshot from the peer never replaces them.
  std::erase_if(mappings, [](const core::Mapping& m) { return m.is_static(); });
  (void)set_.replace_all(std::move(mappings));
  synced_with_ = 0;
}

PeerLink::ReplicateResult PeerLink::replicate(const core::ChangeSet& changes, Token token,
                                              core::Millis now) {
  if (role_ != Role::Primary) return ReplicateResult::NotPrimary;
  std::vector<MappingChange> records = changes_to_send(changes, settings_.scope);
  std::erase_if(records, [this](const MappingChange& c) {
    if (c.op != MappingChange::Op::Upsert || encodable(c.mapping)) return false;
    ++stats_.unencodable;
    return true;
  });
  if (records.empty()) return ReplicateResult::NothingToSend;
  if (!peer_up_) return ReplicateResult::PeerDown;

  stats_.changes_sent += records.size();
  auto batches = pack(std::move(records), settings_.max_datagram - kChangeOverhead,
                      [](const MappingChange& c) { return encoded_size(c); });
  if (outq_.size() + batches.size() > settings_.max_queued) {
    // The peer does not keep up: a snapshot (which includes this change) replaces the queue.
    ++stats_.stream_resets;
    drop_stream(/*abandon_tokens=*/false);
    pending_.push_back({token, 0});
    need_snapshot_ = true;
    maybe_want_snapshot();
    return ReplicateResult::WaitForAck;
  }
  for (auto& batch : batches) push_stream(ChangeBatch{std::move(batch)});
  pending_.push_back({token, next_stream_ - 1});
  pump(now);
  return ReplicateResult::WaitForAck;
}

bool PeerLink::send_snapshot(const std::vector<core::Mapping>& mappings, core::Millis now) {
  if (role_ != Role::Primary || !peer_up_) return false;
  std::vector<core::Mapping> records;
  records.reserve(mappings.size());
  for (const core::Mapping& m : mappings) {
    if (!ha::replicated(m, settings_.scope)) continue;  // RFC 7767: elected ones, or all; no static
    if (m.expires <= now) continue;
    if (!encodable(m)) {
      ++stats_.unencodable;
      continue;
    }
    records.push_back(m);
  }
  // Everything still queued is older than this table: the snapshot replaces it.
  drop_stream(/*abandon_tokens=*/false);
  const auto total = static_cast<std::uint32_t>(records.size());
  const std::uint64_t generation = ++snapshot_generation_;
  push_stream(SnapshotBegin{generation, total});
  auto chunks = pack(std::move(records), settings_.max_datagram - kChunkOverhead,
                     [](const core::Mapping& m) { return encoded_size(m); });
  for (auto& chunk : chunks) push_stream(SnapshotChunk{generation, std::move(chunk)});
  push_stream(SnapshotEnd{generation, total});
  snapshot_end_seq_ = next_stream_ - 1;
  for (PendingToken& p : pending_) p.seq = snapshot_end_seq_;
  need_snapshot_ = false;
  snapshot_wanted_ = false;
  pump(now);
  return true;
}

// ---- received datagrams ----------------------------------------------------------------------

void PeerLink::on_datagram(std::span<const std::uint8_t> datagram, core::Millis now) {
  auto decoded = decode(datagram, now, key_);
  if (!decoded) {
    ++stats_.rejected[static_cast<std::size_t>(decoded.error())];
    return;
  }
  const Message& m = *decoded;
  bool newest = false;
  if (!accept_sender(m.header, now, newest)) return;
  ++stats_.datagrams_accepted;
  on_ack(m.header);
  if (const auto* hello = std::get_if<Hello>(&m.body)) on_hello(*hello, newest, now);
  if (is_reliable(m.header.type)) on_stream(m);
  maybe_want_snapshot();
  pump(now);
  if (ack_due_) send(Ack{}, 0, now);
}

// Replay protection and peer identity. Preconditions: the datagram is authenticated.
bool PeerLink::accept_sender(const Header& h, core::Millis now, bool& newest) {
  const auto reject = [this](Reject r) {
    ++stats_.rejected[static_cast<std::size_t>(r)];
    return false;
  };
  if (h.sender_id == sender_id_) return reject(Reject::Replay);  // our own datagram came back
  if (std::find(retired_ids_.begin(), retired_ids_.end(), h.sender_id) != retired_ids_.end())
    return reject(Reject::Replay);
  bool restarted = false;
  if (h.sender_id != peer_id_) {
    // A new sender id: the peer (re)started. Its old stream is gone, and so is ours to it.
    if (peer_id_ != 0) {
      restarted = true;
      ++stats_.peer_restarts;
      retired_ids_.push_back(peer_id_);
      if (retired_ids_.size() > kRetiredIds) retired_ids_.pop_front();
      if (role_ == Role::Primary) drop_stream(/*abandon_tokens=*/false);
    }
    peer_id_ = h.sender_id;
    replay_.reset();
    delivered_ = 0;
    rx_reorder_.clear();
    rx_snapshot_ = false;
    rx_buffer_.clear();
    need_snapshot_ = true;
    snapshot_wanted_ = false;
    peer_up_ = false;  // reported as PeerUp below
  }
  newest = h.sequence > replay_.highest();
  if (!replay_.accept(h.sequence)) return reject(Reject::Replay);
  last_rx_ = now;
  if (newest) peer_role_ = h.role;  // a late datagram does not undo a newer role
  if (!peer_up_) {
    peer_up_ = true;
    out_.events.emplace_back(link_event::PeerUp{peer_id_, peer_role_, restarted});
    send_hello(now);  // let it learn our id and state without waiting a hello interval
  }
  return true;
}

void PeerLink::on_ack(const Header& h) {
  if (h.peer_id != sender_id_ || h.ack <= acked_) return;
  acked_ = std::min(h.ack, next_stream_ - 1);
  while (!outq_.empty() && outq_.front().seq <= acked_) outq_.pop_front();
  while (!pending_.empty() && pending_.front().seq != 0 && pending_.front().seq <= acked_) {
    resolve_token(pending_.front().token, true);
    out_.events.emplace_back(link_event::Acked{pending_.front().token});
    pending_.pop_front();
  }
  if (snapshot_end_seq_ != 0 && snapshot_end_seq_ <= acked_) {
    snapshot_end_seq_ = 0;
    ++stats_.snapshots_sent;
  }
}

void PeerLink::on_hello(const Hello& hello, bool newest, core::Millis now) {
  // A HELLO overtaken by a later datagram describes a past state (e.g. before our snapshot).
  if (!newest) return;
  if (hello.has_epoch) peer_epoch_origin_ = now - core::Millis(static_cast<std::int64_t>(hello.epoch_age_ms));
  // The peer does not hold our snapshot (restarted, demoted primary, failed snapshot) and none
  // is on its way.
  if (role_ == Role::Primary && hello.synced_with != sender_id_ && snapshot_end_seq_ == 0)
    need_snapshot_ = true;
}

void PeerLink::on_stream(const Message& m) {
  if (role_ == Role::Primary) {
    // Both sides claim Primary: never let the other overwrite our table.
    ++stats_.rejected[static_cast<std::size_t>(Reject::RoleConflict)];
    return;
  }
  ack_due_ = true;
  const std::uint64_t seq = m.header.stream_seq;
  if (seq <= delivered_) {
    ++stats_.duplicates;
    return;
  }
  if (seq != delivered_ + 1 && m.header.type != MessageType::SnapshotBegin) {
    // After a gap: held (within the sender's window) until the gap is filled.
    ++stats_.out_of_order;
    if (seq - delivered_ <= 2 * settings_.max_in_flight) rx_reorder_.emplace(seq, m);
    return;
  }
  // A snapshot begins a new stream position: what the sender queued before it was dropped.
  delivered_ = seq;
  deliver(m);
  std::erase_if(rx_reorder_, [this](const auto& kv) { return kv.first <= delivered_; });
  for (auto it = rx_reorder_.begin(); it != rx_reorder_.end() && it->first == delivered_ + 1;
       it = rx_reorder_.erase(it)) {
    delivered_ = it->first;
    deliver(it->second);
  }
}

void PeerLink::deliver(const Message& m) {
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, SnapshotBegin>) {
          rx_snapshot_ = true;
          rx_generation_ = b.generation;
          rx_total_ = b.total;
          rx_buffer_.clear();
          rx_buffer_.reserve(b.total);
          synced_with_ = 0;  // the sender dropped changes for this: no longer in sync until END
        } else if constexpr (std::is_same_v<T, SnapshotChunk>) {
          if (rx_snapshot_ && b.generation == rx_generation_)
            rx_buffer_.insert(rx_buffer_.end(), b.mappings.begin(), b.mappings.end());
        } else if constexpr (std::is_same_v<T, SnapshotEnd>) {
          if (rx_snapshot_ && b.generation == rx_generation_ && b.total == rx_total_ &&
              rx_buffer_.size() == rx_total_) {
            link_event::SnapshotReady ready;
            ready.changes = set_.replace_all(std::move(rx_buffer_));
            ready.mappings = set_.mappings();
            out_.events.emplace_back(std::move(ready));
            synced_with_ = peer_id_;
            synced_generation_ = b.generation;
            ++stats_.snapshots_received;
          } else {
            ++stats_.snapshots_failed;  // our next HELLO says we hold no snapshot: it is resent
            synced_with_ = 0;
          }
          rx_snapshot_ = false;
          rx_buffer_.clear();
        } else if constexpr (std::is_same_v<T, ChangeBatch>) {
          for (const MappingChange& c : b.changes) {
            ++stats_.changes_received;
            auto change = set_.apply(c);
            if (!change) {
              ++stats_.removes_unknown;
              continue;
            }
            if (change->op == core::Change::Op::Remove) {
              out_.events.emplace_back(link_event::Remove{c.id, std::move(change->mapping)});
            } else {
              link_event::Upsert u{std::move(change->mapping), std::nullopt};
              if (change->op == core::Change::Op::Replace) u.previous = std::move(change->previous);
              out_.events.emplace_back(std::move(u));
            }
          }
        }
      },
      m.body);
}

// ---- timers ----------------------------------------------------------------------------------

void PeerLink::on_timer(core::Millis now) {
  if (peer_up_ && now - last_rx_ >= settings_.peer_timeout) {
    peer_up_ = false;
    ++stats_.peer_downs;
    drop_stream(/*abandon_tokens=*/true);
    need_snapshot_ = true;
    snapshot_wanted_ = false;
    rx_snapshot_ = false;  // a partial snapshot is useless: a whole one follows
    rx_buffer_.clear();
    rx_reorder_.clear();
    out_.events.emplace_back(link_event::PeerDown{peer_id_});
  }
  if (peer_up_ && !outq_.empty() && outq_.front().sent &&
      now - outq_.front().first_sent >= settings_.stream_timeout) {
    // Bounded retransmission: the peer answers but does not take our stream.
    ++stats_.stream_resets;
    drop_stream(/*abandon_tokens=*/false);
    need_snapshot_ = true;
    snapshot_wanted_ = false;
    maybe_want_snapshot();
  }
  set_.prune(now);
  if (now >= next_hello_) send_hello(now);
  pump(now);
}

core::Millis PeerLink::next_timer() const {
  core::Millis next = next_hello_;
  if (peer_up_) next = std::min(next, last_rx_ + settings_.peer_timeout);
  if (peer_up_ && !outq_.empty()) {
    if (outq_.front().sent) next = std::min(next, outq_.front().first_sent + settings_.stream_timeout);
    for (const Outgoing& o : outq_) {
      if (!o.sent) break;
      next = std::min(next, o.last_sent + settings_.retransmit_interval);
    }
  }
  return next;
}

LinkOutput PeerLink::take() { return std::exchange(out_, LinkOutput{}); }

bool PeerLink::is_acked(Token token) const {
  auto it = token_history_.find(token);
  return it != token_history_.end() && it->second;
}

bool PeerLink::is_pending(Token token) const {
  return std::any_of(pending_.begin(), pending_.end(), [token](const PendingToken& p) { return p.token == token; });
}

// ---- outgoing stream -------------------------------------------------------------------------

// Drops every queued stream message. Pending tokens are abandoned, or kept for the next
// snapshot (which will include their changes).
void PeerLink::drop_stream(bool abandon_tokens) {
  outq_.clear();
  snapshot_end_seq_ = 0;
  if (abandon_tokens) {
    for (const PendingToken& p : pending_) resolve_token(p.token, false);
    stats_.tokens_abandoned += pending_.size();
    pending_.clear();
  } else {
    for (PendingToken& p : pending_) p.seq = 0;
  }
}

void PeerLink::maybe_want_snapshot() {
  if (role_ != Role::Primary || !peer_up_ || peer_role_ == Role::Primary) return;
  if (!need_snapshot_ || snapshot_wanted_) return;
  snapshot_wanted_ = true;
  out_.events.emplace_back(link_event::SnapshotWanted{});
}

void PeerLink::push_stream(Body body) {
  Outgoing o;
  o.seq = next_stream_++;
  o.body = std::move(body);
  outq_.push_back(std::move(o));
}

// Sends what the window allows: new messages at once, and, when the oldest has gone
// unacknowledged for a retransmit interval, the whole window again in order (go-back-N).
void PeerLink::pump(core::Millis now) {
  if (!peer_up_ || outq_.empty()) return;
  const bool resend = outq_.front().sent && now - outq_.front().last_sent >= settings_.retransmit_interval;
  std::size_t window = 0;
  for (Outgoing& o : outq_) {
    if (++window > settings_.max_in_flight) break;  // outq_ holds only unacknowledged messages
    if (o.sent && !resend) continue;
    if (o.sent) {
      ++stats_.retransmissions;
    } else {
      o.sent = true;
      o.first_sent = now;
    }
    o.last_sent = now;
    send(o.body, o.seq, now);
  }
}

void PeerLink::send(Body body, std::uint64_t stream_seq, core::Millis now) {
  Message m;
  m.header.role = role_;
  m.header.sender_id = sender_id_;
  m.header.peer_id = peer_id_;
  m.header.sequence = next_packet_seq_++;
  m.header.stream_seq = stream_seq;
  m.header.ack = delivered_;
  m.body = std::move(body);
  auto bytes = encode(m, now, key_);
  if (!bytes) {
    ++stats_.unencodable;  // records were checked when queued: not expected
    return;
  }
  out_.datagrams.push_back(std::move(*bytes));
  ++stats_.datagrams_sent;
  ack_due_ = false;  // every datagram carries the cumulative ack
}

void PeerLink::send_hello(core::Millis now) {
  Hello h;
  if (epoch_origin_) {
    h.has_epoch = true;
    h.epoch_age_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, (now - *epoch_origin_).count()));
  }
  h.synced_with = synced_with_;
  h.synced_generation = synced_generation_;
  send(h, 0, now);
  next_hello_ = now + settings_.hello_interval;
}

void PeerLink::resolve_token(Token token, bool acked) {
  token_history_[token] = acked;
  while (token_history_.size() > kTokenHistory) token_history_.erase(token_history_.begin());
}

}  // namespace pcpd::ha
