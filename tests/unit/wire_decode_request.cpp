// SPDX-License-Identifier: GPL-2.0-or-later
// wire::decode_request: every reject path and every option error, then successful decodes.
// Vectors: tests/vectors/pcp_request_rejects.hex, pcp_requests.hex.
#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
using wire::ResultCode;

namespace {
Bytes rej(const char* name) { return vec("pcp_request_rejects.hex", name); }
Bytes req(const char* name) { return vec("pcp_requests.hex", name); }
}  // namespace

// ---- header checks, in the order of docs/design.md "Order of checks" ----

TEST_CASE("R-HDR-3 fewer than 2 bytes is dropped") {
  check_drop(rej("empty"));
  check_drop(rej("one_byte"));
  CHECK(rej("empty").empty());
}

TEST_CASE("R-HDR-4 response bit set is dropped") { check_drop(rej("r_bit")); }

TEST_CASE("R-HDR-4 response bit is checked before the version") {
  // Version 1 would be UNSUPP_VERSION; the R bit wins, so a reflected response is never answered.
  check_drop(rej("r_bit_bad_version"));
}

TEST_CASE("R-VER-2 version 1 (draft PCP) gets UNSUPP_VERSION") {
  check_respond(rej("version_1"), ResultCode::UnsuppVersion);
}

TEST_CASE("R-VER-2 unsupported version is answered at any length >= 2") {
  check_respond(rej("version_3_short"), ResultCode::UnsuppVersion);
}

TEST_CASE("R-VER-3 NAT-PMP version 0 at the PCP layer is an unsupported version") {
  // The daemon routes version 0 to NAT-PMP first; if it ever reaches decode_request, it is just
  // another version (RFC 6887 App. A).
  check_respond(rej("natpmp_external"), ResultCode::UnsuppVersion);
  check_respond(rej("natpmp_map"), ResultCode::UnsuppVersion);
}

TEST_CASE("R-HDR-5 supported version shorter than 24 bytes is dropped") {
  check_drop(rej("short_header"));
  // 23 bytes: the < 24 drop comes before the multiple-of-4 check (spec correction C2).
  CHECK(rej("short_header_odd").size() == 23);
  check_drop(rej("short_header_odd"));
}

TEST_CASE("R-HDR-5 length not a multiple of 4 is MALFORMED_REQUEST") {
  CHECK(rej("not_multiple_of_4").size() == 62);
  check_respond(rej("not_multiple_of_4"), ResultCode::MalformedRequest);
}

TEST_CASE("R-HDR-5 longer than 1100 bytes is MALFORMED_REQUEST") {
  Bytes big = req("map");
  big.resize(1104, 0);  // a multiple of 4, so only the size is wrong
  check_respond(big, ResultCode::MalformedRequest);
  big.resize(1101, 0);  // the daemon reads 1101 bytes to see an oversize datagram
  check_respond(big, ResultCode::MalformedRequest);
}

TEST_CASE("R-HDR-5 exactly 1100 bytes is accepted") {
  // MAP + one DESCRIPTION filling the rest: 60 + 4 + 1036 would pass 1016, so use padding of
  // unknown optional options instead: 1100 - 60 = 1040 = 2 options of 4 + 516.
  Bytes b = req("map");
  for (int i = 0; i < 2; ++i) {
    Bytes opt{0xfe, 0x00, 0x02, 0x04};  // private optional code 254, length 516
    opt.resize(4 + 516, 0);
    b = cat(b, opt);
  }
  REQUIRE(b.size() == 1100);
  auto r = decode_ok(b);
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.options.ignored_optional == 2);
}

TEST_CASE("R-HDR-7 opcode AUTHENTICATION (3) is UNSUPP_OPCODE") {
  check_respond(rej("opcode_authentication"), ResultCode::UnsuppOpcode);
}

TEST_CASE("R-HDR-7 unknown opcode is UNSUPP_OPCODE, never too short for its opcode") {
  // Local decision (R-HDR-5): an unknown opcode has no size, so a bare header is UNSUPP_OPCODE.
  check_respond(rej("opcode_unknown_header_only"), ResultCode::UnsuppOpcode);
  // Every opcode 3..127 alike.
  for (unsigned op = 3; op < 128; ++op) {
    Bytes b = rej("opcode_unknown_header_only");
    b[1] = static_cast<std::uint8_t>(op);
    CAPTURE(op);
    check_respond(b, ResultCode::UnsuppOpcode);
  }
}

TEST_CASE("R-HDR-5 length checks come before the opcode check") {
  check_respond(rej("opcode_unknown_not_multiple_of_4"), ResultCode::MalformedRequest);
}

TEST_CASE("R-HDR-5 MAP shorter than its 36 bytes of opcode data is MALFORMED_REQUEST") {
  CHECK(rej("map_body_short").size() == 56);
  check_respond(rej("map_body_short"), ResultCode::MalformedRequest);
}

TEST_CASE("R-HDR-5 PEER shorter than its 56 bytes of opcode data is MALFORMED_REQUEST") {
  CHECK(rej("peer_body_short").size() == 60);
  check_respond(rej("peer_body_short"), ResultCode::MalformedRequest);
}

TEST_CASE("R-HDR-9 reserved fields are ignored on receipt") {
  const Bytes m_bytes = req("map_reserved_set");
  auto m = decode_ok(m_bytes);
  CHECK_FALSE(m.option_error.has_value());
  const Bytes plain_bytes = req("map");
  auto plain = decode_ok(plain_bytes);
  CHECK(std::get<wire::MapBody>(m.body).internal_port == 8080);
  CHECK(std::get<wire::MapBody>(m.body).external_addr ==
        std::get<wire::MapBody>(plain.body).external_addr);
  REQUIRE(m.options.filter_count == 1);
  CHECK(m.options.filters[0].prefix_length == 120);
  CHECK(m.options.description == std::string_view("A"));

  const Bytes p_bytes = req("peer_reserved_set");
  auto p = decode_ok(p_bytes);
  CHECK_FALSE(p.option_error.has_value());
  auto peer = std::get<wire::PeerBody>(p.body);
  CHECK(peer.remote_port == 80);
  CHECK(peer.remote_addr == ip("198.51.100.7"));
}

// ---- options (RFC 6887 §7.3) ----

TEST_CASE("R-OPT-1 an option running past the end is MALFORMED_OPTION") {
  check_option_error(rej("option_past_end"), ResultCode::MalformedOption);
  // Framing is checked before the code is looked at (THIRD_PARTY, 8 of 16 bytes).
  check_option_error(rej("option_past_end_mandatory"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-1 an option without its padding fails the multiple-of-4 check first") {
  CHECK(rej("option_unpadded").size() == 69);
  check_respond(rej("option_unpadded"), ResultCode::MalformedRequest);
}

TEST_CASE("R-OPT-1 the length field excludes the padding") {
  const Bytes r_bytes = cat(req("map"), req("opt_description"));
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.options.description == std::string_view("web"));  // 3 bytes, not 4
}

TEST_CASE("R-OPT-2 unknown mandatory options are UNSUPP_OPTION") {
  check_option_error(rej("unsupp_nonce"), ResultCode::UnsuppOption);
  check_option_error(rej("unsupp_id_indicator"), ResultCode::UnsuppOption);
  check_option_error(rej("unsupp_code_0"), ResultCode::UnsuppOption);
  check_option_error(rej("unsupp_code_127"), ResultCode::UnsuppOption);
  check_option_error(rej("unsupp_private_mandatory"), ResultCode::UnsuppOption);
  check_option_error(rej("unsupp_in_announce"), ResultCode::UnsuppOption);
}

TEST_CASE("R-OPT-2 every RFC 7652 option (4..12) is UNSUPP_OPTION") {
  for (std::uint8_t code = 4; code <= 12; ++code) {
    Bytes b = cat(req("map"), Bytes{code, 0, 0, 0});
    CAPTURE(code);
    check_option_error(b, ResultCode::UnsuppOption);
  }
}

TEST_CASE("R-OPT-2 unknown optional options are ignored") {
  const Bytes r_bytes = req("map_unknown_optional");
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.options.ignored_optional == 4);  // PREFIX64, PORT_SET, 255, 254
}

TEST_CASE("R-OPT-2 a configured CHECKPOINT_REQUIRED code moves the option") {
  // With the code moved to 200, 192 is an unknown optional option and 200 is the checkpoint.
  wire::OptionCodes codes;
  codes.checkpoint_required = 200;
  const Bytes r_bytes = cat(req("map"), req("opt_checkpoint"));
  auto r = decode_ok(r_bytes, codes);
  CHECK_FALSE(r.options.checkpoint_required);
  CHECK(r.options.ignored_optional == 1);
  const Bytes r2_bytes = cat(req("map"), Bytes{200, 0, 0, 0});
  auto r2 = decode_ok(r2_bytes, codes);
  CHECK(r2.options.checkpoint_required);
  CHECK(r2.options.ignored_optional == 0);
}

TEST_CASE("R-OPT-2 a configured CAPABILITY code moves the option") {
  wire::OptionCodes codes;
  codes.capability = 250;
  Bytes opt = req("opt_capability");
  opt[0] = 250;
  const Bytes r_bytes = cat(req("announce"), opt);
  auto r = decode_ok(r_bytes, codes);
  CHECK(r.options.capability.has_value());
  const Bytes r2_bytes = cat(req("announce"), req("opt_capability"));
  auto r2 = decode_ok(r2_bytes, codes);
  CHECK_FALSE(r2.options.capability.has_value());
  CHECK(r2.options.ignored_optional == 1);
}

TEST_CASE("R-OPT-3 options are processed in order and the first error wins") {
  check_option_error(rej("first_error_unsupp"), ResultCode::UnsuppOption);
  check_option_error(rej("first_error_malformed"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 R-TP-1 THIRD_PARTY with a wrong length is MALFORMED_OPTION") {
  check_option_error(rej("third_party_len_12"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 R-TP-1 THIRD_PARTY twice is MALFORMED_OPTION") {
  check_option_error(rej("third_party_twice"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 R-PF-1 PREFER_FAILURE with data is MALFORMED_OPTION") {
  check_option_error(rej("prefer_failure_len_4"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 R-PF-1 PREFER_FAILURE twice is MALFORMED_OPTION") {
  check_option_error(rej("prefer_failure_twice"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 R-FLT-1 FILTER with a wrong length is MALFORMED_OPTION") {
  check_option_error(rej("filter_len_16"), ResultCode::MalformedOption);
}

TEST_CASE("R-FLT-4 FILTER prefix lengths that cannot be parsed are MALFORMED_OPTION") {
  // Our reading (R-FLT-5): IPv4-mapped filters use 96..128 or 0; IPv6 0..128. The codec
  // checks this because it is a parse error; family mismatches (R-FLT-5) and lifetime 0 belong
  // to core, which knows the internal address and the request.
  check_option_error(rej("filter_v4_prefix_64"), ResultCode::MalformedOption);
  check_option_error(rej("filter_v4_prefix_95"), ResultCode::MalformedOption);
  check_option_error(rej("filter_prefix_129"), ResultCode::MalformedOption);
}

TEST_CASE("R-FLT-4 valid FILTER prefix lengths decode") {
  const Bytes r_bytes = req("map_filters_v6_prefixes");
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  REQUIRE(r.options.filter_count == 5);
  CHECK(r.options.filters[0].prefix_length == 0);
  CHECK(r.options.filters[1].prefix_length == 0);
  CHECK(r.options.filters[2].prefix_length == 128);
  CHECK(r.options.filters[2].remote_port == 22);
  CHECK(r.options.filters[2].remote_addr == ip("2001:db8::7"));
  CHECK(r.options.filters[3].remote_addr == ip("198.51.100.7"));
  CHECK(r.options.filters[4].prefix_length == 96);
}

TEST_CASE("R-FLT-1 FILTER repeats: 43 filters, as many as fit in 1100 bytes") {
  Bytes b = req("map");
  for (int i = 0; i < 43; ++i) {
    Bytes f = req("opt_filter_v4");
    f[23] = static_cast<std::uint8_t>(i);  // last address byte: 198.51.100.i
    b = cat(b, f);
  }
  REQUIRE(b.size() == 60 + 43 * 24);
  auto r = decode_ok(b);
  CHECK_FALSE(r.option_error.has_value());
  REQUIRE(r.options.filter_count == 43);
  CHECK(r.options.filter_list().size() == 43);
  CHECK(r.options.filters[42].remote_addr == ip("198.51.100.42"));
  CHECK(r.options.filters[0].remote_addr == ip("198.51.100.0"));
}

TEST_CASE("R-OPT-4 DESCRIPTION longer than 1016 bytes is MALFORMED_OPTION") {
  Bytes opt{0x80, 0x00, 0x03, 0xf9};  // length 1017
  opt.resize(4 + 1020, 'x');          // data + 3 bytes of padding
  Bytes b = cat(req("map"), opt);
  REQUIRE(b.size() == 1084);
  check_option_error(b, ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 DESCRIPTION of exactly 1016 bytes decodes and views the datagram") {
  Bytes opt{0x80, 0x00, 0x03, 0xf8};  // length 1016
  opt.resize(4 + 1016, 'y');
  Bytes b = cat(req("map"), opt);
  auto r = decode_ok(b);
  CHECK_FALSE(r.option_error.has_value());
  REQUIRE(r.options.description.has_value());
  CHECK(r.options.description->size() == 1016);
  // A view into the datagram, not a copy (no allocation in decode).
  CHECK(static_cast<const void*>(r.options.description->data()) ==
        static_cast<const void*>(b.data() + 64));
}

TEST_CASE("R-OPT-4 DESCRIPTION of length 0 decodes as empty") {
  const Bytes r_bytes = cat(req("map"), Bytes{0x80, 0, 0, 0});
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  REQUIRE(r.options.description.has_value());
  CHECK(r.options.description->empty());
}

TEST_CASE("R-OPT-4 DESCRIPTION twice is MALFORMED_OPTION") {
  check_option_error(rej("description_twice"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 CHECKPOINT_REQUIRED with data is MALFORMED_OPTION") {
  check_option_error(rej("checkpoint_len_4"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 CHECKPOINT_REQUIRED twice is MALFORMED_OPTION") {
  check_option_error(rej("checkpoint_twice"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 CAPABILITY with a wrong length is MALFORMED_OPTION") {
  check_option_error(rej("capability_len_8"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-4 CAPABILITY twice is MALFORMED_OPTION") {
  check_option_error(rej("capability_twice"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-7 R-PEER-5 PREFER_FAILURE in PEER is MALFORMED_REQUEST") {
  check_option_error(rej("prefer_failure_in_peer"), ResultCode::MalformedRequest);
}

TEST_CASE("R-OPT-7 validity for the opcode is checked before the option's length") {
  // Our reading: an option the opcode does not take is refused whatever its content.
  check_option_error(rej("prefer_failure_len_4_in_peer"), ResultCode::MalformedRequest);
}

TEST_CASE("R-OPT-7 mandatory option not valid for the opcode is MALFORMED_OPTION") {
  // Local decision (docs/design.md "Decisions"): FILTER in PEER, THIRD_PARTY / PREFER_FAILURE / FILTER in ANNOUNCE.
  check_option_error(rej("filter_in_peer"), ResultCode::MalformedOption);
  check_option_error(rej("third_party_in_announce"), ResultCode::MalformedOption);
  check_option_error(rej("prefer_failure_in_announce"), ResultCode::MalformedOption);
  check_option_error(rej("filter_in_announce"), ResultCode::MalformedOption);
}

TEST_CASE("R-OPT-7 optional option not valid for the opcode is ignored") {
  // Local decision: DESCRIPTION and CHECKPOINT_REQUIRED in ANNOUNCE are skipped, not stored.
  const Bytes r_bytes = req("announce_description_checkpoint");
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  CHECK_FALSE(r.options.description.has_value());
  CHECK_FALSE(r.options.checkpoint_required);
  CHECK(r.options.ignored_optional == 2);
}

// ---- successful decodes ----

TEST_CASE("R-MAP-1 MAP request decodes field by field") {
  Bytes b = req("map");
  REQUIRE(b.size() == 60);
  auto r = decode_ok(b);
  CHECK(r.version == 2);
  CHECK(r.opcode == wire::Opcode::Map);
  CHECK(r.lifetime == 7200);
  CHECK(r.client_addr == ip("192.0.2.2"));
  CHECK(r.client_addr.is_v4());
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.raw.data() == b.data());
  CHECK(r.raw.size() == 60);
  auto m = std::get<wire::MapBody>(r.body);
  CHECK(m.nonce == wire::Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(m.protocol == 6);
  CHECK(m.internal_port == 8080);
  CHECK(m.external_port == 8080);
  CHECK(m.external_addr == ip("203.0.113.1"));
}

TEST_CASE("R-MAP-1 MAP request with every MAP option decodes") {
  const Bytes r_bytes = req("map_all_options");
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  const auto& o = r.options;
  REQUIRE(o.third_party.has_value());
  CHECK(*o.third_party == ip("192.0.2.9"));
  CHECK(o.prefer_failure);
  REQUIRE(o.filter_count == 2);
  // R-OPT-3: filters keep their order.
  CHECK(o.filters[0] == wire::Filter{120, 0, ip("198.51.100.0")});
  CHECK(o.filters[1] == wire::Filter{64, 443, ip("2001:db8:1::")});
  CHECK(o.description == std::string_view("web"));
  CHECK(o.checkpoint_required);
  REQUIRE(o.capability.has_value());
  CHECK(*o.capability == std::array<std::uint8_t, 16>{});
  CHECK(o.ignored_optional == 0);
}

TEST_CASE("R-PEER-1 PEER request decodes field by field") {
  Bytes b = req("peer");
  REQUIRE(b.size() == 80);
  auto r = decode_ok(b);
  CHECK(r.opcode == wire::Opcode::Peer);
  CHECK(r.lifetime == 3600);
  auto p = std::get<wire::PeerBody>(r.body);
  CHECK(p.nonce[0] == 0xa1);
  CHECK(p.nonce[11] == 0xac);
  CHECK(p.protocol == 17);
  CHECK(p.internal_port == 5001);
  CHECK(p.external_port == 0);
  CHECK(p.external_addr == wire::IpAddr::v4_any());
  CHECK(p.external_addr.is_unspecified());
  CHECK(p.remote_port == 80);
  CHECK(p.remote_addr == ip("198.51.100.7"));
}

TEST_CASE("R-PEER-1 PEER request with every PEER option decodes") {
  const Bytes r_bytes = req("peer_all_options");
  auto r = decode_ok(r_bytes);
  CHECK_FALSE(r.option_error.has_value());
  CHECK(r.options.third_party == ip("192.0.2.9"));
  CHECK(r.options.description == std::string_view("web"));
  CHECK(r.options.checkpoint_required);
  CHECK(r.options.capability.has_value());
  CHECK(r.options.filter_count == 0);
  CHECK_FALSE(r.options.prefer_failure);
}

TEST_CASE("R-ANN-1 ANNOUNCE request decodes, with CAPABILITY") {
  const Bytes r_bytes = req("announce");
  auto r = decode_ok(r_bytes);
  CHECK(r.opcode == wire::Opcode::Announce);
  CHECK(std::holds_alternative<wire::AnnounceBody>(r.body));
  CHECK(r.client_addr == ip("2001:db8::2"));
  CHECK_FALSE(r.client_addr.is_v4());
  const Bytes c_bytes = req("announce_capability");
  auto c = decode_ok(c_bytes);
  CHECK_FALSE(c.option_error.has_value());
  CHECK(c.options.capability.has_value());
}

TEST_CASE("R-ANN-1 ANNOUNCE with a non-zero requested lifetime still decodes") {
  // The server ignores the field on receipt (RFC 6887 §14.1.1); the codec passes it through.
  Bytes b = req("announce");
  b[7] = 60;
  auto r = decode_ok(b);
  CHECK(r.lifetime == 60);
}

TEST_CASE("R-OPT-8 decode never reads past the buffer: every prefix of a valid request") {
  // Each truncation is rejected or decoded without touching bytes beyond it (ASan checks the
  // reads in the sanitizer build; here we check the verdict is consistent).
  Bytes full = req("map_all_options");
  for (std::size_t n = 0; n <= full.size(); ++n) {
    std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    cut.shrink_to_fit();
    auto d = wire::decode_request(cut);
    CAPTURE(n);
    if (n < 2 || n < 24) {
      REQUIRE(std::holds_alternative<wire::Reject>(d));
      CHECK(std::get<wire::Reject>(d).action == wire::Reject::Action::Drop);
    } else if (n % 4 != 0 || n < 60) {
      REQUIRE(std::holds_alternative<wire::Reject>(d));
      CHECK(std::get<wire::Reject>(d).code == ResultCode::MalformedRequest);
    } else {
      REQUIRE(std::holds_alternative<wire::Request>(d));
    }
  }
}

TEST_CASE("peek_lookup: the lookup fields of MAP and PEER requests agree with decode_request (prefetch hint)") {
  for (const char* name : {"map", "map_all_options", "map_reserved_set", "peer", "peer_all_options", "peer_reserved_set"}) {
    CAPTURE(name);
    const Bytes b = req(name);
    const auto hint = wire::peek_lookup(b);
    REQUIRE(hint.has_value());
    const auto r = decode_ok(b);
    CHECK(hint->opcode == r.opcode);
    if (const auto* m = std::get_if<wire::MapBody>(&r.body)) {
      CHECK(hint->protocol == m->protocol);
      CHECK(hint->internal_port == m->internal_port);
    } else {
      const auto& p = std::get<wire::PeerBody>(r.body);
      CHECK(hint->protocol == p.protocol);
      CHECK(hint->internal_port == p.internal_port);
      CHECK(hint->remote_port == p.remote_port);
      CHECK(hint->remote_addr == p.remote_addr);
    }
  }
  // No hint: ANNOUNCE, a response (R bit), another version, a body cut short.
  CHECK_FALSE(wire::peek_lookup(req("announce")).has_value());
  Bytes map = req("map");
  Bytes response = map;
  response[1] |= 0x80;
  CHECK_FALSE(wire::peek_lookup(response).has_value());
  Bytes v1 = map;
  v1[0] = 1;
  CHECK_FALSE(wire::peek_lookup(v1).has_value());
  CHECK_FALSE(wire::peek_lookup(std::span(map).first(59)).has_value());
  const Bytes peer = req("peer");
  CHECK_FALSE(wire::peek_lookup(std::span(peer).first(79)).has_value());
  CHECK(wire::peek_lookup(std::span(peer).first(80)).has_value());
}
