// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::daemon::UdpServerSocket: the PCP/NAT-PMP server socket of one address family, bound to
// the wildcard address on the server port with IP_PKTINFO / IPV6_RECVPKTINFO, so that every
// datagram tells the interface it arrived on and the address it was sent to, and every reply
// leaves from that address and interface (RFC 6887 §8.3, R-HDR-1). Also sends the multicast
// announcements, choosing interface and source the same way. Non-blocking.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "util/result.hpp"
#include "util/unique_fd.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::daemon {

struct Datagram {
  std::size_t size = 0;       // bytes stored in the buffer (<= buffer size)
  bool truncated = false;     // the datagram was longer than the buffer
  wire::IpAddr source{};      // mapped form for IPv4
  std::uint16_t source_port = 0;
  wire::IpAddr destination{};  // the address it was sent to (IP_PKTINFO ipi_addr)
  unsigned ifindex = 0;        // the interface it arrived on
};

// One datagram of a batch: where it came from and its bytes (at most kBatchBufferSize; a longer
// one is `truncated`, with size = kBatchBufferSize so that it is still seen as oversize).
struct Received {
  Datagram info;
  std::span<const std::uint8_t> bytes;
};

// One reply of a batch: its bytes, and the request it answers (sent to the request's source
// address and port, from the address the request was sent to, out of its interface).
struct Outgoing {
  std::span<const std::uint8_t> data;
  const Datagram* to = nullptr;
};

class UdpServerSocket {
 public:
  // recvmmsg batch: datagrams per call, and bytes kept of each (RFC 6887 §7: 1100 + 1, so that an
  // oversize request is still seen as one).
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kBatchBufferSize = 1101;

  // family: AF_INET or AF_INET6 (IPV6_V6ONLY). Binds [::]:port / 0.0.0.0:port.
  [[nodiscard]] static Result<UdpServerSocket> open(int family, std::uint16_t port);
  ~UdpServerSocket();
  UdpServerSocket(UdpServerSocket&&) noexcept;
  UdpServerSocket& operator=(UdpServerSocket&&) noexcept;

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] int family() const { return family_; }

  // One datagram into `buffer`. Error code EAGAIN when there is none.
  [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer) const;

  // Up to kBatch datagrams with one recvmmsg call (a flood costs one system call per
  // batch), into buffers this socket owns; valid until the next call. Error code EAGAIN when
  // there is none. A datagram without its pktinfo (cannot happen with the options set) is left
  // out.
  [[nodiscard]] Result<std::span<const Received>> receive_batch() const;

  // Sends `data` to to:port, from `from` (our unicast address; unspecified = kernel's choice)
  // out of interface `ifindex` (0 = routing decides).
  [[nodiscard]] Result<void> send(std::span<const std::uint8_t> data, const wire::IpAddr& to,
                                  std::uint16_t port, const wire::IpAddr& from, unsigned ifindex) const;
  // The replies of a receive batch with one sendmmsg per kBatch (a system call per reply
  // was a third of pcpd's CPU once the kernel changes were batched). Each one that cannot be sent
  // is passed to `failed`, and the others still go. Returns how many were sent.
  std::size_t send_batch(std::span<const Outgoing> replies,
                         const std::function<void(const Outgoing&, const Error&)>& failed) const;

 private:
  struct Batch;
  struct Envelope;
  [[nodiscard]] Result<void> address(Envelope& e, msghdr& msg, std::span<const std::uint8_t> data,
                                     const wire::IpAddr& to, std::uint16_t port, const wire::IpAddr& from,
                                     unsigned ifindex) const;
  UdpServerSocket(UniqueFd fd, int family);
  UniqueFd fd_;
  int family_ = AF_INET;
  std::unique_ptr<Batch> batch_;  // recvmmsg buffers, allocated once (owned, not shared)
};

}  // namespace pcpd::daemon
