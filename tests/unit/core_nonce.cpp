// SPDX-License-Identifier: GPL-2.0-or-later
// Nonce conflicts (RFC 6887 §11.3 / R-MAP-7, R-OWN-2): mappings.nonce_change refuse | same_host,
// NAT-PMP mappings taken by their own host's PCP request, the operator's delete and flush.
#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "core_fixture.hpp"

namespace pcpd::test {
namespace {

Policy same_host() {
  Policy p = default_policy();
  p.nonce_change = Policy::NonceChange::SameHost;
  return p;
}

struct Seen : Fixture {
  explicit Seen(Policy p = default_policy()) : Fixture(std::move(p)) {
    server->set_nonce_conflict_sink([this](const core::NonceConflict& c) { events.push_back(c); });
  }
  std::vector<core::NonceConflict> events;
};

std::vector<std::uint8_t> natpmp_map_tcp(std::uint16_t internal, std::uint32_t lifetime) {
  return {0, 2, 0, 0, static_cast<std::uint8_t>(internal >> 8), static_cast<std::uint8_t>(internal), 0, 0,
          static_cast<std::uint8_t>(lifetime >> 24), static_cast<std::uint8_t>(lifetime >> 16),
          static_cast<std::uint8_t>(lifetime >> 8), static_cast<std::uint8_t>(lifetime)};
}

}  // namespace

TEST_CASE("nonce_change = refuse (default): the owner's new nonce gets NOT_AUTHORIZED, and the log hears of it") {
  Seen f;
  const Reply first = f.map({});
  REQUIRE(first.kind == Reply::Kind::Success);
  const Reply other = f.map({.nonce = nonce(50)});
  CHECK(other.kind == Reply::Kind::Error);
  CHECK(other.response.result == ResultCode::NotAuthorized);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].outcome == core::NonceConflict::Outcome::Refused);
  CHECK(f.events[0].client == ip("192.0.2.10"));
  CHECK(f.events[0].mapping.internal_port == 8080);
  CHECK(f.server->stats().nonce_refused == 1);
  CHECK(f.server->mappings()[0].nonce == nonce(1));
}

TEST_CASE("nonce_change = same_host: the owner's new nonce takes the mapping over, same external port") {
  Seen f(same_host());
  const Reply first = f.map({});
  REQUIRE(first.kind == Reply::Kind::Success);
  const Reply again = f.map({.nonce = nonce(50)});
  REQUIRE(again.kind == Reply::Kind::Success);
  CHECK(map_body(again).external_port == map_body(first).external_port);
  CHECK(map_body(again).nonce == nonce(50));
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].outcome == core::NonceConflict::Outcome::Replaced);
  CHECK(f.server->mappings()[0].nonce == nonce(50));
  CHECK(f.server->stats().nonce_replaced == 1);
  // The old nonce is now the stranger's: with same_host the owner host may switch back, so it
  // is taken over again (the same host), never a NOT_AUTHORIZED for the owner.
  CHECK(f.map({.nonce = nonce(1)}).kind == Reply::Kind::Success);
  // A delete with yet another nonce from the owner works too (Tailscale releases that way).
  CHECK(f.map({.lifetime = 0, .nonce = nonce(60)}).kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("nonce_change = same_host: never another host's mapping, never through THIRD_PARTY") {
  Policy p = same_host();
  p.third_party = true;
  p.third_party_allow = {*wire::Prefix::parse("192.0.2.0/28")};
  Seen f(p);
  REQUIRE(f.map({}).kind == Reply::Kind::Success);  // 192.0.2.10's own
  // 192.0.2.11 names 192.0.2.10's mapping through THIRD_PARTY with another nonce.
  Request tp = map_req({.client = ip("192.0.2.11"), .nonce = nonce(70)});
  tp.options.third_party = ip("192.0.2.10");
  const Reply r = f.send(tp);
  CHECK(r.response.result == ResultCode::NotAuthorized);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].outcome == core::NonceConflict::Outcome::Refused);
  CHECK(f.events[0].third_party);

  // A mapping made through THIRD_PARTY is not taken over by its internal host either.
  Request made = map_req({.client = ip("192.0.2.11"), .internal_port = 9000, .nonce = nonce(80)});
  made.options.third_party = ip("192.0.2.12");
  REQUIRE(f.send(made).kind == Reply::Kind::Success);
  const Reply own = f.map({.client = ip("192.0.2.12"), .internal_port = 9000, .nonce = nonce(81)});
  CHECK(own.response.result == ResultCode::NotAuthorized);
}

TEST_CASE("a NAT-PMP mapping (no nonce) is taken by a PCP request from its own host, whatever nonce_change says") {
  Seen f;  // refuse
  std::array<std::uint8_t, 64> out{};
  REQUIRE(f.server->handle_natpmp(natpmp_map_tcp(8080, 3600), ctx(ip("192.0.2.10")), out) > 0);
  REQUIRE(f.server->mapping_count() == 1);
  const std::uint16_t pmp_port = f.server->mappings()[0].external_port;
  const Reply pcp = f.map({});
  REQUIRE(pcp.kind == Reply::Kind::Success);
  CHECK(map_body(pcp).external_port == pmp_port);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].outcome == core::NonceConflict::Outcome::NatPmpTaken);
  CHECK(f.server->mappings()[0].origin == core::Origin::Pcp);
  CHECK(f.server->mappings()[0].nonce == nonce(1));
  // From then on it is a PCP mapping with a nonce: another nonce is refused again.
  CHECK(f.map({.nonce = nonce(2)}).response.result == ResultCode::NotAuthorized);
}

TEST_CASE("a PEER mapping with the owner's new nonce, same_host") {
  Seen f(same_host());
  REQUIRE(f.peer({}).kind == Reply::Kind::Success);
  const Reply again = f.peer({.nonce = nonce(90)});
  REQUIRE(again.kind == Reply::Kind::Success);
  CHECK(peer_body(again).nonce == nonce(90));
  CHECK(f.server->mappings()[0].nonce == nonce(90));
}

TEST_CASE("the operator's delete and flush: one mapping, or all of one host, in one transaction") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.internal_port = 8081}).kind == Reply::Kind::Success);
  REQUIRE(f.peer({}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.client = ip("192.0.2.11")}).kind == Reply::Kind::Success);
  CHECK(f.server->remove_mapping(core::MappingKind::Map, ip("192.0.2.10"), kTcp, 8080, IpAddr{}, 0) == 1u);
  CHECK(f.server->remove_mapping(core::MappingKind::Map, ip("192.0.2.10"), kTcp, 8080, IpAddr{}, 0) == 0u);
  CHECK(f.server->mapping_count() == 3);
  // The freed mapping can be made again with any nonce.
  CHECK(f.map({.nonce = nonce(99)}).kind == Reply::Kind::Success);
  const std::size_t calls = f.dp.calls();
  CHECK(f.server->remove_client(ip("192.0.2.10")) == 3u);  // 8080 again, 8081 and the PEER
  CHECK(f.dp.calls() == calls + 1);
  REQUIRE(f.server->mapping_count() == 1);
  CHECK(f.server->mappings()[0].internal_addr == ip("192.0.2.11"));
  // Refused by the kernel: nothing removed.
  f.dp.fail_nth(1);
  CHECK_FALSE(f.server->remove_client(ip("192.0.2.11")).has_value());
  CHECK(f.server->mapping_count() == 1);
}

}  // namespace pcpd::test
