// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::IngressFilter: which datagrams reach core. RFC 6887 §8.2 (R-HDR-2): only those
// that arrived on a configured internal interface, from a source inside internal_prefixes, to a
// unicast address of ours. Everything else is dropped silently and counted. Pure.
#pragma once

#include <cstdint>
#include <vector>

#include "wire/ip_addr.hpp"

namespace pcpd::daemon {

class IngressFilter {
 public:
  enum class Verdict : std::uint8_t { Accept, WrongInterface, WrongSource, NotUnicast };

  IngressFilter() = default;
  IngressFilter(std::vector<unsigned> ifindexes, std::vector<wire::Prefix> prefixes)
      : ifindexes_(std::move(ifindexes)), prefixes_(std::move(prefixes)) {}

  // `ifindex` and `destination` from IP_PKTINFO / IPV6_PKTINFO.
  [[nodiscard]] Verdict check(unsigned ifindex, const wire::IpAddr& source,
                              const wire::IpAddr& destination) const;

 private:
  std::vector<unsigned> ifindexes_;
  std::vector<wire::Prefix> prefixes_;
};

// Multicast or limited broadcast: a request sent there gets no reply (our reply source must be
// a unicast address of ours, R-HDR-1).
[[nodiscard]] bool is_multicast_or_broadcast(const wire::IpAddr& addr);

}  // namespace pcpd::daemon
