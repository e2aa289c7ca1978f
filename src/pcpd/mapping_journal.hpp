// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon mapping journal: state_dir/mappings.journal, every change pcpd committed to the
// kernel since state_dir/mappings.snapshot was written, so that a restart after kill -9 or a crash
// rebuilds the table from the two files instead of dumping the nft sets (O(n^2) in the kernel:
// minutes at 1,000,000 mappings).
//
// Why it can be trusted: every committed nftables transaction moves the ruleset generation id by
// one. A record holds the changes of one apply and how many transactions pcpd committed since the
// record before (the apply's own, and others that change no mapping: the external interface set,
// the start-up probe). At start the journal is used only when
//   kernel generation == snapshot generation + the sum of the records' commits
// (same boot, same table handle): then nobody else committed, and pcpd's own commits are all in the
// records. A record cut short by the crash, a commit whose record was never written, or anyone's
// `nft` command makes the numbers differ, and the daemon falls back to the set dump.
//
// Format, version 2 (big-endian, wire::Writer / wire::Reader):
//   header   magic "PCPDJRNL" (8) | version u16 | the stamp of the snapshot it continues: boot id
//            length u8 + bytes (<= 64) | generation u32 | table handle u64 |
//            StateChecksum (mapping_snapshot.hpp) of the header bytes before it (u64)
//   records  body length u32 | body | StateChecksum of the body (u64)
//   body     commits u32 | at u64 (CLOCK_BOOTTIME ms) | entry count u32 |
//            entries: op u8 (1 put, 2 erase) | the mapping record of core/mapping_record.hpp
//            with expiry relative to `at`; or op 3 (refresh) | kind u8 | internal address (16)
//            | protocol u8 | internal port u16 | [PEER: remote address (16) | remote port u16] |
//            remaining ms u64 (relative to `at`) | lifetime u32: 33 bytes for a MAP, 51 for a
//            PEER, where a put is ~102 (a third of the journal's bytes under refreshes)
// A put adds or replaces the mapping with the same key (kind, internal endpoint, remote endpoint
// for PEER); an erase removes it. A Replace whose key changed is an erase and a put; one that
// changes only expiry and lifetime is a refresh, which sets those two on the mapping with its
// key, and must find one (in the table or put earlier in the record), else the record is
// dropped like a corrupt one.
// Encode and replay are pure; JournalWriter does the file I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "pcpd/mapping_snapshot.hpp"
#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace pcpd::daemon {

inline constexpr std::uint16_t kJournalVersion = 2;  // 1: FNV-1a header checksum (refused)
inline constexpr const char* kJournalFileName = "mappings.journal";

[[nodiscard]] std::vector<std::uint8_t> encode_journal_header(const SnapshotStamp& base);
// Appends one record to `out` (reused across calls: no allocation once it is large enough).
void append_journal_record(std::vector<std::uint8_t>& out, std::uint32_t commits, const core::ChangeSet& changes,
                           core::Millis at);

enum class JournalError : std::uint8_t { BadMagic, BadVersion, BadHeader };
[[nodiscard]] const char* to_string(JournalError e);

struct JournalReplay {
  SnapshotStamp base;                  // the header's stamp
  std::vector<core::Mapping> mappings;  // the snapshot's, with every record applied
  std::uint64_t records = 0;           // records applied
  std::uint64_t commits = 0;           // sum of their commits
  std::uint64_t entries = 0;           // puts and erases applied
  std::size_t tail_bytes = 0;          // bytes after the last whole record (cut short or corrupt): ignored
  // What the kernel's generation id must be for the result to be the kernel's content.
  [[nodiscard]] std::uint32_t expected_generation() const {
    return static_cast<std::uint32_t>(base.generation + commits);
  }
};

// The header's stamp: which snapshot the journal continues.
[[nodiscard]] tl::expected<SnapshotStamp, JournalError> journal_base(std::span<const std::uint8_t> bytes);

// Reads the header and applies the records, in order, to `mappings` (the snapshot's). Stops at
// the first record that is cut short or fails its checksum or decoding (tail_bytes). Fails only
// on a bad header; the caller checks that base equals the snapshot's stamp.
[[nodiscard]] tl::expected<JournalReplay, JournalError> replay_journal(std::vector<core::Mapping> mappings,
                                                                        std::span<const std::uint8_t> bytes);

// The open journal file, appended to record by record (O_APPEND, one write per record, no fsync:
// the journal only has to survive the process, not the machine, whose reboot changes the boot id).
class JournalWriter {
 public:
  // A new journal holding only the header: path.tmp, then rename over `path`.
  [[nodiscard]] static Result<JournalWriter> create(const std::string& path, const SnapshotStamp& base);
  // The existing journal at `path`, `size` bytes long (just replayed), to go on appending.
  [[nodiscard]] static Result<JournalWriter> reopen(const std::string& path, std::uint64_t size);
  [[nodiscard]] Result<void> append(std::span<const std::uint8_t> record);
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  JournalWriter(UniqueFd fd, std::string path, std::uint64_t bytes)
      : fd_(std::move(fd)), path_(std::move(path)), bytes_(bytes) {}
  UniqueFd fd_;
  std::string path_;
  std::uint64_t bytes_ = 0;
};

}  // namespace pcpd::daemon
