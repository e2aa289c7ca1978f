// SPDX-License-Identifier: GPL-2.0-or-later
// RFC 7767 checkpoint in the nft backend, without kernel: election elements, their recovery,
// the set layout against nft-rules/pcpd.nft, the connection matcher, and the mark bit checks.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "nft/element.hpp"
#include "nft/nft_datapath.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

namespace {

SetContents dump_of(const std::vector<core::Mapping>& ms) {
  SetContents sets;
  for (const auto& m : ms) {
    auto elems = mapping_elements(m);
    REQUIRE(elems.has_value());
    for (const auto& e : *elems)
      sets[static_cast<std::size_t>(e.set)].push_back({e.key, e.key_end, e.data, e.comment, 60'000});
  }
  return sets;
}

std::size_t count_in(const SetContents& s, SetId id) { return s[static_cast<std::size_t>(id)].size(); }

std::string rules_text() {
  std::ifstream f(std::string(PCPD_SOURCE_DIR) + "/nft-rules/pcpd.nft");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("nft checkpoint elements: election keys come last and only with checkpoint") {
  for (auto m : {map4(8080), pin6(5000), peer4(5555), peer6(5556)}) {
    auto plain = mapping_elements(m);
    m.checkpoint = true;
    auto elected = mapping_elements(m);
    REQUIRE(plain.has_value());
    REQUIRE(elected.has_value());
    for (const auto& e : *plain) CHECK_FALSE(is_election_set(e.set));
    const std::size_t extra = m.kind == core::MappingKind::Peer ? 1 : 2;
    REQUIRE(elected->size() == plain->size() + extra);
    for (std::size_t i = 0; i < plain->size(); ++i) {
      CHECK((*elected)[i].set == (*plain)[i].set);
      CHECK((*elected)[i].key == (*plain)[i].key);
    }
    for (std::size_t i = plain->size(); i < elected->size(); ++i) {
      CHECK(is_election_set((*elected)[i].set));
      CHECK((*elected)[i].data.empty());
      CHECK((*elected)[i].comment.empty());
      CHECK((*elected)[i].key.size() == set_spec((*elected)[i].set).key_len);
    }
  }
}

TEST_CASE("nft checkpoint recovery: checkpoint=true comes back; lost or stray keys follow the rules") {
  auto a = map4(8080);
  a.checkpoint = true;
  auto b = pin6(5000);
  b.checkpoint = true;
  auto c = peer4(5555);
  c.checkpoint = true;
  auto d = peer6(5556);
  d.checkpoint = true;
  auto e = map4(8081, 81, "192.0.2.11");  // not elected
  auto sets = dump_of({a, b, c, d, e});
  CHECK(count_in(sets, SetId::Elect4Dst) == 1);
  CHECK(count_in(sets, SetId::Elect6Src) == 1);
  auto r = rebuild_mappings(sets, core::Millis{0}, 0);
  CHECK(r.leftovers.empty());
  REQUIRE(r.mappings.size() == 5);
  std::size_t elected = 0;
  for (const auto& m : r.mappings) elected += m.checkpoint ? 1 : 0;
  CHECK(elected == 4);

  // a mapping whose comment says elected but lost an election key is incomplete: all of its
  // elements are leftovers (as for a lost SNAT element)
  auto lost = sets;
  lost[static_cast<std::size_t>(SetId::Elect4Src)].clear();
  r = rebuild_mappings(lost, core::Millis{0}, 0);
  CHECK(r.mappings.size() == 4);
  CHECK(r.leftovers.size() == 3);  // dnat, snat, elect4_dst of 8080

  // an election key of an unelected mapping (comment without f=k) is a leftover; the mapping stays
  auto stray = dump_of({e});
  auto e_elected = e;
  e_elected.checkpoint = true;
  auto keys = mapping_elements(e_elected);
  REQUIRE(keys.has_value());
  stray[static_cast<std::size_t>(SetId::Elect4Dst)].push_back({(*keys)[2].key, {}, {}, {}, 5});
  r = rebuild_mappings(stray, core::Millis{0}, 0);
  REQUIRE(r.mappings.size() == 1);
  CHECK_FALSE(r.mappings[0].checkpoint);
  REQUIRE(r.leftovers.size() == 1);
  CHECK(r.leftovers[0].set == SetId::Elect4Dst);
}

TEST_CASE("nft checkpoint layout: every set of set_layout is declared in pcpd.nft with its exact type") {
  const auto text = rules_text();
  REQUIRE_FALSE(text.empty());
  for (const auto& s : all_sets()) {
    // "map { ... }" / "set { ... }" -> "add map inet pcpd <name> { ... }"
    const auto brace = s.nft_type.find(' ');
    const std::string line = "add " + std::string(s.nft_type.substr(0, brace)) + " inet pcpd " +
                             std::string(s.name) + std::string(s.nft_type.substr(brace)) + "\n";
    CAPTURE(line);
    CHECK(text.find(line) != std::string::npos);
  }
  // the election chain uses every election set, on the documented match expressions
  for (const char* m : {"ip daddr . meta l4proto . th dport @elect4_dst", "ip saddr . meta l4proto . th sport @elect4_src",
                        "ip saddr . meta l4proto . th sport . ip daddr . th dport @elect4_peer",
                        "ip6 daddr . meta l4proto . th dport @elect6_dst",
                        "ip6 saddr . meta l4proto . th sport @elect6_src",
                        "ip6 saddr . meta l4proto . th sport . ip6 daddr . th dport @elect6_peer"}) {
    CAPTURE(m);
    CHECK(text.find(m) != std::string::npos);
  }
  // default bits match TableSpec
  CHECK(text.find("define PCPD_ELECTED = 0x1\n") != std::string::npos);
  CHECK(text.find("define PCPD_STICKY = 0x2\n") != std::string::npos);
  CHECK(text.find("define PCPD_MAPPED = 0x8\n") != std::string::npos);
}

