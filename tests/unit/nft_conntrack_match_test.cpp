// Which conntrack entries belong to a deleted mapping (src/conntrack/conntrack.hpp belongs_to).
#include <doctest/doctest.h>

#include "conntrack/conntrack.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft_test;
using pcpd::ct::belongs_to;
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
