// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_ha PeerLink on a perfect fake network: handshake and snapshot, acks before responses
// (RFC 7767 §3), bounded retransmission, stream reset, replay, keys, versions, roles, failover,
// epoch, snapshot checks and datagram size.
#include "ha/peer_link.hpp"
#include "unit/ha_fixtures.hpp"

using namespace pcpd::ha;
using namespace pcpd::test::ha;
using pcpd::core::Change;
using pcpd::core::ChangeSet;
namespace ev = pcpd::ha::link_event;
using RR = PeerLink::ReplicateResult;

namespace {

constexpr int kPrimary = 0;
constexpr int kBackup = 1;

std::vector<Mapping> table(Millis now, std::uint32_t n, bool all_elected = false) {
  std::vector<Mapping> t;
  for (std::uint32_t i = 1; i <= n; ++i) t.push_back(sample(i, all_elected || i % 2 == 0, now));
  return t;
}

std::vector<Mapping> elected(const std::vector<Mapping>& t) {
  std::vector<Mapping> out;
  for (const Mapping& m : t)
    if (m.checkpoint) out.push_back(m);
  return sorted(out);
}

// The receiver holds `expected`: same fields, expiry shifted by the clock offset (± transit).
void check_holds(Harness& h, int n, const std::vector<Mapping>& expected) {
  const auto got = h.link(n).replicated();
  REQUIRE(got.size() == expected.size());
  const Millis offset = h.node(n).offset - h.node(1 - n).offset;
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(same_except_expiry(got[i], expected[i]));
    const Millis skew = got[i].expires - (expected[i].expires + offset);
    CHECK(skew >= Millis(0));
    CHECK(skew <= Millis(1000));
  }
}

// A primary (node 0) with `n` mappings, synced with its backup (node 1).
Harness synced_pair(std::uint32_t n = 10, LinkSettings settings = {}) {
  Harness h(1, {}, settings);
  h.node(kPrimary).table = table(h.time(kPrimary), n);
  h.link(kPrimary).set_role(Role::Primary, h.time(kPrimary));
  h.collect(kPrimary);
  h.run_for(Millis(2500));
  REQUIRE(h.link(kBackup).synced());
  return h;
}

ChangeSet add(const Mapping& m) { return ChangeSet{{Change{Change::Op::Add, m, {}, false}}}; }

bool is_stream_datagram(const std::vector<std::uint8_t>& d) {
  return d.size() > 5 && d[5] >= 2 && d[5] <= 5;  // SNAPSHOT_* or CHANGE
}

}  // namespace

TEST_CASE("ha link: on connection the primary snapshots its elected mappings and the backup's set equals them") {
  Harness h = synced_pair(10);
  CHECK(count_events<ev::PeerUp>(h.node(kPrimary).events) == 1);
  CHECK(count_events<ev::PeerUp>(h.node(kBackup).events) == 1);
  CHECK(count_events<ev::SnapshotWanted>(h.node(kPrimary).events) == 1);
  REQUIRE(count_events<ev::SnapshotReady>(h.node(kBackup).events) == 1);
  check_holds(h, kBackup, elected(h.node(kPrimary).table));
  const auto& ready = std::get<ev::SnapshotReady>(h.node(kBackup).events.back());
  CHECK(ready.changes.changes.size() == 5);  // five Adds to an empty datapath
  CHECK(h.link(kPrimary).stats().snapshots_sent == 1);
  CHECK(h.link(kBackup).stats().snapshots_received == 1);
}

TEST_CASE("ha link (RFC 7767 §3): an elected change is Acked only once the peer holds it") {
  Harness h = synced_pair();
  const Mapping m = sample(50, true, h.time(kPrimary));
  h.node(kBackup).cut_outbound = true;  // the backup receives but its acks are lost
  CHECK(h.link(kPrimary).replicate(add(m), 7, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  CHECK(h.link(kPrimary).is_pending(7));
  h.run_for(Millis(150));
  CHECK(count_events<ev::Upsert>(h.node(kBackup).events) == 1);  // delivered...
  CHECK_FALSE(h.link(kPrimary).is_acked(7));                      // ...but not acknowledged
  CHECK(count_events<ev::Acked>(h.node(kPrimary).events) == 0);
  h.node(kBackup).cut_outbound = false;
  h.run_for(Millis(400));  // the retransmission is a duplicate for the backup, which acks again
  CHECK(h.link(kPrimary).is_acked(7));
  CHECK_FALSE(h.link(kPrimary).is_pending(7));
  CHECK(count_events<ev::Acked>(h.node(kPrimary).events) == 1);
  CHECK(count_events<ev::Upsert>(h.node(kBackup).events) == 1);  // exactly once
  CHECK(h.link(kBackup).stats().duplicates >= 1);
  const auto& up = std::get<ev::Upsert>(*std::find_if(h.node(kBackup).events.begin(), h.node(kBackup).events.end(),
                                                      [](const LinkEvent& e) { return std::holds_alternative<ev::Upsert>(e); }));
  CHECK(same_except_expiry(up.mapping, m));
  CHECK_FALSE(up.previous.has_value());
  CHECK(datapath_changes(LinkEvent{up}).changes.at(0).op == Change::Op::Add);
}

TEST_CASE("ha link: replicate says when there is nothing to wait for (unelected, not primary, peer down)") {
  Harness h = synced_pair();
  CHECK(h.link(kPrimary).replicate(add(sample(60, false, h.time(kPrimary))), 1, h.time(kPrimary)) ==
        RR::NothingToSend);
  CHECK(h.link(kBackup).replicate(add(sample(61, true, h.time(kBackup))), 2, h.time(kBackup)) == RR::NotPrimary);
  h.node(kBackup).cut_outbound = true;
  h.run_for(Millis(3100));
  REQUIRE_FALSE(h.link(kPrimary).peer_up());
  CHECK(h.link(kPrimary).replicate(add(sample(62, true, h.time(kPrimary))), 3, h.time(kPrimary)) == RR::PeerDown);
  CHECK(h.link(kPrimary).queued() == 0);
}

TEST_CASE("ha link: retransmission is bounded: every 200 ms, then PeerDown after 3 s abandons the token and stops it") {
  Harness h = synced_pair();
  h.node(kBackup).cut_outbound = true;
  const auto before = h.link(kPrimary).stats().retransmissions;
  CHECK(h.link(kPrimary).replicate(add(sample(70, true, h.time(kPrimary))), 9, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(1000));
  const auto after_1s = h.link(kPrimary).stats().retransmissions - before;
  CHECK(after_1s >= 4);
  CHECK(after_1s <= 5);
  h.run_for(Millis(3000));
  REQUIRE(count_events<ev::PeerDown>(h.node(kPrimary).events) == 1);
  CHECK_FALSE(h.link(kPrimary).peer_up());
  CHECK_FALSE(h.link(kPrimary).is_pending(9));
  CHECK_FALSE(h.link(kPrimary).is_acked(9));
  CHECK(h.link(kPrimary).stats().tokens_abandoned == 1);
  const auto at_down = h.link(kPrimary).stats().retransmissions;
  const auto sent_at_down = h.sent(kPrimary);
  h.run_for(Millis(5000));
  CHECK(h.link(kPrimary).stats().retransmissions == at_down);
  CHECK(h.sent(kPrimary) - sent_at_down <= 6);  // HELLO keepalives only, one a second
}

TEST_CASE("ha link: the backup notices a silent primary (PeerDown) and keeps the set it holds") {
  Harness h = synced_pair();
  h.node(kPrimary).cut_outbound = true;
  h.run_for(Millis(3100));
  CHECK(count_events<ev::PeerDown>(h.node(kBackup).events) == 1);
  CHECK(h.link(kBackup).replicated().size() == 5);
  CHECK(h.link(kBackup).synced());
}

TEST_CASE("ha link: a peer that answers but never takes the stream gets a snapshot after stream_timeout") {
  Harness h = synced_pair();
  h.node(kPrimary).drop_if = is_stream_datagram;  // HELLOs pass, data does not
  const Mapping m = sample(80, true, h.time(kPrimary));
  h.node(kPrimary).table.push_back(m);
  CHECK(h.link(kPrimary).replicate(add(m), 11, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(5200));
  CHECK(h.link(kPrimary).stats().stream_resets == 1);
  CHECK(h.link(kPrimary).peer_up());
  CHECK(count_events<ev::SnapshotWanted>(h.node(kPrimary).events) == 2);
  CHECK(h.link(kPrimary).is_pending(11));  // now waits for the snapshot that includes it
  h.node(kPrimary).drop_if = nullptr;
  h.run_for(Millis(1000));
  CHECK(h.link(kPrimary).is_acked(11));
  check_holds(h, kBackup, elected(h.node(kPrimary).table));
}

TEST_CASE("ha link reject: a datagram received twice is a Replay and changes nothing") {
  Harness h = synced_pair();
  const auto log = h.delivered_to(kBackup);
  REQUIRE(!log.empty());
  const auto events = h.node(kBackup).events.size();
  const auto replays = h.link(kBackup).stats().rejected_by(Reject::Replay);
  h.inject(kBackup, log.front());
  h.inject(kBackup, log.back());
  CHECK(h.link(kBackup).stats().rejected_by(Reject::Replay) == replays + 2);
  CHECK(h.node(kBackup).events.size() == events);
  CHECK(h.link(kBackup).replicated().size() == 5);
}

TEST_CASE("ha link reject: datagrams of the peer's previous process (retired sender id) are Replays") {
  Harness h = synced_pair();
  const auto old = h.delivered_to(kBackup).back();
  h.node(kPrimary).table = table(h.time(kPrimary), 4);
  h.start(kPrimary, 0x1001, Role::Primary);  // restart: new sender id
  h.run_for(Millis(2500));
  REQUIRE(h.link(kBackup).peer_id() == 0x1001);
  const auto ups = count_events<ev::PeerUp>(h.node(kBackup).events);
  h.inject(kBackup, old);
  CHECK(h.link(kBackup).stats().rejected_by(Reject::Replay) >= 1);
  CHECK(h.link(kBackup).peer_id() == 0x1001);
  CHECK(count_events<ev::PeerUp>(h.node(kBackup).events) == ups);
}

TEST_CASE("ha link reject: our own datagram coming back is a Replay, not a peer") {
  Harness h(2);
  h.run_for(Millis(10));
  PeerLink& a = h.link(kPrimary);
  auto own = h.delivered_to(kBackup).at(0);
  a.on_datagram(own, h.time(kPrimary));
  CHECK(a.stats().rejected_by(Reject::Replay) == 1);
}

TEST_CASE("ha link reject: with different keys every datagram is BadHmac and the peer never comes up") {
  PeerLink a(key(0x01), 0xA, {});
  PeerLink b(key(0x02), 0xB, {});
  a.set_role(Role::Primary, Millis(0));
  for (int t = 0; t < 30; ++t) {
    const Millis now{t * 100};
    a.on_timer(now);
    b.on_timer(now);
    for (auto& d : a.take().datagrams) b.on_datagram(d, now);
    for (auto& d : b.take().datagrams) a.on_datagram(d, now);
  }
  CHECK_FALSE(a.peer_up());
  CHECK_FALSE(b.peer_up());
  CHECK(a.stats().rejected_by(Reject::BadHmac) >= 3);
  CHECK(b.stats().rejected_by(Reject::BadHmac) >= 3);
  CHECK(b.stats().datagrams_accepted == 0);
}

TEST_CASE("ha link reject: a peer speaking another version is counted as BadVersion, apart from other rejects") {
  PeerLink a(key(), 0xA, {});
  PeerLink b(key(), 0xB, {});
  a.on_timer(Millis(0));
  auto d = a.take().datagrams.at(0);
  d[4] = 2;
  b.on_datagram(d, Millis(1));
  CHECK(b.stats().rejected_by(Reject::BadVersion) == 1);
  CHECK(b.stats().rejected_by(Reject::BadHmac) == 0);
  CHECK_FALSE(b.peer_up());
}

TEST_CASE("ha link: when both sides claim Primary, stream data is refused as RoleConflict and not applied") {
  Harness h = synced_pair();
  h.link(kBackup).set_role(Role::Primary, h.time(kBackup));  // split brain; its HELLO is in flight
  h.collect(kBackup);
  CHECK(h.link(kPrimary).replicate(add(sample(90, true, h.time(kPrimary))), 1, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(500));
  CHECK(h.link(kBackup).stats().rejected_by(Reject::RoleConflict) >= 1);
  CHECK(count_events<ev::Upsert>(h.node(kBackup).events) == 0);
  CHECK(count_events<ev::SnapshotWanted>(h.node(kPrimary).events) == 1);  // none for a Primary peer
  CHECK_FALSE(h.link(kPrimary).is_acked(1));
}

TEST_CASE("ha link failover: the promoted backup snapshots what it holds to the old primary, now backup") {
  Harness h = synced_pair(12);
  REQUIRE(h.link(kBackup).synced());  // read before promotion: decides the epoch
  const auto held = h.link(kBackup).replicated();
  // Promotion: the daemon restores the replicated set into its server table.
  h.node(kBackup).table = held;
  h.link(kBackup).set_role(Role::Primary, h.time(kBackup));
  h.collect(kBackup);
  CHECK_FALSE(h.link(kBackup).synced());
  h.link(kPrimary).set_role(Role::Backup, h.time(kPrimary));
  h.link(kPrimary).assume_installed(h.node(kPrimary).table);  // what it served is installed
  h.collect(kPrimary);
  h.run_for(Millis(2500));
  CHECK(count_events<ev::SnapshotWanted>(h.node(kBackup).events) == 1);
  REQUIRE(count_events<ev::SnapshotReady>(h.node(kPrimary).events) == 1);
  check_holds(h, kPrimary, sorted(held));
  // Its datapath drops the unelected mappings it served and refreshes the elected ones.
  const auto& ready = std::get<ev::SnapshotReady>(h.node(kPrimary).events.back());
  std::size_t removes = 0;
  for (const auto& c : ready.changes.changes) removes += c.op == Change::Op::Remove ? 1u : 0u;
  CHECK(removes == 6);
  CHECK(h.link(kPrimary).synced());
}

TEST_CASE("ha link: HELLO carries the epoch age, so the peer knows the epoch origin on its own clock") {
  Harness h(3);
  h.link(kPrimary).set_epoch_origin(h.time(kPrimary) - Millis(50'000));
  h.run_for(Millis(1100));
  const auto origin = h.link(kBackup).peer_epoch_origin();
  REQUIRE(origin.has_value());
  const Millis expected = h.time(kBackup) - Millis(50'000) - Millis(1100);
  CHECK(*origin - expected >= Millis(-20));
  CHECK(*origin - expected <= Millis(20));
}

TEST_CASE("ha link: a snapshot whose END does not match what arrived is refused and the source asked again") {
  const Millis now{1000};
  PeerLink b(key(), 0xB, {});
  auto msg = [&](Body body, std::uint64_t seq, std::uint64_t stream) {
    Message m;
    m.header.role = Role::Primary;
    m.header.sender_id = 0x3000;
    m.header.sequence = seq;
    m.header.stream_seq = stream;
    m.body = std::move(body);
    auto bytes = encode(m, now, key());
    REQUIRE(bytes.has_value());
    return *bytes;
  };
  b.on_datagram(msg(SnapshotBegin{1, 2}, 1, 1), now);
  b.on_datagram(msg(SnapshotChunk{1, {sample(1, true, now)}}, 2, 2), now);
  b.on_datagram(msg(SnapshotEnd{1, 2}, 3, 3), now);
  CHECK(b.stats().snapshots_failed == 1);
  CHECK_FALSE(b.synced());
  CHECK(b.replicated().empty());
  const auto out = b.take();
  CHECK(count_events<ev::SnapshotReady>(out.events) == 0);
  // Its HELLO tells the source it holds no snapshot of it.
  b.on_timer(now + Millis(1000));
  auto hello = decode(b.take().datagrams.back(), now, key());
  REQUIRE(hello.has_value());
  CHECK(std::get<Hello>(hello->body).synced_with == 0);
  CHECK(hello->header.ack == 3);  // the stream itself was delivered
}

TEST_CASE("ha link: stream messages after a gap are held until the gap is filled, then delivered in order") {
  const Millis now{1000};
  PeerLink b(key(), 0xB, {});
  auto msg = [&](std::uint32_t i, std::uint64_t seq, std::uint64_t stream) {
    Message m;
    m.header.role = Role::Primary;
    m.header.sender_id = 0x3000;
    m.header.sequence = seq;
    m.header.stream_seq = stream;
    m.body = ChangeBatch{{MappingChange{MappingChange::Op::Upsert, sample(i, true, now), {}}}};
    return *encode(m, now, key());
  };
  b.on_datagram(msg(1, 1, 1), now);
  b.on_datagram(msg(3, 2, 3), now);  // 2 is missing
  CHECK(b.stats().out_of_order == 1);
  CHECK(b.replicated().size() == 1);
  b.on_datagram(msg(2, 3, 2), now);
  CHECK(b.replicated().size() == 3);
  b.on_datagram(msg(3, 4, 3), now);  // the sender's retransmission: a duplicate now
  CHECK(b.stats().duplicates == 1);
  CHECK(b.replicated().size() == 3);
  const auto events = b.take().events;
  std::vector<std::uint16_t> order;
  for (const auto& e : events)
    if (const auto* u = std::get_if<ev::Upsert>(&e)) order.push_back(u->mapping.internal_port);
  CHECK(order == std::vector<std::uint16_t>{1001, 1002, 1003});
}

TEST_CASE("ha link: a large snapshot is split into datagrams of at most 1400 bytes and arrives whole") {
  Harness h(4);
  h.node(kPrimary).table = table(h.time(kPrimary), 600, /*all_elected=*/true);
  h.node(kPrimary).drop_if = [](const std::vector<std::uint8_t>& d) {
    CHECK(d.size() <= kTargetDatagramSize);
    return false;
  };
  h.link(kPrimary).set_role(Role::Primary, h.time(kPrimary));
  h.collect(kPrimary);
  h.run_for(Millis(3000));
  check_holds(h, kBackup, sorted(h.node(kPrimary).table));
  CHECK(h.sent(kPrimary) > 600 * kMappingFixedSize / kTargetDatagramSize);
}

TEST_CASE("ha link elected-only: electing sends an upsert, un-electing a remove, unelected changes nothing") {
  Harness h = synced_pair();
  Mapping m = sample(100, false, h.time(kPrimary));
  Mapping e = m;
  e.checkpoint = true;
  auto& p = h.link(kPrimary);
  CHECK(p.replicate(add(m), 1, h.time(kPrimary)) == RR::NothingToSend);
  CHECK(p.replicate(ChangeSet{{Change{Change::Op::Replace, e, m, false}}}, 2, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(50));
  CHECK(h.link(kBackup).replicated().size() == 6);
  CHECK(p.replicate(ChangeSet{{Change{Change::Op::Replace, m, e, false}}}, 3, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(50));
  CHECK(h.link(kBackup).replicated().size() == 5);
  CHECK(count_events<ev::Upsert>(h.node(kBackup).events) == 1);
  CHECK(count_events<ev::Remove>(h.node(kBackup).events) == 1);
  CHECK(p.is_acked(2));
  CHECK(p.is_acked(3));
}

TEST_CASE("ha link scope All: unelected mappings are replicated too") {
  LinkSettings s;
  s.scope = ReplicationScope::All;
  Harness h = synced_pair(10, s);
  CHECK(h.link(kBackup).replicated().size() == 10);
  CHECK(h.link(kPrimary).replicate(add(sample(100, false, h.time(kPrimary))), 1, h.time(kPrimary)) ==
        RR::WaitForAck);
  h.collect(kPrimary);
  h.run_for(Millis(50));
  CHECK(h.link(kBackup).replicated().size() == 11);
}

TEST_CASE("ha link: next_timer never lies beyond the next hello, retransmission or timeout") {
  Harness h = synced_pair();
  h.node(kBackup).cut_outbound = true;
  CHECK(h.link(kPrimary).replicate(add(sample(70, true, h.time(kPrimary))), 1, h.time(kPrimary)) == RR::WaitForAck);
  h.collect(kPrimary);
  const Millis next = h.link(kPrimary).next_timer();
  CHECK(next > h.time(kPrimary));
  CHECK(next <= h.time(kPrimary) + Millis(200));
}

TEST_CASE("ha ReplayWindow: reordered datagrams within 64 pass once; duplicates, 0 and older ones are replays") {
  ReplayWindow w;
  CHECK_FALSE(w.accept(0));
  CHECK(w.accept(10));
  CHECK(w.accept(12));
  CHECK(w.accept(11));        // late but new
  CHECK_FALSE(w.accept(11));  // duplicate
  CHECK_FALSE(w.accept(12));
  CHECK(w.accept(100));
  CHECK(w.accept(37));        // 63 below the highest: still in the window
  CHECK_FALSE(w.accept(36));  // 64 below: too old to tell, refused
  CHECK_FALSE(w.accept(12));
  CHECK(w.accept(1000));      // a jump beyond the window forgets the bitmap
  CHECK_FALSE(w.accept(100));
  CHECK(w.highest() == 1000);
}
