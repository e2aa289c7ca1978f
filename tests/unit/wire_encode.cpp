// SPDX-License-Identifier: GPL-2.0-or-later
// wire::encode_response, encode_error_response, encode_request against annotated vectors.
// Vectors: tests/vectors/pcp_responses.hex, pcp_requests.hex, pcp_request_rejects.hex.
#include <array>

#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
using wire::ResultCode;

namespace {

Bytes resp(const char* name) { return vec("pcp_responses.hex", name); }
Bytes req(const char* name) { return vec("pcp_requests.hex", name); }
Bytes rej(const char* name) { return vec("pcp_request_rejects.hex", name); }

constexpr std::uint32_t kEpoch = 42;
constexpr std::uint32_t kLongError = 1800;  // R-RC-2

wire::MapBody map_body() {
  wire::MapBody m;
  m.nonce = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  m.protocol = 6;
  m.internal_port = 8080;
  m.external_port = 8080;
  m.external_addr = ip("203.0.113.1");
  return m;
}

wire::PeerBody peer_body() {
  wire::PeerBody p;
  p.nonce = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac};
  p.protocol = 17;
  p.internal_port = 5001;
  p.external_port = 50000;
  p.external_addr = ip("203.0.113.1");
  p.remote_port = 80;
  p.remote_addr = ip("198.51.100.7");
  return p;
}

// Capability bits MSB first (docs/design.md "CAPABILITY"): 1 NAT44, 119 TCP, 120 UDP.
std::array<std::uint8_t, 16> caps() {
  std::array<std::uint8_t, 16> c{};
  for (unsigned bit : {1u, 119u, 120u}) c[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  return c;
}

wire::Options all_map_options() {
  wire::Options o;
  o.third_party = ip("192.0.2.9");
  o.prefer_failure = true;
  o.filters[0] = {120, 0, ip("198.51.100.0")};
  o.filters[1] = {64, 443, ip("2001:db8:1::")};
  o.filter_count = 2;
  o.description = "web";
  o.checkpoint_required = true;
  o.capability = caps();
  return o;
}

Bytes encode(const wire::Response& r, std::size_t room = 1500) {
  Bytes out(room, 0xee);
  auto n = wire::encode_response(r, out);
  out.resize(n);
  return out;
}

Bytes encode_error(const Bytes& request, ResultCode code, bool parsed,
                   std::uint32_t lifetime = kLongError, std::size_t room = 1500) {
  Bytes out(room, 0xee);  // 0xee: any byte the encoder forgets to write shows up
  auto n = wire::encode_error_response(request, code, lifetime, kEpoch, parsed, out);
  out.resize(n);
  return out;
}

void check_bytes(const Bytes& got, const Bytes& want) {
  CHECK_MESSAGE(got == want, "\n got  ", hex(got), "\n want ", hex(want));
}

}  // namespace

// ---- success responses (RFC 6887 §7.2, R-HDR-8) ----

TEST_CASE("R-HDR-8 MAP success response with every option matches the vector") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = 7200;
  r.epoch = kEpoch;
  r.body = map_body();
  r.options = all_map_options();
  check_bytes(encode(r), resp("map_success"));
}

TEST_CASE("R-HDR-8 PEER success response matches the vector") {
  wire::Response r;
  r.opcode = wire::Opcode::Peer;
  r.lifetime = 3600;
  r.epoch = kEpoch;
  r.body = peer_body();
  r.options.description = "web";
  check_bytes(encode(r), resp("peer_success"));
}

TEST_CASE("R-ANN-1 ANNOUNCE response is a 24-byte header") {
  wire::Response r;
  r.opcode = wire::Opcode::Announce;
  r.epoch = kEpoch;
  check_bytes(encode(r), resp("announce_success"));
}

TEST_CASE("R-CAP-6 ANNOUNCE response with CAPABILITY matches the vector") {
  wire::Response r;
  r.opcode = wire::Opcode::Announce;
  r.epoch = kEpoch;
  r.options.capability = caps();
  check_bytes(encode(r), resp("announce_capability"));
}

TEST_CASE("R-ANN-7 an error result can be encoded field by field (Mapping Update)") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.result = ResultCode::CannotProvideExternal;
  r.lifetime = 120;
  r.epoch = kEpoch;
  r.body = map_body();
  r.options.prefer_failure = true;
  check_bytes(encode(r), resp("map_cannot_provide"));
}

TEST_CASE("R-HDR-8 version is always 2 and the reserved byte zero") {
  wire::Response r;
  r.version = 1;  // ignored: a version-2-only server answers 2 (R-VER-2)
  r.opcode = wire::Opcode::Announce;
  auto b = encode(r);
  REQUIRE(b.size() == 24);
  CHECK(b[0] == 2);
  CHECK(b[1] == 0x80);
  CHECK(b[2] == 0);
}

TEST_CASE("R-OPT-6 options not set are not written") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.body = map_body();
  CHECK(encode(r).size() == 60);
}

TEST_CASE("encode_response returns 0 when the output is too small") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.body = map_body();
  r.options = all_map_options();
  const auto full = resp("map_success").size();
  CHECK(encode(r, full).size() == full);
  CHECK(encode(r, full - 1).empty());
  CHECK(encode(r, 0).empty());
}

TEST_CASE("R-OPT-5 encode_response refuses more than 1100 bytes") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.body = map_body();
  // 60 + 42 filters (1008) = 1068 fits; a description of 29 bytes (36 with header and padding)
  // makes it 1104.
  for (std::size_t i = 0; i < 42; ++i) r.options.filters[i] = {128, 0, ip("198.51.100.1")};
  r.options.filter_count = 42;
  CHECK(encode(r).size() == 1068);
  std::string text(29, 'x');
  r.options.description = text;
  CHECK(encode(r, 2000).empty());
  text.resize(28);  // 60 + 1008 + 4 + 28 = 1100
  r.options.description = text;
  CHECK(encode(r, 2000).size() == 1100);
}

TEST_CASE("encode_response refuses a DESCRIPTION over 1016 bytes") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;
  r.body = map_body();
  std::string text(1017, 'x');
  r.options.description = text;
  CHECK(encode(r).empty());
  text.resize(1016);
  r.options.description = text;
  CHECK(encode(r).size() == 60 + 4 + 1016);
}

TEST_CASE("encode_response refuses a body that does not match the opcode") {
  wire::Response r;
  r.opcode = wire::Opcode::Map;  // with AnnounceBody
  CHECK(encode(r).empty());
  r.opcode = wire::Opcode::Peer;
  r.body = map_body();
  CHECK(encode(r).empty());
  r.opcode = wire::Opcode::Announce;
  CHECK(encode(r).empty());
  r.opcode = wire::Opcode::Authentication;
  r.body = wire::AnnounceBody{};
  CHECK(encode(r).empty());
}

// ---- error responses (RFC 6887 §8.2, R-HDR-6) ----

TEST_CASE("R-VER-2 UNSUPP_VERSION to a 2-byte NAT-PMP request is a 24-byte header") {
  // Local decision (R-VER-2): the request bytes are copied, the rest of the 24 bytes is zero.
  check_bytes(encode_error(rej("natpmp_external"), ResultCode::UnsuppVersion, false),
              resp("unsupp_version_to_natpmp_external"));
}

TEST_CASE("R-VER-3 UNSUPP_VERSION to natpmpc's map request reads as NAT-PMP result 1") {
  auto b = encode_error(rej("natpmp_map"), ResultCode::UnsuppVersion, false);
  check_bytes(b, resp("unsupp_version_to_natpmpc_map"));
  // A NAT-PMP client reads a 16-bit result at bytes 2..3: 1 = Unsupported Version.
  CHECK(((b[2] << 8) | b[3]) == 1);
}

TEST_CASE("R-HDR-6 unparsed request: the 96 reserved bits keep the copied client address") {
  check_bytes(encode_error(rej("not_multiple_of_4"), ResultCode::MalformedRequest, false),
              resp("malformed_not_multiple_of_4"));
}

TEST_CASE("R-HDR-6 parsed request: the 96 reserved bits are zero, the rest is copied") {
  Bytes request = req("map_all_options");
  auto b = encode_error(request, ResultCode::NotAuthorized, true, 1234);
  REQUIRE(b.size() == request.size());
  CHECK(b[0] == 2);
  CHECK(b[1] == 0x81);
  CHECK(b[2] == 0);
  CHECK(b[3] == 2);  // NOT_AUTHORIZED
  CHECK(Bytes(b.begin() + 4, b.begin() + 8) == Bytes{0, 0, 0x04, 0xd2});
  CHECK(Bytes(b.begin() + 8, b.begin() + 12) == Bytes{0, 0, 0, 42});
  CHECK(Bytes(b.begin() + 12, b.begin() + 24) == Bytes(12, 0));
  // R-RC-4: opcode data (suggested port/address become the "assigned" ones) and every option.
  CHECK(Bytes(b.begin() + 24, b.end()) == Bytes(request.begin() + 24, request.end()));
}

TEST_CASE("R-HDR-6 byte 2 is zeroed and the version set to 2 whatever the request had") {
  Bytes request = req("map_reserved_set");  // reserved bytes 2..3 are ff ff
  auto b = encode_error(request, ResultCode::MalformedOption, true);
  CHECK(b[0] == 2);
  CHECK(b[2] == 0);
  CHECK(b[3] == 6);
  auto v1 = encode_error(rej("version_1"), ResultCode::UnsuppVersion, false);
  CHECK(v1[0] == 2);  // R-VER-2: the closest version we support
  CHECK(v1[1] == 0x81);
}

TEST_CASE("R-HDR-7 UNSUPP_OPCODE copies the payload untouched") {
  Bytes request = rej("opcode_authentication");
  auto b = encode_error(request, ResultCode::UnsuppOpcode, false);
  REQUIRE(b.size() == 28);
  CHECK(b[1] == 0x83);
  CHECK(b[3] == 4);
  CHECK(Bytes(b.begin() + 12, b.end()) == Bytes(request.begin() + 12, request.end()));
}

TEST_CASE("R-HDR-5 error copy is truncated to 1100 bytes") {
  Bytes big = req("map");
  big.resize(1104);
  for (std::size_t i = 60; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i);
  auto b = encode_error(big, ResultCode::MalformedRequest, false);
  REQUIRE(b.size() == 1100);
  CHECK(Bytes(b.begin() + 12, b.end()) == Bytes(big.begin() + 12, big.begin() + 1100));
  big.resize(1101);
  CHECK(encode_error(big, ResultCode::MalformedRequest, false).size() == 1100);
}

TEST_CASE("R-HDR-5 error copy is zero padded to a multiple of 4") {
  for (std::size_t extra = 1; extra <= 3; ++extra) {
    Bytes request = cat(req("map"), Bytes(extra, 0x55));
    auto b = encode_error(request, ResultCode::MalformedRequest, false);
    CAPTURE(extra);
    REQUIRE(b.size() == 64);
    for (std::size_t i = 60; i < 60 + extra; ++i) CHECK(b[i] == 0x55);
    for (std::size_t i = 60 + extra; i < 64; ++i) CHECK(b[i] == 0);
  }
}

TEST_CASE("R-HDR-6 error response returns 0 when the output is too small") {
  CHECK(encode_error(req("map"), ResultCode::MalformedRequest, true, kLongError, 59).empty());
  CHECK(encode_error(req("map"), ResultCode::MalformedRequest, true, kLongError, 60).size() == 60);
  CHECK(encode_error(rej("natpmp_external"), ResultCode::UnsuppVersion, false, kLongError, 23)
            .empty());
}

TEST_CASE("R-HDR-6 error responses to every reject vector decode as responses") {
  // Whatever the server answers must be a well-formed response for a client: the R bit, 24..1100
  // bytes, a multiple of 4.
  for (const char* name : {"natpmp_external", "natpmp_map", "version_1", "version_3_short",
                           "not_multiple_of_4", "map_body_short", "peer_body_short",
                           "opcode_authentication", "opcode_unknown_header_only"}) {
    CAPTURE(name);
    auto b = encode_error(rej(name), ResultCode::MalformedRequest, false);
    REQUIRE(b.size() >= 24);
    CHECK(b.size() % 4 == 0);
    CHECK((b[1] & 0x80) != 0);
  }
}

// ---- requests (client side, RFC 6887 §7.1) ----

TEST_CASE("R-MAP-1 encode_request writes the MAP vector") {
  wire::Request r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = 7200;
  r.client_addr = ip("192.0.2.2");
  r.body = map_body();
  Bytes out(1100);
  out.resize(wire::encode_request(r, out));
  check_bytes(out, req("map"));
}

TEST_CASE("R-PEER-1 encode_request writes the PEER vector") {
  wire::Request r;
  r.opcode = wire::Opcode::Peer;
  r.lifetime = 3600;
  r.client_addr = ip("192.0.2.2");
  auto p = peer_body();
  p.external_port = 0;
  p.external_addr = wire::IpAddr::v4_any();
  r.body = p;
  Bytes out(1100);
  out.resize(wire::encode_request(r, out));
  check_bytes(out, req("peer"));
}

TEST_CASE("R-ANN-1 encode_request writes the ANNOUNCE vectors") {
  wire::Request r;
  r.opcode = wire::Opcode::Announce;
  r.client_addr = ip("2001:db8::2");
  Bytes out(1100);
  out.resize(wire::encode_request(r, out));
  check_bytes(out, req("announce"));
  r.options.capability = std::array<std::uint8_t, 16>{};
  out.assign(1100, 0);
  out.resize(wire::encode_request(r, out));
  check_bytes(out, req("announce_capability"));
}

TEST_CASE("encode_request can send another version (for tests of R-VER-2)") {
  wire::Request r;
  r.version = 1;
  r.opcode = wire::Opcode::Announce;
  Bytes out(100);
  out.resize(wire::encode_request(r, out));
  REQUIRE(out.size() == 24);
  CHECK(out[0] == 1);
  CHECK(wire::decode_request(out).index() == 1);  // Reject
}

TEST_CASE("encode_request returns 0 on a body mismatch or a small buffer") {
  wire::Request r;
  r.opcode = wire::Opcode::Peer;
  r.body = map_body();
  Bytes out(1100);
  CHECK(wire::encode_request(r, out) == 0);
  r.opcode = wire::Opcode::Map;
  CHECK(wire::encode_request(r, std::span<std::uint8_t>(out.data(), 59)) == 0);
  CHECK(wire::encode_request(r, std::span<std::uint8_t>(out.data(), 60)) == 60);
}
