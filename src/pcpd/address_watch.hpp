// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::AddressWatch: tells the daemon that the host's IPv4 addresses changed (rtnetlink
// RTMGRP_IPV4_IFADDR, libmnl), so the external address follows the WAN interface as DHCP or
// PPPoE moves it, without polling. The messages themselves are not parsed: any of them means
// "read the addresses again" (getifaddrs), which also covers a lost message (ENOBUFS).
#pragma once

#include <memory>

#include "util/result.hpp"

struct mnl_socket;

namespace pcpd::daemon {

class AddressWatch {
 public:
  [[nodiscard]] static Result<AddressWatch> open();
  AddressWatch(AddressWatch&&) noexcept;
  AddressWatch& operator=(AddressWatch&&) noexcept;
  ~AddressWatch();

  [[nodiscard]] int fd() const;
  // Reads every pending message; true when any was an address change or messages were lost.
  [[nodiscard]] bool drain();

 private:
  explicit AddressWatch(mnl_socket* nl) : nl_(nl) {}
  mnl_socket* nl_ = nullptr;
};

}  // namespace pcpd::daemon
