// SPDX-License-Identifier: GPL-2.0-or-later
// A model of the kernel's nf_tables set-element transaction for BatchBuilder tests: batches are
// parsed back with libnftnl and played on set contents. NEWSETELEM with NLM_F_EXCL fails on an
// existing key; without it (an update, kernel 6.10+) it restarts the timer of an element with the
// same data (the comment stays), fails on other data, and creates a missing one; DELSETELEM fails
// on a missing key; any failure refuses the whole batch.
#pragma once

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
#include <tuple>
#include <vector>

#include "nft/batch_builder.hpp"
#include "unit/nft_test_mappings.hpp"

namespace pcpd::nft_test {

struct Op {
  bool add = false;     // NEWSETELEM
  bool excl = false;    // with NLM_F_EXCL
  std::string set;
  std::vector<std::uint8_t> key, data;
  std::uint64_t timeout = 0;
  std::optional<std::uint64_t> expiration;
  std::string userdata;
};

struct Msg {
  std::uint16_t type = 0;
  std::uint16_t flags = 0;
  std::uint32_t length = 0;
  std::vector<Op> ops;
};

inline std::vector<std::uint8_t> get(nftnl_set_elem* e, std::uint16_t attr) {
  if (!nftnl_set_elem_is_set(e, attr)) return {};
  std::uint32_t len = 0;
  auto* p = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, attr, &len));
  return {p, p + len};
}

// Every element message of the batch (BEGIN and END left out), each with all its elements.
inline std::vector<Msg> parse_all(const nft::Batch& b) {
  std::vector<Msg> out;
  int len = static_cast<int>(b.bytes.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(b.bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) continue;
    Msg m;
    m.type = nlh->nlmsg_type & 0xff;
    m.flags = nlh->nlmsg_flags;
    m.length = nlh->nlmsg_len;
    std::unique_ptr<nftnl_set, void (*)(const nftnl_set*)> s(nftnl_set_alloc(), nftnl_set_free);
    REQUIRE(nftnl_set_elems_nlmsg_parse(nlh, s.get()) == 0);
    const std::string set = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
    auto* it = nftnl_set_elems_iter_create(s.get());
    for (auto* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) {
      Op op;
      op.add = m.type == NFT_MSG_NEWSETELEM;
      op.excl = (m.flags & NLM_F_EXCL) != 0;
      op.set = set;
      op.key = get(e, NFTNL_SET_ELEM_KEY);
      op.data = get(e, NFTNL_SET_ELEM_DATA);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) op.timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION))
        op.expiration = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
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
inline std::optional<Contents> play(Contents state, const nft::Batch& b) {
  for (const auto& m : parse_all(b))
    for (const auto& op : m.ops) {
      auto& set = state[op.set];
      if (op.add && op.excl) {
        if (!set.emplace(op.key, std::make_tuple(op.data, op.timeout, op.userdata)).second) return std::nullopt;
      } else if (op.add) {
        auto it = set.find(op.key);
        if (it == set.end()) {
          set.emplace(op.key, std::make_tuple(op.data, op.timeout, op.userdata));
        } else if (std::get<0>(it->second) != op.data) {
          return std::nullopt;  // EEXIST: same key, other data
        } else if (op.expiration.has_value()) {
          std::get<1>(it->second) = op.timeout;  // the comment is not rewritten
        }
      } else if (set.erase(op.key) == 0) {
        return std::nullopt;
      }
    }
  return state;
}

inline std::size_t elements(const nft::Batch& b) {
  std::size_t n = 0;
  for (const auto& m : b.messages) n += m.elements;
  return n;
}

inline nft::Batch build(const core::ChangeSet& cs, nft::Grouping g, std::uint32_t seq = 1, bool in_place = false) {
  auto b = nft::BatchBuilder::for_changes(cs, "pcpd", 30, seq, {}, g, in_place);
  REQUIRE(b.has_value());
  return std::move(*b);
}

inline void add(core::ChangeSet& cs, core::Change::Op op, const core::Mapping& m, const core::Mapping& prev = {}) {
  cs.changes.push_back({op, m, prev, false});
}

// Random bursts for the model tests: Add / Remove / Replace over a pool of mappings (MAP, elected
// MAP, PEER, pinhole, IPv6 PEER; with `filters`, also MAPs with a FILTER), mostly valid against
// what the accepted bursts left, sometimes not (Add of a present mapping, Remove or Replace of an
// absent one). A Replace keeps the lifetime half of the time and now and then flips the election
// or changes the description.
class BurstGenerator {
 public:
  BurstGenerator(std::uint32_t seed, bool filters) : rng_(seed) {
    for (std::uint16_t i = 0; i < 5; ++i) {
      pool_.push_back(map4(static_cast<std::uint16_t>(20000 + i), static_cast<std::uint16_t>(20000 + i)));
      auto e = map4(static_cast<std::uint16_t>(21000 + i), static_cast<std::uint16_t>(81 + i));
      e.checkpoint = true;
      pool_.push_back(e);
      if (filters) {
        auto f = map4(static_cast<std::uint16_t>(22000 + i), static_cast<std::uint16_t>(22000 + i));
        f.filters = {filter("198.51.100.0/24", i)};
        pool_.push_back(f);
      }
      pool_.push_back(peer4(static_cast<std::uint16_t>(30000 + i)));
      pool_.push_back(pin6(static_cast<std::uint16_t>(40000 + i)));
      pool_.push_back(peer6(static_cast<std::uint16_t>(41000 + i)));
    }
    reset();
  }
  // Empty kernel, nothing present.
  void reset() { present_.assign(pool_.size(), std::nullopt); }
  // The next burst (1 to 12 changes), against what accept() last kept.
  core::ChangeSet next() {
    core::ChangeSet cs;
    pending_ = present_;
    const int n = 1 + static_cast<int>(rng_() % 12);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = rng_() % pool_.size();
      const bool wrong = rng_() % 20 == 0;
      auto& now = pending_[i];
      if (!now.has_value() ^ wrong) {
        add(cs, core::Change::Op::Add, pool_[i]);
        now = pool_[i];
      } else if (rng_() % 3 == 0) {
        add(cs, core::Change::Op::Remove, pool_[i]);
        now.reset();
      } else {
        auto renewed = now.value_or(pool_[i]);
        if (rng_() % 2 == 0) renewed.lifetime = 60 + static_cast<std::uint32_t>(rng_() % 3600);
        if (rng_() % 5 == 0) renewed.checkpoint = !renewed.checkpoint;
        if (rng_() % 5 == 0) renewed.description = "d" + std::to_string(rng_() % 3);
        add(cs, core::Change::Op::Replace, renewed, now.value_or(pool_[i]));
        now = renewed;
      }
    }
    return cs;
  }
  // The kernel took the last burst.
  void accept() { present_ = pending_; }

 private:
  std::mt19937 rng_;
  std::vector<core::Mapping> pool_;
  std::vector<std::optional<core::Mapping>> present_, pending_;
};

}  // namespace pcpd::nft_test
