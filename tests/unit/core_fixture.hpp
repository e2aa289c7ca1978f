// SPDX-License-Identifier: GPL-2.0-or-later
// Shared helpers for the pcp_core unit tests: a Server over FakeDatapath + FakeClock, and
// builders for Requests (built directly, no codec).
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string_view>
#include <variant>

#include "core/server.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/fake_datapath.hpp"
#include "wire/messages.hpp"

namespace pcpd::test {

namespace wire = ::pcpd::wire;
using core::Context;
using core::Mapping;
using core::Policy;
using core::Reply;
using wire::IpAddr;
using wire::Request;
using wire::ResultCode;

inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;

inline IpAddr ip(std::string_view text) {
  auto a = IpAddr::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

inline wire::Nonce nonce(std::uint8_t seed) {
  wire::Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(seed + i);
  return n;
}

inline Policy default_policy() {
  Policy p;
  p.external_v4 = {ip("203.0.113.1")};
  return p;
}

inline Context ctx(const IpAddr& source) { return Context{source, 40000, ip("192.0.2.1")}; }

struct MapArgs {
  IpAddr client = ip("192.0.2.10");
  std::uint8_t protocol = kTcp;
  std::uint16_t internal_port = 8080;
  std::uint32_t lifetime = 3600;
  wire::Nonce nonce = pcpd::test::nonce(1);
  std::uint16_t suggested_port = 0;
  IpAddr suggested_addr = IpAddr::v4_any();
};

inline Request map_req(const MapArgs& a) {
  Request r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = a.lifetime;
  r.client_addr = a.client;
  wire::MapBody b;
  b.nonce = a.nonce;
  b.protocol = a.protocol;
  b.internal_port = a.internal_port;
  b.external_port = a.suggested_port;
  b.external_addr = a.suggested_addr;
  r.body = b;
  return r;
}

struct PeerArgs {
  IpAddr client = ip("192.0.2.10");
  std::uint8_t protocol = kTcp;
  std::uint16_t internal_port = 5000;
  std::uint32_t lifetime = 600;
  wire::Nonce nonce = pcpd::test::nonce(7);
  IpAddr remote_addr = ip("198.51.100.7");
  std::uint16_t remote_port = 443;
  std::uint16_t suggested_port = 0;
  IpAddr suggested_addr = IpAddr::v4_any();
};

inline Request peer_req(const PeerArgs& a) {
  Request r;
  r.opcode = wire::Opcode::Peer;
  r.lifetime = a.lifetime;
  r.client_addr = a.client;
  wire::PeerBody b;
  b.nonce = a.nonce;
  b.protocol = a.protocol;
  b.internal_port = a.internal_port;
  b.external_port = a.suggested_port;
  b.external_addr = a.suggested_addr;
  b.remote_addr = a.remote_addr;
  b.remote_port = a.remote_port;
  r.body = b;
  return r;
}

// `r` with CHECKPOINT_REQUIRED (RFC 7767 option 192).
inline Request with_ckpt(Request r) {
  r.options.checkpoint_required = true;
  return r;
}

inline Request announce_req(const IpAddr& client, std::uint32_t lifetime = 0) {
  Request r;
  r.opcode = wire::Opcode::Announce;
  r.lifetime = lifetime;
  r.client_addr = client;
  r.body = wire::AnnounceBody{};
  return r;
}

inline const wire::MapBody& map_body(const Reply& r) { return std::get<wire::MapBody>(r.response.body); }
inline const wire::PeerBody& peer_body(const Reply& r) { return std::get<wire::PeerBody>(r.response.body); }

struct Fixture {
  explicit Fixture(Policy p = default_policy())
      : server(std::make_unique<core::Server>(std::move(p), dp, clock)) {}

  Reply map(const MapArgs& a) { return server->handle(map_req(a), context(a.client)); }
  Reply peer(const PeerArgs& a) { return server->handle(peer_req(a), context(a.client)); }
  Reply send(const Request& r) { return server->handle(r, context(r.client_addr)); }
  [[nodiscard]] Context context(const IpAddr& client) const {
    Context c = ctx(client);
    c.checkpoint_available = checkpoint_available;
    return c;
  }

  bool checkpoint_available = true;  // Context::checkpoint_available of the requests sent
  FakeClock clock;
  FakeDatapath dp;
  std::unique_ptr<core::Server> server;
};

}  // namespace pcpd::test
