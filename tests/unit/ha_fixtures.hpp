// SPDX-License-Identifier: GPL-2.0-or-later
// Shared helpers of the pcp_ha tests: keys, sample mappings, field-by-field comparison, and a
// fake network that wires two PeerLinks back to back (seeded loss, duplication, reordering).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ha/link_key.hpp"
#include "ha/peer_link.hpp"
#include "ha/peer_message.hpp"

namespace pcpd::test::ha {

using core::Mapping;
using core::MappingKind;
using core::Millis;
using pcpd::ha::LinkEvent;
using pcpd::ha::LinkKey;
using pcpd::ha::PeerLink;
using wire::IpAddr;

inline LinkKey key(std::uint8_t fill = 0x5a) {
  std::vector<std::uint8_t> bytes(32, fill);
  auto k = LinkKey::from_bytes(bytes);
  REQUIRE(k.has_value());
  return std::move(*k);
}

inline IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return IpAddr::from_v4((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d);
}

inline IpAddr v6(std::uint16_t last) {
  IpAddr a;  // 2001:db8::last
  a.bytes[0] = 0x20;
  a.bytes[1] = 0x01;
  a.bytes[2] = 0x0d;
  a.bytes[3] = 0xb8;
  a.bytes[14] = static_cast<std::uint8_t>(last >> 8);
  a.bytes[15] = static_cast<std::uint8_t>(last);
  return a;
}

// Mapping number i: distinct MappingId per i (internal port), fields varied with i.
inline Mapping sample(std::uint32_t i, bool elected, Millis now) {
  Mapping m;
  m.kind = i % 3 == 0 ? MappingKind::Peer : MappingKind::Map;
  m.origin = i % 5 == 0 ? core::Origin::NatPmp : core::Origin::Pcp;
  m.protocol = i % 2 == 0 ? 6 : 17;
  m.internal_addr = v4(192, 0, 2, static_cast<std::uint8_t>(1 + i % 200));
  m.internal_port = static_cast<std::uint16_t>(1000 + i);
  m.external_addr = v4(203, 0, 113, 1);
  m.external_port = static_cast<std::uint16_t>(20000 + i);
  if (m.kind == MappingKind::Peer) {
    m.remote_addr = v4(198, 51, 100, static_cast<std::uint8_t>(1 + i % 100));
    m.remote_port = 443;
  }
  m.client_addr = m.internal_addr;
  for (std::size_t b = 0; b < m.nonce.size(); ++b) m.nonce[b] = static_cast<std::uint8_t>(i * 7 + b);
  m.lifetime = 120 + i;
  m.expires = now + Millis(std::int64_t{m.lifetime} * 1000);
  m.third_party = i % 7 == 0;
  m.checkpoint = elected;
  if (i % 4 == 0) {
    m.filters.push_back({120, 8080, v4(198, 51, 100, 0)});
    m.filters.push_back({128, 0, v4(198, 51, 100, 9)});
  }
  m.description = "mapping " + std::to_string(i);
  return m;
}

// Every field but the expiry, which the receiver holds on its own clock.
inline bool same_except_expiry(const Mapping& a, const Mapping& b) {
  return a.kind == b.kind && a.origin == b.origin && a.protocol == b.protocol &&
         a.internal_addr == b.internal_addr && a.internal_port == b.internal_port &&
         a.external_addr == b.external_addr && a.external_port == b.external_port &&
         a.remote_addr == b.remote_addr && a.remote_port == b.remote_port &&
         a.client_addr == b.client_addr && a.nonce == b.nonce && a.lifetime == b.lifetime &&
         a.third_party == b.third_party && a.checkpoint == b.checkpoint && a.filters == b.filters &&
         a.description == b.description;
}

inline void check_same(const Mapping& a, const Mapping& b) {
  CHECK(same_except_expiry(a, b));
  CHECK(a.expires == b.expires);
}

inline std::vector<Mapping> sorted(std::vector<Mapping> v) {
  std::sort(v.begin(), v.end(), [](const Mapping& a, const Mapping& b) {
    return pcpd::ha::id_of(a) < pcpd::ha::id_of(b);
  });
  return v;
}

template <typename T>
std::size_t count_events(const std::vector<LinkEvent>& events) {
  return static_cast<std::size_t>(std::count_if(events.begin(), events.end(),
                                                [](const LinkEvent& e) { return std::holds_alternative<T>(e); }));
}

struct NetworkFaults {
  double drop = 0;       // probability a datagram is lost
  double duplicate = 0;  // probability it is delivered twice
  Millis max_delay{1};   // uniform delay in [1, max_delay]: reorders when > tick
};

// Two PeerLinks joined by a fake network on fake time. Node 1's clock runs `offset` ahead of
// node 0's (the routers' clocks differ). Each node has a "server table"; SnapshotWanted is
// answered with send_snapshot(table) at once, as the daemon will.
class Harness {
 public:
  using Faults = NetworkFaults;
  struct Node {
    std::unique_ptr<PeerLink> link;
    Millis offset{0};
    std::vector<LinkEvent> events;
    std::vector<Mapping> table;
    bool cut_outbound = false;  // every datagram this node sends is lost
    std::function<bool(const std::vector<std::uint8_t>&)> drop_if;  // loses matching datagrams
    bool answer_snapshots = true;
  };

  explicit Harness(std::uint64_t seed, Faults faults = {}, pcpd::ha::LinkSettings settings = {})
      : rng_(seed), faults_(faults), settings_(settings) {
    nodes_[0].offset = Millis(0);
    nodes_[1].offset = Millis(1'000'000);
    start(0, 0x1000);
    start(1, 0x2000);
  }

  // A (re)start of node n's process: a new link with a new sender id.
  void start(int n, std::uint32_t sender_id, pcpd::ha::Role role = pcpd::ha::Role::Backup) {
    nodes_[n].link = std::make_unique<PeerLink>(key(), sender_id, settings_);
    nodes_[n].link->set_role(role, time(n));
    collect(n);
  }

  Node& node(int n) { return nodes_[static_cast<std::size_t>(n)]; }
  PeerLink& link(int n) { return *node(n).link; }
  Millis time(int n) const { return now_ + nodes_[static_cast<std::size_t>(n)].offset; }
  Millis now() const { return now_; }

  // Moves fake time forward in ticks, delivering due datagrams and running both timers.
  void run_for(Millis duration, Millis tick = Millis(5)) {
    const Millis end = now_ + duration;
    while (now_ < end) {
      now_ += tick;
      deliver_due();
      for (int n = 0; n < 2; ++n) {
        link(n).on_timer(time(n));
        collect(n);
      }
    }
  }

  // After the caller drove node n directly (replicate, set_role...).
  void collect(int n) {
    Node& self = node(n);
    auto out = self.link->take();
    for (auto& e : out.events) {
      if (std::holds_alternative<pcpd::ha::link_event::SnapshotWanted>(e) && self.answer_snapshots) {
        (void)self.link->send_snapshot(self.table, time(n));
        self.events.push_back(std::move(e));
        auto more = self.link->take();
        for (auto& d : more.datagrams) out.datagrams.push_back(std::move(d));
        for (auto& e2 : more.events) self.events.push_back(std::move(e2));
        continue;
      }
      self.events.push_back(std::move(e));
    }
    for (auto& d : out.datagrams) {
      ++sent_[n];
      if (self.cut_outbound || (self.drop_if && self.drop_if(d))) continue;
      if (chance(faults_.drop)) continue;
      const int copies = chance(faults_.duplicate) ? 2 : 1;
      for (int c = 0; c < copies; ++c) in_flight_.push_back({now_ + delay(), 1 - n, d, order_++});
    }
  }

  // Feeds bytes to node n as if they arrived now.
  void inject(int n, const std::vector<std::uint8_t>& bytes) {
    link(n).on_datagram(bytes, time(n));
    collect(n);
  }

  std::size_t sent(int n) const { return sent_[static_cast<std::size_t>(n)]; }
  std::vector<std::vector<std::uint8_t>> delivered_to(int n) const { return log_[static_cast<std::size_t>(n)]; }

 private:
  struct InFlight {
    Millis at;
    int to;
    std::vector<std::uint8_t> bytes;
    std::uint64_t order;
  };

  bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  Millis delay() {
    return Millis(std::uniform_int_distribution<std::int64_t>(1, faults_.max_delay.count())(rng_));
  }

  void deliver_due() {
    std::vector<InFlight> due;
    std::vector<InFlight> later;
    for (auto& f : in_flight_) (f.at <= now_ ? due : later).push_back(std::move(f));
    in_flight_ = std::move(later);
    std::sort(due.begin(), due.end(), [](const InFlight& a, const InFlight& b) {
      return a.at != b.at ? a.at < b.at : a.order < b.order;
    });
    for (auto& f : due) {
      log_[static_cast<std::size_t>(f.to)].push_back(f.bytes);
      link(f.to).on_datagram(f.bytes, time(f.to));
      collect(f.to);
    }
  }

  std::mt19937_64 rng_;
  Faults faults_;
  pcpd::ha::LinkSettings settings_;
  std::array<Node, 2> nodes_;
  Millis now_{10'000};
  std::vector<InFlight> in_flight_;
  std::uint64_t order_ = 0;
  std::array<std::size_t, 2> sent_{};
  std::array<std::vector<std::vector<std::uint8_t>>, 2> log_;
};

}  // namespace pcpd::test::ha
