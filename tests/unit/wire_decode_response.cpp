// SPDX-License-Identifier: GPL-2.0-or-later
// wire::decode_response (client side, RFC 6887 §8.3) and the round trips
// request -> encode -> decode and response -> encode -> decode.
#include <array>

#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
using wire::ResultCode;

namespace {

Bytes resp(const char* name) { return vec("pcp_responses.hex", name); }
Bytes req(const char* name) { return vec("pcp_requests.hex", name); }
Bytes rej(const char* name) { return vec("pcp_request_rejects.hex", name); }

// The Response views the bytes (its DESCRIPTION): no temporaries.
wire::Response decode_resp_ok(Bytes&& b, const wire::OptionCodes& codes = {}) = delete;
wire::Response decode_resp_ok(const Bytes& b, const wire::OptionCodes& codes = {}) {
  auto d = wire::decode_response(b, codes);
  if (auto* e = std::get_if<wire::ResponseError>(&d)) {
    FAIL_CHECK("response ignored: " << e->reason << " for " << hex(b));
    return {};
  }
  return std::get<wire::Response>(d);
}

std::string resp_error(const Bytes& b) {
  auto d = wire::decode_response(b);
  if (auto* e = std::get_if<wire::ResponseError>(&d)) return e->reason;
  FAIL_CHECK("response accepted, expected it ignored: " << hex(b));
  return {};
}

void check_same_options(const wire::Options& a, const wire::Options& b) {
  CHECK(a.third_party == b.third_party);
  CHECK(a.prefer_failure == b.prefer_failure);
  REQUIRE(a.filter_count == b.filter_count);
  for (std::size_t i = 0; i < a.filter_count; ++i) CHECK(a.filters[i] == b.filters[i]);
  CHECK(a.description == b.description);
  CHECK(a.checkpoint_required == b.checkpoint_required);
  CHECK(a.capability == b.capability);
}

void check_same_body(const wire::Body& a, const wire::Body& b) {
  REQUIRE(a.index() == b.index());
  if (auto* m = std::get_if<wire::MapBody>(&a)) {
    const auto& n = std::get<wire::MapBody>(b);
    CHECK(m->nonce == n.nonce);
    CHECK(m->protocol == n.protocol);
    CHECK(m->internal_port == n.internal_port);
    CHECK(m->external_port == n.external_port);
    CHECK(m->external_addr == n.external_addr);
  } else if (auto* p = std::get_if<wire::PeerBody>(&a)) {
    const auto& q = std::get<wire::PeerBody>(b);
    CHECK(p->nonce == q.nonce);
    CHECK(p->protocol == q.protocol);
    CHECK(p->internal_port == q.internal_port);
    CHECK(p->external_port == q.external_port);
    CHECK(p->external_addr == q.external_addr);
    CHECK(p->remote_port == q.remote_port);
    CHECK(p->remote_addr == q.remote_addr);
  }
}

}  // namespace

// ---- client decode: what a client must ignore (RFC 6887 §8.3) ----

TEST_CASE("client ignores a message with the R bit clear") {
  CHECK(resp_error(req("map")) == "not a response (R bit clear)");
}

TEST_CASE("client ignores a response shorter than 24 bytes") {
  Bytes b = resp("announce_success");
  b.resize(20);
  CHECK(resp_error(b) == "shorter than 24 bytes");
  CHECK(resp_error(vec("natpmp.hex", "external_response")) == "shorter than 24 bytes");
}

TEST_CASE("client ignores a response longer than 1100 bytes") {
  Bytes b = resp("announce_success");
  b.resize(1104, 0);
  CHECK(resp_error(b) == "longer than 1100 bytes");
}

TEST_CASE("client ignores a response whose length is not a multiple of 4") {
  Bytes b = cat(resp("announce_success"), Bytes{0, 0});
  CHECK(resp_error(b) == "length not a multiple of 4");
}

TEST_CASE("client ignores a response with bad option framing") {
  Bytes b = cat(resp("announce_success"), Bytes{0x80, 0, 0, 8, 'a', 'b', 'c', 'd'});
  CHECK(resp_error(b) == "malformed option");
}

TEST_CASE("client ignores a response with a known option of the wrong length") {
  Bytes b = cat(resp("announce_success"), Bytes{0xe0, 0, 0, 4, 0, 0, 0, 0});  // CAPABILITY of 4
  CHECK(resp_error(b) == "malformed option");
}

TEST_CASE("client ignores a MAP or PEER response without its opcode data") {
  Bytes b = resp("map_success");
  b.resize(56);
  CHECK(resp_error(b) == "opcode data too short");
  Bytes p = resp("peer_success");
  p.resize(60);
  CHECK(resp_error(p) == "opcode data too short");
}

TEST_CASE("client ignores a response with an unknown opcode") {
  Bytes b = resp("announce_success");
  b[1] = 0x85;
  CHECK(resp_error(b) == "unknown opcode");
}

TEST_CASE("client skips unknown options in a response") {
  Bytes b = cat(resp("announce_success"), Bytes{0x81, 0, 0, 4, 0, 0, 0, 0, 0x04, 0, 0, 0});
  auto r = decode_resp_ok(b);
  CHECK(r.options.ignored_optional == 2);  // PREFIX64 and NONCE: neither is ours to act on
}

// ---- client decode: vectors ----

TEST_CASE("client decodes the MAP success vector") {
  const Bytes r_bytes = resp("map_success");
  auto r = decode_resp_ok(r_bytes);
  CHECK(r.version == 2);
  CHECK(r.opcode == wire::Opcode::Map);
  CHECK(r.result == ResultCode::Success);
  CHECK(r.lifetime == 7200);
  CHECK(r.epoch == 42);
  const auto& m = std::get<wire::MapBody>(r.body);
  CHECK(m.external_port == 8080);
  CHECK(m.external_addr == ip("203.0.113.1"));
  CHECK(r.options.third_party == ip("192.0.2.9"));
  CHECK(r.options.prefer_failure);
  CHECK(r.options.filter_count == 2);
  CHECK(r.options.description == std::string_view("web"));
  CHECK(r.options.checkpoint_required);
  REQUIRE(r.options.capability.has_value());
  CHECK((*r.options.capability)[0] == 0x40);
  CHECK((*r.options.capability)[14] == 0x01);
  CHECK((*r.options.capability)[15] == 0x80);
}

TEST_CASE("client decodes the PEER success vector") {
  const Bytes r_bytes = resp("peer_success");
  auto r = decode_resp_ok(r_bytes);
  CHECK(r.opcode == wire::Opcode::Peer);
  const auto& p = std::get<wire::PeerBody>(r.body);
  CHECK(p.external_port == 50000);
  CHECK(p.remote_port == 80);
  CHECK(p.remote_addr == ip("198.51.100.7"));
}

TEST_CASE("client decodes ANNOUNCE, with and without CAPABILITY") {
  const Bytes a_bytes = resp("announce_success");
  auto a = decode_resp_ok(a_bytes);
  CHECK(a.opcode == wire::Opcode::Announce);
  CHECK(a.lifetime == 0);
  CHECK_FALSE(a.options.capability.has_value());
  const Bytes c_bytes = resp("announce_capability");
  auto c = decode_resp_ok(c_bytes);
  CHECK(c.options.capability.has_value());
}

TEST_CASE("R-RC-4 client decodes a MAP error response with its opcode data") {
  // An error response copies the request: the "assigned" fields are the suggested ones.
  Bytes request = req("map_all_options");
  Bytes out(1100);
  out.resize(wire::encode_error_response(request, ResultCode::NotAuthorized, 1800, 7, true, out));
  auto r = decode_resp_ok(out);
  CHECK(r.result == ResultCode::NotAuthorized);
  CHECK(r.lifetime == 1800);
  CHECK(r.epoch == 7);
  auto original = decode_ok(request);
  check_same_body(r.body, original.body);
  check_same_options(r.options, original.options);
}

TEST_CASE("R-VER-3 client reads UNSUPP_VERSION to a NAT-PMP request as a PCP response") {
  Bytes out(100);
  out.resize(wire::encode_error_response(rej("natpmp_external"), ResultCode::UnsuppVersion, 1800, 3,
                                         false, out));
  auto r = decode_resp_ok(out);
  CHECK(r.result == ResultCode::UnsuppVersion);
  CHECK(r.version == 2);
  CHECK(r.opcode == wire::Opcode::Announce);
}

TEST_CASE("client decode is exactly the inverse: every response byte matters") {
  // Flipping any bit of the MAP success vector changes the decoded value or the verdict.
  Bytes base = resp("map_success");
  auto ref = decode_resp_ok(base);
  std::size_t reserved_hits = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    Bytes b = base;
    b[i] ^= 0x01;
    auto d = wire::decode_response(b);
    if (!std::holds_alternative<wire::Response>(d)) continue;
    const auto& r = std::get<wire::Response>(d);
    bool same = r.version == ref.version && r.opcode == ref.opcode && r.result == ref.result &&
                r.lifetime == ref.lifetime && r.epoch == ref.epoch;
    const auto& m = std::get<wire::MapBody>(r.body);
    const auto& n = std::get<wire::MapBody>(ref.body);
    same = same && m.nonce == n.nonce && m.protocol == n.protocol &&
           m.internal_port == n.internal_port && m.external_port == n.external_port &&
           m.external_addr == n.external_addr && r.options.third_party == ref.options.third_party &&
           r.options.filter_list().size() == ref.options.filter_list().size() &&
           r.options.filters[0] == ref.options.filters[0] &&
           r.options.filters[1] == ref.options.filters[1] &&
           r.options.description == ref.options.description &&
           r.options.capability == ref.options.capability &&
           r.options.checkpoint_required == ref.options.checkpoint_required &&
           r.options.prefer_failure == ref.options.prefer_failure &&
           r.options.ignored_optional == ref.options.ignored_optional;
    if (same) ++reserved_hits;
  }
  // Only reserved bytes may be flipped unnoticed: header 2 and 12..23, MAP 37..39, the
  // option reserved bytes (seven options), FILTER's two reserved bytes and DESCRIPTION's padding
  // byte.
  CHECK(reserved_hits == 1 + 12 + 3 + 7 + 2 + 1);
}

// ---- round trips ----

TEST_CASE("round trip: every request vector decodes, re-encodes to the same bytes") {
  for (const char* name :
       {"map", "peer", "announce", "map_all_options", "peer_all_options", "announce_capability"}) {
    CAPTURE(name);
    Bytes original = req(name);
    auto r = decode_ok(original);
    REQUIRE_FALSE(r.option_error.has_value());
    Bytes out(1100);
    out.resize(wire::encode_request(r, out));
    // The encoder writes options in its fixed order, so compare decoded values, and bytes when
    // the vector is already in that order.
    auto again = decode_ok(out);
    CHECK(again.opcode == r.opcode);
    CHECK(again.lifetime == r.lifetime);
    CHECK(again.client_addr == r.client_addr);
    check_same_body(again.body, r.body);
    check_same_options(again.options, r.options);
    if (std::string_view(name) != "map_all_options")
      CHECK(out == original);
    else
      CHECK(out.size() == original.size());
  }
}

TEST_CASE("round trip: request -> encode -> decode keeps every field, every option") {
  wire::Request r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = 0xfffffffe;
  r.client_addr = ip("2001:db8::1234");
  wire::MapBody m;
  m.nonce = {0xff, 0, 0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  m.protocol = 132;  // SCTP
  m.internal_port = 65535;
  m.external_port = 1;
  m.external_addr = ip("2001:db8::ffff");
  r.body = m;
  r.options.third_party = ip("2001:db8::99");
  r.options.prefer_failure = true;
  for (std::uint8_t i = 0; i < 10; ++i)
    r.options.filters[i] = {static_cast<std::uint8_t>(i * 12), static_cast<std::uint16_t>(i),
                            ip("2001:db8::")};
  r.options.filter_count = 10;
  std::string text = "räksmörgås";  // 13 bytes of UTF-8: 3 bytes of padding
  r.options.description = text;
  r.options.checkpoint_required = true;
  r.options.capability = std::array<std::uint8_t, 16>{};
  Bytes out(1100);
  out.resize(wire::encode_request(r, out));
  REQUIRE(out.size() == 60 + 20 + 4 + 10 * 24 + 4 + 16 + 4 + 4 + 16);
  auto d = decode_ok(out);
  CHECK_FALSE(d.option_error.has_value());
  CHECK(d.lifetime == r.lifetime);
  CHECK(d.client_addr == r.client_addr);
  check_same_body(d.body, r.body);
  check_same_options(d.options, r.options);
}

TEST_CASE("round trip: PEER request -> encode -> decode") {
  wire::Request r;
  r.opcode = wire::Opcode::Peer;
  r.lifetime = 60;
  r.client_addr = ip("192.0.2.77");
  wire::PeerBody p;
  p.nonce = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  p.protocol = 6;
  p.internal_port = 12345;
  p.external_port = 23456;
  p.external_addr = ip("203.0.113.9");
  p.remote_port = 443;
  p.remote_addr = ip("198.51.100.200");
  r.body = p;
  r.options.description = "";
  r.options.checkpoint_required = true;
  Bytes out(1100);
  out.resize(wire::encode_request(r, out));
  auto d = decode_ok(out);
  CHECK_FALSE(d.option_error.has_value());
  check_same_body(d.body, r.body);
  check_same_options(d.options, r.options);
}

TEST_CASE("round trip: response -> encode -> decode for MAP, PEER, ANNOUNCE") {
  wire::OptionCodes codes;
  codes.checkpoint_required = 193;
  codes.capability = 230;
  for (auto op : {wire::Opcode::Map, wire::Opcode::Peer, wire::Opcode::Announce}) {
    CAPTURE(wire::to_string(op));
    wire::Response r;
    r.opcode = op;
    r.result = op == wire::Opcode::Peer ? ResultCode::CannotProvideExternal : ResultCode::Success;
    r.lifetime = 86400;
    r.epoch = 0x12345678;
    if (op == wire::Opcode::Map) {
      wire::MapBody m;
      m.protocol = 17;
      m.internal_port = 53;
      m.external_port = 5353;
      m.external_addr = ip("203.0.113.53");
      r.body = m;
      r.options.filters[0] = {104, 0, ip("198.51.100.0")};
      r.options.filter_count = 1;
      r.options.third_party = ip("192.0.2.50");
    } else if (op == wire::Opcode::Peer) {
      wire::PeerBody p;
      p.protocol = 6;
      p.internal_port = 1;
      p.remote_port = 2;
      p.remote_addr = ip("2001:db8::5");
      r.body = p;
      r.options.description = "peer";
    }
    std::array<std::uint8_t, 16> c{};
    c[0] = 0x80;
    r.options.capability = c;
    Bytes out(1100);
    out.resize(wire::encode_response(r, out, codes));
    REQUIRE_FALSE(out.empty());
    auto d = decode_resp_ok(out, codes);
    CHECK(d.opcode == r.opcode);
    CHECK(d.result == r.result);
    CHECK(d.lifetime == r.lifetime);
    CHECK(d.epoch == r.epoch);
    check_same_body(d.body, r.body);
    check_same_options(d.options, r.options);
    // With the default codes the configured ones are unknown optional options: skipped.
    auto plain = decode_resp_ok(out);
    CHECK_FALSE(plain.options.capability.has_value());
    CHECK(plain.options.ignored_optional == 1);
  }
}
