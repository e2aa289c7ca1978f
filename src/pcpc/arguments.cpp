// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpc/arguments.hpp"

#include <array>
#include <charconv>

#include "wire/protocol_names.hpp"

namespace pcpd::pcpc {

namespace {


template <typename T>
std::optional<T> parse_number(std::string_view text, T max) {
  unsigned long v = 0;
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || v > max) return std::nullopt;
  return static_cast<T>(v);
}

std::optional<std::uint16_t> parse_port(std::string_view text, bool allow_zero) {
  auto p = parse_number<std::uint16_t>(text, 65535);
  if (!p || (!allow_zero && *p == 0)) return std::nullopt;
  return p;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::uint8_t> parse_protocol(std::string_view text) { return wire::parse_protocol(text); }

std::string protocol_name(std::uint8_t protocol) { return wire::protocol_name(protocol); }

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    auto a = wire::IpAddr::parse(host);
    if (!a || a->is_v4()) return std::nullopt;  // brackets are for IPv6
    auto p = parse_port(port, false);
    if (!p) return std::nullopt;
    return Endpoint{*a, *p};
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
  auto a = wire::IpAddr::parse(text.substr(0, colon));
  auto p = parse_port(text.substr(colon + 1), false);
  if (!a || !a->is_v4() || !p) return std::nullopt;
  return Endpoint{*a, *p};
}

std::string format_endpoint(const wire::IpAddr& addr, std::uint16_t port) {
  if (addr.is_v4()) return addr.to_string() + ":" + std::to_string(port);
  return "[" + addr.to_string() + "]:" + std::to_string(port);
}

std::optional<wire::Filter> parse_filter(std::string_view text) {
  std::string_view prefix = text, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    prefix = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto colon = text.find(':', slash);
    if (colon != std::string_view::npos) {
      prefix = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
  } else if (auto colon = text.find(':');
             colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    prefix = text.substr(0, colon);  // "a.b.c.d:port" (one colon: not IPv6)
    port = text.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  }
  wire::Filter f;
  if (!port.empty()) {
    auto p = parse_port(port, true);
    if (!p) return std::nullopt;
    f.remote_port = *p;
  }
  auto slash = prefix.find('/');
  auto addr = wire::IpAddr::parse(prefix.substr(0, slash));
  if (!addr) return std::nullopt;
  f.remote_addr = *addr;
  if (slash == std::string_view::npos) {
    f.prefix_length = 128;  // a single address (IPv4: 32 + 96)
  } else {
    auto len = parse_number<std::uint8_t>(prefix.substr(slash + 1), addr->is_v4() ? 32 : 128);
    if (!len) return std::nullopt;
    // R-FLT-4: IPv4 lengths count over the mapped 128-bit form; 0 stays 0 (R-FLT-2).
    f.prefix_length = (addr->is_v4() && *len != 0) ? static_cast<std::uint8_t>(*len + 96) : *len;
  }
  return f;
}

std::string format_filter_prefix(const wire::Filter& filter) {
  unsigned len = filter.prefix_length;
  if (filter.remote_addr.is_v4() && len >= 96) len -= 96;
  return filter.remote_addr.to_string() + "/" + std::to_string(len);
}

std::optional<wire::Nonce> parse_nonce(std::string_view text) {
  wire::Nonce n{};
  if (text.size() != n.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < n.size(); ++i) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    n[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return n;
}

std::string nonce_hex(const wire::Nonce& nonce) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (auto b : nonce) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

std::optional<ServerAddress> parse_server(std::string_view text) {
  ServerAddress s;
  auto pct = text.find('%');
  if (pct != std::string_view::npos) {
    s.zone = std::string(text.substr(pct + 1));
    if (s.zone.empty()) return std::nullopt;
    text = text.substr(0, pct);
  }
  auto a = wire::IpAddr::parse(text);
  if (!a || (a->is_v4() && !s.zone.empty())) return std::nullopt;
  s.addr = *a;
  return s;
}

}  // namespace pcpd::pcpc
