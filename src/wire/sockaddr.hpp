// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire socket-address conversions: IpAddr (the 128-bit form, IPv4 mapped, RFC 6887 §5)
// to and from sockaddr, for every socket of the daemon and the client library. Pure.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

#include "wire/ip_addr.hpp"

namespace pcpd::wire {

// Fills `ss` for `addr`:`port` in the address's own family (IPv4-mapped -> AF_INET).
socklen_t to_sockaddr(const IpAddr& addr, std::uint16_t port, unsigned scope_id,
                      sockaddr_storage& ss);
// Reads an AF_INET / AF_INET6 address back into the 128-bit form (IPv4 mapped, RFC 6887 §5);
// another family gives the all-zero address.
IpAddr from_sockaddr(const sockaddr_storage& ss, std::uint16_t* port);

}  // namespace pcpd::wire
