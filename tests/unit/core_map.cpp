// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core MAP (RFC 6887 §11, §13.2, §15): R-MAP-*, R-PF-*, R-LIFE-*, R-OWN-*, R-IDEM-*.
#include "unit/core_fixture.hpp"

using namespace pcpd::test;
using pcpd::core::Change;
using pcpd::core::MappingKind;

TEST_CASE("R-MAP-1 a zero nonce is legal and creates the mapping") {
  Fixture f;
  auto r = f.map({.nonce = {}});
  CHECK(r.kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 1);
  CHECK(f.server->mappings().front().nonce == wire::Nonce{});
}

TEST_CASE("R-MAP-2 protocol 0 with a non-zero internal port is MALFORMED_REQUEST (local decision)") {
  Fixture f;
  auto r = f.map({.protocol = 0, .internal_port = 80});
  CHECK(r.kind == Reply::Kind::Error);
  CHECK(r.response.result == ResultCode::MalformedRequest);
  auto d = f.map({.protocol = 0, .internal_port = 80, .lifetime = 0});
  CHECK(d.response.result == ResultCode::MalformedRequest);
  CHECK(f.dp.calls() == 0);
}

TEST_CASE("R-MAP-3 all-ports off by policy, and all-protocols always: UNSUPP_PROTOCOL (C3)") {
  // Off by policy: R-MAP-3 answers a policy refusal like a request that cannot be granted in
  // full. All protocols: the kernel's keys carry a protocol, so never granted in full.
  for (bool allow : {false, true}) {
    auto p = default_policy();
    p.allow_all_ports = allow;
    Fixture f(p);
    const auto want = ResultCode::UnsuppProtocol;
    if (!allow) {
      CHECK(f.map({.internal_port = 0}).response.result == want);
      CHECK(f.map({.client = ip("2001:db8::10"), .internal_port = 0}).response.result == want);
    }
    CHECK(f.map({.protocol = 0, .internal_port = 0}).response.result == want);
    CHECK(f.map({.client = ip("2001:db8::10"), .protocol = 0, .internal_port = 0}).response.result == want);
    CHECK(f.server->mapping_count() == 0);
  }
}

TEST_CASE("R-MAP-3 a protocol outside the policy is UNSUPP_PROTOCOL") {
  Fixture f;
  auto r = f.map({.protocol = 132});
  CHECK(r.response.result == ResultCode::UnsuppProtocol);
  CHECK(r.response.lifetime == 1800);
}

TEST_CASE("R-MAP-4 no suggestion: an external address of ours and some port") {
  Fixture f;
  auto r = f.map({});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_addr == ip("203.0.113.1"));
  CHECK(map_body(r).external_port != 0);
  // The all-zeros IPv6 address is "no preference" too.
  auto r2 = f.map({.internal_port = 9090, .suggested_addr = IpAddr{}});
  CHECK(r2.kind == Reply::Kind::Success);
  CHECK(map_body(r2).external_addr == ip("203.0.113.1"));
}

TEST_CASE("R-MAP-5 a free suggestion is honoured, a taken one replaced by another port") {
  Fixture f;
  auto a = f.map({.suggested_port = 40000, .suggested_addr = ip("203.0.113.1")});
  REQUIRE(a.kind == Reply::Kind::Success);
  CHECK(map_body(a).external_port == 40000);
  // Another host suggests the same port: gets another one (R-OWN-3), never takes it over.
  auto b = f.map({.client = ip("192.0.2.11"), .suggested_port = 40000});
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(map_body(b).external_port != 40000);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("R-MAP-5 a suggestion outside the policy port range is replaced") {
  auto p = default_policy();
  p.port_min = 20000;
  p.port_max = 20010;
  Fixture f(p);
  auto r = f.map({.internal_port = 80, .suggested_port = 80});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_port >= 20000);
  CHECK(map_body(r).external_port <= 20010);
}

TEST_CASE("R-MAP-5 a suggested address that is not ours is replaced, or refused with PREFER_FAILURE") {
  Fixture f;
  auto r = f.map({.suggested_port = 41000, .suggested_addr = ip("198.51.100.1")});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_addr == ip("203.0.113.1"));
  auto pf = map_req({.internal_port = 9000, .suggested_port = 41001, .suggested_addr = ip("198.51.100.1")});
  pf.options.prefer_failure = true;
  CHECK(f.send(pf).response.result == ResultCode::CannotProvideExternal);
}

TEST_CASE("R-MAP-5 SCTP implies PREFER_FAILURE: a taken suggestion is CANNOT_PROVIDE_EXTERNAL") {
  auto p = default_policy();
  p.protocols = {6, 17, 132};
  Fixture f(p);
  REQUIRE(f.map({.protocol = 132, .internal_port = 3868, .suggested_port = 3868}).kind ==
          Reply::Kind::Success);
  auto r = f.map({.client = ip("192.0.2.11"), .protocol = 132, .internal_port = 3868,
                  .suggested_port = 3868});
  CHECK(r.response.result == ResultCode::CannotProvideExternal);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-MAP-6 refresh returns the same external endpoint whatever the suggestion") {
  Fixture f;
  auto a = f.map({.lifetime = 3600});
  REQUIRE(a.kind == Reply::Kind::Success);
  f.clock.advance_s(10);
  auto b = f.map({.lifetime = 7200, .suggested_port = 50001, .suggested_addr = ip("203.0.113.1")});
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(map_body(b).external_port == map_body(a).external_port);
  CHECK(b.response.lifetime == 7200);
  CHECK(f.dp.last().changes.front().op == Change::Op::Replace);
  // Lifetime may go down as well.
  auto c = f.map({.lifetime = 300});
  CHECK(c.response.lifetime == 300);
  CHECK(f.server->mappings().front().remaining(f.clock.now()) == 300);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-MAP-6 R-PF-2 PREFER_FAILURE naming another endpoint than the existing mapping") {
  Fixture f;
  auto a = f.map({.lifetime = 3600, .suggested_port = 42000});
  REQUIRE(map_body(a).external_port == 42000);
  f.clock.advance_s(100);
  auto req = map_req({.lifetime = 3600, .suggested_port = 42001, .suggested_addr = ip("203.0.113.1")});
  req.options.prefer_failure = true;
  auto r = f.send(req);
  CHECK(r.response.result == ResultCode::CannotProvideExternal);
  CHECK(r.response.lifetime == 3500);  // the conflicting mapping's remaining lifetime (§13.2 MAY)
  // The matching suggestion refreshes and echoes PREFER_FAILURE.
  auto ok = map_req({.lifetime = 3600, .suggested_port = 42000, .suggested_addr = ip("203.0.113.1")});
  ok.options.prefer_failure = true;
  auto s = f.send(ok);
  CHECK(s.kind == Reply::Kind::Success);
  CHECK(s.response.options.prefer_failure);
}

TEST_CASE("R-MAP-7 nonce mismatch is NOT_AUTHORIZED with the remaining lifetime") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 3600, .nonce = nonce(1)}).kind == Reply::Kind::Success);
  f.clock.advance_s(600);
  const auto calls = f.dp.calls();
  auto r = f.map({.lifetime = 3600, .nonce = nonce(2)});
  CHECK(r.response.result == ResultCode::NotAuthorized);
  CHECK(r.response.lifetime == 3000);
  CHECK(f.dp.calls() == calls);
  CHECK(f.server->mappings().front().nonce == nonce(1));
}

TEST_CASE("R-MAP-8 a TCP request never creates a UDP mapping") {
  Fixture f;
  REQUIRE(f.map({.protocol = kTcp}).kind == Reply::Kind::Success);
  REQUIRE(f.dp.applied().size() == 1);
  REQUIRE(f.dp.last().changes.size() == 1);
  CHECK(f.dp.last().changes.front().mapping.protocol == kTcp);
  CHECK(f.server->mappings().front().protocol == kTcp);
}

TEST_CASE("R-MAP-9 success response copies nonce, protocol, internal port and assigns external") {
  Fixture f;
  auto r = f.map({.protocol = kUdp, .internal_port = 5353, .lifetime = 1000, .nonce = nonce(9)});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.opcode == wire::Opcode::Map);
  CHECK(r.response.lifetime == 1000);
  CHECK(map_body(r).nonce == nonce(9));
  CHECK(map_body(r).protocol == kUdp);
  CHECK(map_body(r).internal_port == 5353);
  const Mapping m = f.server->mappings().front();
  CHECK(map_body(r).external_port == m.external_port);
  CHECK(map_body(r).external_addr == m.external_addr);
}

TEST_CASE("R-MAP-10 the key is internal address + protocol + internal port") {
  Fixture f;
  CHECK(f.map({.client = ip("192.0.2.10"), .protocol = kTcp}).kind == Reply::Kind::Success);
  CHECK(f.map({.client = ip("192.0.2.11"), .protocol = kTcp}).kind == Reply::Kind::Success);
  CHECK(f.map({.client = ip("192.0.2.10"), .protocol = kUdp}).kind == Reply::Kind::Success);
  CHECK(f.map({.client = ip("192.0.2.10"), .internal_port = 8081}).kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 4);
}

TEST_CASE("R-MAP-11 an IPv6 pinhole maps the identity") {
  Fixture f;
  auto r = f.map({.client = ip("2001:db8::10"), .internal_port = 22, .suggested_port = 2222,
                  .suggested_addr = ip("2001:db8::99")});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_addr == ip("2001:db8::10"));
  CHECK(map_body(r).external_port == 22);
  auto p = default_policy();
  p.ipv6_firewall = false;
  Fixture g(p);
  CHECK(g.map({.client = ip("2001:db8::10"), .internal_port = 22}).response.result ==
        ResultCode::NotAuthorized);
}

TEST_CASE("R-MAP-12 MAP for an endpoint with PEER mappings reuses their external port, and vice versa") {
  Fixture f;
  auto peer = f.peer({.internal_port = 6000});
  REQUIRE(peer.kind == Reply::Kind::Success);
  auto map = f.map({.internal_port = 6000});
  REQUIRE(map.kind == Reply::Kind::Success);
  CHECK(map_body(map).external_port == peer_body(peer).external_port);
  CHECK(map_body(map).external_addr == peer_body(peer).external_addr);
  // Vice versa: a PEER after a MAP shares the MAP's external endpoint.
  auto map2 = f.map({.internal_port = 6001});
  auto peer2 = f.peer({.internal_port = 6001, .remote_addr = ip("198.51.100.9")});
  REQUIRE(peer2.kind == Reply::Kind::Success);
  CHECK(peer_body(peer2).external_port == map_body(map2).external_port);
  // Deleting the MAP leaves the PEER and its port (the outbound mapping lives on).
  REQUIRE(f.map({.internal_port = 6000, .lifetime = 0}).kind == Reply::Kind::Success);
  auto again = f.peer({.internal_port = 6000});
  CHECK(peer_body(again).external_port == peer_body(peer).external_port);
}

TEST_CASE("R-MAP-13 IPv4 internal gets an IPv4 external, IPv4 without NAT44 or address is refused") {
  Fixture f;
  auto r = f.map({});
  CHECK(map_body(r).external_addr.is_v4());
  auto p = default_policy();
  p.external_v4.clear();
  Fixture g(p);
  auto n = g.map({});
  CHECK(n.response.result == ResultCode::NetworkFailure);
  CHECK(n.response.lifetime == 30);  // short-lifetime error
  p = default_policy();
  p.nat44 = false;  // our reading: IPv4 service disabled -> NOT_AUTHORIZED ("operation disabled")
  Fixture h(p);
  CHECK(h.map({}).response.result == ResultCode::NotAuthorized);
}

TEST_CASE("R-MAP-14 a short-lived mapping to the discard port tells the external address") {
  Fixture f;
  auto r = f.map({.internal_port = 9, .lifetime = 1});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_addr == ip("203.0.113.1"));
  CHECK(r.response.lifetime == 120);  // clamped up to the minimum (R-LIFE-2)
}

TEST_CASE("R-MAP-15 the PCP ports and denied ports are NOT_AUTHORIZED, 5350/5351 never external") {
  auto p = default_policy();
  p.denied_internal_ports = {25};
  Fixture f(p);
  CHECK(f.map({.internal_port = 5351}).response.result == ResultCode::NotAuthorized);
  CHECK(f.map({.internal_port = 5350}).response.result == ResultCode::NotAuthorized);
  CHECK(f.map({.internal_port = 25}).response.result == ResultCode::NotAuthorized);
  // A suggestion of 5351 is "used by the gateway's own services": another port.
  auto r = f.map({.internal_port = 7000, .suggested_port = 5351});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_port != 5351);
  auto pf = map_req({.internal_port = 7001, .suggested_port = 5350, .suggested_addr = ip("203.0.113.1")});
  pf.options.prefer_failure = true;
  CHECK(f.send(pf).response.result == ResultCode::CannotProvideExternal);
  // A range of only 5350..5352 hands out 5352 and then nothing.
  p.port_min = 5350;
  p.port_max = 5352;
  Fixture g(p);
  auto a = g.map({.internal_port = 7000});
  REQUIRE(a.kind == Reply::Kind::Success);
  CHECK(map_body(a).external_port == 5352);
  CHECK(g.map({.internal_port = 7001}).response.result == ResultCode::NoResources);
}

TEST_CASE("R-PF-1 R-PF-2 PREFER_FAILURE: a taken suggestion is CANNOT_PROVIDE_EXTERNAL, no alternative") {
  Fixture f;
  REQUIRE(f.map({.suggested_port = 43000}).kind == Reply::Kind::Success);
  auto req = map_req({.client = ip("192.0.2.11"), .suggested_port = 43000,
                      .suggested_addr = ip("203.0.113.1")});
  req.options.prefer_failure = true;
  auto r = f.send(req);
  CHECK(r.response.result == ResultCode::CannotProvideExternal);
  CHECK(f.server->mapping_count() == 1);
  // A free suggestion is granted exactly and PREFER_FAILURE is echoed.
  auto ok = map_req({.client = ip("192.0.2.11"), .suggested_port = 43001,
                     .suggested_addr = ip("203.0.113.1")});
  ok.options.prefer_failure = true;
  auto s = f.send(ok);
  REQUIRE(s.kind == Reply::Kind::Success);
  CHECK(map_body(s).external_port == 43001);
  CHECK(s.response.options.prefer_failure);
}

TEST_CASE("R-PF-5 PREFER_FAILURE with a zero port or an all-zeros address is MALFORMED_OPTION") {
  Fixture f;
  auto a = map_req({.suggested_port = 0, .suggested_addr = ip("203.0.113.1")});
  a.options.prefer_failure = true;
  CHECK(f.send(a).response.result == ResultCode::MalformedOption);
  auto b = map_req({.suggested_port = 44000, .suggested_addr = IpAddr::v4_any()});
  b.options.prefer_failure = true;
  CHECK(f.send(b).response.result == ResultCode::MalformedOption);
  auto c = map_req({.suggested_port = 44000, .suggested_addr = IpAddr{}});
  c.options.prefer_failure = true;
  CHECK(f.send(c).response.result == ResultCode::MalformedOption);
  auto d = map_req({.lifetime = 0, .suggested_port = 44000, .suggested_addr = ip("203.0.113.1")});
  d.options.prefer_failure = true;  // R-OPT-4: PREFER_FAILURE with lifetime 0
  CHECK(f.send(d).response.result == ResultCode::MalformedOption);
}

TEST_CASE("R-LIFE-1 R-LIFE-4 lifetime 0 deletes, SUCCESS, lifetime 0, suggested fields copied") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  auto d = f.map({.lifetime = 0, .suggested_port = 0});
  REQUIRE(d.kind == Reply::Kind::Success);
  CHECK(d.response.lifetime == 0);
  CHECK(map_body(d).external_port == 0);
  CHECK(map_body(d).external_addr == IpAddr::v4_any());
  CHECK(f.server->mapping_count() == 0);
  const Change& c = f.dp.last().changes.front();
  CHECK(c.op == Change::Op::Remove);
  CHECK(c.flush_conntrack);
  // Deleting what does not exist is SUCCESS with lifetime 0 as well (same request, same answer).
  auto again = f.map({.lifetime = 0});
  CHECK(again.kind == Reply::Kind::Success);
  CHECK(again.response.lifetime == 0);
}

TEST_CASE("R-LIFE-2 non-zero lifetimes are clamped to [min, max] (local decision)") {
  Fixture f;
  CHECK(f.map({.internal_port = 1001, .lifetime = 5}).response.lifetime == 120);
  CHECK(f.map({.internal_port = 1002, .lifetime = 1'000'000}).response.lifetime == 86400);
  CHECK(f.map({.internal_port = 1003, .lifetime = 500}).response.lifetime == 500);
}

TEST_CASE("R-LIFE-3 R-LIFE-7 a mapping lives its lifetime, then expiry removes it from the datapath") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 200}).kind == Reply::Kind::Success);
  CHECK(f.server->next_expiry() == f.clock.now() + pcpd::core::Millis(200'000));
  f.clock.advance_s(199);
  CHECK(f.server->expire() == 0);
  CHECK(f.server->mapping_count() == 1);
  f.clock.advance_s(1);
  CHECK(f.server->expire() == 1);
  CHECK(f.server->mapping_count() == 0);
  CHECK(f.dp.last().changes.front().op == Change::Op::Remove);
  CHECK(f.dp.last().changes.front().flush_conntrack);
  CHECK(f.server->stats().expired == 1);
  CHECK(f.server->next_expiry() == pcpd::core::Millis::max());
}

TEST_CASE("R-LIFE-5 MAP cannot delete a PEER-created mapping: NOT_AUTHORIZED") {
  Fixture f;
  REQUIRE(f.peer({.internal_port = 6000}).kind == Reply::Kind::Success);
  auto d = f.map({.internal_port = 6000, .lifetime = 0, .nonce = nonce(7)});
  CHECK(d.response.result == ResultCode::NotAuthorized);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-LIFE-6 protocol 0 + port 0 deletes all explicit MAP mappings of the host, no nonce check") {
  Fixture f;
  REQUIRE(f.map({.protocol = kTcp, .internal_port = 1, .nonce = nonce(1)}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.protocol = kUdp, .internal_port = 2, .nonce = nonce(2)}).kind == Reply::Kind::Success);
  REQUIRE(f.peer({.internal_port = 3}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.client = ip("192.0.2.11"), .internal_port = 4}).kind == Reply::Kind::Success);
  auto d = f.map({.protocol = 0, .internal_port = 0, .lifetime = 0, .nonce = nonce(99)});
  REQUIRE(d.kind == Reply::Kind::Success);
  CHECK(d.response.lifetime == 0);
  CHECK(f.dp.last().changes.size() == 2);  // one batch, both removals
  CHECK(f.server->mapping_count() == 2);   // the PEER and the other host's MAP stay
  // Nothing left to delete: still SUCCESS.
  CHECK(f.map({.protocol = 0, .internal_port = 0, .lifetime = 0}).kind == Reply::Kind::Success);
}

TEST_CASE("R-LIFE-6 protocol P + port 0 deletes only the wildcard for P (local decision b)") {
  Fixture f;
  REQUIRE(f.map({.protocol = kTcp, .internal_port = 1}).kind == Reply::Kind::Success);
  auto d = f.map({.protocol = kTcp, .internal_port = 0, .lifetime = 0});
  CHECK(d.kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 1);  // per-port mappings untouched; no wildcard existed
}

TEST_CASE("R-OWN-1 R-OWN-2 delete and refresh need the nonce, IPv6 pinhole renewal too") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 1000, .nonce = nonce(1)}).kind == Reply::Kind::Success);
  f.clock.advance_s(100);
  auto d = f.map({.lifetime = 0, .nonce = nonce(2)});
  CHECK(d.response.result == ResultCode::NotAuthorized);
  CHECK(d.response.lifetime == 900);
  CHECK(f.server->mapping_count() == 1);
  const IpAddr v6 = ip("2001:db8::10");
  REQUIRE(f.map({.client = v6, .internal_port = 22, .lifetime = 1000, .nonce = nonce(1)}).kind ==
          Reply::Kind::Success);
  auto r = f.map({.client = v6, .internal_port = 22, .lifetime = 1000, .nonce = nonce(3)});
  CHECK(r.response.result == ResultCode::NotAuthorized);
  CHECK(r.response.lifetime == 1000);
}

TEST_CASE("R-OWN-3 another host never takes over a mapping's external port") {
  Fixture f;
  auto a = f.map({.client = ip("192.0.2.10"), .internal_port = 80});
  auto b = f.map({.client = ip("192.0.2.11"), .internal_port = 80});
  REQUIRE(a.kind == Reply::Kind::Success);
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(map_body(a).external_port != map_body(b).external_port);
}

TEST_CASE("R-OWN-5 restored mappings keep their nonce: refresh works after restore") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 3600, .nonce = nonce(5)}).kind == Reply::Kind::Success);
  const auto saved = f.server->mappings();
  Fixture g;
  CHECK(g.server->restore(saved) == 1);
  CHECK(g.dp.calls() == 0);  // already installed: not applied again
  auto r = g.map({.lifetime = 3600, .nonce = nonce(5)});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_port == saved.front().external_port);
  CHECK(g.map({.lifetime = 3600, .nonce = nonce(6)}).response.result == ResultCode::NotAuthorized);
}

TEST_CASE("R-IDEM-1 a retransmitted create returns the same mapping, never a second one") {
  Fixture f;
  f.clock.advance_s(10);  // past the epoch's first second, which reads 1 like the next
  auto a = f.map({});
  f.clock.advance_s(3);
  auto b = f.map({});
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(map_body(a).external_port == map_body(b).external_port);
  CHECK(map_body(a).external_addr == map_body(b).external_addr);
  CHECK(b.response.epoch == a.response.epoch + 3);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-IDEM-2 duplicated and reordered deletes keep answering SUCCESS") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  CHECK(f.map({.lifetime = 0}).kind == Reply::Kind::Success);
  CHECK(f.map({.lifetime = 0}).kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("R-IDEM-4 a refresh at T+60 of a 120 s mapping keeps it alive until T+180") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 120}).kind == Reply::Kind::Success);
  f.clock.advance_s(60);
  REQUIRE(f.map({.lifetime = 120}).kind == Reply::Kind::Success);
  f.clock.advance_s(119);
  CHECK(f.server->expire() == 0);
  CHECK(f.server->mapping_count() == 1);
  f.clock.advance_s(1);
  CHECK(f.server->expire() == 1);
}
