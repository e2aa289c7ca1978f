// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core mapping record: the one binary encoding of a core::Mapping. Used by the HA peer link
// (src/ha/peer_message.cpp: SNAPSHOT_CHUNK and CHANGE upserts, RFC 7767 §3: the elected mappings
// reach the standby before the response) and by the restart snapshot
// (src/pcpd/mapping_snapshot.cpp). Owns put_mapping(), get_mapping(),
// mapping_record_size() and the u64 helpers. Pure: wire::Writer / wire::Reader over caller
// buffers, no I/O, no clock reads (the caller passes `now`).
//
// Record layout (big endian, via wire::Writer: every address is the 16-byte RFC 6887 §5 form):
//    0  kind (MappingKind)             1   RFC 6887 §11 MAP / §12 PEER
//    1  origin (Origin)                1   PCP or NAT-PMP (RFC 6886)
//    2  protocol                       1   IANA number, 0 = all (R-MAP-2/3)
//    3  flags                          1   bit 0 third party (RFC 6887 §13.1), bit 1 elected
//                                          (RFC 7767 CHECKPOINT_REQUIRED honoured), bit 2
//                                          election deferred until the peer is back; others 0
//    4  internal addr 16 + port 2     18
//   22  external addr 16 + port 2     18
//   40  remote addr 16 + port 2       18   PEER only; zero for MAP
//   58  client addr                   16
//   74  nonce                         12   RFC 6887 §11.1
//   86  remaining lifetime, ms         8   relative to the caller's `now` (0 = expired): clocks
//                                          differ between routers and across the snapshot's write
//   94  lifetime, s                    4   the last granted lifetime
//   98  filter count                   1   <= kMappingRecordMaxFilters
//   99  description length             2   <= kMappingRecordMaxDescription (RFC 7220)
//  101  filters                     19 each: prefix length u8 (<= 128, RFC 6887 §13.3),
//                                          remote port u16, remote addr 16
//   ..  description bytes
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/clock.hpp"
#include "core/mapping.hpp"
#include "wire/reader.hpp"
#include "wire/writer.hpp"

namespace pcpd::core {

inline constexpr std::size_t kMappingRecordFixedSize = 101;
inline constexpr std::size_t kMappingRecordFilterSize = 19;
// More than the 43 FILTERs an 1100-byte request holds (wire::kMaxFilters is core's own limit).
inline constexpr std::size_t kMappingRecordMaxFilters = 64;
inline constexpr std::size_t kMappingRecordMaxDescription = 1016;  // RFC 7220 DESCRIPTION
// A decoded remaining lifetime is capped at a year so that now + remaining cannot overflow.
inline constexpr Millis kMappingRecordMaxRemaining{366LL * 24 * 3600 * 1000};

// 64-bit field as two u32 (wire::Writer / wire::Reader stop at u32), high half first.
inline void put_u64(wire::Writer& w, std::uint64_t v) {
  w.u32(static_cast<std::uint32_t>(v >> 32));
  w.u32(static_cast<std::uint32_t>(v));
}
[[nodiscard]] inline std::uint64_t get_u64(wire::Reader& r) {
  const std::uint64_t hi = r.u32();
  const std::uint64_t lo = r.u32();
  return (hi << 32) | lo;
}

// An expiry as the record stores it: remaining ms relative to `now` (u64, 0 when already
// expired); read back as now + remaining, remaining capped at kMappingRecordMaxRemaining.
// put_mapping()/get_mapping() use them, and so does the journal's refresh entry.
void put_expiry(wire::Writer& w, Millis expires, Millis now);
[[nodiscard]] Millis get_expiry(wire::Reader& r, Millis now);

// Exact number of bytes put_mapping() writes for `m` (when within the limits below).
[[nodiscard]] std::size_t mapping_record_size(const Mapping& m);
// Writes `m` with its expiry as remaining ms relative to `now`. A mapping beyond the record
// limits (filters, description, kind, origin) writes nothing and makes `w` fail.
void put_mapping(wire::Writer& w, const Mapping& m, Millis now);
// Reads one record into `m` (expires = now + remaining, remaining capped at
// kMappingRecordMaxRemaining). False when `r` runs out or a field is out of range (unknown kind,
// origin or flag, too many filters, too long a description, a prefix over 128 bits).
[[nodiscard]] bool get_mapping(wire::Reader& r, Millis now, Mapping& m);

}  // namespace pcpd::core
