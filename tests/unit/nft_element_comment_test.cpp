// SPDX-License-Identifier: GPL-2.0-or-later
// Element comments (src/nft/element_comment.hpp): encode/parse round trips, escaping, limits.
#include <doctest/doctest.h>

#include "nft/element_comment.hpp"

using pcpd::nft::ElementComment;
using pcpd::nft::kMaxCommentLength;
namespace core = pcpd::core;
namespace wire = pcpd::wire;

namespace {

ElementComment sample() {
  ElementComment c;
  c.origin = core::Origin::Pcp;
  c.kind = core::MappingKind::Map;
  c.nonce = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
  c.lifetime = 3600;
  return c;
}

void check_round_trip(const ElementComment& c) {
  auto text = c.encode();
  CHECK(text.size() <= kMaxCommentLength);
  auto back = ElementComment::parse(text);
  REQUIRE(back.has_value());
  CHECK(back->origin == c.origin);
  CHECK(back->kind == c.kind);
  CHECK(back->client == c.client);
  CHECK(back->nonce == c.nonce);
  CHECK(back->lifetime == c.lifetime);
  CHECK(back->third_party == c.third_party);
  CHECK(back->checkpoint == c.checkpoint);
  CHECK(back->checkpoint_deferred == c.checkpoint_deferred);
  CHECK(back->description == c.description);
  CHECK(back->description_truncated == c.description_truncated);
}

}  // namespace

TEST_CASE("nft comment: minimal form is compact and readable") {
  auto c = sample();
  CHECK(c.encode() == "pcp map n=00112233445566778899aabb l=3600");
  check_round_trip(c);
}

TEST_CASE("nft comment: every field round-trips (THIRD_PARTY client, flags, NAT-PMP, PEER)") {
  auto c = sample();
  c.client = wire::IpAddr::parse("2001:db8::1");
  c.third_party = true;
  c.checkpoint = true;
  c.description = "web server";
  CHECK(c.encode() == "pcp map c=2001:db8::1 n=00112233445566778899aabb l=3600 f=tk d=web server");
  check_round_trip(c);
  c.origin = core::Origin::NatPmp;
  c.kind = core::MappingKind::Peer;
  c.client = wire::IpAddr::parse("192.0.2.7");
  c.lifetime = 0xffffffffu;
  check_round_trip(c);
}

TEST_CASE("nft comment: a deferred election (w) survives the kernel, so a restart keeps the wish") {
  auto c = sample();
  c.checkpoint_deferred = true;
  CHECK(c.encode() == "pcp map n=00112233445566778899aabb l=3600 f=w");
  check_round_trip(c);
}

TEST_CASE("nft comment: from(Mapping) omits the client when it is the internal address") {
  core::Mapping m;
  m.internal_addr = *wire::IpAddr::parse("192.0.2.10");
  m.client_addr = m.internal_addr;
  auto c = ElementComment::from(m);
  CHECK_FALSE(c.client.has_value());
  m.client_addr = *wire::IpAddr::parse("192.0.2.11");
  CHECK(ElementComment::from(m).client == m.client_addr);
}

TEST_CASE("nft comment: odd descriptions are escaped and come back byte for byte") {
  auto c = sample();
  SUBCASE("quotes, backslash, control bytes, DEL") {
    c.description = std::string("a\"b\\c\n\td\x7f") + std::string(1, '\0') + "e";
    auto text = c.encode();
    CHECK(text.find('"') == std::string::npos);
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.find('\0') == std::string::npos);
    CHECK(text.ends_with(R"(d=a\x22b\x5cc\x0a\x09d\x7f\x00e)"));
  }
  SUBCASE("valid UTF-8 kept, invalid bytes escaped") {
    c.description = "caf\xc3\xa9 \xe2\x82\xac \xff\xc3 \xed\xa0\x80";
    auto text = c.encode();
    CHECK(text.find("caf\xc3\xa9 \xe2\x82\xac") != std::string::npos);
    CHECK(text.ends_with(R"(\xff\xc3 \xed\xa0\x80)"));
  }
  SUBCASE("looks like other fields") { c.description = " n=ffffffffffffffffffffffff l=1 d=x f=t "; }
  SUBCASE("trailing backslash-like text") { c.description = "\\x4"; }
  check_round_trip(c);
}

TEST_CASE("nft comment: a long description is cut to the limit at a character boundary") {
  auto c = sample();
  c.client = wire::IpAddr::parse("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
  c.third_party = c.checkpoint = true;
  std::string d;
  for (int i = 0; i < 300; ++i) d += (i % 3 == 0) ? "\xe2\x82\xac" : "\"";
  c.description = d;
  auto text = c.encode();
  CHECK(text.size() <= kMaxCommentLength);
  CHECK(text.size() >= kMaxCommentLength - 4);  // filled up to less than one unit
  auto back = ElementComment::parse(text);
  REQUIRE(back.has_value());
  CHECK(back->description_truncated);
  CHECK(d.starts_with(back->description));
  CHECK(back->description.size() < d.size());
  // the cut never leaves half a UTF-8 character or escape behind
  const auto& got = back->description;
  CHECK((got.ends_with("\xe2\x82\xac") || got.ends_with("\"")));
  // a short limit still keeps the fixed fields
  auto short_text = c.encode(120);
  CHECK(short_text.size() <= 120);
  REQUIRE(ElementComment::parse(short_text).has_value());
  CHECK(ElementComment::parse(short_text)->nonce == c.nonce);
}

TEST_CASE("nft comment: text that is not a pcpd comment is refused") {
  for (const char* bad : {"", "hello", "pcp", "pcp map", "pcp map l=1", "pcp map n=0011 l=1",
                          "pcp map n=00112233445566778899aabg l=1", "pcp map n=00112233445566778899aabb",
                          "pcp map n=00112233445566778899aabb l=x", "pcp map n=00112233445566778899aabb l=99999999999",
                          "pcp map n=00112233445566778899aabb l=1 f=z", "pcp map n=00112233445566778899aabb l=1 q=1",
                          "pcp map c=300.1.1.1 n=00112233445566778899aabb l=1",
                          "pcp map n=00112233445566778899aabb l=1 d=bad\\x4", "pcp map n=00112233445566778899aabb l=1 d=\\q00",
                          "upnp map n=00112233445566778899aabb l=1", "pcp dmz n=00112233445566778899aabb l=1"}) {
    CAPTURE(bad);
    CHECK_FALSE(ElementComment::parse(bad).has_value());
  }
}

TEST_CASE("nft comment: a static mapping reads 'static map' and round-trips") {
  auto c = sample();
  c.origin = core::Origin::Static;
  c.nonce = {};
  c.lifetime = core::kStaticLifetime;
  c.description = "ssh to the nas";
  CHECK(c.encode() == "static map n=000000000000000000000000 l=4294967295 d=ssh to the nas");
  check_round_trip(c);
}
