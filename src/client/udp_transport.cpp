// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/udp_transport.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "wire/sockaddr.hpp"

namespace pcpd::client {

namespace {
// One more than the largest PCP message, so decode_response can see an oversize one (§8.3).
constexpr std::size_t kReceiveBuffer = wire::kMaxMessageSize + 4;

Millis monotonic_now() { return BootClock{}.now(); }
}  // namespace

Result<std::unique_ptr<UdpTransport>> UdpTransport::open(const UdpTransportConfig& config) {
  const bool v4 = config.server.is_v4();
  if (config.source && config.source->is_v4() != v4)
    return fail(ErrorDomain::Io, EAFNOSUPPORT, "source and server address families differ");
  int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(ErrorDomain::Io, errno, "socket");
  auto close_fail = [fd](const char* what) {
    int e = errno;
    ::close(fd);
    return fail(ErrorDomain::Io, e, what);
  };
  sockaddr_storage ss{};
  if (config.source || config.source_port != 0) {
    wire::IpAddr src = config.source ? *config.source : (v4 ? wire::IpAddr::v4_any() : wire::IpAddr{});
    socklen_t len = wire::to_sockaddr(src, config.source_port, config.scope_id, ss);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) < 0) return close_fail("bind");
  }
  // RFC 6887 §8.3: a connected socket only delivers datagrams from the server's address and port.
  socklen_t len = wire::to_sockaddr(config.server, config.server_port, config.scope_id, ss);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) < 0) return close_fail("connect");
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) < 0)
    return close_fail("getsockname");
  std::uint16_t local_port = 0;
  wire::IpAddr local_addr = wire::from_sockaddr(local, &local_port);
  return std::unique_ptr<UdpTransport>(new UdpTransport(fd, config.server, config.server_port, local_addr, local_port));
}

UdpTransport::~UdpTransport() { ::close(fd_); }

Result<void> UdpTransport::send(std::span<const std::uint8_t> datagram) {
  for (;;) {
    ssize_t n = ::send(fd_, datagram.data(), datagram.size(), 0);
    if (n >= 0) return {};
    // A hard ICMP error from an earlier datagram is reported here once; the retransmission timer
    // decides what happens next (RFC 7488: retry after a hard ICMP error).
    if (errno == EINTR || errno == ECONNREFUSED) continue;
    return fail(ErrorDomain::Io, errno, "send");
  }
}

Result<std::optional<Datagram>> UdpTransport::receive(Millis timeout) {
  const Millis deadline = monotonic_now() + timeout;
  for (;;) {
    Millis left = deadline - monotonic_now();
    if (left < Millis{0}) left = Millis{0};
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorDomain::Io, errno, "poll");
    }
    if (r == 0) return std::optional<Datagram>{};
    Datagram d;
    d.bytes.resize(kReceiveBuffer);
    ssize_t n = ::recv(fd_, d.bytes.data(), d.bytes.size(), MSG_DONTWAIT);
    if (n < 0) {
      // ECONNREFUSED: ICMP port unreachable for an earlier request; keep waiting, the timer
      // retransmits. EAGAIN: spurious wake-up.
      if (errno == EINTR || errno == EAGAIN || errno == ECONNREFUSED) {
        if (left == Millis{0}) return std::optional<Datagram>{};
        continue;
      }
      return fail(ErrorDomain::Io, errno, "recv");
    }
    d.bytes.resize(static_cast<std::size_t>(n));
    d.source = server_;
    d.source_port = server_port_;
    return std::optional<Datagram>{std::move(d)};
  }
}

}  // namespace pcpd::client
