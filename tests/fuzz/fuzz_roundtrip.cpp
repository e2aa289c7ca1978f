// SPDX-License-Identifier: GPL-2.0-or-later
// fuzz_roundtrip: decode -> encode -> decode gives the same message, for requests (server decode,
// client encode) and responses (client decode, server encode). Only messages whose options
// decoded without error are compared; unknown optional options are not re-encoded (RFC 6887
// §7.3: skipped), so Options::ignored_optional is not compared.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "fuzz/fuzz_check.hpp"
#include "wire/codec.hpp"

namespace wire = pcpd::wire;

namespace {

bool same_body(const wire::Body& a, const wire::Body& b) {
  if (a.index() != b.index()) return false;
  if (const auto* m = std::get_if<wire::MapBody>(&a)) {
    const auto& n = std::get<wire::MapBody>(b);
    return m->nonce == n.nonce && m->protocol == n.protocol && m->internal_port == n.internal_port &&
           m->external_port == n.external_port && m->external_addr == n.external_addr;
  }
  if (const auto* p = std::get_if<wire::PeerBody>(&a)) {
    const auto& q = std::get<wire::PeerBody>(b);
    return p->nonce == q.nonce && p->protocol == q.protocol && p->internal_port == q.internal_port &&
           p->external_port == q.external_port && p->external_addr == q.external_addr &&
           p->remote_port == q.remote_port && p->remote_addr == q.remote_addr;
  }
  return true;
}

bool same_options(const wire::Options& a, const wire::Options& b) {
  if (a.filter_count != b.filter_count) return false;
  for (std::size_t i = 0; i < a.filter_count; ++i)
    if (!(a.filters[i] == b.filters[i])) return false;
  return a.third_party == b.third_party && a.prefer_failure == b.prefer_failure &&
         a.description == b.description && a.checkpoint_required == b.checkpoint_required &&
         a.capability == b.capability;
}

void roundtrip_request(std::span<const std::uint8_t> in, const wire::OptionCodes& codes) {
  const auto first = wire::decode_request(in, codes);
  const auto* req = std::get_if<wire::Request>(&first);
  if (req == nullptr || req->option_error) return;
  std::array<std::uint8_t, wire::kMaxMessageSize> buf{};
  const std::size_t n = wire::encode_request(*req, buf, codes);
  // Re-encoding drops only skipped options, so it is never longer than the original.
  FUZZ_CHECK(n >= wire::kHeaderSize && n <= in.size() && n % 4 == 0);
  const auto second = wire::decode_request(std::span<const std::uint8_t>(buf.data(), n), codes);
  const auto* again = std::get_if<wire::Request>(&second);
  FUZZ_CHECK(again != nullptr);
  FUZZ_CHECK(!again->option_error);
  FUZZ_CHECK(again->opcode == req->opcode);
  FUZZ_CHECK(again->lifetime == req->lifetime);
  FUZZ_CHECK(again->client_addr == req->client_addr);
  FUZZ_CHECK(same_body(again->body, req->body));
  FUZZ_CHECK(same_options(again->options, req->options));
  FUZZ_CHECK(again->options.ignored_optional == 0);
  // Encoding is deterministic: a second encode gives the same bytes.
  std::array<std::uint8_t, wire::kMaxMessageSize> buf2{};
  FUZZ_CHECK(wire::encode_request(*again, buf2, codes) == n);
  FUZZ_CHECK(buf == buf2);
}

void roundtrip_response(std::span<const std::uint8_t> in, const wire::OptionCodes& codes) {
  const auto first = wire::decode_response(in, codes);
  const auto* resp = std::get_if<wire::Response>(&first);
  if (resp == nullptr) return;
  std::array<std::uint8_t, wire::kMaxMessageSize> buf{};
  const std::size_t n = wire::encode_response(*resp, buf, codes);
  // A client keeps the last of a repeated option (§8.3 leniency), so n may be shorter.
  FUZZ_CHECK(n >= wire::kHeaderSize && n <= in.size() && n % 4 == 0);
  const auto second = wire::decode_response(std::span<const std::uint8_t>(buf.data(), n), codes);
  const auto* again = std::get_if<wire::Response>(&second);
  FUZZ_CHECK(again != nullptr);
  FUZZ_CHECK(again->opcode == resp->opcode);
  FUZZ_CHECK(again->result == resp->result);
  FUZZ_CHECK(again->lifetime == resp->lifetime);
  FUZZ_CHECK(again->epoch == resp->epoch);
  FUZZ_CHECK(same_body(again->body, resp->body));
  FUZZ_CHECK(same_options(again->options, resp->options));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  static const wire::OptionCodes kCodes[] = {wire::OptionCodes{}, wire::OptionCodes{193, 130}};
  for (const auto& codes : kCodes) {
    roundtrip_request(in, codes);
    roundtrip_response(in, codes);
  }
  return 0;
}
