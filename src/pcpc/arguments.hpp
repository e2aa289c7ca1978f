// SPDX-License-Identifier: GPL-2.0-or-later
// pcpc argument parsing helpers (docs/interfaces.md "pcpc(1)"): pure text -> value functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wire/messages.hpp"

namespace pcpd::pcpc {

// "tcp", "udp", "sctp", "dccp", "udplite", "all" (0) or a number 0..255.
[[nodiscard]] std::optional<std::uint8_t> parse_protocol(std::string_view text);
// "tcp", "udp", ..., "all" for 0, else the decimal number.
[[nodiscard]] std::string protocol_name(std::uint8_t protocol);

struct Endpoint {
  wire::IpAddr addr{};
  std::uint16_t port = 0;
};
// "192.0.2.1:80" or "[2001:db8::1]:80". The port must be 1..65535.
[[nodiscard]] std::optional<Endpoint> parse_endpoint(std::string_view text);
// "192.0.2.1:80" or "[2001:db8::1]:80".
[[nodiscard]] std::string format_endpoint(const wire::IpAddr& addr, std::uint16_t port);

// FILTER: "PREFIX[:PORT]": "198.51.100.0/24", "198.51.100.0/24:443", "198.51.100.7",
// "2001:db8::/32", "[2001:db8::/32]:443". The prefix length of IPv4 is stored +96 (R-FLT-4);
// "/0" of either family is the "remove all filters" filter (R-FLT-2).
[[nodiscard]] std::optional<wire::Filter> parse_filter(std::string_view text);
[[nodiscard]] std::string format_filter_prefix(const wire::Filter& filter);

// 24 hex digits.
[[nodiscard]] std::optional<wire::Nonce> parse_nonce(std::string_view text);
[[nodiscard]] std::string nonce_hex(const wire::Nonce& nonce);

// A server address, optionally with a zone: "192.0.2.1", "fe80::1%lan0".
struct ServerAddress {
  wire::IpAddr addr{};
  std::string zone;  // interface name, empty if none
};
[[nodiscard]] std::optional<ServerAddress> parse_server(std::string_view text);

}  // namespace pcpd::pcpc
