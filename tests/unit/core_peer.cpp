// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core PEER (RFC 6887 §12): R-PEER-*.
#include "unit/core_fixture.hpp"

using namespace pcpd::test;
using pcpd::core::Change;
using pcpd::core::MappingKind;

TEST_CASE("R-PEER-2 protocol, internal port or remote port 0 is MALFORMED_REQUEST (local decision)") {
  Fixture f;
  CHECK(f.peer({.protocol = 0}).response.result == ResultCode::MalformedRequest);
  CHECK(f.peer({.internal_port = 0}).response.result == ResultCode::MalformedRequest);
  CHECK(f.peer({.remote_port = 0}).response.result == ResultCode::MalformedRequest);
  CHECK(f.peer({.nonce = {}}).kind == Reply::Kind::Success);  // a zero nonce is legal
}

TEST_CASE("R-PEER-3 lifetime 0 never deletes: existing -> SUCCESS with the remaining lifetime") {
  Fixture f;
  REQUIRE(f.peer({.lifetime = 600}).kind == Reply::Kind::Success);
  f.clock.advance_s(100);
  const auto calls = f.dp.calls();
  auto r = f.peer({.lifetime = 0});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.lifetime == 500);
  CHECK(f.server->mapping_count() == 1);
  CHECK(f.dp.calls() == calls);  // nothing changed, nothing applied
}

TEST_CASE("R-PEER-3 lifetime 0 without a mapping is MALFORMED_REQUEST (our decision)") {
  // Reading implemented (docs/design.md "Decisions"): MALFORMED_REQUEST (the spec's alternative, creating an
  // implicit mapping, is not what we do). Nothing is created.
  Fixture f;
  auto r = f.peer({.lifetime = 0});
  CHECK(r.kind == Reply::Kind::Error);
  CHECK(r.response.result == ResultCode::MalformedRequest);
  CHECK(f.server->mapping_count() == 0);
  CHECK(f.dp.calls() == 0);
}

TEST_CASE("R-PEER-4 a suggestion that cannot be honoured is CANNOT_PROVIDE_EXTERNAL") {
  Fixture f;
  REQUIRE(f.map({.internal_port = 80, .suggested_port = 45000}).kind == Reply::Kind::Success);
  auto r = f.peer({.suggested_port = 45000});  // held by another endpoint
  CHECK(r.response.result == ResultCode::CannotProvideExternal);
  auto a = f.peer({.suggested_addr = ip("198.51.100.200")});  // not our address
  CHECK(a.response.result == ResultCode::CannotProvideExternal);
  auto ok = f.peer({.suggested_port = 45001});
  REQUIRE(ok.kind == Reply::Kind::Success);
  CHECK(peer_body(ok).external_port == 45001);
  // Existing PEER, suggestion naming another port.
  auto again = f.peer({.suggested_port = 45002});
  CHECK(again.response.result == ResultCode::CannotProvideExternal);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("R-PEER-5 PREFER_FAILURE in PEER is MALFORMED_REQUEST") {
  Fixture f;
  auto req = peer_req({.suggested_port = 45000, .suggested_addr = ip("203.0.113.1")});
  req.options.prefer_failure = true;
  CHECK(f.send(req).response.result == ResultCode::MalformedRequest);
}

TEST_CASE("R-PEER-6 the remote peer is in the internal family, otherwise MALFORMED_REQUEST") {
  Fixture f;
  CHECK(f.peer({.remote_addr = ip("2001:db8::7")}).response.result == ResultCode::MalformedRequest);
  CHECK(f.peer({.client = ip("2001:db8::10"), .remote_addr = ip("198.51.100.7")}).response.result ==
        ResultCode::MalformedRequest);
  auto ok = f.peer({});
  REQUIRE(ok.kind == Reply::Kind::Success);
  CHECK(peer_body(ok).remote_addr == ip("198.51.100.7"));
  CHECK(peer_body(ok).remote_port == 443);
  CHECK(f.server->mappings().front().remote_addr == ip("198.51.100.7"));
}

TEST_CASE("R-PEER-7 existing mapping: a higher request extends, a lower one is a query") {
  Fixture f;
  auto a = f.peer({.lifetime = 600});
  REQUIRE(a.kind == Reply::Kind::Success);
  CHECK(a.response.lifetime == 600);
  f.clock.advance_s(100);
  auto lower = f.peer({.lifetime = 200});
  CHECK(lower.response.lifetime == 500);
  auto higher = f.peer({.lifetime = 1200});
  CHECK(higher.response.lifetime == 1200);
  CHECK(f.dp.last().changes.front().op == Change::Op::Replace);
  CHECK(peer_body(higher).external_port == peer_body(a).external_port);
  // A PEER with an unusable destination (unspecified address) is refused.
  CHECK(f.peer({.remote_addr = IpAddr::v4_any()}).response.result == ResultCode::MalformedRequest);
}

TEST_CASE("R-PEER-9 a different nonce on an existing PEER mapping is NOT_AUTHORIZED (local decision)") {
  Fixture f;
  REQUIRE(f.peer({.lifetime = 600, .nonce = nonce(1)}).kind == Reply::Kind::Success);
  f.clock.advance_s(50);
  auto r = f.peer({.lifetime = 600, .nonce = nonce(2)});
  CHECK(r.response.result == ResultCode::NotAuthorized);
  CHECK(r.response.lifetime == 550);
}

TEST_CASE("PEER mappings of one endpoint to several peers share one external port (EIM)") {
  Fixture f;
  auto a = f.peer({.remote_addr = ip("198.51.100.7")});
  auto b = f.peer({.remote_addr = ip("198.51.100.8")});
  REQUIRE(a.kind == Reply::Kind::Success);
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(peer_body(a).external_port == peer_body(b).external_port);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("PEER on an IPv6 pinhole maps the identity") {
  Fixture f;
  auto r = f.peer({.client = ip("2001:db8::10"), .remote_addr = ip("2001:db8:1::7")});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(peer_body(r).external_addr == ip("2001:db8::10"));
  CHECK(peer_body(r).external_port == 5000);
}
