// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::client request building and response matching: pure functions over wire messages.
#pragma once

#include "client/mapping_spec.hpp"
#include "wire/messages.hpp"

namespace pcpd::client {

// The internal address a mapping is for: the THIRD_PARTY address if given, else the client's.
[[nodiscard]] wire::IpAddr internal_address(const MappingSpec& spec, const wire::IpAddr& client_addr);

// A MAP or PEER request for `spec` with `nonce`, from `client_addr` (the PCP Client's IP Address,
// IPv4 mapped, RFC 6887 §7.1). The request's description views spec.description: keep `spec`
// alive until the request is encoded.
[[nodiscard]] wire::Request build_request(const MappingSpec& spec, const wire::Nonce& nonce,
                                          const wire::IpAddr& client_addr);

// An ANNOUNCE request (RFC 6887 §14.1.1: requested lifetime 0), optionally asking for CAPABILITY.
[[nodiscard]] wire::Request build_announce(const wire::IpAddr& client_addr, bool capability);

// RFC 6887 §8.3, §11.4, §12.4: does `response` answer `request`? Same opcode; for MAP and PEER the
// same nonce, protocol and internal port; for PEER also the same remote peer address and port.
[[nodiscard]] bool response_matches(const wire::Request& request, const wire::Response& response);

}  // namespace pcpd::client
