// SPDX-License-Identifier: GPL-2.0-or-later
// wire::to_string / option_name: the RFC names used in logs, JSON and docs.
#include <optional>
#include <set>
#include <string>

#include "wire/protocol_names.hpp"
#include "wire_vectors.hpp"

using namespace pcpd;
using wire::ResultCode;

TEST_CASE("to_string(ResultCode) gives the RFC 6887 and RFC 7652 names") {
  const char* names[] = {"SUCCESS",
                         "UNSUPP_VERSION",
                         "NOT_AUTHORIZED",
                         "MALFORMED_REQUEST",
                         "UNSUPP_OPCODE",
                         "UNSUPP_OPTION",
                         "MALFORMED_OPTION",
                         "NETWORK_FAILURE",
                         "NO_RESOURCES",
                         "UNSUPP_PROTOCOL",
                         "USER_EX_QUOTA",
                         "CANNOT_PROVIDE_EXTERNAL",
                         "ADDRESS_MISMATCH",
                         "EXCESSIVE_REMOTE_PEERS",
                         "INITIATION",
                         "AUTHENTICATION_REQUIRED",
                         "AUTHENTICATION_FAILED",
                         "AUTHENTICATION_SUCCEEDED",
                         "AUTHORIZATION_FAILED",
                         "SESSION_TERMINATED",
                         "UNKNOWN_SESSION_ID",
                         "DOWNGRADE_ATTACK_DETECTED",
                         "AUTHENTICATION_REQUEST",
                         "AUTHENTICATION_REPLY"};
  for (std::uint8_t code = 0; code < 24; ++code) {
    CAPTURE(code);
    CHECK(std::string(wire::to_string(static_cast<ResultCode>(code))) == names[code]);
  }
  CHECK(std::string(wire::to_string(static_cast<ResultCode>(24))) == "UNKNOWN");
  CHECK(std::string(wire::to_string(static_cast<ResultCode>(255))) == "UNKNOWN");
}

TEST_CASE("to_string(Opcode) gives the RFC names") {
  CHECK(std::string(wire::to_string(wire::Opcode::Announce)) == "ANNOUNCE");
  CHECK(std::string(wire::to_string(wire::Opcode::Map)) == "MAP");
  CHECK(std::string(wire::to_string(wire::Opcode::Peer)) == "PEER");
  CHECK(std::string(wire::to_string(wire::Opcode::Authentication)) == "AUTHENTICATION");
  CHECK(std::string(wire::to_string(static_cast<wire::Opcode>(9))) == "UNKNOWN");
}

TEST_CASE("option_name covers the assigned codes and the configurable ones") {
  CHECK(std::string(wire::option_name(1)) == "THIRD_PARTY");
  CHECK(std::string(wire::option_name(2)) == "PREFER_FAILURE");
  CHECK(std::string(wire::option_name(3)) == "FILTER");
  CHECK(std::string(wire::option_name(4)) == "NONCE");
  CHECK(std::string(wire::option_name(12)) == "ID_INDICATOR");
  CHECK(std::string(wire::option_name(128)) == "DESCRIPTION");
  CHECK(std::string(wire::option_name(129)) == "PREFIX64");
  CHECK(std::string(wire::option_name(130)) == "PORT_SET");
  CHECK(std::string(wire::option_name(192)) == "CHECKPOINT_REQUIRED");
  CHECK(std::string(wire::option_name(224)) == "CAPABILITY");
  CHECK(std::string(wire::option_name(0)) == "UNKNOWN");
  CHECK(std::string(wire::option_name(255)) == "UNKNOWN");
  wire::OptionCodes codes;
  codes.checkpoint_required = 200;
  codes.capability = 240;
  CHECK(std::string(wire::option_name(200, codes)) == "CHECKPOINT_REQUIRED");
  CHECK(std::string(wire::option_name(240, codes)) == "CAPABILITY");
  CHECK(std::string(wire::option_name(192, codes)) == "UNKNOWN");
  // Every RFC 7652 code has a distinct name.
  std::set<std::string> seen;
  for (std::uint8_t c = 4; c <= 12; ++c) seen.insert(wire::option_name(c));
  CHECK(seen.size() == 9);
  CHECK(seen.count("UNKNOWN") == 0);
}

// One parser for pcpd.conf, pcpctl and pcpc: the names each of them accepts are the same.
TEST_CASE("protocol names: parse and print, names and numbers") {
  using pcpd::wire::parse_protocol;
  using pcpd::wire::protocol_name;
  CHECK(parse_protocol("tcp") == std::optional<std::uint8_t>(6));
  CHECK(parse_protocol("udp") == std::optional<std::uint8_t>(17));
  CHECK(parse_protocol("sctp") == std::optional<std::uint8_t>(132));
  CHECK(parse_protocol("dccp") == std::optional<std::uint8_t>(33));
  CHECK(parse_protocol("udplite") == std::optional<std::uint8_t>(136));
  CHECK(parse_protocol("all") == std::optional<std::uint8_t>(0));
  CHECK(parse_protocol("47") == std::optional<std::uint8_t>(47));
  CHECK(parse_protocol("0") == std::optional<std::uint8_t>(0));
  CHECK(parse_protocol("255") == std::optional<std::uint8_t>(255));
  CHECK_FALSE(parse_protocol("256").has_value());
  CHECK_FALSE(parse_protocol("").has_value());
  CHECK_FALSE(parse_protocol("TCP").has_value());
  CHECK_FALSE(parse_protocol("6x").has_value());
  CHECK_FALSE(parse_protocol("-1").has_value());
  for (unsigned p = 0; p <= 255; ++p)
    CHECK(parse_protocol(protocol_name(static_cast<std::uint8_t>(p))) == std::optional<std::uint8_t>(static_cast<std::uint8_t>(p)));
  CHECK(protocol_name(6) == "tcp");
  CHECK(protocol_name(47) == "47");
}
