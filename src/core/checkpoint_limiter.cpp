// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/checkpoint_limiter.hpp"

#include <algorithm>

namespace pcpd::core {

namespace {

// Buckets are dropped once full again; past this many, a sweep removes the full ones so the map
// stays bounded by the clients that elected something recently.
constexpr std::size_t kPruneAbove = 4096;

double refill(double tokens, Millis last, Millis now, const Policy::Checkpoint& p) {
  const double burst = std::max(p.burst_per_client, 0.0);
  if (now <= last || p.rate_per_client <= 0) return std::min(tokens, burst);
  const double elapsed = static_cast<double>((now - last).count()) / 1000.0;
  return std::min(burst, tokens + elapsed * p.rate_per_client);
}

}  // namespace

double CheckpointLimiter::tokens(const Policy::Checkpoint& policy, const wire::IpAddr& client,
                                 Millis now) const {
  auto it = buckets_.find(client);
  if (it == buckets_.end()) return std::max(policy.burst_per_client, 0.0);
  return refill(it->second.tokens, it->second.last, now, policy);
}

Election CheckpointLimiter::decide(const Policy::Checkpoint& policy, bool requested, bool already,
                                   ElectionCounts counts, const wire::IpAddr& client,
                                   Millis now) const {
  // RFC 7767 §3.1 / R-CKPT-3, R-CKPT-5: a request without the option un-elects.
  if (!requested) return Election::NotRequested;
  // R-CKPT-2: the server may be configured to ignore the option (also un-elects on refresh).
  if (!policy.enabled) return Election::RefusedDisabled;
  // R-CKPT-5: a renewal of an elected mapping keeps it; it is already counted against the caps
  // and is no new election for the rate limit (so retransmissions get the same answer).
  if (already) return Election::Kept;
  // R-CKPT-4: checkpoint resources system-wide.
  if (counts.total >= policy.max_total) return Election::RefusedTotalCap;
  // R-CKPT-7: per client, the number of elected mappings and the rate of elections.
  if (counts.of_client >= policy.max_per_client) return Election::RefusedClientCap;
  if (tokens(policy, client, now) < 1.0 + static_cast<double>(counts.spent)) return Election::RefusedRate;
  return Election::Honoured;
}

void CheckpointLimiter::record(const Policy::Checkpoint& policy, Election e,
                               const wire::IpAddr& client, Millis now, Stats& stats) {
  switch (e) {
    case Election::NotRequested: return;
    case Election::Honoured: {
      const double left = tokens(policy, client, now) - 1.0;
      buckets_[client] = Bucket{left, now};
      if (buckets_.size() > kPruneAbove) prune(policy, now);
      ++stats.checkpoint_honoured;
      break;
    }
    case Election::Kept: ++stats.checkpoint_honoured; break;
    case Election::RefusedDisabled: ++stats.checkpoint_refused_disabled; break;
    case Election::RefusedTotalCap: ++stats.checkpoint_refused_total_cap; break;
    case Election::RefusedClientCap: ++stats.checkpoint_refused_client_cap; break;
    case Election::RefusedRate: ++stats.checkpoint_refused_rate; break;
    case Election::RefusedPeer: ++stats.checkpoint_refused_peer; break;
  }
  ++stats.checkpoint_requested;
}

void CheckpointLimiter::prune(const Policy::Checkpoint& policy, Millis now) {
  const double burst = std::max(policy.burst_per_client, 0.0);
  std::erase_if(buckets_, [&](const auto& kv) {
    return refill(kv.second.tokens, kv.second.last, now, policy) >= burst;
  });
}

}  // namespace pcpd::core
