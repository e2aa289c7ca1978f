// SPDX-License-Identifier: GPL-2.0-or-later
#include "util/result.hpp"

#include <cstdio>
#include <cstdlib>

namespace pcpd {

const char* to_string(ErrorDomain d) {
  switch (d) {
    case ErrorDomain::Netlink: return "netlink";
    case ErrorDomain::Conntrack: return "conntrack";
    case ErrorDomain::Io: return "io";
    case ErrorDomain::Config: return "config";
    case ErrorDomain::Protocol: return "protocol";
    case ErrorDomain::State: return "state";
  }
  return "?";
}

void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "pcpd: assertion failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

}  // namespace pcpd
