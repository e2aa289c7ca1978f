// SPDX-License-Identifier: GPL-2.0-or-later
// Static mappings (RFC 6887 §11.3, §15; R-MAP-5, R-MAP-6, R-LIFE-5, R-LIFE-6): Server::set_static
// and sync_static, and how requests meet a static mapping.
#include <doctest/doctest.h>

#include <algorithm>

#include "core_fixture.hpp"

namespace pcpd::test {
namespace {

Mapping forward(std::string_view internal, std::uint16_t port, std::uint16_t external_port,
                std::uint8_t protocol = kTcp) {
  Mapping m;
  m.origin = core::Origin::Static;
  m.protocol = protocol;
  m.internal_addr = ip(internal);
  m.internal_port = port;
  m.external_addr = IpAddr::v4_any();
  m.external_port = external_port;
  return m;
}

std::optional<Mapping> find_map(const core::Server& s, std::string_view internal, std::uint16_t port,
                                std::uint8_t protocol = kTcp) {
  return s.find(core::MappingKind::Map, ip(internal), protocol, port, IpAddr{}, 0);
}

}  // namespace

TEST_CASE("static: installed on the first external address, no expiry, reported with lifetime 2^32-1") {
  Fixture f;
  Mapping nas = forward("192.0.2.20", 22, 2222);
  nas.description = "ssh to the nas";
  const auto r = f.server->set_static({nas});
  CHECK_FALSE(r.failed);
  CHECK(r.added == 1);
  CHECK(f.dp.calls() == 1);
  const auto m = find_map(*f.server, "192.0.2.20", 22);
  REQUIRE(m);
  CHECK(m->is_static());
  CHECK(m->external_addr == ip("203.0.113.1"));
  CHECK(m->external_port == 2222);
  CHECK(m->expires == core::kNever);
  CHECK(f.server->next_expiry() == core::Millis::max());  // never due
  f.clock.advance(core::Millis(100LL * 86400 * 1000));
  CHECK(f.server->expire() == 0);

  // R-MAP-6: a MAP for its internal endpoint gets its external endpoint and 2^32-1, whatever
  // the nonce and suggestion; nothing is applied.
  const std::size_t calls = f.dp.calls();
  const Reply rep = f.map({.client = ip("192.0.2.20"), .internal_port = 22, .nonce = nonce(9), .suggested_port = 4000});
  REQUIRE(rep.kind == Reply::Kind::Success);
  CHECK(rep.response.lifetime == core::kStaticLifetime);
  CHECK(map_body(rep).external_port == 2222);
  CHECK(map_body(rep).external_addr == ip("203.0.113.1"));
  CHECK(f.dp.calls() == calls);
  // Sync again with the same set: nothing to do, no transaction.
  const auto again = f.server->sync_static();
  CHECK(again.kept == 1);
  CHECK(f.dp.calls() == calls);
}

TEST_CASE("static: a request can neither take its external port nor delete it") {
  Fixture f;
  REQUIRE_FALSE(f.server->set_static({forward("192.0.2.20", 22, 2222)}).failed);
  // R-MAP-5: another host suggesting the static port gets another one; PREFER_FAILURE gets
  // CANNOT_PROVIDE_EXTERNAL.
  const Reply other = f.map({.client = ip("192.0.2.10"), .internal_port = 2222, .suggested_port = 2222,
                             .suggested_addr = ip("203.0.113.1")});
  REQUIRE(other.kind == Reply::Kind::Success);
  CHECK(map_body(other).external_port != 2222);
  Request pf = map_req({.client = ip("192.0.2.11"), .internal_port = 2222, .suggested_port = 2222,
                        .suggested_addr = ip("203.0.113.1")});
  pf.options.prefer_failure = true;
  CHECK(f.send(pf).response.result == wire::ResultCode::CannotProvideExternal);
  // R-LIFE-5: a delete of it is NOT_AUTHORIZED; R-LIFE-6: the delete-all form leaves it.
  const Reply del = f.map({.client = ip("192.0.2.20"), .internal_port = 22, .lifetime = 0});
  CHECK(del.response.result == wire::ResultCode::NotAuthorized);
  const Reply all = f.map({.client = ip("192.0.2.20"), .protocol = 0, .internal_port = 0, .lifetime = 0});
  CHECK(all.response.result == wire::ResultCode::Success);
  CHECK(find_map(*f.server, "192.0.2.20", 22));
  // The operator's commands leave it to the configuration too.
  CHECK(f.server->remove_mapping(core::MappingKind::Map, ip("192.0.2.20"), kTcp, 22, IpAddr{}, 0) ==
        core::Server::kStaticRefused);
  CHECK(f.server->remove_client(ip("192.0.2.20")) == 0u);
  CHECK(find_map(*f.server, "192.0.2.20", 22));
}

TEST_CASE("static: a dynamic mapping in the way is displaced in the same transaction; an identical one becomes static") {
  Fixture f;
  // 192.0.2.10 holds external port 2222; 192.0.2.20:80 has its own dynamic mapping on 8080.
  REQUIRE(f.map({.client = ip("192.0.2.10"), .internal_port = 2222, .suggested_port = 2222}).kind == Reply::Kind::Success);
  REQUIRE(map_body(f.map({.client = ip("192.0.2.20"), .internal_port = 80, .suggested_port = 8080})).external_port == 8080);
  REQUIRE(find_map(*f.server, "192.0.2.10", 2222)->external_port == 2222);
  const std::size_t calls = f.dp.calls();

  const auto r = f.server->set_static({forward("192.0.2.20", 22, 2222), forward("192.0.2.20", 80, 8080)});
  CHECK_FALSE(r.failed);
  CHECK(f.dp.calls() == calls + 1);
  REQUIRE(r.displaced.size() == 1);
  CHECK(r.displaced[0].internal_addr == ip("192.0.2.10"));
  CHECK(r.added == 2);
  CHECK_FALSE(find_map(*f.server, "192.0.2.10", 2222));
  CHECK(find_map(*f.server, "192.0.2.20", 22)->is_static());
  const auto web = find_map(*f.server, "192.0.2.20", 80);
  REQUIRE(web);
  CHECK(web->is_static());
  CHECK(web->external_port == 8080);
  // The displaced one goes first (its connections flushed), then the adds and the replace.
  const core::ChangeSet& cs = f.dp.last();
  REQUIRE(cs.changes.size() == 3);
  CHECK(cs.changes[0].op == core::Change::Op::Remove);
  CHECK(cs.changes[0].flush_conntrack);
}

TEST_CASE("static: removed from the configuration, changed, refused by the datapath") {
  Fixture f;
  REQUIRE_FALSE(f.server->set_static({forward("192.0.2.20", 22, 2222), forward("192.0.2.21", 25, 25)}).failed);
  // Refused: nothing changes, the table still holds the old set.
  f.dp.fail_nth(1);
  const auto refused = f.server->set_static({forward("192.0.2.20", 22, 2223)});
  CHECK(refused.failed);
  CHECK(find_map(*f.server, "192.0.2.20", 22)->external_port == 2222);
  CHECK(find_map(*f.server, "192.0.2.21", 25));
  // Retried (the daemon's datapath timer): the new set.
  const auto r = f.server->sync_static();
  CHECK_FALSE(r.failed);
  CHECK(r.removed == 1);
  CHECK(r.changed == 1);
  CHECK(r.added == 0);
  CHECK(find_map(*f.server, "192.0.2.20", 22)->external_port == 2223);
  CHECK_FALSE(find_map(*f.server, "192.0.2.21", 25));
  // The old external port is free again.
  CHECK(map_body(f.map({.client = ip("192.0.2.10"), .internal_port = 2222, .suggested_port = 2222})).external_port == 2222);
}

TEST_CASE("static: NAT44 waits for an external address, then follows it; IPv6 is a pinhole") {
  Policy none = default_policy();
  none.external_v4.clear();
  Fixture f(none);
  Mapping v6;
  v6.origin = core::Origin::Static;
  v6.protocol = kTcp;
  v6.internal_addr = ip("2001:db8:1::20");
  v6.internal_port = 443;
  const auto r = f.server->set_static({forward("192.0.2.20", 22, 2222), v6});
  CHECK(r.waiting == 1);
  CHECK(r.added == 1);
  const auto pin = f.server->find(core::MappingKind::Map, ip("2001:db8:1::20"), kTcp, 443, IpAddr{}, 0);
  REQUIRE(pin);
  CHECK(pin->external_addr == ip("2001:db8:1::20"));
  CHECK(pin->external_port == 443);
  CHECK_FALSE(find_map(*f.server, "192.0.2.20", 22));

  // DHCP gives an address: the same set is held again.
  f.server->set_policy(default_policy());
  CHECK(f.server->sync_static().added == 1);
  CHECK(find_map(*f.server, "192.0.2.20", 22)->external_addr == ip("203.0.113.1"));
  // It moves with the address, keeping its port (readdress), and stays there.
  Policy moved = default_policy();
  moved.external_v4 = {ip("203.0.113.5")};
  f.server->set_policy(moved);
  CHECK(f.server->readdress().moved.size() == 1);
  const auto after = f.server->sync_static();
  CHECK(after.kept == 2);
  CHECK(find_map(*f.server, "192.0.2.20", 22)->external_addr == ip("203.0.113.5"));
  CHECK(find_map(*f.server, "192.0.2.20", 22)->external_port == 2222);
}

TEST_CASE("static: a PEER of the same internal endpoint shares its external endpoint") {
  Fixture f;
  REQUIRE_FALSE(f.server->set_static({forward("192.0.2.20", 5000, 6000)}).failed);
  const Reply p = f.peer({.client = ip("192.0.2.20"), .internal_port = 5000});
  REQUIRE(p.kind == Reply::Kind::Success);
  CHECK(peer_body(p).external_port == 6000);  // R-MAP-12
  // Still kept when synced again: the PEER shares the static binding.
  const auto r = f.server->sync_static();
  CHECK(r.kept == 1);
  CHECK(r.displaced.empty());
}

}  // namespace pcpd::test

namespace pcpd::test {

TEST_CASE("static: an all-ports mapping on the configured address and protocol is displaced") {
  Policy p = default_policy();
  p.allow_all_ports = true;
  Fixture f(p);
  REQUIRE(f.map({.client = ip("192.0.2.50"), .internal_port = 0}).kind == Reply::Kind::Success);
  const auto r = f.server->set_static({forward("192.0.2.20", 22, 2222)});
  CHECK_FALSE(r.failed);
  REQUIRE(r.displaced.size() == 1);
  CHECK(r.displaced[0].internal_port == 0);
  CHECK(find_map(*f.server, "192.0.2.20", 22));
}

}  // namespace pcpd::test
