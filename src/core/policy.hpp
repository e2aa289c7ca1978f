// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::core::Policy: every decision knob core needs, as plain values. pcp_config turns the TOML
// file into one; tests build one with designated initialisers. Defaults are the documented ones (docs/interfaces.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "wire/capability.hpp"
#include "wire/ip_addr.hpp"
#include "wire/messages.hpp"

namespace pcpd::core {

inline constexpr std::array<std::uint8_t, 2> kDefaultProtocols{6, 17};

struct Policy {
  // Addresses this NAT translates to (IPv4, mapped form). Empty: no NAT44 (IPv4 MAP/PEER get
  // NETWORK_FAILURE, R-RC "no external address yet").
  std::vector<wire::IpAddr> external_v4;
  bool nat44 = true;            // IPv4 internal hosts are translated (MAP = DNAT + EIM SNAT)
  bool ipv6_firewall = true;    // IPv6 internal hosts get pinholes (MAP = identity, R-MAP-11)
  // Transport protocols mapped (TCP, UDP). Built from an array: GCC 12 -O2 warns falsely
  // (-Wmaybe-uninitialized) on a std::vector initializer_list here.
  std::vector<std::uint8_t> protocols = std::vector<std::uint8_t>(kDefaultProtocols.begin(), kDefaultProtocols.end());

  // Lifetimes (RFC 6887 §15, R-LIFE-2; §7.4 error lifetimes).
  std::uint32_t min_lifetime = 120;
  std::uint32_t max_lifetime = 86400;
  std::uint32_t short_error_lifetime = 30;
  std::uint32_t long_error_lifetime = 1800;

  // External ports handed out (R-MAP-15: 5350/5351 on our own addresses never).
  std::uint16_t port_min = 1024;
  std::uint16_t port_max = 65535;
  // Internal ports that may not be mapped (NOT_AUTHORIZED); 5350 and 5351 always are.
  std::vector<std::uint16_t> denied_internal_ports;

  // Quotas (R-QUOTA): per client (internal address) and system-wide.
  std::uint32_t max_mappings_per_client = 256;  // -> USER_EX_QUOTA
  std::uint32_t max_mappings = 1'000'000;       // -> NO_RESOURCES
  std::uint32_t max_filters_per_mapping = 8;    // -> EXCESSIVE_REMOTE_PEERS

  // RFC 6887 §11.3 / R-MAP-7, R-OWN-2: a request for an existing mapping with another nonce.
  // Refuse (NOT_AUTHORIZED, the RFC's rule and the default), or SameHost: the host the mapping
  // belongs to may replace its nonce (clients that forget it: Apple after sleep, Tailscale, a
  // restarted bitcoind or libtorrent). Never another host's mapping, never through THIRD_PARTY.
  enum class NonceChange : std::uint8_t { Refuse, SameHost };
  NonceChange nonce_change = NonceChange::Refuse;
  bool allow_all_ports = false;  // all-ports / all-protocols MAP (R-MAP-3): off -> UNSUPP_PROTOCOL

  // THIRD_PARTY (R-TP-3): disabled, or enabled and the client outside the allow-list ->
  // UNSUPP_OPTION either way (docs/design.md "Decisions": never reveal who may use it).
  bool third_party = false;
  std::vector<wire::Prefix> third_party_allow;

  std::uint32_t description_max = 128;  // RFC 7220: <= 1016, 128 suggested

  bool natpmp = true;  // RFC 6886 on the same port and table

  // CHECKPOINT_REQUIRED (RFC 7767 §3.2, R-CKPT-4/7): honoured within these limits; beyond them
  // the mapping is still served and the option is left out of the response.
  struct Checkpoint {
    bool enabled = true;
    std::uint32_t max_total = 65536;      // elected mappings system-wide
    std::uint32_t max_per_client = 64;    // elected mappings per client (internal address)
    double rate_per_client = 10.0;        // elections per second per client (token bucket)
    double burst_per_client = 20.0;       // bucket size
  } checkpoint;

  // Request rate limits (RFC 6887 §18.1 "SHOULD rate-limit", R-QUOTA-5, R-SEC-3): token buckets
  // checked before a PCP or NAT-PMP datagram is decoded (core/rate_limiter.hpp). A refused
  // request is dropped silently (no reply: no amplification) and counted in Stats. Rate 0 = off.
  struct RateLimit {
    double client_rate = 100.0;    // requests per second per source address
    double client_burst = 300.0;   // bucket size: above the default quota of 256 mappings, so a
                                   // client may refresh all of them at once (R-ANN-6)
    double global_rate = 10000.0;  // requests per second from all clients together
    double global_burst = 20000.0;
    // RFC 6887 §13.2 / R-PF-3: PREFER_FAILURE requests that would create a mapping, per client.
    // Each CANNOT_PROVIDE_EXTERNAL tells whether one port is taken, so a client could probe the
    // ports one by one; over the bucket the answer is CANNOT_PROVIDE_EXTERNAL without looking.
    double prefer_failure_rate = 2.0;
    double prefer_failure_burst = 32.0;
  } rate_limit;

  // CAPABILITY (draft-boucadair-hops-capability-discovery-00, docs/design.md "CAPABILITY"): the
  // device's capability set. nullopt: not configured, never sent (R-CAP-3, R-CAP-5). Bit 0 (A,
  // RFC 7652 authentication) is always sent as 0: pcpd does not implement PCP authentication.
  // Sent in MAP, PEER and ANNOUNCE responses whose request carried the option (R-CAP-1/4) and
  // with UNSUPP_PROTOCOL (R-CAP-8); a transport protocol whose bit (119..123) is clear is
  // refused with UNSUPP_PROTOCOL.
  std::optional<wire::CapabilitySet> capabilities;
  // R-CAP-6: also in every MAP response and unsolicited ANNOUNCE, requested or not.
  bool capability_always = false;

  wire::OptionCodes option_codes{};
};

}  // namespace pcpd::core
