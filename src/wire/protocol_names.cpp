// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/protocol_names.hpp"

#include <array>
#include <charconv>

namespace pcpd::wire {

namespace {

struct Named {
  std::string_view name;
  std::uint8_t number;
};
constexpr std::array<Named, 6> kNamed{{
    {"all", 0}, {"tcp", 6}, {"udp", 17}, {"dccp", 33}, {"sctp", 132}, {"udplite", 136}}};

}  // namespace

std::optional<std::uint8_t> parse_protocol(std::string_view text) {
  for (const Named& p : kNamed)
    if (text == p.name) return p.number;
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n > 255) return std::nullopt;
  return static_cast<std::uint8_t>(n);
}

std::string protocol_name(std::uint8_t protocol) {
  for (const Named& p : kNamed)
    if (p.number == protocol) return std::string(p.name);
  return std::to_string(protocol);
}

}  // namespace pcpd::wire
