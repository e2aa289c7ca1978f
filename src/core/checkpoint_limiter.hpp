// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::CheckpointLimiter: whether a MAP/PEER request's CHECKPOINT_REQUIRED (RFC 7767) is
// honoured, within Policy::Checkpoint (global cap, per-client cap, per-client token bucket).
// Pure over the Clock's time; the counts of elected mappings come from the MappingTable, so this
// class only owns the token buckets. Private to pcp_core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/policy.hpp"
#include "core/stats.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::core {

// The outcome for one served request.
enum class Election : std::uint8_t {
  NotRequested,      // no option (or NAT-PMP): not elected, nothing counted (R-CKPT-3, R-CKPT-5)
  Honoured,          // elected; a new election consumes one rate token
  Kept,              // already elected and asked again: stays elected, no token (R-CKPT-5)
  RefusedDisabled,   // R-CKPT-2: configured to ignore the option
  RefusedTotalCap,   // R-CKPT-4: no checkpoint resources left system-wide
  RefusedClientCap,  // R-CKPT-7: this client's number of elected mappings
  RefusedRate,       // R-CKPT-7: this client's rate of elections
  RefusedPeer,       // RFC 7767 §3.2: no standby peer to checkpoint on (Context::checkpoint_available)
};

[[nodiscard]] constexpr bool elected(Election e) {
  return e == Election::Honoured || e == Election::Kept;
}

// What decide() needs to know about the table.
struct ElectionCounts {
  std::size_t total = 0;       // elected mappings system-wide
  std::size_t of_client = 0;   // elected mappings of this client (internal address)
  std::size_t spent = 0;       // tokens this client's elections in the open transaction will take
};

class CheckpointLimiter {
 public:
  // The decision for a request by `client` (the mapping's internal address). `already` = the
  // mapping exists and is elected. Changes nothing: record() does, once the change is applied.
  [[nodiscard]] Election decide(const Policy::Checkpoint& policy, bool requested, bool already,
                                ElectionCounts counts, const wire::IpAddr& client,
                                Millis now) const;
  // After a successful apply: consumes the token of a new election and counts the outcome.
  void record(const Policy::Checkpoint& policy, Election e, const wire::IpAddr& client, Millis now,
              Stats& stats);


 private:
  struct Bucket {
    double tokens = 0;
    Millis last{0};
  };
  // Tokens available to `client` at `now` (a client without a bucket has a full one).
  [[nodiscard]] double tokens(const Policy::Checkpoint& policy, const wire::IpAddr& client,
                              Millis now) const;
  void prune(const Policy::Checkpoint& policy, Millis now);

  std::unordered_map<wire::IpAddr, Bucket, wire::IpAddrHash> buckets_;
};

}  // namespace pcpd::core
