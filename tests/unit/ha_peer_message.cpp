// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_ha peer message codec: round trips of every message type and every Mapping field, and
// each reject path (magic, version, HMAC/key, truncated, oversize, malformed).
#include <sodium.h>

#include "ha/peer_message.hpp"
#include "unit/ha_fixtures.hpp"

using namespace pcpd::ha;
using namespace pcpd::test::ha;

namespace {

const Millis kNow{500'000};

Message with(Body body, std::uint64_t stream_seq = 0) {
  Message m;
  m.header.role = Role::Primary;
  m.header.sender_id = 0xA1B2C3D4;
  m.header.peer_id = 0x01020304;
  m.header.sequence = 0x1122334455667788ull;
  m.header.stream_seq = stream_seq;
  m.header.ack = 0x0102030405060708ull;
  m.body = std::move(body);
  return m;
}

std::vector<std::uint8_t> encoded(const Message& m, const LinkKey& k, Millis now = kNow) {
  auto bytes = encode(m, now, k);
  REQUIRE(bytes.has_value());
  return *bytes;
}

Message decoded(const std::vector<std::uint8_t>& bytes, const LinkKey& k, Millis now = kNow) {
  auto m = decode(bytes, now, k);
  REQUIRE(m.has_value());
  return *m;
}

// Every field set to a value other than its default, IPv6 addresses, the longest description and
// the most filters a record may hold.
Mapping every_field() {
  Mapping m;
  m.kind = MappingKind::Peer;
  m.origin = pcpd::core::Origin::NatPmp;
  m.protocol = 132;
  m.internal_addr = v6(0x11);
  m.internal_port = 0xFFFE;
  m.external_addr = v6(0x22);
  m.external_port = 40001;
  m.remote_addr = v6(0x33);
  m.remote_port = 8443;
  m.client_addr = v6(0x44);
  m.nonce = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  m.expires = kNow + Millis(86'400'123);
  m.lifetime = 86'401;
  m.third_party = true;
  m.checkpoint = true;
  for (std::size_t i = 0; i < kMaxFilters; ++i)
    m.filters.push_back({static_cast<std::uint8_t>(64 + i), static_cast<std::uint16_t>(i), v6(static_cast<std::uint16_t>(0x100 + i))});
  m.description = std::string(kMaxDescription, 'd');
  return m;
}

void check_header(const Header& a, const Header& b) {
  CHECK(a.role == b.role);
  CHECK(a.sender_id == b.sender_id);
  CHECK(a.peer_id == b.peer_id);
  CHECK(a.sequence == b.sequence);
  CHECK(a.stream_seq == b.stream_seq);
  CHECK(a.ack == b.ack);
}

// Recomputes the HMAC trailer so a test can feed authenticated but malformed datagrams.
void resign(std::vector<std::uint8_t>& d, const LinkKey& k) {
  const std::size_t body = d.size() - kHmacSize;
  d[8] = static_cast<std::uint8_t>(d.size() >> 8);
  d[9] = static_cast<std::uint8_t>(d.size());
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, k.bytes().data(), k.bytes().size());
  crypto_auth_hmacsha256_update(&st, d.data(), body);
  crypto_auth_hmacsha256_final(&st, d.data() + body);
}

Reject reject_of(const std::vector<std::uint8_t>& d, const LinkKey& k) {
  auto m = decode(d, kNow, k);
  REQUIRE_FALSE(m.has_value());
  return m.error();
}

}  // namespace

TEST_CASE("ha codec: HELLO round trip keeps header, epoch age and snapshot identity") {
  const LinkKey k = key();
  Hello h{true, 123'456'789'012ull, 0xCAFEBABE, 77};
  const Message in = with(h);
  const auto bytes = encoded(in, k);
  CHECK(bytes.size() == kHeaderSize + 21 + kHmacSize);
  CHECK(std::equal(kMagic.begin(), kMagic.end(), bytes.begin()));
  CHECK(bytes[4] == kVersion);
  const Message out = decoded(bytes, k);
  CHECK(out.header.type == MessageType::Hello);
  check_header(out.header, in.header);
  const auto& o = std::get<Hello>(out.body);
  CHECK(o.has_epoch);
  CHECK(o.epoch_age_ms == h.epoch_age_ms);
  CHECK(o.synced_with == h.synced_with);
  CHECK(o.synced_generation == 77);
}

TEST_CASE("ha codec: ACK round trip carries the cumulative ack in the header only") {
  const LinkKey k = key();
  const Message in = with(Ack{});
  const auto bytes = encoded(in, k);
  CHECK(bytes.size() == kHeaderSize + kHmacSize);
  const Message out = decoded(bytes, k);
  CHECK(out.header.type == MessageType::Ack);
  check_header(out.header, in.header);
}

TEST_CASE("ha codec: SNAPSHOT_BEGIN and SNAPSHOT_END round trip generation and total") {
  const LinkKey k = key();
  const Message b = decoded(encoded(with(SnapshotBegin{9, 1234}, 5), k), k);
  CHECK(b.header.type == MessageType::SnapshotBegin);
  CHECK(b.header.stream_seq == 5);
  CHECK(std::get<SnapshotBegin>(b.body).generation == 9);
  CHECK(std::get<SnapshotBegin>(b.body).total == 1234);
  const Message e = decoded(encoded(with(SnapshotEnd{9, 1234}, 6), k), k);
  CHECK(e.header.type == MessageType::SnapshotEnd);
  CHECK(std::get<SnapshotEnd>(e.body).generation == 9);
  CHECK(std::get<SnapshotEnd>(e.body).total == 1234);
}

TEST_CASE("ha codec: SNAPSHOT_CHUNK round trip keeps every Mapping field (IPv6, 64 filters, 1016-byte description)") {
  const LinkKey k = key();
  const Mapping full = every_field();
  const Mapping small = sample(1, false, kNow);
  const auto bytes = encoded(with(SnapshotChunk{3, {full, small}}, 2), k);
  CHECK(bytes.size() == kHeaderSize + 10 + encoded_size(full) + encoded_size(small) + kHmacSize);
  const Message out = decoded(bytes, k);
  const auto& c = std::get<SnapshotChunk>(out.body);
  CHECK(c.generation == 3);
  REQUIRE(c.mappings.size() == 2);
  check_same(c.mappings[0], full);
  check_same(c.mappings[1], small);
}

TEST_CASE("ha codec: each Mapping field survives on its own (one field changed at a time)") {
  const LinkKey k = key();
  const Mapping base = sample(2, true, kNow);
  std::vector<std::function<void(Mapping&)>> edits = {
      [](Mapping& m) { m.kind = MappingKind::Peer; },
      [](Mapping& m) { m.origin = pcpd::core::Origin::NatPmp; },
      [](Mapping& m) { m.protocol = 0; },
      [](Mapping& m) { m.internal_addr = v6(1); },
      [](Mapping& m) { m.internal_port = 0; },
      [](Mapping& m) { m.external_addr = v4(203, 0, 113, 77); },
      [](Mapping& m) { m.external_port = 65535; },
      [](Mapping& m) { m.remote_addr = v6(9); },
      [](Mapping& m) { m.remote_port = 1; },
      [](Mapping& m) { m.client_addr = v4(192, 0, 2, 250); },
      [](Mapping& m) { m.nonce[11] ^= 0xFF; },
      [](Mapping& m) { m.expires += Millis(1); },
      [](Mapping& m) { m.lifetime = 0xFFFFFFFF; },
      [](Mapping& m) { m.third_party = !m.third_party; },
      [](Mapping& m) { m.checkpoint = !m.checkpoint; },
      [](Mapping& m) { m.filters.push_back({96, 0, v4(0, 0, 0, 0)}); },
      [](Mapping& m) { m.description.clear(); },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    CAPTURE(i);
    Mapping m = base;
    edits[i](m);
    MappingChange up;
    up.mapping = m;
    const Message out = decoded(encoded(with(ChangeBatch{{up}}, 1), k), k);
    check_same(std::get<ChangeBatch>(out.body).changes.at(0).mapping, m);
  }
}

TEST_CASE("ha codec: CHANGE round trip keeps upserts and removes in order") {
  const LinkKey k = key();
  MappingChange up;
  up.mapping = sample(4, true, kNow);
  MappingChange rm;
  rm.op = MappingChange::Op::Remove;
  rm.id = id_of(sample(3, true, kNow));  // a PEER: remote fields are part of the id
  CHECK(rm.id.remote_port == 443);
  const auto bytes = encoded(with(ChangeBatch{{up, rm, up}}, 7), k);
  CHECK(bytes.size() == kHeaderSize + 2 + 3 * 1 + 2 * encoded_size(up.mapping) + kMappingIdSize + kHmacSize);
  const Message out = decoded(bytes, k);
  const auto& c = std::get<ChangeBatch>(out.body).changes;
  REQUIRE(c.size() == 3);
  CHECK(c[0].op == MappingChange::Op::Upsert);
  check_same(c[0].mapping, up.mapping);
  CHECK(c[1].op == MappingChange::Op::Remove);
  CHECK(c[1].id == rm.id);
  CHECK(c[2].op == MappingChange::Op::Upsert);
}

TEST_CASE("ha codec: lifetimes travel as remaining milliseconds, so a receiver clock offset keeps them") {
  const LinkKey k = key();
  Mapping m = sample(5, true, kNow);
  m.expires = kNow + Millis(42'000);
  const auto bytes = encoded(with(SnapshotChunk{1, {m}}, 1), k, kNow);
  const Millis receiver_now{7'000'000'000};
  const Message out = decoded(bytes, k, receiver_now);
  CHECK(std::get<SnapshotChunk>(out.body).mappings[0].expires == receiver_now + Millis(42'000));
  Mapping expired = m;
  expired.expires = kNow - Millis(5);  // already past: sent as 0 remaining
  const Message out2 = decoded(encoded(with(SnapshotChunk{1, {expired}}, 1), k, kNow), k, receiver_now);
  CHECK(std::get<SnapshotChunk>(out2.body).mappings[0].expires == receiver_now);
}

TEST_CASE("ha codec: encode refuses records beyond the limits and inconsistent headers") {
  const LinkKey k = key();
  Mapping long_desc = sample(1, true, kNow);
  long_desc.description = std::string(kMaxDescription + 1, 'x');
  CHECK_FALSE(encodable(long_desc));
  CHECK_FALSE(encode(with(SnapshotChunk{1, {long_desc}}, 1), kNow, k).has_value());
  Mapping many_filters = sample(1, true, kNow);
  many_filters.filters.resize(kMaxFilters + 1);
  CHECK_FALSE(encode(with(SnapshotChunk{1, {many_filters}}, 1), kNow, k).has_value());
  CHECK_FALSE(encode(with(SnapshotBegin{1, 0}, 0), kNow, k).has_value());  // reliable without stream seq
  CHECK_FALSE(encode(with(Hello{}, 3), kNow, k).has_value());              // hello with a stream seq
  Message zero = with(Ack{});
  zero.header.sender_id = 0;
  CHECK_FALSE(encode(zero, kNow, k).has_value());
  // More records than kMaxDatagramSize holds.
  std::vector<Mapping> lots(40, every_field());
  CHECK_FALSE(encode(with(SnapshotChunk{1, lots}, 1), kNow, k).has_value());
}

TEST_CASE("ha codec reject: a datagram signed with another key is BadHmac") {
  const auto bytes = encoded(with(Ack{}), key(0x01));
  CHECK(reject_of(bytes, key(0x02)) == Reject::BadHmac);
}

TEST_CASE("ha codec reject: any flipped bit under the HMAC is BadHmac") {
  const LinkKey k = key();
  const auto good = encoded(with(SnapshotChunk{1, {sample(8, true, kNow)}}, 1), k);
  for (std::size_t i = 12; i < good.size(); i += 7) {  // past magic, version, type, length
    CAPTURE(i);
    auto bad = good;
    bad[i] ^= 0x10;
    CHECK(reject_of(bad, k) == Reject::BadHmac);
  }
}

TEST_CASE("ha codec reject: wrong magic is BadMagic") {
  const LinkKey k = key();
  auto bytes = encoded(with(Ack{}), k);
  bytes[0] = 'X';
  CHECK(reject_of(bytes, k) == Reject::BadMagic);
}

TEST_CASE("ha codec reject: another version is BadVersion, reported before the HMAC check") {
  const LinkKey k = key();
  auto bytes = encoded(with(Ack{}), k);
  bytes[4] = 2;
  CHECK(reject_of(bytes, k) == Reject::BadVersion);
  resign(bytes, k);
  CHECK(reject_of(bytes, k) == Reject::BadVersion);
}

TEST_CASE("ha codec reject: shorter than header + HMAC, or than its length field, is Truncated") {
  const LinkKey k = key();
  const auto good = encoded(with(Hello{}), k);
  CHECK(reject_of({}, k) == Reject::Truncated);
  CHECK(reject_of(std::vector<std::uint8_t>(good.begin(), good.begin() + kHeaderSize + kHmacSize - 1), k) ==
        Reject::Truncated);
  auto cut = good;
  cut.pop_back();  // the length field now promises one byte more than arrived
  CHECK(reject_of(cut, k) == Reject::Truncated);
}

TEST_CASE("ha codec reject: longer than kMaxDatagramSize is Oversize") {
  const LinkKey k = key();
  auto bytes = encoded(with(Ack{}), k);
  bytes.resize(kMaxDatagramSize + 1);
  CHECK(reject_of(bytes, k) == Reject::Oversize);
}

TEST_CASE("ha codec reject: authenticated but malformed datagrams are Malformed") {
  const LinkKey k = key();
  const auto hello = encoded(with(Hello{}), k);
  const auto change = encoded(with(ChangeBatch{{MappingChange{MappingChange::Op::Upsert, sample(4, true, kNow), {}}}}, 1), k);
  // Offsets in a CHANGE: payload at 44 = count (2), op (1), then the mapping record.
  constexpr std::size_t rec = kHeaderSize + 3;
  struct Case {
    const char* what;
    const std::vector<std::uint8_t>* base;
    std::function<void(std::vector<std::uint8_t>&)> edit;
  };
  const std::vector<Case> cases = {
      {"unknown type", &hello, [](auto& d) { d[5] = 9; }},
      {"type 0", &hello, [](auto& d) { d[5] = 0; }},
      {"reserved flags", &hello, [](auto& d) { d[6] = 1; }},
      {"unknown role", &hello, [](auto& d) { d[7] = 4; }},
      {"reserved header bytes", &hello, [](auto& d) { d[11] = 1; }},
      {"sender id 0", &hello, [](auto& d) { d[12] = d[13] = d[14] = d[15] = 0; }},
      {"stream seq on a hello", &hello, [](auto& d) { d[35] = 1; }},
      {"unknown hello flag", &hello, [](auto& d) { d[kHeaderSize] = 0x80; }},
      {"hello body too long", &hello, [](auto& d) { d.insert(d.end() - kHmacSize, 0); }},
      {"hello body too short", &hello, [](auto& d) { d.erase(d.end() - kHmacSize - 1); }},
      {"change count 0", &change, [](auto& d) { d[kHeaderSize] = 0; d[kHeaderSize + 1] = 0; }},
      {"change count beyond the datagram", &change, [](auto& d) { d[kHeaderSize + 1] = 2; }},
      {"unknown change op", &change, [](auto& d) { d[kHeaderSize + 2] = 3; }},
      {"unknown mapping kind", &change, [](auto& d) { d[rec] = 2; }},
      {"static origin (never on the link)", &change, [](auto& d) { d[rec + 1] = 2; }},
      {"unknown origin", &change, [](auto& d) { d[rec + 1] = 3; }},
      {"unknown mapping flag", &change, [](auto& d) { d[rec + 3] = 0x08; }},
      {"filter count beyond the limit", &change, [](auto& d) { d[rec + 98] = kMaxFilters + 1; }},
      {"description longer than 1016", &change, [](auto& d) { d[rec + 99] = 0x03; d[rec + 100] = 0xF9; }},
      {"description running past the end", &change, [](auto& d) { d[rec + 100] = static_cast<std::uint8_t>(d[rec + 100] + 1); }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto d = *c.base;
    c.edit(d);
    resign(d, k);
    CHECK(reject_of(d, k) == Reject::Malformed);
  }
  // A filter prefix over 128 bits (RFC 6887 §13.3), in a mapping that has filters.
  Mapping f = sample(4, true, kNow);
  REQUIRE(f.filters.size() == 2);
  auto d = encoded(with(ChangeBatch{{MappingChange{MappingChange::Op::Upsert, f, {}}}}, 1), k);
  d[rec + kMappingFixedSize] = 129;
  resign(d, k);
  CHECK(reject_of(d, k) == Reject::Malformed);
  // Bytes after the HMAC trailer are not covered by it.
  auto trailing = hello;
  trailing.push_back(0);
  CHECK(reject_of(trailing, k) == Reject::Malformed);
}

TEST_CASE("ha codec: decode is pure: the same datagram decodes the same way twice") {
  const LinkKey k = key();
  const auto bytes = encoded(with(SnapshotChunk{1, {sample(6, true, kNow)}}, 1), k);
  const Message a = decoded(bytes, k);
  const Message b = decoded(bytes, k);
  check_header(a.header, b.header);
  check_same(std::get<SnapshotChunk>(a.body).mappings[0], std::get<SnapshotChunk>(b.body).mappings[0]);
}
