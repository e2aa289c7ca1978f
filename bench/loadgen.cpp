// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd-loadgen: a PCP (RFC 6887) MAP load generator for benchmarks (bench/run.sh).
//
// One UDP socket on one client address simulates many clients: every mapping uses its own
// internal port, since a PCP mapping is keyed by internal address + protocol + internal port
// (RFC 6887 §11.1, R-MAP-10). PCP has no transaction id, so a response is matched to its request by
// the internal port, nonce and protocol it copies back (§11.1), and by its lifetime (0 = delete).
// Nonces are derived from --seed and the internal port, so separate runs (fill, then refresh or
// delete) address the same mappings with the same nonces (R-MAP-6, R-OWN-2).
//
// Modes:
//   fill    create --count mappings on ports [base, base+count)
//   create  same as fill, reported as "create"
//   delete  delete the mappings on ports [base, base+count)
//   refresh --count refreshes round-robin over the --span mappings on [base, base+span)
//   cycle   rounds of: create --batch mappings on [base, base+batch), then delete them; stops after
//           --count creates; reports create and delete separately (the table size stays within
//           [existing, existing+batch] while measuring)
// Output: one JSON line per measured operation on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "wire/codec.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace wire = pcpd::wire;

constexpr std::size_t kMaxBatch = 256;  // datagrams per sendmmsg/recvmmsg call

struct Config {
  std::string server = "192.0.2.1";
  std::uint16_t server_port = wire::kServerPort;
  std::string client = "192.0.2.10";
  std::string mode = "fill";
  std::string label = "server";
  std::string protocol = "tcp";
  std::uint32_t count = 1000;
  std::uint32_t span = 0;     // refresh: mappings to cycle over (default: count)
  std::uint32_t batch = 64;   // cycle: mappings per create/delete round
  std::uint32_t window = 64;  // requests in flight
  std::uint16_t base_port = 20000;
  std::uint32_t lifetime = 3600;
  std::uint32_t timeout_ms = 10000;
  double duration_s = 0;      // 0: no time bound besides --max-seconds
  double max_seconds = 900;   // hard bound on one run
  std::uint64_t seed = 1;
  std::uint64_t existing = 0;  // mappings the caller says exist already (reported only)
  int debug = 0;               // unmatched responses to describe on stderr
  std::string list_external;   // file: "addr port" of every mapping created (bench/scale.sh)
};

struct Job {
  std::uint16_t port = 0;
  bool del = false;
};

// Counters of one measured operation.
struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t unmatched = 0;  // responses for nothing in flight (late, duplicate, garbage)
  std::map<std::string, std::uint64_t> results;
  std::vector<double> latency_ms;
  double busy_s = 0;  // time spent with this operation's requests outstanding
};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

wire::Nonce nonce_for(std::uint64_t seed, std::uint16_t port) {
  const std::uint64_t a = splitmix64(seed * 65537 + port);
  const std::uint64_t b = splitmix64(a);
  wire::Nonce n{};
  std::memcpy(n.data(), &a, 8);
  std::memcpy(n.data() + 8, &b, 4);
  return n;
}

std::optional<std::uint8_t> parse_protocol(const std::string& p) {
  if (p == "tcp") return 6;
  if (p == "udp") return 17;
  return std::nullopt;
}

class LoadGen {
 public:
  LoadGen(const Config& cfg, int fd, wire::IpAddr client, sockaddr_in server, std::uint8_t proto)
      : cfg_(cfg), fd_(fd), client_(client), server_(server), proto_(proto) {}

  // Sends the jobs `next` yields with at most --window in flight, until it yields nothing (or the
  // time bound hits), then waits for the stragglers. Adds to `stats`.
  void run_phase(const std::function<std::optional<Job>()>& next, Stats& stats) {
    std::optional<Job> held;  // a job whose port is still in flight
    bool exhausted = false;
    const auto phase_start = Clock::now();
    while (true) {
      const auto now = Clock::now();
      if (!exhausted && out_of_time(now)) exhausted = true;
      send_more(next, held, exhausted, stats);
      if (exhausted && !held && inflight_.empty()) break;
      wait_and_receive(stats);
      expire(stats);
    }
    stats.busy_s += std::chrono::duration<double>(Clock::now() - phase_start).count();
  }

  void start_clock() { run_start_ = Clock::now(); }
  void list_external_to(std::FILE* f) { external_out_ = f; }

 private:
  struct Slot {
    std::uint64_t seq = 0;
    bool del = false;
    Clock::time_point sent;
    Stats* stats = nullptr;
  };

  bool out_of_time(Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - run_start_).count();
    if (cfg_.duration_s > 0 && elapsed >= cfg_.duration_s) return true;
    return elapsed >= cfg_.max_seconds;
  }

  std::size_t encode(const Job& job, std::span<std::uint8_t> out) const {
    wire::Request req;
    req.opcode = wire::Opcode::Map;
    req.lifetime = job.del ? 0 : cfg_.lifetime;  // RFC 6887 §15: lifetime 0 deletes
    req.client_addr = client_;                   // §8.1: the source address we bound to
    wire::MapBody body;
    body.nonce = nonce_for(cfg_.seed, job.port);
    body.protocol = proto_;
    body.internal_port = job.port;
    // Suggest external port = internal port on creates (what a game console does); deletes send
    // zeros (§15). External address: IPv4 "no preference" (§11.1).
    body.external_port = job.del ? 0 : job.port;
    body.external_addr = wire::IpAddr::v4_any();
    req.body = body;
    return wire::encode_request(req, out);
  }

  void send_more(const std::function<std::optional<Job>()>& next, std::optional<Job>& held,
                 bool& exhausted, Stats& stats) {
    std::array<std::array<std::uint8_t, 128>, kMaxBatch> bufs{};
    std::array<iovec, kMaxBatch> iov{};
    std::array<mmsghdr, kMaxBatch> msgs{};
    std::array<Job, kMaxBatch> jobs{};
    std::size_t n = 0;
    while (inflight_.size() + n < cfg_.window && n < kMaxBatch) {
      std::optional<Job> job;
      if (held) {
        job = held;
        held.reset();
      } else if (!exhausted) {
        job = next();
        if (!job) exhausted = true;
      }
      if (!job) break;
      bool busy = inflight_.contains(job->port);
      for (std::size_t i = 0; i < n && !busy; ++i) busy = jobs[i].port == job->port;
      if (busy) {
        held = job;
        break;
      }
      const std::size_t len = encode(*job, bufs[n]);
      if (len == 0) {
        std::cerr << "pcpd-loadgen: encode_request failed\n";
        std::exit(2);
      }
      jobs[n] = *job;
      iov[n] = {bufs[n].data(), len};
      msgs[n].msg_hdr = {};
      msgs[n].msg_hdr.msg_name = &server_;
      msgs[n].msg_hdr.msg_namelen = sizeof(server_);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      ++n;
    }
    std::size_t done = 0;
    int stalls = 0;
    while (done < n) {
      const auto now = Clock::now();
      const int r = sendmmsg(fd_, msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        if ((errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && ++stalls < 1000) {
          pollfd p{fd_, POLLOUT, 0};
          poll(&p, 1, 10);
          continue;
        }
        std::cerr << "pcpd-loadgen: sendmmsg: " << std::strerror(errno) << "\n";
        std::exit(2);
      }
      for (int i = 0; i < r; ++i) {
        const Job& j = jobs[done + static_cast<std::size_t>(i)];
        inflight_[j.port] = Slot{++seq_, j.del, now, &stats};
        deadlines_.push_back({j.port, seq_, now + std::chrono::milliseconds(cfg_.timeout_ms)});
        ++stats.sent;
      }
      done += static_cast<std::size_t>(r);
    }
  }

  void wait_and_receive(Stats& stats) {
    int wait_ms = 100;
    if (!deadlines_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadlines_.front().at - Clock::now());
      wait_ms = static_cast<int>(std::clamp<std::int64_t>(left.count() + 1, 0, 100));
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return;
    std::array<std::array<std::uint8_t, wire::kMaxMessageSize + 4>, 64> bufs{};
    std::array<iovec, 64> iov{};
    std::array<mmsghdr, 64> msgs{};
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (int rounds = 0; rounds < 64; ++rounds) {
      const int r = recvmmsg(fd_, msgs.data(), static_cast<unsigned>(msgs.size()), MSG_DONTWAIT,
                             nullptr);
      if (r <= 0) return;
      const auto now = Clock::now();
      for (int i = 0; i < r; ++i) {
        const auto& m = msgs[static_cast<std::size_t>(i)];
        on_datagram({bufs[static_cast<std::size_t>(i)].data(), m.msg_len}, now, stats);
      }
      if (static_cast<std::size_t>(r) < msgs.size()) return;
    }
  }

  void on_datagram(std::span<const std::uint8_t> data, Clock::time_point now, Stats& fallback) {
    const auto decoded = wire::decode_response(data);
    const auto* resp = std::get_if<wire::Response>(&decoded);
    const auto* body = resp ? std::get_if<wire::MapBody>(&resp->body) : nullptr;
    if (body == nullptr || resp->opcode != wire::Opcode::Map || body->protocol != proto_) {
      unmatched(fallback, resp ? "not a MAP response for our protocol"
                               : std::get<wire::ResponseError>(decoded).reason);
      return;
    }
    const auto it = inflight_.find(body->internal_port);
    // §11.1: the nonce is copied back; a success for a delete carries lifetime 0 (§15), so a late
    // create answer is not taken for the delete that followed it on the same port.
    if (it == inflight_.end() || body->nonce != nonce_for(cfg_.seed, body->internal_port) ||
        (resp->result == wire::ResultCode::Success && (resp->lifetime == 0) != it->second.del)) {
      unmatched(fallback, it == inflight_.end() ? "internal port not in flight"
                          : body->nonce != nonce_for(cfg_.seed, body->internal_port)
                              ? "nonce differs"
                              : "lifetime does not fit the request (late answer?)");
      return;
    }
    Stats& s = *it->second.stats;
    if (external_out_ != nullptr && !it->second.del && resp->result == wire::ResultCode::Success)
      std::fprintf(external_out_, "%s %u\n", body->external_addr.to_string().c_str(),
                   unsigned{body->external_port});
    ++s.answered;
    ++s.results[wire::to_string(resp->result)];
    s.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second.sent).count());
    inflight_.erase(it);
  }

  void unmatched(Stats& stats, const char* why) {
    ++stats.unmatched;
    if (debug_left_ > 0) {
      --debug_left_;
      std::cerr << "pcpd-loadgen: unmatched response: " << why << "\n";
    }
  }

  void expire(Stats& fallback) {
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front().at <= now) {
      const Deadline d = deadlines_.front();
      deadlines_.pop_front();
      const auto it = inflight_.find(d.port);
      if (it == inflight_.end() || it->second.seq != d.seq) continue;  // answered already
      Stats* s = it->second.stats ? it->second.stats : &fallback;
      ++s->timeouts;
      inflight_.erase(it);
    }
  }

  struct Deadline {
    std::uint16_t port;
    std::uint64_t seq;
    Clock::time_point at;
  };

  const Config& cfg_;
  int fd_;
  wire::IpAddr client_;
  sockaddr_in server_;
  std::uint8_t proto_;
  std::uint64_t seq_ = 0;
  int debug_left_ = cfg_.debug;
  Clock::time_point run_start_ = Clock::now();
  std::unordered_map<std::uint16_t, Slot> inflight_;
  std::deque<Deadline> deadlines_;  // FIFO: every request has the same timeout
  std::FILE* external_out_ = nullptr;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

nlohmann::json report(const Config& cfg, const std::string& op, const Stats& s) {
  nlohmann::json j;
  j["server"] = cfg.label;
  j["op"] = op;
  j["mode"] = cfg.mode;
  j["existing"] = cfg.existing;
  j["window"] = cfg.window;
  j["protocol"] = cfg.protocol;
  if (cfg.mode == "cycle") j["batch"] = cfg.batch;
  if (cfg.mode == "refresh") j["span"] = cfg.span;
  j["sent"] = s.sent;
  j["answered"] = s.answered;
  j["timeouts"] = s.timeouts;
  j["unmatched"] = s.unmatched;
  j["results"] = s.results;
  const auto ok_it = s.results.find(wire::to_string(wire::ResultCode::Success));
  const std::uint64_t ok = ok_it == s.results.end() ? 0 : ok_it->second;
  j["success"] = ok;
  j["elapsed_s"] = s.busy_s;
  j["req_per_s"] = s.busy_s > 0 ? static_cast<double>(s.answered) / s.busy_s : 0.0;
  j["ok_per_s"] = s.busy_s > 0 ? static_cast<double>(ok) / s.busy_s : 0.0;
  j["p50_ms"] = percentile(s.latency_ms, 50);
  j["p99_ms"] = percentile(s.latency_ms, 99);
  j["max_ms"] = percentile(s.latency_ms, 100);
  return j;
}

int open_socket(const Config& cfg, sockaddr_in& server, wire::IpAddr& client) {
  sockaddr_in local{};
  local.sin_family = AF_INET;
  server.sin_family = AF_INET;
  server.sin_port = htons(cfg.server_port);
  if (inet_pton(AF_INET, cfg.client.c_str(), &local.sin_addr) != 1 ||
      inet_pton(AF_INET, cfg.server.c_str(), &server.sin_addr) != 1) {
    std::cerr << "pcpd-loadgen: --client and --server take IPv4 addresses\n";
    return -1;
  }
  client = wire::IpAddr::from_v4(ntohl(local.sin_addr.s_addr));
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
    std::cerr << "pcpd-loadgen: bind/connect: " << std::strerror(errno) << "\n";
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"PCP MAP load generator (one JSON line per measured operation)"};
  app.add_option("mode", cfg.mode, "fill, create, refresh, delete or cycle")
      ->check(CLI::IsMember({"fill", "create", "refresh", "delete", "cycle"}))
      ->required();
  app.add_option("-s,--server", cfg.server, "PCP server IPv4 address");
  app.add_option("--server-port", cfg.server_port, "PCP server UDP port");
  app.add_option("-c,--client", cfg.client, "local IPv4 address (the mappings' internal address)");
  app.add_option("-n,--count", cfg.count, "requests (creates for cycle)");
  app.add_option("--span", cfg.span, "refresh: mappings cycled over (default --count)");
  app.add_option("--batch", cfg.batch, "cycle: mappings per create/delete round");
  app.add_option("-w,--window", cfg.window, "requests in flight")->check(CLI::Range(1, 4096));
  app.add_option("-b,--base-port", cfg.base_port, "first internal port");
  app.add_option("-l,--lifetime", cfg.lifetime, "requested lifetime for create/refresh");
  app.add_option("-p,--protocol", cfg.protocol, "tcp or udp")->check(CLI::IsMember({"tcp", "udp"}));
  app.add_option("--timeout-ms", cfg.timeout_ms, "a request unanswered this long is a timeout");
  app.add_option("-d,--duration", cfg.duration_s, "stop sending after this many seconds (0: none)");
  app.add_option("--max-seconds", cfg.max_seconds, "hard bound on the run");
  app.add_option("--seed", cfg.seed, "nonce seed (use the same for fill/refresh/delete)");
  app.add_option("--existing", cfg.existing, "mappings present before this run (for the report)");
  app.add_option("--label", cfg.label, "server name for the report");
  app.add_option("--debug", cfg.debug, "describe this many unmatched responses on stderr");
  app.add_option("--list-external", cfg.list_external,
                 "write 'address port' of every mapping created to this file");
  CLI11_PARSE(app, argc, argv);

  if (cfg.span == 0) cfg.span = cfg.count;
  const std::uint32_t ports = cfg.mode == "cycle" ? cfg.batch
                              : cfg.mode == "refresh" ? cfg.span
                                                      : cfg.count;
  if (ports == 0 || std::uint32_t{cfg.base_port} + ports > 65536) {
    std::cerr << "pcpd-loadgen: port range [base, base+n) must be non-empty and fit below 65536\n";
    return 2;
  }
  sockaddr_in server{};
  wire::IpAddr client;
  const int fd = open_socket(cfg, server, client);
  if (fd < 0) return 2;
  LoadGen gen(cfg, fd, client, server, *parse_protocol(cfg.protocol));
  std::FILE* external_file = nullptr;
  if (!cfg.list_external.empty()) {
    external_file = std::fopen(cfg.list_external.c_str(), "w");
    if (external_file == nullptr) {
      std::cerr << "pcpd-loadgen: cannot write " << cfg.list_external << "\n";
      return 2;
    }
    gen.list_external_to(external_file);
  }
  gen.start_clock();

  std::uint32_t i = 0;
  if (cfg.mode == "cycle") {
    Stats create, del;
    std::uint32_t created = 0;
    while (created < cfg.count) {
      const std::uint32_t round = std::min(cfg.batch, cfg.count - created);
      const std::uint64_t before = create.sent;
      i = 0;
      gen.run_phase([&]() -> std::optional<Job> {
        if (i >= round) return std::nullopt;
        return Job{static_cast<std::uint16_t>(cfg.base_port + i++), false};
      }, create);
      const std::uint32_t sent = static_cast<std::uint32_t>(create.sent - before);
      i = 0;
      gen.run_phase([&]() -> std::optional<Job> {
        if (i >= sent) return std::nullopt;
        return Job{static_cast<std::uint16_t>(cfg.base_port + i++), true};
      }, del);
      if (sent < round) break;  // time bound hit
      created += round;
    }
    std::cout << report(cfg, "create", create).dump() << "\n" << report(cfg, "delete", del).dump()
              << std::endl;
  } else {
    Stats stats;
    const bool del = cfg.mode == "delete";
    gen.run_phase([&]() -> std::optional<Job> {
      if (i >= cfg.count) return std::nullopt;
      const std::uint32_t k = cfg.mode == "refresh" ? i % cfg.span : i;
      ++i;
      return Job{static_cast<std::uint16_t>(cfg.base_port + k), del};
    }, stats);
    std::cout << report(cfg, cfg.mode, stats).dump() << std::endl;
  }
  if (external_file != nullptr) std::fclose(external_file);
  close(fd);
  return 0;
}
