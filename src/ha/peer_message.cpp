// SPDX-License-Identifier: GPL-2.0-or-later
// Peer message codec. Every read goes through wire::Reader and every write through wire::Writer
// (bounds-checked, sticky failure); the HMAC is libsodium's crypto_auth_hmacsha256.
#include "ha/peer_message.hpp"

#include <sodium.h>

#include <cerrno>
#include <limits>
#include <type_traits>

#include "core/mapping_record.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::ha {

namespace {

using core::get_mapping;
using core::get_u64;
using core::put_mapping;
using core::put_u64;
using wire::Reader;
using wire::Writer;

// The mapping record is core's (core/mapping_record.hpp); the sizes peer_message.hpp publishes
// must stay the ones it writes.
static_assert(kMappingFixedSize == core::kMappingRecordFixedSize && kFilterSize == core::kMappingRecordFilterSize &&
              kMaxFilters == core::kMappingRecordMaxFilters && kMaxDescription == core::kMappingRecordMaxDescription);

constexpr std::uint8_t kHelloHasEpoch = 0x01;
constexpr std::size_t kLengthOffset = 8;

void hmac(std::span<const std::uint8_t> data, const LinkKey& key,
          std::array<std::uint8_t, kHmacSize>& out) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.bytes().data(), key.bytes().size());
  crypto_auth_hmacsha256_update(&state, data.data(), data.size());
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
}

void put_id(Writer& w, const MappingId& id) {
  w.u8(static_cast<std::uint8_t>(id.kind));
  w.u8(id.protocol);
  w.addr(id.internal_addr);
  w.u16(id.internal_port);
  w.addr(id.remote_addr);
  w.u16(id.remote_port);
}

bool get_kind(std::uint8_t v, core::MappingKind& out) {
  if (v > static_cast<std::uint8_t>(core::MappingKind::Peer)) return false;
  out = static_cast<core::MappingKind>(v);
  return true;
}

bool get_id(Reader& r, MappingId& id) {
  const std::uint8_t kind = r.u8();
  id.protocol = r.u8();
  id.internal_addr = r.addr();
  id.internal_port = r.u16();
  id.remote_addr = r.addr();
  id.remote_port = r.u16();
  return r.ok() && get_kind(kind, id.kind);
}

void put_body(Writer& w, const Body& body, core::Millis now) {
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Hello>) {
          w.u8(b.has_epoch ? kHelloHasEpoch : 0);
          put_u64(w, b.epoch_age_ms);
          w.u32(b.synced_with);
          put_u64(w, b.synced_generation);
        } else if constexpr (std::is_same_v<T, SnapshotBegin> || std::is_same_v<T, SnapshotEnd>) {
          put_u64(w, b.generation);
          w.u32(b.total);
        } else if constexpr (std::is_same_v<T, SnapshotChunk>) {
          put_u64(w, b.generation);
          if (b.mappings.size() > std::numeric_limits<std::uint16_t>::max()) w.fail();
          w.u16(static_cast<std::uint16_t>(b.mappings.size()));
          for (const core::Mapping& m : b.mappings) put_mapping(w, m, now);
        } else if constexpr (std::is_same_v<T, ChangeBatch>) {
          if (b.changes.size() > std::numeric_limits<std::uint16_t>::max()) w.fail();
          w.u16(static_cast<std::uint16_t>(b.changes.size()));
          for (const MappingChange& c : b.changes) {
            w.u8(static_cast<std::uint8_t>(c.op));
            if (c.op == MappingChange::Op::Upsert)
              put_mapping(w, c.mapping, now);
            else
              put_id(w, c.id);
          }
        }
        // Ack: no payload.
      },
      body);
}

bool get_body(Reader& r, MessageType type, core::Millis now, Body& out) {
  switch (type) {
    case MessageType::Hello: {
      Hello h;
      const std::uint8_t flags = r.u8();
      h.epoch_age_ms = get_u64(r);
      h.synced_with = r.u32();
      h.synced_generation = get_u64(r);
      if ((flags & ~kHelloHasEpoch) != 0) return false;
      h.has_epoch = (flags & kHelloHasEpoch) != 0;
      out = h;
      return r.ok();
    }
    case MessageType::SnapshotBegin:
    case MessageType::SnapshotEnd: {
      const std::uint64_t generation = get_u64(r);
      const std::uint32_t total = r.u32();
      if (type == MessageType::SnapshotBegin)
        out = SnapshotBegin{generation, total};
      else
        out = SnapshotEnd{generation, total};
      return r.ok();
    }
    case MessageType::SnapshotChunk: {
      SnapshotChunk c;
      c.generation = get_u64(r);
      const std::size_t n = r.u16();
      // Each record takes at least kMappingFixedSize bytes: refuse a count the datagram cannot hold.
      if (!r.ok() || n == 0 || n > r.remaining() / kMappingFixedSize) return false;
      c.mappings.resize(n);
      // A static mapping never travels (each router has its own from its configuration).
      for (core::Mapping& m : c.mappings)
        if (!get_mapping(r, now, m) || m.is_static()) return false;
      out = std::move(c);
      return true;
    }
    case MessageType::Change: {
      ChangeBatch b;
      const std::size_t n = r.u16();
      if (!r.ok() || n == 0 || n > r.remaining() / (1 + kMappingIdSize)) return false;
      b.changes.resize(n);
      for (MappingChange& c : b.changes) {
        const std::uint8_t op = r.u8();
        if (op == static_cast<std::uint8_t>(MappingChange::Op::Upsert)) {
          c.op = MappingChange::Op::Upsert;
          if (!get_mapping(r, now, c.mapping) || c.mapping.is_static()) return false;
        } else if (op == static_cast<std::uint8_t>(MappingChange::Op::Remove)) {
          c.op = MappingChange::Op::Remove;
          if (!get_id(r, c.id)) return false;
        } else {
          return false;
        }
      }
      out = std::move(b);
      return true;
    }
    case MessageType::Ack:
      out = Ack{};
      return true;
  }
  return false;
}

}  // namespace

MappingId id_of(const core::Mapping& m) {
  MappingId id;
  id.kind = m.kind;
  id.protocol = m.protocol;
  id.internal_addr = m.internal_addr;
  id.internal_port = m.internal_port;
  if (m.kind == core::MappingKind::Peer) {
    id.remote_addr = m.remote_addr;
    id.remote_port = m.remote_port;
  }
  return id;
}

MessageType type_of(const Body& body) {
  return std::visit(
      [](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Hello>) return MessageType::Hello;
        if constexpr (std::is_same_v<T, SnapshotBegin>) return MessageType::SnapshotBegin;
        if constexpr (std::is_same_v<T, SnapshotChunk>) return MessageType::SnapshotChunk;
        if constexpr (std::is_same_v<T, SnapshotEnd>) return MessageType::SnapshotEnd;
        if constexpr (std::is_same_v<T, ChangeBatch>) return MessageType::Change;
        if constexpr (std::is_same_v<T, Ack>) return MessageType::Ack;
      },
      body);
}

bool is_reliable(MessageType type) {
  return type != MessageType::Hello && type != MessageType::Ack;
}

std::string_view to_string(MessageType type) {
  switch (type) {
    case MessageType::Hello: return "hello";
    case MessageType::SnapshotBegin: return "snapshot_begin";
    case MessageType::SnapshotChunk: return "snapshot_chunk";
    case MessageType::SnapshotEnd: return "snapshot_end";
    case MessageType::Change: return "change";
    case MessageType::Ack: return "ack";
  }
  return "unknown";
}

std::string_view to_string(Role role) {
  switch (role) {
    case Role::Unknown: return "unknown";
    case Role::Primary: return "primary";
    case Role::Backup: return "backup";
    case Role::Fault: return "fault";
  }
  return "unknown";
}

std::string_view to_string(Reject reason) {
  switch (reason) {
    case Reject::Oversize: return "oversize";
    case Reject::Truncated: return "truncated";
    case Reject::BadMagic: return "bad_magic";
    case Reject::BadVersion: return "bad_version";
    case Reject::BadHmac: return "bad_hmac";
    case Reject::Malformed: return "malformed";
    case Reject::Replay: return "replay";
    case Reject::RoleConflict: return "role_conflict";
    case Reject::Count_: break;
  }
  return "unknown";
}

std::size_t encoded_size(const core::Mapping& m) {
  return kMappingFixedSize + m.filters.size() * kFilterSize + m.description.size();
}

std::size_t encoded_size(const MappingChange& c) {
  return 1 + (c.op == MappingChange::Op::Upsert ? encoded_size(c.mapping) : kMappingIdSize);
}

bool encodable(const core::Mapping& m) {
  return m.filters.size() <= kMaxFilters && m.description.size() <= kMaxDescription &&
         m.kind <= core::MappingKind::Peer && m.origin <= core::Origin::NatPmp;
}

Result<std::vector<std::uint8_t>> encode(const Message& message, core::Millis now,
                                         const LinkKey& key) {
  const Header& h = message.header;
  const MessageType type = type_of(message.body);
  if (h.sender_id == 0 || is_reliable(type) != (h.stream_seq != 0))
    return fail(ErrorDomain::Protocol, EINVAL, "peer message header");
  const auto* chunk = std::get_if<SnapshotChunk>(&message.body);
  if (chunk != nullptr)
    for (const core::Mapping& m : chunk->mappings)
      if (!encodable(m)) return fail(ErrorDomain::Protocol, EMSGSIZE, "peer mapping record");
  if (const auto* batch = std::get_if<ChangeBatch>(&message.body))
    for (const MappingChange& c : batch->changes)
      if (c.op == MappingChange::Op::Upsert && !encodable(c.mapping))
        return fail(ErrorDomain::Protocol, EMSGSIZE, "peer mapping record");

  std::vector<std::uint8_t> out(kMaxDatagramSize);
  Writer w(std::span<std::uint8_t>(out).first(kMaxDatagramSize - kHmacSize));
  w.bytes(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(0);  // flags
  w.u8(static_cast<std::uint8_t>(h.role));
  w.u16(0);  // length, filled in below
  w.u16(0);  // reserved
  w.u32(h.sender_id);
  w.u32(h.peer_id);
  put_u64(w, h.sequence);
  put_u64(w, h.stream_seq);
  put_u64(w, h.ack);
  put_body(w, message.body, now);
  if (!w.ok()) return fail(ErrorDomain::Protocol, EMSGSIZE, "peer message too large");
  const std::size_t body_end = w.size();
  const std::size_t total = body_end + kHmacSize;
  out[kLengthOffset] = static_cast<std::uint8_t>(total >> 8);
  out[kLengthOffset + 1] = static_cast<std::uint8_t>(total);
  std::array<std::uint8_t, kHmacSize> mac{};
  hmac(std::span<const std::uint8_t>(out).first(body_end), key, mac);
  for (std::size_t i = 0; i < kHmacSize; ++i) out[body_end + i] = mac[i];
  out.resize(total);
  return out;
}

tl::expected<Message, Reject> decode(std::span<const std::uint8_t> datagram, core::Millis now,
                                     const LinkKey& key) {
  if (datagram.size() > kMaxDatagramSize) return tl::unexpected(Reject::Oversize);
  if (datagram.size() < kHeaderSize + kHmacSize) return tl::unexpected(Reject::Truncated);
  Reader r(datagram);
  std::array<std::uint8_t, 4> magic{};
  r.copy_to(magic);
  if (magic != kMagic) return tl::unexpected(Reject::BadMagic);
  if (r.u8() != kVersion) return tl::unexpected(Reject::BadVersion);
  const std::uint8_t type = r.u8();
  const std::uint8_t flags = r.u8();
  const std::uint8_t role = r.u8();
  const std::size_t length = r.u16();
  if (length > datagram.size()) return tl::unexpected(Reject::Truncated);
  if (length < kHeaderSize + kHmacSize) return tl::unexpected(Reject::Malformed);

  // Authenticate before looking at anything else (constant-time compare).
  const std::size_t body_end = length - kHmacSize;
  std::array<std::uint8_t, kHmacSize> mac{};
  hmac(datagram.first(body_end), key, mac);
  if (crypto_verify_32(mac.data(), datagram.data() + body_end) != 0)
    return tl::unexpected(Reject::BadHmac);
  // Bytes after the HMAC were not authenticated: refuse them.
  if (length != datagram.size()) return tl::unexpected(Reject::Malformed);

  Message m;
  const std::uint16_t reserved = r.u16();
  m.header.sender_id = r.u32();
  m.header.peer_id = r.u32();
  m.header.sequence = get_u64(r);
  m.header.stream_seq = get_u64(r);
  m.header.ack = get_u64(r);
  if (!r.ok() || flags != 0 || reserved != 0 || m.header.sender_id == 0 ||
      role > static_cast<std::uint8_t>(Role::Fault) || type < static_cast<std::uint8_t>(MessageType::Hello) ||
      type > static_cast<std::uint8_t>(MessageType::Ack))
    return tl::unexpected(Reject::Malformed);
  m.header.type = static_cast<MessageType>(type);
  m.header.role = static_cast<Role>(role);
  if (is_reliable(m.header.type) != (m.header.stream_seq != 0)) return tl::unexpected(Reject::Malformed);

  Reader body(datagram.subspan(kHeaderSize, body_end - kHeaderSize));
  if (!get_body(body, m.header.type, now, m.body) || !body.at_end())
    return tl::unexpected(Reject::Malformed);
  return m;
}

}  // namespace pcpd::ha
