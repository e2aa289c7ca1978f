// SPDX-License-Identifier: GPL-2.0-or-later
// Daemon: the restart state in state_dir. mappings.snapshot (mapping_snapshot.hpp) is the whole
// table at one nftables generation; with daemon.journal, mappings.journal (mapping_journal.hpp)
// holds every change committed after it. Start-up restores from the two when the kernel's
// generation id is the snapshot's plus the journal's commits, else dumps the nft sets.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "pcpd/daemon.hpp"
#include "pcpd/epoch_store.hpp"
#include "pcpd/mapping_journal.hpp"
#include "pcpd/mapping_snapshot.hpp"

namespace pcpd::daemon {
namespace {

std::int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

// How much of the snapshot is encoded before it goes to the file.
constexpr std::size_t kStateWriteChunk = std::size_t{1} << 20;

std::string describe(const SnapshotStamp& s) {
  return "generation " + std::to_string(s.generation) + " handle " + std::to_string(s.table_handle);
}

}  // namespace

CommitCount Daemon::commit_count() const {
  const auto c = datapath_->commits();
  return {c.committed, c.unknown};
}

bool Daemon::restore_state(const Result<nft::NftDatapath::RulesetStamp>& kernel, CommitCount at_stamp) {
  const auto started = std::chrono::steady_clock::now();
  const bool journaling = config_->journal;
  const std::string path = config_->state_dir + "/" + kSnapshotFileName;
  const std::string journal_path = config_->state_dir + "/" + kJournalFileName;
  auto unused = [&](const char* reason, const std::string& detail) {
    log::info("mappings.snapshot_unused", {{"reason", reason}, {"detail", detail}, {"path", path},
                                           {"recovery", "nft_dump"}});
    return false;
  };
  // Without the journal the snapshot is used once (deleted here); with it, it stays the
  // journal's base, and the generation check below is what keeps it from being used stale.
  if (!journaling) ::unlink(journal_path.c_str());
  auto file = journaling ? read_state_file(path) : take_snapshot_file(path);
  if (!file) return unused(to_string(SnapshotReject::Unreadable), error_text(file.error()));
  if (!*file) return unused(to_string(SnapshotReject::NoFile), "no clean stop or journal before (first start, or daemon.journal off)");
  auto snapshot = decode_snapshot(**file);
  if (!snapshot) return unused(to_string(SnapshotReject::Corrupt), to_string(snapshot.error()));
  snapshot_bytes_ = (*file)->size();
  file->reset();
  if (!kernel) return unused(to_string(SnapshotReject::NoStamp), error_text(kernel.error()));

  // The journal, when it continues this snapshot.
  std::optional<JournalReplay> replay;
  std::uint64_t journal_size = 0;
  std::string journal_note = "none";
  if (journaling) {
    auto jf = read_state_file(journal_path);
    if (!jf) {
      journal_note = "unreadable (" + error_text(jf.error()) + ")";
    } else if (*jf) {
      auto base = journal_base(**jf);
      if (!base) {
        journal_note = std::string("ignored (") + to_string(base.error()) + ")";
      } else if (!(*base == snapshot->stamp)) {
        journal_note = "ignored (continues another snapshot: " + describe(*base) + ")";
      } else {
        auto r = replay_journal(std::move(snapshot->mappings), **jf);
        if (!r) return unused(to_string(SnapshotReject::Corrupt), to_string(r.error()));  // checked above
        journal_size = (*jf)->size() - r->tail_bytes;
        replay = std::move(*r);
        journal_note = std::to_string(replay->records) + " records, " + std::to_string(replay->commits) +
                       " commits, " + std::to_string(replay->tail_bytes) + " bytes cut short";
      }
    }
  }
  SnapshotStamp expected = snapshot->stamp;
  if (replay) expected.generation = replay->expected_generation();
  // What the last run held, still alive now: if the kernel turns out to have been changed, the
  // set dump must find at least this many, or mappings were lost (RFC 6887 §8.5).
  {
    const core::Millis now = clock_.now();
    const auto& held = replay ? replay->mappings : snapshot->mappings;
    expected_live_ = static_cast<std::size_t>(
        std::count_if(held.begin(), held.end(), [now](const core::Mapping& m) { return m.expires > now; }));
  }
  const SnapshotStamp current{read_boot_id().value_or(""), kernel->generation, kernel->table_handle};
  if (auto why = check_stamp(expected, current)) {
    return unused(to_string(*why), "expected " + describe(expected) + " (snapshot " + describe(snapshot->stamp) +
                                       ", journal " + journal_note + "), now " + describe(current));
  }
  std::vector<core::Mapping> mappings = replay ? std::move(replay->mappings) : std::move(snapshot->mappings);
  const std::size_t found = mappings.size();
  const std::size_t accepted = server_->restore(std::move(mappings));  // drops expired
  const bool journaled = replay && replay->records > 0;
  log::info("mappings.recovered", {{"source", journaled ? "journal" : "snapshot"}, {"found", found},
                                   {"restored", accepted}, {"conflicts", server_->stats().restore_conflicts},
                                   {"generation", current.generation}, {"journal", journal_note},
                                   {"ms", ms_since(started)}});
  if (journaling) {
    // Go on from here: the same journal (or a new one after this snapshot), with the commits
    // since the stamp (the probe, the external interface set) as its next record.
    auto writer = replay ? JournalWriter::reopen(journal_path, journal_size)
                         : JournalWriter::create(journal_path, snapshot->stamp);
    if (writer) {
      journal_->start(std::move(*writer), at_stamp);
    } else {
      log::warn("mappings.journal_unavailable", {{"path", journal_path}, {"error", error_text(writer.error())}});
    }
  }
  return true;
}

bool Daemon::write_state(const char* reason, bool durable) {
  const auto started = std::chrono::steady_clock::now();
  const std::string path = config_->state_dir + "/" + kSnapshotFileName;
  auto skipped = [&](const std::string& why) {
    log::warn("mappings.snapshot_skipped", {{"reason", reason}, {"why", why}, {"path", path}});
    return false;
  };
  // Only a table that holds what core holds: not while the datapath watch waits to re-install.
  auto state = datapath_->check_table();
  if (!state) return skipped("table check failed: " + error_text(state.error()));
  if (*state != nft::NftDatapath::TableState::Same) return skipped("table inet pcpd missing or replaced");
  const auto boot_id = read_boot_id();
  if (!boot_id) return skipped("boot id unreadable");
  auto kernel = datapath_->ruleset_stamp();  // nothing pcpd commits comes between this and the files
  if (!kernel) return skipped("generation id unreadable: " + error_text(kernel.error()));
  const SnapshotStamp stamp{*boot_id, kernel->generation, kernel->table_handle};
  const CommitCount commits = commit_count();
  if (::mkdir(config_->state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return skipped("mkdir state_dir: " + std::string(std::strerror(errno)));
  // The old snapshot and journal stay true until both new files are in place; between the two
  // renames, the new snapshot with the old journal (another base) is used without the journal.
  // The records go to the file 1 MiB at a time, straight from the table: no copy of the table
  // and no buffer of the whole file (together 260 MB at 1,000,000 mappings).
  auto file = StateFileWriter::open(path);
  if (!file) return skipped(error_text(file.error()));
  const std::size_t count = server_->mapping_count();
  SnapshotEncoder encoder(stamp, count, clock_.now());
  std::uint64_t bytes = 0;
  Result<void> io{};
  auto flush = [&] {
    const auto piece = encoder.take();
    bytes += piece.size();
    if (io) io = file->write(piece);
  };
  server_->for_each_mapping([&](const core::Mapping& m) {
    if (!io) return;  // the file is gone: skip the rest
    encoder.add(m);
    if (encoder.buffered() >= kStateWriteChunk) flush();
  });
  if (!io) return skipped(error_text(io.error()));
  if (!encoder.finish()) return skipped("mapping count differs from the table");  // a bug
  flush();
  if (io) io = file->commit(durable);
  if (!io) return skipped(error_text(io.error()));
  snapshot_bytes_ = bytes;
  std::string journal = "off";
  bool started_journal = false;
  if (config_->journal) {
    const std::string journal_path = config_->state_dir + "/" + kJournalFileName;
    if (auto w = JournalWriter::create(journal_path, stamp); w) {
      journal_->start(std::move(*w), commits);
      journal = "started";
      started_journal = true;
    } else {
      journal_->stop();  // its file names the old snapshot now: no use going on
      journal = "unavailable: " + error_text(w.error());
    }
  }
  log::info("mappings.snapshot_written", {{"reason", reason}, {"path", path}, {"mappings", count},
                                          {"bytes", bytes}, {"generation", kernel->generation},
                                          {"journal", journal}, {"ms", ms_since(started)}});
  return started_journal || !config_->journal;
}

void Daemon::maintain_journal() {
  if (!config_->journal) return;
  journal_->sync();  // commits outside apply() since the last record (JournalTap::sync)
  // After a failed attempt (disk full, state_dir unwritable) the next waits 5 s, then twice as
  // long each time up to 5 min: each attempt encodes the whole table (~0.5 s at 1,000,000).
  constexpr std::int64_t kFirstRetryMs = 5'000, kMaxRetryMs = 300'000;
  const core::Millis now = clock_.now();
  if (now < state_retry_at_) return;
  const std::uint64_t limit = std::max<std::uint64_t>(std::uint64_t{config_->journal_max_mb} << 20, snapshot_bytes_);
  const char* reason = !journal_->active() ? "journal_ended" : journal_->bytes() > limit ? "journal_compaction" : nullptr;
  if (reason == nullptr) return;
  if (write_state(reason, false)) {
    state_retry_ms_ = 0;
    return;
  }
  state_retry_ms_ = state_retry_ms_ == 0 ? kFirstRetryMs : std::min(2 * state_retry_ms_, kMaxRetryMs);
  state_retry_at_ = now + core::Millis(state_retry_ms_);
  log::warn("mappings.journal_retry", {{"reason", reason}, {"in_ms", state_retry_ms_}});
}

}  // namespace pcpd::daemon
