// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd-nft-cost: the kernel's share of a MAP request at 100 and at 1,000,000 mappings (the target:
// "<= 10 % slower at 1,000,000"). pcpd itself is left out: this program sends the nftables
// batches pcpd would send for a burst of requests (nft::BatchBuilder::for_changes over the same
// core::Change values, grouped per set, refresh in place) and measures the CPU time of its own
// thread, which includes the kernel's processing of each batch (nfnetlink runs it in the sending
// thread). Two copies of pcpd's table in one network namespace, `inet <small>` and
// `inet <large>` (bench/nft_cost.sh loads nft-rules/pcpd.nft under both names), are filled with
// --small and --large MAP mappings; then rounds alternate between them (the order swapped every
// round, so both see the same machine load):
//   refresh  Replace of an unchanged mapping (two element timers restarted: map4_dnat and
//            map4_snat), round-robin over --span mappings, as bench/flat.sh's refresh does
//   create   Add of a new mapping (two elements), --batch new mappings a cycle
//   delete   Remove of those again
// --family 6 uses IPv6 pinholes instead (one element a mapping, pin6, where a NAT44 MAP has two).
// --burst changes per batch (pcpd's recvmmsg takes up to 64 datagrams). Prints one JSON line per
// round and operation, then the median per-mapping cost at each level and its difference.
//   pcpd-nft-cost --small-table T --large-table T [--small 100] [--large 1000000] [--span 62500]
//                 [--burst 64] [--batch 1000] [--rounds 7] [--per-round 200000] [--family 4]
// Needs CAP_NET_ADMIN in a namespace that holds both tables (see nft_cost.sh).
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/datapath.hpp"
#include "core/mapping.hpp"
#include "nft/batch_builder.hpp"
#include "nft/netlink_session.hpp"
#include "nft/nft_datapath.hpp"

namespace {

using namespace pcpd;

// CPU time of this thread (user + system: the kernel's batch processing included), ns.
std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool g_ipv6 = false;  // --family 6

// Mapping i of a level, laid out like bench/flat.sh's fill: 62,500 TCP mappings per internal
// address 192.0.2.10.., internal ports 1024.., external 203.0.113.1.. (60,000 ports each). With
// --family 6 an IPv6 pinhole of 2001:db8:1::10.. instead (one element, pin6, where NAT44 has two).
core::Mapping mapping(std::size_t i, std::uint16_t base_port = 1024) {
  core::Mapping m;
  m.kind = core::MappingKind::Map;
  m.protocol = 6;
  m.internal_addr = wire::IpAddr::from_v4(0xC0000200u + 10 + static_cast<std::uint32_t>(i / 62'500));
  m.internal_port = static_cast<std::uint16_t>(base_port + i % 62'500);
  m.external_addr = wire::IpAddr::from_v4(0xCB007100u + 1 + static_cast<std::uint32_t>(i / 60'000));
  m.external_port = static_cast<std::uint16_t>(1024 + i % 60'000);
  if (g_ipv6) {
    m.internal_addr = *wire::IpAddr::parse("2001:db8:1::");
    const auto host = static_cast<std::uint16_t>(0x10 + i / 62'500);
    m.internal_addr.bytes[14] = static_cast<std::uint8_t>(host >> 8);
    m.internal_addr.bytes[15] = static_cast<std::uint8_t>(host & 0xff);
    m.external_addr = m.internal_addr;
    m.external_port = m.internal_port;
  }
  m.client_addr = m.internal_addr;
  for (std::size_t b = 0; b < m.nonce.size(); ++b) m.nonce[b] = static_cast<std::uint8_t>((i >> (8 * (b % 8))) + b);
  m.lifetime = 3600;
  return m;
}

struct Level {
  std::string table;
  std::size_t count = 0;
  std::size_t span = 0;
  std::size_t next_refresh = 0;
};

class Runner {
 public:
  explicit Runner(std::unique_ptr<nft::NetlinkSession> nl) : nl_(std::move(nl)) {}

  // One transaction of `changes` the way NftDatapath::apply sends a burst; exits on a refusal.
  void send(const Level& l, const core::ChangeSet& changes) {
    auto batch = nft::BatchBuilder::for_changes(changes, l.table, 30, nl_->next_seq(), {}, nft::Grouping::PerSet, true);
    if (!batch) die("batch", batch.error().code);
    auto errors = nl_->send_batch(*batch);
    if (!errors) die("send", errors.error().code);
    if (!errors->empty()) die("refused", errors->front().error);
  }

  void fill(const Level& l) {
    core::ChangeSet cs;
    for (std::size_t i = 0; i < l.count; ++i) {
      cs.changes.push_back(change(core::Change::Op::Add, mapping(i)));
      if (cs.changes.size() == 1000 || i + 1 == l.count) {
        send(l, cs);
        cs.changes.clear();
      }
    }
  }

  // ns of CPU per mapping for `n` refreshes in bursts of `burst`.
  double refresh(Level& l, std::size_t n, std::size_t burst) {
    core::ChangeSet cs;
    const std::int64_t t0 = thread_cpu_ns();
    for (std::size_t done = 0; done < n;) {
      cs.changes.clear();
      for (std::size_t k = 0; k < burst && done < n; ++k, ++done) {
        const core::Mapping m = mapping(l.next_refresh);
        l.next_refresh = (l.next_refresh + 1) % l.span;
        cs.changes.push_back(change(core::Change::Op::Replace, m, m));
      }
      send(l, cs);
    }
    return static_cast<double>(thread_cpu_ns() - t0) / static_cast<double>(n);
  }

  // ns of CPU per mapping for creates and for deletes: cycles of `batch` new mappings (internal
  // ports 40000.. of a client address the fill does not use), each created then deleted.
  std::pair<double, double> cycle(const Level& l, std::size_t n, std::size_t burst, std::size_t batch) {
    std::int64_t create_ns = 0, delete_ns = 0;
    std::size_t done = 0;
    core::ChangeSet cs;
    while (done < n) {
      const std::size_t count = std::min(batch, n - done);
      for (const auto op : {core::Change::Op::Add, core::Change::Op::Remove}) {
        const std::int64_t t0 = thread_cpu_ns();
        for (std::size_t i = 0; i < count;) {
          cs.changes.clear();
          for (std::size_t k = 0; k < burst && i < count; ++k, ++i) {
            core::Mapping m = mapping(i, 40'000);
            if (g_ipv6) {
              m.internal_addr = m.external_addr = *wire::IpAddr::parse("2001:db8:1::9");
            } else {
              m.internal_addr = wire::IpAddr::from_v4(0xC0000209u);  // 192.0.2.9
              m.external_addr = wire::IpAddr::from_v4(0xCB0071C8u);  // 203.0.113.200
              m.external_port = static_cast<std::uint16_t>(40'000 + i);
            }
            cs.changes.push_back(change(op, m));
          }
          send(l, cs);
        }
        (op == core::Change::Op::Add ? create_ns : delete_ns) += thread_cpu_ns() - t0;
      }
      done += count;
    }
    return {static_cast<double>(create_ns) / static_cast<double>(n), static_cast<double>(delete_ns) / static_cast<double>(n)};
  }

 private:
  static core::Change change(core::Change::Op op, const core::Mapping& m, const core::Mapping& previous = {}) {
    core::Change c;
    c.op = op;
    c.mapping = m;
    c.previous = previous;
    return c;
  }
  [[noreturn]] static void die(const char* what, int code) {
    std::fprintf(stderr, "pcpd-nft-cost: %s: %s\n", what, std::strerror(code));
    std::exit(1);
  }
  std::unique_ptr<nft::NetlinkSession> nl_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcpd-nft-cost: nftables CPU per MAP refresh/create/delete at two table sizes"};
  Level small, large;
  small.count = 100;
  large.count = 1'000'000;
  std::size_t span = 62'500, burst = 64, batch = 1000, rounds = 7, per_round = 200'000;
  app.add_option("--small-table", small.table)->required();
  app.add_option("--large-table", large.table)->required();
  app.add_option("--small", small.count);
  app.add_option("--large", large.count);
  app.add_option("--span", span, "mappings a refresh round-robin covers at the large level");
  app.add_option("--burst", burst);
  app.add_option("--batch", batch, "new mappings per create/delete cycle");
  app.add_option("--rounds", rounds);
  app.add_option("--per-round", per_round, "requests per operation, level and round");
  int family = 4;
  app.add_option("--family", family, "4: NAT44 MAP (map4_dnat + map4_snat), 6: IPv6 pinhole (pin6)")
      ->check(CLI::IsMember({4, 6}));
  CLI11_PARSE(app, argc, argv);
  if (small.count == 0 || large.count <= small.count || burst == 0 || batch == 0 || batch > 20'000) {
    std::fprintf(stderr, "pcpd-nft-cost: need 0 < --small < --large, --burst > 0, 0 < --batch <= 20000\n");
    return 2;
  }
  g_ipv6 = family == 6;
  small.span = small.count;
  large.span = std::min(span, large.count);

  // The 60 s gc-interval pcpd gives its timeout sets at start (the kernel's 1 s walk of a million
  // elements would take CPU from this measurement's other core).
  for (const Level* l : {&small, &large}) {
    nft::TableSpec spec;
    spec.table = l->table;
    if (auto g = nft::NftDatapath::open(spec)->tune_gc_interval(); !g) {
      std::fprintf(stderr, "pcpd-nft-cost: gc-interval of %s: %s\n", l->table.c_str(), std::strerror(g.error().code));
      return 1;
    }
  }
  auto nl = nft::NetlinkSession::open();
  if (!nl) {
    std::fprintf(stderr, "pcpd-nft-cost: netlink: %s\n", std::strerror(nl.error().code));
    return 1;
  }
  Runner run(std::move(*nl));
  const std::int64_t f0 = thread_cpu_ns();
  run.fill(small);
  run.fill(large);
  std::fprintf(stderr, "pcpd-nft-cost: filled %zu + %zu mappings in %.1f s of CPU\n", small.count, large.count,
               static_cast<double>(thread_cpu_ns() - f0) / 1e9);

  std::vector<double> rs, rl, cs, cl, ds, dl;
  for (std::size_t r = 1; r <= rounds; ++r) {
    Level* order[2] = {&small, &large};
    if (r % 2 == 0) std::swap(order[0], order[1]);
    for (Level* l : order) {
      const double refresh = run.refresh(*l, per_round, burst);
      const auto [create, del] = run.cycle(*l, per_round, burst, batch);
      const bool is_small = l == &small;
      (is_small ? rs : rl).push_back(refresh);
      (is_small ? cs : cl).push_back(create);
      (is_small ? ds : dl).push_back(del);
      std::printf("{\"op\":\"nft_cost\",\"round\":%zu,\"level\":\"%s\",\"mappings\":%zu,\"family\":%d,"
                  "\"burst\":%zu,\"refresh_ns\":%.0f,\"create_ns\":%.0f,\"delete_ns\":%.0f}\n",
                  r, is_small ? "small" : "large", l->count, family, burst, refresh, create, del);
      std::fflush(stdout);
    }
  }
  auto line = [family](const char* op, const std::vector<double>& s, const std::vector<double>& l) {
    std::printf("{\"op\":\"nft_cost_median\",\"family\":%d,\"what\":\"%s\",\"small_ns\":%.0f,\"large_ns\":%.0f,"
                "\"extra_ns\":%.0f}\n",
                family, op, median(s), median(l), median(l) - median(s));
  };
  line("refresh", rs, rl);
  line("create", cs, cl);
  line("delete", ds, dl);
  return 0;
}
