// SPDX-License-Identifier: GPL-2.0-or-later
// Property checks over pseudo-random datagrams (fixed seed, so failures reproduce): decoding never
// reads out of bounds (run under ASan in the sanitizer build), every verdict is consistent with
// the header rules, and a decoded request survives encode -> decode unchanged.
#include <random>

#include "wire/natpmp.hpp"
#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
using wire::ResultCode;

namespace {

// Mostly plausible PCP: version 2, a known opcode, plausible option TLVs; sometimes garbage.
Bytes random_datagram(std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> pct(0, 99);
  Bytes b;
  if (pct(rng) < 10) {  // pure noise, any length up to 1104
    b.resize(static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 1104)(rng)));
    for (auto& x : b) x = static_cast<std::uint8_t>(byte(rng));
    return b;
  }
  const int op = std::uniform_int_distribution<int>(0, 3)(rng);
  b.resize(24 + (op == 1 ? 36u : op == 2 ? 56u : 0u));
  for (auto& x : b) x = static_cast<std::uint8_t>(byte(rng));
  b[0] = pct(rng) < 95 ? 2 : static_cast<std::uint8_t>(byte(rng));
  b[1] = static_cast<std::uint8_t>(op | (pct(rng) < 5 ? 0x80 : 0));
  const int options = std::uniform_int_distribution<int>(0, 6)(rng);
  static constexpr std::uint8_t kCodes[] = {1, 2, 3, 128, 192, 224, 4, 129, 130, 0, 127, 255};
  for (int i = 0; i < options; ++i) {
    const std::uint8_t code = kCodes[std::uniform_int_distribution<std::size_t>(0, 11)(rng)];
    std::size_t len = 0;
    switch (code) {
      case 1:
      case 224: len = 16; break;
      case 3: len = 20; break;
      case 128:
        len = static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 40)(rng));
        break;
      default: len = pct(rng) < 80 ? 0 : 4;
    }
    if (pct(rng) < 5) len = static_cast<std::size_t>(byte(rng));  // wrong length
    Bytes opt{code, static_cast<std::uint8_t>(byte(rng)), static_cast<std::uint8_t>(len >> 8),
              static_cast<std::uint8_t>(len)};
    for (std::size_t k = 0; k < len; ++k) opt.push_back(static_cast<std::uint8_t>(byte(rng)));
    if (code == 3 && len == 20) opt[5] = pct(rng) < 50 ? 128 : static_cast<std::uint8_t>(byte(rng));
    while (opt.size() % 4 != 0) opt.push_back(0);
    b = cat(b, opt);
  }
  if (pct(rng) < 5)
    b.resize(static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 1104)(rng)));
  return b;
}

}  // namespace

TEST_CASE("R-OPT-8 random datagrams: verdicts follow the header rules, round trips hold") {
  std::mt19937 rng(6887);
  int requests = 0, option_errors = 0, rejects = 0;
  for (int i = 0; i < 20000; ++i) {
    const Bytes b = random_datagram(rng);
    // Exact-size copy so ASan sees any read past the end.
    const Bytes exact(b.begin(), b.end());
    auto d = wire::decode_request(exact);
    if (auto* rej = std::get_if<wire::Reject>(&d)) {
      ++rejects;
      if (exact.size() < 2 || (exact[1] & 0x80) != 0) {
        CHECK(rej->action == wire::Reject::Action::Drop);
      } else if (exact[0] != 2) {
        CHECK(rej->code == ResultCode::UnsuppVersion);
      } else if (exact.size() < 24) {
        CHECK(rej->action == wire::Reject::Action::Drop);
      } else {
        CHECK(rej->action == wire::Reject::Action::Respond);
      }
      if (rej->action == wire::Reject::Action::Respond) {
        Bytes out(1100);
        out.resize(wire::encode_error_response(exact, rej->code, 1800, 1, false, out));
        REQUIRE(out.size() >= 24);
        CHECK(out.size() % 4 == 0);
        CHECK(out[0] == 2);
        CHECK(out[1] == (exact.size() >= 2 ? (exact[1] | 0x80) : 0x80));
        CHECK(out[2] == 0);
      }
      continue;
    }
    const auto& r = std::get<wire::Request>(d);
    ++requests;
    CHECK(exact.size() % 4 == 0);
    CHECK(exact.size() <= 1100);
    if (r.option_error) {
      ++option_errors;
      continue;
    }
    Bytes out(1100);
    out.resize(wire::encode_request(r, out));
    REQUIRE(!out.empty());
    auto again = wire::decode_request(out);
    REQUIRE(std::holds_alternative<wire::Request>(again));
    const auto& a = std::get<wire::Request>(again);
    CHECK_FALSE(a.option_error.has_value());
    CHECK(a.opcode == r.opcode);
    CHECK(a.lifetime == r.lifetime);
    CHECK(a.client_addr == r.client_addr);
    CHECK(a.options.third_party == r.options.third_party);
    CHECK(a.options.prefer_failure == r.options.prefer_failure);
    CHECK(a.options.filter_count == r.options.filter_count);
    CHECK(a.options.description == r.options.description);
    CHECK(a.options.checkpoint_required == r.options.checkpoint_required);
    CHECK(a.options.capability == r.options.capability);
    CHECK(a.options.ignored_optional == 0);
    // The client side reads the same message as a response once the R bit is set.
    out[1] |= 0x80;
    CHECK(std::holds_alternative<wire::Response>(wire::decode_response(out)));
  }
  // The generator must reach every branch, or this test proves little.
  CHECK(requests > 5000);
  CHECK(option_errors > 1000);
  CHECK(rejects > 1000);
  MESSAGE("requests ", requests, ", with option errors ", option_errors, ", rejects ", rejects);
}

TEST_CASE("R-PMP-2 random NAT-PMP datagrams decode without reading past the end") {
  std::mt19937 rng(6886);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    Bytes b(static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 20)(rng)));
    for (auto& x : b) x = static_cast<std::uint8_t>(byte(rng));
    if (!b.empty()) b[0] = 0;
    auto d = wire::natpmp::decode_request(b);
    if (auto* req = std::get_if<wire::natpmp::Request>(&d)) {
      CHECK(b.size() >= 2);
      CHECK(b[1] <= 2);
      if (req->op != wire::natpmp::Op::ExternalAddress) CHECK(b.size() >= 12);
    }
    (void)wire::natpmp::decode_response(b);
  }
}
