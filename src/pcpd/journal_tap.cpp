// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/journal_tap.hpp"

#include <unistd.h>

#include <cstring>

#include "util/log.hpp"

namespace pcpd::daemon {

Result<void> JournalTap::apply(const core::ChangeSet& changes) {
  // Transactions committed outside apply() since the last record (the external interfaces on a
  // reload, a gc-interval fix) get their own record first: no caller has to remember them.
  sync();
  auto r = inner_.apply(changes);
  if (writer_) record(r ? changes : core::ChangeSet{});  // a refused apply committed nothing of it
  if (r && committed_) committed_(changes);
  return r;
}

void JournalTap::start(JournalWriter writer, CommitCount base) {
  writer_.emplace(std::move(writer));
  base_ = base;
  ++counters_.started;
  sync();
}

void JournalTap::sync() {
  if (writer_) record(core::ChangeSet{});
}

void JournalTap::record(const core::ChangeSet& changes) {
  const CommitCount now = commits_();
  if (now.unknown != base_.unknown) return end("outcome_unknown", 0);
  const std::uint64_t commits = now.committed - base_.committed;
  if (commits == 0 && changes.empty()) return;
  buf_.clear();
  append_journal_record(buf_, static_cast<std::uint32_t>(commits), changes, clock_.now());
  if (auto w = writer_->append(buf_); !w) return end("write_failed", w.error().code);
  base_ = now;
  ++counters_.records;
}

void JournalTap::end(const char* reason, int error) {
  // The kernel may now hold what no record says: the file must not be used at the next start.
  const std::string path = writer_->path();
  const int removed = ::unlink(path.c_str()) == 0 ? 0 : errno;
  writer_.reset();
  ++counters_.ended;
  log::warn("mappings.journal_ended", {{"reason", reason},
                                       {"error", error != 0 ? std::strerror(error) : "-"},
                                       {"path", path},
                                       {"removed", removed == 0 ? "yes" : std::strerror(removed)},
                                       {"next_start", "nft_dump unless a new journal is started"}});
}

}  // namespace pcpd::daemon
