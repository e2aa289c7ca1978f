// SPDX-License-Identifier: GPL-2.0-or-later
// pcpc output (docs/interfaces.md "pcpc(1)"): one human line or one JSON object per response,
// and the --keep event lines. Pure: strings and json values, no printing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "client/client.hpp"
#include "client/session.hpp"

namespace pcpd::pcpc {

// "MAP tcp 192.0.2.10:8080 -> 203.0.113.1:8080 lifetime=3600 epoch=12 nonce=<24 hex> SUCCESS"
// "PEER tcp 192.0.2.10:8080 -> 203.0.113.1:8080 remote=198.51.100.1:80 lifetime=... SUCCESS"
// "ANNOUNCE lifetime=0 epoch=12 SUCCESS"
[[nodiscard]] std::string human_line(const client::Outcome& outcome);

// Keys: opcode, result, result_code, lifetime, epoch; MAP/PEER add protocol, internal_address,
// internal_port, external_address, external_port, nonce; PEER adds remote_address, remote_port;
// options: what came back (third_party, prefer_failure, filters, description, checkpoint,
// capability as 32 hex digits); "capabilities": the names of a CAPABILITY that came back.
[[nodiscard]] nlohmann::json response_json(const client::Outcome& outcome);

// hops-00 CAPABILITY, per server (R-CAP-2):
// "CAPABILITY server=192.0.2.1 nat44,ipv6-firewall,tcp,udp" (names from wire::kCapabilityBits,
// unassigned bits as bitN, "none" for the empty set) and
// {"event": "capability", "server": "192.0.2.1", "capabilities": ["nat44", ...]}.
[[nodiscard]] std::string capability_line(const wire::IpAddr& server, const wire::CapabilitySet& set);
[[nodiscard]] nlohmann::json capability_json(const wire::IpAddr& server, const wire::CapabilitySet& set);

// pcpc listen: an unsolicited ANNOUNCE of a server first heard or whose epoch failed the check
// (RFC 6887 §8.5): "ANNOUNCE server=192.0.2.1 epoch=12 epoch_valid|epoch_invalid" and
// {"event": "announce", "server": ..., "epoch": N, "epoch_valid": B}.
[[nodiscard]] std::string announce_line(const client::Announcement& announcement, bool epoch_valid);
[[nodiscard]] nlohmann::json announce_json(const client::Announcement& announcement, bool epoch_valid);

// --keep: a Session event. Responses print as above (JSON gets an "event" key); the others print
// as "EVENT <name> ..." lines or {"event": ...} objects. Returns "" / null for nothing to print.
[[nodiscard]] std::string human_event(const client::SessionEvent& event);
[[nodiscard]] nlohmann::json json_event(const client::SessionEvent& event);

}  // namespace pcpd::pcpc
