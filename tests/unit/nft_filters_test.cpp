// SPDX-License-Identifier: GPL-2.0-or-later
// FILTER (RFC 6887 §13.3) in the kernel: disjoint_filters() turns overlapping filters into
// disjoint prefixes (pipapo refuses overlapping elements) allowing exactly the same peers.
#include <doctest/doctest.h>

#include <random>

#include "nft/disjoint_filters.hpp"

using pcpd::nft::disjoint_filters;
using pcpd::wire::Filter;
using pcpd::wire::IpAddr;
using pcpd::wire::Prefix;

namespace {

Filter f(const char* prefix, std::uint16_t port) {
  auto p = Prefix::parse(prefix);
  REQUIRE(p.has_value());
  return Filter{p->length, port, p->addr};
}

bool allowed(const std::vector<Filter>& fs, const IpAddr& a, std::uint16_t port) {
  for (const auto& x : fs)
    if (Prefix{x.remote_addr, x.prefix_length}.contains(a) && (x.remote_port == 0 || x.remote_port == port))
      return true;
  return false;
}

bool overlap(const Filter& a, const Filter& b) {
  const auto& small = a.prefix_length >= b.prefix_length ? a : b;
  const auto& big = a.prefix_length >= b.prefix_length ? b : a;
  bool addr = Prefix{big.remote_addr, big.prefix_length}.contains(small.remote_addr);
  bool port = a.remote_port == 0 || b.remote_port == 0 || a.remote_port == b.remote_port;
  return addr && port;
}

void check_disjoint(const std::vector<Filter>& out) {
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = i + 1; j < out.size(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      CHECK_FALSE(overlap(out[i], out[j]));
    }
}

}  // namespace

TEST_CASE("R-FILTER nft: disjoint filters are kept as they are (masked, sorted)") {
  std::vector<Filter> in{f("198.51.100.0/24", 0), f("192.0.2.7/32", 80)};
  in[0].remote_addr = *IpAddr::parse("198.51.100.99");  // host bits set: masked
  auto out = disjoint_filters(in, true);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == f("192.0.2.7/32", 80));
  CHECK(out[1] == f("198.51.100.0/24", 0));
  CHECK(disjoint_filters(out, true) == out);
}

TEST_CASE("R-FILTER nft: duplicates and nested filters collapse") {
  auto out = disjoint_filters({f("198.51.100.0/24", 0), f("198.51.100.0/25", 0), f("198.51.100.0/24", 0),
                               f("198.51.100.7/32", 443)},
                              true);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == f("198.51.100.0/24", 0));
}

TEST_CASE("R-FILTER nft: a one-port prefix around an all-ports prefix is split around it") {
  auto out = disjoint_filters({f("198.51.100.0/24", 80), f("198.51.100.64/26", 0)}, true);
  // /26 all ports, and for port 80: /24 minus /26 = 198.51.100.128/25 + 198.51.100.0/26
  REQUIRE(out.size() == 3);
  CHECK(out[0] == f("198.51.100.0/26", 80));
  CHECK(out[1] == f("198.51.100.64/26", 0));
  CHECK(out[2] == f("198.51.100.128/25", 80));
  check_disjoint(out);
}

TEST_CASE("R-FILTER nft: random filter lists allow exactly the same peers, disjointly, idempotently") {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<Filter> in;
    int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      auto len = static_cast<std::uint8_t>(120 + rng() % 9);  // /24../32 in 198.51.100.0/24
      auto a = IpAddr::from_v4(0xc6336400u | (rng() & 0xffu));
      std::uint16_t port = (rng() % 3 == 0) ? 0 : static_cast<std::uint16_t>(80 + rng() % 2);
      in.push_back({len, port, a});
    }
    auto out = disjoint_filters(in, true);
    check_disjoint(out);
    CHECK(disjoint_filters(out, true) == out);
    for (std::uint32_t host = 0; host < 256; ++host)
      for (std::uint16_t port : {80, 81, 82}) {
        auto a = IpAddr::from_v4(0xc6336400u | host);
        CHECK(allowed(in, a, port) == allowed(out, a, port));
      }
  }
}

TEST_CASE("R-FILTER nft: IPv6 prefixes and range/prefix conversion") {
  auto out = disjoint_filters({f("2001:db8::/32", 22), f("2001:db8:1::/48", 0), f("::/0", 7)}, false);
  check_disjoint(out);
  CHECK(disjoint_filters(out, false) == out);
  auto p = Prefix::parse("2001:db8:1::/48");
  auto first = pcpd::nft::prefix_first(p->addr, 48);
  auto last = pcpd::nft::prefix_last(p->addr, 48);
  CHECK(last == *IpAddr::parse("2001:db8:1:ffff:ffff:ffff:ffff:ffff"));
  CHECK(pcpd::nft::range_prefix(first, last) == std::uint8_t{48});
  CHECK_FALSE(pcpd::nft::range_prefix(*IpAddr::parse("2001:db8::1"), last).has_value());
  CHECK(pcpd::nft::range_prefix(first, first) == std::uint8_t{128});
}
