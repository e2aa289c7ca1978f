// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_client Session: renewal timing (RFC 6887 §11.2.1), re-creation after an epoch anomaly
// (§8.5, R-EPOCH-6) or unsolicited ANNOUNCE (§14.1.3, R-ANN-6), delete on stop (§15).
// Fake clock + fake transport: no sleeping.
#include <doctest/doctest.h>

#include "client_fakes.hpp"

using namespace pcpd;
using namespace pcpd::client;
using namespace pcpd::client::test;
using K = SessionEvent::Kind;

namespace {

// A fake PCP server: grants the requested lifetime (MAP lifetime 0 = delete), answers from a
// fixed external address, and keeps an epoch that advances with the fake clock unless reset.
struct FakeServer {
  explicit FakeServer(FakeClock& c) : clock(c) {}
  FakeClock& clock;
  Millis epoch_origin{0};
  std::uint32_t granted_lifetime = 0;  // 0: grant what was asked
  std::optional<wire::ResultCode> next_result;
  bool silent = false;
  std::vector<wire::Request> requests;  // decoded copies (views into FakeTransport::sent)

  std::uint32_t epoch() const {
    return static_cast<std::uint32_t>((clock.now() - epoch_origin).count() / 1000);
  }
  void reset_epoch() { epoch_origin = clock.now(); }

  FakeTransport::Server fn() {
    return [this](const wire::Request& req, std::size_t) {
      requests.push_back(req);
      if (silent) return std::vector<Scheduled>{};
      const auto result = next_result.value_or(wire::ResultCode::Success);
      next_result.reset();
      std::uint32_t lifetime = granted_lifetime ? granted_lifetime : req.lifetime;
      if (req.lifetime == 0) lifetime = 0;
      if (result != wire::ResultCode::Success) lifetime = 1800;
      return std::vector<Scheduled>{
          {encode(answer(req, lifetime, epoch(), result, ip("203.0.113.1"), 40000)), Millis{20}}};
    };
  }
};

struct Fixture {
  FakeClock clock;
  FakeRandom random;
  FakeTransport transport{clock, ip("192.0.2.10"), ip("192.0.2.1")};
  FakeServer server{clock};
  Client client{transport, clock, random, [] {
                  ClientConfig c;
                  c.retransmit.irt = Millis{1000};
                  c.retransmit.mrd = Millis{5000};
                  return c;
                }()};
  std::vector<SessionEvent> events;
  SessionConfig config;

  Fixture() {
    server.epoch_origin = clock.now() - Millis{50'000};  // server up for 50 s
    transport.server_fn = server.fn();
    config.recreate_delay_max = Millis{0};
  }
  Session make() {
    return Session(client, random, config, [this](const SessionEvent& e) { events.push_back(e); });
  }
  std::vector<K> kinds() const {
    std::vector<K> k;
    for (const auto& e : events) k.push_back(e.kind);
    return k;
  }
  // Runs the session the way pcpc's loop does, until `until`, jumping from deadline to deadline.
  void run_until(Session& s, Millis until) {
    for (int i = 0; i < 1000; ++i) {
      auto d = s.next_deadline();
      if (!d || *d > until) break;
      if (*d > clock.now()) clock.set(*d);
      s.run_due();
    }
    if (clock.now() < until) clock.set(until);
  }
};

MappingSpec tcp_map(std::uint16_t port, std::uint32_t lifetime = 100) {
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = port;
  s.lifetime = lifetime;
  return s;
}

const wire::MapBody& map_body(const wire::Request& r) { return std::get<wire::MapBody>(r.body); }

}  // namespace

TEST_CASE("RFC 6887 §11.2.1: renewal between 1/2 and 5/8 of the lifetime, same nonce") {
  Fixture f;
  SUBCASE("earliest: 1/2") { f.random.fractions = {0.0}; }
  SUBCASE("latest: 5/8") { f.random.fractions = {1.0}; }
  SUBCASE("middle") { f.random.fractions = {0.5}; }
  const double fraction = f.random.fractions[0];
  auto s = f.make();
  auto idx = s.add(tcp_map(8080, 100));
  REQUIRE(idx);
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].kind == K::Created);
  const Millis created = f.events[0].outcome->received_at;
  const auto expected = created + Millis{static_cast<std::int64_t>((50'000 + fraction * 12'500))};
  REQUIRE(s.renew_at(*idx).has_value());
  CHECK(*s.renew_at(*idx) == expected);
  CHECK(*s.next_deadline() == expected);
  // Nothing happens before the deadline.
  f.clock.set(expected - Millis{1});
  s.run_due();
  CHECK(f.transport.sent.size() == 1);
  f.clock.set(expected);
  s.run_due();
  REQUIRE(f.transport.sent.size() == 2);
  CHECK(f.kinds() == std::vector<K>{K::Created, K::Renewed});
  const auto first = f.transport.sent[0].decode();
  const auto renewal = f.transport.sent[1].decode();
  CHECK(map_body(renewal).nonce == map_body(first).nonce);
  CHECK(renewal.lifetime == 100);
  // The renewal suggests what the server assigned (RFC 6887 §11.2.1).
  CHECK(map_body(renewal).external_port == 40000);
  CHECK(map_body(renewal).external_addr == ip("203.0.113.1"));
}

TEST_CASE("RFC 6887 §11.2.1: a session keeps renewing for hours without drift past 5/8") {
  Fixture f;
  SystemRandom real;
  Session s(f.client, real, f.config, [&](const SessionEvent& e) { f.events.push_back(e); });
  REQUIRE(s.add(tcp_map(8080, 120)));
  f.run_until(s, f.clock.now() + Millis{4 * 3600 * 1000});
  Millis prev = f.transport.sent[0].at;
  REQUIRE(f.transport.sent.size() > 150);  // one per 60..75 s
  for (std::size_t i = 1; i < f.transport.sent.size(); ++i) {
    const auto gap = f.transport.sent[i].at - prev;
    CHECK(gap >= Millis{60'000});
    CHECK(gap <= Millis{75'000 + 20});  // + the 20 ms answer delay of the previous exchange
    prev = f.transport.sent[i].at;
  }
  for (const auto& e : f.events) CHECK((e.kind == K::Created || e.kind == K::Renewed));
}

TEST_CASE("R-EPOCH-6 R-ANN-6: an epoch reset seen on a renewal re-creates every mapping") {
  Fixture f;
  f.config.recreate_delay_max = Millis{5000};
  f.random.fractions = {0.0};  // renew at 1/2; re-creation delay 0
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080, 100)));
  REQUIRE(s.add(tcp_map(8081, 400)));
  // The server restarts 10 s in: its epoch starts again from 0.
  f.clock.advance(Millis{10'000});
  f.server.reset_epoch();
  f.events.clear();
  const auto renew = *s.next_deadline();
  f.clock.set(renew);
  s.run_due();  // renews 8080 only; the response's epoch went down -> invalid
  CHECK(f.kinds() == std::vector<K>{K::Renewed, K::EpochInvalid, K::RecreateScheduled});
  CHECK_FALSE(f.events[0].epoch_valid);
  REQUIRE(s.recreate_at().has_value());
  CHECK(*s.recreate_at() == f.clock.now());  // fraction 0 -> delay 0 of [0, 5 s]
  f.events.clear();
  const std::size_t before = f.transport.sent.size();
  s.run_due();
  CHECK(f.kinds() == std::vector<K>{K::Recreated, K::Recreated});
  REQUIRE(f.transport.sent.size() == before + 2);
  // Same nonces as the original creations; the previous external port is suggested.
  CHECK(map_body(f.transport.sent[before].decode()).nonce == map_body(f.transport.sent[0].decode()).nonce);
  CHECK(map_body(f.transport.sent[before + 1].decode()).nonce ==
        map_body(f.transport.sent[1].decode()).nonce);
  CHECK(map_body(f.transport.sent[before + 1].decode()).internal_port == 8081);
  CHECK(map_body(f.transport.sent[before + 1].decode()).external_port == 40000);
  for (const auto& e : f.events) CHECK(e.epoch_valid);  // continuous from the new baseline
  CHECK_FALSE(s.recreate_at().has_value());
}

TEST_CASE("R-ANN-6: the re-creation delay is random within 0..5 s") {
  Fixture f;
  f.config.recreate_delay_max = Millis{5000};
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080)));
  f.random.fractions = {0.7};
  f.events.clear();
  const Millis now = f.clock.now();
  s.on_announcements({Announcement{f.server.epoch(), now}});
  CHECK(f.kinds() == std::vector<K>{K::Announce, K::RecreateScheduled});
  CHECK(f.events[1].delay == Millis{3500});
  CHECK(*s.recreate_at() == now + Millis{3500});
  CHECK(*s.next_deadline() == now + Millis{3500});
  // A second ANNOUNCE before it runs does not push it back or add another.
  s.on_announcements({Announcement{f.server.epoch(), now + Millis{100}}});
  CHECK(*s.recreate_at() == now + Millis{3500});
  f.clock.set(now + Millis{3499});
  s.run_due();
  CHECK(f.transport.sent.size() == 1);
  f.clock.set(now + Millis{3500});
  s.run_due();
  CHECK(f.transport.sent.size() == 2);
  CHECK(f.events.back().kind == K::Recreated);
}

TEST_CASE("R-ANN-3 RFC 6887 §14.1.3: unsolicited ANNOUNCE with a reset epoch -> epoch event + re-create") {
  Fixture f;
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080)));
  f.clock.advance(Millis{30'000});
  f.server.reset_epoch();
  f.events.clear();
  // Unicast to the request port (R-ANN-4): seen by Client::poll, handled by run_due.
  f.transport.inject(announce_bytes(f.server.epoch()), f.clock.now());
  REQUIRE(f.client.poll());
  s.run_due();
  // The fixture's re-creation delay is 0, so the same run_due() also re-creates.
  CHECK(f.kinds() == std::vector<K>{K::Announce, K::EpochInvalid, K::RecreateScheduled, K::Recreated});
  CHECK_FALSE(f.events[0].epoch_valid);
  CHECK(f.events.back().outcome->success());
  CHECK(f.events.back().outcome->epoch_valid);
}

TEST_CASE("R-SEC-5: accept_announce takes only ANNOUNCE responses from the server's address") {
  const auto good = announce_bytes(42);
  CHECK(accept_announce(good, ip("192.0.2.1"), ip("192.0.2.1")) == std::optional<std::uint32_t>(42));
  CHECK_FALSE(accept_announce(good, ip("192.0.2.66"), ip("192.0.2.1")).has_value());
  auto request = good;
  request[1] = 0x00;  // R bit clear: a request, not an announcement
  CHECK_FALSE(accept_announce(request, ip("192.0.2.1"), ip("192.0.2.1")).has_value());
  wire::Response map;
  map.opcode = wire::Opcode::Map;
  map.body = wire::MapBody{};
  CHECK_FALSE(accept_announce(encode(map), ip("192.0.2.1"), ip("192.0.2.1")).has_value());
  std::vector<std::uint8_t> short_one(good.begin(), good.begin() + 20);
  CHECK_FALSE(accept_announce(short_one, ip("192.0.2.1"), ip("192.0.2.1")).has_value());
  CHECK(accept_announce(good, ip("2001:db8::1"), ip("2001:db8::1")).has_value());
}

TEST_CASE("R-LIFE-4: stop() deletes MAP mappings with lifetime 0 and the same nonce, PEER is left") {
  Fixture f;
  auto s = f.make();
  auto spec = tcp_map(8080);
  spec.filters.push_back(wire::Filter{120, 443, ip("198.51.100.0")});
  spec.prefer_failure = true;
  REQUIRE(s.add(spec));
  MappingSpec peer;
  peer.opcode = wire::Opcode::Peer;
  peer.protocol = 6;
  peer.internal_port = 9000;
  peer.remote_addr = ip("198.51.100.1");
  peer.remote_port = 80;
  REQUIRE(s.add(peer));
  f.events.clear();
  s.stop();
  REQUIRE(f.transport.sent.size() == 3);
  const auto del = f.transport.sent[2].decode();
  CHECK(del.opcode == wire::Opcode::Map);
  CHECK(del.lifetime == 0);
  CHECK(map_body(del).nonce == map_body(f.transport.sent[0].decode()).nonce);
  CHECK(map_body(del).internal_port == 8080);
  CHECK(map_body(del).external_port == 0);
  CHECK(map_body(del).external_addr == wire::IpAddr::v4_any());
  CHECK(del.options.filter_count == 0);  // R-FLT-6: no FILTER with lifetime 0
  CHECK_FALSE(del.options.prefer_failure);
  CHECK(f.kinds() == std::vector<K>{K::Deleted});
  CHECK(f.events[0].outcome->response.lifetime == 0);
  CHECK(s.active_count() == 0);
  CHECK_FALSE(s.next_deadline().has_value());
}

TEST_CASE("Session: no answer to a renewal -> NoAnswer and a retry after retry_after") {
  Fixture f;
  f.config.retry_after = Millis{30'000};
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080, 100)));
  f.server.silent = true;
  f.clock.set(*s.next_deadline());
  s.run_due();
  CHECK(f.events.back().kind == K::NoAnswer);
  CHECK(*s.next_deadline() == f.clock.now() + Millis{30'000});
  f.server.silent = false;
  f.clock.set(*s.next_deadline());
  s.run_due();
  CHECK(f.events.back().kind == K::Renewed);
}

TEST_CASE("R-ADDR-2: ADDRESS_MISMATCH on a renewal abandons the mapping") {
  Fixture f;
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080, 100)));
  f.server.next_result = wire::ResultCode::AddressMismatch;
  f.clock.set(*s.next_deadline());
  s.run_due();
  CHECK(f.kinds() == std::vector<K>{K::Created, K::Renewed, K::Abandoned});
  CHECK(s.active_count() == 0);
}

TEST_CASE("RFC 6887 §7.4: an error answer to a renewal waits its error lifetime before retrying") {
  Fixture f;
  auto s = f.make();
  REQUIRE(s.add(tcp_map(8080, 100)));
  f.server.next_result = wire::ResultCode::NoResources;
  f.clock.set(*s.next_deadline());
  s.run_due();
  CHECK(f.events.back().kind == K::Renewed);
  CHECK_FALSE(f.events.back().outcome->success());
  CHECK(*s.next_deadline() == f.events.back().outcome->received_at + Millis{1'800'000});
  CHECK(s.active_count() == 1);
}

TEST_CASE("Session: add() with an error answer does not keep the mapping") {
  Fixture f;
  auto s = f.make();
  f.server.next_result = wire::ResultCode::NotAuthorized;
  auto idx = s.add(tcp_map(8080));
  REQUIRE(idx);
  CHECK(s.active_count() == 0);
  CHECK(f.events[0].kind == K::Created);
  CHECK_FALSE(f.events[0].outcome->success());
}
