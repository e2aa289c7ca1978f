// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_client: retransmission per RFC 6887 §8.1.1 (IRT, MRT, MRC, MRD, RAND in [-0.1, +0.1]).
#include <doctest/doctest.h>

#include "client_fakes.hpp"

using namespace pcpd;
using namespace pcpd::client;
using namespace pcpd::client::test;

namespace {

MappingSpec small_map() {
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 8080;
  return s;
}

// Checks one RT sequence against §8.1.1: RT1 in IRT*[0.9, 1.1]; then RT in RTprev*[1.9, 2.1]
// unless capped, and a capped RT in MRT*[0.9, 1.1].
void check_sequence(Random& random, const RetransmitParams& p, int steps) {
  RetransmitTimer timer(p, random);
  const double irt = static_cast<double>(p.irt.count());
  const double mrt = static_cast<double>(p.mrt.count());
  double prev = 0;
  for (int i = 0; i < steps; ++i) {
    const double rt = static_cast<double>(timer.next().count());
    if (i == 0) {
      CHECK(rt >= 0.9 * irt - 1);
      CHECK(rt <= 1.1 * irt + 1);
    } else {
      // Uncapped: 2*RTprev + RAND*RTprev (and not above MRT); capped: MRT + RAND*MRT, only
      // reachable when the uncapped value could exceed MRT.
      // RT is whole milliseconds: allow 2 ms for the rounding of RT and of RTprev.
      const bool doubled = rt >= 1.9 * prev - 2 && rt <= 2.1 * prev + 2 && rt <= mrt + 1;
      const bool capped = rt >= 0.9 * mrt - 1 && rt <= 1.1 * mrt + 1 && 2.1 * prev + 2 > mrt;
      CHECK((doubled || capped));
    }
    CHECK(rt <= 1.1 * mrt + 1);
    prev = rt;
  }
}

}  // namespace

TEST_CASE("RFC 6887 §8.1.1: RT sequence at RAND = 0 is IRT, doubling, capped at MRT") {
  FakeRandom r;  // fraction 0.5 -> RAND 0
  RetransmitParams p;
  RetransmitTimer t(p, r);
  const std::int64_t expected[] = {3000, 6000, 12000, 24000, 48000, 96000, 192000, 384000, 768000,
                                   1024000, 1024000};
  for (auto e : expected) CHECK(t.next().count() == e);
}

TEST_CASE("RFC 6887 §8.1.1: RT stays within the RAND bounds at both extremes") {
  RetransmitParams p;
  p.irt = Millis{3000};
  p.mrt = Millis{60000};
  SUBCASE("RAND = -0.1 always") {
    FakeRandom r;
    r.fractions = {0.0};
    RetransmitTimer t(p, r);
    CHECK(t.next().count() == 2700);          // 0.9 * IRT
    CHECK(t.next().count() == 5130);          // 1.9 * 2700
    check_sequence(r, p, 20);
  }
  SUBCASE("RAND = +0.1 always") {
    FakeRandom r;
    r.fractions = {1.0};
    RetransmitTimer t(p, r);
    CHECK(t.next().count() == 3300);          // 1.1 * IRT
    CHECK(t.next().count() == 6930);          // 2.1 * 3300
    for (int i = 0; i < 10; ++i) (void)t.next();
    CHECK(t.next().count() == 66000);         // capped: 1.1 * MRT
  }
  SUBCASE("system random, many sequences") {
    SystemRandom r;
    for (int i = 0; i < 200; ++i) check_sequence(r, p, 15);
  }
}

TEST_CASE("RFC 6887 §8.1.1: no answer -> send times follow RT and the total stays within MRD") {
  FakeClock clock;
  SystemRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  ClientConfig cfg;
  cfg.retransmit.irt = Millis{100};
  cfg.retransmit.mrd = Millis{5000};
  Client c(t, clock, random, cfg);
  const Millis start = clock.now();
  auto out = c.request(small_map());
  REQUIRE_FALSE(out);
  CHECK(out.error().code == ETIMEDOUT);
  CHECK(clock.now() - start == Millis{5000});  // exactly MRD: never beyond it
  REQUIRE(t.sent.size() >= 5);
  double prev = 0;
  for (std::size_t i = 1; i < t.sent.size(); ++i) {
    const double gap = static_cast<double>((t.sent[i].at - t.sent[i - 1].at).count());
    if (i == 1) {
      CHECK(gap >= 90 - 1);
      CHECK(gap <= 110 + 1);
    } else {
      CHECK(gap >= 1.9 * prev - 2);  // whole milliseconds: 2 ms of rounding
      CHECK(gap <= 2.1 * prev + 2);
    }
    prev = gap;
  }
  for (const auto& s : t.sent) CHECK(s.at - start < Millis{5000});
  // Every copy is the same request (same nonce): RFC 6887 §8.1.1 retransmits, never re-issues.
  for (const auto& s : t.sent) CHECK(s.bytes == t.sent[0].bytes);
}

TEST_CASE("RFC 6887 §8.1.1: MRC bounds the number of transmissions") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  ClientConfig cfg;
  cfg.retransmit.irt = Millis{100};
  cfg.retransmit.mrc = 4;  // RFC 7488
  Client c(t, clock, random, cfg);
  const Millis start = clock.now();
  auto out = c.request(small_map());
  REQUIRE_FALSE(out);
  CHECK(t.sent.size() == 4);
  CHECK(clock.now() - start == Millis{100 + 200 + 400 + 800});  // waits out the last RT
}

TEST_CASE("R-IDEM-2: an answer after two retransmissions ends the exchange") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t index) {
    if (index < 2) return std::vector<Scheduled>{};  // lost
    return std::vector<Scheduled>{{encode(answer(req, 600, 10)), Millis{50}}};
  };
  ClientConfig cfg;
  cfg.retransmit.irt = Millis{1000};
  cfg.retransmit.mrd = Millis{60000};
  Client c(t, clock, random, cfg);
  const Millis start = clock.now();
  auto out = c.request(small_map());
  REQUIRE(out);
  CHECK(out->transmissions == 3);
  CHECK(out->received_at - start == Millis{1000 + 2000 + 50});
}
