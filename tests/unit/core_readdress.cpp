// SPDX-License-Identifier: GPL-2.0-or-later
// Server::readdress and Server::encode_mapping_update: the WAN address changed (RFC 6887 §14.2
// Mapping Update, R-ANN-7).
#include <doctest/doctest.h>

#include <algorithm>

#include "core_fixture.hpp"
#include "wire/codec.hpp"

namespace pcpd::test {
namespace {

Policy moved_to(Policy p, std::vector<IpAddr> pool) {
  p.external_v4 = std::move(pool);
  return p;
}

std::optional<Mapping> find_map(const core::Server& s, const IpAddr& internal, std::uint16_t port,
                                std::uint8_t protocol = kTcp) {
  return s.find(core::MappingKind::Map, internal, protocol, port, IpAddr{}, 0);
}

}  // namespace

TEST_CASE("readdress: every NAT44 mapping moves to the new address in one transaction, ports kept") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  REQUIRE(f.peer({.internal_port = 8080}).kind == Reply::Kind::Success);  // same endpoint as the MAP
  REQUIRE(f.map({.client = ip("192.0.2.11"), .internal_port = 9000}).kind == Reply::Kind::Success);
  const auto before = find_map(*f.server, ip("192.0.2.10"), 8080);
  REQUIRE(before);
  const std::size_t calls = f.dp.calls();

  f.server->set_policy(moved_to(default_policy(), {ip("203.0.113.5")}));
  const core::Server::Readdress r = f.server->readdress();

  CHECK_FALSE(r.failed);
  CHECK(r.moved.size() == 3);
  CHECK(r.port_kept == 3);
  CHECK(r.no_port == 0);
  CHECK(f.dp.calls() == calls + 1);  // one transaction
  // Removes first, then adds: the kernel's keys contain the external endpoint.
  const core::ChangeSet& cs = f.dp.last();
  REQUIRE(cs.changes.size() == 6);
  CHECK(std::all_of(cs.changes.begin(), cs.changes.begin() + 3,
                    [](const core::Change& c) { return c.op == core::Change::Op::Remove; }));
  // Their connections were translated to the gone address: flushed with them.
  CHECK(std::all_of(cs.changes.begin(), cs.changes.begin() + 3,
                    [](const core::Change& c) { return c.flush_conntrack; }));
  CHECK(std::all_of(cs.changes.begin() + 3, cs.changes.end(),
                    [](const core::Change& c) { return c.op == core::Change::Op::Add; }));
  for (const Mapping& m : f.server->mappings()) CHECK(m.external_addr == ip("203.0.113.5"));
  const auto after = find_map(*f.server, ip("192.0.2.10"), 8080);
  REQUIRE(after);
  CHECK(after->external_port == before->external_port);
  CHECK(after->nonce == before->nonce);
  CHECK(after->expires == before->expires);
  // R-MAP-12: the PEER of that endpoint shares the MAP's new external endpoint.
  const auto peer = f.server->find(core::MappingKind::Peer, ip("192.0.2.10"), kTcp, 8080,
                                   ip("198.51.100.7"), 443);
  REQUIRE(peer);
  CHECK(peer->external_addr == after->external_addr);
  CHECK(peer->external_port == after->external_port);
  CHECK(f.server->stats().readdressed == 3);

  // A refresh with the old nonce keeps the mapping and now reports the new address.
  const Reply refresh = f.map({});
  REQUIRE(refresh.kind == Reply::Kind::Success);
  CHECK(map_body(refresh).external_addr == ip("203.0.113.5"));
  CHECK(map_body(refresh).external_port == before->external_port);
}

TEST_CASE("readdress: a port taken on the new address gives another free one, never a clash") {
  Policy two = moved_to(default_policy(), {ip("203.0.113.1"), ip("203.0.113.2")});
  Fixture f(two);
  // Find two hosts that pool pairing puts on different addresses, both asking for port 8080.
  REQUIRE(f.map({.client = ip("192.0.2.10"), .internal_port = 8080}).kind == Reply::Kind::Success);
  IpAddr other{};
  for (int i = 11; i < 40 && other.is_unspecified(); ++i) {
    const IpAddr c = ip("192.0.2." + std::to_string(i));
    const Reply r = f.map({.client = c, .internal_port = 8080});
    REQUIRE(r.kind == Reply::Kind::Success);
    if (map_body(r).external_addr != find_map(*f.server, ip("192.0.2.10"), 8080)->external_addr) other = c;
  }
  REQUIRE_FALSE(other.is_unspecified());
  const IpAddr stays = find_map(*f.server, other, 8080)->external_addr;
  const IpAddr gone = find_map(*f.server, ip("192.0.2.10"), 8080)->external_addr;

  f.server->set_policy(moved_to(two, {stays}));
  const auto r = f.server->readdress();
  CHECK_FALSE(r.failed);
  CHECK(r.moved.size() >= 1);
  // Every IPv4 mapping is on the remaining address now, each on its own port.
  std::vector<std::uint16_t> ports;
  for (const Mapping& m : f.server->mappings()) {
    CHECK(m.external_addr == stays);
    CHECK(m.external_addr != gone);
    ports.push_back(m.external_port);
  }
  std::sort(ports.begin(), ports.end());
  CHECK(std::adjacent_find(ports.begin(), ports.end()) == ports.end());
  CHECK(find_map(*f.server, other, 8080)->external_port == 8080);  // the one that stayed keeps it
}

TEST_CASE("readdress: no address at all keeps the mappings, requests get NETWORK_FAILURE") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  const std::size_t calls = f.dp.calls();
  f.server->set_policy(moved_to(default_policy(), {}));
  const auto r = f.server->readdress();
  CHECK(r.moved.empty());
  CHECK(r.waiting == 1);
  CHECK(f.dp.calls() == calls);  // nothing applied
  CHECK(f.server->mapping_count() == 1);
  // RFC 6887 §7.4: NETWORK_FAILURE while there is no external address.
  const Reply again = f.map({});
  CHECK(again.kind == Reply::Kind::Error);
  CHECK(again.response.result == ResultCode::NetworkFailure);
  CHECK(f.server->mapping_count() == 1);

  // The same address back: nothing to move, the mapping is as it was.
  f.server->set_policy(default_policy());
  const auto back = f.server->readdress();
  CHECK(back.moved.empty());
  CHECK(f.dp.calls() == calls);
  CHECK(f.map({}).kind == Reply::Kind::Success);
}

TEST_CASE("readdress: a refused transaction moves nothing (all or nothing)") {
  Fixture f;
  REQUIRE(f.map({}).kind == Reply::Kind::Success);
  REQUIRE(f.map({.internal_port = 8081}).kind == Reply::Kind::Success);
  f.server->set_policy(moved_to(default_policy(), {ip("203.0.113.5")}));
  f.dp.fail_nth(1);
  const auto r = f.server->readdress();
  CHECK(r.failed);
  CHECK(r.moved.empty());
  for (const Mapping& m : f.server->mappings()) CHECK(m.external_addr == ip("203.0.113.1"));
  CHECK(f.server->stats().readdressed == 0);
  // Tried again, it goes through.
  const auto again = f.server->readdress();
  CHECK_FALSE(again.failed);
  CHECK(again.moved.size() == 2);
}

TEST_CASE("readdress: IPv6 pinholes do not move") {
  Fixture f;
  REQUIRE(f.map({.client = ip("2001:db8::10")}).kind == Reply::Kind::Success);
  f.server->set_policy(moved_to(default_policy(), {ip("203.0.113.5")}));
  const auto r = f.server->readdress();
  CHECK(r.moved.empty());
  CHECK(find_map(*f.server, ip("2001:db8::10"), 8080)->external_addr == ip("2001:db8::10"));
}

TEST_CASE("a mapping remembers where its last response went (Mapping Update's destination)") {
  Fixture f;
  REQUIRE(f.server->handle(map_req({}), Context{ip("192.0.2.10"), 40001, ip("192.0.2.1")}).kind ==
          Reply::Kind::Success);
  auto m = find_map(*f.server, ip("192.0.2.10"), 8080);
  REQUIRE(m);
  CHECK(m->reply_port == 40001);
  CHECK(f.server->local_address(m->reply_local) == ip("192.0.2.1"));
  // The refresh came from another port, to the VRRP address: the next update goes there.
  REQUIRE(f.server->handle(map_req({}), Context{ip("192.0.2.10"), 40002, ip("192.0.2.254")}).kind ==
          Reply::Kind::Success);
  m = find_map(*f.server, ip("192.0.2.10"), 8080);
  CHECK(m->reply_port == 40002);
  CHECK(f.server->local_address(m->reply_local) == ip("192.0.2.254"));
  CHECK_FALSE(f.server->local_address(0));
}

TEST_CASE("encode_mapping_update: the response a refresh would get, THIRD_PARTY and FILTER, no optional option") {
  Policy p = default_policy();
  p.third_party = true;
  p.third_party_allow = {*wire::Prefix::parse("192.0.2.0/28")};
  Fixture f(p);
  Request req = map_req({.internal_port = 7000});
  req.options.third_party = ip("192.0.2.50");
  req.options.filters[0] = wire::Filter{128, 443, ip("198.51.100.9")};
  req.options.filter_count = 1;
  req.options.description = "game server";
  req.options.checkpoint_required = true;
  REQUIRE(f.send(req).kind == Reply::Kind::Success);
  f.server->set_policy(moved_to(p, {ip("203.0.113.5")}));
  const auto r = f.server->readdress();
  REQUIRE(r.moved.size() == 1);
  f.clock.advance(core::Millis(10'000));

  std::array<std::uint8_t, wire::kMaxMessageSize> out{};
  const std::size_t len = f.server->encode_mapping_update(r.moved[0], out);
  REQUIRE(len > 0);
  const auto decoded = wire::decode_response({out.data(), len});
  REQUIRE(std::holds_alternative<wire::Response>(decoded));
  const auto& resp = std::get<wire::Response>(decoded);
  CHECK(resp.opcode == wire::Opcode::Map);
  CHECK(resp.result == ResultCode::Success);
  CHECK(resp.lifetime == 3600 - 10);
  CHECK(resp.epoch == f.server->epoch());
  const auto& body = std::get<wire::MapBody>(resp.body);
  CHECK(body.nonce == nonce(1));
  CHECK(body.internal_port == 7000);
  CHECK(body.external_addr == ip("203.0.113.5"));
  CHECK(body.external_port == r.moved[0].external_port);
  REQUIRE(resp.options.third_party);  // R-ANN-7: MUST
  CHECK(*resp.options.third_party == ip("192.0.2.50"));
  REQUIRE(resp.options.filter_count == 1);
  CHECK(resp.options.filters[0].remote_port == 443);
  CHECK_FALSE(resp.options.description);           // optional to process: left out
  CHECK_FALSE(resp.options.checkpoint_required);
}

}  // namespace pcpd::test

namespace pcpd::test {

TEST_CASE("readdress: a moved mapping does not take another host's NAT-PMP companion port") {
  Policy two = default_policy();
  two.external_v4 = {ip("203.0.113.1"), ip("203.0.113.2")};
  Fixture f(two);
  // 192.0.2.10 holds NAT-PMP UDP 31000 on address P; 192.0.2.11's TCP 31000 cannot be on P (the
  // companion, RFC 6886 §3.3), so it is on the other address Q.
  std::array<std::uint8_t, 64> out{};
  const std::vector<std::uint8_t> udp{0, 1, 0, 0, 0x79, 0x18, 0x79, 0x18, 0, 0, 0x0e, 0x10};  // 31000, 3600 s
  REQUIRE(f.server->handle_natpmp(udp, ctx(ip("192.0.2.10")), out) > 0);
  const auto pmp = f.server->find(core::MappingKind::Map, ip("192.0.2.10"), kUdp, 31000, IpAddr{}, 0);
  REQUIRE(pmp);
  REQUIRE(pmp->external_port == 31000);
  REQUIRE(f.map({.client = ip("192.0.2.11"), .internal_port = 31000}).kind == Reply::Kind::Success);
  const auto tcp = f.server->find(core::MappingKind::Map, ip("192.0.2.11"), kTcp, 31000, IpAddr{}, 0);
  REQUIRE(tcp);
  REQUIRE(tcp->external_port == 31000);
  REQUIRE(tcp->external_addr != pmp->external_addr);
  // Q goes away: the TCP mapping moves to P, but not onto TCP 31000 there.
  Policy only_p = two;
  only_p.external_v4 = {pmp->external_addr};
  f.server->set_policy(only_p);
  const auto r = f.server->readdress();
  REQUIRE_FALSE(r.failed);
  const auto moved = f.server->find(core::MappingKind::Map, ip("192.0.2.11"), kTcp, 31000, IpAddr{}, 0);
  REQUIRE(moved);
  CHECK(moved->external_addr == pmp->external_addr);
  CHECK(moved->external_port != 31000);
}

}  // namespace pcpd::test

namespace pcpd::test {

TEST_CASE("Mapping Update goes to the PEER client's latest socket, also after a lifetime query") {
  Fixture f;
  REQUIRE(f.peer({}).kind == Reply::Kind::Success);
  // The same PEER asked again (a lifetime query: nothing to extend) from another source port.
  Context moved = ctx(ip("192.0.2.10"));
  moved.source_port = 41000;
  const std::size_t calls = f.dp.calls();
  Request q = peer_req({.lifetime = 1});
  REQUIRE(f.server->handle(q, moved).kind == Reply::Kind::Success);
  CHECK(f.dp.calls() == calls);  // nothing for the kernel
  const auto m = f.server->find(core::MappingKind::Peer, ip("192.0.2.10"), kTcp, 5000, ip("198.51.100.7"), 443);
  REQUIRE(m);
  CHECK(m->reply_port == 41000);
}

}  // namespace pcpd::test
