// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/ip_addr.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace pcpd::wire {

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  text.copy(buf, text.size());
  IpAddr a;
  if (inet_pton(AF_INET, buf, a.bytes.data() + 12) == 1) {
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) return a;
  return std::nullopt;
}

bool Prefix::contains(const IpAddr& a) const {
  unsigned full = length / 8u, rest = length % 8u;
  for (unsigned i = 0; i < full; ++i)
    if (a.bytes[i] != addr.bytes[i]) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xffu << (8u - rest));
  return (a.bytes[full] & mask) == (addr.bytes[full] & mask);
}

std::string Prefix::to_string() const {
  unsigned len = addr.is_v4() && length >= 96 ? length - 96u : length;
  return addr.to_string() + "/" + std::to_string(len);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;  // brackets: IPv6 only
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto addr = IpAddr::parse(host);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (!addr || port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535)
    return std::nullopt;
  return Endpoint{*addr, static_cast<std::uint16_t>(p)};
}

std::optional<Prefix> Prefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned max = addr->is_v4() ? 32u : 128u;
  unsigned len = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc{} || p != digits.data() + digits.size() || digits.empty() || len > max)
      return std::nullopt;
  }
  Prefix out{*addr, static_cast<std::uint8_t>(addr->is_v4() ? len + 96u : len)};
  // Canonicalise: clear host bits.
  for (unsigned bit = out.length; bit < 128; ++bit)
    out.addr.bytes[bit / 8] = static_cast<std::uint8_t>(out.addr.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  return out;
}

}  // namespace pcpd::wire
