// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core through the codec: Server::handle_datagram and encode_announce (bytes in, bytes out).
#include <array>

#include "unit/core_fixture.hpp"
#include "wire/codec.hpp"

using namespace pcpd::test;

namespace {

struct DgFixture : Fixture {
  std::size_t n = 0;
  std::array<std::uint8_t, 1100> out{};

  wire::DecodedResponse roundtrip(const Request& req, const IpAddr& src) {
    std::array<std::uint8_t, 1100> in{};
    const std::size_t len = wire::encode_request(req, in);
    REQUIRE(len > 0);
    n = server->handle_datagram(std::span<const std::uint8_t>(in.data(), len), ctx(src), out);
    REQUIRE(n > 0);
    return wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
  }
};

}  // namespace

TEST_CASE("datagram: a MAP request is answered with an encoded SUCCESS response") {
  DgFixture f;
  auto req = map_req({.internal_port = 8080, .lifetime = 600, .nonce = nonce(3)});
  req.options.description = std::string_view("test");
  auto d = f.roundtrip(req, ip("192.0.2.10"));
  REQUIRE(std::holds_alternative<wire::Response>(d));
  const auto& r = std::get<wire::Response>(d);
  CHECK(r.result == ResultCode::Success);
  CHECK(r.opcode == wire::Opcode::Map);
  CHECK(r.lifetime == 600);
  const auto& b = std::get<wire::MapBody>(r.body);
  CHECK(b.nonce == nonce(3));
  CHECK(b.external_addr == ip("203.0.113.1"));
  REQUIRE(r.options.description.has_value());
  CHECK(*r.options.description == "test");
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("datagram R-ADDR-1: ADDRESS_MISMATCH is an error response that copies the request") {
  DgFixture f;
  auto d = f.roundtrip(map_req({.client = ip("192.0.2.10")}), ip("192.0.2.20"));
  REQUIRE(std::holds_alternative<wire::Response>(d));
  CHECK(std::get<wire::Response>(d).result == ResultCode::AddressMismatch);
  CHECK(std::get<wire::Response>(d).lifetime == 1800);
  CHECK(f.n == 60);
}

TEST_CASE("datagram R-HDR-3 R-HDR-4: short packets and responses are dropped") {
  DgFixture f;
  std::array<std::uint8_t, 1> one{2};
  CHECK(f.server->handle_datagram(one, ctx(ip("192.0.2.10")), f.out) == 0);
  std::array<std::uint8_t, 24> resp{};
  resp[0] = 2;
  resp[1] = 0x81;
  CHECK(f.server->handle_datagram(resp, ctx(ip("192.0.2.10")), f.out) == 0);
  CHECK(f.server->stats().dropped == 2);
}

TEST_CASE("datagram R-VER-2: an unsupported version is answered UNSUPP_VERSION") {
  DgFixture f;
  std::array<std::uint8_t, 24> v1{};
  v1[0] = 1;
  v1[1] = 1;
  const std::size_t n = f.server->handle_datagram(v1, ctx(ip("192.0.2.10")), f.out);
  REQUIRE(n >= 24);
  CHECK(f.out[0] == 2);
  CHECK(f.out[3] == static_cast<std::uint8_t>(ResultCode::UnsuppVersion));
}

TEST_CASE("datagram R-ANN-1: ANNOUNCE answered, unsolicited ANNOUNCE carries the epoch") {
  DgFixture f;
  f.clock.advance_s(11);
  auto d = f.roundtrip(announce_req(ip("192.0.2.10")), ip("192.0.2.10"));
  REQUIRE(std::holds_alternative<wire::Response>(d));
  CHECK(std::get<wire::Response>(d).result == ResultCode::Success);
  CHECK(std::get<wire::Response>(d).epoch == 11);
  std::array<std::uint8_t, 64> out{};
  const std::size_t n = f.server->encode_announce(out);
  REQUIRE(n == 24);
  auto a = wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
  REQUIRE(std::holds_alternative<wire::Response>(a));
  CHECK(std::get<wire::Response>(a).opcode == wire::Opcode::Announce);
  CHECK(std::get<wire::Response>(a).lifetime == 0);
  CHECK(std::get<wire::Response>(a).epoch == 11);
}
