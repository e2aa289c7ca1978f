// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core NAT-PMP (RFC 6886) through Server::handle_natpmp: R-PMP-1..5.
#include <array>
#include <vector>

#include "unit/core_fixture.hpp"
#include "wire/natpmp.hpp"

using namespace pcpd::test;
namespace natpmp = pcpd::wire::natpmp;

namespace {

std::vector<std::uint8_t> map_request(std::uint8_t op, std::uint16_t internal, std::uint16_t suggested,
                                      std::uint32_t lifetime) {
  return {0, op, 0, 0,
          static_cast<std::uint8_t>(internal >> 8), static_cast<std::uint8_t>(internal),
          static_cast<std::uint8_t>(suggested >> 8), static_cast<std::uint8_t>(suggested),
          static_cast<std::uint8_t>(lifetime >> 24), static_cast<std::uint8_t>(lifetime >> 16),
          static_cast<std::uint8_t>(lifetime >> 8), static_cast<std::uint8_t>(lifetime)};
}

struct PmpFixture : Fixture {
  using Fixture::Fixture;
  std::optional<natpmp::Response> send_pmp(const std::vector<std::uint8_t>& dg,
                                           const IpAddr& src = ip("192.0.2.10")) {
    std::array<std::uint8_t, 64> out{};
    const std::size_t n = server->handle_natpmp(dg, ctx(src), out);
    if (n == 0) return std::nullopt;
    auto d = natpmp::decode_response(std::span<const std::uint8_t>(out.data(), n));
    REQUIRE(std::holds_alternative<natpmp::Response>(d));
    return std::get<natpmp::Response>(d);
  }
};

}  // namespace

TEST_CASE("R-PMP-1 NAT-PMP is IPv4 only, and dropped when disabled") {
  PmpFixture f;
  CHECK_FALSE(f.send_pmp({0, 0}, ip("2001:db8::10")).has_value());
  auto p = default_policy();
  p.natpmp = false;
  PmpFixture off(p);
  CHECK_FALSE(off.send_pmp({0, 0}).has_value());
  CHECK(off.server->stats().dropped == 1);
}

TEST_CASE("R-PMP-2 external address request, unknown opcode gets result 5, responses are ignored") {
  PmpFixture f;
  f.clock.advance_s(7);
  auto r = f.send_pmp({0, 0});
  REQUIRE(r.has_value());
  CHECK(r->opcode == 128);
  CHECK(r->result == natpmp::Result::Success);
  CHECK(r->epoch == 7);
  CHECK(r->external_v4 == ip("203.0.113.1").v4());
  // RFC 6886 §3.5: an unsupported opcode gets the whole request back, top bit of the opcode
  // set, result 5 (a 2-byte request is extended to hold the result).
  std::array<std::uint8_t, 64> out{};
  const std::vector<std::uint8_t> odd{0, 9, 0xaa, 0xbb, 1, 2, 3, 4, 5};
  std::size_t n = f.server->handle_natpmp(odd, ctx(ip("192.0.2.10")), out);
  CHECK(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)) ==
        std::vector<std::uint8_t>{0, 0x89, 0, 5, 1, 2, 3, 4, 5});
  n = f.server->handle_natpmp(std::vector<std::uint8_t>{0, 3}, ctx(ip("192.0.2.10")), out);
  CHECK(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)) ==
        std::vector<std::uint8_t>{0, 0x83, 0, 5});
  CHECK_FALSE(f.send_pmp({0, 128, 0, 0}).has_value());
  auto p = default_policy();
  p.external_v4.clear();
  PmpFixture none(p);
  auto nf = none.send_pmp({0, 0});
  REQUIRE(nf.has_value());
  CHECK(nf->result == natpmp::Result::NetworkFailure);
}

TEST_CASE("R-PMP-2 R-PMP-5 a NAT-PMP map lands in the shared table with a zero nonce") {
  PmpFixture f;
  auto r = f.send_pmp(map_request(2, 8080, 8080, 7200));
  REQUIRE(r.has_value());
  CHECK(r->opcode == 130);
  CHECK(r->result == natpmp::Result::Success);
  CHECK(r->internal_port == 8080);
  CHECK(r->external_port == 8080);
  CHECK(r->lifetime == 7200);
  REQUIRE(f.server->mapping_count() == 1);
  const Mapping m = f.server->mappings().front();
  CHECK(m.origin == pcpd::core::Origin::NatPmp);
  CHECK(m.protocol == kTcp);
  CHECK(m.nonce == wire::Nonce{});
  // A taken suggested port gets another port.
  auto other = f.send_pmp(map_request(2, 8080, 8080, 7200), ip("192.0.2.11"));
  REQUIRE(other.has_value());
  CHECK(other->result == natpmp::Result::Success);
  CHECK(other->external_port != 8080);
  // Lifetimes are clamped.
  auto udp = f.send_pmp(map_request(1, 53, 0, 10));
  REQUIRE(udp.has_value());
  CHECK(udp->lifetime == 120);
  // Same epoch as PCP (R-PMP-5).
  f.clock.advance_s(9);
  CHECK(f.send_pmp({0, 0})->epoch == f.server->epoch());
}

TEST_CASE("R-PMP-3 lifetime 0 deletes, internal port 0 deletes all of the client's mappings of the protocol") {
  PmpFixture f;
  REQUIRE(f.send_pmp(map_request(2, 1000, 0, 3600))->result == natpmp::Result::Success);
  REQUIRE(f.send_pmp(map_request(2, 1001, 0, 3600))->result == natpmp::Result::Success);
  REQUIRE(f.send_pmp(map_request(1, 1002, 0, 3600))->result == natpmp::Result::Success);
  auto d = f.send_pmp(map_request(2, 1000, 1000, 0));
  REQUIRE(d.has_value());
  CHECK(d->result == natpmp::Result::Success);
  CHECK(d->external_port == 0);
  CHECK(d->lifetime == 0);
  CHECK(f.server->mapping_count() == 2);
  auto all = f.send_pmp(map_request(2, 0, 0, 0));
  REQUIRE(all.has_value());
  CHECK(all->result == natpmp::Result::Success);
  REQUIRE(f.server->mapping_count() == 1);
  CHECK(f.server->mappings().front().protocol == kUdp);
}

TEST_CASE("R-PMP-4 the gratuitous external-address announcement carries address and epoch") {
  PmpFixture f;
  f.clock.advance_s(3);
  std::array<std::uint8_t, 16> out{};
  const std::size_t n = f.server->encode_natpmp_announce(out);
  REQUIRE(n == 12);
  auto d = natpmp::decode_response(std::span<const std::uint8_t>(out.data(), n));
  REQUIRE(std::holds_alternative<natpmp::Response>(d));
  CHECK(std::get<natpmp::Response>(d).external_v4 == ip("203.0.113.1").v4());
  CHECK(std::get<natpmp::Response>(d).epoch == 3);
}

TEST_CASE("R-PMP-5 PCP and NAT-PMP share mappings: nonce rule in both directions (our decision)") {
  PmpFixture f;
  REQUIRE(f.send_pmp(map_request(2, 8080, 0, 3600))->result == natpmp::Result::Success);
  // The NAT-PMP mapping has no nonce: the same host's PCP request takes it over with its nonce
  // (NAT-PMP's owner is the source address; Tailscale sends PCP after a lost NAT-PMP probe).
  CHECK(f.map({.internal_port = 8080, .nonce = nonce(3)}).kind == Reply::Kind::Success);
  // From then on it is a PCP mapping: the all-zero nonce is another nonce.
  CHECK(f.map({.internal_port = 8080, .nonce = {}}).response.result == ResultCode::NotAuthorized);
  // Another host never takes a NAT-PMP mapping: it is keyed by the internal address, so it
  // only ever reaches its own (R-MAP-10).
  // NAT-PMP on a PCP mapping with a non-zero nonce is refused.
  REQUIRE(f.map({.internal_port = 9090, .nonce = nonce(3)}).kind == Reply::Kind::Success);
  auto r = f.send_pmp(map_request(2, 9090, 0, 3600));
  REQUIRE(r.has_value());
  CHECK(r->result == natpmp::Result::NotAuthorized);
  // The PCP port is refused over NAT-PMP too.
  CHECK(f.send_pmp(map_request(1, 5351, 0, 3600))->result == natpmp::Result::NotAuthorized);
}

TEST_CASE("RFC 6886 3.3 the companion port of a NAT-PMP mapping stays with its client") {
  PmpFixture f;
  // Client A maps TCP 30040 by NAT-PMP and gets external TCP 30040.
  auto tcp = f.send_pmp(map_request(2, 30040, 30040, 3600));
  REQUIRE(tcp.has_value());
  REQUIRE(tcp->result == natpmp::Result::Success);
  REQUIRE(tcp->external_port == 30040);
  // Another client asks for UDP 30040 (NAT-PMP suggestion, PCP suggestion, or port
  // preservation): it MUST NOT get the companion port.
  auto other = f.send_pmp(map_request(1, 30040, 30040, 3600), ip("192.0.2.11"));
  REQUIRE(other.has_value());
  CHECK(other->result == natpmp::Result::Success);
  CHECK(other->external_port != 30040);
  const Reply pcp = f.map({.client = ip("192.0.2.12"), .protocol = kUdp, .internal_port = 30040});
  REQUIRE(pcp.kind == Reply::Kind::Success);
  CHECK(map_body(pcp).external_port != 30040);
  // With PREFER_FAILURE the other client gets CANNOT_PROVIDE_EXTERNAL rather than the port.
  Request strict = map_req({.client = ip("192.0.2.13"), .protocol = kUdp, .internal_port = 40000,
                            .suggested_port = 30040, .suggested_addr = ip("203.0.113.1")});
  strict.options.prefer_failure = true;
  CHECK(f.send(strict).response.result == ResultCode::CannotProvideExternal);
  // The client itself can still map its companion.
  auto own = f.send_pmp(map_request(1, 30040, 30040, 3600));
  REQUIRE(own.has_value());
  CHECK(own->result == natpmp::Result::Success);
  CHECK(own->external_port == 30040);
}
