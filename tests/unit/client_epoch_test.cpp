// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_client: the client's epoch check (RFC 6887 §8.5, R-EPOCH-6).
#include <doctest/doctest.h>

#include "client/epoch_validator.hpp"

using namespace pcpd::client;

TEST_CASE("R-EPOCH-6: epoch advancing with local time is valid") {
  CHECK(epoch_valid(100, 100, 0));
  CHECK(epoch_valid(100, 160, 60));
  CHECK(epoch_valid(0, 3600, 3600));
  CHECK(epoch_valid(100, 102, 0));  // 2 s of slack either way
  CHECK(epoch_valid(100, 100, 2));
}

TEST_CASE("R-EPOCH-6: a decrease is invalid") {
  CHECK_FALSE(epoch_valid(100, 99, 0));
  CHECK_FALSE(epoch_valid(100, 0, 100));
  CHECK_FALSE(epoch_valid(5000, 4999, 1));
}

TEST_CASE("R-EPOCH-6: server_delta too large: client_delta + 2 < server_delta - server_delta/16") {
  // server_delta 100: 100 - 100/16 = 94; client_delta 92 -> 94 < 94 false (valid); 91 invalid.
  CHECK(epoch_valid(0, 100, 92));
  CHECK_FALSE(epoch_valid(0, 100, 91));
  CHECK_FALSE(epoch_valid(100, 103, 0));  // 2 < 3
  CHECK_FALSE(epoch_valid(0, 1000000, 10));
}

TEST_CASE("R-EPOCH-6: client_delta too large: server_delta + 2 < client_delta - client_delta/16") {
  // client_delta 100 -> 94: server_delta 92 valid, 91 invalid (the server stalled).
  CHECK(epoch_valid(1000, 1092, 100));
  CHECK_FALSE(epoch_valid(1000, 1091, 100));
  CHECK_FALSE(epoch_valid(1000, 1000, 3));  // 2 < 3
  // A server that restarted and climbed back to a higher epoch than the old one: its epoch
  // trails local time by far more than the tolerance.
  CHECK_FALSE(epoch_valid(1000, 1100, 3600));
}

TEST_CASE("R-EPOCH-6: integer arithmetic at the 1/16 boundary") {
  // server_delta 15 -> 15/16 = 0: threshold 15; client_delta 13: 15 < 15 false -> valid.
  CHECK(epoch_valid(0, 15, 13));
  CHECK_FALSE(epoch_valid(0, 15, 12));
  // server_delta 16 -> 16 - 1 = 15.
  CHECK(epoch_valid(0, 16, 13));
  CHECK_FALSE(epoch_valid(0, 16, 12));
}

TEST_CASE("R-EPOCH-6: EpochValidator: first response valid, then checked against the previous") {
  EpochValidator v;
  CHECK_FALSE(v.previous_epoch().has_value());
  CHECK(v.check(5000, Millis{10'000}));  // first: always valid, even a large epoch
  CHECK(v.check(5010, Millis{20'000}));  // 10 s later, +10
  CHECK(*v.previous_epoch() == 5010);
  CHECK(v.check(5070, Millis{80'999}));  // 60.999 s -> 60 whole seconds
  CHECK_FALSE(v.check(3, Millis{90'000}));  // server reset
  // The invalid sample becomes the new reference: the next one continues from epoch 3.
  CHECK(v.check(13, Millis{100'000}));
  v.reset();
  CHECK(v.check(0, Millis{0}));
}
