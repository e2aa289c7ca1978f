// SPDX-License-Identifier: GPL-2.0-or-later
#include "nft/set_layout.hpp"

#include <cstring>

#include "util/result.hpp"

namespace pcpd::nft {
namespace {

constexpr std::uint32_t kV4Ep = concat_type({kTypeIpv4, kTypeInetProto, kTypeInetService});
constexpr std::uint32_t kV6Ep = concat_type({kTypeIpv6, kTypeInetProto, kTypeInetService});
constexpr std::uint32_t kV4Pair = concat_type({kTypeIpv4, kTypeInetService});
constexpr std::uint32_t kV4Proto = concat_type({kTypeIpv4, kTypeInetProto});
constexpr std::uint32_t kV6Proto = concat_type({kTypeIpv6, kTypeInetProto});
constexpr std::uint32_t kV4Five =
    concat_type({kTypeIpv4, kTypeInetProto, kTypeInetService, kTypeIpv4, kTypeInetService});
constexpr std::uint32_t kV6Five =
    concat_type({kTypeIpv6, kTypeInetProto, kTypeInetService, kTypeIpv6, kTypeInetService});

constexpr std::array<SetSpec, kSetCount> kSets{{
    {SetId::WanIfnames, "wan_ifnames", "set { type ifname; }", kTypeIfname, 16, 0, 0, 0, false},
    {SetId::Map4Dnat, "map4_dnat",
     "map { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags timeout; }",
     kV4Ep, 12, kV4Pair, 8, kSetFlagMap | kSetFlagTimeout, true},
    {SetId::Map4Snat, "map4_snat",
     "map { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags timeout; }",
     kV4Ep, 12, kV4Pair, 8, kSetFlagMap | kSetFlagTimeout, false},
    {SetId::Peer4Snat, "peer4_snat",
     "map { type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service : ipv4_addr . "
     "inet_service; flags timeout; }",
     kV4Five, 20, kV4Pair, 8, kSetFlagMap | kSetFlagTimeout, true},
    {SetId::Pin6, "pin6", "set { type ipv6_addr . inet_proto . inet_service; flags timeout; }", kV6Ep,
     24, 0, 0, kSetFlagTimeout, true},
    {SetId::Peer6, "peer6",
     "set { type ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service; flags timeout; }",
     kV6Five, 44, 0, 0, kSetFlagTimeout, true},
    {SetId::Filt4On, "filt4_on", "set { type ipv4_addr . inet_proto . inet_service; flags timeout; }",
     kV4Ep, 12, 0, 0, kSetFlagTimeout, false},
    {SetId::Filt4Allow, "filt4_allow",
     "set { type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service; flags interval, "
     "timeout; }",
     kV4Five, 20, 0, 0, kSetFlagInterval | kSetFlagTimeout, false},
    {SetId::Filt6On, "filt6_on", "set { type ipv6_addr . inet_proto . inet_service; flags timeout; }",
     kV6Ep, 24, 0, 0, kSetFlagTimeout, false},
    {SetId::Filt6Allow, "filt6_allow",
     "set { type ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service; flags interval, "
     "timeout; }",
     kV6Five, 44, 0, 0, kSetFlagInterval | kSetFlagTimeout, false},
    {SetId::Elect4Dst, "elect4_dst", "set { type ipv4_addr . inet_proto . inet_service; flags timeout; }",
     kV4Ep, 12, 0, 0, kSetFlagTimeout, false},
    {SetId::Elect4Src, "elect4_src", "set { type ipv4_addr . inet_proto . inet_service; flags timeout; }",
     kV4Ep, 12, 0, 0, kSetFlagTimeout, false},
    {SetId::Elect4Peer, "elect4_peer",
     "set { type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service; flags timeout; }",
     kV4Five, 20, 0, 0, kSetFlagTimeout, false},
    {SetId::Elect6Dst, "elect6_dst", "set { type ipv6_addr . inet_proto . inet_service; flags timeout; }",
     kV6Ep, 24, 0, 0, kSetFlagTimeout, false},
    {SetId::Elect6Src, "elect6_src", "set { type ipv6_addr . inet_proto . inet_service; flags timeout; }",
     kV6Ep, 24, 0, 0, kSetFlagTimeout, false},
    {SetId::Elect6Peer, "elect6_peer",
     "set { type ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service; flags timeout; }",
     kV6Five, 44, 0, 0, kSetFlagTimeout, false},
    {SetId::Map4DnatAll, "map4_dnat_all", "map { type ipv4_addr . inet_proto : ipv4_addr; flags timeout; }",
     kV4Proto, 8, kTypeIpv4, 4, kSetFlagMap | kSetFlagTimeout, true},
    {SetId::Map4SnatAll, "map4_snat_all", "map { type ipv4_addr . inet_proto : ipv4_addr; flags timeout; }",
     kV4Proto, 8, kTypeIpv4, 4, kSetFlagMap | kSetFlagTimeout, false},
    {SetId::Pin6All, "pin6_all", "set { type ipv6_addr . inet_proto; flags timeout; }", kV6Proto, 20, 0, 0,
     kSetFlagTimeout, true},
}};

}  // namespace

std::span<const SetSpec> all_sets() { return kSets; }

const SetSpec& set_spec(SetId id) { return kSets[static_cast<std::size_t>(id)]; }

void KeyBytes::append(std::span<const std::uint8_t> b) {
  PCPD_ASSERT(size_ + b.size() <= kMaxKeyLen);
  std::memcpy(bytes_.data() + size_, b.data(), b.size());
  size_ = static_cast<std::uint8_t>(size_ + b.size());
}

KeyWriter& KeyWriter::v4(const wire::IpAddr& a) {
  bytes_.append(std::span(a.bytes).subspan(12));
  return *this;
}

KeyWriter& KeyWriter::v6(const wire::IpAddr& a) {
  bytes_.append(a.bytes);
  return *this;
}

KeyWriter& KeyWriter::proto(std::uint8_t p) {
  const std::array<std::uint8_t, 4> b{p, 0, 0, 0};
  bytes_.append(b);
  return *this;
}

KeyWriter& KeyWriter::port(std::uint16_t p) {
  const std::array<std::uint8_t, 4> b{static_cast<std::uint8_t>(p >> 8), static_cast<std::uint8_t>(p & 0xff), 0, 0};
  bytes_.append(b);
  return *this;
}

KeyWriter& KeyWriter::ifname(std::string_view name) {
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), name.data(), name.size() < 15 ? name.size() : 15);
  bytes_.append(b);
  return *this;
}

std::optional<wire::IpAddr> KeyReader::v4() {
  if (bytes_.size() - pos_ < 4) return std::nullopt;
  wire::IpAddr a = wire::IpAddr::from_v4(0);
  std::memcpy(a.bytes.data() + 12, bytes_.data() + pos_, 4);
  pos_ += 4;
  return a;
}

std::optional<wire::IpAddr> KeyReader::v6() {
  if (bytes_.size() - pos_ < 16) return std::nullopt;
  wire::IpAddr a;
  std::memcpy(a.bytes.data(), bytes_.data() + pos_, 16);
  pos_ += 16;
  return a;
}

std::optional<std::uint8_t> KeyReader::proto() {
  if (bytes_.size() - pos_ < 4) return std::nullopt;
  auto p = bytes_[pos_];
  pos_ += 4;
  return p;
}

std::optional<std::uint16_t> KeyReader::port() {
  if (bytes_.size() - pos_ < 4) return std::nullopt;
  auto p = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
  pos_ += 4;
  return p;
}

}  // namespace pcpd::nft
