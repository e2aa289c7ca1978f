// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/udp_server_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "wire/sockaddr.hpp"

namespace pcpd::daemon {

namespace {

// Bytes of receive queue asked for (the kernel doubles it for its bookkeeping).
constexpr int kReceiveBuffer = 4 << 20;

int set_int(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

Result<UdpServerSocket> UdpServerSocket::open(int family, std::uint16_t port) {
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd) return fail(ErrorDomain::Io, errno, "socket");
  // A flooding client (RFC 6887 §18.1) or every client at once after an ANNOUNCE
  // (R-ANN-6) must not overflow the queue while pcpd is off the CPU for a few milliseconds: the
  // default (net.core.rmem_default, 208 KiB) holds about 200 small datagrams, 2 ms of a
  // 100,000/s flood, and a datagram dropped there is a well-behaved client's retransmission. The
  // rate limiter behind it refuses the flood cheaply. SO_RCVBUFFORCE passes net.core.rmem_max
  // (needs CAP_NET_ADMIN, which pcpd has for nftables); without it, SO_RCVBUF up to rmem_max.
  if (set_int(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, kReceiveBuffer) != 0)
    (void)set_int(fd.get(), SOL_SOCKET, SO_RCVBUF, kReceiveBuffer);
  if (family == AF_INET) {
    if (set_int(fd.get(), IPPROTO_IP, IP_PKTINFO, 1) != 0) return fail(ErrorDomain::Io, errno, "IP_PKTINFO");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0)
      return fail(ErrorDomain::Io, errno, "bind 0.0.0.0");
  } else {
    if (set_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0) return fail(ErrorDomain::Io, errno, "IPV6_V6ONLY");
    if (set_int(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) != 0)
      return fail(ErrorDomain::Io, errno, "IPV6_RECVPKTINFO");
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_any;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) != 0)
      return fail(ErrorDomain::Io, errno, "bind [::]");
  }
  return UdpServerSocket(std::move(fd), family);
}

namespace {

// The addresses of a received datagram from its msghdr (source) and IP_PKTINFO / IPV6_PKTINFO
// (destination, interface). false: no pktinfo or an unknown source family.
bool describe(msghdr& msg, const sockaddr_storage& from, Datagram& d) {
  bool have_info = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      d.ifindex = static_cast<unsigned>(info.ipi_ifindex);
      d.destination = wire::IpAddr::from_v4(ntohl(info.ipi_addr.s_addr));
      have_info = true;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info{};
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      d.ifindex = info.ipi6_ifindex;
      d.destination = wire::IpAddr::from_v6(info.ipi6_addr.s6_addr);
      have_info = true;
    }
  }
  if (!have_info) return false;
  if (from.ss_family != AF_INET && from.ss_family != AF_INET6) return false;
  d.source = wire::from_sockaddr(from, &d.source_port);
  return true;
}

constexpr std::size_t kControlSize = CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo));

}  // namespace

// One outgoing datagram's addresses and control message, kept alive while sendmsg/sendmmsg runs.
struct UdpServerSocket::Envelope {
  sockaddr_in6 name{};  // sockaddr_in for AF_INET (fits: both are plain old data)
  alignas(cmsghdr) std::array<unsigned char, CMSG_SPACE(sizeof(in6_pktinfo))> control{};
  iovec iov{};
};

struct UdpServerSocket::Batch {
  std::array<std::array<std::uint8_t, kBatchBufferSize>, kBatch> buffers{};
  std::array<sockaddr_storage, kBatch> from{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  alignas(cmsghdr) std::array<std::array<unsigned char, kControlSize>, kBatch> control{};
  std::array<Received, kBatch> out{};
  // send_batch
  std::array<Envelope, kBatch> envelopes{};
  std::array<mmsghdr, kBatch> out_msgs{};
  std::array<const Outgoing*, kBatch> out_for{};
};

UdpServerSocket::UdpServerSocket(UniqueFd fd, int family)
    : fd_(std::move(fd)), family_(family), batch_(std::make_unique<Batch>()) {}
UdpServerSocket::~UdpServerSocket() = default;
UdpServerSocket::UdpServerSocket(UdpServerSocket&&) noexcept = default;
UdpServerSocket& UdpServerSocket::operator=(UdpServerSocket&&) noexcept = default;

Result<std::span<const Received>> UdpServerSocket::receive_batch() const {
  Batch& b = *batch_;
  for (std::size_t i = 0; i < kBatch; ++i) {
    b.iov[i] = iovec{b.buffers[i].data(), b.buffers[i].size()};
    msghdr& m = b.msgs[i].msg_hdr;
    m = msghdr{};
    m.msg_name = &b.from[i];
    m.msg_namelen = sizeof b.from[i];
    m.msg_iov = &b.iov[i];
    m.msg_iovlen = 1;
    m.msg_control = b.control[i].data();
    m.msg_controllen = b.control[i].size();
    b.msgs[i].msg_len = 0;
  }
  int n;
  do {
    n = ::recvmmsg(fd_.get(), b.msgs.data(), kBatch, MSG_DONTWAIT | MSG_TRUNC, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail(ErrorDomain::Io, errno, "recvmmsg");
  std::size_t kept = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    msghdr& m = b.msgs[i].msg_hdr;
    Received& r = b.out[kept];
    r.info = Datagram{};
    // MSG_TRUNC: msg_len is the datagram's real length (RFC 6887 §7: oversize stays oversize).
    const std::size_t len = b.msgs[i].msg_len;
    r.info.truncated = (m.msg_flags & MSG_TRUNC) != 0 || len > kBatchBufferSize;
    r.info.size = std::min(len, kBatchBufferSize);
    if (!describe(m, b.from[i], r.info)) continue;
    r.bytes = std::span<const std::uint8_t>(b.buffers[i].data(), r.info.size);
    ++kept;
  }
  return std::span<const Received>(b.out.data(), kept);
}

Result<Datagram> UdpServerSocket::receive(std::span<std::uint8_t> buffer) const {
  sockaddr_storage from{};
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo))];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd_.get(), &msg, MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail(ErrorDomain::Io, errno, "recvmsg");

  Datagram d;
  // MSG_TRUNC: n is the datagram's real length, which may exceed the buffer (RFC 6887 §7: the
  // buffer holds 1101 bytes so that an oversize request is still seen as oversize).
  d.truncated = (msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(n) > buffer.size();
  d.size = std::min(static_cast<std::size_t>(n), buffer.size());
  if (!describe(msg, from, d)) return fail(ErrorDomain::Io, EPROTO, "recvmsg without pktinfo or source");
  return d;
}

// Fills `msg` (and `e`) for `data` to to:port, from `from` out of `ifindex` (RFC 6887 §8.3,
// R-HDR-1: the reply leaves from the address the request was sent to).
Result<void> UdpServerSocket::address(Envelope& e, msghdr& msg, std::span<const std::uint8_t> data,
                                      const wire::IpAddr& to, std::uint16_t port, const wire::IpAddr& from,
                                      unsigned ifindex) const {
  e = Envelope{};
  e.iov = iovec{const_cast<std::uint8_t*>(data.data()), data.size()};
  msg = msghdr{};
  msg.msg_iov = &e.iov;
  msg.msg_iovlen = 1;
  msg.msg_name = &e.name;
  msg.msg_control = e.control.data();
  if (family_ == AF_INET) {
    if (!to.is_v4()) return fail(ErrorDomain::Io, EAFNOSUPPORT, "send: IPv6 destination on IPv4 socket");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(to.v4());
    std::memcpy(&e.name, &sin, sizeof sin);
    msg.msg_namelen = sizeof sin;
    msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    info.ipi_ifindex = static_cast<int>(ifindex);
    // ipi_spec_dst: the source address of the reply (RFC 6887 §8.3, R-HDR-1).
    info.ipi_spec_dst.s_addr = from.is_v4() ? htonl(from.v4()) : htonl(INADDR_ANY);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    return {};
  }
  if (to.is_v4()) return fail(ErrorDomain::Io, EAFNOSUPPORT, "send: IPv4 destination on IPv6 socket");
  e.name.sin6_family = AF_INET6;
  e.name.sin6_port = htons(port);
  std::memcpy(&e.name.sin6_addr, to.bytes.data(), 16);
  e.name.sin6_scope_id = ifindex;  // used by the kernel only for link-local / link-scope multicast
  msg.msg_namelen = sizeof e.name;
  msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
  in6_pktinfo info{};
  info.ipi6_ifindex = ifindex;
  if (!from.is_v4()) std::memcpy(&info.ipi6_addr, from.bytes.data(), 16);
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  return {};
}

Result<void> UdpServerSocket::send(std::span<const std::uint8_t> data, const wire::IpAddr& to,
                                   std::uint16_t port, const wire::IpAddr& from, unsigned ifindex) const {
  Envelope e;
  msghdr msg{};
  if (auto r = address(e, msg, data, to, port, from, ifindex); !r) return r;
  ssize_t n;
  do {
    n = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail(ErrorDomain::Io, errno, "sendmsg");
  return {};
}

std::size_t UdpServerSocket::send_batch(std::span<const Outgoing> replies,
                                        const std::function<void(const Outgoing&, const Error&)>& failed) const {
  Batch& b = *batch_;
  std::size_t sent = 0;
  while (!replies.empty()) {
    const std::size_t n = std::min(replies.size(), kBatch);
    std::size_t ready = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const Outgoing& r = replies[i];
      auto ok = address(b.envelopes[ready], b.out_msgs[ready].msg_hdr, r.data, r.to->source, r.to->source_port,
                        r.to->destination, r.to->ifindex);
      if (!ok) {
        failed(r, ok.error());
        continue;
      }
      b.out_for[ready++] = &r;
    }
    std::size_t done = 0;
    while (done < ready) {
      int k;
      do {
        k = ::sendmmsg(fd_.get(), b.out_msgs.data() + done, static_cast<unsigned>(ready - done),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      } while (k < 0 && errno == EINTR);
      if (k < 0) {  // the first one failed: report it, go on with the rest
        failed(*b.out_for[done], Error{ErrorDomain::Io, errno, "sendmmsg"});
        ++done;
        continue;
      }
      done += static_cast<std::size_t>(k);
      sent += static_cast<std::size_t>(k);
    }
    replies = replies.subspan(n);
  }
  return sent;
}

}  // namespace pcpd::daemon
