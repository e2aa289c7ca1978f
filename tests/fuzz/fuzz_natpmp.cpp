// SPDX-License-Identifier: GPL-2.0-or-later
// fuzz_natpmp: the NAT-PMP (RFC 6886) codec. The input is decoded as a request (server) and as a
// response (client); a decoded request is answered with the encoders and the answer must decode
// back to the same fields; a decoded success response must re-encode to the same bytes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <variant>

#include "fuzz/fuzz_check.hpp"
#include "wire/natpmp.hpp"

namespace natpmp = pcpd::wire::natpmp;

namespace {

std::uint32_t word(std::span<const std::uint8_t> in, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | (at + i < in.size() ? in[at + i] : 0u);
  return v;
}

natpmp::Response decode_ok(std::span<const std::uint8_t> bytes) {
  const auto d = natpmp::decode_response(bytes);
  FUZZ_CHECK(std::holds_alternative<natpmp::Response>(d));
  return std::get<natpmp::Response>(d);
}

void server_side(std::span<const std::uint8_t> in) {
  const auto decoded = natpmp::decode_request(in);
  std::array<std::uint8_t, 16> out{};
  const std::uint32_t epoch = word(in, 0);
  if (const auto* req = std::get_if<natpmp::Request>(&decoded)) {
    FUZZ_CHECK(in.size() >= 2 && in[0] == 0 && in[1] == static_cast<std::uint8_t>(req->op));
    if (req->op == natpmp::Op::ExternalAddress) {
      const std::size_t n = natpmp::encode_external_address(natpmp::Result::Success, epoch, 0xcb007101, out);
      FUZZ_CHECK(n == 12);
      const auto r = decode_ok(std::span<const std::uint8_t>(out.data(), n));
      FUZZ_CHECK(r.opcode == 128 && r.epoch == epoch && r.external_v4 == 0xcb007101);
      return;
    }
    FUZZ_CHECK(in.size() >= 12);  // RFC 6886 §3.3
    const std::size_t n = natpmp::encode_map(req->op, natpmp::Result::Success, epoch, req->internal_port,
                                             req->suggested_external_port, req->lifetime, out);
    FUZZ_CHECK(n == 16);
    const auto r = decode_ok(std::span<const std::uint8_t>(out.data(), n));
    FUZZ_CHECK(r.opcode == 128 + static_cast<unsigned>(req->op) && r.epoch == epoch);
    FUZZ_CHECK(r.internal_port == req->internal_port && r.external_port == req->suggested_external_port);
    FUZZ_CHECK(r.lifetime == req->lifetime && r.result == natpmp::Result::Success);
    // A too-small buffer is refused, never overrun.
    std::array<std::uint8_t, 15> small{};
    FUZZ_CHECK(natpmp::encode_map(req->op, natpmp::Result::Success, epoch, 1, 2, 3, small) == 0);
    return;
  }
  const auto& rej = std::get<natpmp::Reject>(decoded);
  if (rej.action == natpmp::Reject::Action::Drop) return;
  FUZZ_CHECK(in.size() >= 2 && (in[1] & 0x80) == 0);
  FUZZ_CHECK(rej.result != natpmp::Result::Success);
  const std::size_t n = natpmp::encode_error(static_cast<std::uint8_t>(128 | rej.opcode), rej.result, epoch, out);
  FUZZ_CHECK(n == 8);
  const auto r = decode_ok(std::span<const std::uint8_t>(out.data(), n));
  FUZZ_CHECK(r.result == rej.result && r.epoch == epoch && r.opcode == (128 | rej.opcode));
}

void client_side(std::span<const std::uint8_t> in) {
  const auto decoded = natpmp::decode_response(in);
  const auto* r = std::get_if<natpmp::Response>(&decoded);
  if (r == nullptr) {
    FUZZ_CHECK(std::get<const char*>(decoded) != nullptr);
    return;
  }
  FUZZ_CHECK(in.size() >= 8 && in[0] == 0);
  if (r->result != natpmp::Result::Success) return;
  std::array<std::uint8_t, 16> out{};
  std::size_t n = 0;
  if (r->opcode == 128) {
    n = natpmp::encode_external_address(r->result, r->epoch, r->external_v4, out);
    FUZZ_CHECK(n == 12);
  } else {
    FUZZ_CHECK(r->opcode == 129 || r->opcode == 130);
    n = natpmp::encode_map(static_cast<natpmp::Op>(r->opcode - 128), r->result, r->epoch,
                           r->internal_port, r->external_port, r->lifetime, out);
    FUZZ_CHECK(n == 16);
  }
  // Every field of a success response is read: re-encoding gives the received bytes.
  FUZZ_CHECK(in.size() >= n && std::memcmp(in.data(), out.data(), n) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  server_side(in);
  client_side(in);
  return 0;
}
