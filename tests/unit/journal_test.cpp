// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd mapping journal (src/pcpd/mapping_journal.hpp, journal_tap.hpp): records replay
// to what core's table went through (a random model over MAP and PEER keys, puts, erases and
// key changes), the commit sum and generation arithmetic, a tail cut anywhere or a corrupt byte
// stops the replay at the last whole record, header checks, and JournalTap's bookkeeping (what
// is written for committed, refused and outside-apply transactions; an unknown outcome or a
// write error ends the journal and removes its file).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fakes/fake_clock.hpp"
#include "fakes/fake_datapath.hpp"
#include "mapping_samples.hpp"
#include "pcpd/journal_tap.hpp"
#include "pcpd/mapping_journal.hpp"

using namespace pcpd;
using namespace pcpd::daemon;
using namespace pcpd::test;
using core::Change;
using core::ChangeSet;
using core::Mapping;

namespace {

const SnapshotStamp kBase{"0f6e1c2a-1111-2222-3333-444455556666", 0xfffffff0u, 42};

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A mapping from a small key space (so that changes collide): MAP by internal endpoint, PEER by
// 5-tuple. `v` varies the non-key fields.
Mapping keyed(bool peer, int host, int port, int remote, int v, Millis expires) {
  Mapping m;
  m.kind = peer ? core::MappingKind::Peer : core::MappingKind::Map;
  m.protocol = 6;
  m.internal_addr = ip(host == 0 ? "192.0.2.10" : "2001:db8:1::10");
  m.internal_port = static_cast<std::uint16_t>(8000 + port);
  m.external_addr = ip(host == 0 ? "203.0.113.1" : "2001:db8:1::10");
  m.external_port = static_cast<std::uint16_t>(40000 + port + 10 * v);
  if (peer) {
    m.remote_addr = ip("198.51.100.9");
    m.remote_port = static_cast<std::uint16_t>(9000 + remote);
  }
  m.client_addr = m.internal_addr;
  m.nonce = nonce(static_cast<std::uint8_t>(v));
  m.expires = expires;
  m.lifetime = static_cast<std::uint32_t>(100 + v);
  m.checkpoint = v % 2 == 1;
  if (v % 3 == 0) m.filters = {wire::Filter{128, 0, ip("203.0.113.100")}};
  m.description = "v" + std::to_string(v);
  return m;
}

bool same_key(const Mapping& a, const Mapping& b) {
  return a.kind == b.kind && a.internal_addr == b.internal_addr && a.internal_port == b.internal_port &&
         a.protocol == b.protocol &&
         (a.kind == core::MappingKind::Map || (a.remote_addr == b.remote_addr && a.remote_port == b.remote_port));
}

// The model: what core's table holds after a change.
void model_apply(std::vector<Mapping>& t, const Change& c) {
  auto erase = [&](const Mapping& m) {
    t.erase(std::remove_if(t.begin(), t.end(), [&](const Mapping& x) { return same_key(x, m); }), t.end());
  };
  if (c.op == Change::Op::Replace) erase(c.previous);
  erase(c.mapping);
  if (c.op != Change::Op::Remove) t.push_back(c.mapping);
}

std::string key_text(const Mapping& m) {
  return std::to_string(static_cast<int>(m.kind)) + m.internal_addr.to_string() + ":" +
         std::to_string(m.internal_port) + ">" + m.remote_addr.to_string() + ":" + std::to_string(m.remote_port);
}

bool same_table(std::vector<Mapping> a, std::vector<Mapping> b) {
  auto by_key = [](const Mapping& x, const Mapping& y) { return key_text(x) < key_text(y); };
  std::sort(a.begin(), a.end(), by_key);
  std::sort(b.begin(), b.end(), by_key);
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}

struct Generated {
  std::vector<Mapping> base;
  std::vector<std::uint8_t> journal;
  std::vector<std::size_t> record_ends;           // byte offset after each record
  std::vector<std::vector<Mapping>> after;        // model after each record
  std::vector<std::uint64_t> commits_after;       // commit sum after each record
};

// A base table and `records` random ChangeSets as core would produce them (Add of a free key,
// Remove or Replace of a present one, now and then a Replace onto another key).
Generated generate(std::mt19937& rng, int records) {
  Generated g;
  Millis at{10'000};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto fresh = [&](int v) { return keyed(pick(2) == 1, pick(2), pick(6), pick(3), v, at + Millis(60'000 + pick(1000))); };
  for (int i = 0; i < 8; ++i) {
    Mapping m = fresh(pick(50));
    if (std::none_of(g.base.begin(), g.base.end(), [&](const Mapping& x) { return same_key(x, m); }))
      g.base.push_back(m);
  }
  std::vector<Mapping> table = g.base;
  g.journal = encode_journal_header(kBase);
  std::uint64_t commits = 0;
  for (int r = 0; r < records; ++r) {
    at += Millis(pick(500));
    ChangeSet cs;
    std::vector<Mapping> scratch = table;
    const int n = pick(4);  // 0: a record of commits only
    for (int i = 0; i < n; ++i) {
      Change c;
      const int what = scratch.empty() ? 0 : pick(3);
      if (what == 0) {
        c.op = Change::Op::Add;
        c.mapping = fresh(pick(50));
        if (std::any_of(scratch.begin(), scratch.end(), [&](const Mapping& x) { return same_key(x, c.mapping); })) continue;
      } else {
        const Mapping& old = scratch[static_cast<std::size_t>(pick(static_cast<int>(scratch.size())))];
        c.op = what == 1 ? Change::Op::Remove : Change::Op::Replace;
        c.mapping = old;
        if (c.op == Change::Op::Replace) {
          c.previous = old;
          c.mapping.expires = at + Millis(90'000);
          c.mapping.lifetime += 1;
          if (pick(3) == 0) {  // a refresh: only expiry and lifetime change (a refresh entry)
          } else if (c.mapping.description += "+"; pick(4) == 0) {  // onto another key (core's table re-keys on a THIRD_PARTY change)
            c.mapping.internal_port = static_cast<std::uint16_t>(8100 + pick(3));
            if (std::any_of(scratch.begin(), scratch.end(), [&](const Mapping& x) { return same_key(x, c.mapping); }))
              continue;
          }
        }
      }
      model_apply(scratch, c);
      cs.changes.push_back(c);
    }
    const auto k = static_cast<std::uint32_t>(cs.changes.empty() ? 1 + pick(3) : pick(3));
    append_journal_record(g.journal, k, cs, at);
    commits += k;
    table = scratch;
    g.record_ends.push_back(g.journal.size());
    g.after.push_back(table);
    g.commits_after.push_back(commits);
  }
  return g;
}

}  // namespace

TEST_CASE("journal: random records replay to what the table went through (puts, erases, key changes)") {
  std::mt19937 rng(20261123);
  std::size_t entries = 0;
  for (int round = 0; round < 200; ++round) {
    const Generated g = generate(rng, 1 + static_cast<int>(rng() % 12));
    auto r = replay_journal(g.base, g.journal);
    REQUIRE(r);
    CHECK(r->base == kBase);
    CHECK(r->records == g.after.size());
    CHECK(r->tail_bytes == 0);
    CHECK(r->commits == g.commits_after.back());
    // The generation id wraps like the kernel's u32 counter.
    CHECK(r->expected_generation() == static_cast<std::uint32_t>(kBase.generation + g.commits_after.back()));
    CHECK(same_table(r->mappings, g.after.back()));
    entries += r->entries;
  }
  CHECK(entries > 500);  // the rounds did change things
}

TEST_CASE("journal: a tail cut anywhere or a corrupt byte stops at the last whole record") {
  std::mt19937 rng(7);
  const Generated g = generate(rng, 6);
  const std::size_t header = encode_journal_header(kBase).size();
  for (std::size_t cut = header; cut < g.journal.size(); ++cut) {
    const std::vector<std::uint8_t> part(g.journal.begin(), g.journal.begin() + static_cast<std::ptrdiff_t>(cut));
    auto r = replay_journal(g.base, part);
    REQUIRE(r);
    const auto whole = static_cast<std::size_t>(
        std::upper_bound(g.record_ends.begin(), g.record_ends.end(), cut) - g.record_ends.begin());
    CHECK(r->records == whole);
    CHECK(r->tail_bytes == cut - (whole == 0 ? header : g.record_ends[whole - 1]));
    CHECK(r->commits == (whole == 0 ? 0 : g.commits_after[whole - 1]));
    CHECK(same_table(r->mappings, whole == 0 ? g.base : g.after[whole - 1]));
  }
  // One flipped byte inside record 3: records 1-2 stand, the rest is tail.
  std::vector<std::uint8_t> bad = g.journal;
  bad[g.record_ends[1] + 10] ^= 0x40;
  auto r = replay_journal(g.base, bad);
  REQUIRE(r);
  CHECK(r->records == 2);
  CHECK(r->tail_bytes == g.journal.size() - g.record_ends[1]);
  CHECK(same_table(r->mappings, g.after[1]));
}

TEST_CASE("journal: header checks and the base stamp") {
  const auto h = encode_journal_header(kBase);
  auto base = journal_base(h);
  REQUIRE(base);
  CHECK(*base == kBase);
  auto r = replay_journal(sample(), h);
  REQUIRE(r);
  CHECK(r->records == 0);
  CHECK(r->mappings.size() == sample().size());  // nothing applied: the snapshot as it was
  std::vector<std::uint8_t> b = h;
  b[0] = 'X';
  CHECK(journal_base(b).error() == JournalError::BadMagic);
  b = h;
  b[9] = 1;  // version 1: the FNV-1a header checksum
  CHECK(journal_base(b).error() == JournalError::BadVersion);
  b = h;
  b[12] ^= 1;  // in the boot id: the header checksum no longer matches
  CHECK(journal_base(b).error() == JournalError::BadHeader);
  CHECK(journal_base(std::vector<std::uint8_t>(h.begin(), h.end() - 1)).error() == JournalError::BadHeader);
  CHECK(journal_base(std::vector<std::uint8_t>{}).error() == JournalError::BadMagic);
}

TEST_CASE("journal: every Mapping field survives a record (the snapshot's record codec)") {
  const Millis at{1'000};
  ChangeSet cs;
  for (const auto& m : sample()) cs.changes.push_back({Change::Op::Add, m, {}, false});
  auto j = encode_journal_header(kBase);
  append_journal_record(j, 1, cs, at);
  auto r = replay_journal({}, j);
  REQUIRE(r);
  REQUIRE(r->mappings.size() == sample().size());
  for (std::size_t i = 0; i < sample().size(); ++i) {
    Mapping scratch;
    Mapping want = within_core_limits(sample()[i], scratch);
    if (want.expires < at) want.expires = at;  // stored relative to `at`
    CHECK(same(r->mappings[i], want));
  }
}

TEST_CASE("journal: a refresh is a 33-byte entry (51 for PEER) and only of a mapping present") {
  const Millis at{5'000};
  const std::vector<Mapping> base = {keyed(false, 6, 1, 0, 1, at + Millis(1'000)), keyed(true, 17, 2, 1, 2, at + Millis(1'000))};
  auto refresh = [&](const Mapping& m, std::uint32_t lifetime) {
    Change c{Change::Op::Replace, m, m, false};
    c.mapping.expires = at + Millis(std::int64_t{lifetime} * 1000);
    c.mapping.lifetime = lifetime;
    return c;
  };
  auto j = encode_journal_header(kBase);
  const std::size_t header = j.size();
  ChangeSet cs;
  cs.changes = {refresh(base[0], 600), refresh(base[1], 700)};
  append_journal_record(j, 1, cs, at);
  // frame 4 + head 16 + entries + checksum 8
  CHECK(j.size() - header == 4 + 16 + 33 + 51 + 8);
  auto r = replay_journal(base, j);
  REQUIRE(r);
  CHECK(r->tail_bytes == 0);
  REQUIRE(r->mappings.size() == 2);
  Mapping want0 = base[0], want1 = base[1];
  want0.expires = at + Millis(600'000);
  want0.lifetime = 600;
  want1.expires = at + Millis(700'000);
  want1.lifetime = 700;
  CHECK(same_table(r->mappings, {want0, want1}));

  // Anything else changed: a whole put (here the description).
  auto k = encode_journal_header(kBase);
  ChangeSet other;
  other.changes = {refresh(base[0], 600)};
  other.changes[0].mapping.description = "other";
  append_journal_record(k, 1, other, at);
  CHECK(k.size() - header > 4 + 16 + 33 + 8);

  // A refresh of a mapping the table does not have, or one this record erased first: the
  // record is dropped (the journal does not continue this table).
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    auto bad = encode_journal_header(kBase);
    ChangeSet cs2;
    if (variant == 1) cs2.changes.push_back({Change::Op::Remove, base[0], {}, false});
    cs2.changes.push_back(refresh(base[0], 600));
    append_journal_record(bad, 1, cs2, at);
    auto rb = replay_journal(variant == 0 ? std::vector<Mapping>{base[1]} : base, bad);
    REQUIRE(rb);
    CHECK(rb->records == 0);
    CHECK(rb->tail_bytes == bad.size() - header);
  }
  // A put earlier in the same record makes it present.
  auto ok = encode_journal_header(kBase);
  ChangeSet cs3;
  cs3.changes = {{Change::Op::Add, base[0], {}, false}, refresh(base[0], 600)};
  append_journal_record(ok, 1, cs3, at);
  auto ro = replay_journal({}, ok);
  REQUIRE(ro);
  CHECK(ro->records == 1);
  CHECK(same_table(ro->mappings, {want0}));
}

namespace {

// The kernel's commit count, as NftDatapath keeps it: one more for every transaction it took.
struct CountingDatapath final : core::Datapath {
  CountingDatapath(test::FakeDatapath& i, CommitCount& c) : inner(i), count(c) {}
  Result<void> apply(const ChangeSet& cs) override {
    auto r = inner.apply(cs);
    if (r) ++count.committed;
    return r;
  }
  test::FakeDatapath& inner;
  CommitCount& count;
};

}  // namespace

TEST_CASE("journal tap: records what was committed, commits outside apply, and ends on an unknown outcome") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/mappings.journal";
  test::FakeDatapath inner;
  test::FakeClock clock;
  CommitCount count;
  CountingDatapath counting(inner, count);
  JournalTap tap(counting, [&] { return count; }, clock);
  const Mapping a = keyed(false, 0, 1, 0, 1, Millis(5'000'000));  // after the clock: round-trips exactly
  const Mapping p = keyed(true, 1, 2, 1, 2, Millis(5'000'000));

  // Not started: applies pass through, nothing is written.
  REQUIRE(tap.apply(ChangeSet{{{Change::Op::Add, a, {}, false}}}));
  REQUIRE(count.committed == 1);
  CHECK_FALSE(tap.active());

  // Started at commit count 0: the commit made since (count 1) is written at once.
  auto w = JournalWriter::create(path, kBase);
  REQUIRE(w);
  tap.start(std::move(*w), CommitCount{0, 0});
  CHECK(tap.counters().records == 1);
  tap.sync();  // nothing new: nothing written
  CHECK(tap.counters().records == 1);

  REQUIRE(tap.apply(ChangeSet{{{Change::Op::Add, p, {}, false}}}));  // commit 2
  CHECK(tap.counters().records == 2);
  inner.fail_nth(1);
  CHECK_FALSE(tap.apply(ChangeSet{{{Change::Op::Remove, p, {}, true}}}));  // refused: nothing
  CHECK(tap.counters().records == 2);
  // Two transactions outside apply (the external interfaces on a reload): nobody calls sync();
  // the next apply writes them as a record of their own before its own.
  count.committed += 2;
  Mapping longer = p;
  longer.lifetime = 7200;
  longer.expires = p.expires + Millis(3'600'000);
  REQUIRE(tap.apply(ChangeSet{{{Change::Op::Replace, longer, p, false}}}));  // commit 5
  CHECK(tap.counters().records == 4);

  auto r = replay_journal({a}, read_all(path));
  REQUIRE(r);
  CHECK(r->records == 4);
  CHECK(r->commits == 5);
  CHECK(r->tail_bytes == 0);
  CHECK(same_table(r->mappings, {a, longer}));  // the refused Remove is not in it

  // Reopened after a crash cut the last record short: the tail goes, appends follow.
  const auto whole = read_all(path).size();
  tap.stop();
  {
    std::FILE* f = std::fopen(path.c_str(), "ab");
    REQUIRE(f != nullptr);
    std::fputs("torn", f);
    std::fclose(f);
  }
  auto again = JournalWriter::reopen(path, whole);
  REQUIRE(again);
  tap.start(std::move(*again), count);
  REQUIRE(tap.apply(ChangeSet{{{Change::Op::Remove, a, {}, true}}}));  // commit 6
  r = replay_journal({a}, read_all(path));
  REQUIRE(r);
  CHECK(r->records == 5);
  CHECK(r->tail_bytes == 0);
  CHECK(r->commits == 6);
  CHECK(same_table(r->mappings, {longer}));

  // A batch whose outcome is unknown: the journal ends and its file goes.
  count.unknown = 1;
  (void)tap.apply(ChangeSet{{{Change::Op::Add, a, {}, false}}});
  CHECK_FALSE(tap.active());
  CHECK(tap.counters().ended == 1);
  struct stat st {};
  CHECK(::stat(path.c_str(), &st) != 0);
  ::rmdir(dir.c_str());
}
