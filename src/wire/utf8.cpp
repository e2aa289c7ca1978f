// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/utf8.hpp"

#include <cstdint>

namespace pcpd::wire {

// RFC 3629 §4 well-formed sequences: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  while (i < n) {
    const std::uint8_t b = byte(i);
    std::size_t len = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > n) return false;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if ((byte(i + k) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

}  // namespace pcpd::wire
