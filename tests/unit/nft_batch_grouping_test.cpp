// BatchBuilder Grouping::PerSet (one message per set and operation, issue 7) against
// Grouping::PerElement: the batches are parsed back with libnftnl and played on a model of the
// kernel's transaction (create with NLM_F_EXCL fails on an existing key, delete fails on a missing
// one, any failure refuses the whole batch). PerSet must be accepted exactly when PerElement is,
// and end in the same set contents (R-HDR-10: each request all or nothing, one transaction).
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nft/batch_builder.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;

namespace {

struct Op {
  bool add = false;
  std::string set;
  std::vector<std::uint8_t> key, data;
  std::uint64_t timeout = 0;
  std::string userdata;
};

struct Msg {
  std::uint16_t type = 0;
  std::uint32_t length = 0;
  std::vector<Op> ops;
};

std::vector<std::uint8_t> get(nftnl_set_elem* e, std::uint16_t attr) {
  if (!nftnl_set_elem_is_set(e, attr)) return {};
  std::uint32_t len = 0;
  auto* p = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, attr, &len));
  return {p, p + len};
}

// Every element message of the batch (BEGIN and END left out), each with all its elements.
std::vector<Msg> parse_all(const Batch& b) {
  std::vector<Msg> out;
  int len = static_cast<int>(b.bytes.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(b.bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) continue;
    Msg m;
    m.type = nlh->nlmsg_type & 0xff;
    m.length = nlh->nlmsg_len;
    std::unique_ptr<nftnl_set, void (*)(const nftnl_set*)> s(nftnl_set_alloc(), nftnl_set_free);
    REQUIRE(nftnl_set_elems_nlmsg_parse(nlh, s.get()) == 0);
    const std::string set = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
    auto* it = nftnl_set_elems_iter_create(s.get());
    for (auto* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) {
      Op op;
      op.add = m.type == NFT_MSG_NEWSETELEM;
      op.set = set;
      op.key = get(e, NFTNL_SET_ELEM_KEY);
      op.data = get(e, NFTNL_SET_ELEM_DATA);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) op.timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
      auto ud = get(e, NFTNL_SET_ELEM_USERDATA);
      op.userdata.assign(ud.begin(), ud.end());
      m.ops.push_back(std::move(op));
    }
    nftnl_set_elems_iter_destroy(it);
    out.push_back(std::move(m));
  }
  CHECK(len == 0);
  return out;
}

// set -> key -> (data, timeout, userdata)
using Contents = std::map<std::string, std::map<std::vector<std::uint8_t>, std::tuple<std::vector<std::uint8_t>, std::uint64_t, std::string>>>;

// The kernel's view of one transaction: nullopt when refused (then nothing changes).
std::optional<Contents> play(Contents state, const Batch& b) {
  for (const auto& m : parse_all(b))
    for (const auto& op : m.ops) {
      auto& set = state[op.set];
      if (op.add) {
        if (!set.emplace(op.key, std::make_tuple(op.data, op.timeout, op.userdata)).second) return std::nullopt;
      } else if (set.erase(op.key) == 0) {
        return std::nullopt;
      }
    }
  return state;
}

std::size_t elements(const Batch& b) {
  std::size_t n = 0;
  for (const auto& m : b.messages) n += m.elements;
  return n;
}

Batch build(const core::ChangeSet& cs, Grouping g, std::uint32_t seq = 1) {
  auto b = BatchBuilder::for_changes(cs, "pcpd", 30, seq, {}, g);
  REQUIRE(b.has_value());
  return std::move(*b);
}

void add(core::ChangeSet& cs, core::Change::Op op, const core::Mapping& m, const core::Mapping& prev = {}) {
  cs.changes.push_back({op, m, prev, false});
}

}  // namespace

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
  // Bursts of Add / Remove / Replace over a small pool of MAP, PEER, pinhole and elected
  // mappings, mostly valid against the current state, sometimes not (Add of a present mapping,
  // Remove of an absent one): both groupings must agree on acceptance and on the end state.
  std::mt19937 rng(7767);
  std::vector<core::Mapping> pool;
  for (std::uint16_t i = 0; i < 6; ++i) {
    pool.push_back(map4(static_cast<std::uint16_t>(20000 + i), static_cast<std::uint16_t>(20000 + i)));
    auto e = map4(static_cast<std::uint16_t>(21000 + i), static_cast<std::uint16_t>(81 + i));
    e.checkpoint = true;
    pool.push_back(e);
    pool.push_back(peer4(static_cast<std::uint16_t>(30000 + i)));
    pool.push_back(pin6(static_cast<std::uint16_t>(40000 + i)));
    pool.push_back(peer6(static_cast<std::uint16_t>(41000 + i)));
  }
  int accepted = 0, refused = 0;
  for (int round = 0; round < 400; ++round) {
    std::vector<std::optional<core::Mapping>> present(pool.size());
    Contents state;
    for (int burst = 0; burst < 4; ++burst) {
      core::ChangeSet cs;
      auto now = present;
      const int n = 1 + static_cast<int>(rng() % 12);
      for (int k = 0; k < n; ++k) {
        const std::size_t i = rng() % pool.size();
        const bool wrong = rng() % 20 == 0;
        if (!now[i].has_value() ^ wrong) {
          add(cs, core::Change::Op::Add, pool[i]);
          now[i] = pool[i];
        } else if (rng() % 2 == 0) {
          add(cs, core::Change::Op::Remove, pool[i]);
          now[i].reset();
        } else {
          auto renewed = pool[i];
          renewed.lifetime = 60 + static_cast<std::uint32_t>(rng() % 3600);
          renewed.checkpoint = rng() % 2 == 0;
          add(cs, core::Change::Op::Replace, renewed, now[i].value_or(pool[i]));
          now[i] = renewed;
        }
      }
      auto a = play(state, build(cs, Grouping::PerElement));
      auto b = play(state, build(cs, Grouping::PerSet));
      INFO("round " << round << " burst " << burst);
      REQUIRE(a.has_value() == b.has_value());
      if (a) {
        CHECK(*a == *b);
        state = *a;
        present = now;
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
