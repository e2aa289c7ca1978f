// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire codec: bytes <-> messages for PCP (RFC 6887) on both ends (server and client).
// Pure: no allocation, every read bounds-checked through Reader (reader.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "wire/messages.hpp"

namespace pcpd::wire {

using DecodedRequest = std::variant<Request, Reject>;

// Server side. Checks in the order docs/design.md "Order of checks" gives (RFC 6887 §8.2):
//   < 2 bytes drop; R bit drop; version != 2 -> UNSUPP_VERSION (any length >= 2); < 24 drop;
//   > 1100 or not a multiple of 4 -> MALFORMED_REQUEST; unknown opcode -> UNSUPP_OPCODE;
//   opcode body too short -> MALFORMED_REQUEST; then options, whose first error goes to
//   Request::option_error (the server checks ADDRESS_MISMATCH before it).
// The returned Request views `datagram`: keep the buffer alive while it is used.
[[nodiscard]] DecodedRequest decode_request(std::span<const std::uint8_t> datagram,
                                            const OptionCodes& codes = {});

// What a server's table lookups for a MAP or PEER request need, read from fixed offsets without
// decoding (RFC 6887 §7.1, §11.1, §12.1): version 2, a request (R bit clear), opcode MAP or PEER,
// long enough for its body. Nothing else is checked: a hint for prefetching a burst's lookups
//, never for deciding anything; decode_request() still judges the datagram.
struct LookupHint {
  Opcode opcode = Opcode::Map;
  std::uint8_t protocol = 0;
  std::uint16_t internal_port = 0;
  std::uint16_t remote_port = 0;  // PEER only
  IpAddr remote_addr{};           // PEER only
};
[[nodiscard]] std::optional<LookupHint> peek_lookup(std::span<const std::uint8_t> datagram);

// Success response (or any response built field by field, e.g. an unsolicited ANNOUNCE).
// Writes options in this order: THIRD_PARTY, PREFER_FAILURE, FILTERs, DESCRIPTION,
// CHECKPOINT_REQUIRED, CAPABILITY. Returns the bytes written, or 0 if `out` is too small or the
// message would exceed 1100 bytes.
[[nodiscard]] std::size_t encode_response(const Response& response, std::span<std::uint8_t> out,
                                          const OptionCodes& codes = {});

// Error response per RFC 6887 §8.2 / R-HDR-6: a copy of the request (at most 1100 bytes, zero
// padded to a multiple of 4; a request shorter than 24 bytes is answered as a 24-byte header),
// with version 2, R bit, result code, lifetime and epoch set and byte 2 zeroed. `parsed` true
// zeroes the 96 reserved bits (bytes 12..23); false leaves the copied client-address bits there.
// Returns the bytes written (0 if `out` is too small).
[[nodiscard]] std::size_t encode_error_response(std::span<const std::uint8_t> request,
                                                ResultCode code, std::uint32_t lifetime,
                                                std::uint32_t epoch, bool parsed,
                                                std::span<std::uint8_t> out);

// Error response as above, for a parsed request, whose CAPABILITY options (hops-00, code from
// `codes`) are replaced: every copied CAPABILITY option is removed, then, when `capability` is
// set, one CAPABILITY option carrying it is appended if the result stays within 1100 bytes and
// `out` (hops-00 R-CAP-8: an error together with the option; R-CAP-5: none without a set).
// The request's options must be well framed up to the point where they are not: from there the
// copy is kept as it is and nothing is appended. `parsed` false: the plain copy above.
[[nodiscard]] std::size_t encode_error_response(
    std::span<const std::uint8_t> request, ResultCode code, std::uint32_t lifetime,
    std::uint32_t epoch, bool parsed, std::span<std::uint8_t> out,
    const std::optional<std::array<std::uint8_t, kCapabilityBytes>>& capability,
    const OptionCodes& codes);

// Client side: a request built field by field. Returns bytes written or 0.
[[nodiscard]] std::size_t encode_request(const Request& request, std::span<std::uint8_t> out,
                                         const OptionCodes& codes = {});

// Client side: decode a response (R bit set). Drops anything a client must ignore (RFC 6887
// §8.3: not a response, too short, too long, length not a multiple of 4, bad option framing).
struct ResponseError {
  const char* reason;  // static text, for logs
};
using DecodedResponse = std::variant<Response, ResponseError>;
[[nodiscard]] DecodedResponse decode_response(std::span<const std::uint8_t> datagram,
                                              const OptionCodes& codes = {});

// Names for logs, JSON and docs ("MALFORMED_REQUEST", "MAP", "THIRD_PARTY").
[[nodiscard]] const char* to_string(ResultCode code);
[[nodiscard]] const char* to_string(Opcode op);
[[nodiscard]] const char* option_name(std::uint8_t code, const OptionCodes& codes = {});

}  // namespace pcpd::wire
