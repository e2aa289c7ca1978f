// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/mapping_options.hpp"

#include <algorithm>

#include "core/description.hpp"

namespace pcpd::core {

std::optional<wire::ResultCode> check_filters(std::span<const wire::Filter> filters,
                                              const IpAddr& internal) {
  for (const wire::Filter& f : filters) {
    if (f.prefix_length == 0) continue;  // RFC 6887 §13.3: "no filter", either family
    // R-FLT-5 (local decision): the remote peer is in the internal address's family.
    if (f.remote_addr.is_v4() != internal.is_v4()) return wire::ResultCode::MalformedOption;
    // R-FLT-4: IPv4 prefixes count bits of the mapped form (96..128); IPv6 0..128.
    const std::uint8_t lo = internal.is_v4() ? 96 : 0;
    if (f.prefix_length < lo || f.prefix_length > 128) return wire::ResultCode::MalformedOption;
  }
  return std::nullopt;
}

std::optional<std::vector<wire::Filter>> merge_filters(const std::vector<wire::Filter>& current,
                                                       std::span<const wire::Filter> requested,
                                                       std::uint32_t max) {
  std::vector<wire::Filter> out = current;
  for (const wire::Filter& f : requested) {  // RFC 6887 §13.3: processed in order
    if (f.prefix_length == 0) {
      out.clear();  // R-FLT-2
      continue;
    }
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);  // R-FLT-6: add
  }
  if (out.size() > max) return std::nullopt;  // R-FLT-3: reject whole, change nothing
  return out;
}

std::optional<std::string_view> apply_description(Mapping& m, const wire::Options& options,
                                                  std::uint32_t max) {
  if (!options.description) return std::nullopt;
  // RFC 7220 §3: invalid UTF-8 is ignored; longer text is truncated to the configured maximum.
  auto text = description_text(*options.description, std::min<std::size_t>(max, wire::kMaxDescription));
  if (!text) return std::nullopt;
  m.description.assign(text->data(), text->size());  // a renewal replaces; empty erases
  return text;
}

}  // namespace pcpd::core
