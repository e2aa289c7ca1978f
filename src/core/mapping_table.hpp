// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::MappingTable: every mapping core knows, with the indexes a request needs:
//   MAP key (internal addr, proto, port) and PEER key (5-tuple)      -> mapping   (O(1))
//   internal endpoint -> its external endpoint (binding), shared by all its MAP and PEER mappings
//                        (endpoint-independent mapping, RFC 6887 §11.3 / R-MAP-12)
//   external endpoints held: per (external addr, proto) a PortAllocator bitmap for NAT44 bindings,
//                        an index for the others (IPv6 pinholes, mixed families)
//   internal address and requesting client -> their mappings (quotas, bulk deletes, R-LIFE-6)
//   expiry order (binary min-heap, O(log n))
//   elected (RFC 7767 checkpoint) mappings: total and per internal address (checkpoint quotas)
// The table never calls the datapath: Server applies a ChangeSet first, then commit()s it here.
//
// Memory (bench/mem_mappings.cpp): mappings live in a slab of fixed chunks (stable
// addresses, 32-bit ids, free list); the indexes are IdIndex open-addressing tables of ids that
// store no keys; a binding is not stored at all but read from one of its mappings; the
// internal-address lists are intrusive; only THIRD_PARTY mappings (client != internal) have a
// per-client set of their own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/datapath.hpp"
#include "core/id_index.hpp"
#include "core/mapping.hpp"
#include "core/mapping_key.hpp"
#include "core/port_allocator.hpp"

namespace pcpd::core {

class MappingTable {
 public:
  // The external endpoint one internal endpoint uses, and how many mappings share it.
  struct Binding {
    IpAddr external_addr{};
    std::uint16_t external_port = 0;
    std::uint32_t users = 0;
  };

  [[nodiscard]] const Mapping* find_map(const EndpointKey& internal) const;
  [[nodiscard]] const Mapping* find_peer(const PeerKey& key) const;
  // The MAP (remote ignored) or PEER mapping of that key.
  [[nodiscard]] const Mapping* find(MappingKind kind, const EndpointKey& internal,
                                    const IpAddr& remote_addr, std::uint16_t remote_port) const {
    return kind == MappingKind::Map ? find_map(internal)
                                    : find_peer(PeerKey{internal, remote_addr, remote_port});
  }
  // The table's mapping with the key of `m` (kind, internal endpoint, and remote for PEER).
  [[nodiscard]] const Mapping* find(const Mapping& m) const {
    return find(m.kind, EndpointKey{m.internal_addr, m.protocol, m.internal_port}, m.remote_addr,
                m.remote_port);
  }
  // Read from the endpoint's mappings: O(1), plus O(PEER mappings of that endpoint) for `users`.
  [[nodiscard]] std::optional<Binding> binding(const EndpointKey& internal) const;
  // Free for a new binding: not held and, for IPv4, not marked in the pool nor under an
  // all-ports mapping. Port 0 (an all-ports binding): no NAT44 binding on that address and
  // protocol at all.
  [[nodiscard]] bool external_free(const EndpointKey& external) const;
  // Whether a NAT-PMP mapping of a host other than `internal` holds a port of that external
  // address and protocol (RFC 6886 §3.3: an all-ports mapping would take its companion port).
  [[nodiscard]] bool natpmp_other_on(const IpAddr& external_addr, std::uint8_t protocol,
                                     const IpAddr& internal) const;
  // The internal address of the NAT-PMP MAP mapping that holds this external endpoint, if one
  // does (RFC 6886 §3.3 companion ports; NAT44 bindings have no external index of their own).
  [[nodiscard]] std::optional<IpAddr> natpmp_holder(const EndpointKey& external) const;
  // Whether every NAT44 binding's external address is one of `addresses` (a readdress that
  // would move nothing): one look per address in use, not a walk of the mappings.
  [[nodiscard]] bool nat44_only_on(const std::vector<IpAddr>& addresses) const {
    return std::all_of(pools_.begin(), pools_.end(), [&](const auto& kv) {
      return std::find(addresses.begin(), addresses.end(), kv.first.first) != addresses.end();
    });
  }
  [[nodiscard]] std::optional<std::uint16_t> find_free_port(const IpAddr& external_addr,
                                                            std::uint8_t protocol, std::uint16_t lo,
                                                            std::uint16_t hi,
                                                            std::uint16_t start) const;

  // Prefetching for a burst of requests (at 1,000,000 mappings the index slots and the
  // mappings are cache misses). Two steps, each over the whole burst before the next: _index
  // starts loading the index slot find_map()/find_peer() read, _record the mapping that slot
  // names (by its hash tag alone). Change nothing; a wrong guess costs one load.
  void prefetch_map_index(const EndpointKey& internal) const;
  void prefetch_map_record(const EndpointKey& internal) const;
  void prefetch_peer_index(const PeerKey& key) const;
  void prefetch_peer_record(const PeerKey& key) const;

  // The most mappings the table can hold (its ids are IdIndex's 26 bits: ~12 GB of mappings).
  static constexpr std::size_t kCapacity = IdIndex::kMaxId + 1;
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t count_for_internal(const IpAddr& internal) const;
  [[nodiscard]] std::vector<const Mapping*> of_internal(const IpAddr& internal) const;
  [[nodiscard]] std::vector<const Mapping*> of_client(const IpAddr& client) const;
  // RFC 7767 elected mappings (Mapping::checkpoint), kept by every mutation below.
  [[nodiscard]] std::size_t elected_count() const { return elected_total_; }
  [[nodiscard]] std::size_t elected_for_internal(const IpAddr& internal) const;
  // Static mappings ([[static]]), kept by the same mutations: a reload without any skips its walk.
  [[nodiscard]] std::size_t static_count() const { return static_total_; }

  [[nodiscard]] Millis next_expiry() const;
  [[nodiscard]] std::vector<Mapping> due(Millis now) const;  // expires <= now, soonest first
  [[nodiscard]] std::vector<Mapping> snapshot() const;
  // Calls f for every mapping, in no particular order, without copying the table.
  template <class F>
  void visit(F&& f) const {
    for (std::uint32_t id = 0; id < high_; ++id)
      if (const Slot& s = slot(id); s.heap_pos != kNone) f(s.m);
  }
  // visit() in pieces: the mappings of slots [cursor, cursor + slots), cursor moved past them;
  // false once it is past the last slot ever used. A mapping keeps its slot for its life, so one
  // present throughout a walk is visited once; a slot freed and taken again meanwhile shows
  // its new mapping only if the cursor has not passed it.
  template <class F>
  bool visit_from(std::uint32_t& cursor, std::size_t slots, F&& f) const {
    const std::uint32_t end = cursor + static_cast<std::uint32_t>(std::min<std::size_t>(slots, high_ - std::min(cursor, high_)));
    for (; cursor < end; ++cursor)
      if (const Slot& s = slot(cursor); s.heap_pos != kNone) f(s.m);
    return cursor < high_;
  }

  // Would inserting `m` clash with the table (same key, or an external endpoint used by another
  // internal endpoint, or its internal endpoint already bound elsewhere), or is the table full?
  [[nodiscard]] bool conflicts(const Mapping& m) const;

  // Mutations. Preconditions: insert() only when !conflicts(m); erase()/replace() name a mapping
  // present by key (kind + internal endpoint, + remote for PEER); replace() keeps every key field.
  // Pointers returned above stay valid until that mapping is erased.
  void insert(Mapping m);
  void erase(const Mapping& m);
  void replace(const Mapping& m);
  void commit(const ChangeSet& changes);  // after a successful Datapath::apply

 private:
  using Id = std::uint32_t;
  static constexpr Id kNone = IdIndex::kNone;
  static constexpr unsigned kChunkBits = 10;  // 1024 slots (~180 KiB) a chunk
  static constexpr Id kChunkMask = (Id{1} << kChunkBits) - 1;

  struct Slot {
    Mapping m;
    Id heap_pos = kNone;   // index in heap_; kNone = free slot
    Id addr_prev = kNone;  // list of the internal address's mappings
    Id addr_next = kNone;  // (free slot: next free slot)
    Id peer_next = kNone;  // PEER: ring of the PEER mappings of one internal endpoint
  };
  struct AddrList {
    Id head = kNone;
    std::uint32_t count = 0;
  };
  struct PoolKeyHash {
    std::size_t operator()(const std::pair<IpAddr, std::uint8_t>& k) const noexcept {
      return wire::IpAddrHash{}(k.first) * 31u + k.second;
    }
  };

  [[nodiscard]] Slot& slot(Id id) { return chunks_[id >> kChunkBits][id & kChunkMask]; }
  [[nodiscard]] const Slot& slot(Id id) const { return chunks_[id >> kChunkBits][id & kChunkMask]; }
  void prefetch_slot(Id id) const;
  // natpmp_external_ upkeep for a mapping entering (true) or leaving (false) the table.
  void note_natpmp(const Mapping& m, bool present);
  [[nodiscard]] Id alloc_slot();
  void free_slot(Id id);

  [[nodiscard]] Id find_map_id(const EndpointKey& k) const;
  [[nodiscard]] Id find_peer_id(const PeerKey& k) const;
  [[nodiscard]] Id find_peer_bind(const EndpointKey& k) const;  // any PEER of that endpoint
  [[nodiscard]] Id find_external(const EndpointKey& k) const;   // any mapping of that binding
  // NAT44 bindings are held in pools_ alone; the others in external_.
  [[nodiscard]] static bool pooled(const EndpointKey& in, const EndpointKey& ex) {
    return in.addr.is_v4() && ex.addr.is_v4();
  }
  [[nodiscard]] Id id_of(const Mapping& m) const;
  [[nodiscard]] Id binding_member(const EndpointKey& internal) const;

  void link(Id id);
  void unlink(Id id);
  void link_peer(Id id);
  void unlink_peer(Id id);
  void add_third_party(Id id);
  void remove_third_party(Id id);
  // elected_total_, elected_by_internal_ and static_total_ for a mapping entering (add) or leaving.
  void count_tallies(const Mapping& m, bool add);

  [[nodiscard]] bool heap_less(Id a, Id b) const;
  void heap_set(std::size_t pos, Id id);
  void heap_up(std::size_t pos);
  void heap_down(std::size_t pos);
  void heap_push(Id id);
  void heap_remove(Id id);

  std::vector<std::unique_ptr<Slot[]>> chunks_;
  Id high_ = 0;  // slots ever handed out
  Id free_ = kNone;
  std::size_t size_ = 0;

  IdIndex map_index_;   // MAP mappings by internal endpoint
  IdIndex peer_index_;  // PEER mappings by 5-tuple
  IdIndex peer_bind_;   // one PEER mapping per internal endpoint that has any (its ring)
  IdIndex external_;    // one mapping per binding that is not pooled(), by external endpoint
  std::vector<Id> heap_;  // expiry order: (expires, id)
  std::unordered_map<IpAddr, AddrList, wire::IpAddrHash> by_internal_;
  // THIRD_PARTY mappings by requesting client (client_addr != internal_addr); of_client() finds
  // the others through by_internal_.
  std::unordered_map<IpAddr, std::unordered_set<Id>, wire::IpAddrHash> third_party_;
  std::unordered_map<std::pair<IpAddr, std::uint8_t>, std::unique_ptr<PortAllocator>, PoolKeyHash>
      pools_;
  // External endpoints of NAT-PMP MAP mappings -> their internal address: few, and the only
  // external look-up a NAT44 binding needs besides the pool bitmap (RFC 6886 §3.3).
  std::unordered_map<EndpointKey, IpAddr, EndpointKeyHash> natpmp_external_;
  std::size_t elected_total_ = 0;
  std::size_t static_total_ = 0;
  std::unordered_map<IpAddr, std::size_t, wire::IpAddrHash> elected_by_internal_;
};

}  // namespace pcpd::core
