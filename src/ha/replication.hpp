// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ha replication rules, pure: which changes of a core::ChangeSet travel to the peer, and the
// standby's copy of the replicated mappings (ReplicatedSet) with the datapath changes that each
// received message implies. Owns ReplicationScope, changes_to_send(), ReplicatedSet.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "ha/peer_message.hpp"

namespace pcpd::ha {

enum class ReplicationScope : std::uint8_t {
  Elected,  // only RFC 7767 elected mappings (Mapping::checkpoint); the default
  All,      // every mapping
};

// The peer changes one ChangeSet implies, in order. With Elected: an election (or a new elected
// mapping) sends an upsert, an un-election or the removal of an elected mapping sends a remove,
// and changes of unelected mappings send nothing.
// Whether `m` travels to the peer: elected mappings (scope elected) or all (scope all), never a
// static one (both routers have it from their configuration).
[[nodiscard]] bool replicated(const core::Mapping& m, ReplicationScope scope);
[[nodiscard]] std::vector<MappingChange> changes_to_send(const core::ChangeSet& changes,
                                                         ReplicationScope scope);

// The mappings the standby holds for its peer, by MappingId.
class ReplicatedSet {
 public:
  // Applies one received change. Returns the datapath change it implies: Add or Replace for an
  // upsert, Remove for a remove of a held mapping; nullopt for a remove of an unknown mapping.
  std::optional<core::Change> apply(const MappingChange& change);
  // Replaces everything by a snapshot. Returns the datapath changes from the old set to the new:
  // Remove for mappings gone, Replace for mappings kept (new lifetime and fields), Add for new ones.
  core::ChangeSet replace_all(std::vector<core::Mapping> mappings);
  // Drops mappings whose lifetime has passed (their kernel elements time out on their own).
  std::size_t prune(core::Millis now);

  [[nodiscard]] std::vector<core::Mapping> mappings() const;  // sorted by MappingId
  [[nodiscard]] std::size_t size() const { return by_id_.size(); }
  [[nodiscard]] const core::Mapping* find(const MappingId& id) const;

 private:
  std::map<MappingId, core::Mapping> by_id_;
};

}  // namespace pcpd::ha
