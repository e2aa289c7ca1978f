// SPDX-License-Identifier: GPL-2.0-or-later
// All-ports MAP mappings (RFC 6887 §11.1, §11.3; R-MAP-3, R-LIFE-6) with allow_all_ports: an
// "exposed host" gets every port of one protocol, granted in full or refused.
#include <doctest/doctest.h>

#include "core_fixture.hpp"

namespace pcpd::test {
namespace {

using wire::ResultCode;

Policy exposed(std::vector<IpAddr> pool = {ip("203.0.113.1")}) {
  Policy p = default_policy();
  p.allow_all_ports = true;
  p.external_v4 = std::move(pool);
  return p;
}

}  // namespace

TEST_CASE("all ports: NAT44 takes the whole address for the protocol; refresh, delete by protocol P port 0") {
  Fixture f(exposed());
  const Reply r = f.map({.client = ip("192.0.2.50"), .internal_port = 0});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).internal_port == 0);
  CHECK(map_body(r).external_port == 0);  // every port, kept as it is
  CHECK(map_body(r).external_addr == ip("203.0.113.1"));
  const core::ChangeSet& cs = f.dp.last();
  REQUIRE(cs.changes.size() == 1);
  CHECK(cs.changes[0].mapping.internal_port == 0);
  CHECK(cs.changes[0].mapping.external_port == 0);

  // While it holds them, no other TCP binding gets a port of that address: NO_RESOURCES with a
  // single address (R-QUOTA-2: nothing left); UDP is another pool and still free.
  CHECK(f.map({.client = ip("192.0.2.10")}).response.result == ResultCode::NoResources);
  CHECK(f.peer({.client = ip("192.0.2.10")}).response.result == ResultCode::NoResources);
  CHECK(f.map({.client = ip("192.0.2.10"), .protocol = kUdp}).kind == Reply::Kind::Success);
  // A second all-ports TCP mapping cannot be granted in full (R-MAP-3).
  CHECK(f.map({.client = ip("192.0.2.51"), .internal_port = 0}).response.result == ResultCode::UnsuppProtocol);

  // Refresh with the same nonce: the same mapping (R-MAP-6); another nonce: NOT_AUTHORIZED.
  CHECK(f.map({.client = ip("192.0.2.50"), .internal_port = 0, .lifetime = 600}).kind == Reply::Kind::Success);
  CHECK(f.map({.client = ip("192.0.2.50"), .internal_port = 0, .nonce = nonce(40)}).response.result ==
        ResultCode::NotAuthorized);
  // R-LIFE-6 (b): protocol P with port 0 deletes the all-ports mapping for P.
  const Reply del = f.map({.client = ip("192.0.2.50"), .internal_port = 0, .lifetime = 0});
  CHECK(del.response.result == ResultCode::Success);
  CHECK_FALSE(f.server->find(core::MappingKind::Map, ip("192.0.2.50"), kTcp, 0, IpAddr{}, 0));
  // The address's TCP ports are free again.
  CHECK(f.map({.client = ip("192.0.2.10")}).kind == Reply::Kind::Success);
}

TEST_CASE("all ports: granted only where no binding uses the protocol; another address of the pool") {
  Fixture f(exposed({ip("203.0.113.1"), ip("203.0.113.2")}));
  // Bindings on both addresses' TCP pools first: then no address can be given in full.
  REQUIRE(f.map({.client = ip("192.0.2.10"), .suggested_port = 4000, .suggested_addr = ip("203.0.113.1")}).kind ==
          Reply::Kind::Success);
  const Reply r = f.map({.client = ip("192.0.2.50"), .internal_port = 0});
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(map_body(r).external_addr == ip("203.0.113.2"));
  // PREFER_FAILURE naming the busy address: CANNOT_PROVIDE_EXTERNAL (R-PF-2).
  Request pf = map_req({.client = ip("192.0.2.51"), .internal_port = 0, .suggested_port = 0,
                        .suggested_addr = ip("203.0.113.1")});
  pf.options.prefer_failure = true;
  pf.body = [&] {
    auto b = std::get<wire::MapBody>(pf.body);
    b.external_port = 0;
    return b;
  }();
  // RFC 6887 §13.2 requires a full suggestion with PREFER_FAILURE: port 0 is MALFORMED_OPTION.
  CHECK(f.send(pf).response.result == ResultCode::MalformedOption);
  CHECK(f.map({.client = ip("192.0.2.51"), .internal_port = 0}).response.result == ResultCode::UnsuppProtocol);
}

TEST_CASE("all ports: IPv6 is an all-ports pinhole; FILTER, NAT-PMP and CHECKPOINT_REQUIRED are not for it") {
  Fixture f(exposed());
  const Reply v6 = f.map({.client = ip("2001:db8:1::50"), .internal_port = 0});
  REQUIRE(v6.kind == Reply::Kind::Success);
  CHECK(map_body(v6).external_addr == ip("2001:db8:1::50"));
  CHECK(map_body(v6).external_port == 0);
  // FILTER: the filter sets are keyed by one port; cannot be granted as asked (R-MAP-3).
  Request filtered = map_req({.client = ip("192.0.2.50"), .internal_port = 0});
  filtered.options.filters[0] = wire::Filter{96 + 24, 0, ip("198.51.100.0")};
  filtered.options.filter_count = 1;
  CHECK(f.send(filtered).response.result == ResultCode::UnsuppProtocol);
  // CHECKPOINT_REQUIRED: served, without the option (no election keys for every port).
  const Reply ck = f.send(with_ckpt(map_req({.client = ip("192.0.2.50"), .internal_port = 0})));
  REQUIRE(ck.kind == Reply::Kind::Success);
  CHECK_FALSE(ck.response.options.checkpoint_required);
  CHECK_FALSE(f.dp.last().changes[0].mapping.checkpoint);
}

TEST_CASE("all ports: a NAT-PMP client's companion port stays its own (RFC 6886 §3.3)") {
  Fixture f(exposed());
  // Another host's NAT-PMP TCP mapping on the only address reserves its UDP companion port.
  core::Mapping pmp;
  pmp.origin = core::Origin::NatPmp;
  pmp.protocol = kTcp;
  pmp.internal_addr = ip("192.0.2.10");
  pmp.internal_port = 6000;
  pmp.client_addr = pmp.internal_addr;
  pmp.external_addr = ip("203.0.113.1");
  pmp.external_port = 6000;
  pmp.lifetime = 3600;
  pmp.expires = core::Millis(3'600'000);
  REQUIRE(f.server->restore({pmp}) == 1);
  CHECK(f.map({.client = ip("192.0.2.50"), .protocol = kUdp, .internal_port = 0}).response.result ==
        ResultCode::UnsuppProtocol);
  // The NAT-PMP client itself may.
  CHECK(f.map({.client = ip("192.0.2.10"), .protocol = kUdp, .internal_port = 0}).kind == Reply::Kind::Success);
}

TEST_CASE("all ports: the WAN address changes, the mapping moves whole or not at all") {
  Fixture f(exposed());
  REQUIRE(f.map({.client = ip("192.0.2.50"), .internal_port = 0}).kind == Reply::Kind::Success);
  f.server->set_policy(exposed({ip("203.0.113.5")}));
  const auto r = f.server->readdress();
  REQUIRE(r.moved.size() == 1);
  CHECK(r.moved[0].external_addr == ip("203.0.113.5"));
  CHECK(r.moved[0].external_port == 0);
  // A single-port binding on the new address now finds the pool taken.
  CHECK(f.map({.client = ip("192.0.2.10")}).response.result == ResultCode::NoResources);
}

}  // namespace pcpd::test
