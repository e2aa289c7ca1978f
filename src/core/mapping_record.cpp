// SPDX-License-Identifier: GPL-2.0-or-later
// The mapping record codec (layout in mapping_record.hpp). Every read goes through wire::Reader
// and every write through wire::Writer (bounds-checked, sticky failure).
#include "core/mapping_record.hpp"

namespace pcpd::core {
namespace {

constexpr std::uint8_t kFlagThirdParty = 0x01;
constexpr std::uint8_t kFlagElected = 0x02;
constexpr std::uint8_t kFlagDeferred = 0x04;  // Mapping::checkpoint_deferred

bool get_kind(std::uint8_t v, MappingKind& out) {
  if (v > static_cast<std::uint8_t>(MappingKind::Peer)) return false;
  out = static_cast<MappingKind>(v);
  return true;
}

}  // namespace

std::size_t mapping_record_size(const Mapping& m) {
  return kMappingRecordFixedSize + m.filters.size() * kMappingRecordFilterSize + m.description.size();
}

void put_mapping(wire::Writer& w, const Mapping& m, Millis now) {
  if (m.filters.size() > kMappingRecordMaxFilters || m.description.size() > kMappingRecordMaxDescription ||
      m.kind > MappingKind::Peer || m.origin > Origin::Static) {
    w.fail();
    return;
  }
  std::uint8_t flags = 0;
  if (m.third_party) flags |= kFlagThirdParty;
  if (m.checkpoint) flags |= kFlagElected;
  if (m.checkpoint_deferred) flags |= kFlagDeferred;
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u8(static_cast<std::uint8_t>(m.origin));
  w.u8(m.protocol);
  w.u8(flags);
  w.addr(m.internal_addr);
  w.u16(m.internal_port);
  w.addr(m.external_addr);
  w.u16(m.external_port);
  w.addr(m.remote_addr);
  w.u16(m.remote_port);
  w.addr(m.client_addr);
  w.bytes(m.nonce);
  put_expiry(w, m.expires, now);
  w.u32(m.lifetime);
  w.u8(static_cast<std::uint8_t>(m.filters.size()));
  w.u16(static_cast<std::uint16_t>(m.description.size()));
  for (const wire::Filter& f : m.filters) {
    w.u8(f.prefix_length);
    w.u16(f.remote_port);
    w.addr(f.remote_addr);
  }
  w.text(m.description);
}

void put_expiry(wire::Writer& w, Millis expires, Millis now) {
  put_u64(w, expires > now ? static_cast<std::uint64_t>((expires - now).count()) : 0);
}

Millis get_expiry(wire::Reader& r, Millis now) {
  constexpr auto kMaxRemaining = static_cast<std::uint64_t>(kMappingRecordMaxRemaining.count());
  const std::uint64_t remaining = get_u64(r);
  return now + Millis(static_cast<std::int64_t>(remaining < kMaxRemaining ? remaining : kMaxRemaining));
}

bool get_mapping(wire::Reader& r, Millis now, Mapping& m) {
  const std::uint8_t kind = r.u8();
  const std::uint8_t origin = r.u8();
  m.protocol = r.u8();
  const std::uint8_t flags = r.u8();
  m.internal_addr = r.addr();
  m.internal_port = r.u16();
  m.external_addr = r.addr();
  m.external_port = r.u16();
  m.remote_addr = r.addr();
  m.remote_port = r.u16();
  m.client_addr = r.addr();
  r.copy_to(m.nonce);
  m.expires = get_expiry(r, now);
  m.lifetime = r.u32();
  const std::size_t filters = r.u8();
  const std::size_t description = r.u16();
  if (!r.ok() || !get_kind(kind, m.kind)) return false;
  if (origin > static_cast<std::uint8_t>(Origin::Static)) return false;
  if ((flags & ~(kFlagThirdParty | kFlagElected | kFlagDeferred)) != 0) return false;
  if (filters > kMappingRecordMaxFilters || description > kMappingRecordMaxDescription) return false;
  m.origin = static_cast<Origin>(origin);
  if (m.is_static()) m.expires = kNever;  // the record's remaining time is clamped; it never ends
  m.third_party = (flags & kFlagThirdParty) != 0;
  m.checkpoint = (flags & kFlagElected) != 0;
  m.checkpoint_deferred = (flags & kFlagDeferred) != 0 && !m.checkpoint;
  m.filters.clear();
  m.filters.reserve(filters);
  for (std::size_t i = 0; i < filters; ++i) {
    wire::Filter f;
    f.prefix_length = r.u8();
    f.remote_port = r.u16();
    f.remote_addr = r.addr();
    if (!r.ok() || f.prefix_length > 128) return false;  // RFC 6887 §13.3: at most 128 bits
    m.filters.push_back(f);
  }
  m.description = std::string(r.text(description));
  return r.ok();
}

}  // namespace pcpd::core
