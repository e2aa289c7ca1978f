// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ct::FlowIndex: the connections of pcpd's mappings that the kernel told pcpd about, by the
// endpoints of their original tuple. pcpd.nft logs each connection a mapping translates, pinholes
// or elects on its first such packet (NFLOG); with this index a mapping's connections are exact
// lookups, so deleting or electing a mapping costs what its own connections cost, however many
// flows the router holds. Entries of ended connections are dropped when a lookup misses them
// (ConntrackSync sweeps the index slowly for that). Pure; owned by ConntrackSync's worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conntrack/ct_kernel.hpp"

namespace pcpd::ct {

// A connection's identity for conntrack: family, protocol, original tuple, zone.
struct FlowKey {
  std::uint8_t family = 0;
  std::uint8_t protocol = 0;
  std::uint16_t zone = 0;
  FlowTuple orig;
  bool operator==(const FlowKey&) const = default;
  static FlowKey of(const CtEntry& e) { return {e.family, e.protocol, e.zone, e.orig}; }
  [[nodiscard]] CtEntry entry() const {
    CtEntry e;
    e.family = family;
    e.protocol = protocol;
    e.zone = zone;
    e.orig = orig;
    return e;
  }
};

// An endpoint of a connection's original tuple, with its protocol.
struct Endpoint {
  wire::IpAddr addr;
  std::uint16_t port = 0;
  std::uint8_t protocol = 0;
  bool operator==(const Endpoint&) const = default;
};

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const;
};
struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const;
};

class FlowIndex {
 public:
  explicit FlowIndex(std::size_t capacity) : capacity_(capacity) {}
  // False when the index is full (the connection is not recorded).
  bool add(const FlowKey& k);
  void remove(const FlowKey& k);
  void clear();
  // The connections with `ep` as the source or destination of their original tuple.
  void at(const Endpoint& ep, std::vector<FlowKey>& out) const;
  // Up to `n` connections, continuing where the previous call stopped (a slow sweep).
  void next(std::size_t n, std::vector<FlowKey>& out);
  [[nodiscard]] std::size_t size() const { return ids_.size(); }

 private:
  std::size_t capacity_;
  std::vector<FlowKey> slots_;
  std::vector<std::uint32_t> free_;
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> ids_;
  std::unordered_map<Endpoint, std::unordered_set<std::uint32_t>, EndpointHash> by_endpoint_;
  std::size_t cursor_ = 0;
};

}  // namespace pcpd::ct
