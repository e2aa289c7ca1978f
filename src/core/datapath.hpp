// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Datapath: the whole boundary between core and the kernel (docs/design.md "datapath").
// A ChangeSet is what one request changes; apply() installs all of it or none of it.
// Backends: pcpd::nft::NftDatapath (libnftnl + libmnl); tests: FakeDatapath (tests/fakes). The
// connections of the mappings are not a datapath's: the daemon hands committed change sets to
// pcpd::ct::ConntrackSync.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/mapping.hpp"
#include "util/result.hpp"

namespace pcpd::core {

struct Change {
  enum class Op : std::uint8_t {
    Add,      // install `mapping`
    Remove,   // uninstall `mapping` (delete, expiry, replaced); with `flush_conntrack` the daemon
              // also has the mapping's connections dropped (ct::ConntrackSync, after the commit)
    Replace,  // `previous` becomes `mapping` (refresh: new lifetime, filters, flags, description)
  };
  Op op = Op::Add;
  Mapping mapping;
  Mapping previous;              // Replace only
  bool flush_conntrack = false;  // Remove only: the mapping was deleted (not merely refreshed)

  [[nodiscard]] static Change add(Mapping m) {
    Change c;
    c.mapping = std::move(m);
    return c;
  }
  // A mapping that ends (deleted, expired, displaced, moved away from a gone address): its
  // connections go with it, so that no flow keeps using what no mapping allows any more.
  [[nodiscard]] static Change removal(Mapping m) {
    Change c;
    c.op = Op::Remove;
    c.mapping = std::move(m);
    c.flush_conntrack = true;
    return c;
  }
  [[nodiscard]] static Change replace(Mapping next, Mapping previous) {
    Change c;
    c.op = Op::Replace;
    c.mapping = std::move(next);
    c.previous = std::move(previous);
    return c;
  }
};

struct ChangeSet {
  std::vector<Change> changes;
  [[nodiscard]] bool empty() const { return changes.empty(); }
};

class Datapath {
 public:
  virtual ~Datapath() = default;
  // Installs every change or none (RFC 6887 §7.3 / R-HDR-10: an error leaves no state behind).
  // On error, Error::index names the refused change when the backend can tell.
  [[nodiscard]] virtual Result<void> apply(const ChangeSet& changes) = 0;
};

}  // namespace pcpd::core
