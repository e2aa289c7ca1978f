// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core general processing: R-ADDR, R-TP, R-ANN, R-EPOCH, R-RC, R-QUOTA, all-or-nothing apply,
// restore, policy and stats.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "unit/core_fixture.hpp"

using namespace pcpd::test;
using pcpd::core::Change;
using pcpd::core::MappingKind;
using pcpd::core::Millis;

namespace {
Policy third_party_policy() {
  auto p = default_policy();
  p.third_party = true;
  p.third_party_allow = {*wire::Prefix::parse("192.0.2.0/28")};
  return p;
}
}  // namespace

TEST_CASE("R-ADDR-1 client address field differs from the source: ADDRESS_MISMATCH, checked first") {
  Fixture f;
  auto req = map_req({.client = ip("192.0.2.10")});
  req.option_error = ResultCode::MalformedOption;  // would come later
  auto r = f.server->handle(req, ctx(ip("192.0.2.99")));
  CHECK(r.kind == Reply::Kind::Error);
  CHECK(r.response.result == ResultCode::AddressMismatch);
  CHECK(r.response.lifetime == 1800);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("R-ADDR-1 R-ADDR-3 the comparison is exact over 128 bits") {
  Fixture f;
  // ::c000:20a (IPv4-compatible) is not ::ffff:192.0.2.10.
  IpAddr compat{};
  compat.bytes[12] = 192; compat.bytes[13] = 0; compat.bytes[14] = 2; compat.bytes[15] = 10;
  auto req = map_req({.client = compat});
  CHECK(f.server->handle(req, ctx(ip("192.0.2.10"))).response.result == ResultCode::AddressMismatch);
  auto v6 = map_req({.client = ip("2001:db8::10")});
  CHECK(f.server->handle(v6, ctx(ip("2001:db8::11"))).response.result == ResultCode::AddressMismatch);
  CHECK(f.server->handle(v6, ctx(ip("2001:db8::10"))).kind == Reply::Kind::Success);
}

TEST_CASE("R-ANN-1 ANNOUNCE is SUCCESS with lifetime 0, the requested lifetime is ignored") {
  Fixture f;
  f.clock.advance_s(42);
  auto r = f.send(announce_req(ip("192.0.2.10"), 3600));
  CHECK(r.kind == Reply::Kind::Success);
  CHECK(r.response.opcode == wire::Opcode::Announce);
  CHECK(r.response.lifetime == 0);
  CHECK(r.response.epoch == 42);
  CHECK(f.dp.calls() == 0);
  // R-OPT-7 (local decision): THIRD_PARTY in ANNOUNCE is MALFORMED_OPTION.
  auto tp = announce_req(ip("192.0.2.10"));
  tp.options.third_party = ip("192.0.2.12");
  CHECK(f.send(tp).response.result == ResultCode::MalformedOption);
}

TEST_CASE("R-ANN-2 ANNOUNCE is checked for ADDRESS_MISMATCH too") {
  Fixture f;
  auto r = f.server->handle(announce_req(ip("192.0.2.10")), ctx(ip("192.0.2.11")));
  CHECK(r.response.result == ResultCode::AddressMismatch);
}

TEST_CASE("R-OPT-2 R-TP-5 the decoder's option error is answered after ADDRESS_MISMATCH") {
  Fixture f;
  auto req = map_req({});
  req.option_error = ResultCode::UnsuppOption;  // e.g. THIRD_PARTY_ID (R-TP-5), unknown mandatory
  auto r = f.send(req);
  CHECK(r.response.result == ResultCode::UnsuppOption);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("R-TP-3 THIRD_PARTY disabled, or enabled but the client not allowed, is UNSUPP_OPTION (C1)") {
  Fixture off;
  auto req = map_req({});
  req.options.third_party = ip("192.0.2.50");
  CHECK(off.send(req).response.result == ResultCode::UnsuppOption);
  Fixture on(third_party_policy());
  auto outsider = map_req({.client = ip("192.0.2.100")});
  outsider.options.third_party = ip("192.0.2.50");
  CHECK(on.send(outsider).response.result == ResultCode::UnsuppOption);
  CHECK(on.server->mapping_count() == 0);
}

TEST_CASE("R-TP-2 THIRD_PARTY equal to the source is MALFORMED_REQUEST") {
  Fixture f(third_party_policy());
  auto req = map_req({});
  req.options.third_party = ip("192.0.2.10");
  CHECK(f.send(req).response.result == ResultCode::MalformedRequest);
}

TEST_CASE("R-TP-1 R-TP-4 THIRD_PARTY: mapping for the option's address, echoed, client = source") {
  Fixture f(third_party_policy());
  auto req = map_req({});
  req.options.third_party = ip("192.0.2.50");
  auto r = f.send(req);
  REQUIRE(r.kind == Reply::Kind::Success);
  REQUIRE(r.response.options.third_party.has_value());
  CHECK(*r.response.options.third_party == ip("192.0.2.50"));
  const Mapping m = f.server->mappings().front();
  CHECK(m.internal_addr == ip("192.0.2.50"));
  CHECK(m.client_addr == ip("192.0.2.10"));
  CHECK(m.third_party);
  // Not echoed when not requested.
  auto plain = f.map({.internal_port = 9999});
  CHECK_FALSE(plain.response.options.third_party.has_value());
  // ADDRESS_MISMATCH still compares the header with the source (R-TP-4).
  auto mism = map_req({.client = ip("192.0.2.50")});
  mism.options.third_party = ip("192.0.2.50");
  CHECK(f.server->handle(mism, ctx(ip("192.0.2.10"))).response.result == ResultCode::AddressMismatch);
  // THIRD_PARTY works for PEER as well.
  auto peer = peer_req({});
  peer.options.third_party = ip("192.0.2.51");
  CHECK(f.send(peer).kind == Reply::Kind::Success);
}

TEST_CASE("R-TP-6 THIRD_PARTY all-zeros delete removes what this client may delete") {
  Fixture f(third_party_policy());
  for (const char* host : {"192.0.2.50", "192.0.2.51"}) {
    auto req = map_req({});
    req.options.third_party = ip(host);
    REQUIRE(f.send(req).kind == Reply::Kind::Success);
  }
  REQUIRE(f.map({.client = ip("192.0.2.11")}).kind == Reply::Kind::Success);  // someone else's
  auto del = map_req({.protocol = 0, .internal_port = 0, .lifetime = 0});
  del.options.third_party = IpAddr::v4_any();
  auto r = f.send(del);
  CHECK(r.kind == Reply::Kind::Success);
  CHECK(f.server->mapping_count() == 1);
  // The all-zeros address in anything else is MALFORMED_OPTION.
  auto bad = map_req({});
  bad.options.third_party = IpAddr::v4_any();
  CHECK(f.send(bad).response.result == ResultCode::MalformedOption);
}

TEST_CASE("R-EPOCH-1 R-EPOCH-2 every response carries the epoch, advancing one per second") {
  Fixture f;
  f.clock.advance_s(5);
  CHECK(f.map({}).response.epoch == 5);
  f.clock.advance(Millis(1500));
  CHECK(f.map({.nonce = nonce(77)}).response.epoch == 6);  // error response too
  CHECK(f.server->epoch() == 6);
}

TEST_CASE("R-EPOCH-3 R-EPOCH-4 reset_epoch restarts (at 1), set_epoch_origin keeps it continuous") {
  Fixture f;
  f.clock.advance_s(1000);
  CHECK(f.server->epoch() == 1000);
  const Millis origin = f.server->epoch_origin();
  f.server->reset_epoch();
  CHECK(f.server->epoch() == 1);
  f.clock.advance_s(3);
  CHECK(f.server->epoch() == 3);
  // A restarted server that recovered every mapping takes the old origin back.
  Fixture g;
  g.clock.set(f.clock.now());
  g.server->set_epoch_origin(origin);
  CHECK(g.server->epoch() == 1003);
}

TEST_CASE("R-RC-2 error lifetimes: 30 s for short-lifetime codes, 1800 s for long ones") {
  auto p = default_policy();
  p.max_mappings_per_client = 0;
  Fixture f(p);
  auto q = f.map({});
  CHECK(q.response.result == ResultCode::UserExQuota);
  CHECK(q.response.lifetime == 30);
  auto u = f.map({.protocol = 99});
  CHECK(u.response.lifetime == 1800);
}

TEST_CASE("R-RC-3 without PREFER_FAILURE a taken suggestion never yields CANNOT_PROVIDE_EXTERNAL") {
  Fixture f;
  REQUIRE(f.map({.suggested_port = 46000}).kind == Reply::Kind::Success);
  CHECK(f.map({.client = ip("192.0.2.11"), .suggested_port = 46000}).kind == Reply::Kind::Success);
}

TEST_CASE("R-RC-4 error responses copy the opcode fields of the request") {
  Fixture f;
  auto r = f.map({.protocol = 99, .internal_port = 1234, .nonce = nonce(4), .suggested_port = 4321,
                  .suggested_addr = ip("203.0.113.9")});
  REQUIRE(r.kind == Reply::Kind::Error);
  CHECK(r.parsed);
  CHECK(map_body(r).nonce == nonce(4));
  CHECK(map_body(r).internal_port == 1234);
  CHECK(map_body(r).external_port == 4321);
  CHECK(map_body(r).external_addr == ip("203.0.113.9"));
}

TEST_CASE("R-QUOTA-1 R-RC-5 per-client quota is USER_EX_QUOTA") {
  auto p = default_policy();
  p.max_mappings_per_client = 2;
  Fixture f(p);
  CHECK(f.map({.internal_port = 1}).kind == Reply::Kind::Success);
  CHECK(f.peer({.internal_port = 2}).kind == Reply::Kind::Success);
  CHECK(f.map({.internal_port = 3}).response.result == ResultCode::UserExQuota);
  CHECK(f.map({.client = ip("192.0.2.11"), .internal_port = 3}).kind == Reply::Kind::Success);
  // A refresh is not a new mapping: still allowed at the quota.
  CHECK(f.map({.internal_port = 1}).kind == Reply::Kind::Success);
}

TEST_CASE("R-QUOTA-2 R-RC-5 system-wide exhaustion is NO_RESOURCES") {
  auto p = default_policy();
  p.max_mappings = 1;
  Fixture f(p);
  CHECK(f.map({}).kind == Reply::Kind::Success);
  auto r = f.map({.client = ip("192.0.2.11")});
  CHECK(r.response.result == ResultCode::NoResources);
  CHECK(r.response.lifetime == 30);
}

TEST_CASE("R-HDR-10 a failing apply on create changes nothing and answers NO_RESOURCES") {
  Fixture f;
  f.dp.fail_nth(1);
  auto r = f.map({});
  CHECK(r.response.result == ResultCode::NoResources);
  CHECK(r.response.lifetime == 30);
  CHECK(f.server->mapping_count() == 0);
  CHECK(f.server->stats().datapath_errors == 1);
  // The port was not consumed: the next create may take the same suggestion.
  auto ok = f.map({.suggested_port = 8080});
  CHECK(ok.kind == Reply::Kind::Success);
}

TEST_CASE("R-HDR-10 a failing apply on refresh keeps the old mapping as it was") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 600}).kind == Reply::Kind::Success);
  const Mapping before = f.server->mappings().front();
  f.dp.fail_nth(1);
  auto filtered = map_req({.lifetime = 3000});
  filtered.options.filters[0] = {.prefix_length = 120, .remote_port = 0, .remote_addr = ip("198.51.100.0")};
  filtered.options.filter_count = 1;
  auto r = f.send(filtered);
  CHECK(r.response.result == ResultCode::NoResources);
  const Mapping after = f.server->mappings().front();
  CHECK(after.expires == before.expires);
  CHECK(after.filters.empty());
  CHECK(f.dp.last().changes.front().op == Change::Op::Replace);
}

TEST_CASE("R-HDR-10 a failing apply on delete keeps the mapping") {
  Fixture f;
  REQUIRE(f.map({.internal_port = 1}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.internal_port = 2}).kind == Reply::Kind::Success);
  f.dp.fail_nth(1);
  CHECK(f.map({.internal_port = 1, .lifetime = 0}).response.result == ResultCode::NoResources);
  CHECK(f.server->mapping_count() == 2);
  f.dp.fail_nth(1);
  CHECK(f.map({.protocol = 0, .internal_port = 0, .lifetime = 0}).response.result ==
        ResultCode::NoResources);
  CHECK(f.server->mapping_count() == 2);
  CHECK(f.server->stats().datapath_errors == 2);
}

TEST_CASE("expiry whose apply fails keeps the mappings and retries a second later") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 120}).kind == Reply::Kind::Success);
  f.clock.advance_s(120);
  f.dp.fail_nth(1);
  CHECK(f.server->expire() == 0);
  CHECK(f.server->mapping_count() == 1);
  CHECK(f.server->next_expiry() == f.clock.now() + Millis(1000));
  f.clock.advance_s(1);
  CHECK(f.server->expire() == 1);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("an expired mapping is removed before a request sees it") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 120, .nonce = nonce(1)}).kind == Reply::Kind::Success);
  f.clock.advance_s(121);
  // Another nonce on the same key: the old mapping is gone, so this is a new create.
  auto r = f.map({.lifetime = 120, .nonce = nonce(2)});
  CHECK(r.kind == Reply::Kind::Success);
  CHECK(f.server->stats().expired == 1);
}

TEST_CASE("restore takes mappings without applying, skips conflicts, leaves expired ones to expiry") {
  Fixture f;
  REQUIRE(f.map({.internal_port = 1}).kind == Reply::Kind::Success);
  REQUIRE(f.peer({.internal_port = 2}).kind == Reply::Kind::Success);
  auto saved = f.server->mappings();
  Mapping dup = saved.front();  // same key again
  Mapping clash = saved.front();
  clash.internal_addr = ip("192.0.2.77");  // another host on the same external endpoint
  Mapping old = saved.front();
  old.internal_port = 3;
  old.external_port = 3;
  old.expires = Millis(0);
  saved.push_back(dup);
  saved.push_back(clash);
  saved.push_back(old);
  Fixture g;
  g.clock.set(f.clock.now());
  CHECK(g.server->restore(saved) == 2);
  CHECK(g.server->stats().restored == 2);
  CHECK(g.server->stats().restore_conflicts == 2);
  CHECK(g.dp.calls() == 0);
  // R-LIFE-7: the expired one is not served, but its elements (kernel timeout = lifetime + grace)
  // are removed by the next expiry run, as any expiry.
  CHECK(g.server->mapping_count() == 3);
  CHECK(g.server->expire() == 1);
  REQUIRE(g.dp.calls() == 1);
  REQUIRE(g.dp.last().changes.size() == 1);
  CHECK(g.dp.last().changes[0].op == Change::Op::Remove);
  CHECK(g.dp.last().changes[0].mapping.internal_port == 3);
  CHECK(g.server->mapping_count() == 2);
  // The restored external ports are taken: a suggestion for one goes elsewhere.
  const auto taken = f.server->mappings().front().external_port;
  auto r = g.map({.client = ip("192.0.2.99"), .internal_port = 7777, .suggested_port = taken});
  CHECK(map_body(r).external_port != taken);
}

TEST_CASE("set_policy applies to the next request, existing mappings stay") {
  Fixture f;
  REQUIRE(f.map({.lifetime = 3600}).kind == Reply::Kind::Success);
  auto p = default_policy();
  p.max_lifetime = 600;
  f.server->set_policy(p);
  CHECK(f.server->policy().max_lifetime == 600);
  CHECK(f.server->mapping_count() == 1);
  CHECK(f.map({.lifetime = 3600}).response.lifetime == 600);
}

TEST_CASE("stats count requests by opcode and responses by result code") {
  Fixture f;
  (void)f.map({});
  (void)f.map({.nonce = nonce(50)});
  (void)f.peer({});
  (void)f.send(announce_req(ip("192.0.2.10")));
  const auto& s = f.server->stats();
  CHECK(s.requests_by_opcode[0] == 1);
  CHECK(s.requests_by_opcode[1] == 2);
  CHECK(s.requests_by_opcode[2] == 1);
  CHECK(s.responses_by_result[0] == 3);
  CHECK(s.responses_by_result[static_cast<std::size_t>(ResultCode::NotAuthorized)] == 1);
  CHECK(s.created == 2);
  CHECK(s.refreshed == 0);
}

TEST_CASE("R-RC-1 the most specific code: per-client quota before system-wide exhaustion") {
  auto p = default_policy();
  p.max_mappings = 1;
  p.max_mappings_per_client = 1;
  Fixture f(p);
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  CHECK(f.map({.internal_port = 2}).response.result == ResultCode::UserExQuota);
  CHECK(f.map({.client = ip("192.0.2.11")}).response.result == ResultCode::NoResources);
}

TEST_CASE("R-MAP-5 a full port range is NO_RESOURCES, a freed port is handed out again") {
  auto p = default_policy();
  p.port_min = 30000;
  p.port_max = 30003;
  Fixture f(p);
  std::set<std::uint16_t> ports;
  for (std::uint16_t i = 0; i < 4; ++i) {
    auto r = f.map({.internal_port = static_cast<std::uint16_t>(100 + i)});
    REQUIRE(r.kind == Reply::Kind::Success);
    ports.insert(map_body(r).external_port);
  }
  CHECK(ports.size() == 4);
  CHECK(f.map({.internal_port = 200}).response.result == ResultCode::NoResources);
  // UDP has its own pool.
  CHECK(f.map({.protocol = kUdp, .internal_port = 200}).kind == Reply::Kind::Success);
  const std::uint16_t freed = map_body(f.map({.internal_port = 101})).external_port;
  REQUIRE(f.map({.internal_port = 101, .lifetime = 0}).kind == Reply::Kind::Success);
  auto again = f.map({.internal_port = 200});
  REQUIRE(again.kind == Reply::Kind::Success);
  CHECK(map_body(again).external_port == freed);
}

TEST_CASE("R-MAP-5 several external addresses: the next address is used when one is full") {
  auto p = default_policy();
  p.external_v4 = {ip("203.0.113.1"), ip("203.0.113.2")};
  p.port_min = 30000;
  p.port_max = 30000;
  Fixture f(p);
  auto a = f.map({.internal_port = 1});
  auto b = f.map({.client = ip("192.0.2.11"), .internal_port = 1});
  REQUIRE(a.kind == Reply::Kind::Success);
  REQUIRE(b.kind == Reply::Kind::Success);
  CHECK(map_body(a).external_addr != map_body(b).external_addr);
  // A free suggested address of ours is honoured.
  Fixture g(p);
  auto s = g.map({.suggested_port = 30000, .suggested_addr = ip("203.0.113.2")});
  CHECK(map_body(s).external_addr == ip("203.0.113.2"));
}

TEST_CASE("R-MAP-5 a pool of 5 addresses with one port each: every address once, a suggested one first") {
  auto p = default_policy();
  p.external_v4 = {ip("203.0.113.1"), ip("203.0.113.2"), ip("203.0.113.3"), ip("203.0.113.4"), ip("203.0.113.5")};
  p.port_min = 30000;
  p.port_max = 30000;
  // Without a suggestion, and with one of ours (203.0.113.4, taken after the first mapping):
  // the suggested address, then the rest of the pool in turn, none twice, then NO_RESOURCES.
  for (bool suggest : {false, true}) {
    CAPTURE(suggest);
    Fixture f(p);
    std::vector<IpAddr> got;
    for (std::uint16_t port = 1; port <= 5; ++port) {
      auto r = f.map({.internal_port = port, .suggested_addr = suggest ? ip("203.0.113.4") : IpAddr{}});
      REQUIRE(r.kind == Reply::Kind::Success);
      got.push_back(map_body(r).external_addr);
    }
    if (suggest) CHECK(got.front() == ip("203.0.113.4"));
    std::vector<IpAddr> sorted = got;
    std::sort(sorted.begin(), sorted.end(), [](const IpAddr& a, const IpAddr& b) { return a.to_string() < b.to_string(); });
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // 5 different addresses
    auto full = f.map({.internal_port = 6, .suggested_addr = suggest ? ip("203.0.113.4") : IpAddr{}});
    CHECK(full.response.result == ResultCode::NoResources);
  }
}

TEST_CASE("mapping_counts: MAP and PEER by address family, without copying the table (metrics)") {
  Fixture f;
  REQUIRE(f.map({.internal_port = 8080}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.internal_port = 8081}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.client = ip("2001:db8::10"), .internal_port = 22}).kind == Reply::Kind::Success);
  REQUIRE(f.peer({.internal_port = 5000}).kind == Reply::Kind::Success);
  const auto c = f.server->mapping_counts();
  CHECK(c.map4 == 2);
  CHECK(c.map6 == 1);
  CHECK(c.peer4 == 1);
  CHECK(c.peer6 == 0);
  CHECK(c.map4 + c.map6 + c.peer4 + c.peer6 == f.server->mapping_count());
}

TEST_CASE("Mapping::same_but_expiry: every field but expires counts (a plain refresh's elements are built once)") {
  pcpd::core::Mapping m;
  m.kind = pcpd::core::MappingKind::Map;
  m.protocol = 6;
  m.internal_addr = *pcpd::wire::IpAddr::parse("192.0.2.10");
  m.internal_port = 80;
  m.external_addr = *pcpd::wire::IpAddr::parse("203.0.113.1");
  m.external_port = 8080;
  m.client_addr = m.internal_addr;
  m.lifetime = 3600;
  m.expires = pcpd::core::Millis{1000};
  auto later = m;
  later.expires = pcpd::core::Millis{999'000};
  CHECK(later.same_but_expiry(m));
  const std::vector<std::pair<const char*, void (*)(pcpd::core::Mapping&)>> changes = {
      {"kind", [](pcpd::core::Mapping& x) { x.kind = pcpd::core::MappingKind::Peer; }},
      {"origin", [](pcpd::core::Mapping& x) { x.origin = pcpd::core::Origin::NatPmp; }},
      {"protocol", [](pcpd::core::Mapping& x) { x.protocol = 17; }},
      {"internal_addr", [](pcpd::core::Mapping& x) { x.internal_addr = *pcpd::wire::IpAddr::parse("192.0.2.11"); }},
      {"internal_port", [](pcpd::core::Mapping& x) { x.internal_port = 81; }},
      {"external_addr", [](pcpd::core::Mapping& x) { x.external_addr = *pcpd::wire::IpAddr::parse("203.0.113.2"); }},
      {"external_port", [](pcpd::core::Mapping& x) { x.external_port = 8081; }},
      {"remote_addr", [](pcpd::core::Mapping& x) { x.remote_addr = *pcpd::wire::IpAddr::parse("198.51.100.1"); }},
      {"remote_port", [](pcpd::core::Mapping& x) { x.remote_port = 1; }},
      {"client_addr", [](pcpd::core::Mapping& x) { x.client_addr = *pcpd::wire::IpAddr::parse("192.0.2.99"); }},
      {"nonce", [](pcpd::core::Mapping& x) { x.nonce[11] = 1; }},
      {"lifetime", [](pcpd::core::Mapping& x) { x.lifetime = 7200; }},
      {"third_party", [](pcpd::core::Mapping& x) { x.third_party = true; }},
      {"checkpoint", [](pcpd::core::Mapping& x) { x.checkpoint = true; }},
      {"filters", [](pcpd::core::Mapping& x) { x.filters.push_back(pcpd::wire::Filter{120, 0, *pcpd::wire::IpAddr::parse("198.51.100.0")}); }},
      {"description", [](pcpd::core::Mapping& x) { x.description = "web"; }},
  };
  // Not a structured binding: clang before 16 cannot capture one, and INFO captures.
  for (const auto& entry : changes) {
    const auto& name = entry.first;
    auto x = m;
    entry.second(x);
    INFO(name);
    CHECK_FALSE(x.same_but_expiry(m));
    CHECK_FALSE(m.same_but_expiry(x));
  }
}

TEST_CASE("for_each_mapping_from: a walk in pieces visits every mapping once, also while the table changes") {
  // pcpctl list walks the table 256 places a piece between requests: a mapping present
  // from the walk's start to its end is listed exactly once; one removed before the cursor
  // reached it is not, one created meanwhile may be.
  pcpd::core::Policy p = default_policy();
  p.max_mappings_per_client = 5000;
  Fixture f(p);
  for (std::uint16_t port = 1000; port < 3000; ++port) {
    MapArgs a;
    a.internal_port = port;
    REQUIRE(f.map(a).response.result == ResultCode::Success);
  }
  auto walk = [&](std::size_t piece, const std::function<void(int)>& between) {
    std::map<std::uint16_t, int> seen;
    std::uint32_t cursor = 0;
    int pieces = 0;
    while (f.server->for_each_mapping_from(cursor, piece, [&](const Mapping& m) { ++seen[m.internal_port]; }))
      between(pieces++);
    return seen;
  };
  for (std::size_t piece : {1u, 7u, 256u, 100'000u}) {
    auto seen = walk(piece, [](int) {});
    CHECK(seen.size() == 2000);
    CHECK(std::all_of(seen.begin(), seen.end(), [](const auto& kv) { return kv.second == 1; }));
  }
  // Between pieces: delete 1000-1099 (its slots come free), create 5000-5099 (in those slots).
  auto seen = walk(50, [&](int piece) {
    if (piece != 3) return;
    for (std::uint16_t port = 1000; port < 1100; ++port) {
      MapArgs del;
      del.internal_port = port;
      del.lifetime = 0;
      REQUIRE(f.map(del).response.result == ResultCode::Success);
    }
    for (std::uint16_t port = 5000; port < 5100; ++port) {
      MapArgs a;
      a.internal_port = port;
      REQUIRE(f.map(a).response.result == ResultCode::Success);
    }
  });
  std::size_t kept_once = 0;
  for (std::uint16_t port = 1100; port < 3000; ++port) kept_once += seen.count(port) == 1 && seen[port] == 1 ? 1 : 0;
  CHECK(kept_once == 1900);  // every mapping present throughout: once
  CHECK(std::all_of(seen.begin(), seen.end(), [](const auto& kv) { return kv.second == 1; }));
  MESSAGE("walk across changes: " << seen.size() << " listed, " << kept_once << " of the kept 1,900");
}

TEST_CASE("R-EPOCH-2 the epoch is never 0 on the wire: its first second reads 1 (Apple's client keeps 0 as 1)") {
  Fixture f;
  f.server->reset_epoch();
  CHECK(f.server->epoch() == 1);
  CHECK(f.map({.nonce = nonce(41)}).response.epoch == 1);
  f.clock.advance(Millis(999));
  CHECK(f.server->epoch() == 1);
  f.clock.advance(Millis(1));
  CHECK(f.server->epoch() == 1);
  f.clock.advance_s(1);
  CHECK(f.server->epoch() == 2);
  // An origin in the future (a clock read before it was set) is not 0 either.
  f.server->set_epoch_origin(f.clock.now() + Millis(5000));
  CHECK(f.server->epoch() == 1);
}
