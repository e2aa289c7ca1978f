// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core and CAPABILITY (draft-boucadair-hops-capability-discovery-00, docs/design.md "CAPABILITY"):
// which replies carry the configured set (R-CAP-1/4/5/6/8), unsolicited ANNOUNCE (R-CAP-6/7),
// and the transport bits that refuse a request. Through Server::handle and through the codec.
#include <array>

#include "unit/core_fixture.hpp"
#include "wire/capability.hpp"
#include "wire/codec.hpp"

using namespace pcpd::test;
using wire::CapabilitySet;

namespace {

constexpr std::uint8_t kSctp = 132;

CapabilitySet named(std::initializer_list<const char*> names) {
  CapabilitySet s;
  for (const char* n : names) REQUIRE(s.set(std::string_view(n)));
  return s;
}

// nat44, ipv6-firewall, tcp, udp (built without doctest: used at static-initialisation time).
CapabilitySet router() {
  CapabilitySet s;
  for (unsigned bit : {1u, 32u, 119u, 120u}) s.set(bit);
  return s;
}
const CapabilitySet kRouter = router();

Policy with_caps(const CapabilitySet& set, bool always = false) {
  Policy p = default_policy();
  p.capabilities = set;
  p.capability_always = always;
  return p;
}

Request asking(Request r) {
  r.options.capability = CapabilitySet::Bytes{};  // R-CAP-1: zero in requests
  return r;
}

std::optional<CapabilitySet> caps_of(const Reply& r) {
  if (!r.response.options.capability) return std::nullopt;
  return CapabilitySet::from_bytes(*r.response.options.capability);
}

// Through the codec: request bytes -> handle_datagram -> decoded response.
struct Wire {
  explicit Wire(Policy p) : f(std::move(p)) {}
  wire::Response send(const Request& req) {
    std::array<std::uint8_t, 1100> in{};
    const std::size_t len = wire::encode_request(req, in);
    REQUIRE(len > 0);
    n = f.server->handle_datagram(std::span<const std::uint8_t>(in.data(), len), ctx(req.client_addr), out);
    REQUIRE(n > 0);
    auto d = wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
    REQUIRE(std::holds_alternative<wire::Response>(d));
    return std::get<wire::Response>(d);
  }
  // How many CAPABILITY options (code 224) the last response holds, from its option area.
  int capability_count(std::size_t options_start) const {
    int count = 0;
    std::size_t i = options_start;
    while (i + 4 <= n) {
      const std::size_t len = (std::size_t{out[i + 2]} << 8) | out[i + 3];
      if (out[i] == 224) ++count;
      i += 4 + ((len + 3) & ~std::size_t{3});
    }
    return count;
  }
  Fixture f;
  std::size_t n = 0;
  std::array<std::uint8_t, 1100> out{};
};

wire::Response unsolicited(const pcpd::core::Server& s, std::optional<bool> with_capability) {
  std::array<std::uint8_t, 1100> out{};
  const std::size_t n = with_capability ? s.encode_announce(out, *with_capability) : s.encode_announce(out);
  REQUIRE(n > 0);
  auto d = wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
  REQUIRE(std::holds_alternative<wire::Response>(d));
  const auto& r = std::get<wire::Response>(d);
  CHECK(r.opcode == wire::Opcode::Announce);
  CHECK(r.result == ResultCode::Success);
  return r;
}

}  // namespace

TEST_CASE("R-CAP-1 R-CAP-4 MAP asking for CAPABILITY gets the configured set") {
  CHECK(kRouter == named({"nat44", "ipv6-firewall", "tcp", "udp"}));
  Fixture f(with_caps(kRouter));
  auto r = f.send(asking(map_req({})));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(caps_of(r) == kRouter);
  // Without the option in the request: none (capability.always off).
  auto plain = f.send(map_req({.internal_port = 9090}));
  REQUIRE(plain.kind == Reply::Kind::Success);
  CHECK_FALSE(plain.response.options.capability.has_value());
}

TEST_CASE("R-CAP-1 R-CAP-4 ANNOUNCE and PEER asking for CAPABILITY get the set") {
  Fixture f(with_caps(kRouter));
  auto a = f.send(asking(announce_req(ip("192.0.2.10"))));
  REQUIRE(a.kind == Reply::Kind::Success);
  CHECK(caps_of(a) == kRouter);
  auto p = f.send(asking(peer_req({})));
  REQUIRE(p.kind == Reply::Kind::Success);
  CHECK(caps_of(p) == kRouter);
  auto p2 = f.send(peer_req({.internal_port = 5001}));
  REQUIRE(p2.kind == Reply::Kind::Success);
  CHECK_FALSE(p2.response.options.capability.has_value());
}

TEST_CASE("R-CAP-5 without a configured set no CAPABILITY is ever sent") {
  Fixture f;  // default policy: capabilities not configured
  CHECK_FALSE(f.send(asking(map_req({}))).response.options.capability.has_value());
  CHECK_FALSE(f.send(asking(announce_req(ip("192.0.2.10")))).response.options.capability.has_value());
  CHECK_FALSE(unsolicited(*f.server, true).options.capability.has_value());
  CHECK_FALSE(unsolicited(*f.server, std::nullopt).options.capability.has_value());
  // An error response copies the request, but not its zero CAPABILITY option.
  Wire w(default_policy());
  auto r = w.send(asking(map_req({.protocol = kSctp})));
  CHECK(r.result == ResultCode::UnsuppProtocol);
  CHECK_FALSE(r.options.capability.has_value());
  CHECK(w.n == 60);
}

TEST_CASE("R-CAP-5 the A bit (RFC 7652 authentication) is never sent: pcpd has no PCP auth") {
  CapabilitySet with_a = kRouter;
  with_a.set(wire::kCapabilityAuthBit);
  Fixture f(with_caps(with_a, true));
  auto r = f.send(asking(map_req({})));
  REQUIRE(caps_of(r).has_value());
  CHECK_FALSE(caps_of(r)->test(wire::kCapabilityAuthBit));
  CHECK(*caps_of(r) == kRouter);
  auto a = unsolicited(*f.server, std::nullopt);
  REQUIRE(a.options.capability.has_value());
  CHECK((*a.options.capability)[0] == 0x40);  // NAT44 only in byte 0
}

TEST_CASE("R-CAP-6 capability.always: every MAP response and ANNOUNCE, PEER only when asked") {
  Fixture f(with_caps(kRouter, true));
  auto m = f.send(map_req({}));
  REQUIRE(m.kind == Reply::Kind::Success);
  CHECK(caps_of(m) == kRouter);
  // A MAP error carries it too ("all MAP responses").
  auto e = f.send(map_req({.protocol = kTcp, .internal_port = 5351}));
  REQUIRE(e.kind == Reply::Kind::Error);
  CHECK(e.response.result == ResultCode::NotAuthorized);
  CHECK(caps_of(e) == kRouter);
  CHECK(caps_of(f.send(announce_req(ip("192.0.2.10")))) == kRouter);
  CHECK_FALSE(f.send(peer_req({})).response.options.capability.has_value());
  auto a = unsolicited(*f.server, std::nullopt);
  REQUIRE(a.options.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*a.options.capability) == kRouter);
}

TEST_CASE("R-CAP-6 R-CAP-7 unsolicited ANNOUNCE: only with always or when asked for a change") {
  Fixture f(with_caps(kRouter));
  CHECK_FALSE(unsolicited(*f.server, std::nullopt).options.capability.has_value());
  CHECK_FALSE(unsolicited(*f.server, false).options.capability.has_value());
  auto a = unsolicited(*f.server, true);
  REQUIRE(a.options.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*a.options.capability) == kRouter);
  // R-CAP-7: the daemon swaps the policy on reload and announces the new set.
  Policy p = with_caps(named({"nat44", "tcp"}));
  p.protocols = {kTcp};
  f.server->set_policy(p);
  auto b = unsolicited(*f.server, true);
  REQUIRE(b.options.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*b.options.capability).names() ==
        std::vector<std::string>{"nat44", "tcp"});
}

TEST_CASE("R-CAP-8 MAP/PEER for a transport protocol outside the set: UNSUPP_PROTOCOL + set") {
  const CapabilitySet tcp_only = named({"nat44", "tcp"});  // UDP (bit 120) clear
  Fixture f(with_caps(tcp_only));
  auto m = f.send(map_req({.protocol = kUdp}));  // UDP is in Policy::protocols
  REQUIRE(m.kind == Reply::Kind::Error);
  CHECK(m.response.result == ResultCode::UnsuppProtocol);
  CHECK(caps_of(m) == tcp_only);  // even unrequested
  auto p = f.send(peer_req({.protocol = kUdp}));
  REQUIRE(p.kind == Reply::Kind::Error);
  CHECK(p.response.result == ResultCode::UnsuppProtocol);
  CHECK(caps_of(p) == tcp_only);
  CHECK(f.server->mapping_count() == 0);
  // TCP is served.
  CHECK(f.send(map_req({.protocol = kTcp})).kind == Reply::Kind::Success);
  // A protocol the policy does not map (SCTP) is refused the same way, with the set.
  auto s = f.send(map_req({.protocol = kSctp}));
  CHECK(s.response.result == ResultCode::UnsuppProtocol);
  CHECK(caps_of(s) == tcp_only);
  // Other errors do not carry it unless asked (capability.always off).
  auto other = f.send(map_req({.protocol = kTcp, .internal_port = 5350}));
  CHECK(other.response.result == ResultCode::NotAuthorized);
  CHECK_FALSE(other.response.options.capability.has_value());
}

TEST_CASE("R-CAP-8 on the wire: the error copies the request and carries exactly one set") {
  const CapabilitySet tcp_only = named({"nat44", "tcp"});
  SUBCASE("request without CAPABILITY: the option is appended") {
    Wire w(with_caps(tcp_only));
    auto r = w.send(map_req({.protocol = kUdp}));
    CHECK(r.result == ResultCode::UnsuppProtocol);
    REQUIRE(r.options.capability.has_value());
    CHECK(CapabilitySet::from_bytes(*r.options.capability) == tcp_only);
    CHECK(w.n == 80);
    CHECK(w.capability_count(60) == 1);
  }
  SUBCASE("request with a zero CAPABILITY: it is replaced, not doubled") {
    Wire w(with_caps(tcp_only));
    auto r = w.send(asking(map_req({.protocol = kUdp})));
    CHECK(r.result == ResultCode::UnsuppProtocol);
    REQUIRE(r.options.capability.has_value());
    CHECK(CapabilitySet::from_bytes(*r.options.capability) == tcp_only);
    CHECK(w.n == 80);
    CHECK(w.capability_count(60) == 1);
  }
  SUBCASE("PEER") {
    Wire w(with_caps(tcp_only));
    auto r = w.send(peer_req({.protocol = kUdp}));
    CHECK(r.result == ResultCode::UnsuppProtocol);
    REQUIRE(r.options.capability.has_value());
    CHECK(w.capability_count(80) == 1);
  }
  SUBCASE("another error with CAPABILITY asked: the copy carries the set, not zeros") {
    Wire w(with_caps(kRouter));
    auto req = asking(map_req({}));
    req.client_addr = ip("192.0.2.99");  // ADDRESS_MISMATCH against the packet source below
    std::array<std::uint8_t, 1100> in{};
    const std::size_t len = wire::encode_request(req, in);
    w.n = w.f.server->handle_datagram(std::span<const std::uint8_t>(in.data(), len),
                                      ctx(ip("192.0.2.10")), w.out);
    auto d = wire::decode_response(std::span<const std::uint8_t>(w.out.data(), w.n));
    REQUIRE(std::holds_alternative<wire::Response>(d));
    const auto& r = std::get<wire::Response>(d);
    CHECK(r.result == ResultCode::AddressMismatch);
    REQUIRE(r.options.capability.has_value());
    CHECK(CapabilitySet::from_bytes(*r.options.capability) == kRouter);
  }
}

TEST_CASE("R-CAP-1 success responses through the codec: MAP and ANNOUNCE") {
  Wire w(with_caps(kRouter));
  auto m = w.send(asking(map_req({})));
  CHECK(m.result == ResultCode::Success);
  REQUIRE(m.options.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*m.options.capability) == kRouter);
  CHECK(w.capability_count(60) == 1);
  auto a = w.send(asking(announce_req(ip("192.0.2.10"))));
  REQUIRE(a.options.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*a.options.capability) == kRouter);
  CHECK(w.n == 44);
}

TEST_CASE("R-CAP-8 a protocol without a capability bit is decided by Policy::protocols alone") {
  Policy p = with_caps(named({"nat44", "tcp", "udp"}));
  p.protocols = {kTcp, kUdp, 1};
  Fixture f(p);
  auto r = f.send(map_req({.protocol = 1, .internal_port = 7}));
  CHECK(r.kind == Reply::Kind::Success);
  CHECK_FALSE(r.response.options.capability.has_value());
}
