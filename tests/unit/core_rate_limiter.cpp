// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core request rate limits (RFC 6887 §18.1 "SHOULD rate-limit"; R-QUOTA-5, R-SEC-3): the
// RateLimiter token buckets over a fake time, and Server's use of them before decoding (PCP and
// NAT-PMP, silent drop, counters). R-CKPT-7's election rate limit is core_checkpoint.cpp's.
#include <array>
#include <vector>

#include "core/rate_limiter.hpp"
#include "unit/core_fixture.hpp"
#include "wire/codec.hpp"

using namespace pcpd::test;
using pcpd::core::Millis;
using pcpd::core::RateLimiter;
using Verdict = pcpd::core::RateLimiter::Verdict;

namespace {

Policy::RateLimit limits(double client_rate, double client_burst, double global_rate,
                         double global_burst) {
  Policy::RateLimit l;
  l.client_rate = client_rate;
  l.client_burst = client_burst;
  l.global_rate = global_rate;
  l.global_burst = global_burst;
  return l;
}

IpAddr nth_v4(std::uint32_t i) { return IpAddr::from_v4(0xC6120000u + i); }  // 198.18/15 space

// How many of `n` requests from `client` at `now` are allowed.
int admitted(RateLimiter& rl, const Policy::RateLimit& l, const IpAddr& client, Millis now, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += rl.admit(l, client, now) == Verdict::Allow ? 1 : 0;
  return ok;
}

std::vector<std::uint8_t> encoded(const Request& req) {
  std::array<std::uint8_t, 1100> buf{};
  const std::size_t len = pcpd::wire::encode_request(req, buf);
  REQUIRE(len > 0);
  return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len)};
}

std::vector<std::uint8_t> natpmp_map(std::uint16_t port) {
  return {0, 2, 0, 0, static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port),
          0, 0, 0, 0, 0x0e, 0x10};
}

}  // namespace

TEST_CASE("R-QUOTA-5 R-SEC-3 a client gets its burst, then its rate, then nothing more") {
  RateLimiter rl(16, 1);
  const auto l = limits(10, 20, 0, 0);
  const IpAddr a = ip("192.0.2.10");
  const Millis t0(5'000'000);
  CHECK(admitted(rl, l, a, t0, 25) == 20);
  CHECK(rl.admit(l, a, t0) == Verdict::ClientLimited);
  // 10 per second: 100 ms gives one token, 1 s gives ten.
  CHECK(admitted(rl, l, a, t0 + Millis(50), 5) == 0);
  CHECK(admitted(rl, l, a, t0 + Millis(100), 5) == 1);
  CHECK(admitted(rl, l, a, t0 + Millis(1100), 50) == 10);
  // Refused requests do not push the refill back: a steady flood still gets the rate.
  int ok = 0;
  for (int ms = 1101; ms <= 11100; ++ms) ok += admitted(rl, l, a, t0 + Millis(ms), 10);
  CHECK(ok == 100);
  // Idle long enough, the bucket is full again and no larger than the burst.
  CHECK(admitted(rl, l, a, t0 + Millis(3'600'000), 100) == 20);
}

TEST_CASE("R-QUOTA-5 clients are limited independently") {
  RateLimiter rl(16, 2);
  const auto l = limits(10, 5, 0, 0);
  const Millis t0(1000);
  CHECK(admitted(rl, l, ip("192.0.2.10"), t0, 100) == 5);
  CHECK(admitted(rl, l, ip("192.0.2.11"), t0, 100) == 5);
  CHECK(admitted(rl, l, ip("2001:db8:1::10"), t0, 100) == 5);
  CHECK(admitted(rl, l, ip("2001:db8:1::11"), t0, 100) == 5);
}

TEST_CASE("R-SEC-3 the global bucket limits all clients together") {
  RateLimiter rl(64, 3);
  const auto l = limits(100, 10, 50, 100);
  const Millis t0(1000);
  int ok = 0;
  for (std::uint32_t i = 0; i < 40; ++i) ok += admitted(rl, l, nth_v4(i), t0, 5);
  CHECK(ok == 100);  // 200 asked, each client within its own burst: the global burst decides
  CHECK(rl.admit(l, nth_v4(999), t0) == Verdict::GlobalLimited);
  // 50 per second globally.
  ok = 0;
  for (std::uint32_t i = 100; i < 200; ++i) ok += admitted(rl, l, nth_v4(i), t0 + Millis(1000), 1);
  CHECK(ok == 50);
}

TEST_CASE("R-SEC-3 a flooder refused by its own bucket takes no global token") {
  RateLimiter rl(64, 4);
  const auto l = limits(100, 10, 1000, 20);
  const Millis t0(1000);
  CHECK(admitted(rl, l, ip("192.0.2.10"), t0, 100'000) == 10);
  // The other clients still share the 10 global tokens left.
  CHECK(admitted(rl, l, ip("192.0.2.11"), t0, 5) == 5);
  CHECK(admitted(rl, l, ip("192.0.2.12"), t0, 5) == 5);
  CHECK(rl.admit(l, ip("192.0.2.13"), t0) == Verdict::GlobalLimited);
}

TEST_CASE("R-QUOTA-5 rate 0 turns a bucket off") {
  RateLimiter rl(16, 5);
  const Millis t0(1000);
  CHECK(admitted(rl, limits(0, 1, 0, 1), ip("192.0.2.10"), t0, 10'000) == 10'000);
  CHECK(admitted(rl, limits(0, 0, 10, 3), ip("192.0.2.10"), t0, 100) == 3);
  CHECK(admitted(rl, limits(10, 3, 0, 0), ip("192.0.2.11"), t0, 100) == 3);
}

TEST_CASE("R-SEC-3 spoofed sources cannot grow the per-client table") {
  RateLimiter rl(64, 6);
  const auto l = limits(10, 5, 0, 0);
  REQUIRE(rl.capacity() == 64 * RateLimiter::kWays);
  for (std::uint32_t i = 0; i < 100'000; ++i) (void)rl.admit(l, nth_v4(i), Millis(1000));
  CHECK(rl.capacity() == 64 * RateLimiter::kWays);
  CHECK(rl.tracked() == rl.capacity());
}

TEST_CASE("R-SEC-3 a spoofing flood evicts idle clients, not an empty flooder's bucket") {
  RateLimiter rl(1, 7);  // one set of kWays entries: every client competes for it
  const auto l = limits(1, 20, 0, 0);
  const IpAddr flooder = ip("192.0.2.66");
  const Millis t0(1000);
  CHECK(admitted(rl, l, flooder, t0, 100) == 20);
  // A thousand spoofed one-shot sources: each new entry has burst-1 tokens, more than the
  // flooder's 0, so they evict one another.
  for (std::uint32_t i = 0; i < 1000; ++i) (void)rl.admit(l, nth_v4(i), t0);
  CHECK(rl.admit(l, flooder, t0) == Verdict::ClientLimited);
  // A full table evicts the entry with the most tokens: an idle client's full bucket goes first.
  RateLimiter small(1, 8);
  for (std::uint32_t i = 0; i < RateLimiter::kWays; ++i)
    CHECK(admitted(small, l, nth_v4(i), t0, 20) == 20);  // every entry empty
  CHECK(admitted(small, l, ip("192.0.2.99"), t0, 1) == 1);  // evicts one of them
  int limited = 0;
  for (std::uint32_t i = 0; i < RateLimiter::kWays; ++i)
    limited += small.admit(l, nth_v4(i), t0) == Verdict::ClientLimited ? 1 : 0;
  CHECK(limited == static_cast<int>(RateLimiter::kWays) - 1);  // only the evicted one starts over
}

TEST_CASE("R-QUOTA-5 Server: requests over the client rate are dropped silently, undecoded, counted") {
  auto p = default_policy();
  p.rate_limit = limits(10, 3, 0, 0);
  Fixture f(p);
  std::array<std::uint8_t, 1100> out{};
  const IpAddr a = ip("192.0.2.10");
  const auto ok = encoded(map_req({.client = a, .internal_port = 8080}));
  for (int i = 0; i < 3; ++i) CHECK(f.server->handle_datagram(ok, ctx(a), out) > 0);
  const auto applied = f.dp.applied().size();
  for (int i = 0; i < 100; ++i) CHECK(f.server->handle_datagram(ok, ctx(a), out) == 0);
  const std::vector<std::uint8_t> garbage(40, 0x02);
  CHECK(f.server->handle_datagram(garbage, ctx(a), out) == 0);
  CHECK(f.server->stats().rate_limited_client == 101);
  CHECK(f.server->stats().rate_limited_global == 0);
  CHECK(f.server->stats().requests_by_opcode[1] == 3);  // refused ones were never decoded
  CHECK(f.server->stats().dropped == 0);
  CHECK(f.dp.applied().size() == applied);  // no kernel work for them
  // Another client is served meanwhile; the first one again after its refill.
  const IpAddr b = ip("192.0.2.11");
  CHECK(f.server->handle_datagram(encoded(map_req({.client = b})), ctx(b), out) > 0);
  f.clock.advance(Millis(100));
  CHECK(f.server->handle_datagram(ok, ctx(a), out) > 0);
  CHECK(f.server->handle_datagram(ok, ctx(a), out) == 0);
}

TEST_CASE("R-QUOTA-5 Server: NAT-PMP counts against the same client bucket as PCP") {
  auto p = default_policy();
  p.rate_limit = limits(10, 4, 0, 0);
  Fixture f(p);
  std::array<std::uint8_t, 1100> out{};
  const IpAddr a = ip("192.0.2.10");
  CHECK(f.server->handle_natpmp(natpmp_map(9000), ctx(a), out) > 0);
  CHECK(f.server->handle_natpmp(natpmp_map(9001), ctx(a), out) > 0);
  const auto ann = encoded(announce_req(a));
  CHECK(f.server->handle_datagram(ann, ctx(a), out) > 0);
  CHECK(f.server->handle_datagram(ann, ctx(a), out) > 0);
  CHECK(f.server->handle_natpmp(natpmp_map(9002), ctx(a), out) == 0);
  CHECK(f.server->handle_datagram(ann, ctx(a), out) == 0);
  CHECK(f.server->stats().rate_limited_client == 2);
  CHECK(f.server->stats().natpmp_requests == 2);
  CHECK(f.server->mapping_count() == 2);
}

TEST_CASE("R-SEC-3 Server: the global limit is counted apart; reload changes the limits") {
  auto p = default_policy();
  p.rate_limit = limits(100, 100, 1, 5);
  Fixture f(p);
  std::array<std::uint8_t, 1100> out{};
  int served = 0;
  for (std::uint32_t i = 0; i < 10; ++i) {
    const IpAddr c = IpAddr::from_v4(0xC0000200u + 20 + i);  // 192.0.2.20..29
    served += f.server->handle_datagram(encoded(announce_req(c)), ctx(c), out) > 0 ? 1 : 0;
  }
  CHECK(served == 5);
  CHECK(f.server->stats().rate_limited_global == 5);
  CHECK(f.server->stats().rate_limited_client == 0);
  // SIGHUP: limits off; the same sources are served at once.
  p.rate_limit = limits(0, 0, 0, 0);
  f.server->set_policy(p);
  const IpAddr c = ip("192.0.2.20");
  for (int i = 0; i < 1000; ++i) CHECK(f.server->handle_datagram(encoded(announce_req(c)), ctx(c), out) > 0);
  CHECK(f.server->stats().rate_limited_global == 5);
}

TEST_CASE("R-QUOTA-5 the defaults are off the path of a normal host") {
  const Policy p;
  CHECK(p.rate_limit.client_rate >= 100);
  CHECK(p.rate_limit.client_burst >= p.max_mappings_per_client);  // R-ANN-6 refresh-all burst
  CHECK(p.rate_limit.global_rate >= 100 * p.rate_limit.client_rate);
}
