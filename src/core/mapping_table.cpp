#include "core/mapping_table.hpp"

#include <algorithm>

#include "util/result.hpp"

namespace pcpd::core {

const Mapping* MappingTable::find_map(const EndpointKey& internal) const {
  auto it = map_index_.find(internal);
  return it == map_index_.end() ? nullptr : &entries_.at(it->second);
}

const Mapping* MappingTable::find_peer(const PeerKey& key) const {
  auto it = peer_index_.find(key);
  return it == peer_index_.end() ? nullptr : &entries_.at(it->second);
}

const MappingTable::Binding* MappingTable::binding(const EndpointKey& internal) const {
  auto it = bindings_.find(internal);
  return it == bindings_.end() ? nullptr : &it->second;
}

const EndpointKey* MappingTable::external_owner(const EndpointKey& external) const {
  auto it = external_index_.find(external);
  return it == external_index_.end() ? nullptr : &it->second;
}

bool MappingTable::external_free(const EndpointKey& external) const {
  if (external_index_.contains(external)) return false;
  if (!external.addr.is_v4()) return true;
  auto pool = pools_.find({external.addr, external.protocol});
  return pool == pools_.end() || !pool->second->used(external.port);
}

std::optional<std::uint16_t> MappingTable::find_free_port(const IpAddr& external_addr,
                                                          std::uint8_t protocol, std::uint16_t lo,
                                                          std::uint16_t hi,
                                                          std::uint16_t start) const {
  auto pool = pools_.find({external_addr, protocol});
  if (pool == pools_.end()) return PortAllocator{}.find_free(lo, hi, start);
  return pool->second->find_free(lo, hi, start);
}

std::size_t MappingTable::count_for_internal(const IpAddr& internal) const {
  auto it = by_internal_.find(internal);
  return it == by_internal_.end() ? 0 : it->second.size();
}

std::size_t MappingTable::elected_for_internal(const IpAddr& internal) const {
  auto it = elected_by_internal_.find(internal);
  return it == elected_by_internal_.end() ? 0 : it->second;
}

void MappingTable::count_elected(const Mapping& m, bool add) {
  if (!m.checkpoint) return;
  if (add) {
    ++elected_total_;
    ++elected_by_internal_[m.internal_addr];
    return;
  }
  auto it = elected_by_internal_.find(m.internal_addr);
  PCPD_ASSERT(elected_total_ > 0 && it != elected_by_internal_.end() && it->second > 0);
  --elected_total_;
  if (--it->second == 0) elected_by_internal_.erase(it);
}

std::vector<const Mapping*> MappingTable::resolve(const IdSet* ids) const {
  std::vector<const Mapping*> out;
  if (ids == nullptr) return out;
  out.reserve(ids->size());
  for (Id id : *ids) out.push_back(&entries_.at(id));
  return out;
}

std::vector<const Mapping*> MappingTable::of_internal(const IpAddr& internal) const {
  auto it = by_internal_.find(internal);
  return resolve(it == by_internal_.end() ? nullptr : &it->second);
}

std::vector<const Mapping*> MappingTable::of_client(const IpAddr& client) const {
  auto it = by_client_.find(client);
  return resolve(it == by_client_.end() ? nullptr : &it->second);
}

Millis MappingTable::next_expiry() const {
  return expiry_.empty() ? Millis::max() : expiry_.begin()->first;
}

std::vector<Mapping> MappingTable::due(Millis now) const {
  std::vector<Mapping> out;
  for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now; ++it)
    out.push_back(entries_.at(it->second));
  return out;
}

std::vector<Mapping> MappingTable::snapshot() const {
  std::vector<Mapping> out;
  out.reserve(entries_.size());
  for (const auto& [id, m] : entries_) out.push_back(m);
  return out;
}

std::optional<MappingTable::Id> MappingTable::id_of(const Mapping& m) const {
  if (m.kind == MappingKind::Map) {
    auto it = map_index_.find(internal_key(m));
    if (it != map_index_.end()) return it->second;
  } else {
    auto it = peer_index_.find(peer_key(m));
    if (it != peer_index_.end()) return it->second;
  }
  return std::nullopt;
}

bool MappingTable::conflicts(const Mapping& m) const {
  if (id_of(m)) return true;
  const EndpointKey in = internal_key(m);
  if (const Binding* b = binding(in))
    return b->external_addr != m.external_addr || b->external_port != m.external_port;
  return !external_free(external_key(m));
}

// Endpoint-independent mapping: the first mapping of an internal endpoint takes its external
// endpoint, later ones (MAP or PEER) share it (RFC 6887 §11.3, R-MAP-12).
void MappingTable::bind(const Mapping& m) {
  const EndpointKey in = internal_key(m);
  auto [it, fresh] = bindings_.try_emplace(in, Binding{m.external_addr, m.external_port, 0});
  ++it->second.users;
  if (!fresh) return;
  const EndpointKey ex = external_key(m);
  external_index_.emplace(ex, in);
  if (ex.addr.is_v4() && in.addr.is_v4()) {
    auto& pool = pools_[{ex.addr, ex.protocol}];
    if (!pool) pool = std::make_unique<PortAllocator>();
    pool->mark(ex.port);
  }
}

void MappingTable::unbind(const Mapping& m) {
  const EndpointKey in = internal_key(m);
  auto it = bindings_.find(in);
  PCPD_ASSERT(it != bindings_.end());
  if (--it->second.users > 0) return;
  const EndpointKey ex{it->second.external_addr, m.protocol, it->second.external_port};
  bindings_.erase(it);
  external_index_.erase(ex);
  auto pool = pools_.find({ex.addr, ex.protocol});
  if (pool != pools_.end()) {
    pool->second->unmark(ex.port);
    if (pool->second->used_count() == 0) pools_.erase(pool);
  }
}

void MappingTable::unlink(std::unordered_map<IpAddr, IdSet, wire::IpAddrHash>& index,
                          const IpAddr& a, Id id) {
  auto it = index.find(a);
  if (it == index.end()) return;
  it->second.erase(id);
  if (it->second.empty()) index.erase(it);
}

void MappingTable::insert(Mapping m) {
  PCPD_ASSERT(!id_of(m));
  const Id id = next_id_++;
  if (m.kind == MappingKind::Map)
    map_index_.emplace(internal_key(m), id);
  else
    peer_index_.emplace(peer_key(m), id);
  bind(m);
  by_internal_[m.internal_addr].insert(id);
  by_client_[m.client_addr].insert(id);
  expiry_.emplace(m.expires, id);
  count_elected(m, true);
  entries_.emplace(id, std::move(m));
}

void MappingTable::erase(const Mapping& key) {
  const auto id = id_of(key);
  PCPD_ASSERT(id.has_value());
  auto it = entries_.find(*id);
  const Mapping& m = it->second;
  if (m.kind == MappingKind::Map)
    map_index_.erase(internal_key(m));
  else
    peer_index_.erase(peer_key(m));
  unbind(m);
  unlink(by_internal_, m.internal_addr, *id);
  unlink(by_client_, m.client_addr, *id);
  expiry_.erase({m.expires, *id});
  count_elected(m, false);
  entries_.erase(it);
}

void MappingTable::replace(const Mapping& m) {
  const auto id = id_of(m);
  PCPD_ASSERT(id.has_value());
  Mapping& cur = entries_.at(*id);
  PCPD_ASSERT(cur.external_addr == m.external_addr && cur.external_port == m.external_port);
  expiry_.erase({cur.expires, *id});
  expiry_.emplace(m.expires, *id);
  if (cur.client_addr != m.client_addr) {
    unlink(by_client_, cur.client_addr, *id);
    by_client_[m.client_addr].insert(*id);
  }
  // The key (and so internal_addr) is unchanged; only the election may differ.
  count_elected(cur, false);
  count_elected(m, true);
  cur = m;
}

void MappingTable::commit(const ChangeSet& changes) {
  for (const Change& c : changes.changes) {
    switch (c.op) {
      case Change::Op::Add: insert(c.mapping); break;
      case Change::Op::Remove: erase(c.mapping); break;
      case Change::Op::Replace: replace(c.mapping); break;
    }
  }
}

}  // namespace pcpd::core
