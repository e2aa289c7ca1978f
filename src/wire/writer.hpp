// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire::Writer: a bounds-checked big-endian cursor over an output buffer.
// Owns: Writer. A write that would run past the end writes nothing and makes the writer fail for
// good (sticky); encoders check ok() once and return 0 when it is false. Standard library only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "wire/ip_addr.hpp"

namespace pcpd::wire {

class Writer {
 public:
  explicit constexpr Writer(std::span<std::uint8_t> out) : out_(out) {}
  // Writes at most `limit` bytes of `out` (e.g. the 1100-byte message limit, RFC 6887 §7).
  constexpr Writer(std::span<std::uint8_t> out, std::size_t limit)
      : out_(out.first(limit < out.size() ? limit : out.size())) {}

  [[nodiscard]] constexpr bool ok() const { return ok_; }
  // Bytes written so far (meaningful only while ok()).
  [[nodiscard]] constexpr std::size_t size() const { return pos_; }

  constexpr void u8(std::uint8_t v) {
    if (!room(1)) return;
    out_[pos_++] = v;
  }
  constexpr void u16(std::uint16_t v) {
    if (!room(2)) return;
    out_[pos_++] = static_cast<std::uint8_t>(v >> 8);
    out_[pos_++] = static_cast<std::uint8_t>(v);
  }
  constexpr void u32(std::uint32_t v) {
    if (!room(4)) return;
    out_[pos_++] = static_cast<std::uint8_t>(v >> 24);
    out_[pos_++] = static_cast<std::uint8_t>(v >> 16);
    out_[pos_++] = static_cast<std::uint8_t>(v >> 8);
    out_[pos_++] = static_cast<std::uint8_t>(v);
  }
  constexpr void addr(const IpAddr& a) { bytes(a.bytes); }
  template <std::size_t N>
  constexpr void bytes(const std::array<std::uint8_t, N>& b) {
    bytes(std::span<const std::uint8_t>{b});
  }
  constexpr void bytes(std::span<const std::uint8_t> b) {
    if (!room(b.size())) return;
    for (auto v : b) out_[pos_++] = v;
  }
  void text(std::string_view s) {
    // Same storage viewed as bytes; char and std::uint8_t have the same representation.
    bytes({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  }
  constexpr void zeros(std::size_t n) {
    if (!room(n)) return;
    for (std::size_t i = 0; i < n; ++i) out_[pos_++] = 0;
  }
  // Marks the output as unusable (a field that cannot be encoded).
  constexpr void fail() { ok_ = false; }
  // Zero bytes up to the next multiple of 4 (RFC 6887 §7, §7.3).
  constexpr void pad4() { zeros((4 - pos_ % 4) % 4); }

 private:
  constexpr bool room(std::size_t n) {
    if (!ok_ || out_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<std::uint8_t> out_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pcpd::wire
