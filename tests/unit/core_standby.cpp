// pcp_core hot standby (RFC 7767 §3.2, DESIGN.md "Mapping state on the standby"): elections
// refused while no peer can hold them, an honoured election withdrawn after a missed ack, and
// the standby's table following replicated changes (mirror).
#include <vector>

#include "unit/core_fixture.hpp"

using namespace pcpd::test;
using pcpd::core::Change;
using pcpd::core::ChangeSet;
using pcpd::core::Millis;

namespace {

Change change(Change::Op op, Mapping m) {
  Change c;
  c.op = op;
  c.mapping = std::move(m);
  return c;
}

}  // namespace

TEST_CASE("R-CKPT-4 peer unavailable: MAP served without the option, not elected, counted") {
  Fixture f;
  f.server->set_checkpoint_available(false);
  auto r = f.send(with_ckpt(map_req({})));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  REQUIRE(f.server->mapping_count() == 1);
  CHECK_FALSE(f.server->mappings().front().checkpoint);
  CHECK_FALSE(f.dp.last().changes.front().mapping.checkpoint);
  CHECK(f.server->stats().checkpoint_refused_peer == 1);
  CHECK(f.server->stats().checkpoint_honoured == 0);
  CHECK(f.server->stats().checkpoint_requested == 1);
}

TEST_CASE("R-CKPT-5 peer back: the next refresh elects again; unrequested untouched") {
  Fixture f;
  f.server->set_checkpoint_available(false);
  (void)f.send(with_ckpt(map_req({})));
  (void)f.map({.internal_port = 9000});
  f.server->set_checkpoint_available(true);
  auto r = f.send(with_ckpt(map_req({})));
  CHECK(r.response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 1);
  CHECK(f.server->stats().checkpoint_refused_peer == 1);
}

TEST_CASE("R-CKPT-4 peer lost: a renewal of an elected PEER loses its election") {
  Fixture f;
  REQUIRE(f.send(with_ckpt(peer_req({}))).response.options.checkpoint_required);
  f.server->set_checkpoint_available(false);
  auto r = f.send(with_ckpt(peer_req({})));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.dp.last().changes.front().op == Change::Op::Replace);
  CHECK_FALSE(f.dp.last().changes.front().mapping.checkpoint);
}

TEST_CASE("R-CKPT-6 withdraw_checkpoint un-elects the mapping in table and datapath") {
  Fixture f;
  REQUIRE(f.send(with_ckpt(map_req({}))).response.options.checkpoint_required);
  const Mapping m = f.server->mappings().front();
  REQUIRE(f.server->withdraw_checkpoint(m));
  const Change& c = f.dp.last().changes.front();
  CHECK(c.op == Change::Op::Replace);
  CHECK(c.previous.checkpoint);
  CHECK_FALSE(c.mapping.checkpoint);
  CHECK(c.mapping.external_port == m.external_port);
  CHECK_FALSE(f.server->mappings().front().checkpoint);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.server->stats().checkpoint_withdrawn == 1);
  // Twice, or an unelected / unknown mapping: nothing to do, nothing applied.
  const auto calls = f.dp.calls();
  CHECK_FALSE(f.server->withdraw_checkpoint(m));
  Mapping other = m;
  other.internal_port = 1;
  CHECK_FALSE(f.server->withdraw_checkpoint(other));
  CHECK(f.dp.calls() == calls);
  CHECK(f.server->stats().checkpoint_withdrawn == 1);
}

TEST_CASE("R-HDR-10 withdraw_checkpoint: a refused apply keeps the election") {
  Fixture f;
  REQUIRE(f.send(with_ckpt(peer_req({}))).response.options.checkpoint_required);
  f.dp.fail_all(true);
  CHECK_FALSE(f.server->withdraw_checkpoint(f.server->mappings().front()));
  CHECK(f.server->mappings().front().checkpoint);
  CHECK(f.server->stats().elected == 1);
  CHECK(f.server->stats().checkpoint_withdrawn == 0);
}

TEST_CASE("R-OWN-5 mirror: the standby table follows Add, Replace, Remove without applying") {
  Fixture primary;
  REQUIRE(primary.send(with_ckpt(map_req({}))).kind == Reply::Kind::Success);
  REQUIRE(primary.send(with_ckpt(peer_req({}))).kind == Reply::Kind::Success);
  const auto ms = primary.server->mappings();
  REQUIRE(ms.size() == 2);

  Fixture standby;
  ChangeSet add;
  for (const Mapping& m : ms) add.changes.push_back(change(Change::Op::Add, m));
  CHECK(standby.server->mirror(add) == 2);
  CHECK(standby.dp.calls() == 0);
  CHECK(standby.server->mapping_count() == 2);
  CHECK(standby.server->stats().elected == 2);

  // A refresh keeps the client's nonce and external port: the client refreshes after promotion.
  Mapping refreshed = ms.front();
  refreshed.lifetime = 7200;
  refreshed.expires = refreshed.expires + Millis(3600000);
  refreshed.checkpoint = false;
  ChangeSet rep;
  rep.changes.push_back(change(Change::Op::Replace, refreshed));
  CHECK(standby.server->mirror(rep) == 1);
  CHECK(standby.server->stats().elected == 1);

  const Mapping& held_map = ms.front().kind == pcpd::core::MappingKind::Map ? ms.front() : ms.back();
  auto r = standby.send(with_ckpt(map_req({})));  // same nonce as the primary's client
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_port == held_map.external_port);

  ChangeSet rem;
  for (const Mapping& m : ms) rem.changes.push_back(change(Change::Op::Remove, m));
  CHECK(standby.server->mirror(rem) == 2);
  CHECK(standby.server->mapping_count() == 0);
  CHECK(standby.server->mirror(rem) == 0);  // unknown now: skipped, counted
  CHECK(standby.server->stats().mirror_skipped == 2);
}

TEST_CASE("R-MAP-12 mirror: a conflicting Add is skipped; another external port replaces") {
  Fixture standby;
  (void)standby.map({});  // the standby's own mapping of 192.0.2.10:8080
  Mapping own = standby.server->mappings().front();
  Mapping moved = own;
  moved.external_port = static_cast<std::uint16_t>(own.external_port == 40000 ? 40001 : 40000);
  ChangeSet cs;
  cs.changes.push_back(change(Change::Op::Replace, moved));
  CHECK(standby.server->mirror(cs) == 1);
  REQUIRE(standby.server->mapping_count() == 1);
  CHECK(standby.server->mappings().front().external_port == moved.external_port);

  Mapping clash = moved;  // another internal endpoint on the same external port
  clash.internal_port = 9999;
  ChangeSet add;
  add.changes.push_back(change(Change::Op::Add, clash));
  CHECK(standby.server->mirror(add) == 0);
  CHECK(standby.server->stats().mirror_skipped == 1);
  CHECK(standby.server->mapping_count() == 1);
}
