// SPDX-License-Identifier: GPL-2.0-or-later
// Which conntrack entries belong to a deleted mapping (src/conntrack/flow_match.hpp belongs_to).
#include <doctest/doctest.h>

#include "conntrack/flow_match.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft_test;
using pcpd::ct::belongs_to;
using pcpd::ct::checkpoint_match;
using pcpd::ct::FlowTuple;

TEST_CASE("conntrack match: MAP NAT44 inbound and outbound through its SNAT") {
  auto m = map4(8080, 80);  // 203.0.113.1:8080 -> 192.0.2.10:80 tcp
  FlowTuple in_orig{ip("198.51.100.5"), ip("203.0.113.1"), 40000, 8080};
  FlowTuple in_reply{ip("192.0.2.10"), ip("198.51.100.5"), 80, 40000};
  CHECK(belongs_to(m, 6, in_orig, in_reply));
  CHECK_FALSE(belongs_to(m, 17, in_orig, in_reply));  // other protocol
  FlowTuple other_reply{ip("192.0.2.11"), ip("198.51.100.5"), 80, 40000};
  CHECK_FALSE(belongs_to(m, 6, in_orig, other_reply));  // DNATed elsewhere
  FlowTuple out_orig{ip("192.0.2.10"), ip("198.51.100.5"), 80, 443};
  FlowTuple out_reply{ip("198.51.100.5"), ip("203.0.113.1"), 443, 8080};
  CHECK(belongs_to(m, 6, out_orig, out_reply));
  FlowTuple masq_reply{ip("198.51.100.5"), ip("203.0.113.1"), 443, 31000};
  CHECK_FALSE(belongs_to(m, 6, out_orig, masq_reply));  // translated by someone else
}

TEST_CASE("conntrack match: IPv6 pinhole and PEER") {
  auto p = pin6(5000);
  FlowTuple orig{ip("2001:db8:ff::1"), ip("2001:db8:1::10"), 1234, 5000};
  CHECK(belongs_to(p, 17, orig, {}));
  orig.dst_port = 5001;
  CHECK_FALSE(belongs_to(p, 17, orig, {}));
  auto q = peer4(5555);
  FlowTuple qo{ip("192.0.2.10"), ip("198.51.100.20"), 5555, 443};
  CHECK(belongs_to(q, 6, qo, {}));
  qo.dst_port = 444;
  CHECK_FALSE(belongs_to(q, 6, qo, {}));
}

TEST_CASE("conntrack checkpoint match: the connections the pre_elect rules elect") {
  auto m = map4(8080, 80);  // 203.0.113.1:8080 -> 192.0.2.10:80 tcp
  CHECK(checkpoint_match(m, 6, {ip("198.51.100.5"), ip("203.0.113.1"), 40000, 8080}));   // inbound
  CHECK(checkpoint_match(m, 6, {ip("192.0.2.10"), ip("198.51.100.5"), 80, 443}));        // outbound
  CHECK_FALSE(checkpoint_match(m, 17, {ip("198.51.100.5"), ip("203.0.113.1"), 40000, 8080}));
  CHECK_FALSE(checkpoint_match(m, 6, {ip("198.51.100.5"), ip("203.0.113.1"), 40000, 8081}));
  CHECK_FALSE(checkpoint_match(m, 6, {ip("192.0.2.10"), ip("198.51.100.5"), 81, 443}));
  CHECK_FALSE(checkpoint_match(m, 6, {ip("198.51.100.5"), ip("192.0.2.10"), 40000, 80}));  // to the internal ep

  auto p = pin6(5000);  // udp 2001:db8:1::10:5000
  CHECK(checkpoint_match(p, 17, {ip("2001:db8:ff::1"), ip("2001:db8:1::10"), 1234, 5000}));
  CHECK(checkpoint_match(p, 17, {ip("2001:db8:1::10"), ip("2001:db8:ff::1"), 5000, 53}));
  CHECK_FALSE(checkpoint_match(p, 17, {ip("2001:db8:1::10"), ip("2001:db8:ff::1"), 5001, 53}));
  CHECK_FALSE(checkpoint_match(p, 6, {ip("2001:db8:ff::1"), ip("2001:db8:1::10"), 1234, 5000}));

  auto q = peer4(5555);  // 192.0.2.10:5555 -> 198.51.100.20:443 tcp
  CHECK(checkpoint_match(q, 6, {ip("192.0.2.10"), ip("198.51.100.20"), 5555, 443}));
  CHECK_FALSE(checkpoint_match(q, 6, {ip("192.0.2.10"), ip("198.51.100.20"), 5555, 444}));
  CHECK_FALSE(checkpoint_match(q, 6, {ip("198.51.100.20"), ip("192.0.2.10"), 443, 5555}));
  auto r = peer6(5556);
  CHECK(checkpoint_match(r, 6, {ip("2001:db8:1::10"), ip("2001:db8:ff::20"), 5556, 443}));
  CHECK_FALSE(checkpoint_match(r, 6, {ip("2001:db8:1::10"), ip("2001:db8:ff::21"), 5556, 443}));
}
