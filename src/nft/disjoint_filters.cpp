// SPDX-License-Identifier: GPL-2.0-or-later
#include "nft/disjoint_filters.hpp"

#include <algorithm>
#include <map>

namespace pcpd::nft {
namespace {

struct Pfx {
  wire::IpAddr addr;  // masked
  std::uint8_t len;
};

bool bit(const wire::IpAddr& a, unsigned i) {
  return (a.bytes[i / 8] >> (7 - i % 8)) & 1u;
}

void flip(wire::IpAddr& a, unsigned i) {
  a.bytes[i / 8] = static_cast<std::uint8_t>(a.bytes[i / 8] ^ (0x80u >> (i % 8)));
}

// outer contains inner (or equals it)
bool contains(const Pfx& outer, const Pfx& inner) {
  return outer.len <= inner.len && prefix_first(inner.addr, outer.len) == outer.addr;
}

// outer \ inner as disjoint prefixes. Precondition: outer strictly contains inner.
void subtract(const Pfx& outer, const Pfx& inner, std::vector<Pfx>& out) {
  for (unsigned l = outer.len + 1u; l <= inner.len; ++l) {
    wire::IpAddr sib = prefix_first(inner.addr, static_cast<std::uint8_t>(l));
    flip(sib, l - 1);
    out.push_back({sib, static_cast<std::uint8_t>(l)});
  }
}

// Drops prefixes contained in another one of the list (and duplicates).
std::vector<Pfx> outermost(std::vector<Pfx> v) {
  std::sort(v.begin(), v.end(), [](const Pfx& a, const Pfx& b) {
    return a.len != b.len ? a.len < b.len : a.addr < b.addr;
  });
  std::vector<Pfx> keep;
  for (const auto& p : v) {
    bool covered = std::any_of(keep.begin(), keep.end(), [&](const Pfx& k) { return contains(k, p); });
    if (!covered) keep.push_back(p);
  }
  return keep;
}

}  // namespace

wire::IpAddr prefix_first(const wire::IpAddr& a, std::uint8_t length) {
  wire::IpAddr r = a;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned lo = i * 8;
    if (length >= lo + 8) continue;
    unsigned keep = length > lo ? length - lo : 0;
    r.bytes[i] = static_cast<std::uint8_t>(r.bytes[i] & (0xff00u >> keep));
  }
  return r;
}

wire::IpAddr prefix_last(const wire::IpAddr& a, std::uint8_t length) {
  wire::IpAddr r = a;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned lo = i * 8;
    if (length >= lo + 8) continue;
    unsigned keep = length > lo ? length - lo : 0;
    r.bytes[i] = static_cast<std::uint8_t>(r.bytes[i] | (0xffu >> keep));
  }
  return r;
}

std::optional<std::uint8_t> range_prefix(const wire::IpAddr& first, const wire::IpAddr& last) {
  unsigned len = 0;
  while (len < 128 && bit(first, len) == bit(last, len)) ++len;
  for (unsigned i = len; i < 128; ++i)
    if (bit(first, i) || !bit(last, i)) return std::nullopt;
  return static_cast<std::uint8_t>(len);
}

std::vector<wire::Filter> disjoint_filters(const std::vector<wire::Filter>& filters, bool v4) {
  const std::uint8_t min_len = v4 ? 96 : 0;
  std::vector<Pfx> all_ports;
  std::map<std::uint16_t, std::vector<Pfx>> by_port;
  for (const auto& f : filters) {
    auto len = std::clamp<std::uint8_t>(f.prefix_length, min_len, 128);
    Pfx p{prefix_first(f.remote_addr, len), len};
    if (f.remote_port == 0)
      all_ports.push_back(p);
    else
      by_port[f.remote_port].push_back(p);
  }
  all_ports = outermost(std::move(all_ports));

  std::vector<wire::Filter> out;
  for (const auto& p : all_ports) out.push_back({p.len, 0, p.addr});
  for (auto& [port, list] : by_port) {
    std::vector<Pfx> pieces;
    for (const auto& p : outermost(std::move(list))) {
      if (std::any_of(all_ports.begin(), all_ports.end(), [&](const Pfx& a) { return contains(a, p); }))
        continue;
      std::vector<Pfx> cur{p};
      for (const auto& a : all_ports) {
        std::vector<Pfx> next;
        for (const auto& c : cur) {
          if (contains(a, c)) continue;  // covered by an all-ports filter
          if (contains(c, a))
            subtract(c, a, next);
          else
            next.push_back(c);  // disjoint
        }
        cur = std::move(next);
      }
      pieces.insert(pieces.end(), cur.begin(), cur.end());
    }
    for (const auto& p : pieces) out.push_back({p.len, port, p.addr});
  }
  std::sort(out.begin(), out.end(), [](const wire::Filter& a, const wire::Filter& b) {
    if (a.remote_addr != b.remote_addr) return a.remote_addr < b.remote_addr;
    if (a.prefix_length != b.prefix_length) return a.prefix_length < b.prefix_length;
    return a.remote_port < b.remote_port;
  });
  return out;
}

}  // namespace pcpd::nft
