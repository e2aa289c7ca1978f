// SPDX-License-Identifier: GPL-2.0-or-later
// PCP encoding: encode_response and encode_error_response (server side), encode_request (client).
#include <algorithm>

#include "wire/codec.hpp"
#include "wire/option_codec.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::wire {

namespace {

constexpr std::uint8_t kResponseBit = 0x80;  // RFC 6887 §7.1
constexpr std::uint8_t kOpcodeMask = 0x7f;

std::uint8_t op_byte(Opcode op) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(op) & kOpcodeMask);
}

void write_map(Writer& w, const MapBody& m) {  // RFC 6887 §11.1
  w.bytes(m.nonce);
  w.u8(m.protocol);
  w.zeros(3);
  w.u16(m.internal_port);
  w.u16(m.external_port);
  w.addr(m.external_addr);
}

void write_peer(Writer& w, const PeerBody& p) {  // RFC 6887 §12.1
  w.bytes(p.nonce);
  w.u8(p.protocol);
  w.zeros(3);
  w.u16(p.internal_port);
  w.u16(p.external_port);
  w.addr(p.external_addr);
  w.u16(p.remote_port);
  w.zeros(2);
  w.addr(p.remote_addr);
}

// The opcode data; the body must match the opcode (AUTHENTICATION cannot be encoded here).
void write_body(Writer& w, Opcode op, const Body& body) {
  switch (op) {
    case Opcode::Announce:  // RFC 6887 §14.1: no opcode data
      if (!std::holds_alternative<AnnounceBody>(body)) w.fail();
      return;
    case Opcode::Map:
      if (const auto* m = std::get_if<MapBody>(&body)) return write_map(w, *m);
      break;
    case Opcode::Peer:
      if (const auto* p = std::get_if<PeerBody>(&body)) return write_peer(w, *p);
      break;
    case Opcode::Authentication: break;
  }
  w.fail();
}

// Copies min(n, src.remaining()) bytes, then zeros up to n.
void copy_or_zero(Reader& src, Writer& w, std::size_t n) {
  const std::size_t k = std::min(n, src.remaining());
  w.bytes(src.bytes(k));
  w.zeros(n - k);
}

}  // namespace

std::size_t encode_response(const Response& response, std::span<std::uint8_t> out,
                            const OptionCodes& codes) {
  // RFC 6887 §7: never more than 1100 bytes.
  Writer w{out, kMaxMessageSize};
  // RFC 6887 §7.2, R-HDR-8: version 2 (a version-2-only server, R-VER-2), R bit, opcode,
  // reserved 0, result, lifetime, epoch, 96 reserved bits zero. Response::version is not used.
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(kResponseBit | op_byte(response.opcode)));
  w.u8(0);
  w.u8(static_cast<std::uint8_t>(response.result));
  w.u32(response.lifetime);
  w.u32(response.epoch);
  w.zeros(12);
  write_body(w, response.opcode, response.body);
  detail::encode_options(w, response.options, codes);
  return w.ok() ? w.size() : 0;
}

std::size_t encode_error_response(std::span<const std::uint8_t> request, ResultCode code,
                                  std::uint32_t lifetime, std::uint32_t epoch, bool parsed,
                                  std::span<std::uint8_t> out) {
  // RFC 6887 §8.2, R-HDR-5/6: copy at most 1100 bytes, zero-pad to a multiple of 4; R-VER-2
  // (local decision): a request shorter than 24 bytes is answered as a 24-byte header.
  Reader whole{request};
  Reader src = whole.sub(std::min(request.size(), kMaxMessageSize));
  const std::size_t padded = (src.remaining() + 3u) & ~std::size_t{3};
  const std::size_t total = std::max(kHeaderSize, padded);
  if (out.size() < total) return 0;
  Writer w{out, total};

  std::uint8_t request_op = 0;
  if (src.has(2)) {
    src.skip(1);
    request_op = src.u8();
  }
  src.skip_up_to(10);  // to byte 12: bytes 2..11 are set by the server below
  // RFC 6887 §7.2, R-HDR-6/8: version 2 (R-VER-2: the closest version we support), R bit with
  // the opcode copied, reserved byte 0, result, lifetime, epoch.
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(kResponseBit | (request_op & kOpcodeMask)));
  w.u8(0);
  w.u8(static_cast<std::uint8_t>(code));
  w.u32(lifetime);
  w.u32(epoch);
  // R-HDR-6: the 96 reserved bits are zero for a parsed request; an unparsed one keeps the last
  // 96 bits of the copied client address.
  if (parsed) {
    src.skip_up_to(12);
    w.zeros(12);
  } else {
    copy_or_zero(src, w, 12);
  }
  // R-HDR-7, R-RC-4: the rest is the request, untouched (opcode data, options), then padding.
  copy_or_zero(src, w, total - kHeaderSize);
  return w.ok() ? w.size() : 0;
}

std::size_t encode_error_response(
    std::span<const std::uint8_t> request, ResultCode code, std::uint32_t lifetime,
    std::uint32_t epoch, bool parsed, std::span<std::uint8_t> out,
    const std::optional<std::array<std::uint8_t, kCapabilityBytes>>& capability,
    const OptionCodes& codes) {
  const std::size_t n = encode_error_response(request, code, lifetime, epoch, parsed, out);
  if (n == 0 || !parsed) return n;
  std::size_t body = 0;  // opcode data: RFC 6887 §14.1 (none), §11.1, §12.1
  switch (static_cast<Opcode>(out[1] & kOpcodeMask)) {
    case Opcode::Announce: body = 0; break;
    case Opcode::Map: body = kMapBodySize; break;
    case Opcode::Peer: body = kPeerBodySize; break;
    default: return n;  // no option of ours in an opcode we do not know
  }
  const std::size_t start = kHeaderSize + body;
  if (start > n) return n;

  // The copied options, rewritten without CAPABILITY (hops-00: at most one, ours).
  std::array<std::uint8_t, kMaxMessageSize> copied{};
  const std::size_t copied_len = n - start;
  std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(start), copied_len, copied.begin());
  Reader r{std::span<const std::uint8_t>(copied.data(), copied_len)};
  Writer w{out.subspan(start), kMaxMessageSize - start};
  bool framed = true;
  while (!r.at_end()) {
    // RFC 6887 §7.3: code(1) | reserved(1) | length(2) | data, padded to 4 bytes.
    if (!r.has(4)) {
      framed = false;
      break;
    }
    Reader peek = r;
    const std::uint8_t opt = peek.u8();
    peek.skip(1);
    const std::size_t padded = (std::size_t{peek.u16()} + 3u) & ~std::size_t{3};
    if (!peek.has(padded)) {
      framed = false;
      break;
    }
    const auto whole = r.bytes(4 + padded);
    if (opt != codes.capability) w.bytes(whole);
  }
  if (!framed) w.bytes(r.bytes(r.remaining()));  // the unframed rest, as it was
  std::size_t total = start + w.size();
  if (framed && capability) {
    Writer add = w;  // only committed if the option fits (R-CAP-8 within RFC 6887 §7)
    add.u8(codes.capability);
    add.u8(0);
    add.u16(static_cast<std::uint16_t>(kCapabilityBytes));
    add.bytes(*capability);
    if (add.ok()) total = start + add.size();
  }
  return w.ok() ? total : n;
}

std::size_t encode_request(const Request& request, std::span<std::uint8_t> out,
                           const OptionCodes& codes) {
  Writer w{out, kMaxMessageSize};
  // RFC 6887 §7.1. The version is the caller's (2 by default; tests send others).
  w.u8(request.version);
  w.u8(op_byte(request.opcode));
  w.u16(0);  // reserved
  w.u32(request.lifetime);
  w.addr(request.client_addr);
  write_body(w, request.opcode, request.body);
  detail::encode_options(w, request.options, codes);
  return w.ok() ? w.size() : 0;
}

}  // namespace pcpd::wire
