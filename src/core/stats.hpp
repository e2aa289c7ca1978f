// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Stats: counters core keeps per request outcome (shown by pcpctl stats / metrics).
#pragma once

#include <array>
#include <cstdint>

namespace pcpd::core {

struct Stats {
  std::array<std::uint64_t, 4> requests_by_opcode{};   // ANNOUNCE, MAP, PEER, other
  std::array<std::uint64_t, 24> responses_by_result{};  // indexed by ResultCode
  std::uint64_t dropped = 0;             // silently dropped (RFC 6887 §8.2)
  std::uint64_t natpmp_requests = 0;
  std::uint64_t natpmp_errors = 0;
  std::uint64_t datapath_errors = 0;     // apply() failed
  std::uint64_t expired = 0;             // mappings removed by expiry
  std::uint64_t restored = 0;            // mappings taken over at start
  std::uint64_t restore_conflicts = 0;   // recovered mappings that could not be taken
  std::uint64_t created = 0, refreshed = 0, deleted = 0;
  // CHECKPOINT_REQUIRED (RFC 7767): requests that asked, were honoured, or were served without
  // the option, by reason.
  std::uint64_t checkpoint_requested = 0;
  std::uint64_t checkpoint_honoured = 0;
  std::uint64_t checkpoint_refused_disabled = 0;
  std::uint64_t checkpoint_refused_total_cap = 0;
  std::uint64_t checkpoint_refused_client_cap = 0;
  std::uint64_t checkpoint_refused_rate = 0;
  std::uint64_t elected = 0;  // gauge: mappings currently elected
  // Hot standby (RFC 7767 §3.2): served without the option because no peer could hold it
  // (refused up front), or because the peer did not acknowledge in time (un-elected after).
  std::uint64_t checkpoint_refused_peer = 0;
  std::uint64_t checkpoint_withdrawn = 0;
  std::uint64_t checkpoint_reelected = 0;  // deferred elections made when the peer came back
  std::uint64_t nonce_refused = 0;   // R-MAP-7 NOT_AUTHORIZED for another nonce
  std::uint64_t nonce_replaced = 0;  // ... taken over instead (Policy::nonce_change, NAT-PMP)
  std::uint64_t readdressed = 0;  // mappings moved to a new external address (Mapping Update)
  std::uint64_t mirror_skipped = 0;  // replicated changes the standby's table could not take
  // Requests refused by the rate limits (RFC 6887 §18.1, Policy::RateLimit), dropped silently
  // before decoding (PCP and NAT-PMP alike); not counted in `dropped` nor as requests.
  std::uint64_t rate_limited_client = 0;
  std::uint64_t prefer_failure_limited = 0;  // R-PF-3: answered without looking at the port
  std::uint64_t rate_limited_global = 0;
  // Server::handle_burst: transactions of more than one request that the datapath took (a burst
  // whose requests wait for each other is several), and those it refused, after which each
  // request was decided again on its own.
  std::uint64_t bursts = 0;
  std::uint64_t burst_retries = 0;
};

}  // namespace pcpd::core
