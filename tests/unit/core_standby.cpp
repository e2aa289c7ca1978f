// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core hot standby (RFC 7767 §3.2, docs/design.md "Mapping state on the standby"): elections
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
  f.checkpoint_available = false;
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
  f.checkpoint_available = false;
  (void)f.send(with_ckpt(map_req({})));
  (void)f.map({.internal_port = 9000});
  f.checkpoint_available = true;
  auto r = f.send(with_ckpt(map_req({})));
  CHECK(r.response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 1);
  CHECK(f.server->stats().checkpoint_refused_peer == 1);
}

TEST_CASE("R-CKPT-4 peer lost: a renewal of an elected PEER loses its election") {
  Fixture f;
  REQUIRE(f.send(with_ckpt(peer_req({}))).response.options.checkpoint_required);
  f.checkpoint_available = false;
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

// RFC 7767 §3.2 lets a server serve CHECKPOINT_REQUIRED without the option while no standby
// can hold the state; the client's wish is kept (Mapping::checkpoint_deferred) and granted as
// soon as the peer is back, without waiting for the client's next refresh (which, at half a
// two-hour lifetime, would come long after a failback that reset its connections).
TEST_CASE("RFC 7767 §3.2 deferred: a refusal for the missing peer is remembered; the peer's return elects it") {
  Fixture f;
  f.checkpoint_available = false;
  auto r = f.send(with_ckpt(map_req({})));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  (void)f.map({.internal_port = 9000});  // never asked: stays unelected
  (void)f.send(with_ckpt(peer_req({})));
  CHECK(f.server->mapping_counts().deferred == 2);
  const auto calls = f.dp.calls();

  f.checkpoint_available = true;
  const auto re = f.server->reelect_deferred();
  CHECK(re.elected == 2);
  CHECK(re.over_cap == 0);
  CHECK_FALSE(re.failed);
  // One transaction of Replaces, each the same mapping elected.
  REQUIRE(f.dp.calls() == calls + 1);
  const ChangeSet& cs = f.dp.last();
  REQUIRE(cs.changes.size() == 2);
  for (const Change& c : cs.changes) {
    CHECK(c.op == Change::Op::Replace);
    CHECK(c.mapping.checkpoint);
    CHECK_FALSE(c.mapping.checkpoint_deferred);
    CHECK(c.previous.checkpoint_deferred);
    CHECK(c.mapping.external_port == c.previous.external_port);
    CHECK(c.mapping.nonce == c.previous.nonce);
  }
  CHECK(f.server->stats().elected == 2);
  CHECK(f.server->stats().checkpoint_reelected == 2);
  CHECK(f.server->mapping_counts().deferred == 0);
  // The client's next refresh keeps it elected, echoing the option.
  CHECK(f.send(with_ckpt(map_req({}))).response.options.checkpoint_required);
  // Done once: a second call has nothing left.
  CHECK(f.server->reelect_deferred().elected == 0);
}

TEST_CASE("RFC 7767 §3.2 deferred: a refresh without the option, or from NAT-PMP, drops the deferred wish") {
  Fixture f;
  f.checkpoint_available = false;
  (void)f.send(with_ckpt(map_req({})));
  REQUIRE(f.server->mappings().front().checkpoint_deferred);
  (void)f.send(map_req({}));  // the client no longer asks (R-CKPT-5)
  CHECK_FALSE(f.server->mappings().front().checkpoint_deferred);
  f.checkpoint_available = true;
  CHECK(f.server->reelect_deferred().elected == 0);
  CHECK(f.server->stats().elected == 0);
}

TEST_CASE("RFC 7767 §3.2 deferred: a withdrawn election (no ack from the peer) is deferred, then re-elected") {
  Fixture f;
  REQUIRE(f.send(with_ckpt(map_req({}))).response.options.checkpoint_required);
  REQUIRE(f.server->withdraw_checkpoint(f.server->mappings().front()));
  CHECK(f.server->mappings().front().checkpoint_deferred);
  CHECK(f.server->reelect_deferred().elected == 1);
  CHECK(f.server->mappings().front().checkpoint);
}

TEST_CASE("RFC 7767 §3.2 deferred: re-election keeps the caps (R-CKPT-4, R-CKPT-7); the rest stays deferred") {
  Policy p = default_policy();
  p.checkpoint.max_per_client = 2;
  Fixture f(p);
  f.checkpoint_available = false;
  for (std::uint16_t port = 7000; port < 7003; ++port)
    (void)f.send(with_ckpt(map_req({.internal_port = port})));
  f.checkpoint_available = true;
  const auto re = f.server->reelect_deferred();
  CHECK(re.elected == 2);
  CHECK(re.over_cap == 1);
  CHECK(f.server->stats().elected == 2);
  CHECK(f.server->mapping_counts().deferred == 1);
}

TEST_CASE("RFC 7767 §3.2 deferred: a refused transaction elects nothing; the wishes stay for the next try") {
  Fixture f;
  f.checkpoint_available = false;
  (void)f.send(with_ckpt(map_req({})));
  f.checkpoint_available = true;
  f.dp.fail_nth(1);
  const auto re = f.server->reelect_deferred();
  CHECK(re.failed);
  CHECK(re.elected == 0);
  CHECK(f.server->mappings().front().checkpoint_deferred);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.server->reelect_deferred().elected == 1);
}
