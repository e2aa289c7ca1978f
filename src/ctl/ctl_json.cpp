// SPDX-License-Identifier: GPL-2.0-or-later
#include "ctl/ctl_json.hpp"

#include <cstdio>

#include "wire/protocol_names.hpp"

namespace pcpd::ctl {

std::string protocol_name(int protocol) {
  if (protocol < 0 || protocol > 255) return std::to_string(protocol);
  return wire::protocol_name(static_cast<std::uint8_t>(protocol));
}

std::string endpoint_text(const wire::IpAddr& a, unsigned port) {
  if (a.is_v4()) return a.to_string() + ":" + std::to_string(port);
  return "[" + a.to_string() + "]:" + std::to_string(port);
}

std::string mapping_summary(const core::Mapping& m) {
  std::string s = std::string(m.kind == core::MappingKind::Map ? "map " : "peer ") + protocol_name(m.protocol) +
                  " " + endpoint_text(m.internal_addr, m.internal_port) + " -> " +
                  endpoint_text(m.external_addr, m.external_port);
  if (m.kind == core::MappingKind::Peer) s += " peer " + endpoint_text(m.remote_addr, m.remote_port);
  return s;
}

nlohmann::json mapping_to_json(const core::Mapping& m, core::Millis now) {
  char nonce[25];
  for (std::size_t i = 0; i < m.nonce.size(); ++i) std::snprintf(nonce + 2 * i, 3, "%02x", m.nonce[i]);
  nlohmann::json filters = nlohmann::json::array();
  for (const auto& f : m.filters) {
    wire::Prefix p{f.remote_addr, f.prefix_length};
    filters.push_back(p.to_string() + ":" + std::to_string(f.remote_port));
  }
  nlohmann::json j{
      {"kind", m.kind == core::MappingKind::Map ? "map" : "peer"},
      {"origin", m.origin == core::Origin::Pcp      ? "pcp"
                 : m.origin == core::Origin::NatPmp ? "natpmp"
                                                    : "static"},
      // The name, as pcpc prints it; the number too, for scripts that build nft set keys.
      {"protocol", protocol_name(m.protocol)},
      {"protocol_number", m.protocol},
      {"internal", endpoint_text(m.internal_addr, m.internal_port)},
      {"external", endpoint_text(m.external_addr, m.external_port)},
      {"client", m.client_addr.to_string()},
      {"nonce", nonce},
      {"lifetime", m.lifetime},
      {"remaining", m.remaining(now)},
      {"checkpoint", m.checkpoint},
      {"checkpoint_deferred", m.checkpoint_deferred},
      {"third_party", m.third_party},
      {"filters", filters},
      {"description", m.description},
  };
  if (m.kind == core::MappingKind::Peer) j["remote"] = endpoint_text(m.remote_addr, m.remote_port);
  return j;
}

std::string mapping_to_text(const nlohmann::json& m) {
  std::string s = m.value("kind", "?") + " " + m.value("protocol", std::string("?")) + " " +
                  m.value("internal", "?") + " -> " + m.value("external", "?");
  if (m.contains("remote")) s += " peer " + m["remote"].get<std::string>();
  if (m.value("origin", "pcp") == "static")
    s += " permanent";  // no lifetime, no nonce: the configuration's
  else
    s += " remaining=" + std::to_string(m.value("remaining", 0u)) + "/" +
         std::to_string(m.value("lifetime", 0u)) + " nonce=" + m.value("nonce", "");
  if (m.value("checkpoint", false)) s += " elected";
  if (m.value("checkpoint_deferred", false)) s += " election-deferred";
  if (m.value("third_party", false)) s += " third-party client=" + m.value("client", "");
  if (m.value("origin", "pcp") != "pcp") s += " origin=" + m.value("origin", "");
  if (!m["filters"].empty()) {
    s += " filters=";
    bool first = true;
    for (const auto& f : m["filters"]) {
      s += (first ? "" : ",") + f.get<std::string>();
      first = false;
    }
  }
  if (!m.value("description", "").empty()) s += " \"" + m.value("description", "") + "\"";
  return s;
}

}  // namespace pcpd::ctl
