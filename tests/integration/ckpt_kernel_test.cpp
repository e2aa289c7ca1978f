// SPDX-License-Identifier: GPL-2.0-or-later
// test_ckpt_kernel: RFC 7767 checkpointing on the real kernel (docs/design.md "Checkpointing",
// ha-recipe §2.2, §2.4, §2.6). Run by ckpt_kernel_test.sh, which builds lan - rtr - wan namespaces
// (documentation addresses) and passes their names; this process joins the router namespace,
// loads nft-rules/pcpd.nft, installs mappings through NftDatapath and makes real TCP connections
// with the script's python helper. Event checks listen with `conntrack -E` in the router
// namespace, where net.netfilter.nf_conntrack_events is 1.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/ct_sync_kernel.hpp"
#include "integration/shell_command.hpp"
#include "nft/nft_datapath.hpp"
#include "unit/nft_test_mappings.hpp"

using namespace pcpd;
using namespace pcpd::nft;
using namespace pcpd::nft_test;
using namespace std::chrono_literals;

namespace {

struct Env {
  std::string lan, rtr, wan, tool, tmp;
};
Env env;

using integration::Cmd;
using integration::sh;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Processes this test started (by PID), stopped at scope exit.
struct Procs {
  std::vector<int> pids;
  int spawn(const std::string& cmd, const std::string& out = "/dev/null") {
    auto r = sh(cmd + " >" + out + " 2>&1 & echo $!");
    int pid = std::atoi(r.out.c_str());
    REQUIRE(pid > 0);
    pids.push_back(pid);
    return pid;
  }
  ~Procs() {
    for (int p : pids) kill(p, SIGTERM);
  }
};

// The mark of the connection whose original source port is `sport`, from `conntrack -L`.
std::optional<std::uint32_t> mark_of(const std::string& listing, std::uint16_t sport) {
  std::istringstream in(listing);
  const std::string key = " sport=" + std::to_string(sport) + " ";
  for (std::string line; std::getline(in, line);) {
    auto k = line.find(key);
    if (k == std::string::npos || line.find(" sport=") != k) continue;  // must be the orig tuple
    auto m = line.find(" mark=");
    if (m == std::string::npos) return 0;
    return static_cast<std::uint32_t>(std::strtoul(line.c_str() + m + 6, nullptr, 10));
  }
  return std::nullopt;
}

std::string ct_list() { return sh("conntrack -L -f ipv4 2>/dev/null; conntrack -L -f ipv6 2>/dev/null").out; }

// Lines of `text` about the connection with original source port `sport`.
int lines_of(const std::string& text, std::uint16_t sport) {
  std::istringstream in(text);
  const std::string key = " sport=" + std::to_string(sport) + " ";
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    auto k = line.find(key);
    if (k != std::string::npos && line.find(" sport=") == k) ++n;
  }
  return n;
}
int event_lines(const std::string& text) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (has(line, "[NEW]") || has(line, "[UPDATE]") || has(line, "[DESTROY]")) ++n;
  return n;
}

// `conntrack -E` in the router namespace, from start() to stop().
class EventLog {
 public:
  EventLog(Procs& procs, const std::string& name, const std::string& args = "") {
    path_ = env.tmp + "/" + name + ".events";
    pid_ = procs.spawn("exec stdbuf -oL conntrack -E " + args, path_);
    std::this_thread::sleep_for(400ms);  // subscribed before anything happens
  }
  std::string stop() {
    std::this_thread::sleep_for(400ms);  // events still in flight
    kill(pid_, SIGTERM);
    for (int i = 0; i < 50 && !has(read_file(path_), "flow events"); ++i) std::this_thread::sleep_for(20ms);
    return read_file(path_);
  }

 private:
  std::string path_;
  int pid_ = 0;
};

// One idle TCP session from `ns`, ready when its first echo came back.
struct Session {
  std::uint16_t sport;
  int pid;
  std::string file;
};

bool wait_for(const std::string& file, const std::string& text, std::chrono::milliseconds limit = 4000ms) {
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < limit;
       std::this_thread::sleep_for(20ms))
    if (has(read_file(file), text)) return true;
  return false;
}

Session connect(Procs& procs, const std::string& ns, const std::string& dst, std::uint16_t port,
                const std::string& src, std::uint16_t sport) {
  Session s{sport, 0, env.tmp + "/client-" + std::to_string(sport)};
  std::remove(s.file.c_str());
  s.pid = procs.spawn("exec ip netns exec " + ns + " python3 " + env.tool + " client " + dst + " " +
                      std::to_string(port) + " " + src + " " + std::to_string(sport) + " " + s.file + " 60");
  return s;
}

bool ready(const Session& s) {
  bool ok = wait_for(s.file, "ready");
  if (!ok) MESSAGE("session " << s.sport << ": " << read_file(s.file));
  return ok;
}

// One more echo on the session (a packet in each direction).
bool poke(const Session& s, int n) {
  kill(s.pid, SIGUSR1);
  return wait_for(s.file, "poked " + std::to_string(n) + " ok");
}

// Returns once the server listens: a client connecting earlier is refused (seen on a loaded
// machine, where python's start-up took longer than the tests' pause before connecting).
void server(Procs& procs, const std::string& ns, std::uint16_t port) {
  procs.spawn("exec ip netns exec " + ns + " python3 " + env.tool + " server " + std::to_string(port) + " 60");
  const std::string probe = "ip netns exec " + ns + " ss -Hltn 'sport = :" + std::to_string(port) + "' | grep -q .";
  for (int i = 0; i < 250 && std::system(probe.c_str()) != 0; ++i) std::this_thread::sleep_for(20ms);
}

// What the daemon does with a change set: the kernel commits it, then the conntrack worker gets
// it; here its round runs at once.
bool applied(NftDatapath& dp, ct::ConntrackSync& sync, const core::ChangeSet& cs) {
  if (!dp.apply(cs)) return false;
  sync.submit(cs);
  sync.run_pending();
  return sync.counters().errors == 0;
}

// Fresh state: pcpd.nft, the operator's forward chain (policy drop + the two documented lines),
// no conntrack entries.
std::unique_ptr<NftDatapath> reset() {
  REQUIRE(sh("nft flush ruleset").rc == 0);
  auto r = sh(std::string("nft -f ") + PCPD_SOURCE_DIR + "/nft-rules/pcpd.nft");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const std::string op = env.tmp + "/operator.nft";
  std::ofstream(op) << "table inet operator {\n"
                       "  chain forward {\n"
                       "    type filter hook forward priority filter; policy drop;\n"
                       "    ct state established,related accept\n"
                       "    ct status dnat accept\n"
                       "    ct mark & 0x4 == 0x4 accept\n"
                       "    iifname \"lan0\" accept\n"
                       "  }\n"
                       "}\n";
  r = sh("nft -f " + op);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  sh("conntrack -F 2>/dev/null; conntrack -F -f ipv6 2>/dev/null");
  auto dp = NftDatapath::open({});
  REQUIRE(dp->set_external_interfaces({"wan0"}).has_value());
  return dp;
}

core::ChangeSet adds(std::initializer_list<core::Mapping> ms) {
  core::ChangeSet cs;
  for (const auto& m : ms) cs.changes.push_back({core::Change::Op::Add, m, {}, false});
  return cs;
}

core::Mapping elected(core::Mapping m) {
  m.checkpoint = true;
  return m;
}
core::Mapping tcp_pin6(std::uint16_t port) {
  auto m = pin6(port);
  m.protocol = 6;
  return m;
}
core::Mapping peer4_to_wan(std::uint16_t port) {  // 192.0.2.10:port -> 203.0.113.100:9000 as 203.0.113.1:port
  auto m = peer4(port);
  m.remote_addr = ip("203.0.113.100");
  m.remote_port = 9000;
  m.external_port = port;
  return m;
}
core::Mapping peer6_to_wan(std::uint16_t port) {
  auto m = peer6(port);
  m.remote_addr = ip("2001:db8:ff::100");
  m.remote_port = 9000;
  return m;
}

}  // namespace

TEST_CASE("ckpt kernel: nf_conntrack_events is 1 in the router namespace") {
  auto v = sh("sysctl -n net.netfilter.nf_conntrack_events");
  MESSAGE("net.netfilter.nf_conntrack_events = " << v.out);
  CHECK(v.out == "1\n");
}

TEST_CASE("ckpt kernel: new connections of elected mappings get mark 0xb and events; unelected ones none (A4b)") {
  auto dp = reset();
  Procs procs;
  // LAN servers (MAP / pinhole targets), WAN server (PEER and outbound targets)
  for (std::uint16_t p : {8001, 8002, 8601, 8602}) server(procs, env.lan, p);
  server(procs, env.wan, 9000);
  REQUIRE(dp->apply(adds({elected(map4(8001, 8001)), map4(8002, 8002), elected(map4(8003, 8003)),
                          elected(peer4_to_wan(40002)), peer4_to_wan(40102), elected(tcp_pin6(8601)),
                          tcp_pin6(8602), elected(tcp_pin6(8603)), elected(peer6_to_wan(40601)),
                          peer6_to_wan(40602)}))
              .has_value());
  std::this_thread::sleep_for(300ms);  // servers listening
  EventLog events(procs, "a4b");
  struct Flow {
    const char* what;
    Session s;
    bool elected;
    std::uint32_t mark;
  };
  // marks: elected|sticky|mapped 0xb (0x8: pcpd.nft's mapped bit on everything a mapping translates,
  // pinholes or elects), pinhole pass bit 0x4; an unelected PEER has none (found by exact lookup)
  std::vector<Flow> flows = {
      {"MAP v4 inbound, elected", connect(procs, env.wan, "203.0.113.1", 8001, "203.0.113.100", 41001), true, 11},
      {"MAP v4 inbound, not elected", connect(procs, env.wan, "203.0.113.1", 8002, "203.0.113.100", 41002), false, 8},
      {"MAP v4 outbound from the internal endpoint, elected",
       connect(procs, env.lan, "203.0.113.100", 9000, "192.0.2.10", 8003), true, 11},
      {"PEER v4, elected", connect(procs, env.lan, "203.0.113.100", 9000, "192.0.2.10", 40002), true, 11},
      {"PEER v4, not elected", connect(procs, env.lan, "203.0.113.100", 9000, "192.0.2.10", 40102), false, 0},
      {"pinhole inbound, elected", connect(procs, env.wan, "2001:db8:1::10", 8601, "2001:db8:ff::100", 41601), true, 15},
      {"pinhole inbound, not elected", connect(procs, env.wan, "2001:db8:1::10", 8602, "2001:db8:ff::100", 41602),
       false, 12},
      {"pinhole outbound from the endpoint, elected",
       connect(procs, env.lan, "2001:db8:ff::100", 9000, "2001:db8:1::10", 8603), true, 11},
      {"PEER v6, elected", connect(procs, env.lan, "2001:db8:ff::100", 9000, "2001:db8:1::10", 40601), true, 11},
      {"PEER v6, not elected", connect(procs, env.lan, "2001:db8:ff::100", 9000, "2001:db8:1::10", 40602), false, 0},
  };
  for (const auto& f : flows) {
    CAPTURE(f.what);
    CHECK(ready(f.s));
  }
  const auto text = events.stop();
  const auto listing = ct_list();
  std::ostringstream table;
  bool ok = true;
  for (const auto& f : flows) {
    const int n = lines_of(text, f.s.sport);
    const auto mark = mark_of(listing, f.s.sport);
    table << "  " << f.what << " (sport " << f.s.sport << "): conntrack -E lines " << n << ", mark "
          << (mark ? std::to_string(*mark) : "-") << "\n";
    CAPTURE(f.what);
    CHECK(mark == f.mark);
    if (f.elected)
      CHECK(n >= 3);  // NEW, SYN_RECV, ESTABLISHED (at least)
    else
      CHECK(n == 0);
    ok = ok && mark == f.mark && (f.elected ? n >= 3 : n == 0);
  }
  MESSAGE("A4b, per flow:\n" << table.str());
  if (!ok) MESSAGE("conntrack -L:\n" << listing << "conntrack -E:\n" << text);
}

TEST_CASE("ckpt kernel: late election marks established connections at once; un-election keeps sticky") {
  auto dp = reset();
  auto sync = kernel_test::ct_sync();
  Procs procs;
  for (std::uint16_t p : {8011, 8012, 8013}) server(procs, env.lan, p);
  auto m = map4(8011, 8011);
  auto other = map4(8012, 8012);
  auto by_set = map4(8013, 8013);
  REQUIRE(applied(*dp, *sync, adds({m, other, by_set})));
  std::this_thread::sleep_for(300ms);
  auto s = connect(procs, env.wan, "203.0.113.1", 8011, "203.0.113.100", 42011);
  auto t = connect(procs, env.wan, "203.0.113.1", 8012, "203.0.113.100", 42012);
  auto u = connect(procs, env.wan, "203.0.113.1", 8013, "203.0.113.100", 42013);
  REQUIRE(ready(s));
  REQUIRE(ready(t));
  REQUIRE(ready(u));
  std::this_thread::sleep_for(500ms);  // idle from here on: no packet until a poke
  auto listing = ct_list();
  CHECK(mark_of(listing, 42011) == 8u);  // mapped bit
  CHECK(mark_of(listing, 42012) == 8u);  // mapped bit from pcpd.nft's DNAT rule

  // election by Replace false -> true: keys in the sets, and the idle connection is marked now
  EventLog events(procs, "late");
  auto m_on = elected(m);
  core::ChangeSet cs;
  cs.changes.push_back({core::Change::Op::Replace, m_on, m, false});
  REQUIRE(applied(*dp, *sync, cs));
  listing = ct_list();
  MESSAGE("after election, before any packet: mark of 42011 = " << mark_of(listing, 42011).value_or(9999)
                                                                << ", of 42012 = "
                                                                << mark_of(listing, 42012).value_or(9999));
  CHECK(mark_of(listing, 42011) == 11u);
  CHECK(mark_of(listing, 42012) == 8u);
  CHECK(sync->counters().elected == 1);
  CHECK(has(sh("nft list set inet pcpd elect4_dst").out, "203.0.113.1 . tcp . 8011"));
  CHECK(has(sh("nft list set inet pcpd elect4_src").out, "192.0.2.10 . tcp . 8011"));
  sync->request_count();
  sync->run_pending();
  CHECK(sync->counters().marked == 1);
  auto text = events.stop();
  MESSAGE("conntrack -E lines at election: 42011 " << lines_of(text, 42011) << ", 42012 " << lines_of(text, 42012));
  {
    INFO(text);
    CHECK(lines_of(text, 42011) == 1);
    CHECK(has(text, "ESTABLISHED"));  // the update carries the full TCP state (pitfall P6)
    CHECK(lines_of(text, 42012) == 0);
  }

  // the set path alone (no ctnetlink): a key added behind pcpd's back elects on the next packet
  REQUIRE(sh("nft add element inet pcpd elect4_dst '{ 203.0.113.1 . tcp . 8013 timeout 1h }'").rc == 0);
  CHECK(mark_of(ct_list(), 42013) == 8u);
  REQUIRE(poke(u, 1));
  CHECK(mark_of(ct_list(), 42013) == 11u);
  REQUIRE(sh("nft delete element inet pcpd elect4_dst '{ 203.0.113.1 . tcp . 8013 }'").rc == 0);

  // un-election: keys deleted first, then only the elected bit is cleared (pitfall P4)
  cs.changes = {{core::Change::Op::Replace, m, m_on, false}};
  REQUIRE(applied(*dp, *sync, cs));
  listing = ct_list();
  MESSAGE("after un-election: mark of 42011 = " << mark_of(listing, 42011).value_or(9999));
  CHECK(mark_of(listing, 42011) == 10u);
  CHECK(sync->counters().unelected == 1);
  CHECK_FALSE(has(sh("nft list set inet pcpd elect4_dst").out, "8011"));
  CHECK_FALSE(has(sh("nft list set inet pcpd elect4_src").out, "8011"));
  // a later packet does not re-elect it (the keys are gone), the sticky bit stays
  REQUIRE(poke(s, 1));
  CHECK(mark_of(ct_list(), 42011) == 10u);
  sync->request_count();
  sync->run_pending();
  CHECK(sync->counters().marked == 1);  // 42013 (elected by the set), not 42011 (sticky only)

  // removal of a mapping (flush_conntrack) deletes its entries in the worker's next round, marks
  // are not rewritten
  cs.changes = {{core::Change::Op::Remove, m, {}, true}};
  REQUIRE(dp->apply(cs).has_value());
  sync->submit(cs);
  CHECK(sync->counters().pending == 1);
  sync->run_pending();
  CHECK(sync->counters().pending == 0);
  CHECK_FALSE(mark_of(ct_list(), 42011).has_value());
  CHECK(sync->counters().unelected == 1);
  CHECK(sync->counters().deleted == 1);
  CHECK(sync->counters().errors == 0);
}

TEST_CASE("ckpt kernel: connections pcpd.nft announces (NFLOG) are found by exact lookups, without a walk") {
  auto dp = reset();
  auto sync = kernel_test::ct_sync(ct::SyncSpec{.log_group = 5351});
  Procs procs;
  server(procs, env.lan, 8041);
  server(procs, env.lan, 8642);
  auto m = map4(8041, 8041);
  auto p = tcp_pin6(8642);
  REQUIRE(applied(*dp, *sync, adds({m, p})));
  // The first round binds the group and walks once: from then on the index is complete.
  sync->request_count();
  sync->run_pending();
  REQUIRE(sync->counters().walks == 1);
  REQUIRE(sync->counters().index_complete);
  std::this_thread::sleep_for(300ms);
  auto s4 = connect(procs, env.wan, "203.0.113.1", 8041, "203.0.113.100", 44041);
  auto s6 = connect(procs, env.wan, "2001:db8:1::10", 8642, "2001:db8:ff::100", 44642);
  REQUIRE(ready(s4));
  REQUIRE(ready(s6));
  std::this_thread::sleep_for(300ms);  // idle from here on
  // election: both connections are looked up by their tuples, announced on their first packet
  core::ChangeSet cs;
  cs.changes = {{core::Change::Op::Replace, elected(m), m, false}, {core::Change::Op::Replace, elected(p), p, false}};
  REQUIRE(applied(*dp, *sync, cs));
  auto listing = ct_list();
  INFO(listing);
  CHECK(mark_of(listing, 44041) == 11u);
  CHECK(mark_of(listing, 44642) == 15u);
  auto c = sync->counters();
  MESSAGE("after the election: learned " << c.learned << ", known " << c.known << ", lookups " << c.lookups
                                         << ", walks " << c.walks);
  CHECK(c.learned >= 2);
  CHECK(c.walks == 1);
  CHECK(c.elected == 2);
  // delete: the same lookups, the connections go
  cs.changes = {{core::Change::Op::Remove, elected(m), {}, true}, {core::Change::Op::Remove, elected(p), {}, true}};
  REQUIRE(applied(*dp, *sync, cs));
  listing = ct_list();
  CHECK_FALSE(mark_of(listing, 44041).has_value());
  CHECK_FALSE(mark_of(listing, 44642).has_value());
  c = sync->counters();
  CHECK(c.walks == 1);
  CHECK(c.deleted == 2);
  CHECK(c.learn_lost == 0);
  CHECK(c.errors == 0);
}

TEST_CASE("ckpt kernel: PEER and pinhole late election and un-election through conntrack") {
  auto dp = reset();
  auto sync = kernel_test::ct_sync();
  Procs procs;
  server(procs, env.wan, 9000);
  server(procs, env.lan, 8621);
  auto q = peer4_to_wan(40021);
  auto p = tcp_pin6(8621);
  REQUIRE(applied(*dp, *sync, adds({q, p})));
  std::this_thread::sleep_for(300ms);
  auto a = connect(procs, env.lan, "203.0.113.100", 9000, "192.0.2.10", 40021);
  auto b = connect(procs, env.wan, "2001:db8:1::10", 8621, "2001:db8:ff::100", 42621);
  REQUIRE(ready(a));
  REQUIRE(ready(b));
  std::this_thread::sleep_for(300ms);
  core::ChangeSet cs;
  cs.changes.push_back({core::Change::Op::Replace, elected(q), q, false});
  cs.changes.push_back({core::Change::Op::Replace, elected(p), p, false});
  REQUIRE(applied(*dp, *sync, cs));
  auto listing = ct_list();
  INFO(listing);
  CHECK(mark_of(listing, 40021) == 11u);  // found by an exact lookup (PEER), no walk
  CHECK(mark_of(listing, 42621) == 15u);  // pinhole pass bit kept
  CHECK(sync->counters().elected == 2);
  cs.changes = {{core::Change::Op::Replace, q, elected(q), false}, {core::Change::Op::Replace, p, elected(p), false}};
  REQUIRE(applied(*dp, *sync, cs));
  listing = ct_list();
  CHECK(mark_of(listing, 40021) == 10u);
  CHECK(mark_of(listing, 42621) == 14u);
  REQUIRE(poke(a, 1));
  REQUIRE(poke(b, 1));
  listing = ct_list();
  CHECK(mark_of(listing, 40021) == 10u);
  CHECK(mark_of(listing, 42621) == 14u);
}

TEST_CASE("ckpt kernel: ct_touch() sends exactly one update per marked entry and none for the others") {
  auto dp = reset();
  auto sync = kernel_test::ct_sync();
  Procs procs;
  for (std::uint16_t p : {8031, 8032, 8033, 8634}) server(procs, env.lan, p);
  auto sticky = map4(8033, 8033);
  REQUIRE(applied(*dp, *sync, adds({elected(map4(8031, 8031)), map4(8032, 8032), elected(sticky), tcp_pin6(8634)})));
  std::this_thread::sleep_for(300ms);
  std::vector<Session> marked = {connect(procs, env.wan, "203.0.113.1", 8031, "203.0.113.100", 43001),
                                 connect(procs, env.wan, "203.0.113.1", 8031, "203.0.113.100", 43002),
                                 connect(procs, env.wan, "203.0.113.1", 8033, "203.0.113.100", 43003)};
  std::vector<Session> unmarked = {connect(procs, env.wan, "203.0.113.1", 8032, "203.0.113.100", 43101),
                                   connect(procs, env.wan, "203.0.113.1", 8032, "203.0.113.100", 43102),
                                   connect(procs, env.wan, "2001:db8:1::10", 8634, "2001:db8:ff::100", 43103)};
  for (const auto& s : marked) REQUIRE(ready(s));
  for (const auto& s : unmarked) REQUIRE(ready(s));
  // 43003 becomes sticky-only (mark 2): still touched
  core::ChangeSet cs;
  cs.changes.push_back({core::Change::Op::Replace, sticky, elected(sticky), false});
  REQUIRE(applied(*dp, *sync, cs));
  std::this_thread::sleep_for(500ms);  // all idle now
  auto listing = ct_list();
  {
    INFO(listing);
    CHECK(mark_of(listing, 43001) == 11u);
    CHECK(mark_of(listing, 43003) == 10u);
    CHECK(mark_of(listing, 43101) == 8u);
    CHECK(mark_of(listing, 43103) == 12u);  // pinhole pass and mapped bits: not checkpoint bits
  }

  EventLog events(procs, "touch", "-e UPDATE");
  sync->request_touch();
  sync->run_pending();
  const auto touched = sync->counters().touched;
  const auto text = events.stop();
  MESSAGE("ct-touch: " << touched << " updates sent; conntrack -E -e UPDATE lines: " << event_lines(text) << "\n"
                       << text);
  CHECK(touched == 3);
  CHECK(event_lines(text) == 3);
  for (const auto& s : marked) {
    CAPTURE(s.sport);
    CHECK(lines_of(text, s.sport) == 1);
  }
  for (const auto& s : unmarked) {
    CAPTURE(s.sport);
    CHECK(lines_of(text, s.sport) == 0);
  }
  // the marks are unchanged
  listing = ct_list();
  CHECK(mark_of(listing, 43001) == 11u);
  CHECK(mark_of(listing, 43003) == 10u);
  CHECK(sync->counters().touches == 1);
  CHECK(sync->counters().marked == 2);
  // for comparison: the conntrack CLI skips updates that would not change the mark (A9a)
  auto cli = sh("conntrack -U -p tcp --orig-port-src 43001 --mark 3 2>&1");
  MESSAGE("conntrack -U --mark 3 on the mark-3 entry: " << cli.out);
}

int main(int argc, char** argv) {
  const char* names[] = {"CKPT_LAN", "CKPT_RTR", "CKPT_WAN", "CKPT_TOOL", "CKPT_TMP"};
  std::string* fields[] = {&env.lan, &env.rtr, &env.wan, &env.tool, &env.tmp};
  for (int i = 0; i < 5; ++i) {
    const char* v = std::getenv(names[i]);
    if (v == nullptr || *v == '\0') {
      std::fprintf(stderr, "test_ckpt_kernel: %s not set (run through ckpt_kernel_test.sh)\n", names[i]);
      return 1;
    }
    *fields[i] = v;
  }
  const std::string path = "/run/netns/" + env.rtr;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "test_ckpt_kernel: join %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  close(fd);
  // conntrack must be loaded for the sysctl to exist; pcpd.nft's ct expressions load it
  if (sh(std::string("nft -f ") + PCPD_SOURCE_DIR + "/nft-rules/pcpd.nft").rc != 0 ||
      sh("sysctl -qw net.netfilter.nf_conntrack_events=1").rc != 0) {
    std::fprintf(stderr, "test_ckpt_kernel: cannot load pcpd.nft or set nf_conntrack_events\n");
    return 1;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
