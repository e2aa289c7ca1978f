// SPDX-License-Identifier: GPL-2.0-or-later
// wire::CapabilitySet and the bit table (draft-boucadair-hops-capability-discovery-00,
// docs/design.md "CAPABILITY": bits MSB first, bit n = data byte n/8, mask 0x80 >> n%8), the CAPABILITY
// option on the wire, and the error response that carries it (R-CAP-8).
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "wire/capability.hpp"
#include "wire/codec.hpp"
#include "wire_vectors.hpp"

using namespace pcpd;
using namespace pcpd::test;
using wire::CapabilitySet;
using wire::ResultCode;

namespace {

// The one data byte and mask of a bit, or a failure naming the bit.
void expect_only(const CapabilitySet& s, std::size_t byte, std::uint8_t mask) {
  for (std::size_t i = 0; i < wire::kCapabilityBytes; ++i) {
    CAPTURE(i);
    CHECK(s.bytes()[i] == (i == byte ? mask : 0));
  }
}

CapabilitySet named(std::initializer_list<const char*> names) {
  CapabilitySet s;
  for (const char* n : names) REQUIRE(s.set(std::string_view(n)));
  return s;
}

Bytes req(const char* name) { return vec("pcp_requests.hex", name); }

// The CAPABILITY options (default code 224) found walking the options of `msg` from `start`.
std::vector<CapabilitySet::Bytes> capability_options(const Bytes& msg, std::size_t start) {
  std::vector<CapabilitySet::Bytes> out;
  std::size_t i = start;
  while (i + 4 <= msg.size()) {
    const std::size_t len = (std::size_t{msg[i + 2]} << 8) | msg[i + 3];
    const std::size_t padded = (len + 3) & ~std::size_t{3};
    REQUIRE(i + 4 + padded <= msg.size());
    if (msg[i] == 224) {
      REQUIRE(len == 16);
      CapabilitySet::Bytes b{};
      std::copy_n(msg.begin() + static_cast<std::ptrdiff_t>(i + 4), 16, b.begin());
      out.push_back(b);
    }
    i += 4 + padded;
  }
  CHECK(i == msg.size());
  return out;
}

Bytes error_with(const Bytes& request, ResultCode code,
                 const std::optional<CapabilitySet::Bytes>& capability, bool parsed = true,
                 std::size_t room = 1100) {
  Bytes out(room);
  out.resize(wire::encode_error_response(request, code, 1800, 7, parsed, out, capability, {}));
  return out;
}

}  // namespace

TEST_CASE("CAPABILITY bit table: the hops-00 list, in bit order, names unique") {
  const std::array<unsigned, 20> expected{0,   1,   2,   4,   5,   6,   8,   9,   16,  32,
                                          64,  119, 120, 121, 122, 123, 124, 125, 126, 127};
  REQUIRE(wire::kCapabilityBits.size() == expected.size());
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(wire::kCapabilityBits[i].bit == expected[i]);
    CHECK(names.insert(wire::kCapabilityBits[i].name).second);
    CHECK_FALSE(wire::kCapabilityBits[i].description.empty());
  }
  // Unassigned bits (docs/design.md "CAPABILITY") have no entry.
  for (unsigned bit : {3u, 7u, 10u, 15u, 17u, 31u, 33u, 63u, 65u, 118u})
    CHECK(wire::capability_by_bit(bit) == nullptr);
  CHECK(wire::capability_by_name("nat44")->bit == 1);
  CHECK(wire::capability_by_name("authentication")->bit == wire::kCapabilityAuthBit);
  CHECK(wire::capability_by_name("NAT44") == nullptr);
  CHECK(wire::capability_by_name("") == nullptr);
}

TEST_CASE("CAPABILITY bit numbering: every defined bit is data byte n/8, mask 0x80 >> n%8") {
  for (const auto& b : wire::kCapabilityBits) {
    CAPTURE(b.name);
    CapabilitySet s;
    REQUIRE(s.set(b.name));
    expect_only(s, b.bit / 8u, static_cast<std::uint8_t>(0x80u >> (b.bit % 8u)));
    CHECK(s.test(b.bit));
    CHECK(s.test(b.name));
    CHECK(s.count() == 1);
    CHECK(s.names() == std::vector<std::string>{std::string(b.name)});
    CHECK(CapabilitySet::from_bytes(s.bytes()) == s);
  }
}

TEST_CASE("CAPABILITY bit numbering: the worked examples of the bit numbering") {
  // Option-relative byte 4 + n/8 is data byte n/8.
  expect_only(named({"authentication"}), 0, 0x80);  // A = bit 0
  expect_only(named({"nat44"}), 0, 0x40);            // NAT44 = data byte 0 mask 0x40
  expect_only(named({"nat64-stateful"}), 0, 0x08);
  expect_only(named({"prr"}), 1, 0x80);
  expect_only(named({"port-set"}), 1, 0x40);
  expect_only(named({"ipv4-firewall"}), 2, 0x80);
  expect_only(named({"ipv6-firewall"}), 4, 0x80);
  expect_only(named({"nptv6"}), 8, 0x80);
  expect_only(named({"tcp"}), 14, 0x01);             // TCP = bit 119
  expect_only(named({"udp"}), 15, 0x80);             // UDP = bit 120
  expect_only(named({"udp-lite"}), 15, 0x40);
  expect_only(named({"dccp"}), 15, 0x20);
  expect_only(named({"sctp"}), 15, 0x10);
  expect_only(named({"mptcp"}), 15, 0x08);
  expect_only(named({"dscp-remarking"}), 15, 0x04);
  expect_only(named({"flowdata"}), 15, 0x02);
  expect_only(named({"ilnp"}), 15, 0x01);            // ILNP = bit 127
}

TEST_CASE("CAPABILITY set: clear, unknown names, out of range bits, names of unassigned bits") {
  CapabilitySet s = named({"nat44", "tcp", "udp"});
  CHECK(s.to_string() == "nat44,tcp,udp");
  s.set(119, false);
  CHECK(s.to_string() == "nat44,udp");
  CHECK_FALSE(s.set(std::string_view("warp-drive")));
  CHECK_FALSE(s.test(std::string_view("warp-drive")));
  s.set(128);  // ignored
  CHECK_FALSE(s.test(128));
  s.set(45);
  CHECK(s.names() == std::vector<std::string>{"nat44", "bit45", "udp"});
  CHECK(CapabilitySet{}.to_string() == "none");
  CHECK(CapabilitySet{}.empty());
  CHECK_FALSE(s.empty());
}

TEST_CASE("CAPABILITY transport bits follow the IANA protocol numbers") {
  CHECK(wire::capability_bit_for_protocol(6) == 119);
  CHECK(wire::capability_bit_for_protocol(17) == 120);
  CHECK(wire::capability_bit_for_protocol(136) == 121);
  CHECK(wire::capability_bit_for_protocol(33) == 122);
  CHECK(wire::capability_bit_for_protocol(132) == 123);
  CHECK_FALSE(wire::capability_bit_for_protocol(0).has_value());
  CHECK_FALSE(wire::capability_bit_for_protocol(1).has_value());
}

TEST_CASE("R-CAP-1 CAPABILITY option on the wire: code 224, length 16, the set in bytes 4..19") {
  wire::Response r;
  r.opcode = wire::Opcode::Announce;
  r.epoch = 42;
  r.options.capability = named({"nat44", "tcp", "udp"}).bytes();
  std::array<std::uint8_t, 64> out{};
  const std::size_t n = wire::encode_response(r, out);
  CHECK(Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)) ==
        vec("pcp_responses.hex", "announce_capability"));
  auto d = wire::decode_response(std::span<const std::uint8_t>(out.data(), n));
  REQUIRE(std::holds_alternative<wire::Response>(d));
  const auto& o = std::get<wire::Response>(d).options;
  REQUIRE(o.capability.has_value());
  CHECK(CapabilitySet::from_bytes(*o.capability).names() ==
        std::vector<std::string>{"nat44", "tcp", "udp"});
}

TEST_CASE("R-CAP-8 error response: the copied zero CAPABILITY is replaced by the set") {
  const Bytes request = req("announce_capability");
  const auto set = named({"nat44", "udp"}).bytes();
  const Bytes out = error_with(request, ResultCode::UnsuppProtocol, set);
  REQUIRE(out.size() == request.size());
  CHECK(out[3] == static_cast<std::uint8_t>(ResultCode::UnsuppProtocol));
  const auto opts = capability_options(out, 24);
  REQUIRE(opts.size() == 1);
  CHECK(opts[0] == set);
}

TEST_CASE("R-CAP-8 error response: a set is appended to a request without CAPABILITY") {
  const Bytes request = req("map");
  const auto set = named({"nat44", "tcp"}).bytes();
  const Bytes out = error_with(request, ResultCode::UnsuppProtocol, set);
  REQUIRE(out.size() == request.size() + 20);
  CHECK(Bytes(out.begin() + 24, out.begin() + 60) == Bytes(request.begin() + 24, request.begin() + 60));
  const auto opts = capability_options(out, 60);
  REQUIRE(opts.size() == 1);
  CHECK(opts[0] == set);
  auto d = wire::decode_response(out);
  REQUIRE(std::holds_alternative<wire::Response>(d));
  CHECK(std::get<wire::Response>(d).options.capability == set);
}

TEST_CASE("R-CAP-5 error response without a set: a copied CAPABILITY is removed, others kept") {
  const Bytes request = req("map_all_options");
  const Bytes plain = error_with(request, ResultCode::NotAuthorized, std::nullopt, true);
  CHECK(plain.size() == request.size() - 20);
  CHECK(capability_options(plain, 60).empty());
  auto d = wire::decode_response(plain);
  REQUIRE(std::holds_alternative<wire::Response>(d));
  const auto& o = std::get<wire::Response>(d).options;
  CHECK_FALSE(o.capability.has_value());
  CHECK(o.description.has_value());
  CHECK(o.filter_count == 2);
  CHECK(o.third_party.has_value());
  CHECK(o.checkpoint_required);
}

TEST_CASE("R-CAP-8 error response stays within 1100 bytes; unparsed requests are a plain copy") {
  // A MAP filled with FILTERs (24 bytes each) until another 20-byte option would pass 1100.
  Bytes request = req("map");
  const Bytes filter = vec("pcp_requests.hex", "opt_filter_v4");
  while (request.size() + filter.size() <= 1100) request = cat(request, filter);
  REQUIRE(request.size() + 20 > 1100);
  const auto set = named({"tcp"}).bytes();
  const Bytes out = error_with(request, ResultCode::UnsuppProtocol, set);
  CHECK(out.size() == request.size());  // no room: left out
  CHECK(capability_options(out, 60).empty());
  // An output buffer too small for the option: left out as well.
  const Bytes small = error_with(req("map"), ResultCode::UnsuppProtocol, set, true, 60);
  CHECK(small.size() == 60);
  // Not parsed: the copy as encode_error_response makes it.
  const Bytes raw = error_with(req("announce_capability"), ResultCode::MalformedRequest, set, false);
  Bytes plain(1100);
  plain.resize(wire::encode_error_response(req("announce_capability"), ResultCode::MalformedRequest,
                                           1800, 7, false, plain));
  CHECK(raw == plain);
}

TEST_CASE("docs/capability.md lists every bit of the table with its name, byte and mask") {
  std::ifstream in(std::string(PCPD_SOURCE_DIR) + "/docs/capability.md");
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  for (const auto& b : wire::kCapabilityBits) {
    CAPTURE(b.name);
    char mask[8];
    std::snprintf(mask, sizeof mask, "0x%02x", 0x80u >> (b.bit % 8u));
    const std::string row = "| " + std::to_string(b.bit) + " | `" + std::string(b.name) + "` | " +
                            std::string(b.description) + " | " + std::string(b.reference) + " | " +
                            std::to_string(b.bit / 8u) + " / " + mask + " |";
    CHECK(text.str().find(row) != std::string::npos);
  }
}
