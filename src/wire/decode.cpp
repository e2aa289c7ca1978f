// SPDX-License-Identifier: GPL-2.0-or-later
// PCP decoding: decode_request (server side) and decode_response (client side).
#include "wire/codec.hpp"
#include "wire/option_codec.hpp"
#include "wire/reader.hpp"

namespace pcpd::wire {

namespace {

constexpr std::uint8_t kResponseBit = 0x80;  // RFC 6887 §7.1: R bit of the second byte
constexpr std::uint8_t kOpcodeMask = 0x7f;

Reject drop() { return Reject{Reject::Action::Drop, ResultCode::MalformedRequest}; }
Reject respond(ResultCode code) { return Reject{Reject::Action::Respond, code}; }

bool known_opcode(std::uint8_t op) {
  return op == static_cast<std::uint8_t>(Opcode::Announce) ||
         op == static_cast<std::uint8_t>(Opcode::Map) ||
         op == static_cast<std::uint8_t>(Opcode::Peer);
}

std::size_t body_size(Opcode op) {
  switch (op) {
    case Opcode::Map: return kMapBodySize;    // RFC 6887 §11.1
    case Opcode::Peer: return kPeerBodySize;  // RFC 6887 §12.1
    default: return 0;                        // RFC 6887 §14.1: ANNOUNCE has no opcode data
  }
}

// Precondition: r holds at least body_size(op) bytes. Reserved fields are skipped (R-HDR-9).
Body read_body(Reader& r, Opcode op) {
  if (op == Opcode::Announce) return AnnounceBody{};
  if (op == Opcode::Map) {  // RFC 6887 §11.1
    MapBody m;
    r.copy_to(m.nonce);
    m.protocol = r.u8();
    r.skip(3);
    m.internal_port = r.u16();
    m.external_port = r.u16();
    m.external_addr = r.addr();
    return m;
  }
  PeerBody p;  // RFC 6887 §12.1
  r.copy_to(p.nonce);
  p.protocol = r.u8();
  r.skip(3);
  p.internal_port = r.u16();
  p.external_port = r.u16();
  p.external_addr = r.addr();
  p.remote_port = r.u16();
  r.skip(2);
  p.remote_addr = r.addr();
  return p;
}

}  // namespace

std::optional<LookupHint> peek_lookup(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kHeaderSize + kMapBodySize || datagram[0] != kVersion || (datagram[1] & kResponseBit) != 0)
    return std::nullopt;
  const auto op = static_cast<Opcode>(datagram[1] & kOpcodeMask);
  if (op != Opcode::Map && (op != Opcode::Peer || datagram.size() < kHeaderSize + kPeerBodySize)) return std::nullopt;
  Reader r{datagram.subspan(kHeaderSize)};
  LookupHint h;
  h.opcode = op;
  r.skip(12);  // nonce
  h.protocol = r.u8();
  r.skip(3);
  h.internal_port = r.u16();
  if (op == Opcode::Peer) {
    r.skip(2 + 16);  // suggested external port and address
    h.remote_port = r.u16();
    r.skip(2);
    h.remote_addr = r.addr();
  }
  return h;
}

DecodedRequest decode_request(std::span<const std::uint8_t> datagram, const OptionCodes& codes) {
  Reader r{datagram};
  // RFC 6887 §8.2, R-HDR-3: fewer than 2 octets -> silently drop.
  if (!r.has(2)) return drop();
  const std::uint8_t version = r.u8();
  const std::uint8_t op_byte = r.u8();
  // RFC 6887 §8.2, R-HDR-4: a response (R bit set) is dropped, before the version check.
  if ((op_byte & kResponseBit) != 0) return drop();
  // RFC 6887 §9, R-VER-2: any other version (NAT-PMP's 0 included) -> UNSUPP_VERSION, whatever
  // the length. The daemon routes version 0 to NAT-PMP before it calls this.
  if (version != kVersion) return respond(ResultCode::UnsuppVersion);
  // RFC 6887 §8.2, R-HDR-5 (4): supported version but shorter than the header -> silently drop.
  if (datagram.size() < kHeaderSize) return drop();
  // RFC 6887 §7, §8.2, R-HDR-5 (6): too long or not a multiple of 4 -> MALFORMED_REQUEST.
  if (datagram.size() > kMaxMessageSize || datagram.size() % 4 != 0)
    return respond(ResultCode::MalformedRequest);
  // RFC 6887 §8.2, R-HDR-7: unknown opcode (AUTHENTICATION included) -> UNSUPP_OPCODE. Local
  // decision (R-HDR-5): after the length checks, and no "too short" for an unknown opcode.
  const auto op_value = static_cast<std::uint8_t>(op_byte & kOpcodeMask);
  if (!known_opcode(op_value)) return respond(ResultCode::UnsuppOpcode);

  Request req;
  req.version = version;
  req.opcode = static_cast<Opcode>(op_value);
  r.skip(2);  // reserved (R-HDR-9)
  req.lifetime = r.u32();
  req.client_addr = r.addr();
  // RFC 6887 §8.2, R-HDR-5 (6): too short for the opcode -> MALFORMED_REQUEST.
  if (!r.has(body_size(req.opcode))) return respond(ResultCode::MalformedRequest);
  Reader body = r.sub(body_size(req.opcode));
  req.body = read_body(body, req.opcode);
  // RFC 6887 §7.3: options; the first error is kept for the server, which checks
  // ADDRESS_MISMATCH before it (docs/design.md "Order of checks").
  req.option_error =
      detail::decode_options(r, req.opcode, detail::OptionMode::Request, codes, req.options);
  req.raw = datagram;
  return req;
}

DecodedResponse decode_response(std::span<const std::uint8_t> datagram, const OptionCodes& codes) {
  // RFC 6887 §8.3: the client ignores anything that is not a well-formed response.
  if (datagram.size() < kHeaderSize) return ResponseError{"shorter than 24 bytes"};
  if (datagram.size() > kMaxMessageSize) return ResponseError{"longer than 1100 bytes"};
  if (datagram.size() % 4 != 0) return ResponseError{"length not a multiple of 4"};
  Reader r{datagram};
  Response resp;
  resp.version = r.u8();
  const std::uint8_t op_byte = r.u8();
  if ((op_byte & kResponseBit) == 0) return ResponseError{"not a response (R bit clear)"};
  const auto op_value = static_cast<std::uint8_t>(op_byte & kOpcodeMask);
  if (!known_opcode(op_value)) return ResponseError{"unknown opcode"};
  resp.opcode = static_cast<Opcode>(op_value);
  r.skip(1);  // reserved
  resp.result = static_cast<ResultCode>(r.u8());
  resp.lifetime = r.u32();
  resp.epoch = r.u32();
  r.skip(12);  // reserved (or the copied client-address bits of an unparsed request)
  // RFC 6887 §11.1, §12.1: MAP and PEER responses carry their opcode data, errors included
  // (an error response copies the request, R-RC-4).
  if (!r.has(body_size(resp.opcode))) return ResponseError{"opcode data too short"};
  Reader body = r.sub(body_size(resp.opcode));
  resp.body = read_body(body, resp.opcode);
  if (detail::decode_options(r, resp.opcode, detail::OptionMode::Response, codes, resp.options))
    return ResponseError{"malformed option"};
  return resp;
}

}  // namespace pcpd::wire
