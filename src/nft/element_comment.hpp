// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::ElementComment: the comment pcpd writes on the primary element of each mapping
// (map4_dnat, pin6, peer4_snat, peer6), readable in `nft list table inet pcpd` and precise enough
// for recovery to rebuild the Mapping after a restart. Standard library and core types only.
//
// Format: space-separated fields, in this order, ASCII except the description:
//
//   <origin> <kind> [c=<client>] n=<nonce> l=<lifetime> [f=<flags>] [d=<text> | d~=<text>]
//
//   origin    "pcp" (PCP, RFC 6887), "pmp" (NAT-PMP, RFC 6886) or "static" (a [[static]] entry
//             of the configuration: no nonce, l=4294967295, elements without a timeout)
//   kind      "map" or "peer"
//   c=        requesting client address, only when it differs from the internal address
//             (THIRD_PARTY); dotted quad or RFC 5952
//   n=        mapping nonce, 24 lowercase hex digits
//   l=        last granted lifetime in seconds (decimal)
//   f=        flag letters, present only when a flag is set: t = THIRD_PARTY, k = checkpoint
//             (RFC 7767 CHECKPOINT_REQUIRED honoured), w = checkpoint asked for and deferred
//             until the standby peer is back (core::Mapping::checkpoint_deferred)
//   d= / d~=  description (RFC 7220), always the last field, running to the end of the comment:
//             bytes 0x20..0x7e other than '"' and '\' are written as is, valid UTF-8 sequences
//             are kept, every other byte is written \xHH (two lowercase hex digits).
//             "d~=" means the description was cut to fit (see kMaxCommentLength); it is cut
//             between characters, never inside an escape or a UTF-8 sequence.
//
// Example: pcp map n=00112233445566778899aabb l=3600 f=k d=web server \x22main\x22
//
// Limits measured on kernel 6.18 / nft 1.0.6 (tests/integration/nft_kernel_test.cpp): the comment
// is one userdata TLV (type, length, text, NUL). The kernel accepts 254 bytes of element userdata
// and refuses 255 with EINVAL (NFT_USERDATA_MAXLEN is 256, but not all of it is usable), so the
// text is at most 251 bytes, in every pcpd set. The nft CLI refuses comments over 128 characters
// on input but lists longer ones in full. pcpd writes at most kMaxCommentLength bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/mapping.hpp"

namespace pcpd::nft {

inline constexpr std::size_t kMaxCommentLength = 251;

struct ElementComment {
  core::Origin origin = core::Origin::Pcp;
  core::MappingKind kind = core::MappingKind::Map;
  std::optional<wire::IpAddr> client;  // absent: same as the internal address
  wire::Nonce nonce{};
  std::uint32_t lifetime = 0;
  bool third_party = false;
  bool checkpoint = false;
  bool checkpoint_deferred = false;
  std::string description;
  bool description_truncated = false;

  // Takes the comment fields of a mapping (client omitted when equal to internal_addr).
  static ElementComment from(const core::Mapping& m);
  // The text; never longer than `max_length` (the description is cut first).
  // Precondition: max_length leaves room for the fixed fields (>= 100).
  [[nodiscard]] std::string encode(std::size_t max_length = kMaxCommentLength) const;
  // nullopt when the text is not a pcpd comment.
  static std::optional<ElementComment> parse(std::string_view text);
};

}  // namespace pcpd::nft
