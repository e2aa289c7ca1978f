// pcpd::daemon::UdpServerSocket: the PCP/NAT-PMP server socket of one address family, bound to
// the wildcard address on the server port with IP_PKTINFO / IPV6_RECVPKTINFO, so that every
// datagram tells the interface it arrived on and the address it was sent to, and every reply
// leaves from that address and interface (RFC 6887 §8.3, R-HDR-1). Also sends the multicast
// announcements, choosing interface and source the same way. Non-blocking.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
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

class UdpServerSocket {
 public:
  // family: AF_INET or AF_INET6 (IPV6_V6ONLY). Binds [::]:port / 0.0.0.0:port.
  [[nodiscard]] static Result<UdpServerSocket> open(int family, std::uint16_t port);

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] int family() const { return family_; }

  // One datagram into `buffer`. Error code EAGAIN when there is none.
  [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer) const;

  // Sends `data` to to:port, from `from` (our unicast address; unspecified = kernel's choice)
  // out of interface `ifindex` (0 = routing decides).
  [[nodiscard]] Result<void> send(std::span<const std::uint8_t> data, const wire::IpAddr& to,
                                  std::uint16_t port, const wire::IpAddr& from, unsigned ifindex) const;

 private:
  UdpServerSocket(UniqueFd fd, int family) : fd_(std::move(fd)), family_(family) {}
  UniqueFd fd_;
  int family_ = AF_INET;
};

}  // namespace pcpd::daemon
