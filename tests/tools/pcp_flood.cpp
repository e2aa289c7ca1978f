// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_flood: the two halves of the flood test (tests/integration/it_flood.sh).
//
//   pcp_flood flood --server A --source S [--rate N] [--duration S]
//       One source address sends N datagrams per second (sendmmsg, batches of 64) for S seconds:
//       a mix of valid MAP requests (random internal ports and nonces) and garbage (random bytes,
//       truncated headers, option overruns, NAT-PMP junk, oversize). Prints one JSON object:
//       sent, seconds, rate achieved, answers received, send errors.
//   pcp_flood probe --server A --source S1 [--source S2 ...] [--mappings M] [--duration S]
//                   [--interval-ms I] [--base-port P]
//       Well-behaved clients: M MAP mappings (TCP) per source address, created in the first round
//       and refreshed round after round, one request at a time, a request every I ms, each
//       retransmitted after 250 ms and given up after 3 s. Measures every request's latency
//       (first send to its response). Prints one JSON object: requests, lost, failed (not
//       SUCCESS), p50/p90/p99/max in milliseconds and the mappings with their external ports.
//
// PCP (RFC 6887) has no transaction id: a probe response is matched by opcode, nonce and
// internal port (§11.1). Documentation addresses only (lab.sh). Every loop is bounded in time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "wire/codec.hpp"

namespace {

namespace wire = pcpd::wire;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 64;    // datagrams per sendmmsg
constexpr std::size_t kPool = 4096;   // distinct flood datagrams, sent round-robin
constexpr std::uint8_t kTcp = 6;

struct Endpoint {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
};

Endpoint endpoint(const std::string& text, std::uint16_t port) {
  Endpoint e;
  auto* sin = reinterpret_cast<sockaddr_in*>(&e.ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&e.ss);
  if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    e.len = sizeof(sockaddr_in);
    e.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    e.len = sizeof(sockaddr_in6);
    e.family = AF_INET6;
  } else {
    throw std::runtime_error("not an address: " + text);
  }
  return e;
}

// A UDP socket bound to `source` (any port) and connected to `server`.
int open_socket(const std::string& source, const Endpoint& server, int rcvbuf) {
  const Endpoint local = endpoint(source, 0);
  if (local.family != server.family) throw std::runtime_error("source and server families differ");
  const int fd = ::socket(local.family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const int buf = 4 << 20;
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local.ss), local.len) != 0)
    throw std::runtime_error("bind " + source + ": " + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&server.ss), server.len) != 0)
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  return fd;
}

wire::IpAddr pcp_addr(const std::string& text) {
  auto a = wire::IpAddr::parse(text);
  if (!a) throw std::runtime_error("not an address: " + text);
  return *a;
}

std::vector<std::uint8_t> map_request(const wire::IpAddr& client, std::uint16_t internal_port,
                                      const wire::Nonce& nonce, std::uint32_t lifetime) {
  wire::Request r;
  r.opcode = wire::Opcode::Map;
  r.lifetime = lifetime;
  r.client_addr = client;
  wire::MapBody b;
  b.nonce = nonce;
  b.protocol = kTcp;
  b.internal_port = internal_port;
  b.external_addr = client.is_v4() ? wire::IpAddr::v4_any() : wire::IpAddr{};
  r.body = b;
  std::array<std::uint8_t, 1100> buf{};
  const std::size_t n = wire::encode_request(r, buf);
  if (n == 0) throw std::runtime_error("encode_request failed");
  return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)};
}

// ---- flood ------------------------------------------------------------------------------------

std::vector<std::vector<std::uint8_t>> flood_pool(const wire::IpAddr& client, std::mt19937_64& rng) {
  std::vector<std::vector<std::uint8_t>> pool;
  pool.reserve(kPool);
  auto byte = [&] { return static_cast<std::uint8_t>(rng()); };
  auto random_bytes = [&](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = byte();
    return v;
  };
  for (std::size_t i = 0; i < kPool; ++i) {
    wire::Nonce nonce{};
    for (auto& b : nonce) b = byte();
    const auto port = static_cast<std::uint16_t>(1024 + rng() % 64000);
    std::vector<std::uint8_t> d;
    switch (i % 8) {
      case 0: case 1: case 2: case 3:  // valid MAP requests
        d = map_request(client, port, nonce, 600);
        break;
      case 4:  // version 2, random rest, random length (2..1100)
        d = random_bytes(2 + rng() % 1099);
        d[0] = 2;
        d[1] &= 0x7f;
        break;
      case 5:  // truncated header (1..23 bytes)
        d = map_request(client, port, nonce, 600);
        d.resize(1 + rng() % 23);
        break;
      case 6:  // NAT-PMP junk: version 0, random opcode and length (2..16)
        d = random_bytes(2 + rng() % 15);
        d[0] = 0;
        break;
      default: {  // a valid MAP followed by an option whose length runs past the end, or oversize
        d = map_request(client, port, nonce, 600);
        if (rng() % 4 == 0) {
          d.resize(1104, 0);  // > 1100 bytes (RFC 6887 §7)
        } else {
          const std::array<std::uint8_t, 8> opt{static_cast<std::uint8_t>(rng() % 256), 0, 0x01, 0x00,
                                                byte(), byte(), byte(), byte()};
          d.insert(d.end(), opt.begin(), opt.end());
        }
        break;
      }
    }
    pool.push_back(std::move(d));
  }
  return pool;
}

int run_flood(const std::string& server, std::uint16_t port, const std::string& source, double rate,
              double duration) {
  const Endpoint srv = endpoint(server, port);
  const int fd = open_socket(source, srv, 1 << 16);
  std::mt19937_64 rng(std::random_device{}());
  const auto pool = flood_pool(pcp_addr(source), rng);

  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iovs{};
  std::array<std::uint8_t, 2048> rx{};
  std::uint64_t sent = 0, errors = 0, answers = 0;
  std::size_t next = 0;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  const double ns_per_packet = 1e9 / rate;
  for (;;) {
    const auto now = Clock::now();
    if (now >= end) break;
    // Pacing: the batch is due when the packets sent so far have used up their time.
    const auto due = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(sent) * ns_per_packet));
    if (due > now) std::this_thread::sleep_for(due - now);
    for (std::size_t i = 0; i < kBatch; ++i) {
      const auto& d = pool[(next + i) % pool.size()];
      iovs[i] = iovec{const_cast<std::uint8_t*>(d.data()), d.size()};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n < 0) {
      ++errors;  // ENOBUFS, ECONNREFUSED (ICMP from a previous datagram): keep going
      if (errno == ECONNREFUSED) continue;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      continue;
    }
    sent += static_cast<std::uint64_t>(n);
    next = (next + static_cast<std::size_t>(n)) % pool.size();
    while (::recv(fd, rx.data(), rx.size(), MSG_DONTWAIT) > 0) ++answers;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  while (::recv(fd, rx.data(), rx.size(), MSG_DONTWAIT) > 0) ++answers;
  ::close(fd);
  nlohmann::json out{{"source", source},        {"sent", sent},       {"seconds", seconds},
                     {"rate", static_cast<double>(sent) / seconds}, {"answers", answers},
                     {"send_errors", errors}};
  std::printf("%s\n", out.dump().c_str());
  return sent > 0 ? 0 : 1;
}

// ---- probe ------------------------------------------------------------------------------------

struct Probe {
  std::string source;
  wire::IpAddr addr;
  int fd = -1;
  std::vector<std::uint16_t> external_ports;  // 0 until created
  std::vector<std::string> external_addrs;
};

wire::Nonce probe_nonce(std::size_t source, std::size_t mapping) {
  wire::Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(0xa0 + source * 31 + mapping * 7 + i);
  return n;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(idx, v.size() - 1)];
}

int run_probe(const std::string& server, std::uint16_t port, const std::vector<std::string>& sources,
              int mappings, double duration, int interval_ms, std::uint16_t base_port) {
  std::vector<Probe> probes;
  for (const auto& s : sources) {
    Probe p;
    p.source = s;
    p.addr = pcp_addr(s);
    p.fd = open_socket(s, endpoint(server, port), 1 << 16);
    p.external_ports.assign(static_cast<std::size_t>(mappings), 0);
    p.external_addrs.assign(static_cast<std::size_t>(mappings), "");
    probes.push_back(std::move(p));
  }
  std::vector<double> latencies;
  std::uint64_t lost = 0, failed = 0, retransmits = 0, rounds = 0;
  nlohmann::json failures = nlohmann::json::array();
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  auto slot = t0;
  std::array<std::uint8_t, 1100> rx{};
  bool first_round = true;
  while (first_round || Clock::now() < end) {
    for (std::size_t si = 0; si < probes.size(); ++si) {
      Probe& p = probes[si];
      for (std::size_t mi = 0; mi < static_cast<std::size_t>(mappings); ++mi) {
        std::this_thread::sleep_until(slot);
        slot = std::max(slot + std::chrono::milliseconds(interval_ms), Clock::now());
        const auto nonce = probe_nonce(si, mi);
        const auto iport = static_cast<std::uint16_t>(base_port + mi);
        const auto req = map_request(p.addr, iport, nonce, 600);
        while (::recv(p.fd, rx.data(), rx.size(), MSG_DONTWAIT) > 0) {
        }  // late answers to earlier retransmissions
        const auto sent_at = Clock::now();
        auto resend_at = sent_at;
        bool done = false;
        while (!done) {
          const auto now = Clock::now();
          if (now - sent_at > std::chrono::seconds(3)) {
            ++lost;
            failures.push_back({{"source", p.source}, {"internal_port", iport}, {"error", "no answer in 3 s"}});
            break;
          }
          if (now >= resend_at) {
            if (resend_at != sent_at) ++retransmits;
            (void)::send(p.fd, req.data(), req.size(), 0);
            resend_at = now + std::chrono::milliseconds(250);
          }
          pollfd pfd{p.fd, POLLIN, 0};
          const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(resend_at - Clock::now()).count();
          if (::poll(&pfd, 1, static_cast<int>(std::max<long long>(wait, 0) + 1)) <= 0) continue;
          const ssize_t n = ::recv(p.fd, rx.data(), rx.size(), MSG_DONTWAIT);
          if (n <= 0) continue;
          const auto d = wire::decode_response(std::span<const std::uint8_t>(rx.data(), static_cast<std::size_t>(n)));
          const auto* r = std::get_if<wire::Response>(&d);
          if (r == nullptr || r->opcode != wire::Opcode::Map) continue;
          const auto* b = std::get_if<wire::MapBody>(&r->body);
          if (b == nullptr || b->nonce != nonce || b->internal_port != iport) continue;  // stale
          latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent_at).count());
          if (r->result != wire::ResultCode::Success) {
            ++failed;
            failures.push_back({{"source", p.source}, {"internal_port", iport}, {"result", wire::to_string(r->result)}});
          } else {
            p.external_ports[mi] = b->external_port;
            p.external_addrs[mi] = b->external_addr.to_string();
          }
          done = true;
        }
      }
    }
    first_round = false;
    ++rounds;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  nlohmann::json maps = nlohmann::json::array();
  for (const auto& p : probes) {
    for (std::size_t mi = 0; mi < p.external_ports.size(); ++mi)
      maps.push_back({{"source", p.source},
                      {"internal_port", base_port + mi},
                      {"external_addr", p.external_addrs[mi]},
                      {"external_port", p.external_ports[mi]}});
    ::close(p.fd);
  }
  nlohmann::json out{{"requests", latencies.size() + lost},
                     {"answered", latencies.size()},
                     {"lost", lost},
                     {"failed", failed},
                     {"retransmits", retransmits},
                     {"rounds", rounds},
                     {"seconds", seconds},
                     {"p50_ms", percentile(latencies, 50)},
                     {"p90_ms", percentile(latencies, 90)},
                     {"p99_ms", percentile(latencies, 99)},
                     {"max_ms", latencies.empty() ? 0.0 : *std::max_element(latencies.begin(), latencies.end())},
                     {"failures", failures},
                     {"mappings", maps}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcp_flood: PCP flood sender and latency probe (tests/integration/it_flood.sh)"};
  app.require_subcommand(1);
  std::string server = "192.0.2.1";
  std::uint16_t port = wire::kServerPort;
  std::string source;
  double rate = 100000, duration = 5;
  auto* flood = app.add_subcommand("flood", "send garbage and valid MAP requests at a fixed rate");
  flood->add_option("--server", server);
  flood->add_option("--port", port);
  flood->add_option("--source", source)->required();
  flood->add_option("--rate", rate, "datagrams per second")->check(CLI::Range(1.0, 1e7));
  flood->add_option("--duration", duration, "seconds")->check(CLI::Range(0.1, 60.0));
  std::vector<std::string> sources;
  int mappings = 4, interval_ms = 5;
  std::uint16_t base_port = 30000;
  auto* probe = app.add_subcommand("probe", "create and refresh mappings, measure latency");
  probe->add_option("--server", server);
  probe->add_option("--port", port);
  probe->add_option("--source", sources)->required();
  probe->add_option("--mappings", mappings, "mappings per source")->check(CLI::Range(1, 1000));
  probe->add_option("--duration", duration, "seconds")->check(CLI::Range(0.1, 60.0));
  probe->add_option("--interval-ms", interval_ms)->check(CLI::Range(0, 1000));
  probe->add_option("--base-port", base_port);
  CLI11_PARSE(app, argc, argv);
  try {
    if (*flood) return run_flood(server, port, source, rate, duration);
    return run_probe(server, port, sources, mappings, duration, interval_ms, base_port);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pcp_flood: %s\n", e.what());
    return 2;
  }
}
