// SPDX-License-Identifier: GPL-2.0-or-later
// NAT-PMP (RFC 6886) codec; layouts of RFC 6886 §3.2-§3.5.
#include "wire/natpmp.hpp"

#include <algorithm>

#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::wire::natpmp {

namespace {

constexpr std::uint8_t kVersion = 0;         // RFC 6886 §3
constexpr std::uint8_t kResponseBit = 0x80;  // RFC 6886 §3.2: response op = 128 + op
constexpr std::size_t kMapRequestSize = 12;  // RFC 6886 §3.3
constexpr std::size_t kErrorSize = 8;
constexpr std::size_t kExternalAddressSize = 12;
constexpr std::size_t kMapResponseSize = 16;

void header(Writer& w, std::uint8_t op, Result result, std::uint32_t epoch) {
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(kResponseBit | op));
  w.u16(static_cast<std::uint16_t>(result));
  w.u32(epoch);  // seconds since start of epoch
}

}  // namespace

Decoded decode_request(std::span<const std::uint8_t> datagram) {
  Reader r{datagram};
  // Too short to tell what it is: drop.
  if (!r.has(2)) return Reject{Reject::Action::Drop, Result::UnsupportedOpcode, 0};
  const std::uint8_t version = r.u8();
  const std::uint8_t op = r.u8();
  // RFC 6886 §3.2, R-PMP-2: opcode >= 128 is a response: ignore it.
  if ((op & kResponseBit) != 0) return Reject{Reject::Action::Drop, Result::UnsupportedOpcode, op};
  // RFC 6886 §3.5: unsupported version -> result 1. (The daemon routes only version 0 here.)
  if (version != kVersion) return Reject{Reject::Action::Respond, Result::UnsupportedVersion, op};
  switch (op) {
    case static_cast<std::uint8_t>(Op::ExternalAddress):  // RFC 6886 §3.2: 2 bytes
      return Request{Op::ExternalAddress, 0, 0, 0};
    case static_cast<std::uint8_t>(Op::MapUdp):
    case static_cast<std::uint8_t>(Op::MapTcp): {
      // RFC 6886 §3.3: vers, op, reserved(2), internal port, suggested external port, lifetime.
      if (!r.has(kMapRequestSize - 2))
        return Reject{Reject::Action::Drop, Result::UnsupportedOpcode, op};
      Request req;
      req.op = static_cast<Op>(op);
      r.skip(2);  // reserved
      req.internal_port = r.u16();
      req.suggested_external_port = r.u16();
      req.lifetime = r.u32();
      return req;
    }
    default:
      // RFC 6886 §3.5, R-PMP-2: an unknown opcode below 128 -> result 5 (checked before length).
      return Reject{Reject::Action::Respond, Result::UnsupportedOpcode, op};
  }
}

std::size_t encode_external_address(Result result, std::uint32_t epoch,
                                    std::uint32_t external_v4_host_order,
                                    std::span<std::uint8_t> out) {
  // RFC 6886 §3.2: vers 0, op 128, result, SSSoE, external IPv4 address.
  Writer w{out};
  header(w, static_cast<std::uint8_t>(Op::ExternalAddress), result, epoch);
  w.u32(external_v4_host_order);
  return w.ok() ? kExternalAddressSize : 0;
}

std::size_t encode_map(Op op, Result result, std::uint32_t epoch, std::uint16_t internal_port,
                       std::uint16_t external_port, std::uint32_t lifetime,
                       std::span<std::uint8_t> out) {
  // RFC 6886 §3.3: vers 0, op 128 + op, result, SSSoE, internal port, mapped external port,
  // lifetime in seconds.
  Writer w{out};
  header(w, static_cast<std::uint8_t>(op), result, epoch);
  w.u16(internal_port);
  w.u16(external_port);
  w.u32(lifetime);
  return w.ok() ? kMapResponseSize : 0;
}

std::size_t encode_unsupported_opcode(std::span<const std::uint8_t> request, std::span<std::uint8_t> out) {
  constexpr std::size_t kResultEnd = 4;   // vers, op, result (16 bits)
  constexpr std::size_t kLongest = 1100;  // as long as a PCP message may be (RFC 6887 §7)
  if (out.size() < kResultEnd || request.size() < 2) return 0;
  const std::size_t n = std::min({out.size(), kLongest, std::max(request.size(), kResultEnd)});
  std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), std::uint8_t{0});
  std::copy_n(request.begin(), std::min(request.size(), n), out.begin());
  out[1] = static_cast<std::uint8_t>(out[1] | kResponseBit);
  const auto code = static_cast<std::uint16_t>(Result::UnsupportedOpcode);
  out[2] = static_cast<std::uint8_t>(code >> 8);
  out[3] = static_cast<std::uint8_t>(code & 0xff);
  return n;
}

std::size_t encode_error(std::uint8_t opcode, Result result, std::uint32_t epoch,
                         std::span<std::uint8_t> out) {
  // RFC 6886 §3.5: 8 bytes, vers 0, op, result, SSSoE. We send 128 + op as miniupnpd does;
  // RFC 6886 draws OP = 0 for the unsupported-version reply and clients accept both forms
  // (RFC 6886 draws OP = 0 there; both forms are in use).
  Writer w{out};
  header(w, opcode, result, epoch);
  return w.ok() ? kErrorSize : 0;
}

std::variant<Response, const char*> decode_response(std::span<const std::uint8_t> d) {
  Reader r{d};
  if (!r.has(kErrorSize)) return "shorter than 8 bytes";
  Response resp;
  if (r.u8() != kVersion) return "not NAT-PMP (version != 0)";
  resp.opcode = r.u8();
  resp.result = static_cast<Result>(r.u16());
  resp.epoch = r.u32();
  const bool success = resp.result == Result::Success;
  // Spec correction C16: RFC 6886 §3.5 draws the unsupported-version reply with OP = 0, so an
  // 8-byte error reply with opcode 0 is accepted; any other opcode below 128 is a request.
  if ((resp.opcode & kResponseBit) == 0 && (resp.opcode != 0 || success))
    return "not a response (opcode < 128)";
  switch (resp.opcode) {
    case kResponseBit | static_cast<std::uint8_t>(Op::ExternalAddress):
      if (r.has(4)) {
        resp.external_v4 = r.u32();
      } else if (success) {
        return "external address response shorter than 12 bytes";
      }
      break;
    case kResponseBit | static_cast<std::uint8_t>(Op::MapUdp):
    case kResponseBit | static_cast<std::uint8_t>(Op::MapTcp):
      if (r.has(8)) {
        resp.internal_port = r.u16();
        resp.external_port = r.u16();
        resp.lifetime = r.u32();
      } else if (success) {
        return "map response shorter than 16 bytes";
      }
      break;
    default:
      // An error reply to an opcode we never send (or to op 0 drawn as OP = 0, C16) is still an
      // error reply; a success for an unknown opcode is not something we can read.
      if (success) return "unknown opcode";
      break;
  }
  return resp;
}

}  // namespace pcpd::wire::natpmp
