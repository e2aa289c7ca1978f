// SPDX-License-Identifier: GPL-2.0-or-later
// Mappings for the restart-state tests (snapshot_test.cpp, journal_test.cpp): a field-by-field
// comparison, a sample covering every Mapping field, and a private temporary directory.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/mapping.hpp"

namespace pcpd::test {

using core::Millis;

inline wire::IpAddr ip(const char* s) { return *wire::IpAddr::parse(s); }

inline bool same(const core::Mapping& a, const core::Mapping& b) {
  return a.kind == b.kind && a.origin == b.origin && a.protocol == b.protocol && a.internal_addr == b.internal_addr &&
         a.internal_port == b.internal_port && a.external_addr == b.external_addr &&
         a.external_port == b.external_port && a.remote_addr == b.remote_addr && a.remote_port == b.remote_port &&
         a.client_addr == b.client_addr && a.nonce == b.nonce && a.expires == b.expires &&
         a.lifetime == b.lifetime && a.third_party == b.third_party && a.checkpoint == b.checkpoint &&
         a.filters == b.filters && a.description == b.description;
}

inline wire::Nonce nonce(std::uint8_t seed) {
  wire::Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(seed * 17 + i);
  return n;
}

// A MAP v4 with FILTER and DESCRIPTION, a PEER v6 with filters, description, third party and
// checkpoint, a NAT-PMP UDP MAP, an IPv6 pinhole for all protocols.
inline std::vector<core::Mapping> sample() {
  std::vector<core::Mapping> v;
  core::Mapping a;
  a.kind = core::MappingKind::Map;
  a.protocol = 6;
  a.internal_addr = ip("192.0.2.10");
  a.internal_port = 8080;
  a.external_addr = ip("203.0.113.1");
  a.external_port = 41234;
  a.client_addr = ip("192.0.2.10");
  a.nonce = nonce(1);
  a.expires = Millis(123'456'789);
  a.lifetime = 900;
  a.filters = {wire::Filter{128, 0, ip("203.0.113.100")}, wire::Filter{120, 443, ip("198.51.100.0")}};
  a.description = "lab web server";
  v.push_back(a);

  core::Mapping p;
  p.kind = core::MappingKind::Peer;
  p.origin = core::Origin::Pcp;
  p.protocol = 17;
  p.internal_addr = ip("2001:db8:1::10");
  p.internal_port = 40001;
  p.external_addr = ip("2001:db8:1::10");
  p.external_port = 40001;
  p.remote_addr = ip("2001:db8:ffff::9");
  p.remote_port = 9000;
  p.client_addr = ip("2001:db8:1::20");
  p.nonce = nonce(2);
  p.expires = Millis(987'654'321);
  p.lifetime = 0xfffffff0u;
  p.third_party = true;
  p.checkpoint = true;
  p.filters = {wire::Filter{64, 65535, ip("2001:db8:ffff::")}};
  p.description = std::string("caf\xc3\xa9 \x00 peer", 11) + std::string(1000, 'x');
  v.push_back(p);

  core::Mapping n;
  n.origin = core::Origin::NatPmp;
  n.protocol = 17;
  n.internal_addr = ip("192.0.2.11");
  n.internal_port = 5000;
  n.external_addr = ip("203.0.113.2");
  n.external_port = 5000;
  n.client_addr = ip("192.0.2.11");
  n.expires = Millis(-5);  // expired before kNow: stored as 0 remaining, read back as kNow
  n.lifetime = 7200;
  v.push_back(n);

  core::Mapping h;
  h.protocol = 0;
  h.internal_addr = ip("2001:db8:1::11");
  h.external_addr = ip("2001:db8:1::11");
  h.remote_addr = ip("::");
  h.client_addr = ip("2001:db8:1::11");
  h.nonce = nonce(3);
  h.expires = Millis(1);  // expired too
  v.push_back(h);
  return v;
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/pcpd-state-test.XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

}  // namespace pcpd::test
