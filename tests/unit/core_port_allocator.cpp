// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core PortAllocator and MappingTable internals.
#include <doctest/doctest.h>

#include <set>

#include "core/mapping_table.hpp"
#include "core/port_allocator.hpp"
#include "unit/core_fixture.hpp"

using pcpd::core::PortAllocator;

TEST_CASE("PortAllocator finds free ports from the start, wraps, and skips 5350/5351 (R-MAP-15)") {
  PortAllocator a;
  CHECK(a.find_free(1024, 65535, 40000) == 40000);
  a.mark(40000);
  CHECK(a.find_free(1024, 65535, 40000) == 40001);
  a.mark(65535);
  CHECK(a.find_free(65535, 65535, 65535) == std::nullopt);
  CHECK(a.find_free(65534, 65535, 65535) == 65534);  // wrapped
  CHECK(a.find_free(5350, 5351, 5350) == std::nullopt);
  CHECK(a.find_free(5340, 5360, 5349) == 5349);
  a.mark(5349);
  CHECK(a.find_free(5340, 5360, 5349) == 5352);
  a.unmark(40000);
  CHECK_FALSE(a.used(40000));
  CHECK(a.used_count() == 2);
}

TEST_CASE("PortAllocator hands out every port of a range exactly once") {
  PortAllocator a;
  std::set<std::uint16_t> got;
  for (int i = 0; i < 300; ++i) {
    auto p = a.find_free(1000, 1299, static_cast<std::uint16_t>(1000 + (i * 97) % 300));
    REQUIRE(p.has_value());
    CHECK(*p >= 1000);
    CHECK(*p <= 1299);
    CHECK(got.insert(*p).second);
    a.mark(*p);
  }
  CHECK(a.find_free(1000, 1299, 1100) == std::nullopt);
}

TEST_CASE("MappingTable shares one binding per internal endpoint and frees the port with the last user") {
  using namespace pcpd::test;
  pcpd::core::MappingTable t;
  Mapping map;
  map.kind = pcpd::core::MappingKind::Map;
  map.protocol = kTcp;
  map.internal_addr = ip("192.0.2.10");
  map.internal_port = 80;
  map.external_addr = ip("203.0.113.1");
  map.external_port = 30000;
  map.client_addr = map.internal_addr;
  map.expires = pcpd::core::Millis(5000);
  Mapping peer = map;
  peer.kind = pcpd::core::MappingKind::Peer;
  peer.remote_addr = ip("198.51.100.7");
  peer.remote_port = 443;
  peer.expires = pcpd::core::Millis(3000);
  t.insert(map);
  CHECK_FALSE(t.conflicts(peer));
  t.insert(peer);
  const pcpd::core::EndpointKey ext{ip("203.0.113.1"), kTcp, 30000};
  CHECK_FALSE(t.external_free(ext));
  CHECK(t.binding({map.internal_addr, kTcp, 80})->users == 2);
  CHECK(t.count_for_internal(map.internal_addr) == 2);
  CHECK(t.next_expiry() == pcpd::core::Millis(3000));
  CHECK(t.due(pcpd::core::Millis(4000)).size() == 1);
  t.erase(map);
  CHECK_FALSE(t.external_free(ext));
  t.erase(peer);
  CHECK(t.external_free(ext));
  CHECK(t.size() == 0);
  CHECK(t.next_expiry() == pcpd::core::Millis::max());
  CHECK(t.count_for_internal(map.internal_addr) == 0);
}
