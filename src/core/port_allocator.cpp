// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/port_allocator.hpp"

#include <bit>

#include "wire/messages.hpp"

namespace pcpd::core {

namespace {
constexpr std::uint64_t bit_of(std::uint32_t port) { return std::uint64_t{1} << (port & 63U); }
}  // namespace

bool PortAllocator::reserved(std::uint16_t port) {
  // RFC 6887 §11.3 / R-MAP-15: the PCP ports on our own addresses are never handed out.
  return port == 0 || port == wire::kClientPort || port == wire::kServerPort;
}

bool PortAllocator::used(std::uint16_t port) const {
  return (words_[port >> 6] & bit_of(port)) != 0;
}

void PortAllocator::mark(std::uint16_t port) {
  if (used(port)) return;
  words_[port >> 6] |= bit_of(port);
  ++used_count_;
}

void PortAllocator::unmark(std::uint16_t port) {
  if (!used(port)) return;
  words_[port >> 6] &= ~bit_of(port);
  --used_count_;
}

// Free, non-reserved port in [from, to] (inclusive), lowest first; one 64-bit word per step.
std::optional<std::uint16_t> PortAllocator::scan(std::uint32_t from, std::uint32_t to) const {
  for (std::uint32_t w = from >> 6; w <= (to >> 6); ++w) {
    std::uint64_t free_bits = ~words_[w];
    const std::uint32_t base = w << 6;
    if (base < from) free_bits &= ~std::uint64_t{0} << (from - base);
    if (to - base < 63) free_bits &= (std::uint64_t{1} << (to - base + 1)) - 1;
    while (free_bits != 0) {
      const auto port = static_cast<std::uint16_t>(base + static_cast<std::uint32_t>(std::countr_zero(free_bits)));
      if (!reserved(port)) return port;
      free_bits &= free_bits - 1;
    }
  }
  return std::nullopt;
}

std::optional<std::uint16_t> PortAllocator::find_free(std::uint16_t lo, std::uint16_t hi,
                                                      std::uint16_t start) const {
  if (lo > hi) return std::nullopt;
  if (start < lo || start > hi) start = lo;
  if (auto p = scan(start, hi)) return p;
  if (start > lo) return scan(lo, static_cast<std::uint32_t>(start) - 1);
  return std::nullopt;
}

}  // namespace pcpd::core
