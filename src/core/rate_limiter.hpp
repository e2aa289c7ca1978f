// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::RateLimiter: request rate limits (RFC 6887 §18, §18.1 "the PCP server SHOULD
// rate-limit"; R-QUOTA-5, R-SEC-3): a token bucket per client (the packet's source address) and
// one global bucket, checked before a datagram is decoded, so that a flood costs no kernel work
// and no decoding. Pure over the Clock's time. Private to pcp_core.
//
// Memory is fixed: the per-client buckets live in a set-associative table allocated once
// (kDefaultSets sets of kWays entries, 40 bytes each: 320 KiB by default), so a flood of spoofed
// source addresses cannot grow it. The set is chosen by a hash keyed with a per-process random
// seed (an attacker cannot aim many addresses at one set). A new client takes a free entry of its
// set or evicts the entry with the most tokens (the least limited, usually an idle client; a busy
// flooder whose bucket is empty is the last to go), so a spoofing flood cannot easily give a real
// flooder a fresh bucket; what it can do is bounded by the global bucket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/clock.hpp"
#include "core/policy.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::core {

class RateLimiter {
 public:
  enum class Verdict : std::uint8_t { Allow, ClientLimited, GlobalLimited };

  static constexpr std::size_t kWays = 8;
  static constexpr std::size_t kDefaultSets = 1024;  // 8192 client buckets

  // `sets` is rounded up to a power of two (at least 1); `seed` keys the set hash.
  explicit RateLimiter(std::size_t sets = kDefaultSets, std::uint64_t seed = 0);

  // One request from `client` at `now`: consumes a token of the client's bucket, then one of the
  // global bucket. A request refused by its client's bucket takes no global token, so a single
  // flooder cannot use up the budget of everybody else. Rate 0 turns a bucket off.
  [[nodiscard]] Verdict admit(const Policy::RateLimit& policy, const wire::IpAddr& client,
                              Millis now);


  [[nodiscard]] std::size_t capacity() const { return entries_.size(); }
  // Clients with an entry (for tests and stats).
  [[nodiscard]] std::size_t tracked() const;

 private:
  struct Entry {
    wire::IpAddr client{};
    double tokens = 0;
    Millis last{0};
    bool used = false;
  };
  struct Bucket {
    double tokens = 0;
    Millis last{0};
    bool started = false;
  };

  [[nodiscard]] std::size_t set_of(const wire::IpAddr& client) const;

  std::vector<Entry> entries_;  // sets * kWays, never resized
  std::size_t set_mask_ = 0;
  std::uint64_t seed_ = 0;
  Bucket global_;
};

}  // namespace pcpd::core
