// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::Transport: how the client library talks to one PCP server. UdpTransport is the
// real one (udp_transport.hpp); tests use a scripted fake. Owns no protocol logic.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "client/clock.hpp"
#include "util/result.hpp"
#include "wire/ip_addr.hpp"

namespace pcpd::client {

struct Datagram {
  std::vector<std::uint8_t> bytes;
  wire::IpAddr source{};
  std::uint16_t source_port = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one request datagram to the server.
  [[nodiscard]] virtual Result<void> send(std::span<const std::uint8_t> datagram) = 0;
  // Waits at most `timeout` for a datagram from the server (RFC 6887 §8.3: only the server's
  // answers are accepted). nullopt: nothing arrived in time. A timeout of 0 only polls.
  [[nodiscard]] virtual Result<std::optional<Datagram>> receive(Millis timeout) = 0;
  // The address the requests leave from: the PCP Client's IP Address field (RFC 6887 §7.1).
  [[nodiscard]] virtual wire::IpAddr local_address() const = 0;
  [[nodiscard]] virtual std::uint16_t local_port() const = 0;
  [[nodiscard]] virtual wire::IpAddr server_address() const = 0;
};

}  // namespace pcpd::client
