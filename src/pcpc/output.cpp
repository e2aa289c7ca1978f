// SPDX-License-Identifier: GPL-2.0-or-later
#include "pcpc/output.hpp"

#include "pcpc/arguments.hpp"
#include "wire/codec.hpp"

namespace pcpd::pcpc {

namespace {

std::string hex_bytes(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (auto b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

nlohmann::json options_json(const client::Outcome& o) {
  const auto& opt = o.response.options;
  nlohmann::json j = nlohmann::json::object();
  if (opt.third_party) j["third_party"] = opt.third_party->to_string();
  if (opt.prefer_failure) j["prefer_failure"] = true;
  if (opt.filter_count > 0) {
    auto filters = nlohmann::json::array();
    for (const auto& f : opt.filter_list())
      filters.push_back({{"prefix", format_filter_prefix(f)}, {"port", f.remote_port}});
    j["filters"] = filters;
  }
  if (o.description) j["description"] = *o.description;
  if (opt.checkpoint_required) j["checkpoint"] = true;
  if (opt.capability) j["capability"] = hex_bytes(*opt.capability);
  return j;
}

}  // namespace

std::string human_line(const client::Outcome& o) {
  const auto& r = o.response;
  std::string s = wire::to_string(r.opcode);
  auto tail = [&] {
    return " lifetime=" + std::to_string(r.lifetime) + " epoch=" + std::to_string(r.epoch);
  };
  if (const auto* m = std::get_if<wire::MapBody>(&r.body)) {
    s += " " + protocol_name(m->protocol) + " " + format_endpoint(o.internal_addr, m->internal_port) +
         " -> " + format_endpoint(m->external_addr, m->external_port) + tail() +
         " nonce=" + nonce_hex(m->nonce);
  } else if (const auto* p = std::get_if<wire::PeerBody>(&r.body)) {
    s += " " + protocol_name(p->protocol) + " " + format_endpoint(o.internal_addr, p->internal_port) +
         " -> " + format_endpoint(p->external_addr, p->external_port) +
         " remote=" + format_endpoint(p->remote_addr, p->remote_port) + tail() +
         " nonce=" + nonce_hex(p->nonce);
  } else {
    s += tail();
  }
  s += " ";
  s += wire::to_string(r.result);
  return s;
}

nlohmann::json response_json(const client::Outcome& o) {
  const auto& r = o.response;
  nlohmann::json j;
  j["opcode"] = wire::to_string(r.opcode);
  j["result"] = wire::to_string(r.result);
  j["result_code"] = static_cast<unsigned>(r.result);
  j["lifetime"] = r.lifetime;
  j["epoch"] = r.epoch;
  auto common = [&](std::uint8_t protocol, std::uint16_t internal_port, const wire::IpAddr& ext,
                    std::uint16_t ext_port, const wire::Nonce& nonce) {
    j["protocol"] = protocol_name(protocol);
    j["internal_address"] = o.internal_addr.to_string();
    j["internal_port"] = internal_port;
    j["external_address"] = ext.to_string();
    j["external_port"] = ext_port;
    j["nonce"] = nonce_hex(nonce);
  };
  if (const auto* m = std::get_if<wire::MapBody>(&r.body)) {
    common(m->protocol, m->internal_port, m->external_addr, m->external_port, m->nonce);
  } else if (const auto* p = std::get_if<wire::PeerBody>(&r.body)) {
    common(p->protocol, p->internal_port, p->external_addr, p->external_port, p->nonce);
    j["remote_address"] = p->remote_addr.to_string();
    j["remote_port"] = p->remote_port;
  }
  j["options"] = options_json(o);
  if (auto caps = client::capability_of(r)) j["capabilities"] = caps->names();  // hops-00
  return j;
}

std::string capability_line(const wire::IpAddr& server, const wire::CapabilitySet& set) {
  return "CAPABILITY server=" + server.to_string() + " " + set.to_string();
}

nlohmann::json capability_json(const wire::IpAddr& server, const wire::CapabilitySet& set) {
  return {{"event", "capability"}, {"server", server.to_string()}, {"capabilities", set.names()}};
}

std::string announce_line(const client::Announcement& a, bool epoch_valid) {
  return "ANNOUNCE server=" + a.source.to_string() + " epoch=" + std::to_string(a.epoch) +
         (epoch_valid ? " epoch_valid" : " epoch_invalid");
}

nlohmann::json announce_json(const client::Announcement& a, bool epoch_valid) {
  return {{"event", "announce"},
          {"server", a.source.to_string()},
          {"epoch", a.epoch},
          {"epoch_valid", epoch_valid}};
}

std::string human_event(const client::SessionEvent& ev) {
  using K = client::SessionEvent::Kind;
  if (ev.outcome) return human_line(*ev.outcome);
  std::string s = std::string("EVENT ") + client::to_string(ev.kind);
  switch (ev.kind) {
    case K::Announce:
      s += " epoch=" + std::to_string(ev.epoch) + (ev.epoch_valid ? " epoch_valid" : " epoch_invalid");
      break;
    case K::EpochInvalid:
      s += " epoch=" + std::to_string(ev.epoch);
      break;
    case K::RecreateScheduled:
      s += " delay_ms=" + std::to_string(ev.delay.count());
      break;
    default:
      break;
  }
  return s;
}

nlohmann::json json_event(const client::SessionEvent& ev) {
  using K = client::SessionEvent::Kind;
  nlohmann::json j;
  if (ev.outcome) {
    j = response_json(*ev.outcome);
    j["event"] = client::to_string(ev.kind);
    return j;
  }
  j["event"] = client::to_string(ev.kind);
  switch (ev.kind) {
    case K::Announce:
      j["epoch"] = ev.epoch;
      j["epoch_valid"] = ev.epoch_valid;
      break;
    case K::EpochInvalid:
      j["epoch"] = ev.epoch;
      break;
    case K::RecreateScheduled:
      j["delay_ms"] = ev.delay.count();
      break;
    default:
      break;
  }
  return j;
}

}  // namespace pcpd::pcpc
