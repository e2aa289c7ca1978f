// SPDX-License-Identifier: GPL-2.0-or-later
// Static mappings (RFC 6887 §11.3, §15): the operator's permanent port forwards from the
// configuration. Server::set_static() / sync_static() make the table hold exactly the configured
// set, in one datapath transaction; the request handlers treat them as R-MAP-6 and R-LIFE-5/6 say.
#include <algorithm>
#include <optional>
#include <unordered_map>

#include "core/server_impl.hpp"

namespace pcpd::core {


Server::StaticSync Server::set_static(std::vector<Mapping> wanted) {
  impl_->static_wanted = std::move(wanted);
  return sync_static();
}

Server::StaticSync Server::sync_static() {
  Impl& s = *impl_;
  StaticSync out;
  const auto& pool = s.policy.external_v4;
  auto in_pool = [&](const IpAddr& a) { return std::find(pool.begin(), pool.end(), a) != pool.end(); };

  // What the table should hold, each completed the way every static mapping looks.
  std::vector<Mapping> desired;
  desired.reserve(s.static_wanted.size());
  for (const Mapping& w : s.static_wanted) {
    Mapping m;
    m.kind = MappingKind::Map;
    m.origin = Origin::Static;
    m.protocol = w.protocol;
    m.internal_addr = w.internal_addr;
    m.internal_port = w.internal_port;
    m.client_addr = w.internal_addr;
    m.lifetime = kStaticLifetime;
    m.expires = kNever;
    m.checkpoint = w.checkpoint;
    m.description = w.description;
    if (m.is_v4()) {
      // NAT44 needs an external address: none yet (DHCP) or NAT44 off, it waits.
      if (!s.policy.nat44 || pool.empty()) {
        ++out.waiting;
        continue;
      }
      IpAddr addr = pool.front();
      if (!w.external_addr.is_unspecified()) {
        if (!in_pool(w.external_addr)) {
          ++out.waiting;
          continue;
        }
        addr = w.external_addr;
      } else if (const Mapping* cur = s.table.find_map(internal_key(m));
                 cur != nullptr && cur->is_static() && in_pool(cur->external_addr)) {
        addr = cur->external_addr;  // where it is (moved with the WAN address): no churn
      }
      m.external_addr = addr;
      m.external_port = w.external_port;
    } else {
      if (!s.policy.ipv6_firewall) {
        ++out.waiting;
        continue;
      }
      m.external_addr = m.internal_addr;  // R-MAP-11: a pinhole, no translation
      m.external_port = m.internal_port;
    }
    desired.push_back(std::move(m));
  }

  // by_pool: the (external address, protocol) of each NAT44 one, port 0, which is the external
  // key of an all-ports mapping there (it would hold the configured port too).
  // Nothing configured and nothing to remove: no walk of the table (every start and reload of a
  // router without [[static]] comes here).
  if (desired.empty() && s.table.static_count() == 0) return out;
  std::unordered_map<EndpointKey, std::size_t, EndpointKeyHash> by_internal, by_external, by_pool;
  for (std::size_t i = 0; i < desired.size(); ++i) {
    by_internal.emplace(internal_key(desired[i]), i);
    by_external.emplace(external_key(desired[i]), i);
    if (desired[i].is_v4()) by_pool.emplace(EndpointKey{desired[i].external_addr, desired[i].protocol, 0}, i);
  }
  std::vector<bool> present(desired.size(), false);
  std::vector<bool> moving(desired.size(), false);  // a static mapping to another external endpoint
  ChangeSet removes, installs;
  s.table.visit([&](const Mapping& m) {
    const auto in = by_internal.find(internal_key(m));
    if (m.is_static()) {
      if (in == by_internal.end()) {
        removes.changes.push_back(Change::removal(m));
        ++out.removed;
        return;
      }
      const Mapping& d = desired[in->second];
      if (m.same_but_expiry(d)) {
        present[in->second] = true;
        ++out.kept;
      } else if (external_key(m) == external_key(d)) {
        installs.changes.push_back(Change::replace(d, m));
        present[in->second] = true;
        ++out.changed;
      } else {
        removes.changes.push_back(Change::removal(m));  // its Add follows: another external endpoint
        moving[in->second] = true;
        ++out.changed;
      }
      return;
    }
    std::optional<std::size_t> at_external;
    if (const auto ex = by_external.find(external_key(m)); ex != by_external.end()) {
      at_external = ex->second;
    } else if (m.is_v4() && m.internal_port == 0) {
      if (const auto p = by_pool.find(external_key(m)); p != by_pool.end()) at_external = p->second;
    }
    if (in == by_internal.end() && !at_external) return;
    const std::size_t i = in != by_internal.end() ? in->second : *at_external;
    const Mapping& d = desired[i];
    const bool same_binding = internal_key(m) == internal_key(d) && external_key(m) == external_key(d);
    if (same_binding && m.kind == MappingKind::Peer) return;  // shares the static binding (R-MAP-12)
    if (same_binding && !present[i]) {
      // The client's own mapping, exactly as configured: it becomes the static one, and the
      // client keeps its ports (its next refresh is answered as a static mapping's).
      installs.changes.push_back(Change::replace(d, m));
      present[i] = true;
      ++out.added;
      return;
    }
    // Another host's mapping on the configured external endpoint, or this internal endpoint
    // bound elsewhere: the configuration wins, and the client learns it from the epoch reset
    // the caller starts (RFC 6887 §8.5: state lost).
    removes.changes.push_back(Change::removal(m));
    out.displaced.push_back(m);
  });
  for (std::size_t i = 0; i < desired.size(); ++i) {
    if (present[i]) continue;
    installs.changes.push_back(Change::add(desired[i]));
    if (!moving[i]) ++out.added;
  }
  if (removes.empty() && installs.empty()) return out;
  for (Change& c : installs.changes) removes.changes.push_back(std::move(c));
  // One transaction: the configured set is installed whole or not at all.
  if (!s.apply(removes)) {
    StaticSync failed;
    failed.waiting = out.waiting;
    failed.failed = true;
    return failed;
  }
  s.stats.elected = s.table.elected_count();
  return out;
}

}  // namespace pcpd::core
