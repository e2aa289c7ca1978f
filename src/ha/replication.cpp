// SPDX-License-Identifier: GPL-2.0-or-later
// Replication rules (elected-only or all) and the standby's ReplicatedSet.
#include "ha/replication.hpp"

#include <utility>

namespace pcpd::ha {

bool replicated(const core::Mapping& m, ReplicationScope scope) {
  // Static mappings come from each router's own configuration, never from the peer.
  if (m.is_static()) return false;
  return scope == ReplicationScope::All || m.checkpoint;  // RFC 7767: elected mappings
}

namespace {

MappingChange upsert(const core::Mapping& m) {
  MappingChange c;
  c.op = MappingChange::Op::Upsert;
  c.mapping = m;
  return c;
}

MappingChange remove(const core::Mapping& m) {
  MappingChange c;
  c.op = MappingChange::Op::Remove;
  c.id = id_of(m);
  return c;
}

}  // namespace

std::vector<MappingChange> changes_to_send(const core::ChangeSet& changes, ReplicationScope scope) {
  std::vector<MappingChange> out;
  for (const core::Change& c : changes.changes) {
    switch (c.op) {
      case core::Change::Op::Add:
        if (replicated(c.mapping, scope)) out.push_back(upsert(c.mapping));
        break;
      case core::Change::Op::Remove:
        if (replicated(c.mapping, scope)) out.push_back(remove(c.mapping));
        break;
      case core::Change::Op::Replace: {
        const bool before = replicated(c.previous, scope);
        const bool after = replicated(c.mapping, scope);
        // A replace keeps the key (MappingTable::replace); if it ever did not, drop the old one.
        if (before && (!after || id_of(c.previous) != id_of(c.mapping))) out.push_back(remove(c.previous));
        if (after) out.push_back(upsert(c.mapping));
        break;
      }
    }
  }
  return out;
}

std::optional<core::Change> ReplicatedSet::apply(const MappingChange& change) {
  core::Change out;
  if (change.op == MappingChange::Op::Upsert) {
    const MappingId id = id_of(change.mapping);
    auto it = by_id_.find(id);
    out.mapping = change.mapping;
    if (it == by_id_.end()) {
      out.op = core::Change::Op::Add;
      by_id_.emplace(id, change.mapping);
    } else {
      out.op = core::Change::Op::Replace;
      out.previous = std::move(it->second);
      it->second = change.mapping;
    }
    return out;
  }
  auto it = by_id_.find(change.id);
  if (it == by_id_.end()) return std::nullopt;
  out.op = core::Change::Op::Remove;
  out.flush_conntrack = false;  // the primary decides about its connections; conntrackd follows
  out.mapping = std::move(it->second);
  by_id_.erase(it);
  return out;
}

core::ChangeSet ReplicatedSet::replace_all(std::vector<core::Mapping> mappings) {
  std::map<MappingId, core::Mapping> next;
  for (core::Mapping& m : mappings) {
    const MappingId id = id_of(m);
    next.insert_or_assign(id, std::move(m));  // a duplicate id: the later record wins
  }
  core::ChangeSet out;
  for (auto& [id, old] : by_id_) {
    if (next.contains(id)) continue;
    core::Change c;
    c.op = core::Change::Op::Remove;
    c.mapping = old;
    out.changes.push_back(std::move(c));
  }
  for (const auto& [id, m] : next) {
    core::Change c;
    c.mapping = m;
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      c.op = core::Change::Op::Add;
    } else {
      c.op = core::Change::Op::Replace;
      c.previous = it->second;
    }
    out.changes.push_back(std::move(c));
  }
  by_id_ = std::move(next);
  return out;
}

std::size_t ReplicatedSet::prune(core::Millis now) {
  return std::erase_if(by_id_, [now](const auto& kv) { return kv.second.expires <= now; });
}

std::vector<core::Mapping> ReplicatedSet::mappings() const {
  std::vector<core::Mapping> out;
  out.reserve(by_id_.size());
  for (const auto& kv : by_id_) out.push_back(kv.second);
  return out;
}

const core::Mapping* ReplicatedSet::find(const MappingId& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

}  // namespace pcpd::ha
