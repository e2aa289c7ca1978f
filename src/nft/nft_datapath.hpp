// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::NftDatapath: core::Datapath on nftables (libnftnl + libmnl), table `inet pcpd`
// loaded from nft-rules/pcpd.nft. pcpd only adds and deletes set/map elements; one netlink batch
// per ChangeSet (one request's, or a whole burst's: core::Server::handle_burst), every ack checked
// and mapped back to its change. Never runs the nft CLI.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "nft/netlink_session.hpp"
#include "util/result.hpp"

namespace pcpd::nft {

struct TableSpec {
  std::string table = "pcpd";        // family inet
  std::uint32_t grace_seconds = 30;  // element timeout = lifetime + grace
  // Refresh unchanged elements in place when the kernel can (probe_refresh_in_place(); tests turn
  // it off to exercise the delete-and-add path a kernel before 6.10 takes).
  bool refresh_in_place = true;
};

// Thrown only at start-up (open, verify): the message tells the operator what is wrong and how
// to fix it (e.g. "table inet pcpd not found: load it with nft -f /usr/share/pcpd/pcpd.nft").
struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the backend did, for `pcpctl stats` and tests (added by the nft part).
struct NftCounters {
  std::uint64_t batches = 0;             // transactions committed
  std::uint64_t batch_failures = 0;      // transactions the kernel refused (nothing applied)
  std::uint64_t grouped_refused = 0;     // one-message-per-set batches refused, then resent per element
  std::uint64_t elements_added = 0;
  std::uint64_t elements_deleted = 0;
  std::uint64_t elements_updated = 0;    // timers restarted in place (refresh_in_place)
  std::uint64_t already_expired = 0;     // deletions dropped: the kernel had expired the element
  std::uint64_t recovery_leftovers = 0;  // elements of incomplete mappings removed by recover()
  // Datapath failure recovery (check_table() / reinstall(), added by the robustness part):
  std::uint64_t table_lost = 0;       // check_table() found the table gone or not matching
  std::uint64_t resyncs = 0;          // reinstall() transactions committed
  std::uint64_t resync_mappings = 0;  // mappings those re-installed
  std::uint64_t resync_failures = 0;  // reinstall() transactions refused
};

class NftDatapath final : public core::Datapath {
 public:
  // Opens the netlink socket and verifies that the table exists with every map/set and the
  // key/data types pcpd expects. Throws SetupError otherwise. The connections of the mappings
  // (conntrack) are not this backend's: the daemon hands committed changes to ct::ConntrackSync.
  static std::unique_ptr<NftDatapath> open(const TableSpec& spec);
  ~NftDatapath() override;

  [[nodiscard]] Result<void> apply(const core::ChangeSet& changes) override;

  // Reads every element back and rebuilds the mappings (nonce, remaining lifetime from the
  // element expiration, filters, flags, description) for restart recovery. `now` is the core
  // clock's current time, used to turn remaining kernel timeouts into Mapping::expires.
  [[nodiscard]] Result<std::vector<core::Mapping>> recover(core::Millis now);

  // Replaces the contents of the `wan_ifnames` set (interfaces on which outbound SNAT of MAP and
  // PEER mappings applies).
  [[nodiscard]] Result<void> set_external_interfaces(const std::vector<std::string>& names);

  // Removes every element pcpd owns (used by tests and `pcpctl flush`).
  [[nodiscard]] Result<void> flush();

  // Datapath failure recovery (added by the robustness part). The table pcpd opened can vanish
  // under it (`nft delete table inet pcpd`, `nft flush ruleset`, `systemctl restart nftables`)
  // and come back empty. check_table() reads the table's handle and verifies its sets like
  // open(): Missing while it is gone or does not match; Replaced once it is back (a new handle,
  // or back after Missing) and until reinstall() succeeds; Same otherwise. Two netlink dumps.
  enum class TableState : std::uint8_t { Same, Missing, Replaced };
  [[nodiscard]] Result<TableState> check_table();
  // Installs `mappings` afresh in one transaction (all or nothing): flushes every set, puts the
  // last set_external_interfaces() names back, adds each mapping's elements with timeout =
  // remaining lifetime (expires - now, at least 1 s) + grace. Mappings already expired or that
  // the table cannot express are left out. On success check_table() says Same again, and
  // tune_gc_interval() runs (a second transaction when the new sets have no gc-interval).
  [[nodiscard]] Result<std::size_t> reinstall(const std::vector<core::Mapping>& mappings, core::Millis now);

  // Restart snapshot validation (added by the restart-snapshot part): the nftables
  // ruleset generation id (NFT_MSG_GETGEN; every committed transaction on the host bumps it)
  // and the current handle of table inet <table> (0 when there is no such table). The
  // generation is read before and after the handle and must not move in between (retried at
  // most 3 times, then EAGAIN). Two or three small netlink requests, no set dump.
  struct RulesetStamp {
    std::uint32_t generation = 0;
    std::uint64_t table_handle = 0;
  };
  [[nodiscard]] Result<RulesetStamp> ruleset_stamp();
  // Transactions committed through this datapath so far, from any call (each moves the generation
  // id by one), and batches whose outcome is unknown (NetlinkSession::commits).
  [[nodiscard]] NetlinkSession::Commits commits() const;

  [[nodiscard]] NftCounters counters() const;
  // Whether a refresh restarts the timers of unchanged elements in place (one update per element)
  // rather than deleting and re-adding them: TableSpec::refresh_in_place and the kernel passed
  // probe_refresh_in_place(). False until that probe.
  [[nodiscard]] bool refresh_in_place() const;
  // With TableSpec::refresh_in_place, asks the kernel whether an element re-added without
  // NLM_F_EXCL gets the new expiration (Linux 6.10+; older kernels accept it and change nothing):
  // three transactions and a get on a map4_snat key no mapping has. They change the ruleset
  // generation, so the daemon runs this after ruleset_stamp(). Logs and returns the outcome.
  bool probe_refresh_in_place();

  // The kernel garbage-collects a timeout set by walking all of it every gc-interval, 1 s unless
  // the set names one: at 1,000,000 mappings that is ~9 % of a CPU per map, all the time
  // (bench/RESULTS.md). pcpd deletes expired mappings itself, so the walk only reclaims what a
  // stopped pcpd left (lookups skip expired elements anyway). Gives every timeout set of the
  // table that has no gc-interval kGcIntervalMs, in one transaction (a set update: the kernel's
  // own key, data, flags and field lengths sent back; Linux 6.4+, older kernels accept it and
  // change nothing), then reads the sets back. Sets with an operator's gc-interval are left
  // alone. Commits only when a set needs it, so the daemon runs this after ruleset_stamp() and
  // after reinstall(). Logs the outcome; returns how many sets have pcpd's interval now.
  static constexpr std::uint32_t kGcIntervalMs = 60'000;
  Result<std::size_t> tune_gc_interval();

 private:
  struct Impl;
  explicit NftDatapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pcpd::nft
