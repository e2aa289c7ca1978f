// SPDX-License-Identifier: GPL-2.0-or-later
#include "client/announce_listener.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "wire/sockaddr.hpp"
#include "wire/codec.hpp"

namespace pcpd::client {

std::optional<std::uint32_t> accept_announce(std::span<const std::uint8_t> datagram,
                                             const wire::IpAddr& source,
                                             const wire::IpAddr& server,
                                             const wire::OptionCodes& codes) {
  // R-SEC-5 / RFC 6887 §14.1.3: only the server we use may make us re-create our mappings.
  if (source != server) return std::nullopt;
  auto decoded = wire::decode_response(datagram, codes);  // RFC 6887 §8.3 checks, R bit
  const auto* response = std::get_if<wire::Response>(&decoded);
  if (!response || response->opcode != wire::Opcode::Announce) return std::nullopt;
  return response->epoch;
}

std::optional<Announcement> decode_announce(std::span<const std::uint8_t> datagram,
                                            const wire::IpAddr& source,
                                            const std::optional<wire::IpAddr>& server, Millis now,
                                            const wire::OptionCodes& codes) {
  // R-SEC-5 / RFC 6887 §14.1.3: only the server we use, when there is one.
  if (server && source != *server) return std::nullopt;
  auto decoded = wire::decode_response(datagram, codes);  // RFC 6887 §8.3 checks, R bit
  const auto* response = std::get_if<wire::Response>(&decoded);
  if (!response || response->opcode != wire::Opcode::Announce) return std::nullopt;
  return Announcement{response->epoch, now, source, capability_of(*response)};
}

Result<std::unique_ptr<AnnounceListener>> AnnounceListener::open(const wire::IpAddr& server,
                                                                  unsigned ifindex,
                                                                  std::uint16_t port) {
  return open_family(server.is_v4(), server, ifindex, port);
}

Result<std::unique_ptr<AnnounceListener>> AnnounceListener::open_any(bool v6, unsigned ifindex,
                                                                      std::uint16_t port) {
  return open_family(!v6, std::nullopt, ifindex, port);
}

Result<std::unique_ptr<AnnounceListener>> AnnounceListener::open_family(
    bool v4, std::optional<wire::IpAddr> server, unsigned ifindex, std::uint16_t port) {
  int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(ErrorDomain::Io, errno, "socket");
  auto close_fail = [fd](const char* what) {
    int e = errno;
    ::close(fd);
    return fail(ErrorDomain::Io, e, what);
  };
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return close_fail("SO_REUSEADDR");
  if (!v4 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    return close_fail("IPV6_V6ONLY");
  sockaddr_storage ss{};
  socklen_t len = wire::to_sockaddr(v4 ? wire::IpAddr::v4_any() : wire::IpAddr{}, port, 0, ss);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) < 0) return close_fail("bind 5350");
  // RFC 6887 §14.1.3: 224.0.0.1 / ff02::1. Every host is already in the all-nodes groups, so
  // EADDRINUSE from the join is fine, and any other failure is only reported.
  int join_error = 0;
  if (v4) {
    ip_mreqn m{};
    m.imr_multiaddr.s_addr = htonl(INADDR_ALLHOSTS_GROUP);
    m.imr_ifindex = static_cast<int>(ifindex);
    if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) < 0 && errno != EADDRINUSE)
      join_error = errno;
  } else {
    ipv6_mreq m{};
    inet_pton(AF_INET6, "ff02::1", &m.ipv6mr_multiaddr);
    m.ipv6mr_interface = ifindex;
    if (::setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) < 0 && errno != EADDRINUSE)
      join_error = errno;
  }
  return std::unique_ptr<AnnounceListener>(new AnnounceListener(fd, server, join_error));
}

AnnounceListener::~AnnounceListener() { ::close(fd_); }

std::vector<Announcement> AnnounceListener::drain(Millis now, const wire::OptionCodes& codes) {
  std::vector<Announcement> out;
  std::array<std::uint8_t, wire::kMaxMessageSize + 4> buf{};
  for (int i = 0; i < 64; ++i) {  // bounded: at most 64 datagrams per wake-up
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                           &from_len);
    if (n < 0) break;  // EAGAIN: nothing more
    const wire::IpAddr source = wire::from_sockaddr(from, nullptr);
    if (auto a = decode_announce(std::span(buf.data(), static_cast<std::size_t>(n)), source,
                                 server_, now, codes))
      out.push_back(std::move(*a));
  }
  return out;
}

}  // namespace pcpd::client
