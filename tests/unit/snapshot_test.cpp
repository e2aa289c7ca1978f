// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd restart snapshot (src/pcpd/mapping_snapshot.hpp): round trip of every
// core::Mapping field, every reject path of the decoder (never a partial table), the stamp
// decision and the file functions (atomic write, read-once).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/mapping_record.hpp"
#include "pcpd/mapping_snapshot.hpp"
#include "mapping_samples.hpp"

using namespace pcpd;
using namespace pcpd::daemon;
using core::Millis;
using namespace pcpd::test;

namespace {

const SnapshotStamp kStamp{"0f6e1c2a-1111-2222-3333-444455556666", 4711, 42};
// The boot clock when the snapshot is written: records hold expiry relative to it.
constexpr Millis kNow{1'000};

// What a mapping reads back as: expiry is relative to written_at, so one already expired when
// written comes back expiring at written_at.
core::Mapping as_read(core::Mapping m, Millis written_at) {
  if (m.expires < written_at) m.expires = written_at;
  return m;
}

void reseal(std::vector<std::uint8_t>& b) {
  const std::uint64_t sum = state_checksum(std::span<const std::uint8_t>(b).first(b.size() - 8));
  for (int i = 0; i < 8; ++i) b[b.size() - 8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sum >> (56 - 8 * i));
}

// Offset of the header's mapping count (big-endian u64) in an encoding of kStamp: after magic,
// version, boot id, generation, table handle and written_at.
std::size_t count_offset() { return 8 + 2 + 1 + kStamp.boot_id.size() + 4 + 8 + 8; }

}  // namespace

TEST_CASE("snapshot: round trip of every Mapping field (MAP v4 + FILTER + DESCRIPTION, PEER v6, NAT-PMP, pinhole)") {
  const auto in = sample();
  const auto bytes = encode_snapshot(kStamp, in, kNow);
  auto out = decode_snapshot(bytes);
  REQUIRE(out.has_value());
  CHECK(out->stamp == kStamp);
  CHECK(out->written_at == kNow);
  REQUIRE(out->mappings.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    CHECK(same(out->mappings[i], as_read(in[i], kNow)));
  }
  CHECK(out->mappings[0].expires == Millis(123'456'789));  // absolute expiry round-trips
  CHECK(out->mappings[2].expires == kNow);                 // expired when written
  // IPv4 stays IPv4-mapped (not ::a.b.c.d), IPv6 stays IPv6.
  CHECK(out->mappings[0].internal_addr.is_v4());
  CHECK_FALSE(out->mappings[1].internal_addr.is_v4());
  CHECK(out->mappings[1].filters[0].remote_addr == ip("2001:db8:ffff::"));
  CHECK(out->mappings[1].description.size() == 1011);
}

TEST_CASE("snapshot: empty table round trip and the header layout") {
  const auto bytes = encode_snapshot(kStamp, {}, kNow);
  CHECK(bytes.size() == 8 + 2 + 1 + 36 + 4 + 8 + 8 + 8 + 8);
  CHECK(std::string(bytes.begin(), bytes.begin() + 8) == "PCPDSNAP");
  CHECK(bytes[8] == 0);
  CHECK(bytes[9] == kSnapshotVersion);
  CHECK(bytes[count_offset() - 2] == (kNow.count() >> 8));  // written_at, big-endian
  CHECK(bytes[count_offset() - 1] == (kNow.count() & 0xff));
  auto out = decode_snapshot(bytes);
  REQUIRE(out.has_value());
  CHECK(out->mappings.empty());
  CHECK(out->stamp == kStamp);
  CHECK(out->written_at == kNow);
}

TEST_CASE("snapshot: expiry is stored relative to written_at and rebuilt on the same clock") {
  const Millis now{5'000'000'000};
  auto v = sample();
  v[0].expires = now + Millis(3'600'123);
  v[1].expires = now + Millis(1);
  v[2].expires = now;  // expires exactly now: 0 remaining
  v[3].expires = now + Millis(400LL * 24 * 3600 * 1000);  // beyond a year: capped, as on the HA link
  auto out = decode_snapshot(encode_snapshot(kStamp, v, now));
  REQUIRE(out.has_value());
  CHECK(out->written_at == now);
  CHECK(out->mappings[0].expires == now + Millis(3'600'123));
  CHECK(out->mappings[1].expires == now + Millis(1));
  CHECK(out->mappings[2].expires == now);
  CHECK(out->mappings[3].expires == now + core::kMappingRecordMaxRemaining);
  // A static mapping never expires: whatever the record's (capped) remaining time says.
  v[0].origin = core::Origin::Static;
  v[0].expires = core::kNever;
  auto st = decode_snapshot(encode_snapshot(kStamp, v, now));
  REQUIRE(st.has_value());
  CHECK(st->mappings[0].expires == core::kNever);
  CHECK(st->mappings[0].is_static());
  // A negative `now` (never on the boot clock) is stored as 0.
  auto neg = decode_snapshot(encode_snapshot(kStamp, {}, Millis(-7)));
  REQUIRE(neg.has_value());
  CHECK(neg->written_at == Millis(0));
}

TEST_CASE("snapshot: an IPv4 MAP record takes 101 bytes (the HA link's record, 16-byte addresses)") {
  const auto one = encode_snapshot(kStamp, std::vector<core::Mapping>(1, sample()[2]), kNow);
  const auto two = encode_snapshot(kStamp, std::vector<core::Mapping>(2, sample()[2]), kNow);
  CHECK(two.size() - one.size() == 101);
}

TEST_CASE("snapshot: bad magic is rejected") {
  auto bytes = encode_snapshot(kStamp, sample(), kNow);
  bytes[0] = 'X';
  CHECK(decode_snapshot(bytes).error() == SnapshotError::BadMagic);
  CHECK(decode_snapshot({}).error() == SnapshotError::BadMagic);
  const std::string text = "boot_id=x\norigin_ms=5\n";
  CHECK(decode_snapshot(std::vector<std::uint8_t>(text.begin(), text.end())).error() == SnapshotError::BadMagic);
}

TEST_CASE("snapshot: another format version is rejected") {
  auto bytes = encode_snapshot(kStamp, sample(), kNow);
  bytes[9] = kSnapshotVersion + 1;
  reseal(bytes);
  CHECK(decode_snapshot(bytes).error() == SnapshotError::BadVersion);
  bytes[9] = kSnapshotVersion;
  bytes[8] = 1;
  reseal(bytes);
  CHECK(decode_snapshot(bytes).error() == SnapshotError::BadVersion);
}

TEST_CASE("snapshot: truncation at every byte offset is rejected, never a partial table") {
  const auto bytes = encode_snapshot(kStamp, sample(), kNow);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    auto out = decode_snapshot(std::span<const std::uint8_t>(bytes).first(n));
    CHECK_FALSE(out.has_value());
  }
  // Cut short and re-sealed (a writer that lost its tail but computed the checksum on what it
  // had): the record count no longer matches.
  for (std::size_t n = count_offset() + 8 + 8; n < bytes.size(); ++n) {
    CAPTURE(n);
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    reseal(cut);
    auto out = decode_snapshot(cut);
    REQUIRE_FALSE(out.has_value());
    CHECK((out.error() == SnapshotError::BadRecord || out.error() == SnapshotError::CountMismatch));
  }
}

TEST_CASE("snapshot: any flipped byte fails the checksum") {
  const auto bytes = encode_snapshot(kStamp, sample(), kNow);
  for (std::size_t i = 10; i < bytes.size() - 8; ++i) {
    CAPTURE(i);
    auto bad = bytes;
    bad[i] ^= 0x40;
    CHECK(decode_snapshot(bad).error() == SnapshotError::BadChecksum);
  }
  auto bad = bytes;
  bad.back() ^= 1;
  CHECK(decode_snapshot(bad).error() == SnapshotError::BadChecksum);
}

TEST_CASE("snapshot: header count that does not match the records is rejected") {
  const auto good = encode_snapshot(kStamp, sample(), kNow);
  for (std::uint64_t count : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{5}, std::uint64_t{1} << 40,
                              ~std::uint64_t{0}}) {
    CAPTURE(count);
    auto bytes = good;
    for (int i = 0; i < 8; ++i) bytes[count_offset() + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(count >> (56 - 8 * i));
    reseal(bytes);
    auto out = decode_snapshot(bytes);
    REQUIRE_FALSE(out.has_value());
    // 3 records read as 3: the 4th record's bytes are left over; 5: the 4 run out. Either way
    // a count mismatch, unless the shortened count ends inside a record (it does not here).
    CHECK(out.error() == SnapshotError::CountMismatch);
  }
}

TEST_CASE("snapshot: out-of-range header and record fields are rejected (kind, flags, filters, prefix, description)") {
  const auto one = std::vector<core::Mapping>(1, sample()[0]);
  const auto good = encode_snapshot(kStamp, one, kNow);
  const std::size_t rec = count_offset() + 8;
  auto expect_bad_bytes = [&](std::vector<std::uint8_t> bytes) {
    reseal(bytes);
    auto out = decode_snapshot(bytes);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error() == SnapshotError::BadRecord);
  };
  auto expect_bad = [&](std::size_t offset, std::uint8_t value) {
    auto bytes = good;
    bytes[offset] = value;
    expect_bad_bytes(bytes);
  };
  expect_bad(rec + 0, 2);     // kind
  expect_bad(rec + 1, 3);     // origin (2 is static)
  expect_bad(rec + 3, 0x80);  // unknown flag
  // filter count at 98: 4 flag bytes + 3 x (addr 16 + port 2) + client 16 + nonce 12 +
  // remaining 8 + lifetime 4 (core/mapping_record.hpp)
  const std::size_t nf = rec + 98;
  REQUIRE(good[nf] == 2);
  expect_bad(nf, static_cast<std::uint8_t>(core::kMappingRecordMaxFilters + 1));
  expect_bad(rec + core::kMappingRecordFixedSize, 129);  // first filter's prefix length
  {
    auto bytes = good;  // description length 1017 > 1016 (RFC 7220)
    bytes[rec + 99] = 0x03;
    bytes[rec + 100] = 0xF9;
    expect_bad_bytes(bytes);
  }
  // More filters than core keeps (wire::kMaxFilters), though within the record's limit: a
  // well-formed 45th filter inserted after 44.
  auto full = std::vector<core::Mapping>(1, sample()[0]);
  full[0].filters.assign(wire::kMaxFilters, wire::Filter{96, 80, ip("2001:db8::1")});
  const auto full_bytes = encode_snapshot(kStamp, full, kNow);
  REQUIRE(decode_snapshot(full_bytes).has_value());
  auto over = full_bytes;
  REQUIRE(over[nf] == wire::kMaxFilters);
  over[nf] = static_cast<std::uint8_t>(wire::kMaxFilters + 1);
  const auto first = over.begin() + static_cast<std::ptrdiff_t>(rec + core::kMappingRecordFixedSize);
  const std::vector<std::uint8_t> filter(first, first + static_cast<std::ptrdiff_t>(core::kMappingRecordFilterSize));
  over.insert(first, filter.begin(), filter.end());
  expect_bad_bytes(over);
  // The encoder stores such a mapping cut to wire::kMaxFilters.
  auto too_many = full;
  too_many[0].filters.resize(wire::kMaxFilters + 3, wire::Filter{8, 1, ip("192.0.2.1")});
  auto cut = decode_snapshot(encode_snapshot(kStamp, too_many, kNow));
  REQUIRE(cut.has_value());
  CHECK(cut->mappings[0].filters == full[0].filters);
  // boot id longer than the 64 the header allows
  auto bytes = good;
  bytes[10] = 65;
  reseal(bytes);
  CHECK(decode_snapshot(bytes).error() == SnapshotError::BadHeader);
  // written_at so late that written_at + a remaining lifetime would overflow
  for (std::uint8_t top : {std::uint8_t{0x7f}, std::uint8_t{0xff}}) {
    bytes = good;
    bytes[count_offset() - 8] = top;
    bytes[count_offset() - 7] = bytes[count_offset() - 6] = bytes[count_offset() - 5] = 0xff;
    reseal(bytes);
    auto late = decode_snapshot(bytes);
    REQUIRE_FALSE(late.has_value());
    CHECK(late.error() == SnapshotError::BadHeader);
  }
}

TEST_CASE("snapshot: the stamp must match in boot id, generation and table handle") {
  CHECK_FALSE(check_stamp(kStamp, kStamp).has_value());
  SnapshotStamp s = kStamp;
  s.boot_id = "other";
  CHECK(check_stamp(kStamp, s) == SnapshotReject::OtherBoot);
  s = kStamp;
  s.generation++;
  CHECK(check_stamp(kStamp, s) == SnapshotReject::GenerationChanged);
  s = kStamp;
  s.table_handle++;
  CHECK(check_stamp(kStamp, s) == SnapshotReject::TableChanged);
  SnapshotStamp empty{"", 1, 1};
  CHECK(check_stamp(empty, empty) == SnapshotReject::OtherBoot);
  SnapshotStamp no_table{"b", 1, 0};
  CHECK(check_stamp(no_table, no_table) == SnapshotReject::TableChanged);
  CHECK(std::string(to_string(SnapshotReject::GenerationChanged)) == "nft_generation_changed");
  CHECK(std::string(to_string(SnapshotError::BadChecksum)) == "bad_checksum");
}

TEST_CASE("snapshot file: atomic write, read once, then gone") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/" + kSnapshotFileName;
  auto none = take_snapshot_file(path);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());

  const auto bytes = encode_snapshot(kStamp, sample(), kNow);
  REQUIRE(write_snapshot_file(path, bytes).has_value());
  CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
  auto got = take_snapshot_file(path);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK(**got == bytes);
  CHECK(::access(path.c_str(), F_OK) != 0);  // deleted once read
  auto again = take_snapshot_file(path);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->has_value());

  // Overwrites an older snapshot.
  REQUIRE(write_snapshot_file(path, encode_snapshot(kStamp, {}, kNow)).has_value());
  REQUIRE(write_snapshot_file(path, bytes).has_value());
  got = take_snapshot_file(path);
  REQUIRE((got && *got));
  CHECK(**got == bytes);

  // A directory that does not exist: an error, not a crash.
  CHECK_FALSE(write_snapshot_file(dir + "/missing/x", bytes).has_value());
  ::rmdir(dir.c_str());
}

TEST_CASE("state checksum: pieces of any length give the one-piece value, and the length and every bit count") {
  std::vector<std::uint8_t> b(77);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 11);
  const std::uint64_t whole = state_checksum(b);
  const std::span<const std::uint8_t> all(b);
  // Every split in two, and pieces of every fixed length 1..17 (carries across word boundaries).
  for (std::size_t cut = 0; cut <= b.size(); ++cut) {
    StateChecksum c;
    c.update(all.first(cut));
    c.update(all.subspan(cut));
    CHECK(c.value() == whole);
  }
  for (std::size_t step = 1; step <= 17; ++step) {
    StateChecksum c;
    for (std::size_t at = 0; at < b.size(); at += step) c.update(all.subspan(at, std::min(step, b.size() - at)));
    CAPTURE(step);
    CHECK(c.value() == whole);
  }
  // Zero bytes of different lengths differ (the length is mixed in), and so does any one flipped bit.
  std::vector<std::uint64_t> zeros;
  for (std::size_t n = 0; n <= 16; ++n) zeros.push_back(state_checksum(std::vector<std::uint8_t>(n, 0)));
  std::sort(zeros.begin(), zeros.end());
  CHECK(std::adjacent_find(zeros.begin(), zeros.end()) == zeros.end());
  for (std::size_t bit = 0; bit < b.size() * 8; ++bit) {
    auto f = b;
    f[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    CAPTURE(bit);
    CHECK(state_checksum(f) != whole);
  }
}

TEST_CASE("snapshot encoder: taken piece by piece it writes the bytes of encode_snapshot") {
  std::vector<core::Mapping> v;
  for (int round = 0; round < 5; ++round)
    for (const auto& m : sample()) v.push_back(m);
  const auto whole = encode_snapshot(kStamp, v, kNow);
  REQUIRE_FALSE(whole.empty());
  for (std::size_t every : {std::size_t{1}, std::size_t{2}, std::size_t{7}, v.size() + 1}) {
    CAPTURE(every);
    SnapshotEncoder e(kStamp, v.size(), kNow);
    std::vector<std::uint8_t> out;
    auto take = [&] {
      const auto piece = e.take();
      out.insert(out.end(), piece.begin(), piece.end());
    };
    for (std::size_t i = 0; i < v.size(); ++i) {
      e.add(v[i]);
      if ((i + 1) % every == 0) take();
    }
    REQUIRE(e.finish());
    take();
    CHECK(e.take().empty());
    CHECK(out == whole);
    REQUIRE(decode_snapshot(out).has_value());
  }
  // Fewer or more records than the header's count: finish() refuses to seal it.
  SnapshotEncoder fewer(kStamp, 2, kNow);
  fewer.add(v[0]);
  CHECK_FALSE(fewer.finish());
  SnapshotEncoder more(kStamp, 0, kNow);
  more.add(v[0]);
  CHECK_FALSE(more.finish());
}

TEST_CASE("state file writer: pieces, commit, and nothing left behind without a commit") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/" + kSnapshotFileName;
  const std::vector<std::uint8_t> a{1, 2, 3}, b{4, 5};
  REQUIRE(write_snapshot_file(path, a).has_value());
  {
    auto f = StateFileWriter::open(path);
    REQUIRE(f.has_value());
    REQUIRE(f->write(b).has_value());
    CHECK(::access((path + ".tmp").c_str(), F_OK) == 0);
  }  // dropped without commit: the .tmp goes, the old file stays
  CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
  auto got = read_state_file(path);
  REQUIRE((got && *got));
  CHECK(**got == a);
  for (bool durable : {false, true}) {
    auto f = StateFileWriter::open(path);
    REQUIRE(f.has_value());
    REQUIRE(f->write(b).has_value());
    REQUIRE(f->write(a).has_value());
    REQUIRE(f->commit(durable).has_value());
    CHECK_FALSE(f->commit(durable).has_value());  // once
    got = read_state_file(path);
    REQUIRE((got && *got));
    CHECK(**got == std::vector<std::uint8_t>{4, 5, 1, 2, 3});
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
  }
  CHECK_FALSE(StateFileWriter::open(dir + "/missing/x").has_value());
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("snapshot: 1,000,000 IPv4 MAP mappings encode and decode (size and time, informative)") {
  std::vector<core::Mapping> v(1'000'000, sample()[0]);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].filters.clear();
    v[i].description.clear();
    v[i].internal_port = static_cast<std::uint16_t>(i);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto bytes = encode_snapshot(kStamp, v, kNow);
  const auto t1 = std::chrono::steady_clock::now();
  auto out = decode_snapshot(bytes);
  const auto t2 = std::chrono::steady_clock::now();
  REQUIRE(out.has_value());
  CHECK(out->mappings.size() == v.size());
  CHECK(out->mappings[999'999].internal_port == static_cast<std::uint16_t>(999'999));
  CHECK(bytes.size() == 83 + 101 * v.size());
  MESSAGE("1,000,000 mappings: " << bytes.size() << " bytes, encode "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count()
                                 << " ms, decode "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(t2 - t1).count() << " ms");
}

TEST_CASE("snapshot: random corruption re-sealed with a valid checksum never crashes nor yields part of a table") {
  const auto good = encode_snapshot(kStamp, sample(), kNow);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;  // xorshift64: deterministic
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 20000; ++round) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      // Past magic and version (those have their own tests).
      const std::size_t at = 10 + next() % (bytes.size() - 18);
      bytes[at] = static_cast<std::uint8_t>(next());
    }
    if (next() % 4 == 0) bytes.resize(bytes.size() - 8 - next() % 64);  // and cut some records
    if (bytes.size() < 18) continue;
    reseal(bytes);
    auto out = decode_snapshot(bytes);
    if (!out) {
      ++rejected;
      continue;
    }
    ++accepted;  // a flip inside a value field (port, nonce, ...) is undetectable once re-sealed
    std::uint64_t count = 0;
    for (int i = 0; i < 8; ++i) count = (count << 8) | bytes[count_offset() + static_cast<std::size_t>(i)];
    CHECK(out->mappings.size() == count);
  }
  CHECK(rejected > 0);
  MESSAGE("random corruption: " << accepted << " decoded (values changed), " << rejected << " rejected");
}
