// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::UdpTransport: a UDP socket connected to the PCP server (port 5351), so the kernel
// delivers only datagrams whose source is the server's address and port (RFC 6887 §8.3).
#pragma once

#include <memory>
#include <string>

#include "client/transport.hpp"
#include "wire/messages.hpp"

namespace pcpd::client {

struct UdpTransportConfig {
  wire::IpAddr server{};
  std::uint16_t server_port = wire::kServerPort;
  std::optional<wire::IpAddr> source;  // bind to this local address (the mapping's internal address)
  std::uint16_t source_port = 0;       // 0: ephemeral
  unsigned scope_id = 0;               // interface index for an IPv6 link-local server
};

class UdpTransport final : public Transport {
 public:
  // Opens, binds (if asked) and connects the socket. Errors: ErrorDomain::Io with errno.
  [[nodiscard]] static Result<std::unique_ptr<UdpTransport>> open(const UdpTransportConfig& config);
  ~UdpTransport() override;
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override;
  [[nodiscard]] Result<std::optional<Datagram>> receive(Millis timeout) override;
  [[nodiscard]] wire::IpAddr local_address() const override { return local_; }
  [[nodiscard]] std::uint16_t local_port() const override { return local_port_; }
  [[nodiscard]] wire::IpAddr server_address() const override { return server_; }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  UdpTransport(int fd, wire::IpAddr server, std::uint16_t server_port, wire::IpAddr local,
               std::uint16_t local_port)
      : fd_(fd), server_(server), server_port_(server_port), local_(local), local_port_(local_port) {}
  int fd_;
  wire::IpAddr server_;
  std::uint16_t server_port_;
  wire::IpAddr local_;
  std::uint16_t local_port_;
};

}  // namespace pcpd::client
