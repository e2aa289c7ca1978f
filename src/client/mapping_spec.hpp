// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client::MappingSpec: what an application asks for in one MAP or PEER request
// (RFC 6887 §11.1, §12.1) with its options (§13, RFC 7220, RFC 7767). Plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wire/messages.hpp"

namespace pcpd::client {

struct MappingSpec {
  wire::Opcode opcode = wire::Opcode::Map;  // Map or Peer
  std::uint8_t protocol = 0;                // IANA number; 0 = all protocols (MAP only)
  std::uint16_t internal_port = 0;          // 0 = all ports (MAP only)
  std::uint16_t suggested_external_port = 0;
  // nullopt: "no preference" in the family of the internal address (R-MAP-4).
  std::optional<wire::IpAddr> suggested_external_addr;
  std::uint32_t lifetime = 3600;            // 0 deletes a MAP (R-LIFE-1)
  std::optional<wire::Nonce> nonce;         // nullopt: a fresh random nonce (R-MAP-1)
  // PEER only (§12.1): the remote peer as this host sees it.
  wire::IpAddr remote_addr{};
  std::uint16_t remote_port = 0;
  // Options.
  std::optional<wire::IpAddr> third_party;  // THIRD_PARTY internal address (§13.1)
  bool prefer_failure = false;              // PREFER_FAILURE (§13.2), MAP only
  std::vector<wire::Filter> filters;        // FILTER (§13.3), MAP only, in order
  std::optional<std::string> description;   // DESCRIPTION (RFC 7220)
  bool checkpoint_required = false;         // CHECKPOINT_REQUIRED (RFC 7767)
  bool capability = false;                  // CAPABILITY request: 16 zero bytes (hops-00 R-CAP-1)
};

}  // namespace pcpd::client
