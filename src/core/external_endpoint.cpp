// SPDX-License-Identifier: GPL-2.0-or-later
// External endpoint choice for a new binding (RFC 6887 §11.3, §12.3, §16.3.3): IPv6 pinholes are
// the identity (R-MAP-11); NAT44 honours a free suggestion (R-MAP-5), prefers the internal port,
// and otherwise takes a free port from a random start in the policy range.
#include <algorithm>

#include "core/server_impl.hpp"

namespace pcpd::core {

using wire::ResultCode;

bool Server::Impl::suggestion_matches(const IpAddr& addr, std::uint16_t port,
                                      const IpAddr& ext_addr, std::uint16_t ext_port) {
  // R-MAP-4: a zero port and an all-zeros address (either family) are "no preference".
  const bool addr_ok = addr.is_unspecified() || addr == ext_addr;
  const bool port_ok = port == 0 || port == ext_port;
  return addr_ok && port_ok;
}

bool Server::Impl::companion_of_other(const IpAddr& ext_addr, const EndpointKey& internal,
                                      std::uint16_t port) const {
  // RFC 6886 §3.3 (R-PMP-6): while a NAT-PMP client holds TCP (UDP) external port X, UDP (TCP)
  // port X is reserved for that client, so that it can map the companion later; another
  // internal host MUST NOT get it. PCP has no such rule; a PCP mapping reserves nothing.
  const std::uint8_t other = other_transport(internal.protocol);
  if (other == 0) return false;
  const auto holder = natpmp_holder({ext_addr, other, port});
  return holder && *holder != internal.addr;
}

std::optional<ResultCode> Server::Impl::bind_external(Mapping& m, const EndpointKey& internal,
                                                     const IpAddr& suggested_addr,
                                                     std::uint16_t suggested_port, bool strict) {
  if (const std::optional<MappingTable::Binding> b = table.binding(internal)) {
    // RFC 6887 §11.3 / R-MAP-12: other mappings of this endpoint exist; the new one shares
    // their external endpoint (endpoint-independent mapping).
    if (strict && !suggestion_matches(suggested_addr, suggested_port, b->external_addr, b->external_port))
      return ResultCode::CannotProvideExternal;
    m.external_addr = b->external_addr;
    m.external_port = b->external_port;
    return std::nullopt;
  }
  auto ext = choose_external(internal, suggested_addr, suggested_port, strict);
  if (const auto* code = std::get_if<ResultCode>(&ext)) return *code;
  m.external_addr = std::get<External>(ext).addr;
  m.external_port = std::get<External>(ext).port;
  return std::nullopt;
}

bool Server::Impl::external_free(const EndpointKey& external) const {
  return table.external_free(external) && !pending.claimed(external);
}

std::optional<IpAddr> Server::Impl::natpmp_holder(const EndpointKey& external) const {
  if (auto h = pending.natpmp_holder(external)) return h;
  return table.natpmp_holder(external);
}

std::optional<std::uint16_t> Server::Impl::find_free_port(const IpAddr& external_addr,
                                                          std::uint8_t protocol, std::uint16_t lo,
                                                          std::uint16_t hi, std::uint16_t start) const {
  // The table's free port, unless an add of the open transaction claims it: then the next one.
  // At most one step per claim (plus the first), so this ends.
  for (std::size_t step = 0; step <= pending.claims(); ++step) {
    const auto p = table.find_free_port(external_addr, protocol, lo, hi, start);
    if (!p || !pending.claimed({external_addr, protocol, *p})) return p;
    start = *p == hi ? lo : static_cast<std::uint16_t>(*p + 1);
  }
  return std::nullopt;
}

std::variant<External, ResultCode> Server::Impl::choose_external(const EndpointKey& internal,
                                                                 const IpAddr& suggested_addr,
                                                                 std::uint16_t suggested_port,
                                                                 bool strict) {
  if (!internal.addr.is_v4()) {
    // RFC 6887 §11.3 / R-MAP-11: a firewall maps the identity.
    if (strict && !suggestion_matches(suggested_addr, suggested_port, internal.addr, internal.port))
      return ResultCode::CannotProvideExternal;
    return External{internal.addr, internal.port};
  }

  const auto& pool = policy.external_v4;
  const std::uint16_t lo = policy.port_min;
  const std::uint16_t hi = policy.port_max;
  auto port_ok = [&](const IpAddr& a, std::uint16_t p) {
    // R-MAP-5: not used by any mapping, not our own service (R-MAP-15), not outside policy.
    return p >= lo && p <= hi && !PortAllocator::reserved(p) &&
           external_free({a, internal.protocol, p}) && !companion_of_other(a, internal, p);
  };

  // Which addresses to try, best first: the suggested one when it is ours, then the pool from a
  // hash of the internal host (paired pooling: one address per internal host where possible),
  // the suggested one left out. Computed per index, without a list: the list this replaces cost
  // an allocation and pool^2/2 address compares per new binding (1.6 % of pcpd's CPU
  // with 18 addresses; a carrier pool of 256 would make it 32,000).
  const std::size_t n = pool.size();
  if (n == 0) return ResultCode::NoResources;
  const bool addr_given = !suggested_addr.is_unspecified();
  const auto found = addr_given ? std::find(pool.begin(), pool.end(), suggested_addr) : pool.end();
  const bool addr_ours = found != pool.end();
  if (addr_given && !addr_ours && strict) return ResultCode::CannotProvideExternal;
  const std::size_t first = wire::IpAddrHash{}(internal.addr) % n;
  const std::size_t ours_at = static_cast<std::size_t>(found - pool.begin());
  const std::size_t skip = addr_ours ? (ours_at + n - first) % n : n;  // its place in the rotation
  const std::size_t tries = addr_ours && strict ? 1 : n;
  auto nth = [&](std::size_t i) -> const IpAddr& {
    if (!addr_ours) return pool[(first + i) % n];
    if (i == 0) return pool[ours_at];
    return pool[(first + (i - 1 < skip ? i - 1 : i)) % n];
  };

  if (suggested_port != 0) {
    if (port_ok(nth(0), suggested_port)) return External{nth(0), suggested_port};
    if (strict) return ResultCode::CannotProvideExternal;  // R-MAP-5, R-PF-2, R-PEER-4
  }
  // Port preservation first, then a random start (R-SEC-4: no predictable sequence).
  for (std::size_t i = 0; i < tries; ++i)
    if (port_ok(nth(i), internal.port)) return External{nth(i), internal.port};
  if (lo > hi) return ResultCode::NoResources;
  std::uniform_int_distribution<std::uint32_t> dist(lo, hi);
  for (std::size_t i = 0; i < tries; ++i) {
    auto start = static_cast<std::uint16_t>(dist(rng));
    // A free port that is another NAT-PMP client's companion is skipped; bounded, since a run
    // of 64 such ports in a row means the pool is mostly NAT-PMP companions anyway.
    for (int step = 0; step < 64; ++step) {
      auto p = find_free_port(nth(i), internal.protocol, lo, hi, start);
      if (!p) break;
      if (!companion_of_other(nth(i), internal, *p)) return External{nth(i), *p};
      start = *p == hi ? lo : static_cast<std::uint16_t>(*p + 1);
    }
  }
  return ResultCode::NoResources;  // §7.4: every port of every address is taken
}

std::variant<External, ResultCode> Server::Impl::choose_all_ports(const EndpointKey& internal,
                                                                  const IpAddr& suggested_addr, bool strict) {
  // An IPv6 all-ports pinhole is the host itself (R-MAP-11).
  if (!internal.addr.is_v4()) return External{internal.addr, 0};
  // NAT44: a whole address for this protocol, granted in full or not at all (R-MAP-3): one
  // where no other binding uses a port of that protocol (nor holds a NAT-PMP companion port).
  const auto& pool = policy.external_v4;
  const std::size_t n = pool.size();
  auto free = [&](const IpAddr& a) {
    return table.external_free({a, internal.protocol, 0}) &&
           !table.natpmp_other_on(a, other_transport(internal.protocol), internal.addr);
  };
  if (!suggested_addr.is_unspecified()) {
    const bool ours = std::find(pool.begin(), pool.end(), suggested_addr) != pool.end();
    if (ours && free(suggested_addr)) return External{suggested_addr, 0};
    if (strict) return ResultCode::CannotProvideExternal;  // R-PF-2
  }
  const std::size_t first = n == 0 ? 0 : wire::IpAddrHash{}(internal.addr) % n;
  for (std::size_t i = 0; i < n; ++i)
    if (free(pool[(first + i) % n])) return External{pool[(first + i) % n], 0};
  return ResultCode::UnsuppProtocol;  // R-MAP-3: cannot be granted in full
}

}  // namespace pcpd::core
