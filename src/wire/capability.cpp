// SPDX-License-Identifier: GPL-2.0-or-later
#include "wire/capability.hpp"

#include <bit>

namespace pcpd::wire {

const CapabilityBit* capability_by_name(std::string_view name) {
  for (const auto& b : kCapabilityBits)
    if (b.name == name) return &b;
  return nullptr;
}

const CapabilityBit* capability_by_bit(unsigned bit) {
  for (const auto& b : kCapabilityBits)
    if (b.bit == bit) return &b;
  return nullptr;
}

std::optional<std::uint8_t> capability_bit_for_protocol(std::uint8_t protocol) {
  if (protocol == 0) return std::nullopt;
  for (const auto& b : kCapabilityBits)
    if (b.protocol == protocol) return b.bit;
  return std::nullopt;
}

bool CapabilitySet::set(std::string_view name, bool on) {
  const CapabilityBit* b = capability_by_name(name);
  if (b == nullptr) return false;
  set(b->bit, on);
  return true;
}

bool CapabilitySet::test(std::string_view name) const {
  const CapabilityBit* b = capability_by_name(name);
  return b != nullptr && test(b->bit);
}

unsigned CapabilitySet::count() const {
  unsigned n = 0;
  for (auto b : bytes_) n += static_cast<unsigned>(std::popcount(b));
  return n;
}

std::vector<std::string> CapabilitySet::names() const {
  std::vector<std::string> out;
  for (unsigned bit = 0; bit < kCapabilityBitCount; ++bit) {
    if (!test(bit)) continue;
    const CapabilityBit* b = capability_by_bit(bit);
    out.push_back(b != nullptr ? std::string(b->name) : "bit" + std::to_string(bit));
  }
  return out;
}

std::string CapabilitySet::to_string() const {
  std::string s;
  for (const auto& n : names()) {
    if (!s.empty()) s += ',';
    s += n;
  }
  return s.empty() ? "none" : s;
}

}  // namespace pcpd::wire
