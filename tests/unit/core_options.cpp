// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_core options: FILTER (R-FLT-*), DESCRIPTION (RFC 7220), CHECKPOINT_REQUIRED, unknown ones.
#include "core/description.hpp"
#include "unit/core_fixture.hpp"

using namespace pcpd::test;
using pcpd::core::Change;

namespace {
Request with_filters(MapArgs a, std::initializer_list<wire::Filter> filters) {
  Request r = map_req(a);
  for (const auto& flt : filters) r.options.filters[r.options.filter_count++] = flt;
  return r;
}
wire::Filter v4_filter(const char* addr, std::uint8_t len, std::uint16_t port = 0) {
  return {.prefix_length = len, .remote_port = port, .remote_addr = ip(addr)};
}
}  // namespace

TEST_CASE("R-FLT-1 R-FLT-8 filters are stored, sent to the datapath and echoed only if requested") {
  Fixture f;
  auto r = f.send(with_filters({}, {v4_filter("198.51.100.0", 120, 443)}));
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.filter_count == 1);
  CHECK(r.response.options.filters[0] == v4_filter("198.51.100.0", 120, 443));
  CHECK(f.dp.last().changes.front().mapping.filters.size() == 1);
  auto plain = f.map({.internal_port = 1});
  CHECK(plain.response.options.filter_count == 0);
}

TEST_CASE("R-FLT-2 prefix length 0 removes every earlier filter") {
  Fixture f;
  REQUIRE(f.send(with_filters({}, {v4_filter("198.51.100.0", 120), v4_filter("198.51.100.64", 122)})).kind ==
          Reply::Kind::Success);
  CHECK(f.server->mappings().front().filters.size() == 2);
  auto r = f.send(with_filters({}, {v4_filter("0.0.0.0", 0), v4_filter("203.0.113.0", 120)}));
  REQUIRE(r.kind == Reply::Kind::Success);
  const auto filters = f.server->mappings().front().filters;
  REQUIRE(filters.size() == 1);
  CHECK(filters[0].remote_addr == ip("203.0.113.0"));
}

TEST_CASE("R-FLT-3 R-FLT-6 over the cap is EXCESSIVE_REMOTE_PEERS with no state change") {
  auto p = default_policy();
  p.max_filters_per_mapping = 2;
  Fixture f(p);
  REQUIRE(f.send(with_filters({}, {v4_filter("198.51.100.1", 128)})).kind == Reply::Kind::Success);
  const auto calls = f.dp.calls();
  auto r = f.send(with_filters({.lifetime = 7000}, {v4_filter("198.51.100.2", 128), v4_filter("198.51.100.3", 128)}));
  CHECK(r.response.result == ResultCode::ExcessiveRemotePeers);
  CHECK(f.dp.calls() == calls);
  CHECK(f.server->mappings().front().filters.size() == 1);
  CHECK(f.server->mappings().front().lifetime == 3600);
  // Duplicates are not counted twice.
  CHECK(f.send(with_filters({}, {v4_filter("198.51.100.1", 128), v4_filter("198.51.100.2", 128)})).kind ==
        Reply::Kind::Success);
  CHECK(f.server->mappings().front().filters.size() == 2);
  // On create as well.
  CHECK(f.send(with_filters({.internal_port = 2}, {v4_filter("198.51.100.1", 128), v4_filter("198.51.100.2", 128),
                                                   v4_filter("198.51.100.3", 128)}))
            .response.result == ResultCode::ExcessiveRemotePeers);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-FLT-4 prefix lengths: IPv4 96..128, IPv6 0..128, else MALFORMED_OPTION") {
  Fixture f;
  CHECK(f.send(with_filters({}, {v4_filter("198.51.100.0", 95)})).response.result == ResultCode::MalformedOption);
  CHECK(f.send(with_filters({}, {v4_filter("198.51.100.0", 129)})).response.result == ResultCode::MalformedOption);
  CHECK(f.send(with_filters({}, {v4_filter("198.51.100.0", 96)})).kind == Reply::Kind::Success);
  const IpAddr v6 = ip("2001:db8::10");
  CHECK(f.send(with_filters({.client = v6}, {{.prefix_length = 1, .remote_port = 0, .remote_addr = ip("2001:db8:1::")}}))
            .kind == Reply::Kind::Success);
  CHECK(f.send(with_filters({.client = v6}, {{.prefix_length = 129, .remote_port = 0, .remote_addr = ip("2001:db8:1::")}}))
            .response.result == ResultCode::MalformedOption);
}

TEST_CASE("R-FLT-5 a filter in another family than the internal address is MALFORMED_OPTION (local decision)") {
  Fixture f;
  auto r = f.send(with_filters({}, {{.prefix_length = 128, .remote_port = 0, .remote_addr = ip("2001:db8::1")}}));
  CHECK(r.response.result == ResultCode::MalformedOption);
  CHECK(f.server->mapping_count() == 0);
}

TEST_CASE("R-FLT-6 filters add up, a refresh without FILTER keeps them, FILTER with lifetime 0 is MALFORMED_OPTION") {
  Fixture f;
  REQUIRE(f.send(with_filters({}, {v4_filter("198.51.100.1", 128)})).kind == Reply::Kind::Success);
  REQUIRE(f.send(with_filters({}, {v4_filter("198.51.100.2", 128)})).kind == Reply::Kind::Success);
  CHECK(f.server->mappings().front().filters.size() == 2);
  auto refresh = f.map({});
  REQUIRE(refresh.kind == Reply::Kind::Success);
  CHECK(refresh.response.options.filter_count == 0);
  CHECK(f.server->mappings().front().filters.size() == 2);
  CHECK(f.dp.last().changes.front().mapping.filters.size() == 2);
  auto del = f.send(with_filters({.lifetime = 0}, {v4_filter("198.51.100.1", 128)}));
  CHECK(del.response.result == ResultCode::MalformedOption);
  CHECK(f.server->mapping_count() == 1);
}

TEST_CASE("R-FLT-7 FILTER is implemented (not UNSUPP_OPTION) and R-OPT-7 FILTER in PEER is MALFORMED_OPTION") {
  Fixture f;
  CHECK(f.send(with_filters({}, {v4_filter("198.51.100.1", 128)})).kind == Reply::Kind::Success);
  auto peer = peer_req({});
  peer.options.filters[0] = v4_filter("198.51.100.1", 128);
  peer.options.filter_count = 1;
  CHECK(f.send(peer).response.result == ResultCode::MalformedOption);
}

TEST_CASE("RFC 7220 DESCRIPTION: stored, echoed when requested, replaced on renewal, empty erases") {
  Fixture f;
  auto req = map_req({});
  req.options.description = std::string_view("web server");
  auto r = f.send(req);
  REQUIRE(r.response.options.description.has_value());
  CHECK(*r.response.options.description == "web server");
  CHECK(f.server->mappings().front().description == "web server");
  // Renewal without DESCRIPTION keeps it and echoes nothing.
  auto plain = f.map({});
  CHECK_FALSE(plain.response.options.description.has_value());
  CHECK(f.server->mappings().front().description == "web server");
  req.options.description = std::string_view("mail");
  (void)f.send(req);
  CHECK(f.server->mappings().front().description == "mail");
  req.options.description = std::string_view("");
  auto e = f.send(req);
  REQUIRE(e.response.options.description.has_value());
  CHECK(e.response.options.description->empty());
  CHECK(f.server->mappings().front().description.empty());
}

TEST_CASE("RFC 7220 DESCRIPTION: truncated at a UTF-8 boundary, invalid UTF-8 ignored, not echoed") {
  auto p = default_policy();
  p.description_max = 4;
  Fixture f(p);
  auto req = map_req({});
  req.options.description = std::string_view("ab\xC3\xA9z");  // "abéz": 5 bytes, é is 2
  auto r = f.send(req);
  REQUIRE(r.response.options.description.has_value());
  CHECK(*r.response.options.description == "ab\xC3\xA9");
  req.options.description = std::string_view("abc\xC3\xA9");  // cut would split é -> "abc"
  CHECK(*f.send(req).response.options.description == "abc");
  req.options.description = std::string_view("x\xC3(");
  auto bad = f.send(req);
  CHECK(bad.kind == Reply::Kind::Success);
  CHECK_FALSE(bad.response.options.description.has_value());
  CHECK(f.server->mappings().front().description == "abc");
  // PEER takes DESCRIPTION too.
  auto peer = peer_req({});
  peer.options.description = std::string_view("ssh");
  CHECK(*f.send(peer).response.options.description == "ssh");
}

TEST_CASE("UTF-8 validation rejects overlongs, surrogates and code points above U+10FFFF") {
  using pcpd::core::valid_utf8;
  CHECK(valid_utf8("plain"));
  CHECK(valid_utf8("\xE2\x82\xAC"));       // €
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));   // emoji
  CHECK_FALSE(valid_utf8("\xC0\xAF"));     // overlong /
  CHECK_FALSE(valid_utf8("\xE0\x80\xAF")); // overlong
  CHECK_FALSE(valid_utf8("\xED\xA0\x80")); // surrogate
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));
  CHECK_FALSE(valid_utf8("\xE2\x82"));     // truncated
}

TEST_CASE("R-OPT-2 unprocessed optional options and CAPABILITY are not echoed") {
  Fixture f;
  auto req = map_req({});
  req.options.ignored_optional = 2;
  req.options.capability = std::array<std::uint8_t, wire::kCapabilityBytes>{};
  auto r = f.send(req);
  REQUIRE(r.kind == Reply::Kind::Success);
  CHECK(r.response.options.ignored_optional == 0);
  CHECK_FALSE(r.response.options.capability.has_value());
}

TEST_CASE("R-PF-3 PREFER_FAILURE creates are rate-limited per client, answered without looking") {
  Policy p = default_policy();
  p.rate_limit.prefer_failure_rate = 1.0;
  p.rate_limit.prefer_failure_burst = 3.0;
  Fixture f(p);
  auto strict = [](IpAddr client, std::uint16_t port) {
    Request r = map_req({.client = client, .internal_port = port, .suggested_port = port,
                         .suggested_addr = ip("203.0.113.1")});
    r.options.prefer_failure = true;
    return r;
  };
  for (std::uint16_t port : {6001, 6002, 6003}) CHECK(f.send(strict(ip("192.0.2.10"), port)).kind == Reply::Kind::Success);
  // The bucket is empty: a free port is refused all the same, so the answer says nothing.
  const Reply over = f.send(strict(ip("192.0.2.10"), 6004));
  CHECK(over.response.result == ResultCode::CannotProvideExternal);
  CHECK(f.server->stats().prefer_failure_limited == 1);
  CHECK(f.server->mapping_count() == 3);
  // Another client has its own bucket; without PREFER_FAILURE nothing is limited.
  CHECK(f.send(strict(ip("192.0.2.11"), 6004)).kind == Reply::Kind::Success);
  CHECK(f.map({.internal_port = 6005}).kind == Reply::Kind::Success);
  // A second later one more token.
  f.clock.advance_s(1);
  CHECK(f.send(strict(ip("192.0.2.10"), 6006)).kind == Reply::Kind::Success);
  // Rate 0 turns it off.
  p.rate_limit.prefer_failure_rate = 0;
  f.server->set_policy(p);
  for (std::uint16_t port : {6010, 6011, 6012, 6013, 6014})
    CHECK(f.send(strict(ip("192.0.2.10"), port)).kind == Reply::Kind::Success);
}
