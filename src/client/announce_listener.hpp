// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::AnnounceListener: receives unsolicited ANNOUNCEs multicast by the server to
// 224.0.0.1:5350 / [ff02::1]:5350 (RFC 6887 §14.1.3) and accepts only those whose source is the
// server (R-SEC-5). The pure check is accept_announce(); the socket is the listener.
#pragma once

#include <memory>
#include <optional>

#include "client/client.hpp"
#include "wire/messages.hpp"

namespace pcpd::client {

// An unsolicited ANNOUNCE is a response (R = 1) with opcode ANNOUNCE from the server's address
// (RFC 6887 §14.1.3, §8.3). Returns its epoch, or nullopt if the datagram must be ignored.
[[nodiscard]] std::optional<std::uint32_t> accept_announce(std::span<const std::uint8_t> datagram,
                                                           const wire::IpAddr& source,
                                                           const wire::IpAddr& server,
                                                           const wire::OptionCodes& codes = {});

// The same checks, keeping the whole announcement (epoch, source, CAPABILITY) stamped `now`.
// `server` nullopt accepts any source (pcpc listen: every server on the link, R-CAP-2).
[[nodiscard]] std::optional<Announcement> decode_announce(std::span<const std::uint8_t> datagram,
                                                          const wire::IpAddr& source,
                                                          const std::optional<wire::IpAddr>& server,
                                                          Millis now,
                                                          const wire::OptionCodes& codes = {});

class AnnounceListener {
 public:
  // Binds UDP port 5350 (SO_REUSEADDR, so several clients on one host all receive the multicast)
  // in the server's family and joins 224.0.0.1 or ff02::1 on `ifindex` (0: the kernel's choice).
  // A failed join is not fatal (hosts are in the all-nodes groups anyway, and unicast ANNOUNCEs to
  // 5350 still arrive): it is reported by join_error().
  [[nodiscard]] static Result<std::unique_ptr<AnnounceListener>> open(
      const wire::IpAddr& server, unsigned ifindex, std::uint16_t port = wire::kClientPort);
  // Like open(), for every server: accepts ANNOUNCEs from any source, in IPv4 (224.0.0.1) or
  // IPv6 (ff02::1). For listeners that keep per-server state themselves (pcpc listen).
  [[nodiscard]] static Result<std::unique_ptr<AnnounceListener>> open_any(
      bool v6, unsigned ifindex, std::uint16_t port = wire::kClientPort);
  ~AnnounceListener();
  AnnounceListener(const AnnounceListener&) = delete;
  AnnounceListener& operator=(const AnnounceListener&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // errno of the failed multicast join, 0 if it worked.
  [[nodiscard]] int join_error() const { return join_error_; }
  // Reads every queued datagram without waiting; returns the accepted ANNOUNCEs, stamped `now`.
  [[nodiscard]] std::vector<Announcement> drain(Millis now, const wire::OptionCodes& codes = {});

 private:
  AnnounceListener(int fd, std::optional<wire::IpAddr> server, int join_error)
      : fd_(fd), server_(server), join_error_(join_error) {}
  [[nodiscard]] static Result<std::unique_ptr<AnnounceListener>> open_family(
      bool v4, std::optional<wire::IpAddr> server, unsigned ifindex, std::uint16_t port);
  int fd_;
  std::optional<wire::IpAddr> server_;  // nullopt: any
  int join_error_;
};

}  // namespace pcpd::client
