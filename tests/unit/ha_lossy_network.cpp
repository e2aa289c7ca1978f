// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_ha: two PeerLinks back to back through a lossy fake network (seeded drop, duplication,
// reordering), on fake time with different clocks: every change arrives exactly once and in
// order, every token is acknowledged, and a restarted peer converges through a snapshot.
#include <map>

#include "ha/peer_link.hpp"
#include "ha/replication.hpp"
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
const Harness::Faults kLossy{0.2, 0.1, Millis(40)};

// The primary's server table, changed by random requests as core would change it.
class Table {
 public:
  explicit Table(std::uint64_t seed) : rng_(seed) {}

  std::vector<Mapping> values() const {
    std::vector<Mapping> out;
    for (const auto& kv : by_id_) out.push_back(kv.second);
    return out;
  }
  std::vector<Mapping> elected() const {
    std::vector<Mapping> out;
    for (const auto& kv : by_id_)
      if (kv.second.checkpoint) out.push_back(kv.second);
    return out;  // sorted by MappingId already
  }

  // One random request: add (elected or not), refresh, elect, un-elect or delete.
  ChangeSet random_change(Millis now) {
    const int op = pick(by_id_.empty() ? 1 : 5);
    if (op <= 1) {
      const Mapping m = sample(next_++, pick(2) == 1, now);
      by_id_[id_of(m)] = m;
      return ChangeSet{{Change{Change::Op::Add, m, {}, false}}};
    }
    auto it = std::next(by_id_.begin(), pick(static_cast<int>(by_id_.size())) - 1);
    const Mapping before = it->second;
    if (op == 5) {
      by_id_.erase(it);
      return ChangeSet{{Change{Change::Op::Remove, before, {}, true}}};
    }
    Mapping after = before;
    if (op == 2) {
      after.lifetime += 10;  // refresh
      after.expires = now + Millis(std::int64_t{after.lifetime} * 1000);
      after.description = "refreshed " + std::to_string(after.lifetime);
    } else {
      after.checkpoint = !after.checkpoint;  // election or un-election (RFC 7767)
    }
    it->second = after;
    return ChangeSet{{Change{Change::Op::Replace, after, before, false}}};
  }

  void load(const std::vector<Mapping>& ms) {
    for (const Mapping& m : ms) by_id_[id_of(m)] = m;
    next_ = static_cast<std::uint32_t>(ms.size()) + 1;
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(1, n)(rng_); }
  std::mt19937_64 rng_;
  std::map<MappingId, Mapping> by_id_;
  std::uint32_t next_ = 1;
};

std::vector<Mapping> initial(Millis now, std::uint32_t n) {
  std::vector<Mapping> t;
  for (std::uint32_t i = 1; i <= n; ++i) t.push_back(sample(i, i % 3 != 0, now));
  return t;
}

void check_same_set(const std::vector<Mapping>& got, const std::vector<Mapping>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(same_except_expiry(got[i], want[i]));
  }
}

// The Upsert/Remove records the backup saw after its last SnapshotReady.
std::vector<MappingChange> received_after_snapshot(const std::vector<LinkEvent>& events) {
  std::vector<MappingChange> out;
  for (const LinkEvent& e : events) {
    if (std::holds_alternative<ev::SnapshotReady>(e)) out.clear();
    if (const auto* u = std::get_if<ev::Upsert>(&e)) out.push_back({MappingChange::Op::Upsert, u->mapping, {}});
    if (const auto* r = std::get_if<ev::Remove>(&e)) out.push_back({MappingChange::Op::Remove, {}, r->id});
  }
  return out;
}

Harness lossy_synced(std::uint64_t seed, Table& table) {
  Harness h(seed, kLossy);
  table.load(initial(h.time(kPrimary), 20));
  h.node(kPrimary).table = table.values();
  h.link(kPrimary).set_role(Role::Primary, h.time(kPrimary));
  h.collect(kPrimary);
  h.run_for(Millis(4000));
  REQUIRE(h.link(kBackup).synced());
  return h;
}

}  // namespace

TEST_CASE("ha lossy network: every change arrives exactly once and in order, and every token is acked") {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    CAPTURE(seed);
    Table table(seed * 1000);
    Harness h = lossy_synced(seed, table);
    std::vector<MappingChange> sent;
    std::vector<Token> waiting;
    for (Token token = 1; token <= 300; ++token) {
      const ChangeSet cs = table.random_change(h.time(kPrimary));
      h.node(kPrimary).table = table.values();
      for (auto& c : changes_to_send(cs, ReplicationScope::Elected)) sent.push_back(std::move(c));
      const RR r = h.link(kPrimary).replicate(cs, token, h.time(kPrimary));
      REQUIRE(r != RR::PeerDown);
      if (r == RR::WaitForAck) waiting.push_back(token);
      h.collect(kPrimary);
      h.run_for(Millis(10));
    }
    h.run_for(Millis(5000));
    // The premise: the link never fell back to a snapshot, so the stream alone carried it all.
    REQUIRE(h.link(kPrimary).stats().stream_resets == 0);
    REQUIRE(h.link(kPrimary).stats().peer_downs == 0);
    CHECK(h.link(kPrimary).stats().retransmissions > 0);  // the network did lose datagrams
    CHECK(h.link(kBackup).stats().rejected_by(Reject::Replay) > 0);  // duplicated them
    CHECK(h.link(kBackup).stats().out_of_order > 0);                 // and reordered them

    const auto got = received_after_snapshot(h.node(kBackup).events);
    REQUIRE(got.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      CAPTURE(i);
      REQUIRE(got[i].op == sent[i].op);
      if (sent[i].op == MappingChange::Op::Upsert)
        CHECK(same_except_expiry(got[i].mapping, sent[i].mapping));
      else
        CHECK(got[i].id == sent[i].id);
    }
    for (Token t : waiting) {
      CAPTURE(t);
      CHECK(h.link(kPrimary).is_acked(t));
    }
    CHECK(count_events<ev::Acked>(h.node(kPrimary).events) == waiting.size());
    check_same_set(h.link(kBackup).replicated(), table.elected());
  }
}

TEST_CASE("ha lossy network: a restarted backup (new sender id) gets a snapshot and then equals the primary") {
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    CAPTURE(seed);
    Table table(seed);
    Harness h = lossy_synced(seed, table);
    for (Token token = 1; token <= 50; ++token) {
      const ChangeSet cs = table.random_change(h.time(kPrimary));
      h.node(kPrimary).table = table.values();
      (void)h.link(kPrimary).replicate(cs, token, h.time(kPrimary));
      h.collect(kPrimary);
      h.run_for(Millis(10));
    }
    h.start(kBackup, 0x2001, Role::Backup);  // kill -9 and start: empty set, new sender id
    CHECK(h.link(kBackup).replicated().empty());
    h.run_for(Millis(4000));
    const auto& pe = h.node(kPrimary).events;
    const auto restarted = std::count_if(pe.begin(), pe.end(), [](const LinkEvent& e) {
      const auto* up = std::get_if<ev::PeerUp>(&e);
      return up != nullptr && up->restarted && up->peer_id == 0x2001;
    });
    CHECK(restarted == 1);
    CHECK(count_events<ev::SnapshotWanted>(pe) == 2);
    CHECK(h.link(kBackup).synced());
    check_same_set(h.link(kBackup).replicated(), table.elected());
  }
}

TEST_CASE("ha lossy network: a restarted primary (new sender id) re-sends its table; the backup refreshes, adds nothing") {
  Table table(21);
  Harness h = lossy_synced(21, table);
  const auto before = h.link(kBackup).replicated();
  h.start(kPrimary, 0x1001, Role::Primary);  // restored its table from the kernel
  h.run_for(Millis(4000));
  CHECK(h.link(kBackup).peer_id() == 0x1001);
  CHECK(h.link(kBackup).synced());
  CHECK(h.link(kBackup).stats().peer_restarts == 1);
  const auto& be = h.node(kBackup).events;
  REQUIRE(count_events<ev::SnapshotReady>(be) == 2);
  const auto& ready = std::get<ev::SnapshotReady>(*std::find_if(be.rbegin(), be.rend(), [](const LinkEvent& e) {
    return std::holds_alternative<ev::SnapshotReady>(e);
  }));
  REQUIRE(ready.changes.changes.size() == before.size());
  for (const auto& c : ready.changes.changes) CHECK(c.op == Change::Op::Replace);
  check_same_set(h.link(kBackup).replicated(), table.elected());
}
