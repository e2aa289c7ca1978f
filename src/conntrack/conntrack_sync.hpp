// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct::ConntrackSync: the conntrack side of pcpd's mappings, off the request path. The daemon
// hands it every change set after the kernel committed it (submit()); a worker thread then
//   - marks the existing connections of a new election elected|sticky|mapped, so conntrackd
//     replicates their full state now rather than on their next packet (RFC 7767 §3),
//   - clears the elected bit of an un-elected mapping's connections (sticky stays, so their end
//     still reaches the standby),
//   - deletes the connections of a deleted or expired mapping (RFC 6887 §15),
//   - re-announces every marked connection on request (ct-touch, after a promotion),
// in rounds: everything queued when a round starts shares it. A request never waits for any of it.
//
// How a mapping's connections are found. The kernel's conntrack table has no index but the full
// tuple, and a busy router holds 10^5..10^6 entries: a walk of the table costs ~0.2 s at 10^6
// (bench/RESULTS.md), however few entries it returns. So:
//   - PEER mappings name their 5-tuple: one exact lookup each;
//   - pcpd.nft announces every connection a mapping translates, pinholes or elects, once, to an
//     NFLOG group (SyncSpec::log_group); the worker keeps those in a FlowIndex, and a MAP's
//     connections are then exact lookups too: the cost follows the mapping's own connections;
//   - until the index is known complete (at start, after announcements were lost, without the
//     group) a round walks the table instead, asking the kernel only for the entries with
//     pcpd.nft's mapped bit (CTA_MARK/CTA_MARK_MASK), and the walk refills the index. One walk
//     serves everything queued, and walks are spaced (min_walk_gap, and at least twice the last
//     walk's time). ct-touch and the elected count always walk (rare).
// Connections a MAP's election concerns that no pcpd rule translated (the internal endpoint's
// older outbound connections through the operator's masquerade) carry no mapped bit and were never
// announced: the elect4 / elect6 chains mark them on their next outbound packet.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "conntrack/ct_kernel.hpp"
#include "conntrack/flow_index.hpp"
#include "conntrack/forget_queue.hpp"
#include "core/datapath.hpp"

namespace pcpd::ct {

struct SyncSpec {
  // ct mark bits, as in nft-rules/pcpd.nft (docs/design.md "Checkpointing"): must be single, distinct bits.
  std::uint32_t elected_mark = 0x1;
  std::uint32_t sticky_mark = 0x2;
  std::uint32_t mapped_mark = 0x8;
  // The least time from one walk's start to the next's (also at least twice the last walk).
  std::chrono::milliseconds min_walk_gap{250};
  // NFLOG group of pcpd.nft's announcements (PCPD_LOG_GROUP); 0: none, walks only.
  std::uint16_t log_group = 0;
  // Connections the index holds at most; past it pcpd falls back to walks.
  std::size_t index_capacity = 2'000'000;
  // Index entries checked per second for connections that ended.
  std::size_t sweep_per_second = 2000;
};

// What the worker did, for `pcpctl stats` (pcpd_conntrack_* metrics).
struct SyncCounters {
  std::uint64_t submitted = 0;   // mappings queued (elections, un-elections, forgets)
  std::uint64_t cancelled = 0;   // forgets taken back: the mapping was re-created first
  std::uint64_t rounds = 0;
  std::uint64_t walks = 0;       // mapped-bit walks of the table
  std::uint64_t lookups = 0;     // exact lookups (PEER, and MAP connections from the index)
  std::uint64_t learned = 0;     // connections announced by pcpd.nft (NFLOG)
  std::uint64_t learn_lost = 0;  // times announcements were lost (the next round walks)
  std::uint64_t swept = 0;       // index entries dropped: their connection had ended
  std::uint64_t known = 0;       // connections in the index now
  bool index_complete = false;   // MAP work is exact lookups (else it walks)
  std::uint64_t visited = 0;     // entries handed to pcpd by walks and lookups
  std::uint64_t elected = 0;     // connections marked elected|sticky|mapped
  std::uint64_t unelected = 0;   // connections whose elected bit was cleared
  std::uint64_t deleted = 0;     // connections of deleted mappings removed
  std::uint64_t touched = 0;     // marked connections re-announced (ct-touch)
  std::uint64_t touches = 0;     // ct-touch requests completed
  std::uint64_t errors = 0;      // failed walks, lookups and writes
  std::uint64_t pending = 0;     // mappings and requests waiting for a round
  std::int64_t oldest_pending_ms = 0;  // how long the oldest of them has waited (0: none)
  double last_walk_ms = 0;       // duration of the last walk
  std::int64_t marked = -1;      // entries with the elected bit at the last walk (-1: none yet)
  std::int64_t marked_age_ms = -1;
};

// One round, for the daemon's log.
struct RoundReport {
  double ms = 0;       // the whole round
  double walk_ms = 0;  // its walk (0: none)
  std::size_t lookups = 0;
  bool walked = false;
  bool touch = false;  // a ct-touch request was served
  std::size_t items = 0;
  std::size_t visited = 0;
  std::size_t elected = 0, unelected = 0, deleted = 0, touched = 0, failed = 0;
  int error = 0;  // errno of a failed open, walk or lookup (the round's items are dropped)
};

class ConntrackSync {
 public:
  using OpenKernel = std::function<Result<std::unique_ptr<CtKernel>>()>;
  enum class Mode : std::uint8_t {
    Thread,  // a worker thread runs the rounds (pcpd)
    Inline,  // run_pending() runs them on the caller's thread (tests, tools)
  };
  ConntrackSync(OpenKernel open, SyncSpec spec, Mode mode);
  // (Inline) the worker's slow sweep of the index, for tests.
  void sweep_now(std::size_t n) { sweep(n); }
  ~ConntrackSync();  // stops the worker; what is still queued is dropped (drain() first)
  ConntrackSync(const ConntrackSync&) = delete;
  ConntrackSync& operator=(const ConntrackSync&) = delete;

  // The conntrack work of `changes`, which the kernel has committed. O(changes), no syscall.
  void submit(const core::ChangeSet& changes);
  // ct-touch (ha-recipe §2.4): every entry with the elected or sticky bit gets an update carrying
  // its own mark, so the kernel reports it and conntrackd re-sends it.
  void request_touch();
  // A fresh count of elected entries (SyncCounters::marked) with the next round.
  void request_count();

  // Thread: waits until nothing is queued or running, at most `limit`; Inline: runs it all.
  // True when everything queued was done.
  bool drain(std::chrono::milliseconds limit);
  // Inline: runs rounds until nothing is queued.
  void run_pending();
  // Thread: readable (eventfd) after each round; take_reports() reads it. -1 in Inline mode.
  [[nodiscard]] int notify_fd() const { return event_fd_; }
  [[nodiscard]] std::vector<RoundReport> take_reports();
  [[nodiscard]] SyncCounters counters() const;

 private:
  struct Item {
    enum class Op : std::uint8_t { Elect, Unelect } op;
    core::Mapping flow;
  };
  struct Work {
    std::vector<Item> marks;
    std::vector<core::Mapping> forgets;
    bool touch = false;
    bool count = false;
    [[nodiscard]] bool empty() const { return marks.empty() && forgets.empty() && !touch && !count; }
  };
  using Clock = std::chrono::steady_clock;

  void worker();
  void wake();
  [[nodiscard]] bool has_work_locked() const;
  [[nodiscard]] bool needs_walk_locked() const;
  Work take_locked();
  // The kernel, opened (and its announcements bound) on first use; false when it cannot be.
  bool ensure_kernel(RoundReport& r);
  // Everything announced so far into the index.
  void learn_now();
  // A slice of the index checked against the kernel.
  void sweep(std::size_t n);
  void run_round(const Work& work);  // reports through finish_round()
  void finish_round(const RoundReport& r, const Work& work, Clock::time_point started, std::int64_t marked);

  const OpenKernel open_;
  const SyncSpec spec_;
  const Mode mode_;
  std::unique_ptr<CtKernel> kernel_;  // the worker's (or run_pending's caller's)

  mutable std::mutex mu_;
  std::condition_variable idle_;  // a round finished
  std::vector<Item> marks_;
  ForgetQueue forgets_;
  bool touch_ = false;
  bool count_ = false;
  bool running_ = false;
  bool stop_ = false;
  Clock::time_point oldest_{};         // the oldest queued item's arrival
  Clock::time_point running_since_{};  // ... of the round running now
  Clock::time_point next_walk_{};
  Clock::time_point marked_at_{};
  SyncCounters counters_;
  std::vector<RoundReport> reports_;
  int event_fd_ = -1;
  int wake_fd_ = -1;  // the worker polls it: work queued, or stop
  // Worker-owned (run_pending's caller in Inline mode):
  FlowIndex index_;
  bool learning_ = false;
  std::atomic<bool> complete_{false};  // index_ holds every mapped connection
  std::atomic<std::uint64_t> learned_{0}, learn_lost_{0}, swept_{0};
  std::atomic<std::uint64_t> known_{0};
  std::thread thread_;
};

// A mapping's flow fields only (no filters, no description): what matching needs.
[[nodiscard]] core::Mapping flow_of(const core::Mapping& m);

}  // namespace pcpd::ct
