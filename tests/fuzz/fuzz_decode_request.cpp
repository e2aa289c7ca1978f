// SPDX-License-Identifier: GPL-2.0-or-later
// fuzz_decode_request: the server's PCP decoder (wire::decode_request) and the error response it
// leads to (encode_error_response), on any bytes. Invariants: the length checks of RFC 6887 §8.2
// hold for every decoded request, views stay inside the datagram, and every error response is
// 24..1100 bytes, a multiple of 4, version 2 with the R bit and the request's opcode (R-HDR-6).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "fuzz/fuzz_check.hpp"
#include "wire/codec.hpp"

namespace wire = pcpd::wire;

namespace {

void check_error_response(std::span<const std::uint8_t> in, std::span<const std::uint8_t> out) {
  FUZZ_CHECK(out.size() >= wire::kHeaderSize && out.size() <= wire::kMaxMessageSize);
  FUZZ_CHECK(out.size() % 4 == 0);
  FUZZ_CHECK(out[0] == wire::kVersion);
  FUZZ_CHECK((out[1] & 0x80) != 0);
  if (in.size() >= 2) FUZZ_CHECK((out[1] & 0x7f) == (in[1] & 0x7f));
  FUZZ_CHECK(out[2] == 0);
}

void check_request(const wire::Request& req, std::span<const std::uint8_t> in) {
  // RFC 6887 §8.2: only version 2, 24..1100 bytes, a multiple of 4, reaches a Request.
  FUZZ_CHECK(req.version == wire::kVersion);
  FUZZ_CHECK(in.size() >= wire::kHeaderSize && in.size() <= wire::kMaxMessageSize);
  FUZZ_CHECK(in.size() % 4 == 0);
  FUZZ_CHECK(req.raw.data() == in.data() && req.raw.size() == in.size());
  FUZZ_CHECK(req.options.filter_count <= wire::kMaxFilters);
  switch (req.opcode) {
    case wire::Opcode::Announce: FUZZ_CHECK(std::holds_alternative<wire::AnnounceBody>(req.body)); break;
    case wire::Opcode::Map:
      FUZZ_CHECK(std::holds_alternative<wire::MapBody>(req.body));
      FUZZ_CHECK(in.size() >= wire::kHeaderSize + wire::kMapBodySize);
      break;
    case wire::Opcode::Peer:
      FUZZ_CHECK(std::holds_alternative<wire::PeerBody>(req.body));
      FUZZ_CHECK(in.size() >= wire::kHeaderSize + wire::kPeerBodySize);
      break;
    case wire::Opcode::Authentication: FUZZ_CHECK(false); break;  // never decoded (R-HDR-7)
  }
  if (const auto& d = req.options.description) {
    FUZZ_CHECK(d->size() <= wire::kMaxDescription);
    const auto* begin = reinterpret_cast<const std::uint8_t*>(d->data());
    FUZZ_CHECK(d->empty() || (begin >= in.data() && begin + d->size() <= in.data() + in.size()));
  }
  // Without an option error the options are well formed: at most one of each single option.
  if (!req.option_error) FUZZ_CHECK(req.opcode == wire::Opcode::Map || req.options.filter_count == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  // The default option codes and another configuration (CHECKPOINT_REQUIRED / CAPABILITY codes
  // are configurable, RFC 7767 §4, hops-00).
  static const wire::OptionCodes kCodes[] = {wire::OptionCodes{}, wire::OptionCodes{193, 130}};
  static const std::array<std::uint8_t, wire::kCapabilityBytes> kCap{0x40, 0, 0, 0, 0, 0, 0, 0,
                                                                    0, 0, 0, 0, 0, 0, 0x01, 0x80};
  std::array<std::uint8_t, 1200> out{};
  for (const auto& codes : kCodes) {
    const auto decoded = wire::decode_request(in, codes);
    if (const auto* req = std::get_if<wire::Request>(&decoded)) {
      check_request(*req, in);
      const auto code = req->option_error.value_or(wire::ResultCode::NotAuthorized);
      std::size_t n = wire::encode_error_response(in, code, 1800, 77, true, out);
      FUZZ_CHECK(n == in.size());
      check_error_response(in, std::span<const std::uint8_t>(out.data(), n));
      // hops-00 R-CAP-8: the copy with CAPABILITY replaced, with and without a set to append.
      for (bool with : {false, true}) {
        std::optional<std::array<std::uint8_t, wire::kCapabilityBytes>> cap;
        if (with) cap = kCap;
        n = wire::encode_error_response(in, code, 30, 77, true, out, cap, codes);
        check_error_response(in, std::span<const std::uint8_t>(out.data(), n));
        // A well-formed request's error copy is well formed too: the client can read it.
        if (!req->option_error) {
          const auto back = wire::decode_response(std::span<const std::uint8_t>(out.data(), n), codes);
          if (const auto* resp = std::get_if<wire::Response>(&back)) {
            FUZZ_CHECK(resp->opcode == req->opcode);
            FUZZ_CHECK(resp->result == code);
            FUZZ_CHECK(resp->options.capability.has_value() == with ||
                       n + 20 > wire::kMaxMessageSize);
          }
        }
      }
    } else {
      const auto& rej = std::get<wire::Reject>(decoded);
      if (rej.action == wire::Reject::Action::Respond) {
        FUZZ_CHECK(size >= 2);
        const std::size_t n = wire::encode_error_response(in, rej.code, 1800, 77, false, out);
        check_error_response(in, std::span<const std::uint8_t>(out.data(), n));
        FUZZ_CHECK(n == std::max<std::size_t>(wire::kHeaderSize,
                                              (std::min(size, wire::kMaxMessageSize) + 3) & ~std::size_t{3}));
      }
    }
  }
  return 0;
}
