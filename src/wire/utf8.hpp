// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire UTF-8 validation (RFC 3629), shared by the server (DESCRIPTION, RFC 7220) and the
// client (what it prints of a server's DESCRIPTION). Standard library only.
#pragma once

#include <string_view>

namespace pcpd::wire {

// RFC 3629 §4 well-formed UTF-8: no overlong forms, surrogates or code points above U+10FFFF.
[[nodiscard]] bool valid_utf8(std::string_view text);

}  // namespace pcpd::wire
