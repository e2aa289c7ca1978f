// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire::Reader: a bounds-checked big-endian cursor over a received datagram.
// Owns: Reader. Every read is checked against the end of the buffer; a read that would run past
// it reads nothing, returns zero and makes the reader fail for good (sticky), so a decoder checks
// ok() once after a group of reads. No other wire code does pointer arithmetic on a datagram.
// Standard library only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "wire/ip_addr.hpp"

namespace pcpd::wire {

class Reader {
 public:
  explicit constexpr Reader(std::span<const std::uint8_t> data) : data_(data) {}

  [[nodiscard]] constexpr bool ok() const { return ok_; }
  [[nodiscard]] constexpr std::size_t offset() const { return pos_; }
  [[nodiscard]] constexpr std::size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  [[nodiscard]] constexpr bool has(std::size_t n) const { return remaining() >= n; }
  [[nodiscard]] constexpr bool at_end() const { return remaining() == 0; }

  constexpr std::uint8_t u8() {
    if (!take_check(1)) return 0;
    return data_[pos_++];
  }
  constexpr std::uint16_t u16() {
    if (!take_check(2)) return 0;
    auto v = static_cast<std::uint16_t>((unsigned{data_[pos_]} << 8) | unsigned{data_[pos_ + 1]});
    pos_ += 2;
    return v;
  }
  constexpr std::uint32_t u32() {
    if (!take_check(4)) return 0;
    std::uint32_t v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
                      (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return v;
  }
  // A 128-bit address field (RFC 6887 §5); all zero on failure.
  constexpr IpAddr addr() {
    IpAddr a;
    if (!take_check(16)) return a;
    for (std::size_t i = 0; i < 16; ++i) a.bytes[i] = data_[pos_ + i];
    pos_ += 16;
    return a;
  }
  // Copies exactly out.size() bytes into `out` (zero-filled on failure).
  template <std::size_t N>
  constexpr void copy_to(std::array<std::uint8_t, N>& out) {
    out.fill(0);
    if (!take_check(N)) return;
    for (std::size_t i = 0; i < N; ++i) out[i] = data_[pos_ + i];
    pos_ += N;
  }
  // The next n bytes as a view into the datagram (empty on failure).
  constexpr std::span<const std::uint8_t> bytes(std::size_t n) {
    if (!take_check(n)) return {};
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  // The next n bytes as text viewing the datagram (RFC 7220 DESCRIPTION, not NUL-terminated).
  std::string_view text(std::size_t n) {
    auto s = bytes(n);
    // Byte to char view of the same storage; std::uint8_t and char have the same representation.
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  constexpr void skip(std::size_t n) {
    if (take_check(n)) pos_ += n;
  }
  // Moves past min(n, remaining()) bytes without failing; returns how many it moved.
  constexpr std::size_t skip_up_to(std::size_t n) {
    std::size_t k = n < remaining() ? n : remaining();
    pos_ += k;
    return k;
  }
  // A reader over the next n bytes; this reader moves past them. Fails both if n is not there.
  constexpr Reader sub(std::size_t n) {
    if (!take_check(n)) {
      Reader failed{{}};
      failed.ok_ = false;
      return failed;
    }
    Reader r{data_.subspan(pos_, n)};
    pos_ += n;
    return r;
  }

 private:
  constexpr bool take_check(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pcpd::wire
