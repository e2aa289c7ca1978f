// SPDX-License-Identifier: GPL-2.0-or-later
// [limits] in pcpd.conf (docs/interfaces.md): request rate limits of RFC 6887 §18.1
// (R-QUOTA-5, R-SEC-3) into core::Policy::RateLimit; defaults, values, errors naming file:line.
#include <doctest/doctest.h>

#include <string>

#include "config/config_parser.hpp"
#include "unit/config_fixture.hpp"

using namespace pcpd;
using namespace pcpd::config;

namespace {

using test::expect_error;
using test::kMinimal;
using test::parse;

}  // namespace

TEST_CASE("R-QUOTA-5 [limits] defaults: 100/s burst 300 per client, 10000/s burst 20000 global") {
  const Config c = parse(kMinimal);
  CHECK(c.policy.rate_limit.client_rate == 100.0);
  CHECK(c.policy.rate_limit.client_burst == 300.0);
  CHECK(c.policy.rate_limit.global_rate == 10000.0);
  CHECK(c.policy.rate_limit.global_burst == 20000.0);
}

TEST_CASE("R-QUOTA-5 R-SEC-3 [limits] values, integers or floats; 0 turns a limit off") {
  const Config c = parse(kMinimal +
                         "[limits]\nclient_rate = 2.5\nclient_burst = 10\nglobal_rate = 0\n"
                         "global_burst = 1\n");
  CHECK(c.policy.rate_limit.client_rate == 2.5);
  CHECK(c.policy.rate_limit.client_burst == 10.0);
  CHECK(c.policy.rate_limit.global_rate == 0.0);
  CHECK(c.policy.rate_limit.global_burst == 1.0);
}

TEST_CASE("R-QUOTA-5 [limits] errors name file:line") {
  expect_error(kMinimal + "[limits]\nclient_rate = -1\n", 5, "limits.client_rate");
  expect_error(kMinimal + "[limits]\n\nclient_burst = 0\n", 6, "out of range");
  expect_error(kMinimal + "[limits]\nglobal_rate = \"fast\"\n", 5, "expected a number");
  expect_error(kMinimal + "[limits]\nglobal_burst = 0.5\n", 5, "limits.global_burst");
  expect_error(kMinimal + "[limits]\nclient_rate = 1\nper_client = 3\n", 6, "unknown key 'per_client'");
}
