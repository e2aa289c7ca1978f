// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::nft::Element: one set/map element of table `inet pcpd`, and the pure translation between
// core::Mapping values and elements in both directions (install, and recovery after a restart).
// Owns Element, DumpedElement, mapping_elements(), rebuild_mappings(). No libnftnl here.
//
// A mapping is a group of elements, the primary one (with the comment) first:
//   MAP   IPv4  map4_dnat  ext . proto . ext_port : int . int_port   (primary, comment)
//               map4_snat  int . proto . int_port : ext . ext_port
//               filt4_on   ext . proto . ext_port                    (only with FILTERs)
//               filt4_allow ext . proto . ext_port . prefix . port-range, one per disjoint filter
//   MAP   IPv6  pin6       int . proto . port                        (primary, comment)
//               filt6_on / filt6_allow as above, keyed by the pinhole endpoint
//   PEER  IPv4  peer4_snat int . proto . int_port . remote . remote_port : ext . ext_port (primary)
//   PEER  IPv6  peer6      int . proto . int_port . remote . remote_port (primary)
//   MAP all ports (internal port 0, RFC 6887 §11.1), no FILTER, never elected:
//         IPv4  map4_dnat_all ext . proto : int (primary, comment); map4_snat_all int . proto : ext
//         IPv6  pin6_all   int . proto                              (primary, comment)
// A mapping with checkpoint = true (RFC 7767 CHECKPOINT_REQUIRED honoured) also has its election
// keys, last, with the same timeout (pcpd.nft's elect4/elect6 chains mark their connections):
//   MAP   IPv4  elect4_dst ext . proto . ext_port, elect4_src int . proto . int_port
//   MAP   IPv6  elect6_dst int . proto . port,      elect6_src int . proto . port
//   PEER  IPv4  elect4_peer / IPv6 elect6_peer: the same 5-tuple as the primary key
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/mapping.hpp"
#include "nft/set_layout.hpp"
#include "util/result.hpp"

namespace pcpd::nft {

struct Element {
  SetId set = SetId::Map4Dnat;
  KeyBytes key;
  KeyBytes key_end;     // interval sets only (closing key of the range)
  KeyBytes data;        // maps only
  std::string comment;  // primary elements only; empty = none
  friend bool operator==(const Element&, const Element&) = default;
};

// Whether `set` holds checkpoint election keys.
constexpr bool is_election_set(SetId set) {
  return set == SetId::Elect4Dst || set == SetId::Elect4Src || set == SetId::Elect4Peer ||
         set == SetId::Elect6Dst || set == SetId::Elect6Src || set == SetId::Elect6Peer;
}

// Every element representing `m`, primary first, election keys (checkpoint only) last. Fails (Error::code EOPNOTSUPP or EAFNOSUPPORT)
// for what the table cannot express: protocol 0 (all-protocols mappings), an all-ports mapping
// with an external port, FILTER or election, IPv4 internal with a non-IPv4 external or remote
// address, IPv6 with an IPv4 remote.
[[nodiscard]] Result<std::vector<Element>> mapping_elements(const core::Mapping& m);
// The same, appended to `out` (a caller's reused vector: no allocation per request). On
// failure `out` is as it was.
[[nodiscard]] Result<void> append_mapping_elements(const core::Mapping& m, std::vector<Element>& out);

// An element as read back from the kernel.
struct DumpedElement {
  KeyBytes key;
  KeyBytes key_end;
  KeyBytes data;
  std::string comment;
  std::uint64_t expiration_ms = 0;  // remaining time before the kernel removes it
};
using SetContents = std::array<std::vector<DumpedElement>, kSetCount>;

struct Rebuilt {
  std::vector<core::Mapping> mappings;  // each complete mapping once
  std::vector<Element> leftovers;       // elements of no complete mapping (to delete)
};

// Rebuilds the mappings from a dump of every set. A mapping is complete when its primary element
// has a pcpd comment and every other element mapping_elements() would install is present with the
// same data (so an elected mapping whose election keys are gone is incomplete, like one that lost
// its SNAT element, and a stray election key is a leftover). Filters come back in disjoint_filters() form. Mapping::expires = now + remaining
// kernel time of the primary element - grace.
Rebuilt rebuild_mappings(const SetContents& sets, core::Millis now, std::uint32_t grace_seconds);

// Two rebuilds of dumps taken one after the other (NftDatapath::recover(), when the first found
// leftovers). A set dump that spans several netlink reads re-walks the set for each part, so a
// hash-table resize in between can lose elements, and a lost element makes its mapping look
// incomplete. The mappings are those of the rebuild that found more; the leftovers are only the
// elements that both saw as leftovers, so nothing is deleted on the word of one dump.
Rebuilt reconcile(Rebuilt first, Rebuilt second);

}  // namespace pcpd::nft
