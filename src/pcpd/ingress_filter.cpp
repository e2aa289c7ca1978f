// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/ingress_filter.hpp"

#include <algorithm>

namespace pcpd::daemon {

bool is_multicast_or_broadcast(const wire::IpAddr& addr) {
  if (addr.is_v4()) return (addr.v4() & 0xf0000000u) == 0xe0000000u || addr.v4() == 0xffffffffu;
  return addr.bytes[0] == 0xff;
}

IngressFilter::Verdict IngressFilter::check(unsigned ifindex, const wire::IpAddr& source,
                                            const wire::IpAddr& destination) const {
  // RFC 6887 §8.2: only on the interface where that client's packets normally arrive.
  if (std::find(ifindexes_.begin(), ifindexes_.end(), ifindex) == ifindexes_.end())
    return Verdict::WrongInterface;
  if (std::none_of(prefixes_.begin(), prefixes_.end(),
                   [&](const wire::Prefix& p) { return p.contains(source); }))
    return Verdict::WrongSource;
  if (is_multicast_or_broadcast(destination)) return Verdict::NotUnicast;
  return Verdict::Accept;
}

}  // namespace pcpd::daemon
