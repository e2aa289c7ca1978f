// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace pcpd::core {

namespace {

// splitmix64's finaliser: every input bit reaches every output bit.
constexpr std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// Tokens after refilling from `last` to `now` at `rate` per second, capped at `burst`.
double refill(double tokens, Millis last, Millis now, double rate, double burst) {
  if (now <= last) return std::min(tokens, burst);
  const double elapsed = static_cast<double>((now - last).count()) / 1000.0;
  return std::min(burst, tokens + elapsed * rate);
}

}  // namespace

RateLimiter::RateLimiter(std::size_t sets, std::uint64_t seed)
    : entries_(std::bit_ceil(std::max<std::size_t>(sets, 1)) * kWays),
      set_mask_(std::bit_ceil(std::max<std::size_t>(sets, 1)) - 1),
      seed_(mix(seed ^ 0x9E3779B97F4A7C15ull)) {}

std::size_t RateLimiter::set_of(const wire::IpAddr& client) const {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  std::memcpy(&hi, client.bytes.data(), 8);
  std::memcpy(&lo, client.bytes.data() + 8, 8);
  return static_cast<std::size_t>(mix(mix(hi ^ seed_) ^ lo) & set_mask_);
}

RateLimiter::Verdict RateLimiter::admit(const Policy::RateLimit& policy,
                                        const wire::IpAddr& client, Millis now) {
  // R-QUOTA-5, R-SEC-3: per client first (the more specific limit), then the global one.
  if (policy.client_rate > 0) {
    const double burst = std::max(policy.client_burst, 1.0);
    Entry* const set = &entries_[set_of(client) * kWays];
    Entry* hit = nullptr;
    for (std::size_t i = 0; i < kWays && hit == nullptr; ++i)
      if (set[i].used && set[i].client == client) hit = &set[i];
    if (hit == nullptr) {
      // A new client: a free entry, else the one with the most tokens now (ties: least recent).
      Entry* victim = &set[0];
      double victim_tokens = -1;
      for (std::size_t i = 0; i < kWays; ++i) {
        Entry& e = set[i];
        if (!e.used) {
          victim = &e;
          break;
        }
        const double t = refill(e.tokens, e.last, now, policy.client_rate, burst);
        if (t > victim_tokens || (t == victim_tokens && e.last < victim->last)) {
          victim = &e;
          victim_tokens = t;
        }
      }
      *victim = Entry{client, burst, now, true};
      hit = victim;
    }
    const double tokens = refill(hit->tokens, hit->last, now, policy.client_rate, burst);
    hit->last = std::max(hit->last, now);
    if (tokens < 1.0) {
      hit->tokens = tokens;
      return Verdict::ClientLimited;
    }
    hit->tokens = tokens - 1.0;
  }
  if (policy.global_rate > 0) {
    const double burst = std::max(policy.global_burst, 1.0);
    if (!global_.started) global_ = Bucket{burst, now, true};
    const double tokens = refill(global_.tokens, global_.last, now, policy.global_rate, burst);
    global_.last = std::max(global_.last, now);
    if (tokens < 1.0) {
      global_.tokens = tokens;
      // RFC 6887 §18.1: the client's token stays spent; a refused request is still a request.
      return Verdict::GlobalLimited;
    }
    global_.tokens = tokens - 1.0;
  }
  return Verdict::Allow;
}

std::size_t RateLimiter::tracked() const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.used; }));
}

}  // namespace pcpd::core
