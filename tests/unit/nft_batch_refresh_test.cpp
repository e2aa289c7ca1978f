// SPDX-License-Identifier: GPL-2.0-or-later
// BatchBuilder refresh_in_place: a Replace restarts the timer of each element it keeps
// unchanged (one NEWSETELEM without NLM_F_EXCL, with TIMEOUT and EXPIRATION: Linux 6.10+) instead
// of deleting and re-adding it. Played on the kernel model of unit/nft_batch_model.hpp: the end
// state must be the one delete-and-add reaches (same keys, data, timeouts and comments), so an
// element whose comment changes is never updated in place (the kernel would keep the old one).
// The kernel behaviour itself is checked in tests/integration/nft_kernel_test.cpp.
#include <doctest/doctest.h>

#include <optional>
#include <random>
#include <vector>

#include "unit/nft_batch_model.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

namespace {

constexpr std::uint64_t kTimeout3600 = (3600 + 30) * 1000;

std::vector<std::pair<MessageRef::Op, std::string>> shape(const Batch& b) {
  std::vector<std::pair<MessageRef::Op, std::string>> out;
  for (const auto& m : b.messages) out.emplace_back(m.op, std::string(set_spec(m.set).name));
  return out;
}

}  // namespace

TEST_CASE("nft refresh in place: the same lifetime is one timer restart per element (R-MAP-6)") {
  auto m = map4(10000, 80);
  core::ChangeSet cs;
  add(cs, core::Change::Op::Replace, m, m);
  const Batch b = build(cs, Grouping::PerElement, 1, true);
  REQUIRE(b.messages.size() == 2);
  CHECK(b.messages[0].op == MessageRef::Op::Update);
  CHECK(b.messages[0].change_index == 0);
  const auto msgs = parse_all(b);
  REQUIRE(msgs.size() == 2);
  for (const auto& msg : msgs) {
    CHECK(msg.type == NFT_MSG_NEWSETELEM);
    CHECK((msg.flags & NLM_F_CREATE) != 0);
    CHECK((msg.flags & NLM_F_EXCL) == 0);
    REQUIRE(msg.ops.size() == 1);
    CHECK(msg.ops[0].timeout == kTimeout3600);
    REQUIRE(msg.ops[0].expiration.has_value());
    CHECK(*msg.ops[0].expiration == kTimeout3600);  // without it the kernel keeps the old timer
  }
  // Without refresh_in_place (kernels before 6.10): delete and add, no expiration attribute.
  const Batch old = build(cs, Grouping::PerElement, 1, false);
  CHECK(old.messages.size() == 4);
  for (const auto& msg : parse_all(old))
    for (const auto& op : msg.ops) CHECK_FALSE(op.expiration.has_value());
  // Grouped: one update message per set.
  core::ChangeSet many;
  for (std::uint16_t i = 0; i < 64; ++i) {
    auto x = map4(static_cast<std::uint16_t>(20000 + i), static_cast<std::uint16_t>(20000 + i));
    add(many, core::Change::Op::Replace, x, x);
  }
  const Batch g = build(many, Grouping::PerSet, 1, true);
  REQUIRE(g.messages.size() == 2);
  CHECK(g.messages[0].op == MessageRef::Op::Update);
  CHECK(g.messages[0].elements == 64);
  CHECK(g.messages[1].op == MessageRef::Op::Update);
}

TEST_CASE("nft refresh in place: changed comments, elections and FILTER ranges still delete and add") {
  using O = MessageRef::Op;
  auto m = map4(10000, 80);
  SUBCASE("a new lifetime changes the primary's comment (l=): DNAT replaced, SNAT updated") {
    auto next = m;
    next.lifetime = 7200;
    core::ChangeSet cs;
    add(cs, core::Change::Op::Replace, next, m);
    CHECK(shape(build(cs, Grouping::PerElement, 1, true)) ==
          std::vector<std::pair<O, std::string>>{{O::Delete, "map4_dnat"}, {O::Add, "map4_dnat"}, {O::Update, "map4_snat"}});
  }
  SUBCASE("election (RFC 7767): the keys are added, the primary's comment gets f=k") {
    auto next = m;
    next.checkpoint = true;
    core::ChangeSet cs;
    add(cs, core::Change::Op::Replace, next, m);
    CHECK(shape(build(cs, Grouping::PerElement, 1, true)) ==
          std::vector<std::pair<O, std::string>>{{O::Delete, "map4_dnat"},
                                                 {O::Add, "map4_dnat"},
                                                 {O::Update, "map4_snat"},
                                                 {O::Add, "elect4_dst"},
                                                 {O::Add, "elect4_src"}});
  }
  SUBCASE("un-election: the election keys are deleted first") {
    auto elected = m;
    elected.checkpoint = true;
    core::ChangeSet cs;
    add(cs, core::Change::Op::Replace, m, elected);
    CHECK(shape(build(cs, Grouping::PerElement, 1, true)) ==
          std::vector<std::pair<O, std::string>>{{O::Delete, "elect4_dst"},
                                                 {O::Delete, "elect4_src"},
                                                 {O::Delete, "map4_dnat"},
                                                 {O::Add, "map4_dnat"},
                                                 {O::Update, "map4_snat"}});
  }
  SUBCASE("FILTER: filt4_on is updated, the filt4_allow range (interval set) deleted and added") {
    auto f = m;
    f.filters = {filter("198.51.100.0/24", 0)};
    core::ChangeSet cs;
    add(cs, core::Change::Op::Replace, f, f);
    CHECK(shape(build(cs, Grouping::PerElement, 1, true)) ==
          std::vector<std::pair<O, std::string>>{{O::Delete, "filt4_allow"},
                                                 {O::Update, "map4_dnat"},
                                                 {O::Update, "map4_snat"},
                                                 {O::Update, "filt4_on"},
                                                 {O::Add, "filt4_allow"}});
  }
  SUBCASE("a new description: the primary is replaced") {
    auto next = m;
    next.description = "web";
    core::ChangeSet cs;
    add(cs, core::Change::Op::Replace, next, m);
    CHECK(shape(build(cs, Grouping::PerElement, 1, true)) ==
          std::vector<std::pair<O, std::string>>{{O::Delete, "map4_dnat"}, {O::Add, "map4_dnat"}, {O::Update, "map4_snat"}});
  }
}

TEST_CASE("nft refresh in place: random bursts end where delete-and-add ends, grouped or not") {
  // BurstGenerator (unit/nft_batch_model.hpp), with FILTER mappings. In place, PerSet and
  // PerElement must agree on acceptance and end state; whenever delete-and-add is accepted, in
  // place is too and ends in the same contents. (In place also accepts a refresh of an element
  // the kernel no longer has: it creates it again.)
  BurstGenerator gen(6887, true);
  int accepted = 0, refused = 0, updates = 0;
  for (int round = 0; round < 300; ++round) {
    gen.reset();
    Contents state;
    for (int burst = 0; burst < 4; ++burst) {
      const core::ChangeSet cs = gen.next();
      const Batch per_element = build(cs, Grouping::PerElement, 1, true);
      for (const auto& m : per_element.messages) updates += m.op == MessageRef::Op::Update;
      auto a = play(state, per_element);
      auto b = play(state, build(cs, Grouping::PerSet, 1, true));
      auto reference = play(state, build(cs, Grouping::PerElement, 1, false));
      INFO("round " << round << " burst " << burst);
      REQUIRE(a.has_value() == b.has_value());
      if (reference) {
        REQUIRE(a.has_value());
        CHECK(*a == *reference);
      }
      if (a) {
        CHECK(*a == *b);
        state = *a;
        gen.accept();
        ++accepted;
      } else {
        ++refused;
      }
    }
  }
  MESSAGE("random bursts in place: " << accepted << " accepted, " << refused << " refused, " << updates
                                     << " update messages");
  CHECK(accepted > 100);
  CHECK(refused > 10);
  CHECK(updates > 500);
}

TEST_CASE("nft refresh in place: a plain refresh (only the expiry moved) builds the bytes the general path builds") {
  // element_ops() builds a plain refresh's elements once (Mapping::same_but_expiry); the general
  // path builds the previous and the new mapping's and matches them. A MAP's remote fields are
  // in no element, so a previous mapping differing only there takes the general path and must
  // give the same batch, byte for byte.
  auto filtered = map4(10001, 81);
  filtered.filters = {filter("198.51.100.0/24", 0), filter("203.0.113.64/26", 443)};
  auto elected = map4(10002, 82);
  elected.checkpoint = true;
  auto described = pin6(10003);
  described.description = "a DESCRIPTION (RFC 7220) longer than a short string's inline room";
  elected.expires = core::Millis{5000};
  for (const core::Mapping& m : {map4(10000, 80), filtered, elected, described}) {
    auto refreshed = m;
    refreshed.expires = m.expires + core::Millis{60'000};
    auto other = m;
    other.remote_port = 9;  // not in a MAP's elements
    REQUIRE(refreshed.same_but_expiry(m));
    REQUIRE_FALSE(refreshed.same_but_expiry(other));
    for (const auto g : {Grouping::PerElement, Grouping::PerSet}) {
      core::ChangeSet fast, general;
      add(fast, core::Change::Op::Replace, refreshed, m);
      add(general, core::Change::Op::Replace, refreshed, other);
      const Batch a = build(fast, g, 1, true);
      const Batch b = build(general, g, 1, true);
      CHECK(a.bytes == b.bytes);
      REQUIRE(a.messages.size() == b.messages.size());
      for (std::size_t i = 0; i < a.messages.size(); ++i) {
        CHECK(a.messages[i].op == b.messages[i].op);
        CHECK(a.messages[i].set == b.messages[i].set);
      }
    }
  }
}
