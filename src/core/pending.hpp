// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Pending: the transaction core is deciding, before anything is applied. The request
// handlers stage their changes here instead of touching the table; the datapath gets the staged
// ChangeSet, and only when it took all of it does Server commit them (table, counters, checkpoint
// buckets, nonce-conflict reports). A transaction the datapath refused is dropped: the table
// never held it, so there is nothing to undo (RFC 6887 §7.3 / R-HDR-10).
//
// The next request of a burst must decide as if the earlier ones were in the table. Pending keeps
// what that takes, and nothing more:
//   - the internal endpoints its changes touch: a request on one of them (or on every mapping of
//     an address: a bulk delete, an all-ports MAP) is not decided in this transaction (Server
//     cuts the burst there, applies what it has, and goes on), so a key, a binding or a bulk
//     delete is always read from a table that holds everything decided before it;
//   - the external endpoints its adds claim (and the NAT-PMP companion ports they reserve), which
//     a new binding must not take; ports its removes free are not reused until the commit;
//   - the mapping and election counts by which it changes the table's, for the quotas and the
//     checkpoint caps, and the elections by address for the checkpoint rate.
// Private to pcp_core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/checkpoint_limiter.hpp"
#include "core/datapath.hpp"
#include "core/mapping_key.hpp"
#include "core/server.hpp"
#include "core/stats.hpp"

namespace pcpd::core {

class Pending {
 public:
  // Empties it for the next transaction; the containers keep their memory (one transaction per
  // receive batch), unless a rare huge one (a bulk delete of 65,535 mappings) grew them.
  void clear();
  [[nodiscard]] bool empty() const { return changes_.empty() && table_only_.empty(); }
  [[nodiscard]] const ChangeSet& changes() const { return changes_; }

  // A change a request decided: staged for the datapath, and noted for the reads below.
  void stage(const Change& c);
  // A change of table fields that are no datapath state (where a PEER's Mapping Update goes):
  // written to the table at the commit, with the rest.
  void stage_table_only(const Mapping& m);
  [[nodiscard]] const std::vector<Mapping>& table_only() const { return table_only_; }

  // Whether a change of this transaction concerns a mapping of that internal endpoint. (Reads
  // of a whole address, the bulk deletes, wait for any transaction: Server::Impl::waits.)
  [[nodiscard]] bool touches(const EndpointKey& internal) const { return endpoints_.contains(internal); }
  // An external endpoint a staged add holds: the port itself, or the whole address and protocol
  // under an all-ports mapping (port 0).
  [[nodiscard]] bool claimed(const EndpointKey& external) const;
  [[nodiscard]] std::size_t claims() const { return claimed_.size(); }
  // Whether a staged remove frees that external port (of any address) of that protocol, or
  // every port of an address (an all-ports mapping).
  [[nodiscard]] bool releases(std::uint8_t protocol, std::uint16_t port) const {
    const std::uint32_t p = std::uint32_t{protocol} << 16;
    return released_.contains(p | port) || released_.contains(p);
  }
  // The internal address of a staged NAT-PMP mapping on that external endpoint (RFC 6886 §3.3).
  [[nodiscard]] std::optional<IpAddr> natpmp_holder(const EndpointKey& external) const;

  // What the staged changes add to the table's counts.
  [[nodiscard]] std::ptrdiff_t size_delta() const { return size_delta_; }
  [[nodiscard]] std::ptrdiff_t count_delta(const IpAddr& internal) const;
  [[nodiscard]] std::ptrdiff_t elected_delta() const { return elected_delta_; }
  [[nodiscard]] std::ptrdiff_t elected_delta(const IpAddr& internal) const;

  // Side effects of the decisions, made at the commit and lost with a drop.
  Stats stats;  // counted per request; added to Server's at the commit
  struct ElectionRecord {
    Election election = Election::NotRequested;
    IpAddr internal{};
  };
  std::vector<ElectionRecord> elections;  // CheckpointLimiter::record, in decision order
  // Honoured elections of an internal address in this transaction: rate tokens it will spend.
  [[nodiscard]] std::size_t honoured(const IpAddr& internal) const;
  void note_election(Election e, const IpAddr& internal);
  std::vector<NonceConflict> conflicts;  // reported once the transaction is in

 private:
  void count(const Mapping& m, int sign);

  ChangeSet changes_;
  std::vector<Mapping> table_only_;
  std::unordered_set<EndpointKey, EndpointKeyHash> endpoints_;
  std::unordered_set<EndpointKey, EndpointKeyHash> claimed_;
  std::unordered_set<std::uint32_t> released_;  // protocol << 16 | external port
  std::unordered_map<EndpointKey, IpAddr, EndpointKeyHash> natpmp_;
  std::unordered_map<IpAddr, std::ptrdiff_t, wire::IpAddrHash> count_by_internal_;
  std::unordered_map<IpAddr, std::ptrdiff_t, wire::IpAddrHash> elected_by_internal_;
  std::unordered_map<IpAddr, std::size_t, wire::IpAddrHash> honoured_;
  std::ptrdiff_t size_delta_ = 0;
  std::ptrdiff_t elected_delta_ = 0;
};

// Adds every counter of `from` to `to`, except the `elected` gauge (set from the table).
void add_counts(Stats& to, const Stats& from);

}  // namespace pcpd::core
