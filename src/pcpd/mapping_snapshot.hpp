// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon mapping snapshot: the whole mapping table written to state_dir/mappings.snapshot
// on a clean stop and read back at the next start instead of dumping the nft sets (the
// kernel's set dump is O(n^2), minutes at 1,000,000 mappings). It is only trusted when nothing in
// the kernel changed in between: same boot, same nftables ruleset generation id (bumped by every
// committed nftables transaction on the host), same handle of table inet pcpd. It is deleted
// once read, before it is decoded, so it is never used twice.
//
// Format, version 3 (all integers big-endian, written with wire::Writer, read with wire::Reader):
//   header   magic "PCPDSNAP" (8) | version u16 | boot id length u8 + bytes (<= 64) |
//            generation u32 | table handle u64 | written_at u64 (CLOCK_BOOTTIME ms when written) |
//            mapping count u64
//   records  count x the mapping record of core/mapping_record.hpp (the HA peer link's record:
//            16-byte addresses, expiry as remaining ms relative to written_at; decode rebuilds
//            expires = written_at + remaining, so an absolute expiry on the same boot clock
//            round-trips; one expired at write time comes back as written_at). Besides the
//            record's own checks, a record may hold at most wire::kMaxFilters filters.
//   trailer  StateChecksum of every byte before it (u64)
// Versions 1 (little-endian, compact 0/4/16 address tags, absolute expiry) and 2 (version 3 with
// an FNV-1a trailer, a multiply per byte: 0.1-0.2 s of a 101 MB snapshot) are refused
// (BadVersion): the daemon falls back to the nft set dump once.
// Encode and decode are pure (bytes in, bytes out); the file functions do the I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/mapping.hpp"
#include "util/result.hpp"
#include "util/unique_fd.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::daemon {

inline constexpr std::uint16_t kSnapshotVersion = 3;
inline constexpr const char* kSnapshotFileName = "mappings.snapshot";

// What the kernel looked like when the snapshot was written.
struct SnapshotStamp {
  std::string boot_id;            // /proc/sys/kernel/random/boot_id
  std::uint32_t generation = 0;   // nftables ruleset generation id (NFT_MSG_GETGEN)
  std::uint64_t table_handle = 0; // handle of table inet pcpd
  friend bool operator==(const SnapshotStamp&, const SnapshotStamp&) = default;
};

struct Snapshot {
  SnapshotStamp stamp;
  core::Millis written_at{0};           // the `now` encode_snapshot() was given
  std::vector<core::Mapping> mappings;  // expires on the same clock as written_at
};

enum class SnapshotError : std::uint8_t {
  BadMagic,       // not a snapshot file
  BadVersion,     // another format version
  Truncated,      // shorter than header + trailer
  BadChecksum,    // trailer does not match the bytes (corrupt or cut short)
  BadHeader,      // header field out of range
  BadRecord,      // a record field out of range or cut in the middle
  CountMismatch,  // fewer or more records than the header's count
};
[[nodiscard]] const char* to_string(SnapshotError e);

// The checksum of both state files (the snapshot's trailer, the journal's header and records):
// 8 bytes per multiply, fed in pieces of any length, the total length mixed in at the end.
// Catches a torn, cut or corrupted file, nothing more (not a MAC).
class StateChecksum {
 public:
  void update(std::span<const std::uint8_t> bytes);
  [[nodiscard]] std::uint64_t value() const;

 private:
  void mix(std::uint64_t word);
  std::uint64_t h_ = 0x9E3779B97F4A7C15ull;
  std::uint64_t carry_ = 0;  // the last bytes that do not make a whole word yet
  unsigned carry_len_ = 0;
  std::uint64_t total_ = 0;
};
// StateChecksum of `bytes` in one piece (exposed for tests that re-seal modified bytes).
[[nodiscard]] std::uint64_t state_checksum(std::span<const std::uint8_t> bytes);

// Encodes a snapshot piece by piece, so that writing it neither copies the table nor holds the
// whole file in memory (101 MB at 1,000,000 mappings): the header at construction, one record per
// add(), the trailer at finish(); take() hands out what was encoded since the last take().
// `now`: the boot clock (CLOCK_BOOTTIME ms) at write time; records store expiry relative to it
// (a negative `now`, never on the boot clock, is stored as 0).
// A mapping with more filters or a longer description than core keeps (wire::kMaxFilters,
// wire::kMaxDescription) is stored cut to those limits.
class SnapshotEncoder {
 public:
  SnapshotEncoder(const SnapshotStamp& stamp, std::uint64_t count, core::Millis now);
  void add(const core::Mapping& m);
  // Appends the trailer. False when add() was not called `count` times (nothing appended then).
  // Nothing may be added after it.
  [[nodiscard]] bool finish();
  [[nodiscard]] std::size_t buffered() const { return buf_.size(); }
  // The bytes encoded since the last take(), valid until the next call on this encoder.
  [[nodiscard]] std::span<const std::uint8_t> take();

 private:
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> out_;
  StateChecksum sum_;
  std::uint64_t count_;
  std::uint64_t added_ = 0;
  core::Millis written_at_;
  bool sealed_ = false;  // finish() done
};

// The whole snapshot in one buffer (SnapshotEncoder over `mappings`); empty if it cannot be
// encoded (a bug: every record is within the record's limits).
[[nodiscard]] std::vector<std::uint8_t> encode_snapshot(const SnapshotStamp& stamp,
                                                        std::span<const core::Mapping> mappings,
                                                        core::Millis now);
// All or nothing: either every record decodes or an error (never part of a table).
[[nodiscard]] tl::expected<Snapshot, SnapshotError> decode_snapshot(std::span<const std::uint8_t> bytes);

// The stamp as the headers of both state files hold it (this one and mapping_journal.hpp's):
// boot id length u8 + bytes (at most kMaxBootId; a longer one is stored cut), generation u32,
// table handle u64.
inline constexpr std::size_t kMaxBootId = 64;
[[nodiscard]] std::size_t stamp_size(const SnapshotStamp& s);
void put_stamp(wire::Writer& w, const SnapshotStamp& s);
// False when `r` runs out or the boot id length is over kMaxBootId.
[[nodiscard]] bool get_stamp(wire::Reader& r, SnapshotStamp& s);

// `m`, or a copy in `scratch` cut to core's limits (wire::kMaxFilters, wire::kMaxDescription):
// what the snapshot and the journal store.
[[nodiscard]] const core::Mapping& within_core_limits(const core::Mapping& m, core::Mapping& scratch);
[[nodiscard]] bool beyond_core_limits(const core::Mapping& m);

// Why a snapshot was not used, for the log (reason=...).
enum class SnapshotReject : std::uint8_t { NoFile, Unreadable, Corrupt, OtherBoot, GenerationChanged, TableChanged, NoStamp };
[[nodiscard]] const char* to_string(SnapshotReject r);

// The decision at start: use `snapshot` only when its stamp equals `current` (every field).
[[nodiscard]] std::optional<SnapshotReject> check_stamp(const SnapshotStamp& saved, const SnapshotStamp& current);

// A state file written in pieces: path.tmp, then commit() renames it over `path` (with
// `durable`: fsync of the file before and of the directory after). Dropped without commit(), or
// after a failed write, the .tmp file is removed and `path` is untouched.
class StateFileWriter {
 public:
  [[nodiscard]] static Result<StateFileWriter> open(const std::string& path);
  [[nodiscard]] Result<void> write(std::span<const std::uint8_t> bytes);
  [[nodiscard]] Result<void> commit(bool durable);
  StateFileWriter(StateFileWriter&&) noexcept = default;
  StateFileWriter& operator=(StateFileWriter&&) noexcept = default;
  ~StateFileWriter();

 private:
  StateFileWriter(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  void discard();
  std::string path_;
  UniqueFd fd_;
};

// Writes `bytes` to `path` atomically: path.tmp, fsync, rename, fsync of the directory.
[[nodiscard]] Result<void> write_snapshot_file(const std::string& path, std::span<const std::uint8_t> bytes);
// Reads `path` and deletes it before returning, so it is never read twice (also when it turns
// out corrupt or stale). nullopt when there is no file; an error when it exists but cannot be read.
[[nodiscard]] Result<std::optional<std::vector<std::uint8_t>>> take_snapshot_file(const std::string& path);
// Reads `path` and leaves it in place (the snapshot under a journal, and the journal itself).
[[nodiscard]] Result<std::optional<std::vector<std::uint8_t>>> read_state_file(const std::string& path);
// As write_snapshot_file without the fsyncs (files that need to outlive the process, not the boot).
[[nodiscard]] Result<void> replace_state_file(const std::string& path, std::span<const std::uint8_t> bytes);

}  // namespace pcpd::daemon
