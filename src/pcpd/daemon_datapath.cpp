// SPDX-License-Identifier: GPL-2.0-or-later
// The datapath side of the daemon: apply failures noticed, the table watch and re-install,
// expiry, and the conntrack worker's reports.
#include "pcpd/daemon.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "config/config_parser.hpp"
#include "config/interface_table.hpp"
#include "conntrack/ct_netlink.hpp"
#include "pcpd/announce_targets.hpp"
#include "pcpd/epoch_store.hpp"
#include "pcpd/mapping_snapshot.hpp"
#include "wire/codec.hpp"

namespace pcpd::daemon {

void Daemon::note_datapath_errors(const char* during) {
  const std::uint64_t now = server_->stats().datapath_errors;
  if (now == datapath_errors_seen_) return;
  const std::uint64_t added = now - datapath_errors_seen_;
  datapath_errors_seen_ = now;
  log::limited(datapath_limiter_, log::Level::Warning, "datapath.apply_failed",
               {{"during", during}, {"failures", added}, {"total", now}});
  // The table may be gone (nft delete table, flush ruleset): look at it now rather than later.
  constexpr std::int64_t kCheckSoonMs = 100;
  arm_datapath_check(kCheckSoonMs);
}

// Datapath failure recovery. The kernel state can vanish under pcpd: `nft delete table inet
// pcpd`, `nft flush ruleset`, `systemctl restart nftables`. Requests then fail with NO_RESOURCES
// (RFC 6887 §7.4, all or nothing: core's table is unchanged), and every mapping core still
// holds is re-installed in one transaction once the table is back (a new table handle, or back
// after being missing). The epoch stays continuous: no mapping was lost, they are back with
// their ports and nonces.
bool Daemon::start_datapath_watch() {
  auto timer = BootTimer::create();
  if (!timer) {
    log::error("daemon.setup_failed", {{"what", "timerfd datapath"}});
    return false;
  }
  datapath_timer_.emplace(std::move(*timer));
  if (!loop_->add(datapath_timer_->fd(), [this] { on_datapath_timer(); })) {
    log::error("daemon.setup_failed", {{"what", "epoll_ctl datapath timer"}});
    return false;
  }
  constexpr std::int64_t kWatchMs = 5000;
  arm_datapath_check(kWatchMs);
  return true;
}

void Daemon::arm_datapath_check(std::int64_t delay_ms) {
  if (!datapath_timer_) return;
  const std::int64_t when = clock_.now().count() + delay_ms;
  const std::int64_t armed = datapath_timer_->armed_at();
  if (armed != -1 && armed <= when) return;
  if (auto r = datapath_timer_->arm_at(when); !r) log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}

void Daemon::on_datapath_timer() {
  constexpr std::int64_t kWatchMs = 5000;  // table present: a check every 5 s (two netlink dumps)
  constexpr std::int64_t kProbeMs = 1000;  // table gone: probe every second until it is back
  datapath_timer_->drain();
  datapath_timer_->disarm();
  std::int64_t next = kWatchMs;
  auto state = datapath_->check_table();
  if (!state) {
    log::limited(datapath_limiter_, log::Level::Warning, "nft.check_failed", {{"error", error_text(state.error())}});
    next = kProbeMs;
  } else if (*state == nft::NftDatapath::TableState::Missing) {
    next = kProbeMs;
  } else if (*state == nft::NftDatapath::TableState::Replaced) {
    const std::size_t mappings = server_->mapping_count();
    if (auto n = datapath_->reinstall(server_->mappings(), clock_.now()); n) {
      log::info("datapath.resynced", {{"mappings", *n}, {"in_core", mappings}});
      // The snapshot and journal name the old table: a new pair, through maintain_journal's
      // retries like any ended journal.
      journal_->stop();
      maintain_journal();
    } else {
      log::warn("datapath.resync_failed", {{"mappings", mappings}, {"error", error_text(n.error())}});
      next = kProbeMs;
    }
  } else {
    maintain_journal();
    if (readdress_pending_) after_external_change();  // the kernel refused the move before
    if (static_pending_) apply_static(false, "retry");
  }
  arm_datapath_check(next);
}

void Daemon::on_expiry_timer() {
  expiry_timer_->drain();
  const std::size_t expired = server_->expire();  // R-LIFE-7
  note_datapath_errors("expiry");
  if (ha_) ha_->flush();  // the peer drops them too
  if (expired > 0) log::debug("mappings.expired", {{"count", expired}, {"mappings", server_->mapping_count()}});
  rearm_expiry();
}

void Daemon::on_conntrack_reports() {
  for (const ct::RoundReport& r : conntrack_->take_reports()) {
    if (r.error != 0)
      log::limited(datapath_limiter_, log::Level::Warning, "conntrack.round_failed",
                   {{"errno", r.error}, {"error", std::strerror(r.error)}, {"items", r.items}, {"failed", r.failed}});
    if (r.touch) log::info("conntrack.touched", {{"connections", r.touched}, {"ms", r.ms}});
    log::debug("conntrack.round", {{"items", r.items}, {"walk_ms", r.walk_ms}, {"lookups", r.lookups},
                                   {"visited", r.visited}, {"elected", r.elected}, {"unelected", r.unelected},
                                   {"deleted", r.deleted}, {"touched", r.touched}, {"ms", r.ms}});
  }
}

void Daemon::rearm_expiry() {
  const core::Millis next = server_->next_expiry();
  const std::int64_t when = next == core::Millis::max() ? std::numeric_limits<std::int64_t>::max()
                                                        : next.count();
  if (when == expiry_timer_->armed_at()) return;
  if (auto r = expiry_timer_->arm_at(when); !r)
    log::error("timer.arm_failed", {{"error", error_text(r.error())}});
}
}  // namespace pcpd::daemon
