// SPDX-License-Identifier: GPL-2.0-or-later
// pcpc: command-line PCP client (docs/interfaces.md "pcpc(1)"). Parses the command line, finds
// the server (default gateway), runs one request or a --keep Session, prints human or JSON lines.
// Exit status: 0 SUCCESS, 1 the server answered with an error, 2 no answer or usage error.
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "client/pcp_client.hpp"
#include "pcpc/arguments.hpp"
#include "pcpc/default_gateway.hpp"
#include "pcpc/output.hpp"
#include "wire/codec.hpp"

namespace {

using namespace pcpd;
using client::Millis;

constexpr int kExitSuccess = 0;
constexpr int kExitServerError = 1;
constexpr int kExitNoAnswer = 2;  // also usage errors

struct Options {
  std::string server, source;
  std::uint16_t source_port = 0;
  double timeout_s = 10;
  bool json = false;
  std::string protocol, nonce, remote, external_addr, third_party, description;
  std::uint16_t internal_port = 0, external_port = 0;
  std::uint32_t lifetime = 3600;
  std::vector<std::string> filters;
  bool prefer_failure = false, checkpoint = false, keep = false, capability = false;
  // listen
  std::string interface, family = "both";
  std::uint32_t count = 0;  // 0: unbounded
};

struct UsageError {
  std::string message;
};

void add_mapping_options(CLI::App* cmd, Options& o, bool peer) {
  cmd->add_option("-p,--protocol", o.protocol, "tcp, udp, sctp, number, or 0/all (MAP only)")->required();
  cmd->add_option("-i,--internal-port", o.internal_port, "internal port")->required();
  cmd->add_option("-e,--external-port", o.external_port, "suggested external port");
  cmd->add_option("-a,--external-addr", o.external_addr, "suggested external address");
  cmd->add_option("-l,--lifetime", o.lifetime, "requested lifetime in seconds (0 deletes a MAP)");
  cmd->add_option("-n,--nonce", o.nonce, "mapping nonce, 24 hex digits (default: random)");
  if (peer)
    cmd->add_option("-r,--remote", o.remote, "remote peer ADDR:PORT ([addr]:port for IPv6)")->required();
  cmd->add_option("--third-party", o.third_party, "THIRD_PARTY internal address");
  if (!peer) {
    cmd->add_flag("--prefer-failure", o.prefer_failure, "PREFER_FAILURE");
    cmd->add_option("--filter", o.filters, "FILTER PREFIX[:PORT], repeatable; prefix /0 clears");
  }
  cmd->add_option("--description", o.description, "DESCRIPTION (RFC 7220)");
  cmd->add_flag("--checkpoint", o.checkpoint, "CHECKPOINT_REQUIRED (RFC 7767)");
  cmd->add_flag("--keep", o.keep,
                "renew until SIGINT/SIGTERM, re-create after an epoch anomaly or ANNOUNCE, delete on exit");
}

client::MappingSpec build_spec(const Options& o, bool peer) {
  client::MappingSpec s;
  s.opcode = peer ? wire::Opcode::Peer : wire::Opcode::Map;
  auto proto = pcpc::parse_protocol(o.protocol);
  if (!proto) throw UsageError{"bad protocol: " + o.protocol};
  // R-PEER-2: protocol, internal port and remote port of a PEER must not be 0.
  if (peer && *proto == 0) throw UsageError{"PEER needs a protocol other than 0"};
  if (peer && o.internal_port == 0) throw UsageError{"PEER needs an internal port other than 0"};
  s.protocol = *proto;
  s.internal_port = o.internal_port;
  s.suggested_external_port = o.external_port;
  if (!o.external_addr.empty()) {
    auto a = wire::IpAddr::parse(o.external_addr);
    if (!a) throw UsageError{"bad external address: " + o.external_addr};
    s.suggested_external_addr = *a;
  }
  s.lifetime = o.lifetime;
  if (!o.nonce.empty()) {
    auto n = pcpc::parse_nonce(o.nonce);
    if (!n) throw UsageError{"bad nonce (24 hex digits): " + o.nonce};
    s.nonce = *n;
  }
  if (peer) {
    auto ep = pcpc::parse_endpoint(o.remote);
    if (!ep) throw UsageError{"bad remote ADDR:PORT: " + o.remote};
    s.remote_addr = ep->addr;
    s.remote_port = ep->port;
  }
  if (!o.third_party.empty()) {
    auto a = wire::IpAddr::parse(o.third_party);
    if (!a) throw UsageError{"bad third-party address: " + o.third_party};
    s.third_party = *a;
  }
  s.prefer_failure = o.prefer_failure;
  for (const auto& f : o.filters) {
    auto filter = pcpc::parse_filter(f);
    if (!filter) throw UsageError{"bad filter PREFIX[:PORT]: " + f};
    s.filters.push_back(*filter);
  }
  if (s.filters.size() > wire::kMaxFilters) throw UsageError{"too many filters"};
  if (!o.description.empty()) s.description = o.description;
  s.checkpoint_required = o.checkpoint;
  s.capability = o.capability;
  return s;
}

void print_line(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// One response: its line (JSON: with "server"), then the CAPABILITY it carried (hops-00 R-CAP-2:
// per server).
void print_outcome(const client::Outcome& out, bool json, const wire::IpAddr& server) {
  if (json) {
    auto j = pcpc::response_json(out);
    j["server"] = server.to_string();
    print_line(j.dump());
  } else {
    print_line(pcpc::human_line(out));
    if (auto caps = client::capability_of(out.response)) print_line(pcpc::capability_line(server, *caps));
  }
  if (out.response.result == wire::ResultCode::AddressMismatch)
    std::fputs("pcpc: ADDRESS_MISMATCH: a NAT lies between this host and the PCP server; PCP "
               "cannot be used from here (R-ADDR-2)\n", stderr);
}

int exit_code(const client::Outcome& out) {
  return out.success() ? kExitSuccess : kExitServerError;
}

void print_request_error(const Error& e, const std::string& server, double timeout_s) {
  if (e.code == ETIMEDOUT)
    std::fprintf(stderr, "pcpc: no response from %s port %u within %g s\n", server.c_str(),
                 unsigned{wire::kServerPort}, timeout_s);
  else
    std::fprintf(stderr, "pcpc: %s: %s\n", e.context, std::strerror(e.code));
}

// SIGINT and SIGTERM as a readable descriptor (blocked for normal delivery), so the wait loops
// can stop cleanly; -1 after printing the error.
int stop_signal_fd() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) {
    std::perror("pcpc: sigprocmask");
    return -1;
  }
  const int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) std::perror("pcpc: signalfd");
  return sfd;
}

int run_keep(client::Client& cl, client::UdpTransport& transport, client::Random& random,
             const client::MappingSpec& spec, const Options& o, unsigned ifindex,
             const std::string& server_text) {
  const int sfd = stop_signal_fd();
  if (sfd < 0) return kExitNoAnswer;
  auto listener = client::AnnounceListener::open(transport.server_address(), ifindex);
  if (!listener)
    std::fprintf(stderr, "pcpc: warning: cannot listen for ANNOUNCE on port %u: %s: %s\n",
                 unsigned{wire::kClientPort}, listener.error().context,
                 std::strerror(listener.error().code));
  else if ((*listener)->join_error() != 0)
    std::fprintf(stderr, "pcpc: warning: cannot join the all-nodes multicast group: %s\n",
                 std::strerror((*listener)->join_error()));

  // The exit status of --keep is the outcome of the final delete (docs/interfaces.md).
  int final_code = kExitSuccess;
  bool stopping = false;
  client::Session session(cl, random, client::SessionConfig{}, [&](const client::SessionEvent& ev) {
    if (stopping && ev.kind == client::SessionEvent::Kind::Deleted && ev.outcome &&
        !ev.outcome->success())
      final_code = kExitServerError;
    if (stopping && ev.kind == client::SessionEvent::Kind::NoAnswer) final_code = kExitNoAnswer;
    if (o.json) {
      auto j = pcpc::json_event(ev);
      if (ev.outcome) j["server"] = transport.server_address().to_string();
      print_line(j.dump());
    } else {
      print_line(pcpc::human_event(ev));
    }
    if (!o.json && ev.outcome)
      if (auto caps = client::capability_of(ev.outcome->response))
        print_line(pcpc::capability_line(transport.server_address(), *caps));
    if (ev.outcome && ev.outcome->response.result == wire::ResultCode::AddressMismatch)
      std::fputs("pcpc: ADDRESS_MISMATCH: a NAT lies between this host and the PCP server (R-ADDR-2)\n",
                 stderr);
  });
  auto added = session.add(spec);
  if (!added) {
    print_request_error(added.error(), server_text, o.timeout_s);
    close(sfd);
    return kExitNoAnswer;
  }
  if (session.active_count() == 0) {
    close(sfd);
    return kExitServerError;
  }
  for (;;) {
    int timeout_ms = -1;
    if (auto d = session.next_deadline()) {
      const auto left = std::max<std::int64_t>(0, (*d - cl.clock().now()).count());
      timeout_ms = static_cast<int>(std::min<std::int64_t>(left, std::numeric_limits<int>::max()));
    }
    pollfd fds[3] = {{sfd, POLLIN, 0}, {transport.fd(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (listener) fds[2].fd = (*listener)->fd();
    int r = ::poll(fds, 3, timeout_ms);
    if (r < 0 && errno != EINTR) {
      std::perror("pcpc: poll");
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      if (read(sfd, &si, sizeof si) < 0) {
        // Nothing to do: the signal is what matters, and it was delivered.
      }
      break;
    }
    // POLLERR: a pending ICMP error on the connected socket; the recv in poll() clears it.
    if (r > 0 && (fds[1].revents & (POLLIN | POLLERR))) {
      if (auto polled = cl.poll(); !polled)
        std::fprintf(stderr, "pcpc: %s: %s\n", polled.error().context, std::strerror(polled.error().code));
    }
    if (r > 0 && listener && (fds[2].revents & POLLIN))
      session.on_announcements((*listener)->drain(cl.clock().now(), cl.config().codes));
    session.run_due();
    if (session.active_count() == 0) {
      close(sfd);
      return kExitServerError;  // every mapping abandoned (R-ADDR-2)
    }
  }
  stopping = true;
  session.stop();
  close(sfd);
  return final_code;
}

// pcpc listen (docs/interfaces.md): unsolicited ANNOUNCEs from any server (or only --server) on
// UDP 5350, one line per event: a server first heard or whose epoch failed the check
// (RFC 6887 §8.5), and a new or changed CAPABILITY set (hops-00 R-CAP-2: per server, an
// unsolicited ANNOUNCE replaces that server's set; one without the option leaves it as it was).
int run_listen(const Options& o, bool timeout_given) {
  unsigned ifindex = 0;
  if (!o.interface.empty()) {
    ifindex = if_nametoindex(o.interface.c_str());
    if (ifindex == 0) throw UsageError{"unknown interface: " + o.interface};
  }
  std::optional<wire::IpAddr> only;
  if (!o.server.empty()) {
    auto s = pcpc::parse_server(o.server);
    if (!s) throw UsageError{"bad server address: " + o.server};
    only = s->addr;
    if (!s->zone.empty() && ifindex == 0) {
      ifindex = if_nametoindex(s->zone.c_str());
      if (ifindex == 0) throw UsageError{"unknown interface: " + s->zone};
    }
  }
  const bool want_v4 = o.family != "6" && (!only || only->is_v4());
  const bool want_v6 = o.family != "4" && (!only || !only->is_v4());
  if (!want_v4 && !want_v6) throw UsageError{"--family does not match the --server address"};

  const int sfd = stop_signal_fd();
  if (sfd < 0) return kExitNoAnswer;
  std::vector<std::unique_ptr<client::AnnounceListener>> listeners;
  for (bool v6 : {false, true}) {
    if (v6 ? !want_v6 : !want_v4) continue;
    auto l = client::AnnounceListener::open_any(v6, ifindex);
    if (!l) {
      std::fprintf(stderr, "pcpc: warning: cannot listen on %s port %u: %s: %s\n", v6 ? "IPv6" : "IPv4",
                   unsigned{wire::kClientPort}, l.error().context, std::strerror(l.error().code));
      continue;
    }
    if ((*l)->join_error() != 0)
      std::fprintf(stderr, "pcpc: warning: cannot join %s: %s\n", v6 ? "ff02::1" : "224.0.0.1",
                   std::strerror((*l)->join_error()));
    listeners.push_back(std::move(*l));
  }
  if (listeners.empty()) {
    close(sfd);
    return kExitNoAnswer;
  }
  std::fprintf(stderr, "pcpc: listening for ANNOUNCE on port %u\n", unsigned{wire::kClientPort});

  client::BootClock clock;
  const Millis deadline = clock.now() + Millis{static_cast<std::int64_t>(o.timeout_s * 1000.0)};
  client::CapabilityTable capabilities;
  std::vector<std::pair<wire::IpAddr, client::EpochValidator>> epochs;  // per server (§8.5)
  std::uint32_t printed = 0;
  for (;;) {
    int timeout_ms = -1;
    if (timeout_given) {
      const auto left = (deadline - clock.now()).count();
      if (left <= 0) break;
      timeout_ms = static_cast<int>(std::min<std::int64_t>(left, std::numeric_limits<int>::max()));
    }
    std::array<pollfd, 3> fds{};
    fds[0] = {sfd, POLLIN, 0};
    for (std::size_t i = 0; i < listeners.size(); ++i) fds[i + 1] = {listeners[i]->fd(), POLLIN, 0};
    const int r = ::poll(fds.data(), static_cast<nfds_t>(listeners.size() + 1), timeout_ms);
    if (r < 0 && errno != EINTR) {
      std::perror("pcpc: poll");
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) {
      close(sfd);
      return kExitSuccess;  // SIGINT / SIGTERM
    }
    for (std::size_t i = 0; r > 0 && i < listeners.size(); ++i) {
      if (!(fds[i + 1].revents & POLLIN)) continue;
      for (const auto& a : listeners[i]->drain(clock.now(), client::ClientConfig{}.codes)) {
        if (only && a.source != *only) continue;
        auto it = std::find_if(epochs.begin(), epochs.end(),
                               [&](const auto& e) { return e.first == a.source; });
        const bool first = it == epochs.end();
        if (first) it = epochs.insert(epochs.end(), {a.source, client::EpochValidator{}});
        const bool valid = it->second.check(a.epoch, a.received_at);
        if (first || !valid) {
          print_line(o.json ? pcpc::announce_json(a, valid).dump() : pcpc::announce_line(a, valid));
          ++printed;
        }
        if (a.capability && capabilities.update(a.source, *a.capability)) {
          print_line(o.json ? pcpc::capability_json(a.source, *a.capability).dump()
                            : pcpc::capability_line(a.source, *a.capability));
          ++printed;
        }
      }
    }
    if (o.count != 0 && printed >= o.count) {
      close(sfd);
      return kExitSuccess;
    }
  }
  close(sfd);
  // --timeout reached: fine unless a --count was asked for and not reached.
  return o.count != 0 ? kExitNoAnswer : kExitSuccess;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"pcpc: Port Control Protocol (RFC 6887) client"};
  app.require_subcommand(1);
  app.add_option("-s,--server", o.server, "PCP server (default: the default gateway)");
  app.add_option("--source", o.source, "local address to send from (the mapping's internal address)");
  app.add_option("--source-port", o.source_port, "local UDP port (default: ephemeral)");
  app.add_option("--timeout", o.timeout_s, "total retransmission time bound in seconds (MRD), default 10")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", o.json, "one JSON object per response on stdout");
  auto* map_cmd = app.add_subcommand("map", "create, refresh or delete (-l 0) a MAP mapping");
  auto* peer_cmd = app.add_subcommand("peer", "create or refresh a PEER mapping");
  auto* announce_cmd = app.add_subcommand("announce", "ANNOUNCE: ask for the server's epoch");
  add_mapping_options(map_cmd, o, false);
  add_mapping_options(peer_cmd, o, true);
  for (auto* cmd : {map_cmd, peer_cmd, announce_cmd}) {
    cmd->fallthrough();  // global options may follow the subcommand too
    cmd->add_flag("--capability,--capabilities", o.capability,
                  "ask for the server's capabilities (CAPABILITY option, hops-00 R-CAP-1)");
  }
  auto* listen_cmd = app.add_subcommand(
      "listen", "print the epoch and CAPABILITY of unsolicited ANNOUNCEs on port 5350");
  listen_cmd->fallthrough();
  listen_cmd->add_option("--interface", o.interface, "interface to join 224.0.0.1 / ff02::1 on");
  listen_cmd->add_option("--family", o.family, "4, 6 or both (default)")
      ->check(CLI::IsMember({"4", "6", "both"}));
  listen_cmd->add_option("--count", o.count, "exit 0 after this many printed events");
  app.set_version_flag("--version", std::string("pcpc ") + PCPD_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitSuccess : kExitNoAnswer;
  }

  try {
    if (listen_cmd->parsed()) return run_listen(o, app.get_option("--timeout")->count() > 0);
    const bool peer = peer_cmd->parsed();
    const bool announce = announce_cmd->parsed();
    client::MappingSpec spec;
    if (!announce) spec = build_spec(o, peer);
    if (o.keep && spec.lifetime == 0) throw UsageError{"--keep needs a non-zero lifetime"};

    std::optional<wire::IpAddr> source;
    if (!o.source.empty()) {
      source = wire::IpAddr::parse(o.source);
      if (!source) throw UsageError{"bad source address: " + o.source};
    }
    client::UdpTransportConfig tc;
    std::string zone;
    if (!o.server.empty()) {
      auto s = pcpc::parse_server(o.server);
      if (!s) throw UsageError{"bad server address: " + o.server};
      tc.server = s->addr;
      zone = s->zone;
    } else {
      auto gw = pcpc::default_gateway(source ? std::optional<bool>(!source->is_v4()) : std::nullopt);
      if (!gw) throw UsageError{"no default gateway found; use --server"};
      tc.server = gw->addr;
      zone = gw->interface;
    }
    unsigned ifindex = zone.empty() ? 0 : if_nametoindex(zone.c_str());
    if (!zone.empty() && ifindex == 0 && !o.server.empty())
      throw UsageError{"unknown interface: " + zone};
    // Only an IPv6 link-local server needs the zone on the socket address.
    const bool link_local = !tc.server.is_v4() && tc.server.bytes[0] == 0xfe &&
                            (tc.server.bytes[1] & 0xc0) == 0x80;
    tc.scope_id = link_local ? ifindex : 0;
    tc.source = source;
    tc.source_port = o.source_port;
    const std::string server_text = tc.server.to_string();

    auto transport = client::UdpTransport::open(tc);
    if (!transport) {
      std::fprintf(stderr, "pcpc: %s: %s\n", transport.error().context,
                   std::strerror(transport.error().code));
      return kExitNoAnswer;
    }
    client::BootClock clock;
    client::SystemRandom random;
    client::ClientConfig cc;
    cc.retransmit.mrd = Millis{static_cast<std::int64_t>(o.timeout_s * 1000.0)};
    client::Client cl(**transport, clock, random, cc);

    if (o.keep) return run_keep(cl, **transport, random, spec, o, ifindex, server_text);

    auto out = announce ? cl.announce(o.capability) : cl.request(spec);
    if (!out) {
      print_request_error(out.error(), server_text, o.timeout_s);
      return kExitNoAnswer;
    }
    print_outcome(*out, o.json, tc.server);
    return exit_code(*out);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "pcpc: %s\n", e.message.c_str());
    return kExitNoAnswer;
  }
}
