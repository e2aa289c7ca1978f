// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd-echo: the bare UDP request/response ceiling the PCP numbers are compared with.
//
//   pcpd-echo server --bind ADDR [--port P] [--seconds S]
//       answers every datagram with itself (recvmmsg/sendmmsg, up to 64 per call); runs until
//       killed or S seconds passed.
//   pcpd-echo client --server ADDR [--port P] [--client ADDR] [--window W] [--count N]
//       sends N datagrams of --size bytes (60 = a PCP MAP request) with at most W in flight,
//       matches answers by the sequence number in the first 8 bytes, prints one JSON line:
//       answered/s over the whole run and latency percentiles (same keys as pcpd-loadgen).
//   pcpd-echo flood --targets FILE --source ADDR [--seconds S]
//       new-flow generator for the forwarding benchmark: raw IPv4/UDP packets from ADDR to the
//       "address port" lines of FILE (round-robin); the source port (1024..65535) moves on after
//       each pass over the targets, so every packet is a new 5-tuple until 64,512 passes, i.e.
//       opens a new conntrack entry and goes through the NAT map lookup. Prints packets sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBatch = 64;
constexpr std::size_t kBuf = 1500;

bool parse_v4(const std::string& s, std::uint16_t port, sockaddr_in& out) {
  out = {};
  out.sin_family = AF_INET;
  out.sin_port = htons(port);
  return inet_pton(AF_INET, s.c_str(), &out.sin_addr) == 1;
}

int open_udp(const sockaddr_in* local) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  if (local && bind(fd, reinterpret_cast<const sockaddr*>(local), sizeof(*local)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int run_server(const std::string& addr, std::uint16_t port, double seconds) {
  sockaddr_in local{};
  if (!parse_v4(addr, port, local)) return 2;
  const int fd = open_udp(&local);
  if (fd < 0) {
    std::cerr << "pcpd-echo: bind: " << std::strerror(errno) << "\n";
    return 2;
  }
  std::vector<std::array<std::uint8_t, kBuf>> bufs(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_in, kBatch> peers{};
  std::array<mmsghdr, kBatch> msgs{};
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds > 0 ? seconds : 1e9));
  while (Clock::now() < end) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), kBuf};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const int r = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (r <= 0) continue;
    for (int i = 0; i < r; ++i) iov[static_cast<std::size_t>(i)].iov_len = msgs[static_cast<std::size_t>(i)].msg_len;
    int done = 0;
    while (done < r) {
      const int s = sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(r - done), 0);
      if (s <= 0) break;  // drop the rest, as a busy server would
      done += s;
    }
  }
  close(fd);
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

int run_client(const std::string& server, const std::string& client, std::uint16_t port,
               std::uint32_t window, std::uint32_t count, std::size_t size, std::uint32_t timeout_ms,
               const std::string& label) {
  sockaddr_in local{}, remote{};
  if (!parse_v4(client, 0, local) || !parse_v4(server, port, remote)) return 2;
  const int fd = open_udp(&local);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&remote), sizeof(remote)) != 0) {
    std::cerr << "pcpd-echo: socket: " << std::strerror(errno) << "\n";
    return 2;
  }
  size = std::clamp<std::size_t>(size, 8, kBuf);
  std::vector<Clock::time_point> sent_at(count);
  std::vector<bool> answered(count, false);
  std::vector<double> lat;
  lat.reserve(count);
  std::uint64_t next = 0, got = 0, inflight = 0, timeouts = 0;
  std::array<std::uint8_t, kBuf> tx{};
  std::vector<std::array<std::uint8_t, kBuf>> rx(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  std::uint64_t oldest = 0;  // lowest sequence number that may still be in flight
  const auto start = Clock::now();
  while (got + timeouts < count) {
    while (inflight < window && next < count) {
      std::memcpy(tx.data(), &next, 8);
      sent_at[next] = Clock::now();
      if (send(fd, tx.data(), size, 0) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) break;
        std::cerr << "pcpd-echo: send: " << std::strerror(errno) << "\n";
        return 2;
      }
      ++next;
      ++inflight;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        iov[i] = {rx[i].data(), kBuf};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int r = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      const auto now = Clock::now();
      for (int i = 0; i < r; ++i) {
        if (msgs[static_cast<std::size_t>(i)].msg_len < 8) continue;
        std::uint64_t seq = 0;
        std::memcpy(&seq, rx[static_cast<std::size_t>(i)].data(), 8);
        if (seq >= next || answered[seq]) continue;
        answered[seq] = true;
        ++got;
        --inflight;
        lat.push_back(std::chrono::duration<double, std::milli>(now - sent_at[seq]).count());
      }
    }
    // Requests unanswered for timeout_ms are lost (UDP: the echo server drops under overload).
    const auto now = Clock::now();
    while (oldest < next && (answered[oldest] || now - sent_at[oldest] > std::chrono::milliseconds(timeout_ms))) {
      if (!answered[oldest]) {
        answered[oldest] = true;  // counted as lost; a late answer is ignored
        ++timeouts;
        --inflight;
      }
      ++oldest;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  nlohmann::json j;
  j["server"] = label;
  j["op"] = "echo";
  j["mode"] = "echo";
  j["existing"] = 0;
  j["window"] = window;
  j["sent"] = next;
  j["answered"] = got;
  j["timeouts"] = timeouts;
  j["elapsed_s"] = elapsed;
  j["req_per_s"] = elapsed > 0 ? static_cast<double>(got) / elapsed : 0.0;
  j["p50_ms"] = percentile(lat, 50);
  j["p99_ms"] = percentile(lat, 99);
  j["max_ms"] = percentile(lat, 100);
  std::cout << j.dump() << std::endl;
  close(fd);
  return 0;
}

int run_flood(const std::string& targets_file, const std::string& source, double seconds) {
  struct Target {
    in_addr addr;
    std::uint16_t port;
  };
  std::vector<Target> targets;
  std::ifstream in(targets_file);
  std::string a;
  unsigned p = 0;
  while (in >> a >> p) {
    Target t{};
    if (inet_pton(AF_INET, a.c_str(), &t.addr) == 1 && p > 0 && p < 65536) {
      t.port = static_cast<std::uint16_t>(p);
      targets.push_back(t);
    }
  }
  in_addr src{};
  if (targets.empty() || inet_pton(AF_INET, source.c_str(), &src) != 1) {
    std::cerr << "pcpd-echo: flood needs --targets with 'addr port' lines and --source\n";
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // IP_HDRINCL implied
  if (fd < 0) {
    std::cerr << "pcpd-echo: raw socket: " << std::strerror(errno) << "\n";
    return 2;
  }
  constexpr std::size_t kLen = sizeof(iphdr) + sizeof(udphdr) + 18;  // 46-byte IP packets
  std::vector<std::array<std::uint8_t, kLen>> pkts(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_in, kBatch> dst{};
  std::array<mmsghdr, kBatch> msgs{};
  std::uint64_t sent = 0, dropped = 0;
  std::uint32_t sport = 1024;
  std::size_t ti = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      const Target& t = targets[ti];
      if (++ti == targets.size()) {
        ti = 0;
        if (++sport > 65535) sport = 1024;  // next source port once every target had this one
      }
      auto& b = pkts[i];
      b.fill(0);
      auto* ip = reinterpret_cast<iphdr*>(b.data());
      ip->version = 4;
      ip->ihl = 5;
      ip->ttl = 64;
      ip->protocol = IPPROTO_UDP;
      ip->tot_len = htons(static_cast<std::uint16_t>(kLen));
      ip->saddr = src.s_addr;
      ip->daddr = t.addr.s_addr;  // id and checksum: filled in by the kernel (raw(7))
      auto* udp = reinterpret_cast<udphdr*>(b.data() + sizeof(iphdr));
      udp->source = htons(static_cast<std::uint16_t>(sport));
      udp->dest = htons(t.port);
      udp->len = htons(static_cast<std::uint16_t>(kLen - sizeof(iphdr)));
      udp->check = 0;  // IPv4: no checksum
      dst[i] = {};
      dst[i].sin_family = AF_INET;
      dst[i].sin_addr = t.addr;
      iov[i] = {b.data(), kLen};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &dst[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (r > 0) {
      sent += static_cast<std::uint64_t>(r);
      dropped += kBatch - static_cast<std::size_t>(r);
    } else {
      dropped += kBatch;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  nlohmann::json j;
  j["op"] = "flood";
  j["targets"] = targets.size();
  j["sent"] = sent;
  j["send_failed"] = dropped;
  j["elapsed_s"] = elapsed;
  j["sent_per_s"] = elapsed > 0 ? static_cast<double>(sent) / elapsed : 0.0;
  std::cout << j.dump() << std::endl;
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bare UDP echo server and client (the ceiling for bench/)"};
  app.require_subcommand(1);
  std::string bind_addr = "192.0.2.1", server = "192.0.2.1", client = "0.0.0.0", label = "echo";
  std::uint16_t port = 5400;
  double seconds = 0;
  std::uint32_t window = 1, count = 10000, timeout_ms = 1000;
  std::size_t size = 60;
  auto* srv = app.add_subcommand("server", "echo every datagram back");
  srv->add_option("--bind", bind_addr, "IPv4 address to bind");
  srv->add_option("--port", port, "UDP port");
  srv->add_option("--seconds", seconds, "exit after this long (0: until killed)");
  auto* cli = app.add_subcommand("client", "measure rate and round trip");
  cli->add_option("--server", server, "echo server IPv4 address");
  cli->add_option("--port", port, "echo server UDP port");
  cli->add_option("--client", client, "local IPv4 address");
  cli->add_option("-w,--window", window, "datagrams in flight")->check(CLI::Range(1, 4096));
  cli->add_option("-n,--count", count, "datagrams to send")->check(CLI::Range(1, 100000000));
  cli->add_option("--size", size, "datagram size (60 = PCP MAP request)");
  cli->add_option("--timeout-ms", timeout_ms, "a datagram unanswered this long is lost");
  cli->add_option("--label", label, "server name for the report");
  std::string targets_file, source;
  auto* flood = app.add_subcommand("flood", "raw UDP new-flow generator (forwarding benchmark)");
  flood->add_option("--targets", targets_file, "file of 'address port' lines")->required();
  flood->add_option("--source", source, "source IPv4 address")->required();
  flood->add_option("--seconds", seconds, "how long to send");
  CLI11_PARSE(app, argc, argv);
  if (*flood) return run_flood(targets_file, source, seconds > 0 ? seconds : 2.0);
  if (*srv) return run_server(bind_addr, port, seconds);
  return run_client(server, client, port, window, count, size, timeout_ms, label);
}
