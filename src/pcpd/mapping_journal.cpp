// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/mapping_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "core/mapping_key.hpp"
#include "core/mapping_record.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::daemon {
namespace {

using core::get_u64;
using core::put_u64;

constexpr std::array<std::uint8_t, 8> kMagic = {'P', 'C', 'P', 'D', 'J', 'R', 'N', 'L'};
constexpr std::uint8_t kPut = 1;
constexpr std::uint8_t kErase = 2;
constexpr std::uint8_t kRefresh = 3;
// A refresh entry: op, kind, internal address, protocol, internal port, [PEER: remote address,
// remote port], remaining ms (u64, relative to the record's `at`), lifetime (u32).
constexpr std::size_t kRefreshMap = 1 + 1 + 16 + 1 + 2 + 8 + 4;
constexpr std::size_t kRefreshPeerExtra = 16 + 2;
constexpr std::size_t kMinEntry = kRefreshMap;
// Record framing: body length u32 before, checksum u64 after; body head: commits, at, count.
constexpr std::size_t kFrame = 4 + 8;
constexpr std::size_t kBodyHead = 4 + 8 + 4;

// What identifies a mapping in core's table (core/mapping_table.hpp): MAP by its internal
// endpoint (R-MAP-10), PEER by its 5-tuple (RFC 6887 §12.1).
struct Key {
  core::MappingKind kind;
  core::PeerKey peer;
  friend bool operator==(const Key&, const Key&) = default;
};
struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    return core::PeerKeyHash{}(k.peer) ^ static_cast<std::size_t>(k.kind);
  }
};
Key key_of(const core::Mapping& m) {
  if (m.kind == core::MappingKind::Map) return {m.kind, {core::internal_key(m), {}, 0}};
  return {m.kind, core::peer_key(m)};
}

// A Replace that changes nothing but the expiry and the lifetime: a refresh (RFC 6887 §15),
// journaled as a refresh entry (33 bytes for a MAP instead of a 102-byte put).
bool refresh_only(const core::Mapping& a, const core::Mapping& b) { return a.identity() == b.identity(); }

void put_refresh(std::vector<std::uint8_t>& out, const core::Mapping& m, core::Millis at) {
  const bool peer = m.kind == core::MappingKind::Peer;
  const std::size_t start = out.size();
  out.resize(start + kRefreshMap + (peer ? kRefreshPeerExtra : 0));
  wire::Writer w(std::span<std::uint8_t>(out).subspan(start));
  w.u8(kRefresh);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.addr(m.internal_addr);
  w.u8(m.protocol);
  w.u16(m.internal_port);
  if (peer) {
    w.addr(m.remote_addr);
    w.u16(m.remote_port);
  }
  core::put_expiry(w, m.expires, at);
  w.u32(m.lifetime);
}

// Reads a refresh entry (after its op) into the key fields, expires and lifetime of `m`.
bool get_refresh(wire::Reader& r, core::Millis at, core::Mapping& m) {
  const std::uint8_t kind = r.u8();
  if (kind > static_cast<std::uint8_t>(core::MappingKind::Peer)) return false;
  m.kind = static_cast<core::MappingKind>(kind);
  m.internal_addr = r.addr();
  m.protocol = r.u8();
  m.internal_port = r.u16();
  if (m.kind == core::MappingKind::Peer) {
    m.remote_addr = r.addr();
    m.remote_port = r.u16();
  }
  m.expires = core::get_expiry(r, at);
  m.lifetime = r.u32();
  return r.ok();
}

// Appends one entry (op + mapping record) at the end of `out`.
void put_entry(std::vector<std::uint8_t>& out, std::uint8_t op, const core::Mapping& m, core::Millis at) {
  core::Mapping scratch;
  const core::Mapping& s = within_core_limits(m, scratch);
  const std::size_t start = out.size();
  out.resize(start + 1 + core::mapping_record_size(s));
  wire::Writer w(std::span<std::uint8_t>(out).subspan(start));
  w.u8(op);
  core::put_mapping(w, s, at);
  if (!w.ok()) out.resize(start);  // beyond the record's limits (never for core's mappings)
}

}  // namespace

const char* to_string(JournalError e) {
  switch (e) {
    case JournalError::BadMagic: return "bad_magic";
    case JournalError::BadVersion: return "bad_version";
    case JournalError::BadHeader: return "bad_header";
  }
  return "unknown";
}

std::vector<std::uint8_t> encode_journal_header(const SnapshotStamp& base) {
  std::vector<std::uint8_t> out(kMagic.size() + 2 + stamp_size(base) + 8);
  wire::Writer w(out);
  w.bytes(kMagic);
  w.u16(kJournalVersion);
  put_stamp(w, base);
  put_u64(w, state_checksum(std::span<const std::uint8_t>(out).first(w.size())));
  return out;
}

void append_journal_record(std::vector<std::uint8_t>& out, std::uint32_t commits, const core::ChangeSet& changes,
                           core::Millis at) {
  if (at < core::Millis(0)) at = core::Millis(0);
  const std::size_t start = out.size();
  out.resize(start + 4 + kBodyHead);
  std::uint32_t count = 0;
  for (const auto& c : changes.changes) {
    switch (c.op) {
      case core::Change::Op::Add: put_entry(out, kPut, c.mapping, at); ++count; break;
      case core::Change::Op::Remove: put_entry(out, kErase, c.mapping, at); ++count; break;
      case core::Change::Op::Replace:
        if (refresh_only(c.previous, c.mapping)) {
          put_refresh(out, c.mapping, at);
          ++count;
          break;
        }
        if (!(key_of(c.previous) == key_of(c.mapping))) {
          put_entry(out, kErase, c.previous, at);
          ++count;
        }
        put_entry(out, kPut, c.mapping, at);
        ++count;
        break;
    }
  }
  const std::size_t body = out.size() - start - 4;
  wire::Writer head(std::span<std::uint8_t>(out).subspan(start, 4 + kBodyHead));
  head.u32(static_cast<std::uint32_t>(body));
  head.u32(commits);
  put_u64(head, static_cast<std::uint64_t>(at.count()));
  head.u32(count);
  const std::uint64_t sum = state_checksum(std::span<const std::uint8_t>(out).subspan(start + 4, body));
  const std::size_t sum_at = out.size();
  out.resize(sum_at + 8);
  wire::Writer tail(std::span<std::uint8_t>(out).subspan(sum_at));
  put_u64(tail, sum);
}

namespace {

// The header's stamp and its length.
tl::expected<std::pair<SnapshotStamp, std::size_t>, JournalError> read_header(std::span<const std::uint8_t> bytes) {
  using tl::unexpected;
  if (bytes.size() < kMagic.size() || std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0)
    return unexpected(JournalError::BadMagic);
  wire::Reader r(bytes);
  r.skip(kMagic.size());
  if (r.u16() != kJournalVersion || !r.ok()) return unexpected(JournalError::BadVersion);
  SnapshotStamp base;
  if (!get_stamp(r, base)) return unexpected(JournalError::BadHeader);
  const std::size_t header = r.offset();
  const std::uint64_t sum = get_u64(r);
  if (!r.ok() || sum != state_checksum(bytes.first(header))) return unexpected(JournalError::BadHeader);
  return std::pair{std::move(base), r.offset()};
}

}  // namespace

tl::expected<SnapshotStamp, JournalError> journal_base(std::span<const std::uint8_t> bytes) {
  auto h = read_header(bytes);
  if (!h) return tl::unexpected(h.error());
  return std::move(h->first);
}

tl::expected<JournalReplay, JournalError> replay_journal(std::vector<core::Mapping> mappings,
                                                         std::span<const std::uint8_t> bytes) {
  auto h = read_header(bytes);
  if (!h) return tl::unexpected(h.error());
  JournalReplay out;
  out.base = std::move(h->first);
  wire::Reader r(bytes);
  r.skip(h->second);

  // Index of the snapshot's mappings, built on the first entry (a journal of commits only, or
  // none, costs nothing); erased ones are marked and dropped at the end.
  std::unordered_map<Key, std::size_t, KeyHash> index;
  std::vector<bool> erased;
  bool indexed = false;
  std::size_t pos = r.offset();
  while (pos < bytes.size()) {
    wire::Reader frame(bytes.subspan(pos));
    const std::uint32_t len = frame.u32();
    if (!frame.ok() || len < kBodyHead || frame.remaining() < std::size_t{len} + 8) break;
    const auto body = bytes.subspan(pos + 4, len);
    wire::Reader sum(bytes.subspan(pos + 4 + len, 8));
    if (get_u64(sum) != state_checksum(body)) break;
    wire::Reader b(body);
    const std::uint32_t commits = b.u32();
    const std::uint64_t at_raw = get_u64(b);
    const std::uint32_t count = b.u32();
    if (!b.ok() || at_raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 2)) break;
    const core::Millis at(static_cast<std::int64_t>(at_raw));
    // Decode the whole record before applying any of it: a bad entry drops the record.
    struct Entry {
      std::uint8_t op;
      core::Mapping m;
    };
    std::vector<Entry> entries;
    bool good = count <= b.remaining() / kMinEntry;
    if (good && count > 0 && !indexed) {
      index.reserve(mappings.size());
      for (std::size_t i = 0; i < mappings.size(); ++i) index.emplace(key_of(mappings[i]), i);
      erased.assign(mappings.size(), false);
      indexed = true;
    }
    for (std::uint32_t i = 0; good && i < count; ++i) {
      Entry e{b.u8(), {}};
      if (e.op == kRefresh) {
        good = b.ok() && get_refresh(b, at, e.m);
        // Of a mapping present at this point (the latest put or erase of its key in this record,
        // else the table): otherwise the journal does not continue this table, and the record
        // is dropped like a corrupt one.
        if (good) {
          const Key k = key_of(e.m);
          auto last = std::find_if(entries.rbegin(), entries.rend(),
                                   [&](const Entry& x) { return x.op != kRefresh && key_of(x.m) == k; });
          good = last != entries.rend() ? last->op == kPut : index.count(k) != 0;
        }
      } else {
        good = b.ok() && (e.op == kPut || e.op == kErase) && core::get_mapping(b, at, e.m) && !beyond_core_limits(e.m);
      }
      if (good) entries.push_back(std::move(e));
    }
    if (!good || !b.at_end()) break;
    for (auto& e : entries) {
      const Key k = key_of(e.m);
      auto it = index.find(k);
      if (e.op == kRefresh) {
        if (it != index.end()) {  // always: checked while decoding
          mappings[it->second].expires = e.m.expires;
          mappings[it->second].lifetime = e.m.lifetime;
        }
      } else if (e.op == kErase) {
        if (it != index.end()) {
          erased[it->second] = true;
          index.erase(it);
        }
      } else if (it != index.end()) {
        mappings[it->second] = std::move(e.m);
      } else {
        index.emplace(k, mappings.size());
        mappings.push_back(std::move(e.m));
        erased.push_back(false);
      }
    }
    out.records += 1;
    out.commits += commits;
    out.entries += entries.size();
    pos += kFrame + len;
  }
  out.tail_bytes = bytes.size() - pos;
  if (indexed) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < mappings.size(); ++i)
      if (!erased[i]) {
        if (w != i) mappings[w] = std::move(mappings[i]);
        ++w;
      }
    mappings.resize(w);
  }
  out.mappings = std::move(mappings);
  return out;
}

Result<JournalWriter> JournalWriter::create(const std::string& path, const SnapshotStamp& base) {
  const auto header = encode_journal_header(base);
  if (auto r = replace_state_file(path, header); !r) return tl::unexpected(r.error());
  return reopen(path, header.size());
}

Result<JournalWriter> JournalWriter::reopen(const std::string& path, std::uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail(ErrorDomain::Io, errno, "open mappings.journal");
  // Whatever follows the last whole record (a write cut short by the crash) goes.
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return fail(ErrorDomain::Io, errno, "truncate mappings.journal");
  if (::lseek(fd.get(), 0, SEEK_END) < 0) return fail(ErrorDomain::Io, errno, "seek mappings.journal");
  return JournalWriter(std::move(fd), path, size);
}

Result<void> JournalWriter::append(std::span<const std::uint8_t> record) {
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_.get(), record.data() + done, record.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      // Leave no half record behind: the next one would follow garbage.
      if (::ftruncate(fd_.get(), static_cast<off_t>(bytes_)) == 0) ::lseek(fd_.get(), 0, SEEK_END);
      return fail(ErrorDomain::Io, e, "write mappings.journal");
    }
    done += static_cast<std::size_t>(n);
  }
  bytes_ += record.size();
  return {};
}

}  // namespace pcpd::daemon
