// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::PortAllocator: which external ports of one (external address, protocol) pool are in
// use, as a 65,536-bit bitmap (8 KiB). Finding a free port searches 64 ports per step from a
// caller-chosen (random) start, so it never walks port by port. Standard library only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace pcpd::core {

class PortAllocator {
 public:
  [[nodiscard]] bool used(std::uint16_t port) const;
  void mark(std::uint16_t port);
  void unmark(std::uint16_t port);
  [[nodiscard]] std::uint32_t used_count() const { return used_count_; }

  // The first free port in [lo, hi] at or after `start`, wrapping around to `lo`. Never returns
  // 0 or the PCP ports 5350/5351 (RFC 6887 §11.3, R-MAP-15). nullopt when the range is full.
  // Precondition: lo <= hi.
  [[nodiscard]] std::optional<std::uint16_t> find_free(std::uint16_t lo, std::uint16_t hi,
                                                       std::uint16_t start) const;

  // True for the ports find_free never hands out (0, 5350, 5351).
  [[nodiscard]] static bool reserved(std::uint16_t port);

 private:
  [[nodiscard]] std::optional<std::uint16_t> scan(std::uint32_t from, std::uint32_t to) const;

  std::array<std::uint64_t, 1024> words_{};
  std::uint32_t used_count_ = 0;
};

}  // namespace pcpd::core
