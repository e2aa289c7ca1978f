// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core: Server::handle_burst, the requests of one receive batch in one datapath transaction
//, each still all or nothing (RFC 6887 §7.3, R-HDR-10).
#include <array>
#include <vector>

#include "unit/core_fixture.hpp"
#include "wire/codec.hpp"

using namespace pcpd::test;
namespace core = pcpd::core;

namespace {

struct Datagram {
  std::vector<std::uint8_t> bytes;
  IpAddr source;
  bool natpmp = false;
};

Datagram pcp(const Request& r) {
  std::array<std::uint8_t, 1100> b{};
  const std::size_t n = wire::encode_request(r, b);
  REQUIRE(n > 0);
  return Datagram{std::vector<std::uint8_t>(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)),
                  r.client_addr, false};
}

// RFC 6886 §3.3: version 0, opcode 2 (TCP), reserved, internal, suggested, lifetime.
Datagram natpmp_tcp(const IpAddr& source, std::uint16_t internal, std::uint32_t lifetime) {
  return Datagram{{0, 2, 0, 0, static_cast<std::uint8_t>(internal >> 8), static_cast<std::uint8_t>(internal), 0,
                   0, static_cast<std::uint8_t>(lifetime >> 24), static_cast<std::uint8_t>(lifetime >> 16),
                   static_cast<std::uint8_t>(lifetime >> 8), static_cast<std::uint8_t>(lifetime)},
                  source, true};
}

MapArgs mapping(const char* client, std::uint16_t port, std::uint8_t seed) {
  return MapArgs{.client = ip(client), .internal_port = port, .nonce = nonce(seed)};
}

struct BurstFixture : Fixture {
  using Fixture::Fixture;
  std::vector<Datagram> sent;
  std::vector<std::array<std::uint8_t, 1100>> out;
  std::vector<core::BurstItem> items;

  void burst(std::vector<Datagram> datagrams) {
    sent = std::move(datagrams);
    out.assign(sent.size(), {});
    items.assign(sent.size(), {});
    for (std::size_t i = 0; i < sent.size(); ++i) {
      items[i].datagram = sent[i].bytes;
      items[i].ctx = ctx(sent[i].source);
      items[i].natpmp = sent[i].natpmp;
      items[i].out = out[i];
    }
    server->handle_burst(items);
  }
  wire::Response response(std::size_t i) {
    REQUIRE(items[i].reply > 0);
    auto d = wire::decode_response(std::span<const std::uint8_t>(out[i].data(), items[i].reply));
    REQUIRE(std::holds_alternative<wire::Response>(d));
    return std::get<wire::Response>(d);
  }
  ResultCode result(std::size_t i) { return response(i).result; }
  std::uint16_t external_port(std::size_t i) { return std::get<wire::MapBody>(response(i).body).external_port; }
  bool holds(std::uint16_t internal_port) {
    for (const Mapping& m : server->mappings())
      if (m.internal_port == internal_port) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("burst: the changes of every request go to the datapath in one transaction") {
  BurstFixture f;
  std::vector<Datagram> d;
  for (std::uint8_t i = 0; i < 8; ++i)
    d.push_back(pcp(map_req(mapping("192.0.2.10", static_cast<std::uint16_t>(9000 + i), i))));
  d.push_back(pcp(announce_req(ip("192.0.2.10"))));                 // R-ANN-1: no change
  Request mismatch = map_req(mapping("192.0.2.10", 9100, 50));
  mismatch.client_addr = ip("192.0.2.99");
  d.push_back(pcp(mismatch));
  d.back().source = ip("192.0.2.10");                               // R-ADDR-1
  d.push_back(natpmp_tcp(ip("192.0.2.20"), 7000, 3600));           // RFC 6886 in the same burst
  f.burst(std::move(d));

  CHECK(f.dp.calls() == 1);
  REQUIRE(f.dp.accepted().size() == 1);
  CHECK(f.dp.accepted()[0].changes.size() == 9);
  for (std::size_t i = 0; i < 9; ++i) CHECK(f.result(i) == ResultCode::Success);
  CHECK(f.result(9) == ResultCode::AddressMismatch);
  CHECK(f.items[10].reply == 16);  // NAT-PMP mapping response
  CHECK(f.out[10][3] == 0);        // result SUCCESS
  CHECK(f.server->mapping_count() == 9);
  CHECK(f.server->stats().bursts == 1);
  CHECK(f.server->stats().burst_retries == 0);
  CHECK(f.server->stats().created == 9);
}

// A request that would read what the open transaction changes (here: a port its delete frees,
// then the endpoint its create takes) is decided in the next transaction, once the table holds
// it: the answers are those of one request after the other.
TEST_CASE("burst: a request on what the transaction changes waits for the next transaction") {
  BurstFixture f;
  REQUIRE(f.map({.client = ip("192.0.2.11"), .internal_port = 2000, .nonce = nonce(11),
                 .suggested_port = 2000}).response.result == ResultCode::Success);
  const std::size_t before = f.dp.calls();
  MapArgs del{.client = ip("192.0.2.11"), .internal_port = 2000, .lifetime = 0, .nonce = nonce(11)};
  MapArgs take{.client = ip("192.0.2.12"), .internal_port = 2000, .nonce = nonce(12), .suggested_port = 2000};
  MapArgs again{.client = ip("192.0.2.12"), .internal_port = 2000, .nonce = nonce(99)};
  f.burst({pcp(map_req(del)), pcp(map_req(take)), pcp(map_req(again))});
  CHECK(f.dp.calls() == before + 2);  // the third changes nothing: no transaction
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.external_port(1) == 2000);  // freed by the delete just before (R-MAP-7 suggestion)
  CHECK(f.result(2) == ResultCode::NotAuthorized);  // R-OWN-2: the mapping of a moment ago
  const auto& accepted = f.dp.accepted();
  REQUIRE(accepted.size() >= 2);
  const auto& first = accepted[accepted.size() - 2].changes;
  const auto& second = accepted.back().changes;
  REQUIRE(first.size() == 1);
  CHECK(first[0].op == core::Change::Op::Remove);
  REQUIRE(second.size() == 1);
  CHECK(second[0].op == core::Change::Op::Add);
}

TEST_CASE("burst: requests on other endpoints share the transaction, and never the same external port") {
  BurstFixture f;
  const std::size_t before = f.dp.calls();
  // Three hosts asking for the same external port: one transaction, three different ports.
  f.burst({pcp(map_req(mapping("192.0.2.10", 4000, 1))), pcp(map_req(mapping("192.0.2.11", 4000, 2))),
           pcp(map_req(mapping("192.0.2.12", 4000, 3)))});
  CHECK(f.dp.calls() == before + 1);
  REQUIRE(f.result(0) == ResultCode::Success);
  REQUIRE(f.result(1) == ResultCode::Success);
  REQUIRE(f.result(2) == ResultCode::Success);
  CHECK(f.external_port(0) == 4000);
  CHECK(f.external_port(1) != 4000);
  CHECK(f.external_port(2) != 4000);
  CHECK(f.external_port(1) != f.external_port(2));
  CHECK(f.server->mapping_count() == 3);
}

TEST_CASE("burst R-HDR-10: a refused transaction is dropped and each request decided again alone") {
  Policy p = default_policy();
  p.checkpoint.burst_per_client = 1;  // one election token: a retry must find it unspent
  p.checkpoint.rate_per_client = 0.001;
  BurstFixture f(p);
  REQUIRE(f.map(mapping("192.0.2.11", 2000, 11)).response.result == ResultCode::Success);
  REQUIRE(f.map(mapping("192.0.2.13", 2001, 13)).response.result == ResultCode::Success);
  const core::Stats s0 = f.server->stats();

  MapArgs del = mapping("192.0.2.11", 2000, 11);
  del.lifetime = 0;
  f.dp.fail_calls({1, 4});  // the burst's transaction, then the retry of the third request
  f.burst({pcp(with_ckpt(map_req(mapping("192.0.2.10", 1001, 10)))),  // retry: call 2
           pcp(map_req(del)),                                            // call 3
           pcp(map_req(mapping("192.0.2.12", 1002, 12))),                // call 4: refused
           pcp(map_req(mapping("192.0.2.13", 2001, 13)))});              // call 5: refresh
  CHECK(f.dp.failures() == 2);
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.response(0).options.checkpoint_required);  // RFC 7767: the token was given back
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.result(2) == ResultCode::NoResources);  // only the request the kernel refused
  CHECK(f.result(3) == ResultCode::Success);
  CHECK(f.holds(1001));
  CHECK_FALSE(f.holds(2000));
  CHECK_FALSE(f.holds(1002));
  CHECK(f.holds(2001));
  CHECK(f.server->mapping_count() == 2);
  // Counted once, by the retries: no request counted twice.
  const core::Stats& s = f.server->stats();
  CHECK(s.created == s0.created + 1);
  CHECK(s.deleted == s0.deleted + 1);
  CHECK(s.refreshed == s0.refreshed + 1);
  CHECK(s.checkpoint_honoured == s0.checkpoint_honoured + 1);
  CHECK(s.requests_by_opcode[1] == s0.requests_by_opcode[1] + 4);
  CHECK(s.datapath_errors == s0.datapath_errors + 1);
  CHECK(s.burst_retries == 1);
  CHECK(s.bursts == 0);
  CHECK(s.elected == 1);
}

TEST_CASE("burst R-HDR-10: dropped, the table is exactly as before the burst") {
  BurstFixture f;
  REQUIRE(f.map({.client = ip("192.0.2.11"), .internal_port = 2000, .nonce = nonce(11),
                 .suggested_port = 2000}).response.result == ResultCode::Success);
  REQUIRE(f.map(mapping("192.0.2.13", 2001, 13)).response.result == ResultCode::Success);
  const std::vector<Mapping> before = f.server->mappings();
  MapArgs del{.client = ip("192.0.2.11"), .internal_port = 2000, .lifetime = 0, .nonce = nonce(11)};
  MapArgs take{.client = ip("192.0.2.12"), .internal_port = 2000, .nonce = nonce(12), .suggested_port = 2000};
  MapArgs refresh = mapping("192.0.2.13", 2001, 13);
  refresh.lifetime = 120;
  f.dp.fail_all(true);  // the table is gone: everything refused
  f.burst({pcp(map_req(del)), pcp(map_req(take)), pcp(with_ckpt(map_req(refresh)))});
  for (std::size_t i = 0; i < 3; ++i) CHECK(f.result(i) == ResultCode::NoResources);
  const std::vector<Mapping> after = f.server->mappings();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    CHECK(after[i].internal_port == before[i].internal_port);
    CHECK(after[i].external_port == before[i].external_port);
    CHECK(after[i].nonce == before[i].nonce);
    CHECK(after[i].lifetime == before[i].lifetime);
    CHECK(after[i].checkpoint == before[i].checkpoint);
  }
  CHECK(f.server->stats().datapath_errors == 3);
  CHECK(f.server->stats().elected == 0);
  // And it works again once the datapath does: the freed port is taken in one transaction.
  f.dp.fail_all(false);
  f.burst({pcp(map_req(del)), pcp(map_req(take))});
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.external_port(1) == 2000);
}

TEST_CASE("burst R-QUOTA-5: the rate limits are charged once, also when the burst is retried") {
  Policy p = default_policy();
  p.rate_limit.client_rate = 0.001;
  p.rate_limit.client_burst = 2;
  BurstFixture f(p);
  f.dp.fail_calls({1});
  f.burst({pcp(map_req(mapping("192.0.2.10", 3001, 1))), pcp(map_req(mapping("192.0.2.10", 3002, 2))),
           pcp(map_req(mapping("192.0.2.10", 3003, 3)))});
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.items[2].reply == 0);  // over the client's bucket: dropped silently, not answered
  CHECK(f.server->stats().rate_limited_client == 1);
  CHECK(f.server->stats().burst_retries == 1);
  CHECK(f.server->mapping_count() == 2);
}

// Expiry is decided outside the requests: a transaction of its own before the burst's, so a
// refused expiry never costs a request its answer, and no request sees an expired mapping.
TEST_CASE("burst: expiry due at the burst is its own transaction, before the requests'") {
  BurstFixture f;
  const Reply first = f.map({.client = ip("192.0.2.11"), .internal_port = 2000, .lifetime = 120, .nonce = nonce(11)});
  REQUIRE(first.response.result == ResultCode::Success);
  f.clock.advance_s(first.response.lifetime + 1);
  f.dp.fail_calls({1});  // the next transaction: the expiry's
  f.burst({pcp(map_req(mapping("192.0.2.10", 3001, 1))), pcp(map_req(mapping("192.0.2.10", 3002, 2)))});
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.holds(2000));  // R-LIFE-7: retried a second later
  CHECK(f.server->stats().expired == 0);
  f.clock.advance_s(1);
  f.burst({pcp(map_req(mapping("192.0.2.10", 3003, 3)))});
  CHECK_FALSE(f.holds(2000));
  CHECK(f.server->stats().expired == 1);
  CHECK(f.server->mapping_count() == 3);
  const auto& accepted = f.dp.accepted();
  REQUIRE(accepted.size() >= 2);
  const auto& expiry = accepted[accepted.size() - 2].changes;
  REQUIRE(expiry.size() == 1);
  CHECK(expiry[0].op == core::Change::Op::Remove);
  CHECK(expiry[0].mapping.internal_port == 2000);
}

TEST_CASE("burst: a refused burst is handled again without charging PREFER_FAILURE twice or reporting a conflict twice") {
  Policy p = default_policy();
  p.rate_limit.prefer_failure_rate = 0.001;  // no refill during the test
  p.rate_limit.prefer_failure_burst = 2;     // two PREFER_FAILURE creates, then limited
  p.nonce_change = Policy::NonceChange::SameHost;
  BurstFixture f(p);
  REQUIRE(f.map(mapping("192.0.2.10", 7000, 1)).kind == Reply::Kind::Success);
  std::vector<core::NonceConflict> reported;
  f.server->set_nonce_conflict_sink([&](const core::NonceConflict& c) { reported.push_back(c); });
  auto pf = [](std::uint16_t port) {
    Request r = map_req({.client = ip("192.0.2.11"), .internal_port = port, .suggested_port = port,
                         .suggested_addr = ip("203.0.113.1")});
    r.options.prefer_failure = true;
    return pcp(r);
  };
  // The first try of the burst is refused by the kernel; the retries go through.
  f.dp.fail_nth(1);
  f.burst({pf(6001), pcp(map_req(mapping("192.0.2.10", 7000, 2)))});
  CHECK(f.server->stats().burst_retries == 1);
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(reported.size() == 1);  // the owner's new nonce, once
  // One token spent, one left: a second PREFER_FAILURE create still succeeds, a third is limited.
  f.burst({pf(6002)});
  CHECK(f.result(0) == ResultCode::Success);
  f.burst({pf(6003)});
  CHECK(f.result(0) == ResultCode::CannotProvideExternal);
  CHECK(f.server->stats().prefer_failure_limited == 1);
}

// What the open transaction adds counts for the next request of the burst, although the table
// does not hold it yet: the quota (R-QUOTA-1), the checkpoint caps and rate (R-CKPT-4, R-CKPT-7).
TEST_CASE("burst R-QUOTA-1: the quota counts the creates of the same transaction") {
  Policy p = default_policy();
  p.max_mappings_per_client = 2;
  BurstFixture f(p);
  const std::size_t before = f.dp.calls();
  f.burst({pcp(map_req(mapping("192.0.2.10", 5001, 1))), pcp(map_req(mapping("192.0.2.10", 5002, 2))),
           pcp(map_req(mapping("192.0.2.10", 5003, 3)))});
  CHECK(f.dp.calls() == before + 1);
  CHECK(f.result(0) == ResultCode::Success);
  CHECK(f.result(1) == ResultCode::Success);
  CHECK(f.result(2) == ResultCode::UserExQuota);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("burst R-CKPT-7: the checkpoint rate and cap count the elections of the same transaction") {
  Policy p = default_policy();
  p.checkpoint.burst_per_client = 1;
  p.checkpoint.rate_per_client = 0.001;  // no refill during the test
  BurstFixture f(p);
  f.burst({pcp(with_ckpt(map_req(mapping("192.0.2.10", 5001, 1)))),
           pcp(with_ckpt(map_req(mapping("192.0.2.10", 5002, 2))))});
  REQUIRE(f.result(0) == ResultCode::Success);
  REQUIRE(f.result(1) == ResultCode::Success);
  CHECK(f.response(0).options.checkpoint_required);
  CHECK_FALSE(f.response(1).options.checkpoint_required);  // over the rate: served without it
  CHECK(f.items[0].hold);
  CHECK_FALSE(f.items[1].hold);
  CHECK(f.server->stats().checkpoint_honoured == 1);
  CHECK(f.server->stats().checkpoint_refused_rate == 1);
  CHECK(f.server->stats().elected == 1);

  Policy q = default_policy();
  q.checkpoint.max_total = 1;
  BurstFixture g(q);
  g.burst({pcp(with_ckpt(map_req(mapping("192.0.2.10", 5001, 1)))),
           pcp(with_ckpt(map_req(mapping("192.0.2.11", 5002, 2))))});
  CHECK(g.response(0).options.checkpoint_required);
  CHECK_FALSE(g.response(1).options.checkpoint_required);
  CHECK(g.server->stats().checkpoint_refused_total_cap == 1);
}

TEST_CASE("burst R-PMP-6: a NAT-PMP create's companion port is reserved within its transaction") {
  BurstFixture f;
  // Host .10 maps TCP 5000 by NAT-PMP (UDP 5000 becomes its companion); host .11 asks PCP for UDP
  // 5000 in the same burst and gets another port.
  Request udp = map_req({.client = ip("192.0.2.11"), .protocol = 17, .internal_port = 5000,
                         .nonce = nonce(2), .suggested_port = 5000});
  f.burst({natpmp_tcp(ip("192.0.2.10"), 5000, 3600), pcp(udp)});
  REQUIRE(f.result(1) == ResultCode::Success);
  CHECK(f.external_port(1) != 5000);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("burst R-HDR-10: a refused transaction leaves the counters as if it never was") {
  BurstFixture f;
  const core::Stats before = f.server->stats();
  f.dp.fail_calls({1, 2, 3});  // the burst's transaction and both retries
  f.burst({pcp(map_req(mapping("192.0.2.10", 5001, 1))), pcp(map_req(mapping("192.0.2.11", 5002, 2)))});
  CHECK(f.result(0) == ResultCode::NoResources);
  CHECK(f.result(1) == ResultCode::NoResources);
  const core::Stats& after = f.server->stats();
  CHECK(after.created == before.created);
  CHECK(after.datapath_errors == before.datapath_errors + 2);
  CHECK(after.burst_retries == before.burst_retries + 1);
  CHECK(after.requests_by_opcode[1] == before.requests_by_opcode[1] + 2);  // counted once each
  CHECK(after.responses_by_result[static_cast<std::size_t>(ResultCode::NoResources)] ==
        before.responses_by_result[static_cast<std::size_t>(ResultCode::NoResources)] + 2);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("burst R-MAP-3: a suggestion of a port an all-ports delete frees waits for the delete's commit") {
  Policy p = default_policy();
  p.allow_all_ports = true;
  BurstFixture f(p);
  Request all = map_req({.client = ip("192.0.2.11"), .protocol = 17, .internal_port = 0, .nonce = nonce(5)});
  REQUIRE(f.send(all).kind == Reply::Kind::Success);  // UDP: the whole of 203.0.113.1
  Request del = all;
  del.lifetime = 0;
  Request want = map_req({.client = ip("192.0.2.12"), .protocol = 17, .internal_port = 5000, .nonce = nonce(6),
                          .suggested_port = 5000, .suggested_addr = ip("203.0.113.1")});
  want.options.prefer_failure = true;
  f.burst({pcp(del), pcp(want)});
  CHECK(f.result(0) == ResultCode::Success);
  REQUIRE(f.result(1) == ResultCode::Success);  // one after the other, as if alone
  CHECK(f.external_port(1) == 5000);
}

TEST_CASE("burst R-PMP-6: a PCP mapping NAT-PMP takes over reserves its companion port within the transaction") {
  Policy p = default_policy();
  p.nonce_change = Policy::NonceChange::SameHost;
  BurstFixture f(p);
  // Host .10's PCP TCP mapping on 6000; its NAT-PMP refresh makes it a NAT-PMP mapping, whose UDP
  // companion 6000 host .11 must not get in the same burst.
  REQUIRE(f.map({.client = ip("192.0.2.10"), .internal_port = 6000, .nonce = nonce(1), .suggested_port = 6000})
              .response.result == ResultCode::Success);
  Request udp = map_req({.client = ip("192.0.2.11"), .protocol = 17, .internal_port = 6000, .nonce = nonce(2),
                         .suggested_port = 6000});
  f.burst({natpmp_tcp(ip("192.0.2.10"), 6000, 3600), pcp(udp)});
  REQUIRE(f.result(1) == ResultCode::Success);
  CHECK(f.external_port(1) != 6000);
}
