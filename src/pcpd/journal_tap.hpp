// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::JournalTap: the datapath as core and the [ha] standby see it (with the mapping
// journal on or off) (mapping_journal.hpp). Every apply goes to the kernel datapath first; what it
// committed is then appended to state_dir/mappings.journal as one record, with the number of
// nftables transactions committed since the previous record (any call, read from the datapath's
// counter). A batch whose outcome is unknown, or a failed write, ends the journal: its file is
// removed (the next start dumps the sets) until the daemon writes a new snapshot and journal.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "pcpd/mapping_journal.hpp"

namespace pcpd::daemon {

// Transactions the datapath committed, and batches whose outcome it could not tell.
struct CommitCount {
  std::uint64_t committed = 0;
  std::uint64_t unknown = 0;
};

struct JournalCounters {
  std::uint64_t records = 0;   // records appended
  std::uint64_t started = 0;   // journals started (start, compaction, after a re-install)
  std::uint64_t ended = 0;     // journals ended by an unknown outcome or a write error
};

class JournalTap final : public core::Datapath {
 public:
  JournalTap(core::Datapath& inner, std::function<CommitCount()> commits, const core::Clock& clock)
      : inner_(inner), commits_(std::move(commits)), clock_(clock) {}
  [[nodiscard]] Result<void> apply(const core::ChangeSet& changes) override;
  // Called with every change set the kernel committed, after it is journaled (the daemon hands
  // it to ct::ConntrackSync: the connections follow the mappings, off the request path).
  void on_committed(std::function<void(const core::ChangeSet&)> f) { committed_ = std::move(f); }

  // Records into `writer` from now on. `base`: the commit count the journal's end stands for;
  // commits made since then are written at once as a record without changes.
  void start(JournalWriter writer, CommitCount base);
  // Writes the commits made outside apply() since the last record (none: writes nothing). apply()
  // does it first, and the daemon's 5-second table watch (maintain_journal) too, so a commit
  // outside apply() is on record by the next apply or within 5 s.
  void sync();
  // Stops recording; the file stays (it is still true up to here).
  void stop() { writer_.reset(); }

  [[nodiscard]] bool active() const { return writer_.has_value(); }
  [[nodiscard]] std::uint64_t bytes() const { return writer_ ? writer_->bytes() : 0; }
  [[nodiscard]] const JournalCounters& counters() const { return counters_; }

 private:
  void record(const core::ChangeSet& changes);
  void end(const char* reason, int error);

  core::Datapath& inner_;
  std::function<CommitCount()> commits_;
  const core::Clock& clock_;
  std::optional<JournalWriter> writer_;
  CommitCount base_;
  std::vector<std::uint8_t> buf_;  // one record, reused
  JournalCounters counters_;
  std::function<void(const core::ChangeSet&)> committed_;
};

}  // namespace pcpd::daemon
