// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/pending.hpp"

#include <array>
#include <bit>
#include <cstddef>

namespace pcpd::core {

namespace {

// Memory a transaction keeps for the next one; a larger one is given back.
constexpr std::size_t kKeep = 4096;

template <class C>
void reset(C& c) {
  if (c.size() > kKeep) c = C{};
  c.clear();
}

}  // namespace

void Pending::clear() {
  if (changes_.changes.capacity() > kKeep) changes_.changes = {};
  changes_.changes.clear();
  table_only_.clear();
  reset(endpoints_);
  reset(claimed_);
  reset(released_);
  reset(natpmp_);
  reset(count_by_internal_);
  reset(elected_by_internal_);
  honoured_.clear();
  size_delta_ = 0;
  elected_delta_ = 0;
  stats = Stats{};
  elections.clear();
  conflicts.clear();
}

void Pending::count(const Mapping& m, int sign) {
  size_delta_ += sign;
  count_by_internal_[m.internal_addr] += sign;
  if (m.checkpoint) {
    elected_delta_ += sign;
    elected_by_internal_[m.internal_addr] += sign;
  }
}

void Pending::stage(const Change& c) {
  const Mapping& m = c.mapping;
  endpoints_.insert(EndpointKey{m.internal_addr, m.protocol, m.internal_port});
  switch (c.op) {
    case Change::Op::Add:
      count(m, +1);
      claimed_.insert(EndpointKey{m.external_addr, m.protocol, m.external_port});
      if (m.origin == Origin::NatPmp && m.kind == MappingKind::Map)
        natpmp_.emplace(EndpointKey{m.external_addr, m.protocol, m.external_port}, m.internal_addr);
      break;
    case Change::Op::Remove:
      count(m, -1);
      released_.insert((std::uint32_t{m.protocol} << 16) | m.external_port);
      break;
    case Change::Op::Replace:
      // The keys stay (MappingTable::replace); the election and the origin may change. A
      // mapping NAT-PMP takes over (Policy::nonce_change) reserves its companion port from now
      // on; one PCP takes over keeps it in the table until the commit (stricter meanwhile).
      if (m.origin == Origin::NatPmp && c.previous.origin != Origin::NatPmp && m.kind == MappingKind::Map)
        natpmp_.emplace(EndpointKey{m.external_addr, m.protocol, m.external_port}, m.internal_addr);
      if (m.checkpoint != c.previous.checkpoint) {
        const int sign = m.checkpoint ? +1 : -1;
        elected_delta_ += sign;
        elected_by_internal_[m.internal_addr] += sign;
      }
      break;
  }
  changes_.changes.push_back(c);
}

void Pending::stage_table_only(const Mapping& m) {
  endpoints_.insert(EndpointKey{m.internal_addr, m.protocol, m.internal_port});
  table_only_.push_back(m);
}

bool Pending::claimed(const EndpointKey& external) const {
  if (claimed_.empty()) return false;
  return claimed_.contains(external) ||
         claimed_.contains(EndpointKey{external.addr, external.protocol, 0});
}

std::optional<IpAddr> Pending::natpmp_holder(const EndpointKey& external) const {
  const auto it = natpmp_.find(external);
  if (it == natpmp_.end()) return std::nullopt;
  return it->second;
}

std::ptrdiff_t Pending::count_delta(const IpAddr& internal) const {
  const auto it = count_by_internal_.find(internal);
  return it == count_by_internal_.end() ? 0 : it->second;
}

std::ptrdiff_t Pending::elected_delta(const IpAddr& internal) const {
  const auto it = elected_by_internal_.find(internal);
  return it == elected_by_internal_.end() ? 0 : it->second;
}

std::size_t Pending::honoured(const IpAddr& internal) const {
  const auto it = honoured_.find(internal);
  return it == honoured_.end() ? 0 : it->second;
}

void Pending::note_election(Election e, const IpAddr& internal) {
  elections.push_back(ElectionRecord{e, internal});
  if (e == Election::Honoured) ++honoured_[internal];
}

void add_counts(Stats& to, const Stats& from) {
  // Stats is counters only, every one a std::uint64_t (arrays of them included): added as one
  // array, so that a counter added to Stats is never forgotten here.
  constexpr std::size_t n = sizeof(Stats) / sizeof(std::uint64_t);
  static_assert(sizeof(Stats) == n * sizeof(std::uint64_t), "Stats holds std::uint64_t only");
  using Words = std::array<std::uint64_t, n>;
  Words a = std::bit_cast<Words>(to);
  const Words b = std::bit_cast<Words>(from);
  for (std::size_t i = 0; i < n; ++i) a[i] += b[i];
  const std::uint64_t elected = to.elected;
  to = std::bit_cast<Stats>(a);
  to.elected = elected;
}

}  // namespace pcpd::core
