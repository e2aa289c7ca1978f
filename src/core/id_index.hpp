// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::IdIndex: a compact hash index of ids (4 bytes a slot, open addressing, linear
// probing, deletion by backward shift, so no tombstones). The keys are not stored: the owner
// passes the key's hash and a predicate that compares an id's key, and, for growth and deletion,
// a function that recomputes the hash of a stored id. The load stays between 1/8 and 3/4, so a
// lookup is O(1) expected.
// Each slot holds a 26-bit id and 6 bits of the key's hash (a tag): a probe calls the predicate
// (which reads the mapping, a cache miss at 1,000,000 mappings) only when the tag matches, so a
// hit reads about one mapping and a miss almost none (the compare of every probed
// mapping was 5 % of pcpd's CPU at 1,000,000). Ids go up to kMaxId. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pcpd::core {

class IdIndex {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;  // no id (also an empty slot)
  static constexpr unsigned kIdBits = 26;
  static constexpr std::uint32_t kIdMask = (std::uint32_t{1} << kIdBits) - 1;
  static constexpr std::uint32_t kMaxId = kIdMask - 1;  // kIdMask with every tag bit is kNone

  [[nodiscard]] std::size_t size() const { return size_; }

  // The stored id whose key `match`es, or kNone. `hash` is the key's hash.
  template <class Match>
  [[nodiscard]] std::uint32_t find(std::size_t hash, Match&& match) const {
    if (size_ == 0) return kNone;
    const std::uint64_t h = mix(hash);
    const std::uint32_t tag = tag_of(h);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const std::uint32_t e = slots_[i];
      if (e == kNone) return kNone;
      if ((e & ~kIdMask) == tag && match(e & kIdMask)) return e & kIdMask;
    }
  }

  // Prefetching (a burst's lookups overlap their cache misses instead of each request
  // waiting for its own). prefetch() starts loading the slot find(hash) reads first; guess() is
  // the first stored id whose tag matches `hash`, without comparing keys (so possibly another
  // key's), or kNone: the record to start loading next. Neither changes anything.
  void prefetch(std::size_t hash) const {
    if (size_ != 0) __builtin_prefetch(&slots_[mix(hash) & mask_]);
  }
  [[nodiscard]] std::uint32_t guess(std::size_t hash) const {
    return find(hash, [](std::uint32_t) { return true; });
  }

  // Adds `id` (at most kMaxId) under `hash`. Precondition: no stored id has the same key.
  template <class HashOf>
  void insert(std::size_t hash, std::uint32_t id, HashOf&& hash_of) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rehash(slots_.empty() ? 16 : slots_.size() * 2, hash_of);
    place(mix(hash), id);
    ++size_;
  }

  // Removes `id`, stored under `hash`. Precondition: it is stored.
  template <class HashOf>
  void erase(std::size_t hash, std::uint32_t id, HashOf&& hash_of) {
    std::size_t i = find_slot(hash, id);
    // Backward shift: pull later members of the probe run into the hole when their home allows.
    for (std::size_t j = (i + 1) & mask_; slots_[j] != kNone; j = (j + 1) & mask_) {
      const std::size_t h = mix(hash_of(slots_[j] & kIdMask)) & mask_;
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = kNone;
    --size_;
    if (slots_.size() > 64 && size_ * 8 < slots_.size()) rehash(slots_.size() / 2, hash_of);
  }

  // The id stored under `hash` as `from` becomes `to` (same key, so the same place and tag).
  void reassign(std::size_t hash, std::uint32_t from, std::uint32_t to) {
    std::uint32_t& e = slots_[find_slot(hash, from)];
    e = (e & ~kIdMask) | to;
  }

  [[nodiscard]] std::size_t capacity_bytes() const { return slots_.capacity() * sizeof(std::uint32_t); }

 private:
  // The callers' hashes are weak in their low bits (IPv4-mapped addresses), so mix them all
  // down (splitmix64 finalizer): the home slot from the low bits, the tag from the top ones.
  [[nodiscard]] static std::uint64_t mix(std::size_t hash) {
    std::uint64_t x = hash;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  [[nodiscard]] static std::uint32_t tag_of(std::uint64_t mixed) {
    return static_cast<std::uint32_t>(mixed >> (64 - (32 - kIdBits))) << kIdBits;
  }

  [[nodiscard]] std::size_t find_slot(std::size_t hash, std::uint32_t id) const {
    std::size_t i = mix(hash) & mask_;
    while ((slots_[i] & kIdMask) != id) i = (i + 1) & mask_;  // kNone's id part is no id
    return i;
  }

  void place(std::uint64_t mixed, std::uint32_t id) {
    std::size_t i = mixed & mask_;
    while (slots_[i] != kNone) i = (i + 1) & mask_;
    slots_[i] = tag_of(mixed) | id;
  }

  template <class HashOf>
  void rehash(std::size_t capacity, HashOf&& hash_of) {
    std::vector<std::uint32_t> old(capacity, kNone);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (std::uint32_t e : old)
      if (e != kNone) place(mix(hash_of(e & kIdMask)), e & kIdMask);
  }

  std::vector<std::uint32_t> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace pcpd::core
