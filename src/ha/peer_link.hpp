// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ha::PeerLink: the replication link to the other pcpd of a VRRP pair, as a pure state
// machine. The caller owns the UDP socket and the timer: it feeds received datagrams
// (on_datagram), timer ticks (on_timer) and the primary's changes (replicate, send_snapshot),
// then sends take().datagrams to the peer and acts on take().events. No sockets, no clock reads.
//
// What it guarantees:
//  - Mappings flow from the side whose role is Primary to the other side only.
//  - Stream messages (snapshots, changes) arrive exactly once and in order: sequence numbers,
//    cumulative acks, go-back-N retransmission every retransmit_interval, at most max_in_flight
//    unacknowledged; the receiver holds messages that arrive after a gap until it is filled. Every datagram is authenticated (HMAC-SHA256) and replay-checked with a
//    64-datagram window (ReplayWindow), so reordering on the sync network costs nothing.
//  - Retransmission is bounded: no datagram from the peer for peer_timeout -> PeerDown, the
//    stream is dropped and every pending token abandoned; the oldest message unacknowledged for
//    stream_timeout while the peer is up -> the stream is dropped and a snapshot follows.
//  - On (re)connection — a HELLO from a new sender id (the peer restarted), the link coming back
//    after PeerDown, a promotion, or a peer HELLO saying it does not hold our snapshot — the
//    Primary emits SnapshotWanted; the caller answers with send_snapshot(server.mappings()).
//    The receiver applies a snapshot only when complete, as "replace the whole replicated set".
//  - RFC 7767 §3 (checkpoint before respond): replicate() returns WaitForAck, then Acked(token)
//    fires once the peer holds the change (directly, or through a snapshot that includes it).
//    The wait is the caller's to bound; PeerDown abandons every pending token.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "ha/link_key.hpp"
#include "ha/peer_message.hpp"
#include "ha/replay_window.hpp"
#include "ha/replication.hpp"

namespace pcpd::ha {

struct LinkSettings {
  ReplicationScope scope = ReplicationScope::Elected;
  core::Millis hello_interval{1000};       // keepalive
  core::Millis retransmit_interval{200};   // resend unacknowledged stream messages
  core::Millis peer_timeout{3000};         // silence -> PeerDown
  core::Millis stream_timeout{5000};       // oldest unacknowledged message -> stream reset
  std::size_t max_in_flight = 64;          // stream messages sent and not yet acknowledged
  std::size_t max_queued = 65536;          // change messages waiting; beyond -> stream reset
  std::size_t max_datagram = kTargetDatagramSize;  // packing target (one big record may exceed it)
};

// Chosen by the caller, strictly increasing across replicate() calls.
using Token = std::uint64_t;

namespace link_event {
struct PeerUp {
  std::uint32_t peer_id = 0;
  Role role = Role::Unknown;
  bool restarted = false;  // a different sender id than the last peer: it restarted
};
struct PeerDown {
  std::uint32_t peer_id = 0;  // every pending token is abandoned (never Acked)
};
// Primary only: call send_snapshot() with the current mapping table.
struct SnapshotWanted {};
// The peer's complete snapshot: `mappings` is the whole replicated set now (sorted by MappingId),
// `changes` turns the previous set into it (apply to the datapath as one ChangeSet).
struct SnapshotReady {
  std::vector<core::Mapping> mappings;
  core::ChangeSet changes;
};
// A replicated mapping was added or refreshed (previous set: it replaced that one).
struct Upsert {
  core::Mapping mapping;
  std::optional<core::Mapping> previous;
};
// A replicated mapping was removed; `mapping` is the one that was held.
struct Remove {
  MappingId id;
  core::Mapping mapping;
};
// The peer holds everything replicate() sent under this token.
struct Acked {
  Token token = 0;
};
}  // namespace link_event

using LinkEvent = std::variant<link_event::PeerUp, link_event::PeerDown, link_event::SnapshotWanted,
                               link_event::SnapshotReady, link_event::Upsert, link_event::Remove,
                               link_event::Acked>;

// The datapath changes a received event implies (SnapshotReady, Upsert, Remove); empty otherwise.
[[nodiscard]] core::ChangeSet datapath_changes(const LinkEvent& event);

struct LinkOutput {
  std::vector<std::vector<std::uint8_t>> datagrams;  // to the peer, in this order
  std::vector<LinkEvent> events;
};

struct LinkStats {
  std::array<std::uint64_t, kRejectReasons> rejected{};  // by Reject
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_accepted = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t changes_sent = 0;      // change records queued
  std::uint64_t changes_received = 0;  // change records applied
  std::uint64_t snapshots_sent = 0;    // acknowledged by the peer
  std::uint64_t snapshots_received = 0;
  std::uint64_t snapshots_failed = 0;  // END did not match what arrived; the source is asked again
  std::uint64_t duplicates = 0;        // stream messages already delivered
  std::uint64_t out_of_order = 0;      // stream messages after a gap (held until it is filled)
  std::uint64_t peer_restarts = 0;
  std::uint64_t peer_downs = 0;
  std::uint64_t stream_resets = 0;     // stalled or overflowing stream replaced by a snapshot
  std::uint64_t tokens_abandoned = 0;
  std::uint64_t unencodable = 0;       // mappings beyond the record limits, not replicated
  std::uint64_t removes_unknown = 0;   // removes of mappings this side did not hold
  [[nodiscard]] std::uint64_t rejected_by(Reject r) const { return rejected[static_cast<std::size_t>(r)]; }
};

class PeerLink {
 public:
  enum class ReplicateResult : std::uint8_t {
    WaitForAck,     // queued: respond after Acked(token) (or the caller's bound)
    NothingToSend,  // no replicated mapping changed (e.g. unelected): respond now
    PeerDown,       // no peer to wait for: respond now, a snapshot follows when it is back
    NotPrimary,     // only the Primary replicates
  };

  // Precondition: sender_id != 0 (random_sender_id(), once per process start).
  PeerLink(LinkKey key, std::uint32_t sender_id, LinkSettings settings = {});

  // The VRRP role. Promotion to Primary asks for a snapshot for the peer and clears synced()
  // (read it first: it decides the epoch); leaving Primary drops the outgoing stream and
  // abandons pending tokens. A HELLO announces the new role at once.
  void set_role(Role role, core::Millis now);
  // What this side has installed now, when that is not the replicated set (after serving as
  // Primary: its own table). The next SnapshotReady's changes are computed against it.
  void assume_installed(std::vector<core::Mapping> mappings);
  // This side's epoch origin (core::Server::epoch_origin()), sent in HELLO as an age.
  void set_epoch_origin(core::Millis origin);

  // Primary: replicate the changes one request made (already applied to the local datapath).
  ReplicateResult replicate(const core::ChangeSet& changes, Token token, core::Millis now);
  // Primary: send the whole table (filtered by the scope; expired mappings skipped). Replaces
  // whatever was still queued; pending tokens are acknowledged with the snapshot. False when not
  // Primary or the peer is down (a snapshot is asked for again when it comes back).
  bool send_snapshot(const std::vector<core::Mapping>& mappings, core::Millis now);

  void on_datagram(std::span<const std::uint8_t> datagram, core::Millis now);
  void on_timer(core::Millis now);
  [[nodiscard]] core::Millis next_timer() const;  // when on_timer() has work next

  [[nodiscard]] LinkOutput take();  // drains the datagrams to send and the events

  [[nodiscard]] bool is_acked(Token token) const;  // Acked fired (recent tokens only)
  [[nodiscard]] bool is_pending(Token token) const;
  [[nodiscard]] bool peer_up() const { return peer_up_; }
  [[nodiscard]] std::uint32_t peer_id() const { return peer_id_; }
  [[nodiscard]] Role peer_role() const { return peer_role_; }
  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] std::uint32_t sender_id() const { return sender_id_; }
  // Receiver: the replicated set (sorted by MappingId), and whether it is a complete snapshot of
  // the peer's current process kept up to date since (for the epoch decision on promotion).
  [[nodiscard]] std::vector<core::Mapping> replicated() const { return set_.mappings(); }
  [[nodiscard]] bool synced() const { return synced_with_ != 0 && synced_with_ == peer_id_; }
  // The peer's epoch origin on this side's clock (± transit time), from its last HELLO.
  [[nodiscard]] std::optional<core::Millis> peer_epoch_origin() const { return peer_epoch_origin_; }
  [[nodiscard]] std::size_t queued() const { return outq_.size(); }
  [[nodiscard]] const LinkStats& stats() const { return stats_; }

 private:
  struct Outgoing {
    std::uint64_t seq = 0;
    Body body;
    bool sent = false;
    core::Millis first_sent{0};
    core::Millis last_sent{0};
  };
  struct PendingToken {
    Token token = 0;
    std::uint64_t seq = 0;  // stream message that acknowledges it; 0 = the next snapshot's end
  };

  // Returns whether the datagram is accepted; `newest` is set when no later one was seen.
  bool accept_sender(const Header& h, core::Millis now, bool& newest);
  void on_ack(const Header& h);
  void on_hello(const Hello& hello, bool newest, core::Millis now);
  void on_stream(const Message& m);
  void deliver(const Message& m);
  void drop_stream(bool abandon_tokens);
  void maybe_want_snapshot();
  void push_stream(Body body);
  void pump(core::Millis now);
  void send(Body body, std::uint64_t stream_seq, core::Millis now);
  void send_hello(core::Millis now);
  void resolve_token(Token token, bool acked);

  LinkKey key_;
  std::uint32_t sender_id_;
  LinkSettings settings_;
  Role role_ = Role::Unknown;
  std::optional<core::Millis> epoch_origin_;
  std::uint64_t next_packet_seq_ = 1;
  core::Millis next_hello_ = core::Millis::min();
  LinkOutput out_;
  LinkStats stats_;

  // The peer (receiving side of the header checks).
  std::uint32_t peer_id_ = 0;
  Role peer_role_ = Role::Unknown;
  bool peer_up_ = false;
  core::Millis last_rx_{0};
  ReplayWindow replay_;
  std::deque<std::uint32_t> retired_ids_;
  std::optional<core::Millis> peer_epoch_origin_;

  // Outgoing stream (Primary).
  std::deque<Outgoing> outq_;
  std::uint64_t next_stream_ = 1;
  std::uint64_t acked_ = 0;
  std::deque<PendingToken> pending_;
  std::map<Token, bool> token_history_;  // recent tokens: acked or abandoned
  std::uint64_t snapshot_generation_ = 0;
  std::uint64_t snapshot_end_seq_ = 0;   // in flight until acknowledged
  bool need_snapshot_ = true;
  bool snapshot_wanted_ = false;         // SnapshotWanted emitted, send_snapshot() not yet called

  // Incoming stream (not Primary).
  std::uint64_t delivered_ = 0;  // peer's stream delivered in order up to here
  std::map<std::uint64_t, Message> rx_reorder_;  // arrived after a gap, by stream sequence
  bool ack_due_ = false;
  bool rx_snapshot_ = false;
  std::uint64_t rx_generation_ = 0;
  std::uint32_t rx_total_ = 0;
  std::vector<core::Mapping> rx_buffer_;
  std::uint32_t synced_with_ = 0;
  std::uint64_t synced_generation_ = 0;
  ReplicatedSet set_;
};

}  // namespace pcpd::ha
