// SPDX-License-Identifier: GPL-2.0-or-later
// ForgetQueue: deleted mappings wait for one conntrack dump; a re-created flow leaves the queue.
#include <doctest/doctest.h>

#include "conntrack/forget_queue.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft_test;

TEST_CASE("forget queue: deleted mappings are taken oldest first, once") {
  ct::ForgetQueue q;
  q.add(map4(5000, 80));
  q.add(map4(5001, 81));
  q.add(pin6(6000));
  CHECK(q.size() == 3);
  const auto gone = q.take();
  REQUIRE(gone.size() == 3);
  CHECK(gone[0].external_port == 5000);
  CHECK(gone[1].external_port == 5001);
  CHECK(gone[2].external_port == 6000);
  CHECK(q.empty());
  CHECK(q.take().empty());
}

TEST_CASE("forget queue: a mapping re-created with the same flow keeps its connections") {
  ct::ForgetQueue q;
  q.add(map4(5000, 80));
  q.add(map4(5001, 81));
  core::Mapping again = map4(5000, 80);
  again.nonce = nonce(99);  // another owner, same translation: the connections are its own
  again.lifetime = 120;
  q.cancel(again);
  CHECK(q.size() == 1);
  q.cancel(map4(5002, 81));  // same internal endpoint, another external port: not the same flow
  q.cancel(map4(5001, 82));
  CHECK(q.size() == 1);
  const auto gone = q.take();
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].external_port == 5001);
}

TEST_CASE("forget queue: delete, re-create, delete again queues the flow once more") {
  ct::ForgetQueue q;
  for (int round = 0; round < 3; ++round) {
    for (std::uint16_t p = 0; p < 1000; ++p) q.add(map4(static_cast<std::uint16_t>(40000 + p), static_cast<std::uint16_t>(1000 + p)));
    for (std::uint16_t p = 0; p < 1000; ++p) q.cancel(map4(static_cast<std::uint16_t>(40000 + p), static_cast<std::uint16_t>(1000 + p)));
    CHECK(q.empty());
  }
  q.add(map4(40000, 1000));
  CHECK(q.take().size() == 1);
}
