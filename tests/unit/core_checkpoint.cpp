// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core CHECKPOINT_REQUIRED (RFC 7767) policy: R-CKPT-1..8 as core applies them (election,
// caps, rate limit, renewal, ChangeSet flag, restore, stats gauge, failed apply, NAT-PMP).
#include <array>
#include <vector>

#include "unit/core_fixture.hpp"
#include "wire/codec.hpp"
#include "wire/natpmp.hpp"

using namespace pcpd::test;
using pcpd::core::Change;
using pcpd::core::ChangeSet;
using pcpd::core::Millis;
using pcpd::core::Stats;

namespace {

Request map_ckpt(const MapArgs& a) { return with_ckpt(map_req(a)); }
Request peer_ckpt(const PeerArgs& a) { return with_ckpt(peer_req(a)); }

Policy ckpt_policy(std::uint32_t total, std::uint32_t per_client, double rate = 1000.0,
                   double burst = 1000.0) {
  Policy p = default_policy();
  p.checkpoint.max_total = total;
  p.checkpoint.max_per_client = per_client;
  p.checkpoint.rate_per_client = rate;
  p.checkpoint.burst_per_client = burst;
  return p;
}

std::uint64_t refusals(const Stats& s) {
  return s.checkpoint_refused_disabled + s.checkpoint_refused_total_cap +
         s.checkpoint_refused_client_cap + s.checkpoint_refused_rate;
}

// Every request that asked and was served was either honoured or refused for one reason.
void check_stats_balance(const Stats& s) {
  CHECK(s.checkpoint_requested == s.checkpoint_honoured + refusals(s));
}

std::size_t elected_in_table(const Fixture& f) {
  std::size_t n = 0;
  for (const Mapping& m : f.server->mappings()) n += m.checkpoint ? 1 : 0;
  return n;
}

const Change& only_change(const FakeDatapath& dp) {
  REQUIRE(dp.last().changes.size() == 1);
  return dp.last().changes.front();
}

}  // namespace

TEST_CASE("R-CKPT-4 MAP create with CHECKPOINT_REQUIRED: elected, echoed, Add carries the flag") {
  Fixture f;
  auto r = f.send(map_ckpt({}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.checkpoint_required);
  REQUIRE(f.server->mapping_count() == 1);
  CHECK(f.server->mappings().front().checkpoint);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Add);
  CHECK(c.mapping.checkpoint);
  const Stats& s = f.server->stats();
  CHECK(s.checkpoint_requested == 1);
  CHECK(s.checkpoint_honoured == 1);
  CHECK(refusals(s) == 0);
  CHECK(s.elected == 1);
}

TEST_CASE("R-CKPT-3 no option asked: never echoed, never elected, nothing counted") {
  Fixture f;
  auto m = f.map({});
  auto m2 = f.map({});  // refresh
  auto p = f.peer({});
  auto p2 = f.peer({});
  for (const Reply* r : {&m, &m2, &p, &p2}) {
    REQUIRE(r->kind == Reply::Kind::Success);
    CHECK_FALSE(r->response.options.checkpoint_required);
  }
  CHECK(elected_in_table(f) == 0);
  for (const ChangeSet& cs : f.dp.applied())
    for (const Change& c : cs.changes) CHECK_FALSE(c.mapping.checkpoint);
  CHECK(f.server->stats().checkpoint_requested == 0);
  CHECK(f.server->stats().elected == 0);
}

TEST_CASE("R-CKPT-3 error replies carry no CHECKPOINT_REQUIRED of their own and count nothing") {
  Fixture f;
  REQUIRE(f.send(map_ckpt({})).kind == Reply::Kind::Success);
  // Another nonce on the elected mapping: NOT_AUTHORIZED; election and counters unchanged.
  auto r = f.send(map_ckpt({.nonce = nonce(99)}));
  REQUIRE(r.kind == Reply::Kind::Error);
  CHECK(r.response.result == ResultCode::NotAuthorized);
  CHECK_FALSE(r.response.options.checkpoint_required);
  auto bad = f.send(map_ckpt({.protocol = 132}));  // UNSUPP_PROTOCOL
  CHECK(bad.kind == Reply::Kind::Error);
  CHECK_FALSE(bad.response.options.checkpoint_required);
  CHECK(f.server->mappings().front().checkpoint);
  CHECK(f.server->stats().checkpoint_requested == 1);
  CHECK(f.server->stats().elected == 1);
}

TEST_CASE("R-CKPT-2 disabled by policy: mapping served as without the option, refusal counted") {
  auto p = default_policy();
  p.checkpoint.enabled = false;
  Fixture f(p);
  auto r = f.send(map_ckpt({}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  CHECK_FALSE(only_change(f.dp).mapping.checkpoint);
  CHECK(only_change(f.dp).op == Change::Op::Add);
  CHECK(r.response.lifetime == 3600);
  auto pr = f.send(peer_ckpt({}));
  REQUIRE(pr.kind == Reply::Kind::Success);
  CHECK_FALSE(pr.response.options.checkpoint_required);
  CHECK(elected_in_table(f) == 0);
  const Stats& s = f.server->stats();
  CHECK(s.checkpoint_requested == 2);
  CHECK(s.checkpoint_refused_disabled == 2);
  CHECK(s.checkpoint_honoured == 0);
  CHECK(s.elected == 0);
}

TEST_CASE("R-CKPT-2 disabling on reload un-elects an elected mapping at its next renewal") {
  Fixture f;
  REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
  auto p = default_policy();
  p.checkpoint.enabled = false;
  f.server->set_policy(p);
  auto r = f.send(map_ckpt({}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Replace);
  CHECK(c.previous.checkpoint);
  CHECK_FALSE(c.mapping.checkpoint);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.server->stats().checkpoint_refused_disabled == 1);
}

TEST_CASE("R-CKPT-7 per-client cap: the N+1th request is served without the option") {
  Fixture f(ckpt_policy(100, 3));
  for (std::uint16_t port = 8000; port < 8003; ++port) {
    auto r = f.send(map_ckpt({.internal_port = port}));
    REQUIRE(r.kind == Reply::Kind::Success);
    CHECK(r.response.options.checkpoint_required);
  }
  auto over = f.send(map_ckpt({.internal_port = 8003}));
  REQUIRE(over.kind == Reply::Kind::Success);  // served all the same (R-CKPT-4)
  CHECK_FALSE(over.response.options.checkpoint_required);
  CHECK(f.dp.last().changes.front().op == Change::Op::Add);
  CHECK_FALSE(f.dp.last().changes.front().mapping.checkpoint);
  CHECK(f.server->mapping_count() == 4);
  // A PEER of the same client counts against the same cap.
  auto peer = f.send(peer_ckpt({}));
  REQUIRE(peer.kind == Reply::Kind::Success);
  CHECK_FALSE(peer.response.options.checkpoint_required);
  // Another client has its own cap.
  auto other = f.send(map_ckpt({.client = ip("192.0.2.11")}));
  CHECK(other.response.options.checkpoint_required);
  const Stats& s = f.server->stats();
  CHECK(s.checkpoint_refused_client_cap == 2);
  CHECK(s.checkpoint_honoured == 4);
  CHECK(s.elected == 4);
  check_stats_balance(s);
}

TEST_CASE("R-CKPT-7 the cap's client is the internal address: THIRD_PARTY counts for the third party") {
  auto p = ckpt_policy(100, 1);
  p.third_party = true;
  p.third_party_allow = {*wire::Prefix::parse("192.0.2.0/28")};
  Fixture f(p);
  // The requester elects one mapping of its own.
  REQUIRE(f.send(map_ckpt({.client = ip("192.0.2.10")})).response.options.checkpoint_required);
  // On behalf of 192.0.2.50: that address's quota, not the requester's.
  auto tp = map_ckpt({.client = ip("192.0.2.10"), .internal_port = 9000});
  tp.options.third_party = ip("192.0.2.50");
  auto r = f.send(tp);
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.checkpoint_required);
  // 192.0.2.50 has used its one election: a second THIRD_PARTY mapping for it is refused...
  auto tp2 = map_ckpt({.client = ip("192.0.2.11"), .internal_port = 9001});
  tp2.options.third_party = ip("192.0.2.50");
  auto r2 = f.send(tp2);
  REQUIRE(r2.kind == Reply::Kind::Success);
  CHECK_FALSE(r2.response.options.checkpoint_required);
  // ...and so is a second one of the requester's own.
  CHECK_FALSE(f.send(map_ckpt({.client = ip("192.0.2.10"), .internal_port = 9002}))
                  .response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_client_cap == 2);
  CHECK(f.server->stats().elected == 2);
}

TEST_CASE("R-CKPT-4 global cap: no checkpoint resources left, mapping still served") {
  Fixture f(ckpt_policy(2, 10));
  CHECK(f.send(map_ckpt({.client = ip("192.0.2.10")})).response.options.checkpoint_required);
  CHECK(f.send(map_ckpt({.client = ip("192.0.2.11")})).response.options.checkpoint_required);
  auto r = f.send(map_ckpt({.client = ip("192.0.2.12")}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  auto pr = f.send(peer_ckpt({.client = ip("192.0.2.13")}));
  REQUIRE(pr.kind == Reply::Kind::Success);
  CHECK_FALSE(pr.response.options.checkpoint_required);
  CHECK(f.server->mapping_count() == 4);
  CHECK(f.server->stats().checkpoint_refused_total_cap == 2);
  CHECK(f.server->stats().elected == 2);
  // Deleting an elected mapping frees a slot.
  REQUIRE(f.map({.client = ip("192.0.2.10"), .lifetime = 0}).kind == Reply::Kind::Success);
  CHECK(f.server->stats().elected == 1);
  CHECK(f.send(map_ckpt({.client = ip("192.0.2.12")})).response.options.checkpoint_required);
  check_stats_balance(f.server->stats());
}

TEST_CASE("R-CKPT-7 rate limit: token bucket per client, refilled on the core clock") {
  Fixture f(ckpt_policy(100, 100, /*rate=*/1.0, /*burst=*/2.0));
  std::uint16_t port = 7000;
  auto next = [&](const IpAddr& client = ip("192.0.2.10")) {
    return f.send(map_ckpt({.client = client, .internal_port = port++}));
  };
  CHECK(next().response.options.checkpoint_required);  // burst: 2 tokens
  CHECK(next().response.options.checkpoint_required);
  auto r = next();
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_rate == 1);
  // Another client has its own bucket.
  CHECK(next(ip("192.0.2.11")).response.options.checkpoint_required);
  f.clock.advance(Millis(500));  // half a token
  CHECK_FALSE(next().response.options.checkpoint_required);
  f.clock.advance(Millis(500));  // one token
  CHECK(next().response.options.checkpoint_required);
  CHECK_FALSE(next().response.options.checkpoint_required);
  f.clock.advance_s(60);  // refills up to the burst only
  CHECK(next().response.options.checkpoint_required);
  CHECK(next().response.options.checkpoint_required);
  CHECK_FALSE(next().response.options.checkpoint_required);
  const Stats& s = f.server->stats();
  CHECK(s.checkpoint_refused_rate == 4);
  CHECK(s.checkpoint_honoured == 6);
  CHECK(s.elected == 6);
  check_stats_balance(s);
}

TEST_CASE("R-CKPT-7 a refusal consumes no token") {
  Fixture f(ckpt_policy(100, 1, /*rate=*/0.0, /*burst=*/2.0));
  CHECK(f.send(map_ckpt({.internal_port = 7000})).response.options.checkpoint_required);
  CHECK_FALSE(f.send(map_ckpt({.internal_port = 7001})).response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_client_cap == 1);
  // Un-elect the first (renewal without the option): one token is still left for 7001.
  REQUIRE(f.map({.internal_port = 7000}).kind == Reply::Kind::Success);
  CHECK(f.send(map_ckpt({.internal_port = 7001})).response.options.checkpoint_required);
  // Now the bucket is empty (no refill at rate 0).
  REQUIRE(f.map({.internal_port = 7001}).kind == Reply::Kind::Success);
  CHECK_FALSE(f.send(map_ckpt({.internal_port = 7000})).response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_rate == 1);
}

TEST_CASE("R-CKPT-5 renewal without the option un-elects: Replace with the flag cleared") {
  Fixture f(ckpt_policy(100, 1));
  REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
  auto r = f.map({});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Replace);
  CHECK(c.previous.checkpoint);
  CHECK_FALSE(c.mapping.checkpoint);
  CHECK_FALSE(f.server->mappings().front().checkpoint);
  CHECK(f.server->stats().elected == 0);
  // The client's election slot is free again.
  CHECK(f.send(map_ckpt({.internal_port = 9000})).response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_requested == 2);  // a renewal without it is no request
}

TEST_CASE("R-CKPT-5 renewal with the option elects an unelected mapping: Replace with the flag set") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  auto r = f.send(map_ckpt({}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.checkpoint_required);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Replace);
  CHECK_FALSE(c.previous.checkpoint);
  CHECK(c.mapping.checkpoint);
  CHECK(f.server->stats().elected == 1);
}

TEST_CASE("R-CKPT-5 renewing an elected mapping with the option: no token, no second cap slot") {
  // Two elections per client, two tokens, no refill.
  Fixture f(ckpt_policy(2, 2, /*rate=*/0.0, /*burst=*/2.0));
  REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
  for (int i = 0; i < 5; ++i) {
    f.clock.advance_s(10);
    auto r = f.send(map_ckpt({}));
    REQUIRE(r.kind == Reply::Kind::Success);
    CHECK(r.response.options.checkpoint_required);
    const Change& c = only_change(f.dp);
    CHECK(c.op == Change::Op::Replace);
    CHECK(c.previous.checkpoint);
    CHECK(c.mapping.checkpoint);
  }
  CHECK(f.server->stats().elected == 1);
  // The renewals spent neither a token nor a cap slot: a second mapping is still elected...
  CHECK(f.send(map_ckpt({.internal_port = 9000})).response.options.checkpoint_required);
  // ...and that was the last token and the last slot.
  CHECK_FALSE(f.send(map_ckpt({.internal_port = 9001})).response.options.checkpoint_required);
  const Stats& s = f.server->stats();
  CHECK(s.elected == 2);
  CHECK(s.checkpoint_honoured == 7);
  CHECK(refusals(s) == 1);
}

TEST_CASE("R-CKPT-5 R-IDEM idempotent retransmissions get the same answer") {
  SUBCASE("honoured") {
    Fixture f(ckpt_policy(100, 1, 0.0, 1.0));
    const auto req = map_ckpt({});
    auto a = f.send(req);
    auto b = f.send(req);
    REQUIRE(a.kind == Reply::Kind::Success);
    REQUIRE(b.kind == Reply::Kind::Success);
    CHECK(a.response.options.checkpoint_required);
    CHECK(b.response.options.checkpoint_required);
    CHECK(map_body(a).external_addr == map_body(b).external_addr);
    CHECK(map_body(a).external_port == map_body(b).external_port);
    CHECK(a.response.lifetime == b.response.lifetime);
    CHECK(f.server->stats().elected == 1);
  }
  SUBCASE("refused over the per-client cap") {
    Fixture f(ckpt_policy(100, 1));
    REQUIRE(f.send(map_ckpt({.internal_port = 1111})).response.options.checkpoint_required);
    const auto req = map_ckpt({});
    auto a = f.send(req);
    auto b = f.send(req);
    CHECK_FALSE(a.response.options.checkpoint_required);
    CHECK_FALSE(b.response.options.checkpoint_required);
    CHECK(map_body(a).external_addr == map_body(b).external_addr);
    CHECK(map_body(a).external_port == map_body(b).external_port);
    CHECK(f.server->stats().checkpoint_refused_client_cap == 2);
  }
  SUBCASE("PEER") {
    Fixture f(ckpt_policy(100, 1, 0.0, 1.0));
    const auto req = peer_ckpt({});
    auto a = f.send(req);
    auto b = f.send(req);
    CHECK(a.response.options.checkpoint_required);
    CHECK(b.response.options.checkpoint_required);
    CHECK(peer_body(a).external_addr == peer_body(b).external_addr);
    CHECK(peer_body(a).external_port == peer_body(b).external_port);
    CHECK(a.response.lifetime == b.response.lifetime);
    CHECK(f.server->stats().elected == 1);
  }
}

TEST_CASE("R-CKPT-4 PEER create with the option: elected, echoed, Add carries the flag") {
  Fixture f;
  auto r = f.send(peer_ckpt({}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.checkpoint_required);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Add);
  CHECK(c.mapping.kind == pcpd::core::MappingKind::Peer);
  CHECK(c.mapping.checkpoint);
  CHECK(f.server->stats().elected == 1);
}

TEST_CASE("R-CKPT-5 PEER renewal changing only the election still produces a Replace") {
  Fixture f;
  REQUIRE(f.peer({.lifetime = 600}).kind == Reply::Kind::Success);
  // A lower lifetime changes nothing else (R-PEER-3: never shortened).
  auto r = f.send(peer_ckpt({.lifetime = 300}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.checkpoint_required);
  REQUIRE(f.dp.calls() == 2);
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Replace);
  CHECK_FALSE(c.previous.checkpoint);
  CHECK(c.mapping.checkpoint);
  CHECK(c.mapping.expires == c.previous.expires);
  // Same again: nothing changes, nothing applied, still elected and echoed.
  auto again = f.send(peer_ckpt({.lifetime = 300}));
  CHECK(again.response.options.checkpoint_required);
  CHECK(f.dp.calls() == 2);
  // Without the option: un-elected by a Replace.
  auto off = f.peer({.lifetime = 300});
  REQUIRE(off.kind == Reply::Kind::Success);
  CHECK_FALSE(off.response.options.checkpoint_required);
  REQUIRE(f.dp.calls() == 3);
  CHECK(only_change(f.dp).previous.checkpoint);
  CHECK_FALSE(only_change(f.dp).mapping.checkpoint);
  CHECK(f.server->stats().elected == 0);
}

TEST_CASE("R-CKPT-4 deleting an elected mapping just deletes it") {
  Fixture f;
  REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
  auto d = f.send(map_ckpt({.lifetime = 0}));
  REQUIRE(d.kind == Reply::Kind::Success);
  CHECK(d.response.lifetime == 0);
  CHECK_FALSE(d.response.options.checkpoint_required);  // nothing left to protect
  const Change& c = only_change(f.dp);
  CHECK(c.op == Change::Op::Remove);
  CHECK(c.mapping.checkpoint);  // the backend removes its election keys
  CHECK(f.server->mapping_count() == 0);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.server->stats().checkpoint_requested == 1);  // the delete is no election request
}

TEST_CASE("R-CKPT-4 bulk delete and expiry keep the elected gauge exact") {
  Fixture f(ckpt_policy(100, 3));
  for (std::uint16_t port = 8000; port < 8003; ++port)
    REQUIRE(f.send(map_ckpt({.internal_port = port, .lifetime = 600})).response.options.checkpoint_required);
  REQUIRE(f.send(map_ckpt({.client = ip("192.0.2.11"), .lifetime = 600})).response.options.checkpoint_required);
  REQUIRE(f.send(map_ckpt({.client = ip("192.0.2.12"), .lifetime = 7200})).response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 5);
  // R-LIFE-6 bulk delete of 192.0.2.10's mappings.
  REQUIRE(f.map({.protocol = 0, .internal_port = 0, .lifetime = 0}).kind == Reply::Kind::Success);
  CHECK(f.server->stats().elected == 2);
  // 192.0.2.10's slots are free again.
  CHECK(f.send(map_ckpt({.internal_port = 8100, .lifetime = 7200})).response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 3);
  // Expiry of 192.0.2.11's mapping.
  f.clock.advance_s(601);
  CHECK(f.server->expire() == 1);
  CHECK(f.server->stats().elected == 2);
  CHECK(elected_in_table(f) == 2);
}

TEST_CASE("R-CKPT-4 a failed expiry keeps the election") {
  Fixture f;
  REQUIRE(f.send(map_ckpt({.lifetime = 600})).response.options.checkpoint_required);
  f.clock.advance_s(601);
  f.dp.fail_nth(1);
  CHECK(f.server->expire() == 0);
  CHECK(f.server->stats().elected == 1);
  CHECK(f.server->mappings().front().checkpoint);
  f.clock.advance_s(2);
  CHECK(f.server->expire() == 1);
  CHECK(f.server->stats().elected == 0);
}

TEST_CASE("R-CKPT-4 restore keeps elected mappings elected and counts them against the caps") {
  // A first server hands out the mappings; a second one takes them over.
  Fixture first;
  REQUIRE(first.send(map_ckpt({.internal_port = 8000})).response.options.checkpoint_required);
  REQUIRE(first.send(map_ckpt({.internal_port = 8001})).response.options.checkpoint_required);
  REQUIRE(first.send(peer_ckpt({.client = ip("192.0.2.11")})).response.options.checkpoint_required);
  REQUIRE(first.map({.internal_port = 8002}).kind == Reply::Kind::Success);
  const auto recovered = first.server->mappings();

  Fixture f(ckpt_policy(4, 2));
  CHECK(f.server->restore(recovered) == 4);
  CHECK(f.server->stats().elected == 3);
  CHECK(elected_in_table(f) == 3);
  // 192.0.2.10 has its 2 elections: refused for the client cap.
  auto r = f.send(map_ckpt({.internal_port = 8002}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_client_cap == 1);
  // One global slot left (4 - 3): 192.0.2.12 takes it, 192.0.2.13 hits the global cap.
  CHECK(f.send(map_ckpt({.client = ip("192.0.2.12")})).response.options.checkpoint_required);
  CHECK_FALSE(f.send(map_ckpt({.client = ip("192.0.2.13")})).response.options.checkpoint_required);
  CHECK(f.server->stats().checkpoint_refused_total_cap == 1);
  // A restored elected mapping renewed with the option stays elected.
  CHECK(f.send(map_ckpt({.internal_port = 8000})).response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 4);
}

TEST_CASE("R-CKPT-4 restore beyond the caps keeps every election") {
  Fixture first;
  for (std::uint16_t port = 8000; port < 8004; ++port)
    REQUIRE(first.send(map_ckpt({.internal_port = port})).response.options.checkpoint_required);
  Fixture f(ckpt_policy(2, 1));
  CHECK(f.server->restore(first.server->mappings()) == 4);
  CHECK(f.server->stats().elected == 4);
  CHECK(elected_in_table(f) == 4);
  CHECK_FALSE(f.send(map_ckpt({.client = ip("192.0.2.11")})).response.options.checkpoint_required);
}

TEST_CASE("R-HDR-10 R-CKPT-4 a failed apply leaves election state and counters unchanged") {
  Fixture f(ckpt_policy(100, 100, /*rate=*/0.0, /*burst=*/1.0));
  SUBCASE("create") {
    f.dp.fail_nth(1);
    auto r = f.send(map_ckpt({}));
    REQUIRE(r.kind == Reply::Kind::Error);
    CHECK(r.response.result == ResultCode::NoResources);
    CHECK_FALSE(r.response.options.checkpoint_required);
    CHECK(f.dp.last().changes.front().mapping.checkpoint);  // it was asked for
    const Stats& s = f.server->stats();
    CHECK(s.checkpoint_requested == 0);
    CHECK(s.checkpoint_honoured == 0);
    CHECK(s.elected == 0);
    CHECK(s.datapath_errors == 1);
    // The only token was not spent.
    CHECK(f.send(map_ckpt({})).response.options.checkpoint_required);
    CHECK(f.server->stats().elected == 1);
  }
  SUBCASE("un-election") {
    REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
    const Stats before = f.server->stats();
    f.dp.fail_nth(1);
    CHECK(f.map({}).kind == Reply::Kind::Error);
    CHECK(f.server->mappings().front().checkpoint);
    CHECK(f.server->stats().elected == 1);
    CHECK(f.server->stats().datapath_errors == before.datapath_errors + 1);
    CHECK(f.server->stats().checkpoint_requested == before.checkpoint_requested);
    // Still elected: a renewal with the option keeps it without a token (none is left).
    CHECK(f.send(map_ckpt({})).response.options.checkpoint_required);
  }
  SUBCASE("election on renewal, PEER") {
    REQUIRE(f.peer({}).kind == Reply::Kind::Success);
    f.dp.fail_nth(1);
    CHECK(f.send(peer_ckpt({.lifetime = 3600})).kind == Reply::Kind::Error);
    CHECK_FALSE(f.server->mappings().front().checkpoint);
    CHECK(f.server->stats().elected == 0);
    CHECK(f.server->stats().checkpoint_requested == 0);
    // The token is still there.
    CHECK(f.send(peer_ckpt({.lifetime = 3600})).response.options.checkpoint_required);
  }
  SUBCASE("delete") {
    REQUIRE(f.send(map_ckpt({})).response.options.checkpoint_required);
    f.dp.fail_nth(1);
    CHECK(f.map({.lifetime = 0}).kind == Reply::Kind::Error);
    CHECK(f.server->stats().elected == 1);
    CHECK(f.server->mappings().front().checkpoint);
  }
}

TEST_CASE("R-CKPT-1 NAT-PMP mappings are never elected") {
  Fixture f;
  const std::vector<std::uint8_t> dg{0, 2, 0, 0, 0x1f, 0x90, 0, 0, 0, 0, 0x0e, 0x10};  // TCP 8080
  std::array<std::uint8_t, 64> out{};
  REQUIRE(f.server->handle_natpmp(dg, ctx(ip("192.0.2.10")), out) > 0);
  REQUIRE(f.server->mapping_count() == 1);
  CHECK_FALSE(f.server->mappings().front().checkpoint);
  // A PCP MAP with the all-zero nonce renews it and may elect it (it is a PCP mapping now)...
  CHECK(f.send(map_ckpt({.nonce = {}})).response.options.checkpoint_required);
  CHECK(f.server->stats().elected == 1);
  // ...and a NAT-PMP renewal un-elects it again.
  REQUIRE(f.server->handle_natpmp(dg, ctx(ip("192.0.2.10")), out) > 0);
  CHECK_FALSE(f.server->mappings().front().checkpoint);
  CHECK_FALSE(only_change(f.dp).mapping.checkpoint);
  CHECK(only_change(f.dp).previous.checkpoint);
  CHECK(f.server->stats().elected == 0);
  CHECK(f.server->stats().checkpoint_requested == 1);
}

TEST_CASE("R-CKPT-4 R-CKPT-3 through the codec: the option is echoed only when asked and honoured") {
  Fixture f(ckpt_policy(100, 1));
  auto roundtrip = [&](const Request& req) {
    std::array<std::uint8_t, 1100> in{};
    std::array<std::uint8_t, 1100> out{};
    const std::size_t len = wire::encode_request(req, in);
    REQUIRE(len > 0);
    const std::size_t n = f.server->handle_datagram(std::span<const std::uint8_t>(in.data(), len),
                                                    ctx(req.client_addr), out);
    REQUIRE(n > 0);
    auto d = wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
    REQUIRE(std::holds_alternative<wire::Response>(d));
    return std::get<wire::Response>(d);
  };
  auto honoured = roundtrip(map_ckpt({.internal_port = 8000}));
  CHECK(honoured.result == ResultCode::Success);
  CHECK(honoured.options.checkpoint_required);
  auto refused = roundtrip(map_ckpt({.internal_port = 8001}));  // over the per-client cap
  CHECK(refused.result == ResultCode::Success);
  CHECK_FALSE(refused.options.checkpoint_required);
  auto plain = roundtrip(map_req({.internal_port = 8002}));
  CHECK_FALSE(plain.options.checkpoint_required);
  auto peer = roundtrip(peer_ckpt({.client = ip("192.0.2.11")}));
  CHECK(peer.result == ResultCode::Success);
  CHECK(peer.options.checkpoint_required);
}

TEST_CASE("R-CKPT-7 stats: requested = honoured + refusals, one reason each, in a mixed run") {
  Fixture f(ckpt_policy(/*total=*/3, /*per_client=*/2, /*rate=*/1.0, /*burst=*/2.0));
  auto ask = [&](const char* client, std::uint16_t port) {
    return f.send(map_ckpt({.client = ip(client), .internal_port = port}))
        .response.options.checkpoint_required;
  };
  CHECK(ask("192.0.2.10", 1));        // honoured (token 1 left)
  CHECK(ask("192.0.2.10", 2));        // honoured (no token left)
  CHECK_FALSE(ask("192.0.2.10", 3));  // client cap
  CHECK(ask("192.0.2.11", 1));        // honoured: 3 elected
  CHECK_FALSE(ask("192.0.2.12", 1));  // global cap
  CHECK_FALSE(ask("192.0.2.11", 2));  // global cap (checked before the client's own limits)
  REQUIRE(f.map({.client = ip("192.0.2.10"), .internal_port = 1}).kind == Reply::Kind::Success);
  CHECK_FALSE(ask("192.0.2.10", 3));  // room under both caps, but no token: rate
  f.clock.advance_s(1);
  CHECK(ask("192.0.2.10", 3));        // refilled
  auto p = f.server->policy();
  p.checkpoint.enabled = false;
  f.server->set_policy(p);
  CHECK_FALSE(ask("192.0.2.12", 1));  // disabled
  const Stats& s = f.server->stats();
  CHECK(s.checkpoint_requested == 9);
  CHECK(s.checkpoint_honoured == 4);
  CHECK(s.checkpoint_refused_client_cap == 1);
  CHECK(s.checkpoint_refused_total_cap == 2);
  CHECK(s.checkpoint_refused_rate == 1);
  CHECK(s.checkpoint_refused_disabled == 1);
  check_stats_balance(s);
  CHECK(s.elected == 3);
  CHECK(elected_in_table(f) == 3);
}
