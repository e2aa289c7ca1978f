// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core MappingTable against a naive model (a vector scanned linearly): random inserts,
// erases, replaces and commits over a small key space (so keys, bindings and external endpoints
// collide), then every query compared. Covers the compact table of slab reuse, the
// IdIndex open-addressing indexes (growth, backward-shift erase, shrink), PEER rings, the
// expiry heap and THIRD_PARTY client sets.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/mapping_table.hpp"

namespace {

using pcpd::core::EndpointKey;
using pcpd::core::Mapping;
using pcpd::core::MappingKind;
using pcpd::core::MappingTable;
using pcpd::core::Millis;
using pcpd::core::PeerKey;
using pcpd::wire::IpAddr;

IpAddr v4(std::uint32_t a) { return IpAddr::from_v4(0xC0000200u + a); }  // 192.0.2.a
IpAddr v6(std::uint8_t a) {
  IpAddr x;
  x.bytes[0] = 0x20;
  x.bytes[1] = 0x01;
  x.bytes[2] = 0x0d;
  x.bytes[3] = 0xb8;
  x.bytes[15] = a;
  return x;
}

struct Model {
  std::vector<Mapping> ms;

  [[nodiscard]] const Mapping* find_key(const Mapping& k) const {
    for (const Mapping& m : ms)
      if (m.kind == k.kind && internal_key(m) == internal_key(k) &&
          (m.kind == MappingKind::Map || (m.remote_addr == k.remote_addr && m.remote_port == k.remote_port)))
        return &m;
    return nullptr;
  }
  [[nodiscard]] std::size_t users(const EndpointKey& in) const {
    return static_cast<std::size_t>(
        std::count_if(ms.begin(), ms.end(), [&](const Mapping& m) { return internal_key(m) == in; }));
  }
  [[nodiscard]] const Mapping* bound(const EndpointKey& in) const {
    for (const Mapping& m : ms)
      if (internal_key(m) == in) return &m;
    return nullptr;
  }
  [[nodiscard]] bool external_free(const EndpointKey& ex) const {
    return std::none_of(ms.begin(), ms.end(), [&](const Mapping& m) { return external_key(m) == ex; });
  }
  [[nodiscard]] bool conflicts(const Mapping& m) const {
    if (find_key(m)) return true;
    if (const Mapping* b = bound(internal_key(m)))
      return b->external_addr != m.external_addr || b->external_port != m.external_port;
    return !external_free(external_key(m));
  }
  void erase(const Mapping& k) {
    const Mapping* p = find_key(k);
    REQUIRE(p != nullptr);
    ms.erase(ms.begin() + (p - ms.data()));
  }
};

struct Gen {
  std::mt19937 rng;
  std::uint16_t ports;
  explicit Gen(std::uint32_t seed, std::uint16_t port_space) : rng(seed), ports(port_space) {}
  std::uint32_t pick(std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng); }

  Mapping mapping() {
    Mapping m;
    m.kind = pick(3) == 0 ? MappingKind::Peer : MappingKind::Map;
    m.protocol = pick(2) == 0 ? 6 : 17;
    const bool six = pick(5) == 0;
    m.internal_addr = six ? v6(static_cast<std::uint8_t>(1 + pick(2))) : v4(1 + pick(4));
    m.internal_port = static_cast<std::uint16_t>(1 + pick(ports));
    if (six && pick(8) != 0) {
      m.external_addr = m.internal_addr;  // pinhole (R-MAP-11)
      m.external_port = m.internal_port;
    } else {
      m.external_addr = v4(200 + pick(2));  // NAT44, or now and then a mixed-family oddity
      m.external_port = static_cast<std::uint16_t>(1000 + pick(ports * 2u));
    }
    if (m.kind == MappingKind::Peer) {
      m.remote_addr = IpAddr::from_v4(0xC6336400u + 1 + pick(2));  // 198.51.100.x
      m.remote_port = static_cast<std::uint16_t>(1 + pick(2));
    }
    m.client_addr = pick(6) == 0 ? v4(1 + pick(4)) : m.internal_addr;
    m.expires = Millis(pick(200));
    m.checkpoint = pick(4) == 0;
    if (pick(8) == 0) m.description = pick(2) == 0 ? "d1" : "d2";
    return m;
  }
};

struct Key {
  MappingKind kind;
  EndpointKey in;
  IpAddr remote;
  std::uint16_t remote_port;
  IpAddr client;
  friend bool operator<(const Key& a, const Key& b) {
    return std::tie(a.kind, a.in.addr, a.in.protocol, a.in.port, a.remote, a.remote_port, a.client) <
           std::tie(b.kind, b.in.addr, b.in.protocol, b.in.port, b.remote, b.remote_port, b.client);
  }
  friend bool operator==(const Key&, const Key&) = default;
};
Key key_of(const Mapping& m) {
  return {m.kind, internal_key(m), m.remote_addr, m.remote_port, m.client_addr};
}
template <class C>
std::vector<Key> keys(const C& c) {
  std::vector<Key> out;
  for (const auto& m : c) {
    if constexpr (std::is_pointer_v<std::decay_t<decltype(m)>>)
      out.push_back(key_of(*m));
    else
      out.push_back(key_of(m));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void compare(const MappingTable& t, const Model& model, Gen& g) {
  REQUIRE(t.size() == model.ms.size());
  CHECK(keys(t.snapshot()) == keys(model.ms));
  Millis next = Millis::max();
  std::size_t elected = 0;
  for (const Mapping& m : model.ms) {
    next = std::min(next, m.expires);
    elected += m.checkpoint ? 1 : 0;
    const Mapping* got = m.kind == MappingKind::Map ? t.find_map(internal_key(m))
                                                    : t.find_peer(peer_key(m));
    REQUIRE(got != nullptr);
    CHECK(got->expires == m.expires);
    CHECK(got->description == m.description);
    CHECK(got->client_addr == m.client_addr);
    const auto b = t.binding(internal_key(m));
    REQUIRE(b.has_value());
    CHECK(b->external_addr == m.external_addr);
    CHECK(b->external_port == m.external_port);
    CHECK(b->users == model.users(internal_key(m)));
    CHECK_FALSE(t.external_free(external_key(m)));
  }
  CHECK(t.next_expiry() == next);
  CHECK(t.elected_count() == elected);
  for (int i = 0; i < 8; ++i) {
    const Mapping probe = g.mapping();
    CHECK(t.conflicts(probe) == model.conflicts(probe));
    CHECK(t.external_free(external_key(probe)) == model.external_free(external_key(probe)));
    CHECK(t.binding(internal_key(probe)).has_value() == (model.bound(internal_key(probe)) != nullptr));
    const IpAddr a = probe.internal_addr;
    std::vector<const Mapping*> of_in, of_cl;
    std::size_t el = 0;
    for (const Mapping& m : model.ms) {
      if (m.internal_addr == a) of_in.push_back(&m);
      if (m.client_addr == a) of_cl.push_back(&m);
      if (m.internal_addr == a && m.checkpoint) ++el;
    }
    CHECK(t.count_for_internal(a) == of_in.size());
    CHECK(keys(t.of_internal(a)) == keys(of_in));
    CHECK(keys(t.of_client(a)) == keys(of_cl));
    CHECK(t.elected_for_internal(a) == el);
  }
  const Millis now(g.pick(220));
  const auto due = t.due(now);
  std::vector<const Mapping*> want;
  for (const Mapping& m : model.ms)
    if (m.expires <= now) want.push_back(&m);
  CHECK(keys(due) == keys(want));
  CHECK(std::is_sorted(due.begin(), due.end(),
                       [](const Mapping& x, const Mapping& y) { return x.expires < y.expires; }));
}

void run(std::uint32_t seed, std::uint16_t port_space, int steps, int fill_bias) {
  Gen g(seed, port_space);
  MappingTable t;
  Model model;
  for (int step = 0; step < steps; ++step) {
    const std::uint32_t op = g.pick(10);
    if (op < static_cast<std::uint32_t>(fill_bias) || model.ms.empty()) {
      const Mapping m = g.mapping();
      const bool c = model.conflicts(m);
      REQUIRE(t.conflicts(m) == c);
      if (!c) {
        t.insert(m);
        model.ms.push_back(m);
      }
    } else if (op < 8) {
      const Mapping victim = model.ms[g.pick(static_cast<std::uint32_t>(model.ms.size()))];
      t.erase(victim);
      model.erase(victim);
    } else {
      Mapping m = model.ms[g.pick(static_cast<std::uint32_t>(model.ms.size()))];
      m.expires = Millis(g.pick(200));
      m.checkpoint = g.pick(2) == 0;
      m.client_addr = g.pick(3) == 0 ? v4(1 + g.pick(4)) : m.internal_addr;
      m.description = g.pick(2) == 0 ? "" : "refreshed";
      pcpd::core::ChangeSet cs;
      pcpd::core::Change c;
      c.op = pcpd::core::Change::Op::Replace;
      c.mapping = m;
      cs.changes.push_back(c);
      t.commit(cs);
      model.erase(m);
      model.ms.push_back(m);
    }
    if (step % 50 == 0 || port_space < 8) compare(t, model, g);
  }
  compare(t, model, g);
  // Drain through erase (exercises index shrink and slot reuse afterwards).
  while (!model.ms.empty()) {
    const Mapping victim = model.ms.back();
    t.erase(victim);
    model.ms.pop_back();
  }
  CHECK(t.size() == 0);
  CHECK(t.next_expiry() == Millis::max());
  compare(t, model, g);
}

}  // namespace

TEST_CASE("MappingTable matches a naive model on a small, colliding key space") {
  for (std::uint32_t seed = 1; seed <= 6; ++seed) run(seed, 4, 1500, 6);
}

TEST_CASE("MappingTable matches a naive model while growing and shrinking its indexes") {
  run(42, 600, 6000, 7);
}
