// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire::IpAddr: a 128-bit address as it travels in PCP (IPv4 as ::ffff:a.b.c.d, RFC 6887 §5).
// Owns: IpAddr, Prefix. Standard library only; the text functions live in ip_addr.cpp.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace pcpd::wire {

struct IpAddr {
  std::array<std::uint8_t, 16> bytes{};

  // RFC 6887 §5: IPv4-mapped means all of the first 96 bits are 0:0:0:0:0:ffff (compare all 96).
  [[nodiscard]] constexpr bool is_v4() const {
    for (int i = 0; i < 10; ++i)
      if (bytes[static_cast<std::size_t>(i)] != 0) return false;
    return bytes[10] == 0xff && bytes[11] == 0xff;
  }
  // "No address": :: for IPv6, ::ffff:0.0.0.0 for IPv4 (RFC 6887 §5, §11.1).
  [[nodiscard]] constexpr bool is_unspecified() const {
    if (is_v4()) return bytes[12] == 0 && bytes[13] == 0 && bytes[14] == 0 && bytes[15] == 0;
    for (auto b : bytes)
      if (b != 0) return false;
    return true;
  }
  // Host-order IPv4 value; only meaningful when is_v4().
  [[nodiscard]] constexpr std::uint32_t v4() const {
    return (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
           (std::uint32_t{bytes[14]} << 8) | std::uint32_t{bytes[15]};
  }
  static constexpr IpAddr from_v4(std::uint32_t host_order) {
    IpAddr a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes[13] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes[14] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes[15] = static_cast<std::uint8_t>(host_order);
    return a;
  }
  static constexpr IpAddr v4_any() { return from_v4(0); }
  static IpAddr from_v6(const std::uint8_t (&b)[16]) {
    IpAddr a;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
  }

  // Text form: dotted quad for IPv4-mapped, RFC 5952 for IPv6.
  [[nodiscard]] std::string to_string() const;
  // Accepts "192.0.2.1", "2001:db8::1" and "::ffff:192.0.2.1"; nullopt on anything else.
  static std::optional<IpAddr> parse(std::string_view text);

  friend constexpr auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// An address prefix. For IPv4 the length counts bits of the mapped 128-bit form (96..128), as
// FILTER does (RFC 6887 §13.3); Prefix::parse takes the familiar "192.0.2.0/24" and adds 96.
struct Prefix {
  IpAddr addr;
  std::uint8_t length = 0;  // 0..128 over the 128-bit form

  [[nodiscard]] bool contains(const IpAddr& a) const;
  [[nodiscard]] std::string to_string() const;  // "192.0.2.0/24", "2001:db8::/32"
  static std::optional<Prefix> parse(std::string_view text);
  friend constexpr bool operator==(const Prefix&, const Prefix&) = default;
};

// "192.0.2.10:22" or "[2001:db8::10]:22" (IPv6 only in brackets: "2001:db8::1:22" would be
// ambiguous); port 0-65535. nullopt on anything else.
struct Endpoint {
  IpAddr addr;
  std::uint16_t port = 0;
};
std::optional<Endpoint> parse_endpoint(std::string_view text);

struct IpAddrHash {
  std::size_t operator()(const IpAddr& a) const noexcept {
    std::uint64_t lo, hi;
    std::memcpy(&hi, a.bytes.data(), 8);
    std::memcpy(&lo, a.bytes.data() + 8, 8);
    return static_cast<std::size_t>((hi * 0x9E3779B97F4A7C15ull) ^ (lo + 0x632BE59BD9B4E019ull + (hi << 6)));
  }
};

}  // namespace pcpd::wire
