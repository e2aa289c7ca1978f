// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::disjoint_filters: turns a mapping's FILTER list (RFC 6887 §13.3) into an equivalent
// list of non-overlapping (prefix, port) filters, because the kernel's concatenated interval sets
// (pipapo) refuse an element whose start or end lies inside another element. Pure; wire types only.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "wire/ip_addr.hpp"
#include "wire/messages.hpp"

namespace pcpd::nft {

// Returns filters that allow exactly the same (remote address, remote port) pairs as `filters`,
// pairwise disjoint, each address masked to its prefix, sorted (address, length, port).
// Idempotent: disjoint_filters(disjoint_filters(x)) == disjoint_filters(x).
// Precondition: every filter has the family of `v4` (IPv4-mapped prefixes have length >= 96).
std::vector<wire::Filter> disjoint_filters(const std::vector<wire::Filter>& filters, bool v4);

// The address range [first, last] of a filter's prefix (over the 128-bit form).
wire::IpAddr prefix_first(const wire::IpAddr& a, std::uint8_t length);
wire::IpAddr prefix_last(const wire::IpAddr& a, std::uint8_t length);
// The prefix length whose range is exactly [first, last], or nullopt when it is not a prefix.
std::optional<std::uint8_t> range_prefix(const wire::IpAddr& first, const wire::IpAddr& last);

}  // namespace pcpd::nft
