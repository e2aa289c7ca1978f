// SPDX-License-Identifier: GPL-2.0-or-later
// pcpc: argument parsing, default gateway parsing, human and JSON output shape
// (docs/interfaces.md "pcpc(1)").
#include <doctest/doctest.h>

#include "client_fakes.hpp"
#include "pcpc/arguments.hpp"
#include "pcpc/default_gateway.hpp"
#include "pcpc/output.hpp"

using namespace pcpd;
using namespace pcpd::client;
using namespace pcpd::client::test;
using namespace pcpd::pcpc;

TEST_CASE("pcpc: protocol names and numbers") {
  CHECK(parse_protocol("tcp") == std::optional<std::uint8_t>(6));
  CHECK(parse_protocol("udp") == std::optional<std::uint8_t>(17));
  CHECK(parse_protocol("sctp") == std::optional<std::uint8_t>(132));
  CHECK(parse_protocol("all") == std::optional<std::uint8_t>(0));
  CHECK(parse_protocol("0") == std::optional<std::uint8_t>(0));
  CHECK(parse_protocol("47") == std::optional<std::uint8_t>(47));
  CHECK_FALSE(parse_protocol("256").has_value());
  CHECK_FALSE(parse_protocol("tcpx").has_value());
  CHECK_FALSE(parse_protocol("").has_value());
  CHECK(protocol_name(6) == "tcp");
  CHECK(protocol_name(0) == "all");
  CHECK(protocol_name(47) == "47");
}

TEST_CASE("pcpc: remote ADDR:PORT") {
  auto a = parse_endpoint("198.51.100.1:80");
  REQUIRE(a);
  CHECK(a->addr == ip("198.51.100.1"));
  CHECK(a->port == 80);
  auto b = parse_endpoint("[2001:db8::1]:443");
  REQUIRE(b);
  CHECK(b->addr == ip("2001:db8::1"));
  CHECK(b->port == 443);
  CHECK_FALSE(parse_endpoint("198.51.100.1").has_value());
  CHECK_FALSE(parse_endpoint("198.51.100.1:0").has_value());  // R-PEER-2
  CHECK_FALSE(parse_endpoint("198.51.100.1:65536").has_value());
  CHECK_FALSE(parse_endpoint("2001:db8::1:443").has_value());  // IPv6 needs brackets
  CHECK_FALSE(parse_endpoint("[192.0.2.1]:80").has_value());
  CHECK(format_endpoint(ip("2001:db8::1"), 443) == "[2001:db8::1]:443");
  CHECK(format_endpoint(ip("192.0.2.1"), 80) == "192.0.2.1:80");
}

TEST_CASE("R-FLT-4 R-FLT-2: --filter PREFIX[:PORT]") {
  auto a = parse_filter("198.51.100.0/24:443");
  REQUIRE(a);
  CHECK(a->prefix_length == 120);
  CHECK(a->remote_port == 443);
  CHECK(a->remote_addr == ip("198.51.100.0"));
  auto b = parse_filter("2001:db8::/32");
  REQUIRE(b);
  CHECK(b->prefix_length == 32);
  CHECK(b->remote_port == 0);
  auto c = parse_filter("2001:db8::/32:80");
  REQUIRE(c);
  CHECK(c->remote_port == 80);
  auto d = parse_filter("[2001:db8::/48]:8080");
  REQUIRE(d);
  CHECK(d->prefix_length == 48);
  CHECK(d->remote_port == 8080);
  auto e = parse_filter("0.0.0.0/0");  // clears every filter
  REQUIRE(e);
  CHECK(e->prefix_length == 0);
  auto g = parse_filter("198.51.100.7:53");
  REQUIRE(g);
  CHECK(g->prefix_length == 128);
  CHECK(g->remote_port == 53);
  CHECK_FALSE(parse_filter("198.51.100.0/33").has_value());
  CHECK_FALSE(parse_filter("2001:db8::/129").has_value());
  CHECK_FALSE(parse_filter("198.51.100.0/24:").has_value());
  CHECK_FALSE(parse_filter("nonsense").has_value());
  CHECK(format_filter_prefix(*a) == "198.51.100.0/24");
  CHECK(format_filter_prefix(*b) == "2001:db8::/32");
}

TEST_CASE("pcpc: nonce and server parsing") {
  auto n = parse_nonce("00112233445566778899AaBb");
  REQUIRE(n);
  CHECK((*n)[0] == 0x00);
  CHECK((*n)[11] == 0xbb);
  CHECK(nonce_hex(*n) == "00112233445566778899aabb");
  CHECK_FALSE(parse_nonce("0011").has_value());
  CHECK_FALSE(parse_nonce("00112233445566778899aabg").has_value());
  auto s = parse_server("fe80::1%lan0");
  REQUIRE(s);
  CHECK(s->addr == ip("fe80::1"));
  CHECK(s->zone == "lan0");
  CHECK(parse_server("192.0.2.1")->zone.empty());
  CHECK_FALSE(parse_server("192.0.2.1%lan0").has_value());
  CHECK_FALSE(parse_server("gateway").has_value());
}

TEST_CASE("pcpc: default gateway from /proc/net/route and /proc/net/ipv6_route") {
  const char* v4 =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "lan0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
      "wan1\t00000000\t016433C6\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
      "lan0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
  auto g = parse_ipv4_default_route(v4);
  REQUIRE(g);
  CHECK(g->addr == ip("192.0.2.1"));  // lowest metric
  CHECK(g->interface == "lan0");
  CHECK_FALSE(parse_ipv4_default_route("Iface\tDestination\n").has_value());
  const char* v6 =
      "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001     lan0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "fe800000000000000000000000000001 00000400 00000002 00000000 00000003     lan0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
  auto h = parse_ipv6_default_route(v6);
  REQUIRE(h);
  CHECK(h->addr == ip("fe80::1"));
  CHECK(h->interface == "lan0");
}

namespace {

Outcome map_outcome() {
  MappingSpec s;
  s.protocol = 6;
  s.internal_port = 8080;
  auto nonce = *parse_nonce("00112233445566778899aabb");
  auto req = build_request(s, nonce, ip("192.0.2.10"));
  Outcome o;
  o.response = answer(req, 3600, 12, wire::ResultCode::Success, ip("203.0.113.1"), 8080);
  o.internal_addr = ip("192.0.2.10");
  return o;
}

}  // namespace

TEST_CASE("pcpc: human line for MAP, PEER and ANNOUNCE") {
  CHECK(human_line(map_outcome()) ==
        "MAP tcp 192.0.2.10:8080 -> 203.0.113.1:8080 lifetime=3600 epoch=12 "
        "nonce=00112233445566778899aabb SUCCESS");
  auto err = map_outcome();
  err.response.result = wire::ResultCode::NotAuthorized;
  err.response.lifetime = 1800;
  CHECK(human_line(err).ends_with("lifetime=1800 epoch=12 nonce=00112233445566778899aabb NOT_AUTHORIZED"));

  MappingSpec p;
  p.opcode = wire::Opcode::Peer;
  p.protocol = 17;
  p.internal_port = 5000;
  p.remote_addr = ip("2001:db8:2::9");
  p.remote_port = 3478;
  Outcome po;
  po.response = answer(build_request(p, wire::Nonce{}, ip("2001:db8:1::10")), 120, 3,
                       wire::ResultCode::Success, ip("2001:db8:1::10"), 5000);
  po.internal_addr = ip("2001:db8:1::10");
  CHECK(human_line(po) ==
        "PEER udp [2001:db8:1::10]:5000 -> [2001:db8:1::10]:5000 remote=[2001:db8:2::9]:3478 "
        "lifetime=120 epoch=3 nonce=000000000000000000000000 SUCCESS");

  Outcome ao;
  ao.response.opcode = wire::Opcode::Announce;
  ao.response.epoch = 99;
  CHECK(human_line(ao) == "ANNOUNCE lifetime=0 epoch=99 SUCCESS");
}

TEST_CASE("pcpc: JSON shape of a MAP response") {
  auto o = map_outcome();
  o.response.options.third_party = ip("192.0.2.20");
  o.response.options.filters[0] = wire::Filter{120, 443, ip("198.51.100.0")};
  o.response.options.filter_count = 1;
  o.response.options.checkpoint_required = true;
  o.description = "web server";
  const auto j = response_json(o);
  for (const char* key : {"opcode", "result", "result_code", "lifetime", "epoch", "protocol",
                          "internal_address", "internal_port", "external_address",
                          "external_port", "nonce", "options"})
    CHECK_MESSAGE(j.contains(key), key);
  CHECK_FALSE(j.contains("remote_address"));
  CHECK(j["opcode"] == "MAP");
  CHECK(j["result"] == "SUCCESS");
  CHECK(j["result_code"] == 0);
  CHECK(j["lifetime"] == 3600);
  CHECK(j["epoch"] == 12);
  CHECK(j["protocol"] == "tcp");
  CHECK(j["internal_address"] == "192.0.2.10");
  CHECK(j["internal_port"] == 8080);
  CHECK(j["external_address"] == "203.0.113.1");
  CHECK(j["external_port"] == 8080);
  CHECK(j["nonce"] == "00112233445566778899aabb");
  const auto& opts = j["options"];
  CHECK(opts["third_party"] == "192.0.2.20");
  REQUIRE(opts["filters"].is_array());
  CHECK(opts["filters"][0]["prefix"] == "198.51.100.0/24");
  CHECK(opts["filters"][0]["port"] == 443);
  CHECK(opts["description"] == "web server");
  CHECK(opts["checkpoint"] == true);
  CHECK_FALSE(opts.contains("prefer_failure"));
  // Round trip: one line of valid JSON.
  const auto text = j.dump();
  CHECK(text.find('\n') == std::string::npos);
  CHECK(nlohmann::json::parse(text) == j);
}

TEST_CASE("pcpc: JSON of PEER has the remote peer, ANNOUNCE has only the header keys") {
  MappingSpec p;
  p.opcode = wire::Opcode::Peer;
  p.protocol = 6;
  p.internal_port = 22;
  p.remote_addr = ip("198.51.100.1");
  p.remote_port = 80;
  Outcome po;
  po.response = answer(build_request(p, wire::Nonce{}, ip("192.0.2.10")), 120, 3);
  po.internal_addr = ip("192.0.2.10");
  auto j = response_json(po);
  CHECK(j["opcode"] == "PEER");
  CHECK(j["remote_address"] == "198.51.100.1");
  CHECK(j["remote_port"] == 80);
  CHECK(j["options"].is_object());
  CHECK(j["options"].empty());

  Outcome ao;
  ao.response.opcode = wire::Opcode::Announce;
  ao.response.result = wire::ResultCode::UnsuppVersion;
  ao.response.result = static_cast<wire::ResultCode>(1);
  auto a = response_json(ao);
  CHECK(a["opcode"] == "ANNOUNCE");
  CHECK(a["result"] == "UNSUPP_VERSION");
  CHECK(a["result_code"] == 1);
  CHECK_FALSE(a.contains("protocol"));
  CHECK_FALSE(a.contains("nonce"));
}

TEST_CASE("pcpc --keep: event lines and JSON events") {
  SessionEvent renew{SessionEvent::Kind::Renewed, 0, map_outcome(), 12, true, {}};
  CHECK(human_event(renew) == human_line(*renew.outcome));
  auto jr = json_event(renew);
  CHECK(jr["event"] == "renew");
  CHECK(jr["opcode"] == "MAP");
  SessionEvent ann{SessionEvent::Kind::Announce, 0, std::nullopt, 7, false, {}};
  CHECK(human_event(ann) == "EVENT announce epoch=7 epoch_invalid");
  auto ja = json_event(ann);
  CHECK(ja["event"] == "announce");
  CHECK(ja["epoch"] == 7);
  CHECK(ja["epoch_valid"] == false);
  SessionEvent sched{SessionEvent::Kind::RecreateScheduled, 0, std::nullopt, 0, true, Millis{1234}};
  CHECK(human_event(sched) == "EVENT recreate_scheduled delay_ms=1234");
  CHECK(json_event(sched)["delay_ms"] == 1234);
}
