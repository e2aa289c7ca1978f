// SPDX-License-Identifier: GPL-2.0-or-later
// BatchBuilder Grouping::PerSet (one message per set and operation) against
// Grouping::PerElement: the batches are parsed back with libnftnl and played on a model of the
// kernel's transaction (unit/nft_batch_model.hpp). PerSet must be accepted exactly when
// PerElement is, and end in the same set contents (R-HDR-10: each request all or nothing, one
// transaction).
#include <doctest/doctest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "unit/nft_batch_model.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

TEST_CASE("nft batch PerSet: a burst of 64 MAP creates is one message per set, same elements as PerElement") {
  core::ChangeSet cs;
  for (std::uint16_t i = 0; i < 64; ++i) add(cs, core::Change::Op::Add, map4(static_cast<std::uint16_t>(10000 + i), static_cast<std::uint16_t>(10000 + i)));
  auto per_element = build(cs, Grouping::PerElement);
  auto per_set = build(cs, Grouping::PerSet);
  CHECK(per_element.messages.size() == 128);
  REQUIRE(per_set.messages.size() == 2);
  CHECK(per_set.messages[0].elements == 64);
  CHECK(per_set.messages[1].elements == 64);
  CHECK(per_set.messages[0].change_index == -1);  // several changes share it
  CHECK(per_set.ack_seq() == per_set.begin_seq + 2);
  CHECK(elements(per_set) == 128);
  CHECK(per_set.bytes.size() < per_element.bytes.size());  // table and set names once per set
  auto a = play({}, per_element);
  auto b = play({}, per_set);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);  // keys, data, timeouts and comments
  // Only the last message asks for the ack.
  auto msgs = parse_all(per_set);
  REQUIRE(msgs.size() == 2);
}

TEST_CASE("nft batch PerSet: 64 refreshes are four messages (deletions first) and re-add what they delete") {
  core::ChangeSet fill, refresh;
  for (std::uint16_t i = 0; i < 64; ++i) {
    auto m = map4(static_cast<std::uint16_t>(10000 + i), static_cast<std::uint16_t>(10000 + i));
    add(fill, core::Change::Op::Add, m);
    auto renewed = m;
    renewed.lifetime = 7200;
    add(refresh, core::Change::Op::Replace, renewed, m);
  }
  auto before = play({}, build(fill, Grouping::PerElement));
  REQUIRE(before.has_value());
  auto per_set = build(refresh, Grouping::PerSet);
  REQUIRE(per_set.messages.size() == 4);
  CHECK(per_set.messages[0].op == MessageRef::Op::Delete);
  CHECK(per_set.messages[1].op == MessageRef::Op::Delete);
  CHECK(per_set.messages[2].op == MessageRef::Op::Add);
  CHECK(per_set.messages[3].op == MessageRef::Op::Add);
  auto a = play(*before, build(refresh, Grouping::PerElement));
  auto b = play(*before, per_set);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
}

TEST_CASE("nft batch PerSet: a mapping created and deleted in one burst starts a new segment") {
  core::ChangeSet cs;
  auto m = map4(10000, 10000);
  add(cs, core::Change::Op::Add, map4(10001, 10001));
  add(cs, core::Change::Op::Add, m);
  add(cs, core::Change::Op::Remove, m);
  add(cs, core::Change::Op::Add, map4(10002, 10002));
  auto per_set = build(cs, Grouping::PerSet);
  // segment 1: +dnat {10001, 10000}, +snat {..}; segment 2: -dnat, -snat, +dnat {10002}, +snat
  REQUIRE(per_set.messages.size() == 6);
  CHECK(per_set.messages[0].elements == 2);
  CHECK(per_set.messages[2].op == MessageRef::Op::Delete);
  CHECK(per_set.messages[2].change_index == 2);
  auto a = play({}, build(cs, Grouping::PerElement));
  auto b = play({}, per_set);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
  CHECK((*b)["map4_dnat"].size() == 2);
}

TEST_CASE("nft batch PerSet: FILTER (an interval set) is never grouped; skip forces PerElement") {
  core::ChangeSet cs;
  auto f = map4(10000, 10000);
  f.filters.push_back(filter("198.51.100.0/24", 0));
  add(cs, core::Change::Op::Add, map4(10001, 10001));
  add(cs, core::Change::Op::Add, f);
  auto per_set = build(cs, Grouping::PerSet);
  CHECK(per_set.messages.size() == elements(per_set));
  auto skipped = BatchBuilder::for_changes(cs, "pcpd", 30, 1, {true}, Grouping::PerSet);
  REQUIRE(skipped.has_value());
  CHECK(skipped->messages.size() == elements(*skipped));
}

TEST_CASE("nft batch PerSet: 5,000 creates split into messages whose element lists fit 16-bit lengths") {
  core::ChangeSet cs;
  for (std::uint16_t i = 0; i < 5000; ++i) {
    auto m = map4(static_cast<std::uint16_t>(10000 + i), static_cast<std::uint16_t>(10000 + i));
    m.description = std::string(60, 'd');
    add(cs, core::Change::Op::Add, m);
  }
  auto per_set = build(cs, Grouping::PerSet);
  CHECK(per_set.messages.size() > 2);
  CHECK(elements(per_set) == 10000);
  for (const auto& m : parse_all(per_set)) CHECK(m.length < 0xffff);
  auto b = play({}, per_set);
  REQUIRE(b.has_value());
  CHECK((*b)["map4_dnat"].size() == 5000);
  CHECK((*b)["map4_snat"].size() == 5000);
}

TEST_CASE("nft batch PerSet: random bursts are accepted exactly when PerElement is, with the same result") {
  // BurstGenerator (unit/nft_batch_model.hpp) without FILTER (an interval set turns grouping off):
  // both groupings must agree on acceptance and on the end state.
  BurstGenerator gen(7767, false);
  int accepted = 0, refused = 0;
  for (int round = 0; round < 400; ++round) {
    gen.reset();
    Contents state;
    for (int burst = 0; burst < 4; ++burst) {
      const core::ChangeSet cs = gen.next();
      auto a = play(state, build(cs, Grouping::PerElement));
      auto b = play(state, build(cs, Grouping::PerSet));
      INFO("round " << round << " burst " << burst);
      REQUIRE(a.has_value() == b.has_value());
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
  MESSAGE("random bursts: " << accepted << " accepted, " << refused << " refused");
  CHECK(accepted > 100);
  CHECK(refused > 20);
}
