// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_ha replication rules: which ChangeSet entries travel (elected-only or all, RFC 7767
// elections and un-elections), and the standby's ReplicatedSet with its datapath changes.
#include "ha/replication.hpp"
#include "unit/ha_fixtures.hpp"

using namespace pcpd::ha;
using namespace pcpd::test::ha;
using pcpd::core::Change;
using pcpd::core::ChangeSet;

namespace {

const Millis kNow{1'000'000};

Change add(const Mapping& m) { return Change{Change::Op::Add, m, {}, false}; }
Change del(const Mapping& m) { return Change{Change::Op::Remove, m, {}, true}; }
Change replace(const Mapping& before, const Mapping& after) {
  return Change{Change::Op::Replace, after, before, false};
}

}  // namespace

TEST_CASE("ha replication: elected-only sends elected adds and removes, nothing for unelected ones") {
  const Mapping e = sample(1, true, kNow);
  const Mapping u = sample(2, false, kNow);
  const ChangeSet cs{{add(e), add(u), del(e), del(u)}};
  const auto out = changes_to_send(cs, ReplicationScope::Elected);
  REQUIRE(out.size() == 2);
  CHECK(out[0].op == MappingChange::Op::Upsert);
  CHECK(id_of(out[0].mapping) == id_of(e));
  CHECK(out[1].op == MappingChange::Op::Remove);
  CHECK(out[1].id == id_of(e));
}

TEST_CASE("ha replication: elected-only turns an election into an upsert and an un-election into a remove") {
  const Mapping u = sample(3, false, kNow);
  Mapping e = u;
  e.checkpoint = true;
  const auto elect = changes_to_send(ChangeSet{{replace(u, e)}}, ReplicationScope::Elected);
  REQUIRE(elect.size() == 1);
  CHECK(elect[0].op == MappingChange::Op::Upsert);
  CHECK(elect[0].mapping.checkpoint);
  const auto unelect = changes_to_send(ChangeSet{{replace(e, u)}}, ReplicationScope::Elected);
  REQUIRE(unelect.size() == 1);
  CHECK(unelect[0].op == MappingChange::Op::Remove);
  CHECK(unelect[0].id == id_of(u));
  Mapping refreshed = e;
  refreshed.lifetime = 999;
  const auto refresh = changes_to_send(ChangeSet{{replace(e, refreshed)}}, ReplicationScope::Elected);
  REQUIRE(refresh.size() == 1);
  CHECK(refresh[0].mapping.lifetime == 999);
  Mapping u2 = u;
  u2.lifetime = 5;
  CHECK(changes_to_send(ChangeSet{{replace(u, u2)}}, ReplicationScope::Elected).empty());
}

TEST_CASE("ha replication: scope All sends every change, elected or not") {
  const Mapping u = sample(2, false, kNow);
  Mapping u2 = u;
  u2.lifetime = 5;
  const auto out = changes_to_send(ChangeSet{{add(u), replace(u, u2), del(u2)}}, ReplicationScope::All);
  REQUIRE(out.size() == 3);
  CHECK(out[0].op == MappingChange::Op::Upsert);
  CHECK(out[1].op == MappingChange::Op::Upsert);
  CHECK(out[2].op == MappingChange::Op::Remove);
}

TEST_CASE("ha replication: a replace that changed the id removes the old id before the upsert") {
  const Mapping a = sample(1, true, kNow);
  const Mapping b = sample(4, true, kNow);
  const auto out = changes_to_send(ChangeSet{{replace(a, b)}}, ReplicationScope::Elected);
  REQUIRE(out.size() == 2);
  CHECK(out[0].op == MappingChange::Op::Remove);
  CHECK(out[0].id == id_of(a));
  CHECK(id_of(out[1].mapping) == id_of(b));
}

TEST_CASE("ha replication: MappingId of a MAP ignores remote fields, of a PEER includes them") {
  Mapping map = sample(1, true, kNow);
  REQUIRE(map.kind == MappingKind::Map);
  map.remote_port = 99;
  CHECK(id_of(map).remote_port == 0);
  const Mapping peer = sample(3, true, kNow);
  REQUIRE(peer.kind == MappingKind::Peer);
  Mapping peer2 = peer;
  peer2.remote_port = 444;
  CHECK(id_of(peer) != id_of(peer2));
}

TEST_CASE("ha ReplicatedSet: upsert adds then replaces; remove of a held mapping returns it, of an unknown one nothing") {
  ReplicatedSet set;
  const Mapping m = sample(5, true, kNow);
  auto c1 = set.apply(MappingChange{MappingChange::Op::Upsert, m, {}});
  REQUIRE(c1);
  CHECK(c1->op == Change::Op::Add);
  Mapping m2 = m;
  m2.lifetime = 1;
  auto c2 = set.apply(MappingChange{MappingChange::Op::Upsert, m2, {}});
  REQUIRE(c2);
  CHECK(c2->op == Change::Op::Replace);
  CHECK(c2->previous.lifetime == m.lifetime);
  CHECK(set.size() == 1);
  auto c3 = set.apply(MappingChange{MappingChange::Op::Remove, {}, id_of(m)});
  REQUIRE(c3);
  CHECK(c3->op == Change::Op::Remove);
  CHECK(c3->mapping.lifetime == 1);
  CHECK_FALSE(set.apply(MappingChange{MappingChange::Op::Remove, {}, id_of(m)}).has_value());
  CHECK(set.size() == 0);
}

TEST_CASE("ha ReplicatedSet: replace_all yields Remove for gone, Replace for kept, Add for new mappings") {
  ReplicatedSet set;
  (void)set.replace_all({sample(1, true, kNow), sample(2, true, kNow)});
  const auto cs = set.replace_all({sample(2, true, kNow), sample(3, true, kNow)});
  REQUIRE(cs.changes.size() == 3);
  CHECK(cs.changes[0].op == Change::Op::Remove);
  CHECK(cs.changes[0].mapping.internal_port == 1001);
  CHECK(cs.changes[1].op == Change::Op::Replace);
  CHECK(cs.changes[1].mapping.internal_port == 1002);
  CHECK(cs.changes[2].op == Change::Op::Add);
  CHECK(cs.changes[2].mapping.internal_port == 1003);
  CHECK(set.size() == 2);
}

TEST_CASE("ha ReplicatedSet: prune drops only mappings whose lifetime has passed") {
  ReplicatedSet set;
  Mapping old = sample(1, true, kNow);
  old.expires = kNow;
  (void)set.replace_all({old, sample(2, true, kNow)});
  CHECK(set.prune(kNow) == 1);
  CHECK(set.size() == 1);
  CHECK(set.find(id_of(old)) == nullptr);
}
