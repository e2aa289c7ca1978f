// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire NAT-PMP (RFC 6886) codec: version 0 on port 5351 beside PCP (RFC 6887 App. A).
// Pure, like codec.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

namespace pcpd::wire::natpmp {

enum class Op : std::uint8_t { ExternalAddress = 0, MapUdp = 1, MapTcp = 2 };

// RFC 6886 §3.5 result codes.
enum class Result : std::uint16_t {
  Success = 0,
  UnsupportedVersion = 1,
  NotAuthorized = 2,
  NetworkFailure = 3,
  OutOfResources = 4,
  UnsupportedOpcode = 5,
};

struct Request {
  Op op = Op::ExternalAddress;
  std::uint16_t internal_port = 0;
  std::uint16_t suggested_external_port = 0;
  std::uint32_t lifetime = 0;
};

// Drop: send nothing (a response, i.e. opcode >= 128, or too short to tell). Respond: answer with
// `result` echoing `opcode` per RFC 6886 §3.5.
struct Reject {
  enum class Action : std::uint8_t { Drop, Respond };
  Action action = Action::Drop;
  Result result = Result::UnsupportedOpcode;
  std::uint8_t opcode = 0;
};

using Decoded = std::variant<Request, Reject>;
[[nodiscard]] Decoded decode_request(std::span<const std::uint8_t> datagram);

// External address response (12 bytes).
[[nodiscard]] std::size_t encode_external_address(Result result, std::uint32_t epoch,
                                                  std::uint32_t external_v4_host_order,
                                                  std::span<std::uint8_t> out);
// Map response (16 bytes), opcode = 128 + request op.
[[nodiscard]] std::size_t encode_map(Op op, Result result, std::uint32_t epoch,
                                     std::uint16_t internal_port, std::uint16_t external_port,
                                     std::uint32_t lifetime, std::span<std::uint8_t> out);
// RFC 6886 §3.5: an unsupported opcode (below 128) is answered with the whole request, its
// opcode's top bit set and result 5 in bytes 2-3 (a request shorter than 4 bytes is extended to
// hold the result). At most 1100 bytes (RFC 6887 §7's limit) and `out.size()`; 0 when `out`
// cannot hold 4.
[[nodiscard]] std::size_t encode_unsupported_opcode(std::span<const std::uint8_t> request,
                                                    std::span<std::uint8_t> out);
// Error reply for an unsupported version (8 bytes: vers 0, 128 + op, result, epoch).
[[nodiscard]] std::size_t encode_error(std::uint8_t opcode, Result result, std::uint32_t epoch,
                                       std::span<std::uint8_t> out);

// Client side (tests and pcpc): decode a response.
struct Response {
  std::uint8_t opcode = 0;  // 128 + request op
  Result result = Result::Success;
  std::uint32_t epoch = 0;
  std::uint32_t external_v4 = 0;  // op 128
  std::uint16_t internal_port = 0, external_port = 0;
  std::uint32_t lifetime = 0;
};
[[nodiscard]] std::variant<Response, const char*> decode_response(std::span<const std::uint8_t> d);

}  // namespace pcpd::wire::natpmp
