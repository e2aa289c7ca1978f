// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core DESCRIPTION option text (RFC 7220): UTF-8 validation and truncation at a character
// boundary.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "wire/utf8.hpp"

namespace pcpd::core {

// RFC 7220 §3: invalid UTF-8 -> nullopt (the option is ignored and not echoed). Otherwise the
// text to store and echo: the whole text when it fits in `max` bytes, else its longest prefix of
// at most `max` bytes that ends on a character boundary.
[[nodiscard]] std::optional<std::string_view> description_text(std::string_view raw,
                                                               std::size_t max);

using wire::valid_utf8;  // RFC 3629, wire/utf8.hpp

}  // namespace pcpd::core
