// pcpd::core::IdIndex: a compact hash index of 32-bit ids (4 bytes a slot, open addressing,
// linear probing, deletion by backward shift, so no tombstones). The keys are not stored: the
// owner passes the key's hash and a predicate that compares an id's key, and, for growth and
// deletion, a function that recomputes the hash of a stored id. The load stays between 1/8 and
// 3/4, so a lookup is O(1) expected. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pcpd::core {

class IdIndex {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  [[nodiscard]] std::size_t size() const { return size_; }

  // The stored id whose key `match`es, or kNone. `hash` is the key's hash.
  template <class Match>
  [[nodiscard]] std::uint32_t find(std::size_t hash, Match&& match) const {
    if (size_ == 0) return kNone;
    for (std::size_t i = home(hash);; i = (i + 1) & mask_) {
      const std::uint32_t id = slots_[i];
      if (id == kNone || match(id)) return id;
    }
  }

  // Adds `id` under `hash`. Precondition: no stored id has the same key.
  template <class HashOf>
  void insert(std::size_t hash, std::uint32_t id, HashOf&& hash_of) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rehash(slots_.empty() ? 16 : slots_.size() * 2, hash_of);
    std::size_t i = home(hash);
    while (slots_[i] != kNone) i = (i + 1) & mask_;
    slots_[i] = id;
    ++size_;
  }

  // Removes `id`, stored under `hash`. Precondition: it is stored.
  template <class HashOf>
  void erase(std::size_t hash, std::uint32_t id, HashOf&& hash_of) {
    std::size_t i = home(hash);
    while (slots_[i] != id) i = (i + 1) & mask_;
    // Backward shift: pull later members of the probe run into the hole when their home allows.
    for (std::size_t j = (i + 1) & mask_; slots_[j] != kNone; j = (j + 1) & mask_) {
      const std::size_t h = home(hash_of(slots_[j]));
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = kNone;
    --size_;
    if (slots_.size() > 64 && size_ * 8 < slots_.size()) rehash(slots_.size() / 2, hash_of);
  }

  // The id stored under `hash` as `from` becomes `to` (same key, so the same place).
  void reassign(std::size_t hash, std::uint32_t from, std::uint32_t to) {
    std::size_t i = home(hash);
    while (slots_[i] != from) i = (i + 1) & mask_;
    slots_[i] = to;
  }

  [[nodiscard]] std::size_t capacity_bytes() const { return slots_.capacity() * sizeof(std::uint32_t); }

 private:
  // The callers' hashes are weak in their low bits (IPv4-mapped addresses), so mix them all
  // down before masking (splitmix64 finalizer).
  [[nodiscard]] std::size_t home(std::size_t hash) const {
    std::uint64_t x = hash;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return static_cast<std::size_t>(x) & mask_;
  }

  template <class HashOf>
  void rehash(std::size_t capacity, HashOf&& hash_of) {
    std::vector<std::uint32_t> old(capacity, kNone);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (std::uint32_t id : old) {
      if (id == kNone) continue;
      std::size_t i = home(hash_of(id));
      while (slots_[i] != kNone) i = (i + 1) & mask_;
      slots_[i] = id;
    }
  }

  std::vector<std::uint32_t> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace pcpd::core
