// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core mapping options: how FILTER (RFC 6887 §13.3) and DESCRIPTION (RFC 7220) in a request
// change a mapping. Pure functions over wire types.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/mapping.hpp"
#include "wire/messages.hpp"

namespace pcpd::core {

// R-FLT-4/5: prefix length 0 (clear), or in the internal family's range (IPv4 96..128, IPv6
// 0..128) with a remote address of the internal family. Returns MALFORMED_OPTION on the first
// bad filter.
[[nodiscard]] std::optional<wire::ResultCode> check_filters(std::span<const wire::Filter> filters,
                                                            const IpAddr& internal);

// R-FLT-2/6: the filters after processing `requested` in order on top of `current`: a prefix
// length 0 clears everything before it, others are added unless already present. nullopt when
// the result exceeds `max` (EXCESSIVE_REMOTE_PEERS, R-FLT-3).
[[nodiscard]] std::optional<std::vector<wire::Filter>> merge_filters(
    const std::vector<wire::Filter>& current, std::span<const wire::Filter> requested,
    std::uint32_t max);

// RFC 7220: processes the DESCRIPTION of a request into `m.description`. Returns the text to echo
// (a prefix of the request's own bytes), or nullopt when there was none or it was ignored
// (invalid UTF-8): then `m.description` is unchanged.
std::optional<std::string_view> apply_description(Mapping& m, const wire::Options& options,
                                                  std::uint32_t max);

}  // namespace pcpd::core
