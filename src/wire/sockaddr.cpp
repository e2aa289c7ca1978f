// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/sockaddr.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace pcpd::wire {

socklen_t to_sockaddr(const IpAddr& addr, std::uint16_t port, unsigned scope_id,
                      sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (addr.is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, addr.bytes.data() + 12, 4);
    std::memcpy(&ss, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_scope_id = scope_id;
  std::memcpy(&sin6.sin6_addr, addr.bytes.data(), 16);
  std::memcpy(&ss, &sin6, sizeof sin6);
  return sizeof sin6;
}

IpAddr from_sockaddr(const sockaddr_storage& ss, std::uint16_t* port) {
  IpAddr a;
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, &ss, sizeof sin);
    a = IpAddr::from_v4(ntohl(sin.sin_addr.s_addr));
    if (port) *port = ntohs(sin.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &ss, sizeof sin6);
    std::memcpy(a.bytes.data(), &sin6.sin6_addr, 16);
    if (port) *port = ntohs(sin6.sin6_port);
  }
  return a;
}

}  // namespace pcpd::wire
