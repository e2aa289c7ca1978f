// SPDX-License-Identifier: GPL-2.0-or-later
// Mapping <-> element translation (src/nft/element.hpp), and recovery from a dump, without kernel.
#include <doctest/doctest.h>

#include <cerrno>

#include "nft/element.hpp"
#include "nft/element_comment.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

namespace {

SetContents dump_of(const std::vector<core::Mapping>& ms, std::uint64_t expiration_ms) {
  SetContents sets;
  for (const auto& m : ms) {
    auto elems = mapping_elements(m);
    REQUIRE(elems.has_value());
    for (const auto& e : *elems)
      sets[static_cast<std::size_t>(e.set)].push_back({e.key, e.key_end, e.data, e.comment, expiration_ms});
  }
  return sets;
}

void check_same(const core::Mapping& a, const core::Mapping& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.origin == b.origin);
  CHECK(a.protocol == b.protocol);
  CHECK(a.internal_addr == b.internal_addr);
  CHECK(a.internal_port == b.internal_port);
  CHECK(a.external_addr == b.external_addr);
  CHECK(a.external_port == b.external_port);
  CHECK(a.remote_addr == b.remote_addr);
  CHECK(a.remote_port == b.remote_port);
  CHECK(a.client_addr == b.client_addr);
  CHECK(a.nonce == b.nonce);
  CHECK(a.lifetime == b.lifetime);
  CHECK(a.third_party == b.third_party);
  CHECK(a.checkpoint == b.checkpoint);
  CHECK(a.filters == b.filters);
  CHECK(a.description == b.description);
}

}  // namespace

TEST_CASE("nft elements: MAP NAT44 is a DNAT and an SNAT element with kernel byte layout") {
  auto m = map4(8080, 80);
  auto elems = mapping_elements(m);
  REQUIRE(elems.has_value());
  REQUIRE(elems->size() == 2);
  const auto& dnat = (*elems)[0];
  CHECK(dnat.set == SetId::Map4Dnat);
  // 203.0.113.1 . tcp . 8080 : 192.0.2.10 . 80, each field padded to 4 bytes
  CHECK(dnat.key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0});
  CHECK(dnat.data == std::vector<std::uint8_t>{192, 0, 2, 10, 0, 80, 0, 0});
  CHECK(dnat.comment == ElementComment::from(m).encode());
  const auto& snat = (*elems)[1];
  CHECK(snat.set == SetId::Map4Snat);
  CHECK(snat.key == std::vector<std::uint8_t>{192, 0, 2, 10, 6, 0, 0, 0, 0, 80, 0, 0});
  CHECK(snat.data == std::vector<std::uint8_t>{203, 0, 113, 1, 0x1f, 0x90, 0, 0});
  CHECK(snat.comment.empty());
}

TEST_CASE("nft elements: FILTER adds filt_on and one interval element per disjoint filter") {
  auto m = map4(8080);
  m.filters = {filter("198.51.100.0/24", 0), filter("192.0.2.99/32", 22)};
  auto elems = mapping_elements(m);
  REQUIRE(elems.has_value());
  REQUIRE(elems->size() == 5);
  CHECK((*elems)[2].set == SetId::Filt4On);
  CHECK((*elems)[2].key == (*elems)[0].key);
  const auto& a = (*elems)[3];  // 192.0.2.99/32 port 22 (sorted first)
  CHECK(a.set == SetId::Filt4Allow);
  CHECK(a.key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0, 192, 0, 2, 99, 0, 22, 0, 0});
  CHECK(a.key_end == a.key);
  const auto& b = (*elems)[4];
  CHECK(std::vector<std::uint8_t>(b.key.begin() + 12, b.key.end()) ==
        std::vector<std::uint8_t>{198, 51, 100, 0, 0, 0, 0, 0});
  CHECK(std::vector<std::uint8_t>(b.key_end.begin() + 12, b.key_end.end()) ==
        std::vector<std::uint8_t>{198, 51, 100, 255, 0xff, 0xff, 0, 0});
}

TEST_CASE("nft elements: pinholes, PEER v4 and v6") {
  auto p = mapping_elements(pin6(5000));
  REQUIRE(p.has_value());
  REQUIRE(p->size() == 1);
  CHECK((*p)[0].set == SetId::Pin6);
  CHECK((*p)[0].key.size() == 24);
  auto q = mapping_elements(peer4(5555));
  REQUIRE(q.has_value());
  REQUIRE(q->size() == 1);
  CHECK((*q)[0].set == SetId::Peer4Snat);
  CHECK((*q)[0].key.size() == 20);
  CHECK((*q)[0].data.size() == 8);
  auto r = mapping_elements(peer6(5555));
  REQUIRE(r.has_value());
  CHECK((*r)[0].set == SetId::Peer6);
  CHECK((*r)[0].key.size() == 44);
}

TEST_CASE("nft elements: what the table cannot express is refused with a reason") {
  auto m = map4(8080);
  m.protocol = 0;  // all protocols (R-MAP-2)
  CHECK(mapping_elements(m).error().code == EOPNOTSUPP);
  m = map4(8080);
  m.internal_port = 0;  // all ports (R-MAP-3)
  CHECK(mapping_elements(m).error().code == EOPNOTSUPP);
  m = map4(8080);
  m.external_addr = ip("2001:db8::1");
  CHECK(mapping_elements(m).error().code == EAFNOSUPPORT);
  auto p = peer4(1000);
  p.remote_addr = ip("2001:db8::1");
  CHECK(mapping_elements(p).error().code == EAFNOSUPPORT);
}

TEST_CASE("nft recovery: every kind of mapping comes back once with all its fields") {
  auto a = map4(8080);
  a.filters = {filter("198.51.100.0/24", 0), filter("192.0.2.99/32", 22)};
  a.description = "game \"server\"";
  a.checkpoint = true;
  auto b = map4(8081, 81, "192.0.2.11");
  b.origin = core::Origin::NatPmp;
  b.nonce = {};
  auto c = pin6(5000);
  c.filters = {filter("2001:db8:ff::/48", 0)};
  c.third_party = true;
  c.client_addr = ip("2001:db8:1::99");
  auto d = peer4(5555);
  auto e = peer6(5556);
  const core::Millis now{1'000'000};
  auto r = rebuild_mappings(dump_of({a, b, c, d, e}, 3'630'000), now, 30);
  CHECK(r.leftovers.empty());
  REQUIRE(r.mappings.size() == 5);
  // primaries are visited in the order map4_dnat, pin6, peer4_snat, peer6
  // filters come back in disjoint_filters() order
  a.filters = {filter("192.0.2.99/32", 22), filter("198.51.100.0/24", 0)};
  bool found_a = false, found_b = false;
  for (const auto& m : r.mappings) {
    if (m.external_port == 8080) check_same(m, a), found_a = true;
    if (m.external_port == 8081) check_same(m, b), found_b = true;
    CHECK(m.expires == now + core::Millis(3'600'000));
  }
  CHECK(found_a);
  CHECK(found_b);
  check_same(r.mappings[2], c);
  check_same(r.mappings[3], d);
  check_same(r.mappings[4], e);
}

TEST_CASE("nft recovery: incomplete mappings and foreign elements become leftovers") {
  auto a = map4(8080);
  a.filters = {filter("198.51.100.0/24", 0)};
  auto sets = dump_of({a, map4(8081, 81, "192.0.2.11")}, 10'000);
  // 8080 lost its filt4_on element; a foreign comment-less DNAT element; an orphan SNAT element
  sets[static_cast<std::size_t>(SetId::Filt4On)].clear();
  auto foreign = mapping_elements(map4(9000));
  sets[static_cast<std::size_t>(SetId::Map4Dnat)].push_back({(*foreign)[0].key, {}, (*foreign)[0].data, "", 5});
  sets[static_cast<std::size_t>(SetId::Map4Snat)].push_back({(*foreign)[1].key, {}, (*foreign)[1].data, "", 5});
  auto r = rebuild_mappings(sets, core::Millis{0}, 0);
  REQUIRE(r.mappings.size() == 1);
  CHECK(r.mappings[0].external_port == 8081);
  // 8080: dnat + snat + allow; foreign: dnat + snat
  CHECK(r.leftovers.size() == 5);
}

TEST_CASE("nft recovery: reconcile keeps the fuller dump and deletes only what both saw as leftovers") {
  auto sets = dump_of({map4(8080), map4(8081, 81, "192.0.2.11"), map4(8082, 82, "192.0.2.12")}, 10'000);
  auto foreign = mapping_elements(map4(9000, 90, "192.0.2.99"));
  sets[static_cast<std::size_t>(SetId::Map4Dnat)].push_back({(*foreign)[0].key, {}, (*foreign)[0].data, "", 5});
  sets[static_cast<std::size_t>(SetId::Map4Snat)].push_back({(*foreign)[1].key, {}, (*foreign)[1].data, "", 5});
  const auto full = rebuild_mappings(sets, core::Millis{0}, 0);
  REQUIRE(full.mappings.size() == 3);
  REQUIRE(full.leftovers.size() == 2);  // the foreign, comment-less pair
  // A dump that missed 8081's DNAT element (a hash-table resize during the dump): 8081's SNAT
  // element looks like a leftover there, but the other dump saw the mapping whole.
  auto missed = sets;
  auto& dnat = missed[static_cast<std::size_t>(SetId::Map4Dnat)];
  dnat.erase(dnat.begin() + 1);
  const auto partial = rebuild_mappings(missed, core::Millis{0}, 0);
  REQUIRE(partial.mappings.size() == 2);
  REQUIRE(partial.leftovers.size() == 3);
  for (const auto& [a, b] : {std::pair{partial, full}, std::pair{full, partial}}) {
    const auto r = reconcile(a, b);
    CHECK(r.mappings.size() == 3);
    REQUIRE(r.leftovers.size() == 2);  // only the foreign pair, which both dumps saw as leftovers
    for (const auto& e : r.leftovers) CHECK(e.key != (*mapping_elements(map4(8081, 81, "192.0.2.11")))[1].key);
  }
}

TEST_CASE("nft recovery: a SNAT element with other data does not complete a mapping") {
  auto sets = dump_of({map4(8080)}, 10'000);
  sets[static_cast<std::size_t>(SetId::Map4Snat)][0].data[7] = 1;
  auto r = rebuild_mappings(sets, core::Millis{0}, 0);
  CHECK(r.mappings.empty());
  CHECK(r.leftovers.size() == 2);
}

TEST_CASE("nft recovery: a static mapping's elements have no timeout and it comes back as never expiring") {
  auto s = map4(2222, 22, "192.0.2.20");
  s.origin = core::Origin::Static;
  s.nonce = {};
  s.lifetime = core::kStaticLifetime;
  s.expires = core::kNever;
  const core::Millis now{1'000'000};
  // A dump reports no expiration for an element without a timeout.
  auto r = rebuild_mappings(dump_of({s}, 0), now, 30);
  REQUIRE(r.mappings.size() == 1);
  check_same(r.mappings[0], s);
  CHECK(r.mappings[0].expires == core::kNever);
  CHECK(r.mappings[0].remaining(now) == core::kStaticLifetime);
}

TEST_CASE("nft elements: an all-ports MAP is map4_dnat_all + map4_snat_all (NAT44) or pin6_all, and comes back") {
  auto v4 = map4(0, 0, "192.0.2.50");
  v4.internal_port = 0;
  v4.external_port = 0;
  auto elems = mapping_elements(v4);
  REQUIRE(elems.has_value());
  REQUIRE(elems->size() == 2);
  CHECK((*elems)[0].set == SetId::Map4DnatAll);
  CHECK((*elems)[0].key == std::vector<std::uint8_t>{203, 0, 113, 1, 6, 0, 0, 0});
  CHECK((*elems)[0].data == std::vector<std::uint8_t>{192, 0, 2, 50});
  CHECK_FALSE((*elems)[0].comment.empty());
  CHECK((*elems)[1].set == SetId::Map4SnatAll);
  CHECK((*elems)[1].key == std::vector<std::uint8_t>{192, 0, 2, 50, 6, 0, 0, 0});
  CHECK((*elems)[1].data == std::vector<std::uint8_t>{203, 0, 113, 1});
  auto v6 = pin6(0);
  v6.internal_port = v6.external_port = 0;
  auto pin = mapping_elements(v6);
  REQUIRE(pin.has_value());
  REQUIRE(pin->size() == 1);
  CHECK((*pin)[0].set == SetId::Pin6All);
  // What the table cannot hold for all ports: FILTER, an election, an external port; and no
  // all-protocols mapping at all.
  auto filtered = v4;
  filtered.filters = {filter("198.51.100.0/24", 0)};
  CHECK_FALSE(mapping_elements(filtered).has_value());
  auto elected = v4;
  elected.checkpoint = true;
  CHECK_FALSE(mapping_elements(elected).has_value());
  auto any = v4;
  any.protocol = 0;
  CHECK_FALSE(mapping_elements(any).has_value());

  const core::Millis now{1'000'000};
  auto r = rebuild_mappings(dump_of({v4, v6}, 3'630'000), now, 30);
  CHECK(r.leftovers.empty());
  REQUIRE(r.mappings.size() == 2);
  for (const auto& m : r.mappings) check_same(m, m.is_v4() ? v4 : v6);
}
