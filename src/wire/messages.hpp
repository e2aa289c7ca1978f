// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire messages: the values a PCP (RFC 6887) datagram decodes to and encodes from.
// Owns: opcodes, result codes, option codes, MAP/PEER/ANNOUNCE bodies, options, Request, Response,
// Reject. Standard library only: no allocation, clock, config or logging (docs/design.md "wire").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "wire/ip_addr.hpp"

namespace pcpd::wire {

inline constexpr std::uint8_t kVersion = 2;                 // RFC 6887 §7.1
inline constexpr std::uint8_t kNatPmpVersion = 0;           // RFC 6886, RFC 6887 App. A
inline constexpr std::size_t kMaxMessageSize = 1100;        // RFC 6887 §7
inline constexpr std::size_t kHeaderSize = 24;              // §7.1, §7.2
inline constexpr std::size_t kMapBodySize = 36;             // §11.1
inline constexpr std::size_t kPeerBodySize = 56;            // §12.1
inline constexpr std::uint16_t kServerPort = 5351;          // §19.1
inline constexpr std::uint16_t kClientPort = 5350;          // §14.1.3 unsolicited messages
inline constexpr std::size_t kMaxFilters = 44;              // (1100 - 60) / 24 rounded up
inline constexpr std::size_t kMaxDescription = 1016;        // RFC 7220
inline constexpr std::size_t kCapabilityBytes = 16;         // hops-capability-discovery-00

enum class Opcode : std::uint8_t { Announce = 0, Map = 1, Peer = 2, Authentication = 3 };

// RFC 6887 §7.4; 14..23 from RFC 7652 §7.
enum class ResultCode : std::uint8_t {
  Success = 0,
  UnsuppVersion = 1,
  NotAuthorized = 2,
  MalformedRequest = 3,
  UnsuppOpcode = 4,
  UnsuppOption = 5,
  MalformedOption = 6,
  NetworkFailure = 7,
  NoResources = 8,
  UnsuppProtocol = 9,
  UserExQuota = 10,
  CannotProvideExternal = 11,
  AddressMismatch = 12,
  ExcessiveRemotePeers = 13,
  Initiation = 14,
  AuthenticationRequired = 15,
  AuthenticationFailed = 16,
  AuthenticationSucceeded = 17,
  AuthorizationFailed = 18,
  SessionTerminated = 19,
  UnknownSessionId = 20,
  DowngradeAttackDetected = 21,
  AuthenticationRequest = 22,
  AuthenticationReply = 23,
};

// RFC 6887 §7.4: which error codes are "short lifetime" (30 s) vs "long lifetime" (30 min).
[[nodiscard]] constexpr bool is_short_lifetime_error(ResultCode c) {
  return c == ResultCode::NetworkFailure || c == ResultCode::NoResources ||
         c == ResultCode::UserExQuota;
}

// Fixed option codes (RFC 6887 §19.4, RFC 7652, 7220, 7225, 7753). CHECKPOINT_REQUIRED and
// CAPABILITY are configurable: see OptionCodes.
enum class OptionCode : std::uint8_t {
  ThirdParty = 1,
  PreferFailure = 2,
  Filter = 3,
  Nonce = 4,
  AuthenticationTag = 5,
  PaAuthenticationTag = 6,
  EapPayload = 7,
  Prf = 8,
  MacAlgorithm = 9,
  SessionLifetime = 10,
  ReceivedPak = 11,
  IdIndicator = 12,
  Description = 128,
  Prefix64 = 129,
  PortSet = 130,
};

// RFC 6887 §7.3: the top bit of the code says optional (1) or mandatory (0) to process.
[[nodiscard]] constexpr bool is_optional_option(std::uint8_t code) { return (code & 0x80) != 0; }

// Codes not assigned by IANA (CAPABILITY) or chosen by configuration (CHECKPOINT_REQUIRED).
struct OptionCodes {
  std::uint8_t checkpoint_required = 192;  // RFC 7767
  std::uint8_t capability = 224;           // draft-boucadair-hops-capability-discovery, private use
};

using Nonce = std::array<std::uint8_t, 12>;

// MAP opcode data (RFC 6887 §11.1). In a request the external fields are the suggestion, in a
// response the assignment.
struct MapBody {
  Nonce nonce{};
  std::uint8_t protocol = 0;
  std::uint16_t internal_port = 0;
  std::uint16_t external_port = 0;
  IpAddr external_addr{};
};

// PEER opcode data (RFC 6887 §12.1).
struct PeerBody {
  Nonce nonce{};
  std::uint8_t protocol = 0;
  std::uint16_t internal_port = 0;
  std::uint16_t external_port = 0;
  IpAddr external_addr{};
  std::uint16_t remote_port = 0;
  IpAddr remote_addr{};
};

struct AnnounceBody {};

using Body = std::variant<AnnounceBody, MapBody, PeerBody>;

// FILTER option data (RFC 6887 §13.3). prefix_length counts bits of the 128-bit field.
struct Filter {
  std::uint8_t prefix_length = 0;
  std::uint16_t remote_port = 0;  // 0 = all ports
  IpAddr remote_addr{};
  friend constexpr bool operator==(const Filter&, const Filter&) = default;
};

// The options of one message, in decoded form. Filters keep their order (§7.3: processed in
// order). The description views the datagram's bytes (request) or the stored text (response).
struct Options {
  std::optional<IpAddr> third_party;                // §13.1
  bool prefer_failure = false;                      // §13.2
  std::array<Filter, kMaxFilters> filters{};        // §13.3
  std::uint8_t filter_count = 0;
  std::optional<std::string_view> description;      // RFC 7220 (raw bytes, UTF-8 not yet checked)
  bool checkpoint_required = false;                 // RFC 7767
  std::optional<std::array<std::uint8_t, kCapabilityBytes>> capability;  // hops draft
  std::uint8_t ignored_optional = 0;                // optional-to-process options skipped

  [[nodiscard]] std::span<const Filter> filter_list() const { return {filters.data(), filter_count}; }
};

// A decoded, well-formed request. `raw` views the datagram (for error responses, which copy it).
struct Request {
  std::uint8_t version = kVersion;
  Opcode opcode = Opcode::Announce;
  std::uint32_t lifetime = 0;
  IpAddr client_addr{};
  Body body{};
  Options options{};
  // The first option error met while walking the options (RFC 6887 §7.3), kept apart so that the
  // server can check ADDRESS_MISMATCH first (docs/design.md "Order of checks"). nullopt: options fine.
  std::optional<ResultCode> option_error;
  std::span<const std::uint8_t> raw;
};

// Why a datagram was not decoded into a Request. Drop: send nothing (RFC 6887 §8.2 silent drops).
// Respond: answer with `code` as an error response that copies the request (§8.2, R-HDR-6).
struct Reject {
  enum class Action : std::uint8_t { Drop, Respond };
  Action action = Action::Drop;
  ResultCode code = ResultCode::MalformedRequest;
};

// A response as the server builds it or the client decodes it.
struct Response {
  std::uint8_t version = kVersion;
  Opcode opcode = Opcode::Announce;
  ResultCode result = ResultCode::Success;
  std::uint32_t lifetime = 0;
  std::uint32_t epoch = 0;
  Body body{};
  Options options{};  // the options to echo / that were received
};

}  // namespace pcpd::wire
