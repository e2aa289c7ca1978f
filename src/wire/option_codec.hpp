// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire option TLVs (RFC 6887 §7.3): the walk shared by request and response decoding, and
// the writer shared by request and response encoding. Internal to pcp_wire (not a contract).
#pragma once

#include <cstddef>
#include <optional>

#include "wire/messages.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::wire::detail {

// Request: the server's rules (validity per opcode, maximum occurrences, lengths; first error
// wins). Response: the client's rules (only framing and the lengths of known options matter).
enum class OptionMode : std::uint8_t { Request, Response };

// Walks the options from `r` to its end into `out`. Returns the first error in processing order
// (RFC 6887 §7.3), nullopt when every option is fine. Stops at the first error.
[[nodiscard]] std::optional<ResultCode> decode_options(Reader& r, Opcode op, OptionMode mode,
                                                       const OptionCodes& codes, Options& out);

// Writes the options in the documented order (codec.hpp). Fails `w` if one cannot be encoded.
void encode_options(Writer& w, const Options& options, const OptionCodes& codes);

}  // namespace pcpd::wire::detail
