// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::ctl JSON views of core state, used by the daemon's control handlers and by pcpctl's
// text rendering. Depends on core types and nlohmann/json only.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/mapping.hpp"
#include "core/stats.hpp"

namespace pcpd::ctl {

// {"kind":"map","origin":"pcp","protocol":"tcp","protocol_number":6,"internal":"192.0.2.10:8080","external":...,
//  "remote":..., "client":..., "nonce":"hex", "lifetime":3600, "remaining":3590,
//  "checkpoint":false, "third_party":false, "filters":["203.0.113.100/32:0"], "description":""}
nlohmann::json mapping_to_json(const core::Mapping& m, core::Millis now);

// One line per mapping, for `pcpctl list` without --json.
std::string mapping_to_text(const nlohmann::json& m);

std::string protocol_name(int protocol);  // "tcp", "udp", ... or the number
std::string endpoint_text(const wire::IpAddr& a, unsigned port);  // 192.0.2.1:80, [2001:db8::1]:80
// One mapping in a log line: "map tcp 192.0.2.10:8080 -> 203.0.113.1:8080" (PEER: " peer R").
std::string mapping_summary(const core::Mapping& m);

}  // namespace pcpd::ctl
