// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd-mem-mappings: memory (VmRSS growth) and time per mapping of core::Server's mapping table
// (the target: <= 200 B of daemon memory per mapping). Builds a Server over an in-process Datapath
// that accepts every ChangeSet, creates N MAP mappings through Server::handle() (the same path
// as a decoded request), and prints RSS growth per mapping and time per create. Then refreshes
// every mapping once and expires them all, timing those too.
//   pcpd-mem-mappings [N ...]      (default: 100000 1000000; each N in a fresh Server)
// Clients: 192.0.2.1-250, 198.51.100.1-250, 203.0.113.1-250 as internal addresses with
// max_mappings_per_client raised to fit; external pool 203.0.113.1-40 (all ports 1024-65535).
#include <malloc.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/datapath.hpp"
#include "core/server.hpp"
#include "wire/messages.hpp"

namespace {

using namespace pcpd;

class AcceptAll final : public core::Datapath {
 public:
  [[nodiscard]] Result<void> apply(const core::ChangeSet&) override { return {}; }
};

class ManualClock final : public core::Clock {
 public:
  [[nodiscard]] core::Millis now() const override { return now_; }
  void set(core::Millis t) { now_ = t; }

 private:
  core::Millis now_{1'000'000};
};

long rss_bytes() {
  malloc_trim(0);
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10) * 1024;
  return -1;
}

wire::IpAddr client_addr(std::size_t i) {
  static constexpr std::uint32_t kNets[] = {0xC0000200u, 0xC6336400u, 0xCB007100u};
  return wire::IpAddr::from_v4(kNets[(i / 250) % 3] + 1 + static_cast<std::uint32_t>(i % 250));
}

constexpr std::size_t kClients = 750;

wire::Request map_request(std::size_t i, std::uint32_t lifetime) {
  wire::Request r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = lifetime;
  r.client_addr = client_addr(i % kClients);
  wire::MapBody b;
  for (std::size_t k = 0; k < b.nonce.size(); ++k) b.nonce[k] = static_cast<std::uint8_t>(i + k);
  b.protocol = (i / kClients) % 2 == 0 ? 6 : 17;
  b.internal_port = static_cast<std::uint16_t>(1024 + (i / kClients / 2));
  b.external_addr = wire::IpAddr::v4_any();
  r.body = b;
  return r;
}

double secs(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int run(std::size_t n) {
  core::Policy p;
  for (std::uint32_t a = 1; a <= 40; ++a) p.external_v4.push_back(wire::IpAddr::from_v4(0xCB007100u + a));
  p.max_mappings_per_client = static_cast<std::uint32_t>(n / kClients + 1);
  p.max_mappings = static_cast<std::uint32_t>(n + 1);
  p.max_lifetime = 86400;
  AcceptAll dp;
  ManualClock clock;
  const long before = rss_bytes();
  auto server = std::make_unique<core::Server>(p, dp, clock);
  using Clk = std::chrono::steady_clock;
  auto t0 = Clk::now();
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const wire::Request r = map_request(i, 3600);
    const core::Reply rep = server->handle(r, core::Context{r.client_addr, 40000, {}});
    if (rep.kind != core::Reply::Kind::Success) ++failed;
  }
  const double create_s = secs(Clk::now() - t0);
  const long after = rss_bytes();
  const std::size_t count = server->mapping_count();
  const double per = static_cast<double>(after - before) / static_cast<double>(count ? count : 1);

  clock.set(clock.now() + core::Millis(1000));
  t0 = Clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    const wire::Request r = map_request(i, 3600);
    (void)server->handle(r, core::Context{r.client_addr, 40000, {}});
  }
  const double refresh_s = secs(Clk::now() - t0);

  clock.set(clock.now() + core::Millis(3'601'000));
  t0 = Clk::now();
  const std::size_t expired = server->expire();
  const double expire_s = secs(Clk::now() - t0);

  std::printf(
      "N=%zu mappings=%zu failed=%zu rss_before=%ld rss_after=%ld bytes_per_mapping=%.1f "
      "create_us=%.3f refresh_us=%.3f expired=%zu expire_us=%.3f\n",
      n, count, failed, before, after, per, create_s * 1e6 / static_cast<double>(n),
      refresh_s * 1e6 / static_cast<double>(n), expired,
      expire_s * 1e6 / static_cast<double>(expired ? expired : 1));
  std::fflush(stdout);
  return failed == 0 && count == n && expired == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> ns;
  for (int i = 1; i < argc; ++i) ns.push_back(std::strtoull(argv[i], nullptr, 10));
  if (ns.empty()) ns = {100'000, 1'000'000};
  int rc = 0;
  for (std::size_t n : ns) rc |= run(n);
  return rc;
}
