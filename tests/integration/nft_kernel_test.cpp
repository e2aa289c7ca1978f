// SPDX-License-Identifier: GPL-2.0-or-later
// test_nft_kernel: NftDatapath against the real kernel, in a private network namespace (main()
// unshares CLONE_NEWNET, so nothing leaks into the host). Needs root; run through
// nft_kernel_test.sh. Loads nft-rules/pcpd.nft with the nft CLI (tests may use it; the library
// never does) and checks verify, apply, atomicity, recovery, timeouts, scale and conntrack.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "integration/ct_sync_kernel.hpp"
#include "integration/shell_command.hpp"
#include "nft/element.hpp"
#include "nft/element_comment.hpp"
#include "nft/netlink_session.hpp"
#include "nft/nft_datapath.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;
using Clock = std::chrono::steady_clock;

namespace {

using integration::Cmd;
using integration::sh;

std::string rules_file() { return std::string(PCPD_SOURCE_DIR) + "/nft-rules/pcpd.nft"; }

// A clean table: nothing from an earlier case survives.
void load_rules() {
  REQUIRE(sh("nft flush ruleset").rc == 0);
  auto r = sh("nft -f " + rules_file());
  INFO(r.out);
  REQUIRE(r.rc == 0);
}

std::string table() { return sh("nft list table inet pcpd").out; }
std::string set_text(const char* name) {
  auto r = sh(std::string("nft list set inet pcpd ") + name);
  return r.rc == 0 ? r.out : sh(std::string("nft list map inet pcpd ") + name).out;
}
bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

core::Millis now_ms() { return core::BootClock{}.now(); }

// One NEWSETELEM in its own batch, built with raw libnftnl (no length checks), for the limit test.
Result<std::vector<BatchError>> send_one_element(NetlinkSession& nl, const Element& e) {
  std::vector<char> buf(8192);
  std::vector<std::uint8_t> bytes;
  const std::uint32_t seq = nl.next_seq();  // BEGIN, the element, END: send_batch moves past them
  auto append = [&](const nlmsghdr* nlh) {
    auto* p = reinterpret_cast<const std::uint8_t*>(nlh);
    bytes.insert(bytes.end(), p, p + nlh->nlmsg_len);
  };
  append(nftnl_batch_begin(buf.data(), seq));
  auto* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWSETELEM, NFPROTO_INET,
                                    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, seq + 1);
  auto* s = nftnl_set_alloc();
  nftnl_set_set_str(s, NFTNL_SET_TABLE, "pcpd");
  nftnl_set_set_str(s, NFTNL_SET_NAME, std::string(set_spec(e.set).name).c_str());
  auto* el = nftnl_set_elem_alloc();
  nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(), static_cast<std::uint32_t>(e.key.size()));
  nftnl_set_elem_set_u64(el, NFTNL_SET_ELEM_TIMEOUT, 600000);
  auto* ud = nftnl_udata_buf_alloc(512);
  REQUIRE(nftnl_udata_put_strz(ud, NFTNL_UDATA_SET_ELEM_COMMENT, e.comment.c_str()));
  nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
  nftnl_udata_buf_free(ud);
  nftnl_set_elem_add(s, el);
  nftnl_set_elems_nlmsg_build_payload(nlh, s);
  nftnl_set_free(s);
  append(nlh);
  append(nftnl_batch_end(buf.data(), seq + 2));
  Batch b;
  b.bytes = std::move(bytes);
  b.begin_seq = seq;
  b.messages.push_back({MessageRef::Op::Add, e.set, 0});
  return nl.send_batch(b);
}

std::string setup_error(const TableSpec& spec) {
  try {
    (void)NftDatapath::open(spec);
  } catch (const SetupError& e) {
    return e.what();
  }
  return {};
}

core::ChangeSet adds(std::initializer_list<core::Mapping> ms) {
  core::ChangeSet cs;
  for (const auto& m : ms) cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  return cs;
}

void check_same(const core::Mapping& a, const core::Mapping& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.origin == b.origin);
  CHECK(a.protocol == b.protocol);
  CHECK(a.internal_addr == b.internal_addr);
  CHECK(a.internal_port == b.internal_port);
  CHECK(a.external_addr == b.external_addr);
  CHECK(a.external_port == b.external_port);
  CHECK(a.remote_addr == b.remote_addr);
  CHECK(a.remote_port == b.remote_port);
  CHECK(a.client_addr == b.client_addr);
  CHECK(a.nonce == b.nonce);
  CHECK(a.lifetime == b.lifetime);
  CHECK(a.third_party == b.third_party);
  CHECK(a.checkpoint == b.checkpoint);
  CHECK(a.filters == b.filters);
  CHECK(a.description == b.description);
}

// Remaining time of the element of `set_name` whose listing starts with `key` ("expires 2m8s996ms"
// in nft list), in ms; -1 when there is no such element.
long long expires_ms(const char* set_name, const std::string& key) {
  const std::string t = set_text(set_name);
  auto at = t.find(key);
  if (at == std::string::npos) return -1;
  at = t.find("expires ", at);
  if (at == std::string::npos) return -1;
  long long total = 0, n = 0;
  for (std::size_t i = at + 8; i < t.size(); ++i) {
    const char c = t[i];
    if (c >= '0' && c <= '9') {
      n = n * 10 + (c - '0');
    } else if (c == 'd') {
      total += n * 86400000, n = 0;
    } else if (c == 'h') {
      total += n * 3600000, n = 0;
    } else if (c == 'm' && i + 1 < t.size() && t[i + 1] == 's') {
      total += n, n = 0, ++i;
    } else if (c == 'm') {
      total += n * 60000, n = 0;
    } else if (c == 's') {
      total += n * 1000, n = 0;
    } else {
      break;
    }
  }
  return total;
}

// Whether the running kernel is at least major.minor (uname -r).
bool kernel_at_least(int major, int minor) {
  int a = 0, b = 0;
  if (std::sscanf(sh("uname -r").out.c_str(), "%d.%d", &a, &b) != 2) return false;
  return a > major || (a == major && b >= minor);
}

}  // namespace

TEST_CASE("nft kernel: the rules file loads twice and keeps its elements") {
  load_rules();
  REQUIRE(sh("nft add element inet pcpd map4_dnat '{ 203.0.113.1 . tcp . 1 timeout 1h : 192.0.2.2 . 2 }'").rc == 0);
  auto again = sh("nft -f " + rules_file());
  INFO(again.out);
  CHECK(again.rc == 0);
  CHECK(has(set_text("map4_dnat"), "203.0.113.1 . tcp . 1 timeout 1h"));
  CHECK(sh("nft list chain inet pcpd pre_nat | grep -c 'dnat ip to'").out == "2\n");  // chains refilled, not doubled (MAP and all ports)
}

TEST_CASE("nft kernel: open() refuses a missing table and wrong or missing sets, naming the fix") {
  REQUIRE(sh("nft flush ruleset").rc == 0);
  auto msg = setup_error({});
  CHECK(has(msg, "table inet pcpd not found"));
  CHECK(has(msg, "nft -f /usr/share/pcpd/pcpd.nft"));
  CHECK(has(msg, "nft-rules/pcpd.nft"));

  load_rules();
  CHECK(setup_error({}).empty());
  REQUIRE(sh("nft flush chain inet pcpd post_nat && nft delete map inet pcpd map4_snat && "
             "nft add map inet pcpd map4_snat '{ type ipv4_addr : ipv4_addr; flags timeout; }' && "
             "nft flush chain inet pcpd pre_filter && nft delete set inet pcpd pin6")
              .rc == 0);
  msg = setup_error({});
  MESSAGE("open() message: " << msg);
  CHECK(has(msg, "map4_snat has key type"));
  CHECK(has(msg, "expected map { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"));
  CHECK(has(msg, "pin6 is missing"));
  CHECK(has(msg, "nft -f /usr/share/pcpd/pcpd.nft"));
  CHECK_FALSE(has(msg, "map4_dnat"));

  // a set without its timeout flag is also refused
  load_rules();
  REQUIRE(sh("nft flush chain inet pcpd pre_filter && nft delete set inet pcpd filt6_on && "
             "nft add set inet pcpd filt6_on '{ type ipv6_addr . inet_proto . inet_service; }'")
              .rc == 0);
  CHECK(has(setup_error({}), "filt6_on has key type"));
}

TEST_CASE("nft kernel: checkpoint election sets are verified by open() and survive a reload") {
  load_rules();
  CHECK(setup_error({}).empty());
  REQUIRE(sh("nft add element inet pcpd elect4_dst '{ 203.0.113.1 . tcp . 1 timeout 1h }'").rc == 0);
  auto again = sh("nft -f " + rules_file());
  INFO(again.out);
  CHECK(again.rc == 0);
  CHECK(has(set_text("elect4_dst"), "203.0.113.1 . tcp . 1 timeout 1h"));
  CHECK(sh("nft list chain inet pcpd pre_elect | grep -c 'ct event set'").out == "3\n");  // refilled, not doubled
  CHECK(sh("nft list chain inet pcpd out_elect | grep -c 'ct event set'").out == "3\n");
  CHECK(sh("nft list chain inet pcpd elect4 | grep -c 'ct mark set'").out == "3\n");
  CHECK(sh("nft list chain inet pcpd elect6 | grep -c 'ct mark set'").out == "3\n");
  REQUIRE(sh("nft flush chain inet pcpd elect4 && nft flush chain inet pcpd elect6 && nft delete set inet pcpd elect4_peer && "
             "nft add set inet pcpd elect4_peer '{ type ipv4_addr . inet_proto . inet_service; flags timeout; }' && "
             "nft delete set inet pcpd elect6_src")
              .rc == 0);
  auto msg = setup_error({});
  MESSAGE("open() message: " << msg);
  CHECK(has(msg, "elect4_peer has key type"));
  CHECK(has(msg, "expected set { type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service; flags timeout; }"));
  CHECK(has(msg, "elect6_src is missing"));
  CHECK_FALSE(has(msg, "elect4_dst"));
}

TEST_CASE("nft kernel: recover() with election keys: complete, lost key, stray key") {
  load_rules();
  auto dp = NftDatapath::open({});
  auto a = map4(8400);
  a.checkpoint = true;
  auto b = pin6(5400);
  b.checkpoint = true;
  auto c = peer6(5401);
  c.checkpoint = true;
  REQUIRE(dp->apply(adds({a, b, c, map4(8401, 81, "192.0.2.11")})).has_value());
  CHECK(has(set_text("elect4_dst"), "203.0.113.1 . tcp . 8400 timeout 1h30s"));
  CHECK(has(set_text("elect4_src"), "192.0.2.10 . tcp . 80 timeout 1h30s"));
  CHECK(has(set_text("elect6_dst"), "2001:db8:1::10 . udp . 5400 timeout 10m30s"));
  CHECK(has(set_text("elect6_src"), "2001:db8:1::10 . udp . 5400 timeout 10m30s"));
  CHECK(has(set_text("elect6_peer"), "2001:db8:1::10 . tcp . 5401 . 2001:db8:ff::20 . 443"));
  auto got = dp->recover(now_ms());
  REQUIRE(got.has_value());
  REQUIRE(got->size() == 4);
  std::size_t elected = 0;
  for (const auto& m : *got) elected += m.checkpoint ? 1 : 0;
  CHECK(elected == 3);
  CHECK(dp->counters().recovery_leftovers == 0);
  // the pinhole loses an election key, and a stray key appears: both cleaned, the pinhole with it
  REQUIRE(sh("nft delete element inet pcpd elect6_src '{ 2001:db8:1::10 . udp . 5400 }' && "
             "nft add element inet pcpd elect4_peer '{ 192.0.2.10 . tcp . 1 . 198.51.100.1 . 2 timeout 1h }'")
              .rc == 0);
  got = dp->recover(now_ms());
  REQUIRE(got.has_value());
  CHECK(got->size() == 3);
  CHECK(dp->counters().recovery_leftovers == 3);  // pin6 + elect6_dst + the stray elect4_peer
  CHECK_FALSE(has(set_text("pin6"), "5400"));
  CHECK_FALSE(has(set_text("elect6_dst"), "5400"));
  CHECK_FALSE(has(set_text("elect4_peer"), "198.51.100.1"));
  // un-election through Replace removes the keys; the mapping stays
  core::ChangeSet cs;
  auto a_off = a;
  a_off.checkpoint = false;
  cs.changes.push_back({core::Change::Op::Replace, a_off, a, false});
  REQUIRE(dp->apply(cs).has_value());
  CHECK_FALSE(has(set_text("elect4_dst"), "8400"));
  CHECK_FALSE(has(set_text("elect4_src"), "tcp . 80"));
  CHECK(has(set_text("map4_dnat"), "8400"));
}

TEST_CASE("nft kernel: add, replace (same key) and remove show up in nft list table inet pcpd") {
  load_rules();
  auto dp = NftDatapath::open({});
  auto m = map4(8080, 80);
  m.description = "web";
  REQUIRE(dp->apply(adds({m, pin6(5000), peer4(5555), peer6(5556)})).has_value());
  auto t = table();
  INFO(t);
  CHECK(has(t, "203.0.113.1 . tcp . 8080 timeout 1h30s expires"));
  CHECK(has(t, "comment \"" + ElementComment::from(m).encode() + "\" : 192.0.2.10 . 80"));
  CHECK(has(t, "192.0.2.10 . tcp . 80 timeout 1h30s expires"));
  CHECK(has(t, ": 203.0.113.1 . 8080"));
  CHECK(has(t, "2001:db8:1::10 . udp . 5000 timeout 10m30s"));
  CHECK(has(t, "192.0.2.10 . tcp . 5555 . 198.51.100.20 . 443 timeout 1h30s"));
  CHECK(has(t, "2001:db8:1::10 . tcp . 5556 . 2001:db8:ff::20 . 443"));

  // refresh: delete + add of the same keys in one transaction
  auto m2 = m;
  m2.lifetime = 7200;
  m2.checkpoint = true;
  m2.filters = {filter("198.51.100.0/24", 0), filter("198.51.100.128/25", 22), filter("192.0.2.99/32", 22)};
  core::ChangeSet refresh;
  refresh.changes.push_back({core::Change::Op::Replace, m2, m, false});
  auto r = dp->apply(refresh);
  INFO((r ? 0 : r.error().code));
  REQUIRE(r.has_value());
  t = table();
  CHECK(has(t, "203.0.113.1 . tcp . 8080 timeout 2h30s expires"));
  CHECK(has(t, "f=k d=web"));
  CHECK_FALSE(has(t, "timeout 1h30s expires 1h29m"));  // the old 8080 element is gone
  CHECK(has(set_text("filt4_on"), "203.0.113.1 . tcp . 8080 timeout 2h30s"));
  auto allow = set_text("filt4_allow");
  CHECK(has(allow, "203.0.113.1 . tcp . 8080 . 198.51.100.0/24 . 0-65535 timeout 2h30s"));
  CHECK(has(allow, "203.0.113.1 . tcp . 8080 . 192.0.2.99 . 22 timeout 2h30s"));
  CHECK_FALSE(has(allow, "198.51.100.128/25"));  // inside the /24 all-ports filter

  // replace the filters with overlapping new ones in the same transaction
  auto m3 = m2;
  m3.filters = {filter("198.51.100.0/25", 0)};
  refresh.changes = {{core::Change::Op::Replace, m3, m2, false}};
  REQUIRE(dp->apply(refresh).has_value());
  allow = set_text("filt4_allow");
  CHECK(has(allow, "198.51.100.0/25 . 0-65535"));
  CHECK_FALSE(has(allow, "198.51.100.0/24"));

  core::ChangeSet rm;
  rm.changes.push_back({core::Change::Op::Remove, m3, {}, false});
  rm.changes.push_back({core::Change::Op::Remove, pin6(5000), {}, false});
  REQUIRE(dp->apply(rm).has_value());
  t = table();
  CHECK_FALSE(has(t, "8080"));
  CHECK_FALSE(has(t, "5000"));
  CHECK(has(t, "5555"));
  auto c = dp->counters();
  CHECK(c.batches == 4);
  CHECK(c.batch_failures == 0);
}

TEST_CASE("nft kernel: a refresh restarts unchanged elements' timers in place (6.10+), else deletes and re-adds") {
  // a refresh with the same lifetime and options is one timer restart per element.
  // Either way the kernel must end with the new timeout and comment (RFC 6887 §11.3 / R-MAP-6).
  for (const bool allow : {true, false}) {
    CAPTURE(allow);
    load_rules();
    TableSpec spec;
    spec.refresh_in_place = allow;
    auto dp = NftDatapath::open(spec);
    CHECK_FALSE(dp->refresh_in_place());  // not before the probe
    const bool in_place = allow && kernel_at_least(6, 10);
    CHECK(dp->probe_refresh_in_place() == in_place);
    CHECK(dp->refresh_in_place() == in_place);
    CHECK_FALSE(has(set_text("map4_snat"), "0.0.0.0"));  // open()'s probe element is gone
    auto m = map4(8200, 80);
    m.lifetime = 100;
    m.description = "web";
    REQUIRE(dp->apply(adds({m})).has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const std::string dnat_key = "203.0.113.1 . tcp . 8200 timeout";
    const std::string snat_key = "192.0.2.10 . tcp . 80 timeout";
    CHECK(expires_ms("map4_dnat", dnat_key) < 129000);
    CHECK(expires_ms("map4_snat", snat_key) < 129000);

    auto refresh = [&](const core::Mapping& next, const core::Mapping& prev) {
      core::ChangeSet cs;
      cs.changes.push_back({core::Change::Op::Replace, next, prev, false});
      auto before = dp->counters();
      auto r = dp->apply(cs);
      REQUIRE(r.has_value());
      auto after = dp->counters();
      return std::array<std::uint64_t, 3>{after.elements_added - before.elements_added,
                                          after.elements_deleted - before.elements_deleted,
                                          after.elements_updated - before.elements_updated};
    };
    // Same lifetime, same comment: both elements restarted.
    auto d = refresh(m, m);
    CHECK(expires_ms("map4_dnat", dnat_key) > 129000);
    CHECK(expires_ms("map4_snat", snat_key) > 129000);
    CHECK(d == (in_place ? std::array<std::uint64_t, 3>{0, 0, 2} : std::array<std::uint64_t, 3>{2, 2, 0}));

    // A new lifetime changes the DNAT comment (l=): that element is replaced, the SNAT one updated.
    auto m2 = m;
    m2.lifetime = 200;
    d = refresh(m2, m);
    CHECK(expires_ms("map4_dnat", dnat_key) > 229000);
    CHECK(expires_ms("map4_snat", snat_key) > 229000);
    CHECK(has(set_text("map4_dnat"), "l=200 d=web"));
    CHECK(d == (in_place ? std::array<std::uint64_t, 3>{1, 1, 1} : std::array<std::uint64_t, 3>{2, 2, 0}));

    // A new description: the comment must change even though the key and data do not.
    auto m3 = m2;
    m3.description = "web2";
    d = refresh(m3, m2);
    CHECK(has(set_text("map4_dnat"), "l=200 d=web2"));
    CHECK(d == (in_place ? std::array<std::uint64_t, 3>{1, 1, 1} : std::array<std::uint64_t, 3>{2, 2, 0}));

    // An element gone behind pcpd's back (nft delete element): the refresh puts it back.
    REQUIRE(sh("nft delete element inet pcpd map4_snat '{ 192.0.2.10 . tcp . 80 }'").rc == 0);
    d = refresh(m3, m3);
    CHECK(expires_ms("map4_snat", snat_key) > 229000);
    CHECK(has(set_text("map4_snat"), ": 203.0.113.1 . 8200"));
    auto rec = dp->recover(now_ms());
    REQUIRE(rec.has_value());
    REQUIRE(rec->size() == 1);
    check_same(rec->front(), m3);
  }
}

TEST_CASE("nft kernel: a refused change leaves nothing of its batch (R-HDR-10), and names the change") {
  load_rules();
  auto dp = NftDatapath::open({});
  REQUIRE(dp->apply(adds({map4(8090)})).has_value());
  // second change collides with the existing 8090 (NLM_F_EXCL), first one is new
  auto r = dp->apply(adds({map4(8091, 91), pin6(6000), map4(8090, 90, "192.0.2.77")}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == EEXIST);
  CHECK(r.error().index == 2);
  auto t = table();
  CHECK_FALSE(has(t, "8091"));
  CHECK_FALSE(has(t, "6000"));
  CHECK_FALSE(has(t, "192.0.2.77"));
  CHECK(has(t, "203.0.113.1 . tcp . 8090"));
  // a Replace whose new state collides fails as a whole too: the old mapping stays
  core::ChangeSet cs;
  auto moved = map4(8090);
  moved.external_port = 8092;
  cs.changes.push_back({core::Change::Op::Replace, moved, map4(8090), false});
  cs.changes.push_back({core::Change::Op::Add, map4(8090, 1, "192.0.2.78"), {}, false});
  cs.changes.push_back({core::Change::Op::Add, map4(8092, 2, "192.0.2.79"), {}, false});
  r = dp->apply(cs);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().index == 2);  // 8092 added twice
  t = table();
  CHECK(has(t, "203.0.113.1 . tcp . 8090"));
  CHECK_FALSE(has(t, "8092"));
  CHECK(dp->counters().batch_failures == 2);
  // Only the last message asks for an ack: a refusal at the start still ends the batch with that
  // ack, not with the 5 s ack timeout, and still names its change.
  const auto started = std::chrono::steady_clock::now();
  r = dp->apply(adds({map4(8090, 90, "192.0.2.80"), map4(8093, 93), map4(8094, 94)}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == EEXIST);
  CHECK(r.error().index == 0);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  t = table();
  CHECK_FALSE(has(t, "8093"));
  CHECK_FALSE(has(t, "8094"));
  CHECK(dp->counters().batch_failures == 3);
}

TEST_CASE("nft kernel: recover() returns exactly what was applied") {
  load_rules();
  auto dp = NftDatapath::open({"pcpd", 30});
  auto a = map4(8080);
  a.filters = {filter("198.51.100.0/24", 0), filter("192.0.2.99/32", 22)};
  a.description = "game \"server\" caf\xc3\xa9";
  a.checkpoint = true;
  auto b = map4(8081, 81, "192.0.2.11");
  b.origin = core::Origin::NatPmp;
  b.nonce = {};
  b.lifetime = 120;
  auto c = pin6(5000);
  c.filters = {filter("2001:db8:ff::/48", 0), filter("2001:db8:fe::1/128", 53)};
  c.third_party = true;
  c.client_addr = ip("2001:db8:1::99");
  auto d = peer4(5555);
  auto e = peer6(5556);
  e.description = std::string(300, 'x');  // longer than a comment holds
  REQUIRE(dp->apply(adds({a, b, c, d, e})).has_value());
  const auto t0 = now_ms();
  auto got = dp->recover(t0);
  REQUIRE(got.has_value());
  REQUIRE(got->size() == 5);
  // comments up to the 251-byte limit are listed by nft as stored
  auto peer6_text = set_text("peer6");
  CHECK(has(peer6_text, "d~=xxxx"));

  a.filters = {filter("192.0.2.99/32", 22), filter("198.51.100.0/24", 0)};          // disjoint_filters order
  c.filters = {filter("2001:db8:fe::1/128", 53), filter("2001:db8:ff::/48", 0)};
  for (const auto& m : *got) {
    const core::Mapping* want = nullptr;
    for (const auto* x : {&a, &b, &c, &d, &e})
      if (x->kind == m.kind && x->internal_port == m.internal_port && x->internal_addr == m.internal_addr) want = x;
    REQUIRE(want != nullptr);
    CAPTURE(want->internal_port);
    if (want == &e) {
      CHECK(m.description.size() < 300);
      CHECK(m.description.size() > 150);
      CHECK(m.description == std::string(m.description.size(), 'x'));
      auto e2 = e;
      e2.description = m.description;
      check_same(m, e2);
    } else {
      check_same(m, *want);
    }
    // expires = now + lifetime (the kernel holds lifetime + grace), within 2 s
    auto want_expires = t0 + core::Millis(std::int64_t{want->lifetime} * 1000);
    CHECK(m.expires <= want_expires);
    CHECK(m.expires >= want_expires - core::Millis(2000));
  }
  // recovering again gives the same, with nothing left over
  auto again = dp->recover(now_ms());
  REQUIRE(again.has_value());
  CHECK(again->size() == 5);
  CHECK(dp->counters().recovery_leftovers == 0);

  // an incomplete mapping (its SNAT element deleted behind pcpd's back) is cleaned up
  REQUIRE(sh("nft delete element inet pcpd map4_snat '{ 192.0.2.11 . tcp . 81 }'").rc == 0);
  auto third = dp->recover(now_ms());
  REQUIRE(third.has_value());
  CHECK(third->size() == 4);
  CHECK(dp->counters().recovery_leftovers == 1);
  CHECK_FALSE(has(set_text("map4_dnat"), "8081"));
}

TEST_CASE("nft kernel: measured comment limit: 251 bytes of text are kept, 252 are refused") {
  load_rules();
  auto dp = NftDatapath::open({});
  auto session = NetlinkSession::open();
  REQUIRE(session.has_value());
  auto& nl = **session;
  for (std::size_t len : {kMaxCommentLength, kMaxCommentLength + 1}) {
    auto m = peer6(static_cast<std::uint16_t>(len));
    auto elems = mapping_elements(m);
    REQUIRE(elems.has_value());
    auto e = (*elems)[0];
    e.comment = "pcp peer n=000000000000000000000000 l=1 d=";
    e.comment.resize(len, 'y');
    // BatchBuilder asserts the limit, so both are sent as raw libnftnl messages
    CAPTURE(len);
    auto errors = send_one_element(nl, e);
    REQUIRE(errors.has_value());
    if (len == kMaxCommentLength) {
      CHECK(errors->empty());
      CHECK(has(set_text("peer6"), "comment \"" + e.comment + "\""));
    } else {
      REQUIRE(errors->size() == 1);
      CHECK((*errors)[0].error == EINVAL);
    }
  }
  auto rec = dp->recover(now_ms());  // the hand-made element has a valid comment: recovered
  REQUIRE(rec.has_value());
  CHECK(rec->size() == 1);
}

TEST_CASE("nft kernel: element timeouts remove mappings and filters; deleting an expired one is fine") {
  load_rules();
  auto dp = NftDatapath::open({"pcpd", 0});
  auto m = map4(8100);
  m.lifetime = 1;
  m.filters = {filter("198.51.100.0/24", 0)};
  auto p = pin6(5100);
  p.lifetime = 1;
  p.filters = {filter("2001:db8:ff::/48", 80)};
  REQUIRE(dp->apply(adds({m, p})).has_value());
  CHECK(has(table(), "8100"));
  CHECK(has(set_text("filt6_allow"), "2001:db8:ff::/48 . 80"));
  bool gone = false;
  for (int i = 0; i < 40 && !gone; ++i) {  // at most 4 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto t = table();
    gone = !has(t, "8100") && !has(t, "5100");
  }
  CHECK(gone);
  auto rec = dp->recover(now_ms());
  REQUIRE(rec.has_value());
  CHECK(rec->empty());
  core::ChangeSet rm;
  rm.changes.push_back({core::Change::Op::Remove, m, {}, false});
  auto r = dp->apply(rm);
  CHECK(r.has_value());
  CHECK(dp->counters().already_expired >= 2);
}

TEST_CASE("nft kernel: wan_ifnames and flush()") {
  load_rules();
  auto dp = NftDatapath::open({});
  REQUIRE(dp->set_external_interfaces({"wan0", "ppp0", "wan0"}).has_value());
  auto s = set_text("wan_ifnames");
  CHECK(has(s, "\"ppp0\""));
  CHECK(has(s, "\"wan0\""));
  REQUIRE(dp->set_external_interfaces({"eth9"}).has_value());
  s = set_text("wan_ifnames");
  CHECK(has(s, "\"eth9\""));
  CHECK_FALSE(has(s, "wan0"));
  CHECK_FALSE(dp->set_external_interfaces({"a-name-longer-than-15"}).has_value());
  auto m = map4(8200);
  m.filters = {filter("198.51.100.0/24", 0)};
  REQUIRE(dp->apply(adds({m, pin6(5200), peer4(5201)})).has_value());
  REQUIRE(dp->flush().has_value());
  auto t = table();
  CHECK_FALSE(has(t, "elements = { 203"));
  CHECK_FALSE(has(t, "5200"));
  CHECK_FALSE(has(t, "5201"));
  CHECK(has(t, "\"eth9\""));  // interfaces are configuration, not mappings
  auto rec = dp->recover(now_ms());
  REQUIRE(rec.has_value());
  CHECK(rec->empty());
}

TEST_CASE("nft kernel: 10,000 mappings in one batch") {
  load_rules();
  auto dp = NftDatapath::open({});
  core::ChangeSet cs;
  for (int i = 0; i < 10000; ++i) {
    auto m = map4(static_cast<std::uint16_t>(10000 + i), static_cast<std::uint16_t>(1000 + i % 50000));
    m.internal_addr = core::IpAddr::from_v4(0xc0000200u + static_cast<std::uint32_t>(i / 200));  // 192.0.2.x
    m.client_addr = m.internal_addr;
    m.description = "bulk";
    cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  }
  auto t0 = Clock::now();
  auto r = dp->apply(cs);
  auto t1 = Clock::now();
  REQUIRE(r.has_value());
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
  MESSAGE("10,000 MAP mappings (20,000 elements) in one batch: " << us / 1000 << " ms, " << us / 20000.0
                                                                  << " us per element");
  // The kernel grows the sets' hash tables in a worker after the batch; a multi-part set dump
  // taken while that runs can miss elements (nft_rhash_walk re-walks and skips what earlier
  // parts returned, and a resize reorders the table). A restart never dumps within milliseconds
  // of a 20,000-element batch; this test did, once the batch's acks (one per message, read one
  // by one) were reduced to one (bench/RESULTS.md). recover() now dumps a second time before it
  // deletes leftovers (nft::reconcile), which made this pass 5 of 5 times without the wait; the
  // wait keeps the count here deterministic.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t2 = Clock::now();
  auto rec = dp->recover(now_ms());
  auto t3 = Clock::now();
  REQUIRE(rec.has_value());
  CHECK(rec->size() == 10000);
  MESSAGE("recover() of 10,000 mappings: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(t3 - t2).count() << " ms");
  // and all of them removed again in one batch
  for (auto& c : cs.changes) c.op = core::Change::Op::Remove;
  auto t4 = Clock::now();
  REQUIRE(dp->apply(cs).has_value());
  MESSAGE("removing them: " << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t4).count()
                            << " ms");
  CHECK(sh("nft list map inet pcpd map4_dnat | grep -c 'tcp .'").out == "0\n");
}

TEST_CASE("nft kernel + conntrack sync: a deleted mapping's connections are dropped, a refresh keeps them") {
  load_rules();
  auto dp = NftDatapath::open({});
  auto sync = kernel_test::ct_sync();
  auto apply = [&](const core::ChangeSet& cs) {
    REQUIRE(dp->apply(cs).has_value());
    sync->submit(cs);  // what the daemon does with every committed change set
  };
  auto m = map4(8300, 80);
  auto p = pin6(5300);
  apply(adds({m, p}));
  // inbound NATed connection 198.51.100.5:40000 -> 203.0.113.1:8300 => 192.0.2.10:80, an unrelated
  // one, and an inbound pinhole connection; pcpd.nft gives a mapping's connections the mapped bit
  // 0x8 (the pinhole's also 0x4)
  auto ins = sh(
      "conntrack -I -p tcp -s 198.51.100.5 -d 203.0.113.1 --sport 40000 --dport 8300 "
      "-r 192.0.2.10 -q 198.51.100.5 --reply-port-src 80 --reply-port-dst 40000 --state ESTABLISHED -t 600 -m 8 && "
      "conntrack -I -p tcp -s 198.51.100.5 -d 203.0.113.1 --sport 40001 --dport 8301 "
      "-r 192.0.2.10 -q 198.51.100.5 --reply-port-src 81 --reply-port-dst 40001 --state ESTABLISHED -t 600 -m 8 && "
      "conntrack -I -p udp -s 2001:db8:ff::1 -d 2001:db8:1::10 --sport 999 --dport 5300 -t 600 -m 12");
  INFO(ins.out);
  REQUIRE(ins.rc == 0);
  REQUIRE(sh("conntrack -L -f ipv4 2>/dev/null | grep -c 'dport=8300'").out == "1\n");

  core::ChangeSet refresh;
  auto m2 = m;
  m2.lifetime = 100;
  refresh.changes.push_back({core::Change::Op::Replace, m2, m, false});
  apply(refresh);
  sync->run_pending();
  CHECK(sh("conntrack -L -f ipv4 2>/dev/null | grep -c 'dport=8300'").out == "1\n");

  core::ChangeSet rm;
  rm.changes.push_back({core::Change::Op::Remove, m2, {}, true});
  rm.changes.push_back({core::Change::Op::Remove, p, {}, true});
  apply(rm);
  // Queued: nothing is dropped before the worker's round (never inside a request).
  CHECK(sync->counters().pending == 2);
  CHECK(sh("conntrack -L -f ipv4 2>/dev/null | grep -c 'dport=8300'").out == "1\n");
  sync->run_pending();
  CHECK(sync->counters().pending == 0);
  CHECK(sh("conntrack -L -f ipv4 2>/dev/null | grep -c 'dport=8300'").out == "0\n");
  CHECK(sh("conntrack -L -f ipv4 2>/dev/null | grep -c 'dport=8301'").out == "1\n");
  CHECK(sh("conntrack -L -f ipv6 2>/dev/null | grep -c 'dport=5300'").out == "0\n");
  CHECK(sync->counters().deleted == 2);
  CHECK(sync->counters().errors == 0);
  CHECK(sync->counters().walks == 1);

  // Deleted and re-created before the round: the same translation, so its connections stay.
  core::ChangeSet add, del;
  add.changes.push_back({core::Change::Op::Add, m2, {}, false});
  del.changes.push_back({core::Change::Op::Remove, m2, {}, true});
  apply(add);
  apply(del);
  CHECK(sync->counters().pending == 1);
  apply(add);
  CHECK(sync->counters().pending == 0);
  apply(del);
  sync->run_pending();
}

int main(int argc, char** argv) {
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "test_nft_kernel: unshare(CLONE_NEWNET): %s (needs root)\n", std::strerror(errno));
    return 1;
  }
  sh("ip link set lo up");
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
