// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::wire CAPABILITY (draft-boucadair-hops-capability-discovery-00, docs/design.md "CAPABILITY"): the one
// table of defined bits (number, config/CLI name, meaning) that server, client, config and docs
// share, and CapabilitySet, the 128-bit field of the option.
// Bit numbering (docs/design.md "CAPABILITY", the only reading consistent with hops-00): MSB first across
// the 16 data bytes, so bit n is data byte n/8 with mask 0x80 >> n%8; bit 0 is A (RFC 7652
// authentication). Example: NAT44 (1) = byte 0 mask 0x40, TCP (119) = byte 14 mask 0x01.
// Standard library only; the name functions allocate (not on the packet path).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/messages.hpp"

namespace pcpd::wire {

inline constexpr unsigned kCapabilityBitCount = 128;
inline constexpr unsigned kCapabilityAuthBit = 0;  // A: PCP authentication (RFC 7652)

// One defined bit of hops-00 §3.2.2.
struct CapabilityBit {
  std::uint8_t bit;              // 0..127
  std::string_view name;         // config and pcpc name: lower case, '-' separated
  std::string_view description;  // what a set bit means
  std::string_view reference;    // RFC or draft
  std::uint8_t protocol;         // IANA transport protocol this bit stands for, 0 if none
};

// Every bit hops-00 defines, in bit order. The other bits are unassigned.
inline constexpr std::array<CapabilityBit, 20> kCapabilityBits{{
    {0, "authentication", "PCP authentication supported (A bit)", "RFC 7652", 0},
    {1, "nat44", "NAT44", "RFC 3022", 0},
    {2, "nat64-stateless", "stateless NAT64", "RFC 6145", 0},
    {4, "nat64-stateful", "stateful NAT64", "RFC 6146", 0},
    {5, "ds-lite-aftr", "DS-Lite AFTR", "RFC 6333", 0},
    {6, "ds-extra-lite", "Dual-Stack Extra Lite", "RFC 6619", 0},
    {8, "prr", "A+P Port Range Router", "RFC 6346", 0},
    {9, "port-set", "supports the PORT_SET option", "RFC 7753", 0},
    {16, "ipv4-firewall", "IPv4 firewall", "-", 0},
    {32, "ipv6-firewall", "IPv6 firewall", "RFC 6092", 0},
    {64, "nptv6", "IPv6-to-IPv6 Network Prefix Translation", "RFC 6296", 0},
    {119, "tcp", "TCP", "RFC 793", 6},
    {120, "udp", "UDP", "RFC 768", 17},
    {121, "udp-lite", "UDP-Lite compliant", "RFC 3828", 136},
    {122, "dccp", "DCCP", "RFC 4340", 33},
    {123, "sctp", "SCTP", "RFC 4960", 132},
    {124, "mptcp", "MPTCP-friendly (does not strip MPTCP signals)", "RFC 6824", 0},
    {125, "dscp-remarking", "DSCP re-marking function", "-", 0},
    {126, "flowdata", "FLOWDATA-aware function", "draft-wing-pcp-flowdata", 0},
    {127, "ilnp", "ILNP translator", "RFC 6740", 0},
}};

// The defined bit with this name / number; nullptr if none.
[[nodiscard]] const CapabilityBit* capability_by_name(std::string_view name);
[[nodiscard]] const CapabilityBit* capability_by_bit(unsigned bit);
// The transport bit (119..123) of an IANA protocol number (6, 17, 136, 33, 132); nullopt if
// the protocol has no bit.
[[nodiscard]] std::optional<std::uint8_t> capability_bit_for_protocol(std::uint8_t protocol);

// The 128-bit field of a CAPABILITY option.
class CapabilitySet {
 public:
  using Bytes = std::array<std::uint8_t, kCapabilityBytes>;

  constexpr CapabilitySet() = default;
  [[nodiscard]] static constexpr CapabilitySet from_bytes(const Bytes& bytes) {
    CapabilitySet s;
    s.bytes_ = bytes;
    return s;
  }
  [[nodiscard]] constexpr const Bytes& bytes() const { return bytes_; }

  // Bits >= 128 are ignored by set() and test() (test() answers false).
  constexpr void set(unsigned bit, bool on = true) {
    if (bit >= kCapabilityBitCount) return;
    const auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    auto& b = bytes_[bit / 8];
    b = static_cast<std::uint8_t>(on ? (b | mask) : (b & ~mask));
  }
  [[nodiscard]] constexpr bool test(unsigned bit) const {
    return bit < kCapabilityBitCount && (bytes_[bit / 8] & (0x80u >> (bit % 8))) != 0;
  }
  // By name (kCapabilityBits); false for an unknown name (nothing changes).
  bool set(std::string_view name, bool on = true);
  [[nodiscard]] bool test(std::string_view name) const;

  [[nodiscard]] constexpr bool empty() const {
    for (auto b : bytes_)
      if (b != 0) return false;
    return true;
  }
  [[nodiscard]] unsigned count() const;
  // The set bits in bit order: defined ones by name, unassigned ones as "bitN".
  [[nodiscard]] std::vector<std::string> names() const;
  // names() joined with ',', or "none" for the empty set.
  [[nodiscard]] std::string to_string() const;

  friend constexpr bool operator==(const CapabilitySet&, const CapabilitySet&) = default;

 private:
  Bytes bytes_{};
};

}  // namespace pcpd::wire
