// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpd/address_watch.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <utility>

namespace pcpd::daemon {

Result<AddressWatch> AddressWatch::open() {
  mnl_socket* nl = ::mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (nl == nullptr) return fail(ErrorDomain::Io, errno, "rtnetlink socket");
  if (::mnl_socket_bind(nl, RTMGRP_IPV4_IFADDR, MNL_SOCKET_AUTOPID) != 0) {
    const int e = errno;
    ::mnl_socket_close(nl);
    return fail(ErrorDomain::Io, e, "rtnetlink bind RTMGRP_IPV4_IFADDR");
  }
  return AddressWatch(nl);
}

AddressWatch::AddressWatch(AddressWatch&& o) noexcept : nl_(std::exchange(o.nl_, nullptr)) {}

AddressWatch& AddressWatch::operator=(AddressWatch&& o) noexcept {
  if (this != &o) {
    if (nl_ != nullptr) ::mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
  }
  return *this;
}

AddressWatch::~AddressWatch() {
  if (nl_ != nullptr) ::mnl_socket_close(nl_);
}

int AddressWatch::fd() const { return ::mnl_socket_get_fd(nl_); }

bool AddressWatch::drain() {
  std::array<char, 8192> buf{};
  bool changed = false;
  // Bounded: a socket buffer holds at most a few hundred such messages.
  for (int i = 0; i < 1024; ++i) {
    const ssize_t n = ::mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == ENOBUFS) {
        changed = true;  // messages were lost: read the addresses again
        continue;
      }
      break;  // EAGAIN: nothing more
    }
    int len = static_cast<int>(n);
    for (const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); ::mnl_nlmsg_ok(nlh, len);
         nlh = ::mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR) changed = true;
    }
  }
  return changed;
}

}  // namespace pcpd::daemon
