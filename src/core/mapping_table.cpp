// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/mapping_table.hpp"

#include <algorithm>
#include <cstdint>

#include "util/result.hpp"

namespace pcpd::core {

namespace {

std::size_t hash_of(const EndpointKey& k) { return EndpointKeyHash{}(k); }
std::size_t hash_of(const PeerKey& k) { return PeerKeyHash{}(k); }

}  // namespace

// --- slab ------------------------------------------------------------------------------------

MappingTable::Id MappingTable::alloc_slot() {
  if (free_ != kNone) {
    const Id id = free_;
    free_ = slot(id).addr_next;
    return id;
  }
  PCPD_ASSERT(high_ < kCapacity);  // insert() only when !conflicts(): size_ < kCapacity
  if ((high_ >> kChunkBits) == chunks_.size())
    chunks_.push_back(std::make_unique<Slot[]>(std::size_t{1} << kChunkBits));
  return high_++;
}

void MappingTable::free_slot(Id id) {
  Slot& s = slot(id);
  s = Slot{};  // drops the mapping's filters and description
  s.addr_next = free_;
  free_ = id;
}

// --- lookups ---------------------------------------------------------------------------------

MappingTable::Id MappingTable::find_map_id(const EndpointKey& k) const {
  return map_index_.find(hash_of(k), [&](Id id) { return internal_key(slot(id).m) == k; });
}

MappingTable::Id MappingTable::find_peer_id(const PeerKey& k) const {
  return peer_index_.find(hash_of(k), [&](Id id) { return peer_key(slot(id).m) == k; });
}

MappingTable::Id MappingTable::find_peer_bind(const EndpointKey& k) const {
  return peer_bind_.find(hash_of(k), [&](Id id) { return internal_key(slot(id).m) == k; });
}

MappingTable::Id MappingTable::find_external(const EndpointKey& k) const {
  return external_.find(hash_of(k), [&](Id id) { return external_key(slot(id).m) == k; });
}

// --- prefetching ---------------------------------------------------------------------

void MappingTable::prefetch_slot(Id id) const {
  if (id == kNone) return;
  // A Slot spans several cache lines: the key and nonce at its start (the lookup's compare, the
  // nonce check), the expiry and lifetime after them, the heap position and list links at its end.
  constexpr std::uintptr_t kLine = 64;
  const auto begin = reinterpret_cast<std::uintptr_t>(&slot(id));
  for (std::uintptr_t line = begin & ~(kLine - 1); line < begin + sizeof(Slot); line += kLine)
    __builtin_prefetch(reinterpret_cast<const void*>(line));
}

void MappingTable::prefetch_map_index(const EndpointKey& internal) const { map_index_.prefetch(hash_of(internal)); }
void MappingTable::prefetch_map_record(const EndpointKey& internal) const {
  prefetch_slot(map_index_.guess(hash_of(internal)));
}
void MappingTable::prefetch_peer_index(const PeerKey& key) const { peer_index_.prefetch(hash_of(key)); }
void MappingTable::prefetch_peer_record(const PeerKey& key) const { prefetch_slot(peer_index_.guess(hash_of(key))); }

// A mapping of the internal endpoint (they all share its external endpoint), or kNone.
MappingTable::Id MappingTable::binding_member(const EndpointKey& internal) const {
  const Id id = find_map_id(internal);
  return id != kNone ? id : find_peer_bind(internal);
}

MappingTable::Id MappingTable::id_of(const Mapping& m) const {
  return m.kind == MappingKind::Map ? find_map_id(internal_key(m)) : find_peer_id(peer_key(m));
}

const Mapping* MappingTable::find_map(const EndpointKey& internal) const {
  const Id id = find_map_id(internal);
  return id == kNone ? nullptr : &slot(id).m;
}

const Mapping* MappingTable::find_peer(const PeerKey& key) const {
  const Id id = find_peer_id(key);
  return id == kNone ? nullptr : &slot(id).m;
}

std::optional<MappingTable::Binding> MappingTable::binding(const EndpointKey& internal) const {
  const Id map = find_map_id(internal);
  const Id peer = find_peer_bind(internal);
  if (map == kNone && peer == kNone) return std::nullopt;
  const Mapping& m = slot(map != kNone ? map : peer).m;
  Binding b{m.external_addr, m.external_port, map != kNone ? 1u : 0u};
  if (peer != kNone) {
    Id p = peer;
    do {
      ++b.users;
      p = slot(p).peer_next;
    } while (p != peer);
  }
  return b;
}

bool MappingTable::external_free(const EndpointKey& external) const {
  if (find_external(external) != kNone) return false;
  if (!external.addr.is_v4()) return true;
  auto pool = pools_.find({external.addr, external.protocol});
  if (pool == pools_.end()) return true;
  // Port 0 is an all-ports mapping (RFC 6887 §11.1): it needs every port of the pool, and while
  // it holds them no port is free.
  if (external.port == 0) return pool->second->used_count() == 0;
  return !pool->second->used(external.port) && !pool->second->used(0);
}

bool MappingTable::natpmp_other_on(const IpAddr& external_addr, std::uint8_t protocol, const IpAddr& internal) const {
  return std::any_of(natpmp_external_.begin(), natpmp_external_.end(), [&](const auto& kv) {
    return kv.first.addr == external_addr && kv.first.protocol == protocol && kv.second != internal;
  });
}

std::optional<IpAddr> MappingTable::natpmp_holder(const EndpointKey& external) const {
  auto it = natpmp_external_.find(external);
  if (it == natpmp_external_.end()) return std::nullopt;
  return it->second;
}

void MappingTable::note_natpmp(const Mapping& m, bool present) {
  if (m.origin != Origin::NatPmp || m.kind != MappingKind::Map) return;
  if (present)
    natpmp_external_[external_key(m)] = m.internal_addr;
  else
    natpmp_external_.erase(external_key(m));
}

std::optional<std::uint16_t> MappingTable::find_free_port(const IpAddr& external_addr,
                                                          std::uint8_t protocol, std::uint16_t lo,
                                                          std::uint16_t hi,
                                                          std::uint16_t start) const {
  auto pool = pools_.find({external_addr, protocol});
  if (pool == pools_.end()) return PortAllocator{}.find_free(lo, hi, start);
  if (pool->second->used(0)) return std::nullopt;  // an all-ports mapping holds them all
  return pool->second->find_free(lo, hi, start);
}

std::size_t MappingTable::count_for_internal(const IpAddr& internal) const {
  auto it = by_internal_.find(internal);
  return it == by_internal_.end() ? 0 : it->second.count;
}

std::size_t MappingTable::elected_for_internal(const IpAddr& internal) const {
  auto it = elected_by_internal_.find(internal);
  return it == elected_by_internal_.end() ? 0 : it->second;
}

std::vector<const Mapping*> MappingTable::of_internal(const IpAddr& internal) const {
  std::vector<const Mapping*> out;
  auto it = by_internal_.find(internal);
  if (it == by_internal_.end()) return out;
  out.reserve(it->second.count);
  for (Id id = it->second.head; id != kNone; id = slot(id).addr_next) out.push_back(&slot(id).m);
  return out;
}

std::vector<const Mapping*> MappingTable::of_client(const IpAddr& client) const {
  // Its own mappings (client == internal) plus the THIRD_PARTY ones it made for others.
  std::vector<const Mapping*> out;
  if (auto it = by_internal_.find(client); it != by_internal_.end()) {
    for (Id id = it->second.head; id != kNone; id = slot(id).addr_next)
      if (slot(id).m.client_addr == client) out.push_back(&slot(id).m);
  }
  if (auto it = third_party_.find(client); it != third_party_.end()) {
    for (Id id : it->second) out.push_back(&slot(id).m);
  }
  return out;
}

bool MappingTable::conflicts(const Mapping& m) const {
  if (size_ >= kCapacity || id_of(m) != kNone) return true;
  if (const Id b = binding_member(internal_key(m)); b != kNone)
    return slot(b).m.external_addr != m.external_addr || slot(b).m.external_port != m.external_port;
  return !external_free(external_key(m));
}

// --- expiry heap -----------------------------------------------------------------------------

bool MappingTable::heap_less(Id a, Id b) const {
  const Millis ea = slot(a).m.expires;
  const Millis eb = slot(b).m.expires;
  return ea < eb || (ea == eb && a < b);
}

void MappingTable::heap_set(std::size_t pos, Id id) {
  heap_[pos] = id;
  slot(id).heap_pos = static_cast<Id>(pos);
}

void MappingTable::heap_up(std::size_t pos) {
  const Id id = heap_[pos];
  while (pos > 0) {
    const std::size_t parent = (pos - 1) / 2;
    if (!heap_less(id, heap_[parent])) break;
    heap_set(pos, heap_[parent]);
    pos = parent;
  }
  heap_set(pos, id);
}

void MappingTable::heap_down(std::size_t pos) {
  const Id id = heap_[pos];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * pos + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_less(heap_[child + 1], heap_[child])) ++child;
    if (!heap_less(heap_[child], id)) break;
    heap_set(pos, heap_[child]);
    pos = child;
  }
  heap_set(pos, id);
}

void MappingTable::heap_push(Id id) {
  heap_.push_back(id);
  heap_up(heap_.size() - 1);
}

void MappingTable::heap_remove(Id id) {
  const std::size_t pos = slot(id).heap_pos;
  const Id last = heap_.back();
  heap_.pop_back();
  if (last != id) {
    heap_set(pos, last);
    heap_up(pos);
    heap_down(slot(last).heap_pos);
  }
  if (heap_.size() * 4 < heap_.capacity() && heap_.capacity() > 1024) heap_.shrink_to_fit();
}

Millis MappingTable::next_expiry() const {
  return heap_.empty() ? Millis::max() : slot(heap_.front()).m.expires;
}

std::vector<Mapping> MappingTable::due(Millis now) const {
  // The heap's due part is a subtree at the root: walk it (O(due)), then order it.
  std::vector<Id> ids;
  std::vector<std::size_t> stack;
  if (!heap_.empty()) stack.push_back(0);
  while (!stack.empty()) {
    const std::size_t pos = stack.back();
    stack.pop_back();
    if (pos >= heap_.size() || slot(heap_[pos]).m.expires > now) continue;
    ids.push_back(heap_[pos]);
    stack.push_back(2 * pos + 1);
    stack.push_back(2 * pos + 2);
  }
  std::sort(ids.begin(), ids.end(), [this](Id a, Id b) { return heap_less(a, b); });
  std::vector<Mapping> out;
  out.reserve(ids.size());
  for (Id id : ids) out.push_back(slot(id).m);
  return out;
}

std::vector<Mapping> MappingTable::snapshot() const {
  std::vector<Mapping> out;
  out.reserve(size_);
  visit([&out](const Mapping& m) { out.push_back(m); });
  return out;
}

// --- per-address lists -----------------------------------------------------------------------

void MappingTable::link(Id id) {
  Slot& s = slot(id);
  AddrList& l = by_internal_[s.m.internal_addr];
  s.addr_prev = kNone;
  s.addr_next = l.head;
  if (l.head != kNone) slot(l.head).addr_prev = id;
  l.head = id;
  ++l.count;
}

void MappingTable::unlink(Id id) {
  Slot& s = slot(id);
  auto it = by_internal_.find(s.m.internal_addr);
  PCPD_ASSERT(it != by_internal_.end() && it->second.count > 0);
  if (s.addr_prev != kNone)
    slot(s.addr_prev).addr_next = s.addr_next;
  else
    it->second.head = s.addr_next;
  if (s.addr_next != kNone) slot(s.addr_next).addr_prev = s.addr_prev;
  if (--it->second.count == 0) by_internal_.erase(it);
}

void MappingTable::add_third_party(Id id) {
  const Mapping& m = slot(id).m;
  if (m.client_addr != m.internal_addr) third_party_[m.client_addr].insert(id);
}

void MappingTable::remove_third_party(Id id) {
  const Mapping& m = slot(id).m;
  if (m.client_addr == m.internal_addr) return;
  auto it = third_party_.find(m.client_addr);
  if (it == third_party_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) third_party_.erase(it);
}

// The PEER mappings of one internal endpoint form a ring; peer_bind_ holds one of them.
void MappingTable::link_peer(Id id) {
  const EndpointKey in = internal_key(slot(id).m);
  const Id head = find_peer_bind(in);
  if (head == kNone) {
    slot(id).peer_next = id;
    peer_bind_.insert(hash_of(in), id, [this](Id x) { return hash_of(internal_key(slot(x).m)); });
    return;
  }
  slot(id).peer_next = slot(head).peer_next;
  slot(head).peer_next = id;
}

// O(PEER mappings of this internal endpoint): the ring is singly linked.
void MappingTable::unlink_peer(Id id) {
  const EndpointKey in = internal_key(slot(id).m);
  const Id next = slot(id).peer_next;
  if (next == id) {
    peer_bind_.erase(hash_of(in), id, [this](Id x) { return hash_of(internal_key(slot(x).m)); });
    return;
  }
  Id prev = next;
  while (slot(prev).peer_next != id) prev = slot(prev).peer_next;
  slot(prev).peer_next = next;
  if (find_peer_bind(in) == id) peer_bind_.reassign(hash_of(in), id, next);
}

void MappingTable::count_tallies(const Mapping& m, bool add) {
  if (m.is_static()) add ? ++static_total_ : --static_total_;
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

// --- mutations -------------------------------------------------------------------------------

void MappingTable::insert(Mapping m) {
  PCPD_ASSERT(id_of(m) == kNone);
  const EndpointKey in = internal_key(m);
  const EndpointKey ex = external_key(m);
  // Endpoint-independent mapping: the first mapping of an internal endpoint takes its external
  // endpoint, later ones (MAP or PEER) share it (RFC 6887 §11.3, R-MAP-12).
  const bool fresh = binding_member(in) == kNone;
  const Id id = alloc_slot();
  slot(id).m = std::move(m);
  const Mapping& s = slot(id).m;
  if (s.kind == MappingKind::Map) {
    map_index_.insert(hash_of(in), id, [this](Id x) { return hash_of(internal_key(slot(x).m)); });
  } else {
    peer_index_.insert(hash_of(peer_key(s)), id,
                       [this](Id x) { return hash_of(peer_key(slot(x).m)); });
    link_peer(id);
  }
  if (fresh && pooled(in, ex)) {
    auto& pool = pools_[{ex.addr, ex.protocol}];
    if (!pool) pool = std::make_unique<PortAllocator>();
    pool->mark(ex.port);
  } else if (fresh) {
    external_.insert(hash_of(ex), id, [this](Id x) { return hash_of(external_key(slot(x).m)); });
  }
  link(id);
  add_third_party(id);
  note_natpmp(s, true);
  heap_push(id);
  count_tallies(s, true);
  ++size_;
}

void MappingTable::erase(const Mapping& key) {
  const Id id = id_of(key);
  PCPD_ASSERT(id != kNone);
  const Mapping& m = slot(id).m;
  const EndpointKey in = internal_key(m);
  const EndpointKey ex = external_key(m);
  if (m.kind == MappingKind::Map) {
    map_index_.erase(hash_of(in), id, [this](Id x) { return hash_of(internal_key(slot(x).m)); });
  } else {
    peer_index_.erase(hash_of(peer_key(m)), id,
                      [this](Id x) { return hash_of(peer_key(slot(x).m)); });
    unlink_peer(id);
  }
  // The binding ends with its last mapping; else another mapping stands for it.
  const Id rest = binding_member(in);
  if (pooled(in, ex)) {
    auto pool = pools_.find({ex.addr, ex.protocol});
    PCPD_ASSERT(pool != pools_.end());
    if (rest == kNone) {
      pool->second->unmark(ex.port);
      if (pool->second->used_count() == 0) pools_.erase(pool);
    }
  } else {
    const Id held = find_external(ex);
    PCPD_ASSERT(held != kNone);
    if (rest == kNone)
      external_.erase(hash_of(ex), held, [this](Id x) { return hash_of(external_key(slot(x).m)); });
    else if (held == id)
      external_.reassign(hash_of(ex), id, rest);
  }
  unlink(id);
  remove_third_party(id);
  note_natpmp(m, false);
  heap_remove(id);
  count_tallies(m, false);
  free_slot(id);
  --size_;
}

void MappingTable::replace(const Mapping& m) {
  const Id id = id_of(m);
  PCPD_ASSERT(id != kNone);
  Mapping& cur = slot(id).m;
  PCPD_ASSERT(cur.external_addr == m.external_addr && cur.external_port == m.external_port);
  remove_third_party(id);
  note_natpmp(cur, false);  // a PCP request may have taken a NAT-PMP mapping over
  note_natpmp(m, true);
  // The key (and so internal_addr) is unchanged; only the election may differ.
  count_tallies(cur, false);
  count_tallies(m, true);
  const bool later = m.expires > cur.expires, sooner = m.expires < cur.expires;
  cur = m;
  add_third_party(id);
  // Only the way the expiry moved: a refresh (later) never needs heap_up, whose compare with the
  // parent reads another mapping (a cache miss at 1,000,000 mappings).
  if (sooner) heap_up(slot(id).heap_pos);
  if (later) heap_down(slot(id).heap_pos);
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
