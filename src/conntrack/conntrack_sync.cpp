// SPDX-License-Identifier: GPL-2.0-or-later
// ConntrackSync's worker thread and its rounds. About 500 lines in one file on purpose: a round
// (walk or lookups, then marks and forgets) shares the private index types below, and split
// they would need a header of their own for this one user.
#include "conntrack/conntrack_sync.hpp"

#include <pthread.h>
#include <csignal>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_map>
#include <unordered_set>

#include "wire/ip_addr.hpp"

namespace pcpd::ct {
namespace {

// Where a mapping's connections show in their original tuple: its internal endpoint and, for a
// NAT44 MAP, its external one. Both the round's index of queued mappings and the lookups of
// announced connections go by these.
struct MappingEndpoints {
  Endpoint at[2];
  std::size_t n = 0;
};
MappingEndpoints endpoints_of(const core::Mapping& m) {
  MappingEndpoints e;
  e.at[e.n++] = Endpoint{m.internal_addr, m.internal_port, m.protocol};
  if (m.kind == core::MappingKind::Map && m.is_v4()) e.at[e.n++] = Endpoint{m.external_addr, m.external_port, m.protocol};
  return e;
}

// All-ports or all-protocols mappings (allow_all_ports) have no endpoint to look up.
bool wild(const core::Mapping& m) { return m.protocol == 0 || m.internal_port == 0; }

// Whether a queued mapping makes its round walk the table: a MAP does while the announced
// connections are not known complete, or when it has no endpoint; a PEER never does.
bool needs_walk(const core::Mapping& m, bool complete) {
  return m.kind != core::MappingKind::Peer && (!complete || wild(m));
}

// The queued mappings by the endpoints their connections show in the original tuple (internal
// and, for NAT44 MAP, external), so each entry costs two hash lookups whatever the queue holds.
// All-ports or all-protocols mappings (allow_all_ports) match by scanning: they are few.
class ItemIndex {
 public:
  // `ref`: the caller's number for the mapping (marks: their order; forgets: offset past them).
  void add(const core::Mapping& m, std::uint32_t ref) {
    if (wild(m)) {
      wild_.push_back(ref);
      return;
    }
    const MappingEndpoints e = endpoints_of(m);
    for (std::size_t i = 0; i < e.n; ++i) by_endpoint_.emplace(e.at[i], ref);
  }
  // The refs that may concern `e`, ascending and once each.
  void candidates(const CtEntry& e, std::vector<std::uint32_t>& out) const {
    out.assign(wild_.begin(), wild_.end());
    for (const auto& t : {Endpoint{e.orig.src, e.orig.src_port, e.protocol}, Endpoint{e.orig.dst, e.orig.dst_port, e.protocol}}) {
      auto [first, last] = by_endpoint_.equal_range(t);
      for (auto it = first; it != last; ++it) out.push_back(it->second);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

 private:
  std::unordered_multimap<Endpoint, std::uint32_t, EndpointHash> by_endpoint_;
  std::vector<std::uint32_t> wild_;
};

CtEntry peer_key(const core::Mapping& m) {
  CtEntry k;
  k.family = m.is_v4() ? AF_INET : AF_INET6;
  k.protocol = m.protocol;
  k.orig = FlowTuple{m.internal_addr, m.remote_addr, m.internal_port, m.remote_port};
  return k;
}

}  // namespace

core::Mapping flow_of(const core::Mapping& m) {
  core::Mapping f;
  f.kind = m.kind;
  f.protocol = m.protocol;
  f.internal_addr = m.internal_addr;
  f.internal_port = m.internal_port;
  f.external_addr = m.external_addr;
  f.external_port = m.external_port;
  f.remote_addr = m.remote_addr;
  f.remote_port = m.remote_port;
  f.checkpoint = m.checkpoint;
  return f;
}

ConntrackSync::ConntrackSync(OpenKernel open, SyncSpec spec, Mode mode)
    : open_(std::move(open)), spec_(spec), mode_(mode), index_(spec.index_capacity) {
  if (mode_ == Mode::Thread) {
    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    // The daemon takes its signals through a signalfd: a thread that could receive one would get
    // SIGHUP or SIGTERM's default action (the whole process ends). The worker starts with every
    // signal blocked, inherited from here, so none can reach it even before it runs.
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    thread_ = std::thread([this] { worker(); });
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
}

void ConntrackSync::wake() {
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

ConntrackSync::~ConntrackSync() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  if (event_fd_ >= 0) ::close(event_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ConntrackSync::submit(const core::ChangeSet& changes) {
  using Op = core::Change::Op;
  std::size_t queued = 0;
  {
    std::lock_guard lk(mu_);
    const bool was_empty = !has_work_locked();
    for (const auto& c : changes.changes) {
      if (c.op == Op::Add) {
        // A re-created mapping's connections are its own again (ForgetQueue).
        const std::size_t before = forgets_.size();
        forgets_.cancel(c.mapping);
        counters_.cancelled += before - forgets_.size();
        if (c.mapping.checkpoint) {
          marks_.push_back({Item::Op::Elect, flow_of(c.mapping)});
          ++queued;
        }
      } else if (c.op == Op::Remove) {
        if (!c.flush_conntrack) continue;
        forgets_.add(flow_of(c.mapping));
        ++queued;
      } else if (c.previous.checkpoint != c.mapping.checkpoint) {
        // Un-election: pcpd.nft's keys were deleted by the same commit, so no rule re-elects.
        marks_.push_back(c.mapping.checkpoint ? Item{Item::Op::Elect, flow_of(c.mapping)}
                                              : Item{Item::Op::Unelect, flow_of(c.previous)});
        ++queued;
      }
    }
    if (queued == 0) return;
    counters_.submitted += queued;
    if (was_empty) oldest_ = Clock::now();
  }
  wake();
}

void ConntrackSync::request_touch() {
  {
    std::lock_guard lk(mu_);
    if (!has_work_locked()) oldest_ = Clock::now();
    touch_ = true;
  }
  wake();
}

void ConntrackSync::request_count() {
  {
    std::lock_guard lk(mu_);
    if (!has_work_locked()) oldest_ = Clock::now();
    count_ = true;
  }
  wake();
}

bool ConntrackSync::has_work_locked() const { return !marks_.empty() || !forgets_.empty() || touch_ || count_; }

bool ConntrackSync::needs_walk_locked() const {
  if (touch_ || count_) return true;
  const bool complete = complete_;
  auto walks = [&](const core::Mapping& m) { return needs_walk(m, complete); };
  return std::any_of(marks_.begin(), marks_.end(), [&](const Item& i) { return walks(i.flow); }) ||
         forgets_.any_of(walks);
}

ConntrackSync::Work ConntrackSync::take_locked() {
  Work w;
  w.marks.swap(marks_);
  w.forgets = forgets_.take();
  w.touch = std::exchange(touch_, false);
  w.count = std::exchange(count_, false);
  return w;
}

bool ConntrackSync::drain(std::chrono::milliseconds limit) {
  if (mode_ == Mode::Inline) {
    run_pending();
    return true;
  }
  std::unique_lock lk(mu_);
  return idle_.wait_for(lk, limit, [&] { return !running_ && !has_work_locked(); });
}

void ConntrackSync::run_pending() {
  for (int guard = 0; guard < 64; ++guard) {
    Work w;
    {
      std::lock_guard lk(mu_);
      if (!has_work_locked()) return;
      w = take_locked();
    }
    run_round(w);
  }
}

bool ConntrackSync::ensure_kernel(RoundReport& r) {
  if (kernel_) return true;
  auto k = open_();
  if (!k) {
    r.error = k.error().code;
    return false;
  }
  kernel_ = std::move(*k);
  if (spec_.log_group != 0) {
    // Without the group (held by another process, no nfnetlink_log) every MAP round walks.
    learning_ = kernel_->learn_start(spec_.log_group).has_value();
    if (!learning_) ++learn_lost_;
  }
  return true;
}

void ConntrackSync::learn_now() {
  if (!learning_) return;
  bool lost = false;
  auto n = kernel_->learn([&](const CtEntry& e) {
    if (!index_.add(FlowKey::of(e))) lost = true;  // full: walks from now on
  }, lost);
  if (!n) lost = true;
  else learned_ += *n;
  if (lost) {
    ++learn_lost_;
    complete_ = false;
  }
  known_ = index_.size();
}

void ConntrackSync::sweep(std::size_t n) {
  if (!kernel_ || index_.size() == 0) return;
  std::vector<FlowKey> keys;
  index_.next(n, keys);
  for (const FlowKey& k : keys) {
    auto got = kernel_->get(k.entry());
    if (got && !*got) {
      index_.remove(k);
      ++swept_;
    }
  }
  known_ = index_.size();
}

std::vector<RoundReport> ConntrackSync::take_reports() {
  if (event_fd_ >= 0) {
    std::uint64_t n = 0;
    while (::read(event_fd_, &n, sizeof n) > 0) {
    }
  }
  std::lock_guard lk(mu_);
  std::vector<RoundReport> out;
  out.swap(reports_);
  return out;
}

SyncCounters ConntrackSync::counters() const {
  std::lock_guard lk(mu_);
  SyncCounters c = counters_;
  const auto now = Clock::now();
  c.pending = marks_.size() + forgets_.size() + (touch_ ? 1 : 0) + (count_ ? 1 : 0);
  const auto since = running_ ? running_since_ : oldest_;
  c.oldest_pending_ms = has_work_locked() || running_
                            ? std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count()
                            : 0;
  c.known = known_;
  c.learned = learned_;
  c.learn_lost = learn_lost_;
  c.swept = swept_;
  c.index_complete = complete_;
  if (c.marked >= 0)
    c.marked_age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - marked_at_).count();
  return c;
}

void ConntrackSync::worker() {
  // Below the request path on a busy CPU: a round may wait, a request should not.
  setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  pthread_setname_np(pthread_self(), "pcpd-conntrack");
  {
    RoundReport ignored;
    ensure_kernel(ignored);  // start learning now; a failure is reported by the first round
  }
  auto next_sweep = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    if (kernel_) learn_now();
    Work w;
    bool run = false;
    auto deadline = next_sweep;
    {
      std::lock_guard lk(mu_);
      if (stop_) break;
      if (has_work_locked()) {
        // Walks are spaced; exact lookups are not.
        if (needs_walk_locked() && Clock::now() < next_walk_) {
          deadline = std::min(deadline, next_walk_);
        } else {
          w = take_locked();
          running_ = true;
          running_since_ = oldest_;
          run = true;
        }
      }
    }
    if (run) {
      run_round(w);
      if (event_fd_ >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
      }
      std::lock_guard lk(mu_);
      running_ = false;
      idle_.notify_all();
      continue;
    }
    const auto now = Clock::now();
    if (now >= next_sweep) {
      // Connections that ended leave the index a slice a second (exact lookups).
      sweep(spec_.sweep_per_second);
      next_sweep = now + std::chrono::seconds(1);
      continue;
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {kernel_ ? kernel_->learn_fd() : -1, POLLIN, 0}};
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    ::poll(fds, 2, static_cast<int>(std::clamp<std::int64_t>(wait_ms, 1, 1000)));
    std::uint64_t n = 0;
    while (::read(wake_fd_, &n, sizeof n) > 0) {
    }
  }
}

void ConntrackSync::run_round(const Work& work) {
  const auto started = Clock::now();
  RoundReport r;
  r.items = work.marks.size() + work.forgets.size() + (work.touch ? 1 : 0);
  r.touch = work.touch;
  std::int64_t marked = -1;
  if (!ensure_kernel(r)) {
    finish_round(r, work, started, marked);
    return;
  }
  // Connections announced before this round's changes were committed are in the socket by now.
  learn_now();
  const std::uint32_t E = spec_.elected_mark, S = spec_.sticky_mark, M = spec_.mapped_mark;

  // Refs: marks are 0..n-1 in queue order, forgets follow.
  const auto n_marks = static_cast<std::uint32_t>(work.marks.size());
  ItemIndex index;
  for (std::uint32_t i = 0; i < n_marks; ++i) index.add(work.marks[i].flow, i);
  for (std::uint32_t i = 0; i < work.forgets.size(); ++i) index.add(work.forgets[i], n_marks + i);
  const bool complete = complete_;
  auto walks = [&](const core::Mapping& m) { return needs_walk(m, complete); };
  const bool walk = work.touch || work.count ||
                    std::any_of(work.marks.begin(), work.marks.end(), [&](const Item& i) { return walks(i.flow); }) ||
                    std::any_of(work.forgets.begin(), work.forgets.end(), walks);

  std::vector<CtWrite> writes;
  std::vector<std::uint32_t> refs;
  std::size_t elect_n = 0, unelect_n = 0, delete_n = 0, touch_n = 0, marked_n = 0;
  auto consider = [&](const CtEntry& e) {
    ++r.visited;
    index.candidates(e, refs);
    std::uint32_t set = 0, clear = 0;
    bool elect = false, remove = false;
    for (const std::uint32_t ref : refs) {
      if (ref < n_marks) {
        const Item& item = work.marks[ref];
        if (!checkpoint_match(item.flow, e.protocol, e.orig)) continue;
        if (item.op == Item::Op::Elect) {
          set |= E | S | M;
          clear &= ~(E | S | M);
          elect = true;
        } else {
          clear |= E;
          set &= ~E;
        }
      } else if (belongs_to(work.forgets[ref - n_marks], e.protocol, e.orig, e.reply)) {
        remove = true;
      }
    }
    const std::uint32_t after = (e.mark & ~(set | clear)) | set;
    const bool touch = work.touch && (e.mark & (E | S)) != 0;
    if (!remove && (after & E) != 0) ++marked_n;
    if (remove) {
      writes.push_back({e, true, 0, 0});
      ++delete_n;
    } else if (elect || after != e.mark || touch) {
      // RFC 7767: an elected connection's full state must reach the standby now, so an
      // election writes even when the bits are already there; an un-election only when the
      // elected bit goes.
      writes.push_back({e, false, set, clear});
      if (elect) ++elect_n;
      else if (after != e.mark) ++unelect_n;
      if (touch) ++touch_n;
    }
  };

  // Exact lookups: a PEER's connection, and (index complete, no walk) the announced connections
  // of each MAP's endpoints. Entries with the mapped bit are left to this round's walk, if any,
  // so none is written twice; a key whose connection ended leaves the index.
  std::unordered_set<FlowKey, FlowKeyHash> keys;
  std::vector<FlowKey> found;
  auto want = [&](const core::Mapping& m) {
    if (m.kind == core::MappingKind::Peer) {
      keys.insert(FlowKey::of(peer_key(m)));
      return;
    }
    if (walk) return;
    found.clear();
    const MappingEndpoints e = endpoints_of(m);
    for (std::size_t i = 0; i < e.n; ++i) index_.at(e.at[i], found);
    keys.insert(found.begin(), found.end());
  };
  for (const auto& i : work.marks) want(i.flow);
  for (const auto& m : work.forgets) want(m);
  for (const FlowKey& k : keys) {
    auto got = kernel_->get(k.entry());
    ++r.lookups;
    if (!got) {
      r.error = got.error().code;
      continue;
    }
    if (!*got) {
      index_.remove(k);
      continue;
    }
    if (!(walk && ((*got)->mark & M) == M)) consider(**got);
  }

  double walk_ms = 0;
  if (walk) {
    const auto walk_started = Clock::now();
    // The walk sees every mapped connection: it is the index from now on.
    index_.clear();
    bool overflow = false;
    auto n = kernel_->walk(M, M, [&](const CtEntry& e) {
      overflow |= !index_.add(FlowKey::of(e));
      consider(e);
    });
    r.walked = true;
    complete_ = n.has_value() && learning_ && !overflow;
    walk_ms = std::chrono::duration<double, std::milli>(Clock::now() - walk_started).count();
    if (!n) {
      r.error = n.error().code;
      writes.clear();
      elect_n = unelect_n = delete_n = touch_n = 0;
    } else {
      marked = static_cast<std::int64_t>(marked_n);
    }
  }
  for (const CtWrite& w : writes)
    if (w.remove) index_.remove(FlowKey::of(w.entry));
  known_ = index_.size();
  if (!writes.empty()) {
    const CtWriteResult w = kernel_->write(writes);
    r.failed = w.failed;
    if (w.failed != 0 && r.error == 0) r.error = w.first_errno;
  }
  r.elected = elect_n;
  r.unelected = unelect_n;
  r.deleted = delete_n;
  r.touched = touch_n;
  r.walk_ms = walk_ms;
  finish_round(r, work, started, marked);
}

void ConntrackSync::finish_round(const RoundReport& r, const Work& work, Clock::time_point started,
                                 std::int64_t marked) {
  const auto now = Clock::now();
  std::lock_guard lk(mu_);
  RoundReport out = r;
  out.ms = std::chrono::duration<double, std::milli>(now - started).count();
  ++counters_.rounds;
  counters_.lookups += r.lookups;
  counters_.visited += r.visited;
  counters_.elected += r.elected;
  counters_.unelected += r.unelected;
  counters_.deleted += r.deleted;
  counters_.touched += r.touched;
  counters_.errors += r.failed + (r.error != 0 && r.failed == 0 ? 1 : 0);
  if (work.touch && r.error == 0) ++counters_.touches;
  if (r.walked) {
    ++counters_.walks;
    counters_.last_walk_ms = r.walk_ms;
    const auto gap = std::max<std::chrono::milliseconds>(
        spec_.min_walk_gap, std::chrono::milliseconds(static_cast<std::int64_t>(2 * r.walk_ms)));
    next_walk_ = started + gap;
  }
  if (marked >= 0) {
    counters_.marked = marked;
    marked_at_ = now;
  }
  reports_.push_back(out);
  if (reports_.size() > 1024) reports_.erase(reports_.begin(), reports_.begin() + 512);
}

}  // namespace pcpd::ct
