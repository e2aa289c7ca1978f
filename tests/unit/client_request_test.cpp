// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_client: request building from CLI-like parameters, response matching (RFC 6887 §8.3,
// §11.4, §12.4), unsolicited ANNOUNCE on the request socket.
#include <doctest/doctest.h>

#include "client_fakes.hpp"
#include "pcpc/arguments.hpp"

using namespace pcpd;
using namespace pcpd::client;
using namespace pcpd::client::test;

namespace {

// What `pcpc map -p tcp -i 8080 -e 9000 -l 600 --third-party 192.0.2.20 --prefer-failure
// --filter 198.51.100.0/24:443 --filter 2001:db8::/32 --description web --checkpoint` builds.
MappingSpec cli_like_map() {
  MappingSpec s;
  s.opcode = wire::Opcode::Map;
  s.protocol = *pcpc::parse_protocol("tcp");
  s.internal_port = 8080;
  s.suggested_external_port = 9000;
  s.lifetime = 600;
  s.third_party = ip("192.0.2.20");
  s.prefer_failure = true;
  s.filters.push_back(*pcpc::parse_filter("198.51.100.0/24:443"));
  s.filters.push_back(*pcpc::parse_filter("198.51.100.7"));
  s.description = "web";
  s.checkpoint_required = true;
  s.capability = true;
  s.nonce = *pcpc::parse_nonce("00112233445566778899aabb");
  return s;
}

std::vector<std::uint8_t> encode_req(const wire::Request& r) {
  std::vector<std::uint8_t> buf(wire::kMaxMessageSize);
  buf.resize(wire::encode_request(r, buf));
  return buf;
}

}  // namespace

TEST_CASE("R-MAP-1 R-HDR-11: MAP request bytes from CLI-like parameters") {
  const auto spec = cli_like_map();
  const auto req = build_request(spec, *spec.nonce, ip("192.0.2.10"));
  const auto bytes = encode_req(req);
  REQUIRE(bytes.size() >= 60);
  CHECK(bytes[0] == 2);     // version
  CHECK(bytes[1] == 0x01);  // R = 0, MAP
  CHECK(bytes[2] == 0);
  CHECK(bytes[3] == 0);
  CHECK(bytes[4] == 0);  // lifetime 600 = 0x258
  CHECK(bytes[5] == 0);
  CHECK(bytes[6] == 0x02);
  CHECK(bytes[7] == 0x58);
  // PCP Client's IP Address: ::ffff:192.0.2.10 (RFC 6887 §5)
  const std::uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10};
  CHECK(std::equal(bytes.begin() + 8, bytes.begin() + 24, client));
  const std::uint8_t nonce[12] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
  CHECK(std::equal(bytes.begin() + 24, bytes.begin() + 36, nonce));
  CHECK(bytes[36] == 6);  // tcp
  CHECK(bytes[40] == 0x1f);  // 8080
  CHECK(bytes[41] == 0x90);
  CHECK(bytes[42] == 0x23);  // 9000
  CHECK(bytes[43] == 0x28);
  // R-MAP-4: no suggested address -> ::ffff:0.0.0.0, the internal (THIRD_PARTY) family.
  const std::uint8_t v4_any[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
  CHECK(std::equal(bytes.begin() + 44, bytes.begin() + 60, v4_any));
  CHECK(bytes.size() % 4 == 0);
}

TEST_CASE("R-TP-1 R-PF-1 R-FLT-1 R-FLT-4: options survive a decode of the encoded request") {
  const auto spec = cli_like_map();
  const auto bytes = encode_req(build_request(spec, *spec.nonce, ip("192.0.2.10")));
  auto d = wire::decode_request(bytes);
  REQUIRE(std::holds_alternative<wire::Request>(d));
  const auto& r = std::get<wire::Request>(d);
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.opcode == wire::Opcode::Map);
  CHECK(r.lifetime == 600);
  CHECK(r.client_addr == ip("192.0.2.10"));
  REQUIRE(r.options.third_party.has_value());
  CHECK(*r.options.third_party == ip("192.0.2.20"));
  CHECK(r.options.prefer_failure);
  REQUIRE(r.options.filter_count == 2);
  CHECK(r.options.filters[0].prefix_length == 24 + 96);
  CHECK(r.options.filters[0].remote_port == 443);
  CHECK(r.options.filters[0].remote_addr == ip("198.51.100.0"));
  CHECK(r.options.filters[1].prefix_length == 128);
  CHECK(r.options.filters[1].remote_port == 0);
  REQUIRE(r.options.description.has_value());
  CHECK(*r.options.description == "web");
  CHECK(r.options.checkpoint_required);
  REQUIRE(r.options.capability.has_value());
  for (auto b : *r.options.capability) CHECK(b == 0);  // hops-00 R-CAP-1
  const auto& m = std::get<wire::MapBody>(r.body);
  CHECK(m.nonce == *spec.nonce);
  CHECK(m.protocol == 6);
  CHECK(m.internal_port == 8080);
}

TEST_CASE("R-PEER-1: PEER request carries the remote peer, IPv6 client address unmapped") {
  MappingSpec s;
  s.opcode = wire::Opcode::Peer;
  s.protocol = 17;
  s.internal_port = 5000;
  auto ep = pcpc::parse_endpoint("[2001:db8:2::9]:3478");
  REQUIRE(ep);
  s.remote_addr = ep->addr;
  s.remote_port = ep->port;
  wire::Nonce n{};
  n.fill(7);
  const auto bytes = encode_req(build_request(s, n, ip("2001:db8:1::10")));
  REQUIRE(bytes.size() == 80);
  auto d = wire::decode_request(bytes);
  REQUIRE(std::holds_alternative<wire::Request>(d));
  const auto& r = std::get<wire::Request>(d);
  CHECK(r.client_addr == ip("2001:db8:1::10"));
  const auto& p = std::get<wire::PeerBody>(r.body);
  CHECK(p.remote_addr == ip("2001:db8:2::9"));
  CHECK(p.remote_port == 3478);
  CHECK(p.external_addr == wire::IpAddr{});  // "::" = no preference, IPv6 family (R-MAP-4)
}

TEST_CASE("R-ANN-1: ANNOUNCE request has lifetime 0 and no opcode data") {
  const auto bytes = encode_req(build_announce(ip("192.0.2.10"), false));
  REQUIRE(bytes.size() == 24);
  CHECK(bytes[1] == 0x00);
  CHECK(bytes[4] == 0);
  CHECK(bytes[7] == 0);
}

TEST_CASE("RFC 6887 §11.4 §12.4: response matching") {
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 8080;
  wire::Nonce n{};
  n.fill(1);
  const auto req = build_request(s, n, ip("192.0.2.10"));
  auto resp = answer(req, 600, 10);
  CHECK(response_matches(req, resp));
  SUBCASE("other nonce") {
    std::get<wire::MapBody>(resp.body).nonce[11] ^= 1;
    CHECK_FALSE(response_matches(req, resp));
  }
  SUBCASE("other protocol") {
    std::get<wire::MapBody>(resp.body).protocol = 17;
    CHECK_FALSE(response_matches(req, resp));
  }
  SUBCASE("other internal port") {
    std::get<wire::MapBody>(resp.body).internal_port = 8081;
    CHECK_FALSE(response_matches(req, resp));
  }
  SUBCASE("other opcode") {
    resp.opcode = wire::Opcode::Announce;
    resp.body = wire::AnnounceBody{};
    CHECK_FALSE(response_matches(req, resp));
  }
  SUBCASE("external endpoint differs: still the answer") {
    std::get<wire::MapBody>(resp.body).external_port = 1;
    CHECK(response_matches(req, resp));
  }
}

TEST_CASE("RFC 6887 §12.4: PEER response must name the same remote peer") {
  MappingSpec s;
  s.opcode = wire::Opcode::Peer;
  s.protocol = 6;
  s.internal_port = 8080;
  s.remote_addr = ip("198.51.100.1");
  s.remote_port = 80;
  const auto req = build_request(s, wire::Nonce{}, ip("192.0.2.10"));
  auto resp = answer(req, 600, 10);
  CHECK(response_matches(req, resp));
  std::get<wire::PeerBody>(resp.body).remote_port = 81;
  CHECK_FALSE(response_matches(req, resp));
  std::get<wire::PeerBody>(resp.body).remote_port = 80;
  std::get<wire::PeerBody>(resp.body).remote_addr = ip("198.51.100.2");
  CHECK_FALSE(response_matches(req, resp));
}

TEST_CASE("R-OWN-1 RFC 6887 §8.3: the client ignores a response with another nonce") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    auto wrong = answer(req, 600, 10);
    std::get<wire::MapBody>(wrong.body).nonce[0] ^= 0xff;
    auto right = answer(req, 600, 10, wire::ResultCode::Success, ip("203.0.113.1"), 9999);
    std::vector<std::uint8_t> garbage(24, 0);  // R bit clear: not a response
    garbage[0] = 2;
    return std::vector<Scheduled>{{encode(wrong), Millis{10}}, {garbage, Millis{20}},
                                  {encode(right), Millis{30}}};
  };
  ClientConfig cfg;
  cfg.retransmit.mrd = Millis{10000};
  Client c(t, clock, random, cfg);
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 8080;
  auto out = c.request(s);
  REQUIRE(out);
  CHECK(out->success());
  CHECK(std::get<wire::MapBody>(out->response.body).external_port == 9999);
  CHECK(out->transmissions == 1);
  CHECK(out->internal_addr == ip("192.0.2.10"));
  CHECK(t.sent.size() == 1);
  // The random nonce went on the wire and came back.
  CHECK(std::get<wire::MapBody>(t.sent[0].decode().body).nonce ==
        std::get<wire::MapBody>(out->response.body).nonce);
}

TEST_CASE("RFC 6887 §8.3: only mismatched answers -> retransmit, then give up at MRD") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    auto wrong = answer(req, 600, 10);
    std::get<wire::MapBody>(wrong.body).internal_port = 1;
    return std::vector<Scheduled>{{encode(wrong), Millis{5}}};
  };
  ClientConfig cfg;
  cfg.retransmit.mrd = Millis{10000};
  Client c(t, clock, random, cfg);
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 8080;
  const Millis start = clock.now();
  auto out = c.request(s);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == ETIMEDOUT);
  CHECK(clock.now() - start == Millis{10000});
  CHECK(t.sent.size() == 3);  // at 0 s, 3 s (RT 3 s) and 9 s (RT 6 s); MRD ends the last wait
}

TEST_CASE("R-ANN-4: an unsolicited ANNOUNCE on the request socket is kept, not taken as answer") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    return std::vector<Scheduled>{{announce_bytes(0), Millis{1}},
                                  {encode(answer(req, 600, 10)), Millis{2}}};
  };
  Client c(t, clock, random);
  MappingSpec s;
  s.protocol = 17;
  s.internal_port = 53;
  auto out = c.map(s);
  REQUIRE(out);
  CHECK(out->response.opcode == wire::Opcode::Map);
  auto anns = c.take_announcements();
  REQUIRE(anns.size() == 1);
  CHECK(anns[0].epoch == 0);
  CHECK(c.take_announcements().empty());
}

TEST_CASE("R-ANN-1: announce() returns the server's ANNOUNCE response") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    CHECK(req.lifetime == 0);
    return std::vector<Scheduled>{{encode(answer(req, 0, 77)), Millis{1}}};
  };
  Client c(t, clock, random);
  auto out = c.announce();
  REQUIRE(out);
  CHECK(out->response.opcode == wire::Opcode::Announce);
  CHECK(out->response.epoch == 77);
}

TEST_CASE("R-OWN-4: every request without a nonce gets a fresh random one") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    return std::vector<Scheduled>{{encode(answer(req, 600, 10)), Millis{1}}};
  };
  Client c(t, clock, random);
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 1;
  REQUIRE(c.request(s));
  REQUIRE(c.request(s));
  CHECK(std::get<wire::MapBody>(t.sent[0].decode().body).nonce !=
        std::get<wire::MapBody>(t.sent[1].decode().body).nonce);
}

TEST_CASE("DESCRIPTION in a response is owned by the Outcome") {
  FakeClock clock;
  FakeRandom random;
  FakeTransport t(clock, ip("192.0.2.10"), ip("192.0.2.1"));
  t.server_fn = [](const wire::Request& req, std::size_t) {
    auto r = answer(req, 600, 10);
    r.options.description = std::string_view("hello");
    return std::vector<Scheduled>{{encode(r), Millis{1}}};
  };
  Client c(t, clock, random);
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 1;
  s.description = "hello";
  auto out = c.request(s);
  REQUIRE(out);
  REQUIRE(out->description.has_value());
  CHECK(*out->description == "hello");
  CHECK_FALSE(out->response.options.description.has_value());
}
