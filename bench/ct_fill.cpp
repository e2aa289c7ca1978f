// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd-ct-fill: fills the current network namespace's conntrack table with N entries the way a
// busy NAT44 router holds them, so that benchmarks and tests see a real router's flow table
// rather than an empty one. Each entry is a LAN host's connection masqueraded to the WAN address:
//   original  192.0.2.H:sport -> 198.51.100.R:dport   (H 2..254, R 2..254, sport 1024..65535)
//   reply     198.51.100.R:dport -> 203.0.113.W:nport
// with a mix of protocols like a home or office router's (--tcp-percent TCP ESTABLISHED, the
// rest UDP with a seen reply), each with --timeout seconds to live. Only documentation addresses.
// The entries go in through ctnetlink (IPCTNL_MSG_CT_NEW, many per sendmsg, acked per send), so
// 1,000,000 take a few seconds. Prints one JSON line: created, failed, seconds.
//
// The host's conntrack hash is shared by every namespace and nf_conntrack_max bounds each one:
// raise net.netfilter.nf_conntrack_max (and the hash size) before filling past it.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

struct Tuple {
  std::uint32_t src, dst;  // host order
  std::uint16_t sport, dport;
};

void put_tuple(nlmsghdr* nlh, std::uint16_t type, std::uint8_t proto, const Tuple& t) {
  auto* outer = mnl_attr_nest_start(nlh, type);
  auto* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(t.src));
  mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(t.dst));
  mnl_attr_nest_end(nlh, ip);
  auto* p = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t.sport));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t.dport));
  mnl_attr_nest_end(nlh, p);
  mnl_attr_nest_end(nlh, outer);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcpd-ct-fill: N conntrack entries of a busy NAT44 router in this namespace"};
  std::uint64_t count = 0;
  unsigned tcp_percent = 60;
  unsigned timeout = 3600;
  unsigned wan_host = 1;
  std::uint64_t offset = 0;
  std::uint32_t mark = 0;
  app.add_option("count", count, "entries to create")->required();
  app.add_option("--tcp-percent", tcp_percent, "share of TCP ESTABLISHED entries, the rest UDP")
      ->check(CLI::Range(0u, 100u));
  app.add_option("--timeout", timeout, "seconds each entry lives")->check(CLI::Range(1u, 86400u * 5));
  app.add_option("--wan-host", wan_host, "last octet of the masquerade address 203.0.113.W")
      ->check(CLI::Range(1u, 254u));
  app.add_option("--offset", offset, "start at the n-th tuple (fill twice without clashes)");
  app.add_option("--mark", mark, "ct mark of every entry (e.g. 11: elected|sticky|mapped, for ct-touch)");
  CLI11_PARSE(app, argc, argv);

  mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    std::perror("pcpd-ct-fill: netlink");
    return 1;
  }
  int rcvbuf = 1 << 22;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);

  constexpr std::size_t kSend = 64 * 1024;  // one sendmsg, ~250 entries
  std::vector<char> buf(kSend + MNL_SOCKET_BUFFER_SIZE);
  std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 4);
  std::uint64_t created = 0, failed = 0;
  std::uint32_t seq = 1;
  int first_errno = 0;
  const auto started = std::chrono::steady_clock::now();

  // The n-th tuple: hosts and remotes cycle fastest, then the source port, so every tuple of the
  // first 253 * 253 * 64512 (4.1e9) is distinct.
  auto tuple_of = [](std::uint64_t n) {
    const std::uint32_t h = 2 + n % 253;
    n /= 253;
    const std::uint32_t r = 2 + n % 253;
    n /= 253;
    const std::uint16_t sport = static_cast<std::uint16_t>(1024 + n % 64512);
    return Tuple{0xC0000200u | h, 0xC6336400u | r, sport, 0};
  };
  static constexpr std::uint16_t kDports[] = {443, 443, 443, 80, 53, 123, 993, 5223, 3478, 8443};

  std::uint64_t n = 0;
  while (n < count) {
    std::size_t used = 0;
    std::uint32_t last_seq = 0;
    std::uint64_t in_send = 0;
    std::size_t last_at = 0;
    while (n < count && used + 512 < kSend) {
      const std::uint64_t k = n + offset;
      const bool tcp = (k * 7919) % 100 < tcp_percent;
      const std::uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
      Tuple orig = tuple_of(k);
      orig.dport = kDports[k % std::size(kDports)];
      const Tuple reply{orig.dst, 0xCB007100u | wan_host, orig.dport,
                        static_cast<std::uint16_t>(1024 + (k * 40503) % 64512)};
      last_at = used;
      nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data() + used);
      nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
      nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
      nlh->nlmsg_seq = last_seq = seq++;
      auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
      nfg->nfgen_family = AF_INET;
      nfg->version = NFNETLINK_V0;
      nfg->res_id = 0;
      put_tuple(nlh, CTA_TUPLE_ORIG, proto, orig);
      put_tuple(nlh, CTA_TUPLE_REPLY, proto, reply);
      mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(timeout));
      // conntrack -I ... --status SEEN_REPLY,ASSURED; CONFIRMED too, as the kernel sets it on every
      // entry it creates for ctnetlink and refuses a status that clears it (EBUSY).
      mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED));
      if (mark != 0) mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark));
      if (tcp) {
        auto* pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
        auto* t = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
        mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
        mnl_attr_nest_end(nlh, t);
        mnl_attr_nest_end(nlh, pi);
      }
      used += nlh->nlmsg_len;
      ++n;
      ++in_send;
    }
    // Only the last message of a send asks for an ack: errors come back for any message, the
    // ack says the kernel reached the end of the send.
    reinterpret_cast<nlmsghdr*>(buf.data() + last_at)->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(nl, buf.data(), used) < 0) {
      std::perror("pcpd-ct-fill: send");
      return 1;
    }
    std::uint64_t errors = 0;
    bool done = false;
    while (!done) {
      const ssize_t got = mnl_socket_recvfrom(nl, rx.data(), rx.size());
      if (got < 0) {
        std::perror("pcpd-ct-fill: recv");
        return 1;
      }
      int left = static_cast<int>(got);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rx.data()); mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
        if (err->error != 0) {
          ++errors;
          if (first_errno == 0) first_errno = -err->error;
        }
        if (h->nlmsg_seq == last_seq) done = true;
      }
    }
    failed += errors;
    created += in_send - errors;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("{\"op\":\"ct_fill\",\"created\":%llu,\"failed\":%llu,\"first_error\":\"%s\",\"seconds\":%.3f}\n",
              static_cast<unsigned long long>(created), static_cast<unsigned long long>(failed),
              first_errno != 0 ? std::strerror(first_errno) : "", secs);
  mnl_socket_close(nl);
  return failed != 0 && created == 0 ? 1 : 0;
}
