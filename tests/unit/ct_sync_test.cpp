// SPDX-License-Identifier: GPL-2.0-or-later
// ConntrackSync over a fake conntrack table: which connections each change marks, un-marks,
// deletes or re-announces; that a walk hands over only mapped-bit entries; that queued work shares
// one walk; that PEER work needs no walk; that submit() never waits for the kernel.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "conntrack/conntrack_sync.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft_test;
using ct::CtEntry;
using ct::CtWrite;
using ct::FlowTuple;

namespace {

constexpr std::uint32_t E = 0x1, S = 0x2, M = 0x8;

// The kernel as ConntrackSync sees it: a walk visits every entry (counted in `scanned`) and hands
// over those whose mark matches; writes apply the kernel's masked mark update.
struct FakeCt final : ct::CtKernel {
  std::vector<CtEntry> table;
  std::size_t walks = 0, gets = 0, scanned = 0;
  std::vector<CtWrite> written;
  int fail_walk = 0;                 // errno to fail walks with
  bool can_learn = true;             // learn_start() succeeds
  bool learning = false;
  std::vector<CtEntry> announced;    // what pcpd.nft logged and pcpd has not read yet
  bool lose = false;                 // the next learn() reports a loss
  std::function<void()> during_walk;  // runs inside walk(), before any entry is handed over

  Result<std::size_t> walk(std::uint32_t mask, std::uint32_t value,
                           const std::function<void(const CtEntry&)>& each) override {
    ++walks;
    if (during_walk) during_walk();
    if (fail_walk != 0) return fail(ErrorDomain::Conntrack, fail_walk, "fake walk");
    std::size_t n = 0;
    const auto copy = table;
    for (const auto& e : copy) {
      ++scanned;
      if ((e.mark & mask) != value) continue;
      ++n;
      each(e);
    }
    return n;
  }
  CtEntry* find(const CtEntry& key) {
    auto it = std::find_if(table.begin(), table.end(), [&](const CtEntry& e) {
      return e.family == key.family && e.protocol == key.protocol && e.orig == key.orig && e.zone == key.zone;
    });
    return it == table.end() ? nullptr : &*it;
  }
  Result<std::optional<CtEntry>> get(const CtEntry& key) override {
    ++gets;
    const CtEntry* e = find(key);
    return e == nullptr ? std::optional<CtEntry>{} : std::optional<CtEntry>{*e};
  }
  ct::CtWriteResult write(std::span<const CtWrite> ws) override {
    ct::CtWriteResult r;
    for (const auto& w : ws) {
      written.push_back(w);
      CtEntry* e = find(w.entry);
      if (e == nullptr) {
        ++r.gone;
        continue;
      }
      if (w.remove)
        table.erase(table.begin() + (e - table.data()));
      else
        e->mark = (e->mark & ~(w.set | w.clear)) | w.set;
      ++r.done;
    }
    return r;
  }
  Result<void> learn_start(std::uint16_t) override {
    if (!can_learn) return fail(ErrorDomain::Conntrack, EBUSY, "fake nflog");
    learning = true;
    return {};
  }
  int learn_fd() const override { return -1; }
  Result<std::size_t> learn(const std::function<void(const CtEntry&)>& each, bool& lost) override {
    const std::size_t n = announced.size();
    for (const auto& e : announced) each(e);
    announced.clear();
    lost |= std::exchange(lose, false);
    return n;
  }
  // A new connection of a mapping: in the table, and announced as pcpd.nft would.
  void connect(const CtEntry& e) {
    table.push_back(e);
    if (learning) announced.push_back(e);
  }
  std::uint32_t mark_of(std::uint16_t sport) const {
    for (const auto& e : table)
      if (e.orig.src_port == sport) return e.mark;
    return 0xdead;
  }
  bool has(std::uint16_t sport) const { return mark_of(sport) != 0xdead; }
};

CtEntry entry(const char* osrc, std::uint16_t sport, const char* odst, std::uint16_t dport, const char* rsrc,
              std::uint16_t rsport, const char* rdst, std::uint16_t rdport, std::uint32_t mark,
              std::uint8_t proto = 6) {
  CtEntry e;
  e.family = ip(osrc).is_v4() ? 2 : 10;
  e.protocol = proto;
  e.orig = FlowTuple{ip(osrc), ip(odst), sport, dport};
  e.reply = FlowTuple{ip(rsrc), ip(rdst), rsport, rdport};
  e.mark = mark;
  return e;
}

// A router's table around map4(8080, 80) = tcp 203.0.113.1:8080 -> 192.0.2.10:80.
void fill(FakeCt& k) {
  // 41001: inbound through the mapping's DNAT (pcpd.nft set the mapped bit)
  k.table.push_back(entry("198.51.100.5", 41001, "203.0.113.1", 8080, "192.0.2.10", 80, "198.51.100.5", 41001, M));
  // 80: outbound from the internal endpoint through the mapping's SNAT (mapped bit)
  k.table.push_back(entry("192.0.2.10", 80, "198.51.100.6", 443, "198.51.100.6", 443, "203.0.113.1", 8080, M));
  // 41003: another host's masqueraded connection, no pcpd bit
  k.table.push_back(entry("192.0.2.11", 41003, "198.51.100.7", 443, "198.51.100.7", 443, "203.0.113.1", 30000, 0));
  // 41004: inbound to another mapping (mapped bit, other port)
  k.table.push_back(entry("198.51.100.5", 41004, "203.0.113.1", 9090, "192.0.2.12", 90, "198.51.100.5", 41004, M));
}

struct Lab {
  FakeCt* k = nullptr;
  std::unique_ptr<ct::ConntrackSync> sync;
  explicit Lab(std::function<void(FakeCt&)> setup) : Lab(ct::ConntrackSync::Mode::Inline, std::move(setup)) {}
  explicit Lab(ct::ConntrackSync::Mode mode = ct::ConntrackSync::Mode::Inline,
               std::function<void(FakeCt&)> setup = fill, std::uint16_t group = 0) {
    auto owned = std::make_unique<FakeCt>();
    k = owned.get();
    setup(*k);
    auto holder = std::make_shared<std::unique_ptr<FakeCt>>(std::move(owned));
    sync = std::make_unique<ct::ConntrackSync>(
        [holder]() -> Result<std::unique_ptr<ct::CtKernel>> { return std::unique_ptr<ct::CtKernel>(std::move(*holder)); },
        ct::SyncSpec{.elected_mark = E, .sticky_mark = S, .mapped_mark = M, .min_walk_gap = std::chrono::milliseconds(0),
                     .log_group = group},
        mode);
  }
};

core::ChangeSet add(const core::Mapping& m) { return {{core::Change{core::Change::Op::Add, m, {}, false}}}; }
core::ChangeSet remove(const core::Mapping& m) { return {{core::Change{core::Change::Op::Remove, m, {}, true}}}; }
core::ChangeSet replace(const core::Mapping& before, const core::Mapping& after) {
  return {{core::Change{core::Change::Op::Replace, after, before, false}}};
}
core::Mapping elected(core::Mapping m) {
  m.checkpoint = true;
  return m;
}

}  // namespace

TEST_CASE("conntrack sync: an election marks the mapping's existing connections elected|sticky|mapped, no others") {
  Lab lab;
  const auto m = map4(8080, 80);
  lab.sync->submit(replace(m, elected(m)));
  lab.sync->run_pending();
  CHECK(lab.k->mark_of(41001) == (E | S | M));
  CHECK(lab.k->mark_of(80) == (E | S | M));
  CHECK(lab.k->mark_of(41003) == 0);
  CHECK(lab.k->mark_of(41004) == M);
  const auto c = lab.sync->counters();
  CHECK(c.elected == 2);
  CHECK(c.walks == 1);
  // The kernel visited the whole table but handed over only the three mapped-bit entries.
  CHECK(lab.k->scanned == 4);
  CHECK(c.visited == 3);
  CHECK(c.pending == 0);
}

TEST_CASE("conntrack sync: an election rewrites entries that already have the bits (their state must reach the standby)") {
  Lab lab;
  lab.k->table[0].mark = E | S | M;
  lab.sync->submit(add(elected(map4(8080, 80))));
  lab.sync->run_pending();
  REQUIRE(lab.k->written.size() == 2);
  CHECK(lab.sync->counters().elected == 2);
}

TEST_CASE("conntrack sync: an un-election clears only the elected bit, and only where it is set") {
  Lab lab;
  lab.k->table[0].mark = E | S | M;  // elected inbound connection
  lab.k->table[1].mark = S | M;      // outbound, sticky only: nothing to change
  const auto m = elected(map4(8080, 80));
  auto after = m;
  after.checkpoint = false;
  lab.sync->submit(replace(m, after));
  lab.sync->run_pending();
  CHECK(lab.k->mark_of(41001) == (S | M));  // sticky stays: its end still reaches the standby
  CHECK(lab.k->mark_of(80) == (S | M));
  CHECK(lab.k->written.size() == 1);
  CHECK(lab.sync->counters().unelected == 1);
}

TEST_CASE("conntrack sync: a deleted mapping's connections go, a masqueraded one of the same host stays") {
  Lab lab([](FakeCt& k) {
    fill(k);
    // the internal endpoint's connection through the operator's masquerade: not the mapping's
    k.table.push_back(entry("192.0.2.10", 81, "198.51.100.6", 443, "198.51.100.6", 443, "203.0.113.1", 31000, M));
  });
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->run_pending();
  CHECK_FALSE(lab.k->has(41001));
  CHECK_FALSE(lab.k->has(80));
  CHECK(lab.k->has(81));
  CHECK(lab.k->has(41003));
  CHECK(lab.k->has(41004));
  CHECK(lab.sync->counters().deleted == 2);
}

TEST_CASE("conntrack sync: a mapping re-created before the round keeps its connections") {
  Lab lab;
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->submit(add(map4(8080, 80)));
  lab.sync->run_pending();
  CHECK(lab.k->has(41001));
  CHECK(lab.k->has(80));
  CHECK(lab.sync->counters().cancelled == 1);
  CHECK(lab.k->walks == 0);  // nothing left to do
}

TEST_CASE("conntrack sync: PEER work is exact lookups, without a walk") {
  Lab lab([](FakeCt& k) {
    k.table.push_back(entry("192.0.2.10", 5555, "198.51.100.20", 443, "198.51.100.20", 443, "203.0.113.1", 40000, 0));
    k.table.push_back(entry("2001:db8:1::10", 5556, "2001:db8:ff::20", 443, "2001:db8:ff::20", 443, "2001:db8:1::10", 5556, 0));
  });
  lab.sync->submit(add(elected(peer4(5555))));
  lab.sync->submit(add(elected(peer6(5556))));
  lab.sync->run_pending();
  CHECK(lab.k->mark_of(5555) == (E | S | M));
  CHECK(lab.k->mark_of(5556) == (E | S | M));
  CHECK(lab.k->walks == 0);
  CHECK(lab.k->gets == 2);
  lab.sync->submit(remove(peer4(5555)));
  lab.sync->run_pending();
  CHECK_FALSE(lab.k->has(5555));
  CHECK(lab.k->has(5556));
  const auto c = lab.sync->counters();
  CHECK(c.lookups == 3);
  CHECK(c.deleted == 1);
}

TEST_CASE("conntrack sync: everything queued shares one walk") {
  Lab lab([](FakeCt& k) {
    for (std::uint16_t p = 0; p < 200; ++p)
      k.table.push_back(entry("198.51.100.5", static_cast<std::uint16_t>(20000 + p), "203.0.113.1",
                              static_cast<std::uint16_t>(10000 + p), "192.0.2.10", static_cast<std::uint16_t>(1000 + p),
                              "198.51.100.5", static_cast<std::uint16_t>(20000 + p), M));
  });
  for (std::uint16_t p = 0; p < 100; ++p)
    lab.sync->submit(add(elected(map4(static_cast<std::uint16_t>(10000 + p), static_cast<std::uint16_t>(1000 + p)))));
  for (std::uint16_t p = 100; p < 200; ++p)
    lab.sync->submit(remove(map4(static_cast<std::uint16_t>(10000 + p), static_cast<std::uint16_t>(1000 + p))));
  CHECK(lab.sync->counters().pending == 200);
  lab.sync->run_pending();
  CHECK(lab.k->walks == 1);
  CHECK(lab.k->table.size() == 100);
  for (const auto& e : lab.k->table) CHECK(e.mark == (E | S | M));
  const auto c = lab.sync->counters();
  CHECK(c.rounds == 1);
  CHECK(c.elected == 100);
  CHECK(c.deleted == 100);
}

TEST_CASE("conntrack sync: ct-touch writes every elected or sticky entry once, with its own mark; count") {
  Lab lab;
  lab.k->table[0].mark = E | S | M;
  lab.k->table[1].mark = S | M;
  lab.sync->request_touch();
  lab.sync->request_count();
  lab.sync->run_pending();
  REQUIRE(lab.k->written.size() == 2);
  for (const auto& w : lab.k->written) {
    CHECK_FALSE(w.remove);
    CHECK(w.set == 0);
    CHECK(w.clear == 0);
  }
  CHECK(lab.k->mark_of(41001) == (E | S | M));
  CHECK(lab.k->mark_of(80) == (S | M));
  const auto c = lab.sync->counters();
  CHECK(c.touched == 2);
  CHECK(c.touches == 1);
  CHECK(c.marked == 1);
}

TEST_CASE("conntrack sync: a mark bit a rule sets during the round is kept (masked update)") {
  Lab lab;
  lab.k->table[0].mark = E | S | M;
  lab.k->during_walk = [&] { lab.k->table[1].mark |= 0x4; };  // e.g. the pinhole bit, meanwhile
  auto m = elected(map4(8080, 80));
  auto after = m;
  after.checkpoint = false;
  lab.sync->submit(replace(m, after));
  lab.sync->submit(add(elected(map4(9090, 90, "192.0.2.12"))));
  lab.sync->run_pending();
  CHECK(lab.k->mark_of(41001) == (S | M));
  CHECK(lab.k->mark_of(41004) == (E | S | M));
  CHECK(lab.k->mark_of(80) == (M | 0x4));
}

TEST_CASE("conntrack sync: a failed walk is counted and reported, and the next round works") {
  Lab lab;
  lab.k->fail_walk = ENOBUFS;
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->run_pending();
  auto c = lab.sync->counters();
  CHECK(c.errors == 1);
  CHECK(c.deleted == 0);
  CHECK(lab.k->has(41001));
  lab.k->fail_walk = 0;
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->run_pending();
  CHECK_FALSE(lab.k->has(41001));
}

TEST_CASE("conntrack sync: a kernel that cannot be opened fails the round, not the caller") {
  auto sync = std::make_unique<ct::ConntrackSync>(
      []() -> Result<std::unique_ptr<ct::CtKernel>> { return fail(ErrorDomain::Conntrack, EPERM, "open"); },
      ct::SyncSpec{}, ct::ConntrackSync::Mode::Inline);
  sync->submit(remove(map4(8080, 80)));
  sync->run_pending();
  CHECK(sync->counters().errors == 1);
  CHECK(sync->counters().pending == 0);
}

TEST_CASE("conntrack sync (thread): submit() returns while the worker is inside a walk, and the work is done after") {
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  bool waited_out = false;
  Lab lab(ct::ConntrackSync::Mode::Thread);
  REQUIRE(lab.sync->notify_fd() >= 0);
  // The first walk blocks until the test lets it go (or 10 s, which only a broken submit() reaches).
  lab.k->during_walk = [&, first = true]() mutable {
    if (!first) return;
    first = false;
    entered.set_value();
    waited_out = released.wait_for(std::chrono::seconds(10)) == std::future_status::timeout;
  };
  lab.sync->request_touch();
  REQUIRE(entered.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  // The worker is in the kernel now. A request's changes are handed over without waiting for it.
  lab.sync->submit(remove(map4(8080, 80)));
  const auto c = lab.sync->counters();
  CHECK(c.pending == 1);
  release.set_value();
  REQUIRE(lab.sync->drain(std::chrono::seconds(10)));
  CHECK_FALSE(waited_out);
  CHECK_FALSE(lab.k->has(41001));
  CHECK(lab.sync->counters().rounds == 2);
  const auto reports = lab.sync->take_reports();
  CHECK(reports.size() == 2);
  CHECK(reports.front().touch);
}

TEST_CASE("conntrack sync (announced connections): after one walk, MAP work is exact lookups of the mapping's own connections") {
  Lab lab(ct::ConntrackSync::Mode::Inline, fill, 5351);
  // The first round walks (nothing announced yet is known to be complete) and fills the index.
  lab.sync->submit(add(elected(map4(9090, 90, "192.0.2.12"))));
  lab.sync->run_pending();
  CHECK(lab.k->walks == 1);
  auto c = lab.sync->counters();
  CHECK(c.index_complete);
  CHECK(c.known == 3);  // the three mapped-bit entries
  // A new inbound connection to 8080, announced by pcpd.nft, then the mapping is elected and
  // deleted: no walk, only the mapping's connections are looked up.
  lab.k->connect(entry("198.51.100.9", 41009, "203.0.113.1", 8080, "192.0.2.10", 80, "198.51.100.9", 41009, M));
  const std::size_t scanned = lab.k->scanned;
  const auto m = map4(8080, 80);
  lab.sync->submit(replace(m, elected(m)));
  lab.sync->run_pending();
  CHECK(lab.k->mark_of(41009) == (E | S | M));
  CHECK(lab.k->mark_of(41001) == (E | S | M));
  CHECK(lab.k->mark_of(80) == (E | S | M));
  CHECK(lab.k->mark_of(41004) == (E | S | M));  // elected by the first round (9090)
  lab.sync->submit(remove(elected(m)));
  lab.sync->run_pending();
  CHECK_FALSE(lab.k->has(41009));
  CHECK_FALSE(lab.k->has(41001));
  CHECK_FALSE(lab.k->has(80));
  CHECK(lab.k->has(41004));
  CHECK(lab.k->has(41003));
  c = lab.sync->counters();
  CHECK(lab.k->walks == 1);
  CHECK(lab.k->scanned == scanned);  // the table was not walked again
  CHECK(c.walks == 1);
  CHECK(c.learned == 1);
  CHECK(c.lookups == 6);  // 3 connections of 8080, each looked up for the election and the delete
  CHECK(c.known == 1);    // 41004 (41003 carries no mapped bit)
}

TEST_CASE("conntrack sync (announced connections): a lost announcement makes the next MAP round walk") {
  Lab lab(ct::ConntrackSync::Mode::Inline, fill, 5351);
  lab.sync->request_count();
  lab.sync->run_pending();
  REQUIRE(lab.sync->counters().index_complete);
  // This connection's announcement was dropped by the kernel (socket full): only a walk finds it.
  lab.k->table.push_back(entry("198.51.100.9", 41009, "203.0.113.1", 8080, "192.0.2.10", 80, "198.51.100.9", 41009, M));
  lab.k->lose = true;
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->run_pending();
  CHECK_FALSE(lab.k->has(41009));
  CHECK_FALSE(lab.k->has(41001));
  const auto c = lab.sync->counters();
  CHECK(lab.k->walks == 2);
  CHECK(c.learn_lost == 1);
  CHECK(c.index_complete);  // the walk rebuilt it
}

TEST_CASE("conntrack sync (announced connections): without the NFLOG group every MAP round walks") {
  Lab lab(ct::ConntrackSync::Mode::Inline, [](FakeCt& k) {
    fill(k);
    k.can_learn = false;
  }, 5351);
  lab.sync->submit(remove(map4(9090, 90, "192.0.2.12")));
  lab.sync->run_pending();
  lab.sync->submit(remove(map4(8080, 80)));
  lab.sync->run_pending();
  CHECK(lab.k->walks == 2);
  CHECK_FALSE(lab.sync->counters().index_complete);
  CHECK_FALSE(lab.k->has(41001));
  CHECK_FALSE(lab.k->has(41004));
}

TEST_CASE("conntrack sync (announced connections): the sweep drops connections that ended") {
  Lab lab(ct::ConntrackSync::Mode::Inline, fill, 5351);
  lab.sync->request_count();
  lab.sync->run_pending();
  REQUIRE(lab.sync->counters().known == 3);
  lab.k->table.erase(lab.k->table.begin());  // 41001 ended (its timeout, a FIN)
  lab.sync->sweep_now(10);
  const auto c = lab.sync->counters();
  CHECK(c.known == 2);
  CHECK(c.swept == 1);
}

TEST_CASE("conntrack sync (thread): the worker blocks every signal (the daemon reads them from a signalfd)") {
  Lab lab(ct::ConntrackSync::Mode::Thread);
  REQUIRE(lab.sync->drain(std::chrono::seconds(10)));
  // The worker names itself; its SigBlk line in /proc says which signals it blocks.
  std::string blocked;
  for (int attempt = 0; attempt < 100 && blocked.empty(); ++attempt) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name != "pcpd-conntrack") continue;
      std::ifstream status(task.path() / "status");
      for (std::string line; std::getline(status, line);)
        if (line.rfind("SigBlk:", 0) == 0) blocked = line.substr(7);
    }
    if (blocked.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE_FALSE(blocked.empty());
  const unsigned long long mask = std::stoull(blocked, nullptr, 16);
  CAPTURE(blocked);
  CHECK((mask & (1ull << (SIGHUP - 1))) != 0);
  CHECK((mask & (1ull << (SIGTERM - 1))) != 0);
  CHECK((mask & (1ull << (SIGINT - 1))) != 0);
}
