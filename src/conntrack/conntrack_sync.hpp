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
// Why rounds, and why the mapped bit. The kernel's conntrack table has no index but the full
// tuple: finding the connections of a MAP (any remote peer) means walking the whole table, and a
// busy router holds 10^5..10^6 entries (~0.2 s a walk at 10^6, bench/RESULTS.md). So:
//   - PEER mappings name their 5-tuple: one exact lookup each, no walk;
//   - pcpd.nft sets the `mapped` bit on every connection a pcpd mapping translates, pinholes or
//     elects, and a walk asks the kernel for those only (CTA_MARK/CTA_MARK_MASK), so user space
//     handles the connections of mappings, never the router's other flows;
//   - one walk serves every queued MAP item, and walks are spaced (min_walk_gap, and at least
//     twice the last walk's time), which bounds the kernel's share at any request rate.
// Connections a MAP's election concerns that no pcpd rule translated (the internal endpoint's
// older outbound connections through the operator's masquerade) carry no mapped bit: the elect4
// / elect6 chains mark them on their next outbound packet.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "conntrack/ct_kernel.hpp"
#include "conntrack/forget_queue.hpp"
#include "core/datapath.hpp"

namespace pcpd::ct {

struct SyncSpec {
  // ct mark bits, as in nft-rules/pcpd.nft (DESIGN "Checkpointing"): must be single, distinct bits.
  std::uint32_t elected_mark = 0x1;
  std::uint32_t sticky_mark = 0x2;
  std::uint32_t mapped_mark = 0x8;
  // The least time from one walk's start to the next's (also at least twice the last walk).
  std::chrono::milliseconds min_walk_gap{250};
};

// What the worker did, for `pcpctl stats` (pcpd_conntrack_* metrics).
struct SyncCounters {
  std::uint64_t submitted = 0;   // mappings queued (elections, un-elections, forgets)
  std::uint64_t cancelled = 0;   // forgets taken back: the mapping was re-created first
  std::uint64_t rounds = 0;
  std::uint64_t walks = 0;       // mapped-bit walks of the table
  std::uint64_t lookups = 0;     // exact lookups (PEER)
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
  [[nodiscard]] bool has_work_locked() const;
  [[nodiscard]] bool needs_walk_locked() const;
  Work take_locked();
  RoundReport run_round(const Work& work, bool walk);
  void finish_round(const RoundReport& r, const Work& work, Clock::time_point started, std::int64_t marked);

  const OpenKernel open_;
  const SyncSpec spec_;
  const Mode mode_;
  std::unique_ptr<CtKernel> kernel_;  // the worker's (or run_pending's caller's)

  mutable std::mutex mu_;
  std::condition_variable wake_;  // work queued, or stop
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
  std::thread thread_;
};

// A mapping's flow fields only (no filters, no description): what matching needs.
[[nodiscard]] core::Mapping flow_of(const core::Mapping& m);

}  // namespace pcpd::ct
