// SPDX-License-Identifier: GPL-2.0-or-later
// CAPABILITY end to end without sockets (draft-boucadair-hops-capability-discovery-00): the real
// core::Server encodes, the client library decodes, pcpc prints the names per server
// (docs/interfaces.md "pcpc(1)"); the per-server table and the ANNOUNCE listener's decoding
// (R-CAP-2).
#include <doctest/doctest.h>

#include <array>

#include "client_fakes.hpp"
#include "core/server.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/fake_datapath.hpp"
#include "pcpc/output.hpp"
#include "wire/capability.hpp"

using pcpd::client::test::FakeRandom;
using pcpd::client::test::FakeTransport;
using pcpd::client::test::ip;
namespace client = pcpd::client;
namespace core = pcpd::core;
namespace wire = pcpd::wire;
namespace pcpc = pcpd::pcpc;

namespace {

const wire::IpAddr kServer = *wire::IpAddr::parse("192.0.2.1");
const wire::IpAddr kClient = *wire::IpAddr::parse("192.0.2.10");

core::Policy router_policy(std::vector<const char*> names, bool always = false) {
  core::Policy p;
  p.external_v4 = {ip("203.0.113.1")};
  wire::CapabilitySet s;
  for (const char* n : names) REQUIRE(s.set(std::string_view(n)));
  p.capabilities = s;
  p.capability_always = always;
  return p;
}

// The real server behind the fake transport: every request's bytes go through handle_datagram.
struct Loop {
  explicit Loop(core::Policy p)
      : server(std::move(p), datapath, server_clock), transport(clock, kClient, kServer),
        cl(transport, clock, random) {
    transport.server_fn = [this](const wire::Request&, std::size_t) {
      std::array<std::uint8_t, wire::kMaxMessageSize> out{};
      const auto& in = transport.sent.back().bytes;
      const std::size_t n =
          server.handle_datagram(in, core::Context{kClient, 40000, kServer}, out);
      std::vector<client::test::Scheduled> replies;
      if (n > 0) replies.push_back({{out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)}, client::Millis{5}});
      return replies;
    };
  }
  pcpd::test::FakeClock server_clock;
  pcpd::test::FakeDatapath datapath;
  core::Server server;
  client::test::FakeClock clock;
  FakeTransport transport;
  FakeRandom random;
  client::Client cl;
};

client::MappingSpec map_spec(std::uint8_t protocol, bool capability) {
  client::MappingSpec s;
  s.opcode = wire::Opcode::Map;
  s.protocol = protocol;
  s.internal_port = 8080;
  s.lifetime = 600;
  s.capability = capability;
  return s;
}

std::vector<std::uint8_t> unsolicited(const core::Server& s, bool with_capability) {
  std::vector<std::uint8_t> out(wire::kMaxMessageSize);
  out.resize(s.encode_announce(out, with_capability));
  return out;
}

}  // namespace

TEST_CASE("R-CAP-1 round trip: pcpc map --capabilities -> pcpd core -> names per server") {
  Loop l(router_policy({"nat44", "ipv6-firewall", "tcp", "udp"}));
  auto out = l.cl.map(map_spec(6, true));
  REQUIRE(out.has_value());
  CHECK(out->success());
  // The request carried a zero CAPABILITY (R-CAP-1).
  const auto sent = l.transport.sent.front().decode();
  REQUIRE(sent.options.capability.has_value());
  CHECK(wire::CapabilitySet::from_bytes(*sent.options.capability).empty());
  // The answer carries the set; pcpc prints it by name.
  auto caps = client::capability_of(out->response);
  REQUIRE(caps.has_value());
  CHECK(caps->names() == std::vector<std::string>{"nat44", "ipv6-firewall", "tcp", "udp"});
  CHECK(pcpc::capability_line(kServer, *caps) == "CAPABILITY server=192.0.2.1 nat44,ipv6-firewall,tcp,udp");
  const auto j = pcpc::response_json(*out);
  CHECK(j["capabilities"] == nlohmann::json({"nat44", "ipv6-firewall", "tcp", "udp"}));
  CHECK(j["options"]["capability"] == "40000000800000000000000000000180");
  // Without --capabilities: no set comes back, no "capabilities" key.
  auto plain = l.cl.map(map_spec(17, false));
  REQUIRE(plain.has_value());
  CHECK_FALSE(client::capability_of(plain->response).has_value());
  CHECK_FALSE(pcpc::response_json(*plain).contains("capabilities"));
}

TEST_CASE("R-CAP-1 round trip: pcpc announce --capabilities") {
  Loop l(router_policy({"ipv6-firewall", "tcp", "udp"}));
  auto out = l.cl.announce(true);
  REQUIRE(out.has_value());
  CHECK(out->success());
  auto caps = client::capability_of(out->response);
  REQUIRE(caps.has_value());
  CHECK(caps->to_string() == "ipv6-firewall,tcp,udp");
}

TEST_CASE("R-CAP-8 round trip: UNSUPP_PROTOCOL arrives with the set") {
  Loop l(router_policy({"nat44", "tcp", "udp"}));
  auto out = l.cl.map(map_spec(132, false));  // SCTP: not served
  REQUIRE(out.has_value());
  CHECK(out->response.result == wire::ResultCode::UnsuppProtocol);
  auto caps = client::capability_of(out->response);
  REQUIRE(caps.has_value());
  CHECK(caps->to_string() == "nat44,tcp,udp");
}

TEST_CASE("R-CAP-5 round trip: a server without a set answers without the option") {
  core::Policy p;
  p.external_v4 = {ip("203.0.113.1")};
  Loop l(p);
  auto out = l.cl.map(map_spec(6, true));
  REQUIRE(out.has_value());
  CHECK(out->success());
  CHECK_FALSE(client::capability_of(out->response).has_value());
}

TEST_CASE("R-CAP-2 R-CAP-7 unsolicited ANNOUNCE: decoded with its source, set kept per server") {
  pcpd::test::FakeClock sc;
  pcpd::test::FakeDatapath dp;
  core::Server a(router_policy({"nat44", "tcp", "udp"}), dp, sc);
  core::Server b(router_policy({"ipv6-firewall", "tcp", "udp"}), dp, sc);
  const wire::IpAddr addr_a = ip("192.0.2.1"), addr_b = ip("2001:db8::1");
  const client::Millis now{5000};

  auto from_a = client::decode_announce(unsolicited(a, true), addr_a, std::nullopt, now);
  REQUIRE(from_a.has_value());
  CHECK(from_a->source == addr_a);
  CHECK(from_a->received_at == now);
  REQUIRE(from_a->capability.has_value());
  CHECK(from_a->capability->to_string() == "nat44,tcp,udp");
  // A listener bound to one server ignores the others (R-SEC-5).
  CHECK_FALSE(client::decode_announce(unsolicited(a, true), addr_a, addr_b, now).has_value());
  CHECK(client::decode_announce(unsolicited(a, true), addr_a, addr_a, now).has_value());
  // Without the option (capability.always off, no change): no set.
  auto bare = client::decode_announce(unsolicited(a, false), addr_a, std::nullopt, now);
  REQUIRE(bare.has_value());
  CHECK_FALSE(bare->capability.has_value());
  // A request is not an ANNOUNCE response.
  std::array<std::uint8_t, 24> request{2, 0};
  CHECK_FALSE(client::decode_announce(request, addr_a, std::nullopt, now).has_value());

  client::CapabilityTable table;
  CHECK(table.update(addr_a, *from_a->capability));  // first: new
  CHECK_FALSE(table.update(addr_a, *from_a->capability));  // same again: no event
  auto from_b = client::decode_announce(unsolicited(b, true), addr_b, std::nullopt, now);
  REQUIRE(from_b.has_value());
  CHECK(table.update(addr_b, *from_b->capability));
  CHECK(table.size() == 2);
  // R-CAP-7: a changed set replaces that server's set only.
  a.set_policy(router_policy({"nat44", "tcp"}));
  auto changed = client::decode_announce(unsolicited(a, true), addr_a, std::nullopt, now);
  REQUIRE(changed.has_value());
  CHECK(table.update(addr_a, *changed->capability));
  CHECK(table.find(addr_a)->to_string() == "nat44,tcp");
  CHECK(table.find(addr_b)->to_string() == "ipv6-firewall,tcp,udp");
  CHECK_FALSE(table.find(ip("192.0.2.77")).has_value());
}

TEST_CASE("pcpc listen output: ANNOUNCE and CAPABILITY lines and JSON objects") {
  client::Announcement a;
  a.epoch = 12;
  a.source = ip("192.0.2.1");
  CHECK(pcpc::announce_line(a, true) == "ANNOUNCE server=192.0.2.1 epoch=12 epoch_valid");
  CHECK(pcpc::announce_line(a, false) == "ANNOUNCE server=192.0.2.1 epoch=12 epoch_invalid");
  const auto j = pcpc::announce_json(a, true);
  CHECK(j["event"] == "announce");
  CHECK(j["server"] == "192.0.2.1");
  CHECK(j["epoch"] == 12);
  CHECK(j["epoch_valid"] == true);
  wire::CapabilitySet s;
  s.set(std::string_view("nptv6"));
  s.set(std::string_view("sctp"));
  CHECK(pcpc::capability_line(ip("2001:db8::1"), s) == "CAPABILITY server=2001:db8::1 nptv6,sctp");
  CHECK(pcpc::capability_line(ip("192.0.2.1"), wire::CapabilitySet{}) == "CAPABILITY server=192.0.2.1 none");
  const auto c = pcpc::capability_json(ip("192.0.2.1"), s);
  CHECK(c["event"] == "capability");
  CHECK(c["capabilities"] == nlohmann::json({"nptv6", "sctp"}));
}

TEST_CASE("R-ANN-4 R-CAP-2 an unsolicited ANNOUNCE on the request socket keeps its set") {
  Loop l(router_policy({"nat44", "tcp", "udp"}, true));
  l.transport.inject(unsolicited(l.server, false), l.clock.now());  // always: carries it anyway
  REQUIRE(l.cl.poll().has_value());
  auto got = l.cl.take_announcements();
  REQUIRE(got.size() == 1);
  CHECK(got[0].source == kServer);
  REQUIRE(got[0].capability.has_value());
  CHECK(got[0].capability->to_string() == "nat44,tcp,udp");
}
