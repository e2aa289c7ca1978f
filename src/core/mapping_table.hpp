// pcpd::core::MappingTable: every mapping core knows, with the indexes a request needs:
//   MAP key (internal addr, proto, port) and PEER key (5-tuple)      -> mapping   (O(1))
//   internal endpoint -> its external endpoint (binding), shared by all its MAP and PEER mappings
//                        (endpoint-independent mapping, RFC 6887 §11.3 / R-MAP-12)
//   external endpoint -> internal endpoint; per (external addr, proto) a PortAllocator bitmap
//   internal address and requesting client -> their mappings (quotas, bulk deletes, R-LIFE-6)
//   expiry order (std::set, O(log n))
//   elected (RFC 7767 checkpoint) mappings: total and per internal address (checkpoint quotas)
// The table never calls the datapath: Server applies a ChangeSet first, then commit()s it here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/datapath.hpp"
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
  [[nodiscard]] const Binding* binding(const EndpointKey& internal) const;
  // Is this external endpoint held by an internal endpoint? (returns that endpoint)
  [[nodiscard]] const EndpointKey* external_owner(const EndpointKey& external) const;
  // Free for a new binding: not held and, for IPv4, not marked in the pool.
  [[nodiscard]] bool external_free(const EndpointKey& external) const;
  [[nodiscard]] std::optional<std::uint16_t> find_free_port(const IpAddr& external_addr,
                                                            std::uint8_t protocol, std::uint16_t lo,
                                                            std::uint16_t hi,
                                                            std::uint16_t start) const;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t count_for_internal(const IpAddr& internal) const;
  [[nodiscard]] std::vector<const Mapping*> of_internal(const IpAddr& internal) const;
  [[nodiscard]] std::vector<const Mapping*> of_client(const IpAddr& client) const;
  // RFC 7767 elected mappings (Mapping::checkpoint), kept by every mutation below.
  [[nodiscard]] std::size_t elected_count() const { return elected_total_; }
  [[nodiscard]] std::size_t elected_for_internal(const IpAddr& internal) const;

  [[nodiscard]] Millis next_expiry() const;
  [[nodiscard]] std::vector<Mapping> due(Millis now) const;  // expires <= now, soonest first
  [[nodiscard]] std::vector<Mapping> snapshot() const;
  // Calls f for every mapping, in no particular order, without copying the table.
  template <class F>
  void visit(F&& f) const {
    for (const auto& [id, m] : entries_) f(m);
  }

  // Would inserting `m` clash with the table (same key, or an external endpoint used by another
  // internal endpoint, or its internal endpoint already bound elsewhere)?
  [[nodiscard]] bool conflicts(const Mapping& m) const;

  // Mutations. Preconditions: insert() only when !conflicts(m); erase()/replace() name a mapping
  // present by key (kind + internal endpoint, + remote for PEER); replace() keeps every key field.
  void insert(Mapping m);
  void erase(const Mapping& m);
  void replace(const Mapping& m);
  void commit(const ChangeSet& changes);  // after a successful Datapath::apply

 private:
  using Id = std::uint64_t;
  struct PoolKeyHash {
    std::size_t operator()(const std::pair<IpAddr, std::uint8_t>& k) const noexcept {
      return wire::IpAddrHash{}(k.first) * 31u + k.second;
    }
  };
  using IdSet = std::unordered_set<Id>;

  [[nodiscard]] std::optional<Id> id_of(const Mapping& m) const;
  [[nodiscard]] std::vector<const Mapping*> resolve(const IdSet* ids) const;
  static void unlink(std::unordered_map<IpAddr, IdSet, wire::IpAddrHash>& index, const IpAddr& a,
                     Id id);
  void bind(const Mapping& m);
  void unbind(const Mapping& m);
  void count_elected(const Mapping& m, bool add);

  Id next_id_ = 1;
  std::unordered_map<Id, Mapping> entries_;
  std::unordered_map<EndpointKey, Id, EndpointKeyHash> map_index_;
  std::unordered_map<PeerKey, Id, PeerKeyHash> peer_index_;
  std::unordered_map<EndpointKey, Binding, EndpointKeyHash> bindings_;
  std::unordered_map<EndpointKey, EndpointKey, EndpointKeyHash> external_index_;
  std::unordered_map<std::pair<IpAddr, std::uint8_t>, std::unique_ptr<PortAllocator>, PoolKeyHash>
      pools_;
  std::unordered_map<IpAddr, IdSet, wire::IpAddrHash> by_internal_;
  std::unordered_map<IpAddr, IdSet, wire::IpAddrHash> by_client_;
  std::set<std::pair<Millis, Id>> expiry_;
  std::size_t elected_total_ = 0;
  std::unordered_map<IpAddr, std::size_t, wire::IpAddrHash> elected_by_internal_;
};

}  // namespace pcpd::core
