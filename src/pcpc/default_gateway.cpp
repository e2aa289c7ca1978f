// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpc/default_gateway.hpp"

#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

namespace pcpd::pcpc {

namespace {

constexpr unsigned kRtfUp = 0x1;
constexpr unsigned kRtfGateway = 0x2;
constexpr unsigned kRtfReject = 0x200;

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <typename T>
std::optional<T> hex(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<wire::IpAddr> hex_v6(std::string_view s) {
  if (s.size() != 32) return std::nullopt;
  wire::IpAddr a;
  for (std::size_t i = 0; i < 16; ++i) {
    auto b = hex<unsigned>(s.substr(2 * i, 2));
    if (!b) return std::nullopt;
    a.bytes[i] = static_cast<std::uint8_t>(*b);
  }
  return a;
}

template <typename F>
void each_line(std::string_view table, F f) {
  std::size_t pos = 0;
  while (pos < table.size()) {
    auto nl = table.find('\n', pos);
    if (nl == std::string_view::npos) nl = table.size();
    f(table.substr(pos, nl - pos));
    pos = nl + 1;
  }
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<Gateway> parse_ipv4_default_route(std::string_view table) {
  std::optional<Gateway> best;
  std::uint32_t best_metric = 0;
  // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT; the addresses are
  // the in-memory (network order) words printed as host-order hex.
  each_line(table, [&](std::string_view line) {
    auto f = fields(line);
    if (f.size() < 8 || f[0] == "Iface") return;
    auto dst = hex<std::uint32_t>(f[1]), gw = hex<std::uint32_t>(f[2]), mask = hex<std::uint32_t>(f[7]);
    auto flags = hex<unsigned>(f[3]);
    std::uint32_t metric = 0;
    std::from_chars(f[6].data(), f[6].data() + f[6].size(), metric);
    if (!dst || !gw || !mask || !flags || *dst != 0 || *mask != 0) return;
    if ((*flags & kRtfUp) == 0 || (*flags & kRtfGateway) == 0 || *gw == 0) return;
    // Little-endian host: the first address byte is the low byte of the printed word.
    const std::uint32_t v = *gw;
    const std::uint32_t host_order = ((v & 0xff) << 24) | ((v >> 8 & 0xff) << 16) |
                                     ((v >> 16 & 0xff) << 8) | (v >> 24 & 0xff);
    if (!best || metric < best_metric) {
      best = Gateway{wire::IpAddr::from_v4(host_order), std::string(f[0])};
      best_metric = metric;
    }
  });
  return best;
}

std::optional<Gateway> parse_ipv6_default_route(std::string_view table) {
  std::optional<Gateway> best;
  std::uint32_t best_metric = 0;
  // dst dst_len src src_len next_hop metric refcnt use flags iface
  each_line(table, [&](std::string_view line) {
    auto f = fields(line);
    if (f.size() < 10) return;
    auto dst = hex_v6(f[0]), next_hop = hex_v6(f[4]);
    auto dst_len = hex<unsigned>(f[1]), metric = hex<std::uint32_t>(f[5]), flags = hex<unsigned>(f[8]);
    if (!dst || !next_hop || !dst_len || !metric || !flags) return;
    if (*dst_len != 0 || !dst->is_unspecified() || next_hop->is_unspecified()) return;
    if ((*flags & kRtfUp) == 0 || (*flags & kRtfReject) != 0) return;
    if (!best || *metric < best_metric) {
      best = Gateway{*next_hop, std::string(f[9])};
      best_metric = *metric;
    }
  });
  return best;
}

std::optional<Gateway> default_gateway(std::optional<bool> want_v6) {
  if (!want_v6 || !*want_v6) {
    if (auto g = parse_ipv4_default_route(read_file("/proc/net/route"))) return g;
    if (want_v6) return std::nullopt;
  }
  return parse_ipv6_default_route(read_file("/proc/net/ipv6_route"));
}

}  // namespace pcpd::pcpc
