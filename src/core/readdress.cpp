// SPDX-License-Identifier: GPL-2.0-or-later
// A new external IPv4 address (RFC 6887 §14.2 Mapping Update, R-ANN-7): the NAT44 mappings on an
// address that left the pool move to one in it, in one datapath transaction, and the daemon
// tells each client with the unsolicited response encode_mapping_update() writes.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/server_impl.hpp"
#include "wire/codec.hpp"

namespace pcpd::core {

std::uint8_t Server::Impl::intern_local(const IpAddr& local) {
  for (std::size_t i = 0; i < locals.size(); ++i)
    if (locals[i] == local) return static_cast<std::uint8_t>(i + 1);
  // 255 server addresses is far past any router; beyond that a mapping's server address is
  // unknown and Mapping Update skips it (the epoch reset and ANNOUNCE still reach the client).
  if (locals.size() >= 255) return 0;
  locals.push_back(local);
  return static_cast<std::uint8_t>(locals.size());
}

std::optional<IpAddr> Server::local_address(std::uint8_t reply_local) const {
  if (reply_local == 0 || reply_local > impl_->locals.size()) return std::nullopt;
  return impl_->locals[reply_local - 1u];
}

std::optional<Mapping> Server::find(MappingKind kind, const IpAddr& internal_addr, std::uint8_t protocol,
                                    std::uint16_t internal_port, const IpAddr& remote_addr,
                                    std::uint16_t remote_port) const {
  const Mapping* m = impl_->table.find(kind, EndpointKey{internal_addr, protocol, internal_port},
                                       remote_addr, remote_port);
  if (m == nullptr) return std::nullopt;
  return *m;
}

Server::Readdress Server::readdress() {
  Impl& s = *impl_;
  Readdress out;
  const auto& pool = s.policy.external_v4;
  auto in_pool = [&](const IpAddr& a) { return std::find(pool.begin(), pool.end(), a) != pool.end(); };
  if (pool.empty()) {
    // §7.4 NETWORK_FAILURE for requests meanwhile (check_endpoint); the mappings stay for the
    // address to come back, or to move once another one comes.
    s.table.visit([&](const Mapping& m) {
      if (m.is_v4()) ++out.waiting;
    });
    return out;
  }
  // Nothing on an address outside the pool (the usual start, or an address added): no walk.
  if (s.table.nat44_only_on(pool)) return out;
  const std::uint16_t lo = s.policy.port_min;
  const std::uint16_t hi = s.policy.port_max;
  // Endpoints this change hands out: the table does not know them until the commit. An
  // all-ports mapping claims port 0 of its new address, which takes the whole pool; `pools`
  // counts the claims per (address, protocol) so that neither kind lands on the other.
  std::unordered_set<EndpointKey, EndpointKeyHash> claimed;
  std::unordered_map<EndpointKey, std::size_t, EndpointKeyHash> pools;
  auto pool_of = [](const IpAddr& a, std::uint8_t protocol) { return EndpointKey{a, protocol, 0}; };
  auto port_ok = [&](const IpAddr& a, const Mapping& m, std::uint16_t p) {
    const EndpointKey e{a, m.protocol, p};
    // RFC 6886 §3.3: not another host's NAT-PMP companion port either.
    return p >= lo && p <= hi && !PortAllocator::reserved(p) && s.table.external_free(e) &&
           !claimed.contains(e) && !claimed.contains(pool_of(a, m.protocol)) &&
           !s.companion_of_other(a, EndpointKey{m.internal_addr, m.protocol, m.internal_port}, p);
  };
  // An all-ports mapping (R-MAP-3) moves whole: to an address no binding of its protocol uses.
  auto all_ports_ok = [&](const IpAddr& a, const Mapping& m) {
    return s.table.external_free(pool_of(a, m.protocol)) && !pools.contains(pool_of(a, m.protocol)) &&
           !s.table.natpmp_other_on(a, Impl::other_transport(m.protocol), m.internal_addr);
  };
  // One new external endpoint per internal endpoint (R-MAP-12: its MAP and PEER mappings share
  // it). The address: paired pooling as for a new binding (one address per internal host).
  std::unordered_map<EndpointKey, std::optional<External>, EndpointKeyHash> moved_to;
  auto choose = [&](const Mapping& m) -> std::optional<External> {
    const std::size_t first = wire::IpAddrHash{}(m.internal_addr) % pool.size();
    if (m.internal_port == 0) {
      for (std::size_t i = 0; i < pool.size(); ++i)
        if (all_ports_ok(pool[(first + i) % pool.size()], m)) return External{pool[(first + i) % pool.size()], 0};
      return std::nullopt;
    }
    const IpAddr& addr = pool[first];
    // The same port first: a client that kept the port number (or a peer told of it) loses least.
    for (std::uint16_t p : {m.external_port, m.internal_port})
      if (port_ok(addr, m, p)) return External{addr, p};
    if (lo > hi) return std::nullopt;
    // R-SEC-4: a random start. A port this change already handed out is skipped; bounded.
    std::uniform_int_distribution<std::uint32_t> dist(lo, hi);
    std::uint16_t start = static_cast<std::uint16_t>(dist(s.rng));
    for (int tries = 0; tries < 64; ++tries) {
      auto p = s.table.find_free_port(addr, m.protocol, lo, hi, start);
      if (!p) return std::nullopt;
      if (port_ok(addr, m, *p)) return External{addr, *p};
      start = *p == hi ? lo : static_cast<std::uint16_t>(*p + 1);
    }
    return std::nullopt;
  };
  // Removes first, then adds: an endpoint's mappings leave their old binding before any of them
  // takes the new one (the table keeps one binding per internal endpoint).
  ChangeSet removes, adds;
  s.table.visit([&](const Mapping& m) {
    if (!m.is_v4() || in_pool(m.external_addr)) return;
    const EndpointKey internal{m.internal_addr, m.protocol, m.internal_port};
    auto [it, fresh] = moved_to.try_emplace(internal);
    if (fresh) {
      it->second = choose(m);
      if (it->second) {
        claimed.insert({it->second->addr, m.protocol, it->second->port});
        ++pools[pool_of(it->second->addr, m.protocol)];
      }
    }
    if (!it->second) {
      ++out.no_port;  // stays on the old address: NO_RESOURCES is all a request could get
      return;
    }
    // Its connections were translated to the gone address: they cannot work any more, and an
    // active UDP flow would otherwise keep its entry (and the old address) alive for good.
    removes.changes.push_back(Change::removal(m));
    Mapping moved = m;
    moved.external_addr = it->second->addr;
    moved.external_port = it->second->port;
    if (moved.external_port == m.external_port) ++out.port_kept;
    adds.changes.push_back(Change::add(std::move(moved)));
  });
  if (adds.empty()) return out;
  for (Change& c : adds.changes) removes.changes.push_back(c);
  // One transaction: every mapping moves, or none does (R-HDR-10's all or nothing, here for the
  // whole change of address).
  if (!s.apply(removes)) {
    out.failed = true;
    out.port_kept = 0;
    return out;
  }
  out.moved.reserve(adds.changes.size());
  for (Change& c : adds.changes) out.moved.push_back(std::move(c.mapping));
  s.stats.readdressed += out.moved.size();
  return out;
}

std::size_t Server::encode_mapping_update(const Mapping& m, std::span<std::uint8_t> out) const {
  const Impl& s = *impl_;
  const Millis now = s.clock.now();
  wire::Response r;
  r.result = wire::ResultCode::Success;
  r.lifetime = m.remaining(now);
  r.epoch = s.epoch.at(now);  // R-EPOCH-1
  if (m.kind == MappingKind::Map) {
    r.opcode = wire::Opcode::Map;
    r.body = wire::MapBody{m.nonce, m.protocol, m.internal_port, m.external_port, m.external_addr};
  } else {
    r.opcode = wire::Opcode::Peer;
    r.body = wire::PeerBody{m.nonce,         m.protocol,  m.internal_port, m.external_port,
                            m.external_addr, m.remote_port, m.remote_addr};
  }
  // R-ANN-7: THIRD_PARTY when the mapping was made with it (MUST), the filters echoed;
  // DESCRIPTION, CHECKPOINT_REQUIRED and CAPABILITY are optional to process: left out.
  if (m.third_party) r.options.third_party = m.internal_addr;
  const std::size_t n = std::min(m.filters.size(), wire::kMaxFilters);
  std::copy_n(m.filters.begin(), n, r.options.filters.begin());
  r.options.filter_count = static_cast<std::uint8_t>(n);
  return wire::encode_response(r, out, s.policy.option_codes);
}

}  // namespace pcpd::core
