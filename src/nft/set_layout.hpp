// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft set layout: the sets and maps of table `inet pcpd` (nft-rules/pcpd.nft) as the kernel
// describes them (key/data type ids, lengths, flags), and the byte encoding of their keys.
// Owns SetId, SetSpec, KeyWriter, KeyReader. Standard library and wire types only (no libnftnl).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "wire/ip_addr.hpp"

namespace pcpd::nft {

enum class SetId : std::uint8_t {
  WanIfnames,  // ifname
  Map4Dnat,    // ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
  Map4Snat,    // ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
  Peer4Snat,   // ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service : ipv4_addr . inet_service
  Pin6,        // ipv6_addr . inet_proto . inet_service
  Peer6,       // ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service
  Filt4On,     // ipv4_addr . inet_proto . inet_service
  Filt4Allow,  // ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service, interval
  Filt6On,     // ipv6_addr . inet_proto . inet_service
  Filt6Allow,  // ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service, interval
  // Checkpoint election keys (RFC 7767), plain sets matched by pcpd.nft's elect4/elect6 chains:
  Elect4Dst,   // ipv4_addr . inet_proto . inet_service: MAP NAT44 external endpoint (inbound)
  Elect4Src,   // ipv4_addr . inet_proto . inet_service: MAP NAT44 internal endpoint (outbound)
  Elect4Peer,  // ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service: PEER 5-tuple
  Elect6Dst,   // ipv6_addr . inet_proto . inet_service: pinhole endpoint (inbound)
  Elect6Src,   // ipv6_addr . inet_proto . inet_service: pinhole endpoint (outbound)
  Elect6Peer,  // ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service: PEER 5-tuple
  // All-ports MAP mappings (RFC 6887 §11.1 internal port 0, mappings.allow_all_ports):
  Map4DnatAll,  // ipv4_addr . inet_proto : ipv4_addr  (external address -> internal host)
  Map4SnatAll,  // ipv4_addr . inet_proto : ipv4_addr  (internal host -> external address)
  Pin6All,      // ipv6_addr . inet_proto              (every port of the host open)
};
inline constexpr std::size_t kSetCount = 19;

// Kernel set flags (linux/netfilter/nf_tables.h enum nft_set_flags), repeated here so that this
// header stays free of kernel headers.
inline constexpr std::uint32_t kSetFlagInterval = 0x4;
inline constexpr std::uint32_t kSetFlagMap = 0x8;
inline constexpr std::uint32_t kSetFlagTimeout = 0x10;

// nft datatype ids (nftables src/datatype.h) and how nft combines them for a concatenation:
// type = (type << 6) | field, first field most significant.
inline constexpr std::uint32_t kTypeIpv4 = 7;
inline constexpr std::uint32_t kTypeIpv6 = 8;
inline constexpr std::uint32_t kTypeInetProto = 12;
inline constexpr std::uint32_t kTypeInetService = 13;
inline constexpr std::uint32_t kTypeIfname = 41;
constexpr std::uint32_t concat_type(std::initializer_list<std::uint32_t> fields) {
  std::uint32_t t = 0;
  for (auto f : fields) t = (t << 6) | f;
  return t;
}

struct SetSpec {
  SetId id;
  std::string_view name;
  std::string_view nft_type;  // as written in pcpd.nft, for messages
  std::uint32_t key_type;
  std::uint32_t key_len;
  std::uint32_t data_type;  // 0 for plain sets
  std::uint32_t data_len;
  std::uint32_t flags;  // flags that must be set (the kernel may add others, e.g. concat)
  bool has_comment;     // primary element of a mapping: carries the element comment
};

std::span<const SetSpec> all_sets();
const SetSpec& set_spec(SetId id);

// Key / data bytes as the kernel stores them: every field padded to 4 bytes, addresses and ports
// in network byte order, the protocol in the first byte of its word.
inline constexpr std::size_t kMaxKeyLen = 64;  // NFT_REG32_COUNT * 4: the kernel's longest key

// The key, key end or data of one element, held inline (at most kMaxKeyLen bytes): an Element
// costs no allocation (building a refresh's elements was 31 mallocs a request).
class KeyBytes {
 public:
  KeyBytes() = default;
  KeyBytes(std::initializer_list<std::uint8_t> b) { append(std::span(b.begin(), b.size())); }
  explicit KeyBytes(std::span<const std::uint8_t> b) { append(b); }

  [[nodiscard]] const std::uint8_t* data() const { return bytes_.data(); }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] const std::uint8_t* begin() const { return bytes_.data(); }
  [[nodiscard]] const std::uint8_t* end() const { return bytes_.data() + size_; }
  [[nodiscard]] std::span<const std::uint8_t> span() const { return {bytes_.data(), size_}; }
  // Precondition: i < size().
  [[nodiscard]] std::uint8_t operator[](std::size_t i) const { return bytes_[i]; }
  [[nodiscard]] std::uint8_t& operator[](std::size_t i) { return bytes_[i]; }
  operator std::span<const std::uint8_t>() const { return span(); }  // NOLINT: a view, like a vector's

  // Precondition: size() + b.size() <= kMaxKeyLen (every key of pcpd's table fits).
  void append(std::span<const std::uint8_t> b);

  friend bool operator==(const KeyBytes& a, const KeyBytes& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const KeyBytes& a, std::span<const std::uint8_t> b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator<(const KeyBytes& a, const KeyBytes& b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  std::array<std::uint8_t, kMaxKeyLen> bytes_{};
  std::uint8_t size_ = 0;
};

class KeyWriter {
 public:
  KeyWriter& v4(const wire::IpAddr& a);
  KeyWriter& v6(const wire::IpAddr& a);
  KeyWriter& addr(const wire::IpAddr& a) { return a.is_v4() ? v4(a) : v6(a); }
  KeyWriter& proto(std::uint8_t p);
  KeyWriter& port(std::uint16_t p);
  KeyWriter& ifname(std::string_view name);  // 16 bytes, NUL padded; precondition: size < 16
  [[nodiscard]] KeyBytes take() const { return bytes_; }

 private:
  KeyBytes bytes_;
};

class KeyReader {
 public:
  explicit KeyReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::optional<wire::IpAddr> v4();
  std::optional<wire::IpAddr> v6();
  std::optional<std::uint8_t> proto();
  std::optional<std::uint16_t> port();
  [[nodiscard]] bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

}  // namespace pcpd::nft
