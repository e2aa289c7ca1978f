// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ha peer messages: the datagrams two pcpd instances exchange on the sync network to keep
// the standby's mapping table equal to the primary's (hot standby; RFC 7767 §3: the elected
// mappings must reach the standby before the response). Owns Message and its bodies, MappingId,
// encode() and decode(). Pure: no sockets, no clock reads (the caller passes `now`), no state.
//
// Datagram layout (big endian), version 1:
//    0  magic "PCPH"                 4
//    4  version (1)                  1
//    5  type (MessageType)           1
//    6  flags (reserved, 0)          1
//    7  role of the sender (Role)    1
//    8  length of the datagram       2   header + payload + HMAC
//   10  reserved (0)                 2
//   12  sender id                    4   random per process start, never 0
//   16  peer id                      4   the sender id whose stream `ack` acknowledges (0: none)
//   20  sequence                     8   per datagram, strictly increasing per sender id (replay)
//   28  stream sequence              8   reliable messages: position in the stream (>= 1); else 0
//   36  ack                          8   cumulative: peer's stream received in order up to here
//   44  payload
//  end  HMAC-SHA256 over every byte before it   32
//
// Mapping record: kind, origin, protocol, flags (bit 0 third party, bit 1 elected), internal
// addr+port, external addr+port, remote addr+port, client addr, nonce (12), remaining lifetime in
// ms (u64, relative: the routers' clocks differ), lifetime (u32 s), filter count (u8),
// description length (u16), filters (prefix length u8, port u16, addr 16) and description bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.hpp"
#include "core/mapping.hpp"
#include "ha/link_key.hpp"
#include "util/result.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::ha {

inline constexpr std::array<std::uint8_t, 4> kMagic{'P', 'C', 'P', 'H'};
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 44;
inline constexpr std::size_t kHmacSize = 32;
// Senders pack records into datagrams of at most kTargetDatagramSize (no IP fragmentation on a
// 1500-byte sync network); only a single record that cannot fit goes alone, up to kMaxDatagramSize.
inline constexpr std::size_t kTargetDatagramSize = 1400;
inline constexpr std::size_t kMaxDatagramSize = 4096;
inline constexpr std::size_t kMaxDescription = 1016;  // RFC 7220 DESCRIPTION, as core keeps it
inline constexpr std::size_t kMaxFilters = 64;        // > the 43 FILTERs a 1100-byte request holds
inline constexpr std::size_t kMappingFixedSize = 101;
inline constexpr std::size_t kFilterSize = 19;
inline constexpr std::size_t kMappingIdSize = 38;

enum class MessageType : std::uint8_t {
  Hello = 1,          // keepalive, role, epoch, which snapshot the sender holds
  SnapshotBegin = 2,  // reliable: the replicated set is about to be replaced
  SnapshotChunk = 3,  // reliable: some mappings of the snapshot
  SnapshotEnd = 4,    // reliable: the snapshot is complete (count check)
  Change = 5,         // reliable: upserts and removes
  Ack = 6,            // the header's ack, nothing else
};

// The VRRP role pcpd was given (pcpctl ha primary|backup|fault). Only a Primary sends mappings.
enum class Role : std::uint8_t { Unknown = 0, Primary = 1, Backup = 2, Fault = 3 };

// What identifies a mapping in the table (MappingTable: kind + internal endpoint, + remote for PEER).
struct MappingId {
  core::MappingKind kind = core::MappingKind::Map;
  std::uint8_t protocol = 0;
  wire::IpAddr internal_addr{};
  std::uint16_t internal_port = 0;
  wire::IpAddr remote_addr{};   // PEER only; zero for MAP
  std::uint16_t remote_port = 0;  // PEER only
  friend constexpr auto operator<=>(const MappingId&, const MappingId&) = default;
};
[[nodiscard]] MappingId id_of(const core::Mapping& m);

struct Header {
  MessageType type = MessageType::Hello;  // set by encode() from the body
  Role role = Role::Unknown;
  std::uint32_t sender_id = 0;
  std::uint32_t peer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t stream_seq = 0;
  std::uint64_t ack = 0;
};

struct Hello {
  bool has_epoch = false;
  std::uint64_t epoch_age_ms = 0;      // sender's now - its epoch origin (RFC 6887 §8.5)
  std::uint32_t synced_with = 0;       // sender id whose complete snapshot the sender holds (0: none)
  std::uint64_t synced_generation = 0;
};
struct SnapshotBegin {
  std::uint64_t generation = 0;
  std::uint32_t total = 0;  // mappings that will follow
};
struct SnapshotChunk {
  std::uint64_t generation = 0;
  std::vector<core::Mapping> mappings;  // expires on the receiver's clock after decode()
};
struct SnapshotEnd {
  std::uint64_t generation = 0;
  std::uint32_t total = 0;
};
struct MappingChange {
  enum class Op : std::uint8_t { Upsert = 1, Remove = 2 };
  Op op = Op::Upsert;
  core::Mapping mapping;  // Upsert
  MappingId id;           // Remove
};
struct ChangeBatch {
  std::vector<MappingChange> changes;
};
struct Ack {};

using Body = std::variant<Hello, SnapshotBegin, SnapshotChunk, SnapshotEnd, ChangeBatch, Ack>;

struct Message {
  Header header;
  Body body;
};

[[nodiscard]] MessageType type_of(const Body& body);
[[nodiscard]] bool is_reliable(MessageType type);  // carries a stream sequence
[[nodiscard]] std::string_view to_string(MessageType type);
[[nodiscard]] std::string_view to_string(Role role);

// Why a datagram was refused. decode() reports the first six; the link adds the rest.
enum class Reject : std::uint8_t {
  Oversize,      // longer than kMaxDatagramSize
  Truncated,     // shorter than a header + HMAC, or than its length field
  BadMagic,      // not "PCPH"
  BadVersion,    // another protocol version (reported apart: an upgrade in progress)
  BadHmac,       // wrong key or altered in transit
  Malformed,     // authenticated but not well formed (lengths, enums, reserved bits, trailing bytes)
  Replay,        // sequence <= the last accepted from that sender id, or a retired sender id
  RoleConflict,  // mappings offered to a Primary (both sides claim Primary)
  Count_,
};
inline constexpr std::size_t kRejectReasons = static_cast<std::size_t>(Reject::Count_);
[[nodiscard]] std::string_view to_string(Reject reason);

// Encoded sizes, so a sender can pack records under kTargetDatagramSize.
[[nodiscard]] std::size_t encoded_size(const core::Mapping& m);
[[nodiscard]] std::size_t encoded_size(const MappingChange& c);
// A mapping within the record limits (filters <= kMaxFilters, description <= kMaxDescription).
[[nodiscard]] bool encodable(const core::Mapping& m);

// Encodes `message` and appends its HMAC. header.type is taken from the body. Remaining
// lifetimes are computed against `now` (expired = 0). Error{Protocol, EMSGSIZE} when a record
// breaks the limits or the datagram exceeds kMaxDatagramSize; Error{Protocol, EINVAL} for a
// reliable message without a stream sequence (or the reverse) or a zero sender id.
[[nodiscard]] Result<std::vector<std::uint8_t>> encode(const Message& message, core::Millis now,
                                                       const LinkKey& key);

// Decodes and authenticates one datagram; never changes any state. Checks in order: size,
// length, magic, version, HMAC (constant time), then the body. Mapping expiries become
// now + remaining on the receiver's clock.
[[nodiscard]] tl::expected<Message, Reject> decode(std::span<const std::uint8_t> datagram,
                                                   core::Millis now, const LinkKey& key);

}  // namespace pcpd::ha
