// SPDX-License-Identifier: GPL-2.0-or-later
#include "config/config_parser.hpp"

#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

#include "wire/capability.hpp"
#include "config/config_section.hpp"

namespace pcpd::config {

using namespace detail;

ConfigError::ConfigError(std::string file_name, int line_number, std::string text)
    : std::runtime_error(line_number > 0
                             ? file_name + ":" + std::to_string(line_number) + ": " + text
                             : file_name + ": " + text),
      file(std::move(file_name)),
      line(line_number),
      message(std::move(text)) {}

bool Config::accepts_source(const wire::IpAddr& source) const {
  return std::any_of(internal_prefixes.begin(), internal_prefixes.end(),
                     [&](const wire::Prefix& p) { return p.contains(source); });
}

Config parse_config_text(std::string_view text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw ConfigError(file, static_cast<int>(e.source().begin.line), std::string(e.description()));
  }

  Config c;
  c.file = file;
  using Parser = void (*)(const Section&, Config&);
  struct Part {
    std::string_view name;
    Parser parse;
  };
  static constexpr Part kParts[] = {
      {"interfaces", parse_interfaces}, {"mappings", parse_mappings},
      {"errors", parse_errors},         {"third_party", parse_third_party},
      {"natpmp", parse_natpmp},         {"announce", parse_announce},
      {"nftables", parse_nftables},     {"checkpoint", parse_checkpoint},
      {"limits", parse_limits},
      {"capability", parse_capability}, {"daemon", parse_daemon},
      {"ha", parse_ha},
  };
  for (auto&& [k, v] : root) {
    // A plain copy for the lambda: clang before 16 cannot capture a structured binding.
    const std::string_view name = k.str();
    if (name == "static") continue;  // [[static]]: an array of tables, parse_statics()
    bool known = std::any_of(std::begin(kParts), std::end(kParts),
                             [name](const Part& p) { return p.name == name; });
    int line = static_cast<int>(k.source().begin.line);
    if (!known) {
      throw ConfigError(file, line,
                        v.is_table() ? "unknown table [" + std::string(k.str()) + "]"
                                     : "unknown key '" + std::string(k.str()) + "' (outside any table)");
    }
    if (!v.is_table())
      throw ConfigError(file, line, std::string(k.str()) + ": expected a table, got " + type_name(v.type()));
  }
  for (const auto& part : kParts) {
    const toml::table* t = root.get_as<toml::table>(part.name);
    int line = t != nullptr ? line_of(*t) : 1;
    part.parse(Section(file, std::string(part.name), t, line), c);
  }
  parse_statics(root.get("static"), file, c);
  // Both option codes are known only now ([checkpoint] is parsed before [capability]).
  const auto& codes = c.policy.option_codes;
  if (codes.checkpoint_required == codes.capability) {
    const toml::node* cap = root.at_path("capability.option_code").node();
    const toml::node* ckpt = root.at_path("checkpoint.option_code").node();
    if (ckpt != nullptr)
      throw ConfigError(file, line_of(*ckpt),
                        "checkpoint.option_code: collides with the CAPABILITY option code");
    throw ConfigError(file, cap != nullptr ? line_of(*cap) : 0,
                      "capability.option_code: collides with the CHECKPOINT_REQUIRED option code");
  }
  return c;
}

void derive_capabilities(Config& c) {
  if (!c.capability_auto) return;
  const auto& p = c.policy;
  wire::CapabilitySet set;
  // R-CAP-4/5: only what this configuration makes pcpd do.
  if (p.nat44 && !p.external_v4.empty()) set.set(std::string_view("nat44"));
  if (p.ipv6_firewall) set.set(std::string_view("ipv6-firewall"));
  for (std::uint8_t proto : p.protocols)
    if (auto bit = wire::capability_bit_for_protocol(proto)) set.set(*bit);
  c.policy.capabilities = set;
}

Config parse_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path, 0, std::string("cannot read: ") + std::strerror(errno));
  return parse_config_text(text.str(), path);
}

}  // namespace pcpd::config
