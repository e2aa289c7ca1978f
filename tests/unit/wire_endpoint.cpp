// SPDX-License-Identifier: GPL-2.0-or-later
// wire::parse_endpoint: the ADDRESS:PORT text of pcpd.conf [[static]] and pcpctl delete.
#include <doctest/doctest.h>

#include "wire/ip_addr.hpp"

namespace pcpd::wire {

TEST_CASE("parse_endpoint: IPv4, bracketed IPv6, port 0-65535; anything ambiguous or malformed refused") {
  auto v4 = parse_endpoint("192.0.2.10:22");
  REQUIRE(v4);
  CHECK(v4->addr == *IpAddr::parse("192.0.2.10"));
  CHECK(v4->port == 22);
  auto v6 = parse_endpoint("[2001:db8::10]:8443");
  REQUIRE(v6);
  CHECK(v6->addr == *IpAddr::parse("2001:db8::10"));
  CHECK(v6->port == 8443);
  CHECK(parse_endpoint("192.0.2.10:0")->port == 0);  // an all-ports mapping's key
  CHECK(parse_endpoint("192.0.2.10:65535")->port == 65535);
  for (const char* bad : {"2001:db8::1:22", "192.0.2.10", "192.0.2.10:", ":22", "192.0.2.10:65536",
                          "192.0.2.10:-1", "192.0.2.10:2x", "[192.0.2.10]:22", "[2001:db8::1]22",
                          "[2001:db8::1]", "host:22", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_endpoint(bad));
  }
}

}  // namespace pcpd::wire
