// SPDX-License-Identifier: GPL-2.0-or-later
// wire::natpmp (RFC 6886) against tests/vectors/natpmp.hex, including natpmpc's own bytes.
#include "wire/natpmp.hpp"
#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
namespace pmp = pcpd::wire::natpmp;

namespace {

Bytes v(const char* name) { return vec("natpmp.hex", name); }

pmp::Request decode_pmp_ok(const Bytes& b) {
  auto d = pmp::decode_request(b);
  if (!std::holds_alternative<pmp::Request>(d)) {
    FAIL_CHECK("NAT-PMP request rejected: " << hex(b));
    return {};
  }
  return std::get<pmp::Request>(d);
}

pmp::Reject decode_pmp_reject(const Bytes& b) {
  auto d = pmp::decode_request(b);
  if (!std::holds_alternative<pmp::Reject>(d)) {
    FAIL_CHECK("NAT-PMP request decoded, expected a reject: " << hex(b));
    return {};
  }
  return std::get<pmp::Reject>(d);
}

pmp::Response decode_pmp_resp_ok(const Bytes& b) {
  auto d = pmp::decode_response(b);
  if (auto* e = std::get_if<const char*>(&d)) {
    FAIL_CHECK("NAT-PMP response ignored: " << *e << " for " << hex(b));
    return {};
  }
  return std::get<pmp::Response>(d);
}

const char* pmp_resp_error(const Bytes& b) {
  auto d = pmp::decode_response(b);
  if (auto* e = std::get_if<const char*>(&d)) return *e;
  FAIL_CHECK("NAT-PMP response accepted: " << hex(b));
  return "";
}

}  // namespace

// ---- requests ----

TEST_CASE("R-PMP-2 natpmpc external address request 00 00 decodes") {
  auto r = decode_pmp_ok(v("external_request"));
  CHECK(r.op == pmp::Op::ExternalAddress);
}

TEST_CASE("R-PMP-2 natpmpc map request 00 02 0000 9c40 9c40 0000003c decodes") {
  Bytes b = v("map_tcp_request");
  CHECK(b == Bytes{0x00, 0x02, 0x00, 0x00, 0x9c, 0x40, 0x9c, 0x40, 0x00, 0x00, 0x00, 0x3c});
  auto r = decode_pmp_ok(b);
  CHECK(r.op == pmp::Op::MapTcp);
  CHECK(r.internal_port == 40000);
  CHECK(r.suggested_external_port == 40000);
  CHECK(r.lifetime == 60);
}

TEST_CASE("R-PMP-3 map request with lifetime 0 and port 0 (delete all) decodes") {
  auto r = decode_pmp_ok(v("map_udp_delete_request"));
  CHECK(r.op == pmp::Op::MapUdp);
  CHECK(r.internal_port == 0);
  CHECK(r.lifetime == 0);
}

TEST_CASE("R-PMP-2 map request with trailing bytes decodes, the extra ignored") {
  auto r = decode_pmp_ok(v("map_request_trailing"));
  CHECK(r.op == pmp::Op::MapUdp);
  CHECK(r.internal_port == 5000);
  CHECK(r.suggested_external_port == 5001);
  CHECK(r.lifetime == 3600);
}

TEST_CASE("R-PMP-2 map request shorter than 12 bytes is dropped") {
  CHECK(decode_pmp_reject(v("map_request_short")).action == pmp::Reject::Action::Drop);
  // Every length from 2 to 11 for both map opcodes.
  for (std::uint8_t op : {std::uint8_t{1}, std::uint8_t{2}}) {
    for (std::size_t n = 2; n < 12; ++n) {
      Bytes b(n, 0);
      b[1] = op;
      CAPTURE(n);
      CHECK(decode_pmp_reject(b).action == pmp::Reject::Action::Drop);
    }
  }
}

TEST_CASE("R-PMP-2 fewer than 2 bytes is dropped") {
  CHECK(decode_pmp_reject(v("one_byte")).action == pmp::Reject::Action::Drop);
  CHECK(decode_pmp_reject(Bytes{}).action == pmp::Reject::Action::Drop);
}

TEST_CASE("R-PMP-2 unknown opcode below 128 gets result 5") {
  auto r = decode_pmp_reject(v("unknown_opcode_3"));
  CHECK(r.action == pmp::Reject::Action::Respond);
  CHECK(r.result == pmp::Result::UnsupportedOpcode);
  CHECK(r.opcode == 3);
  auto r127 = decode_pmp_reject(v("unknown_opcode_127"));
  CHECK(r127.action == pmp::Reject::Action::Respond);
  CHECK(r127.opcode == 127);
}

TEST_CASE("R-PMP-2 opcode 128 or more is a response and is dropped") {
  CHECK(decode_pmp_reject(v("response_op_128")).action == pmp::Reject::Action::Drop);
  CHECK(decode_pmp_reject(v("response_op_130")).action == pmp::Reject::Action::Drop);
  for (unsigned op = 128; op < 256; ++op) {
    Bytes b(12, 0);
    b[1] = static_cast<std::uint8_t>(op);
    CAPTURE(op);
    CHECK(decode_pmp_reject(b).action == pmp::Reject::Action::Drop);
  }
}

TEST_CASE("RFC 6886 3.5 version other than 0 gets UnsupportedVersion") {
  auto r = decode_pmp_reject(v("version_1"));
  CHECK(r.action == pmp::Reject::Action::Respond);
  CHECK(r.result == pmp::Result::UnsupportedVersion);
  CHECK(r.opcode == 0);
}

// ---- responses ----

TEST_CASE("R-PMP-2 external address response matches the vector") {
  Bytes out(64, 0xee);
  out.resize(pmp::encode_external_address(pmp::Result::Success, 42, 0xcb007101, out));
  CHECK(out == v("external_response"));
}

TEST_CASE("R-PMP-2 map response matches the vector") {
  Bytes out(64, 0xee);
  out.resize(pmp::encode_map(pmp::Op::MapTcp, pmp::Result::Success, 42, 40000, 40000, 60, out));
  CHECK(out == v("map_tcp_response"));
  Bytes refused(64, 0xee);
  refused.resize(
      pmp::encode_map(pmp::Op::MapUdp, pmp::Result::NotAuthorized, 42, 5000, 0, 0, refused));
  CHECK(refused == v("map_udp_refused"));
}

TEST_CASE("RFC 6886 3.5 unsupported opcode: the whole request back, top bit set, result 5") {
  Bytes out(64, 0xee);
  const Bytes request{0, 3, 0x11, 0x22, 0xde, 0xad, 0xbe, 0xef};
  out.resize(pmp::encode_unsupported_opcode(request, out));
  CHECK(out == Bytes{0, 0x83, 0, 5, 0xde, 0xad, 0xbe, 0xef});
  // Two bytes are extended to four, so that the result code fits.
  Bytes short_out(64, 0xee);
  short_out.resize(pmp::encode_unsupported_opcode(Bytes{0, 3}, short_out));
  CHECK(short_out == Bytes{0, 0x83, 0, 5});
  // Never longer than 1100 bytes (RFC 6887 §7), nor than `out`.
  Bytes big_out(2000);
  CHECK(pmp::encode_unsupported_opcode(Bytes(1500, 0), big_out) == 1100);
  Bytes tiny(3);
  CHECK(pmp::encode_unsupported_opcode(request, tiny) == 0);
}

TEST_CASE("RFC 6886 3.5 unsupported version reply is 8 bytes (128 + op form, spec C16)") {
  Bytes out(64, 0xee);
  out.resize(pmp::encode_error(0, pmp::Result::UnsupportedVersion, 42, out));
  CHECK(out == v("unsupported_version"));
}

TEST_CASE("NAT-PMP encoders return 0 when the output is too small") {
  Bytes out(15);
  CHECK(pmp::encode_map(pmp::Op::MapTcp, pmp::Result::Success, 1, 2, 3, 4, out) == 0);
  out.resize(11);
  CHECK(pmp::encode_external_address(pmp::Result::Success, 1, 2, out) == 0);
  out.resize(7);
  CHECK(pmp::encode_error(1, pmp::Result::UnsupportedOpcode, 1, out) == 0);
}

TEST_CASE("NAT-PMP client decodes the response vectors") {
  auto e = decode_pmp_resp_ok(v("external_response"));
  CHECK(e.opcode == 128);
  CHECK(e.result == pmp::Result::Success);
  CHECK(e.epoch == 42);
  CHECK(e.external_v4 == 0xcb007101);
  auto m = decode_pmp_resp_ok(v("map_tcp_response"));
  CHECK(m.opcode == 130);
  CHECK(m.internal_port == 40000);
  CHECK(m.external_port == 40000);
  CHECK(m.lifetime == 60);
  auto u = decode_pmp_resp_ok(v("unsupported_opcode_3"));
  CHECK(u.opcode == 131);
  CHECK(u.result == pmp::Result::UnsupportedOpcode);
}

TEST_CASE("NAT-PMP client accepts both unsupported-version forms (spec C16)") {
  auto a = decode_pmp_resp_ok(v("unsupported_version"));
  CHECK(a.result == pmp::Result::UnsupportedVersion);
  auto b = decode_pmp_resp_ok(v("unsupported_version_rfc_form"));
  CHECK(b.opcode == 0);
  CHECK(b.result == pmp::Result::UnsupportedVersion);
}

TEST_CASE("NAT-PMP client ignores requests, short replies and PCP") {
  CHECK(std::string(pmp_resp_error(v("map_tcp_request"))) == "not a response (opcode < 128)");
  CHECK(std::string(pmp_resp_error(v("external_request"))) == "shorter than 8 bytes");
  Bytes short_ok = v("external_response");
  short_ok.resize(8);  // a success without its address
  CHECK(std::string(pmp_resp_error(short_ok)) == "external address response shorter than 12 bytes");
  Bytes short_map = v("map_tcp_response");
  short_map.resize(12);
  CHECK(std::string(pmp_resp_error(short_map)) == "map response shorter than 16 bytes");
  CHECK(std::string(pmp_resp_error(vec("pcp_responses.hex", "announce_success"))) ==
        "not NAT-PMP (version != 0)");
}

TEST_CASE("R-VER-3 a NAT-PMP client reads pcpd's PCP UNSUPP_VERSION as version 2, result 1") {
  // What natpmpc sees when pcpd answered it at the PCP layer: not NAT-PMP at all, so it falls
  // back; bytes 2..3 still hold 1 (the daemon routes version 0 to NAT-PMP, so this is a guard).
  Bytes out(100);
  out.resize(wire::encode_error_response(v("map_tcp_request"), wire::ResultCode::UnsuppVersion,
                                         1800, 0, false, out));
  CHECK(std::string(pmp_resp_error(out)) == "not NAT-PMP (version != 0)");
  CHECK(out[2] == 0);
  CHECK(out[3] == 1);
}
