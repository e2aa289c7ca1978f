// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/description.hpp"

#include <cstdint>

namespace pcpd::core {

std::optional<std::string_view> description_text(std::string_view raw, std::size_t max) {
  if (!valid_utf8(raw)) return std::nullopt;
  if (raw.size() <= max) return raw;
  std::size_t cut = max;
  // Back up over continuation bytes (10xxxxxx) so the cut falls before a lead byte.
  while (cut > 0 && (static_cast<std::uint8_t>(raw[cut]) & 0xC0) == 0x80) --cut;
  return raw.substr(0, cut);
}

}  // namespace pcpd::core
