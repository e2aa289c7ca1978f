// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd::config::detail: what the parser's parts share. Section reads one TOML table with typed,
// range-checked getters that name file:line; the parse_* functions read one table each into a
// Config (config_sections.cpp: every table but [[static]]; config_static.cpp: [[static]]).
// Private to pcp_config.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <toml++/toml.h>

#include "config/config.hpp"

namespace pcpd::config::detail {

inline constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();

inline int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }
const char* type_name(toml::node_type t);

class Section {
 public:
  Section(const std::string& file, std::string name, const toml::table* table, int line)
      : file_(file), name_(std::move(name)), table_(table), line_(line) {}

  // Every key of the table must be in `known` (docs/interfaces.md).
  void only(std::initializer_list<std::string_view> known) const {
    if (table_ == nullptr) return;
    for (auto&& [k, v] : *table_) {
      if (std::find(known.begin(), known.end(), k.str()) == known.end())
        fail(static_cast<int>(k.source().begin.line),
             "unknown key '" + std::string(k.str()) + "' in [" + name_ + "]");
    }
  }

  [[nodiscard]] const toml::node* get(std::string_view key) const {
    return table_ == nullptr ? nullptr : table_->get(key);
  }
  [[nodiscard]] int line(std::string_view key) const {
    const auto* n = get(key);
    return n != nullptr ? line_of(*n) : line_;
  }
  [[nodiscard]] std::string qualified(std::string_view key) const {
    return name_ + "." + std::string(key);
  }

  [[noreturn]] void fail(int line, const std::string& msg) const { throw ConfigError(file_, line, msg); }
  [[noreturn]] void fail_key(std::string_view key, const std::string& msg) const {
    fail(line(key), qualified(key) + ": " + msg);
  }
  [[noreturn]] void wrong_type(std::string_view key, const toml::node& n, const char* want) const {
    fail(line_of(n), qualified(key) + ": expected " + want + ", got " + type_name(n.type()));
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    const auto* v = n->as_integer();
    if (v == nullptr) wrong_type(key, *n, "an integer");
    std::int64_t x = v->get();
    if (x < min || x > max)
      fail_key(key, std::to_string(x) + " is out of range [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
    return x;
  }
  void u32(std::string_view key, std::uint32_t& out, std::int64_t min, std::int64_t max = kU32Max) const {
    if (auto x = integer(key, min, max)) out = static_cast<std::uint32_t>(*x);
  }
  // An integer or a float, within [min, max].
  void number(std::string_view key, double& out, double min, double max) const {
    const auto* n = get(key);
    if (n == nullptr) return;
    double x = 0;
    if (const auto* i = n->as_integer()) {
      x = static_cast<double>(i->get());
    } else if (const auto* f = n->as_floating_point()) {
      x = f->get();
    } else {
      wrong_type(key, *n, "a number");
    }
    if (!(x >= min && x <= max))
      fail_key(key, std::to_string(x) + " is out of range [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
    out = x;
  }
  void boolean(std::string_view key, bool& out) const {
    const auto* n = get(key);
    if (n == nullptr) return;
    const auto* v = n->as_boolean();
    if (v == nullptr) wrong_type(key, *n, "a boolean");
    out = v->get();
  }
  std::optional<std::string> string(std::string_view key) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    const auto* v = n->as_string();
    if (v == nullptr) wrong_type(key, *n, "a string");
    return v->get();
  }
  const toml::array* array(std::string_view key) const {
    const auto* n = get(key);
    if (n == nullptr) return nullptr;
    const auto* a = n->as_array();
    if (a == nullptr) wrong_type(key, *n, "an array");
    return a;
  }
  // Each element of an array of strings, with its line.
  template <typename F>
  void each_string(std::string_view key, const toml::array& a, F&& f) const {
    for (const auto& el : a) {
      const auto* s = el.as_string();
      if (s == nullptr)
        fail(line_of(el), qualified(key) + ": expected strings, got " + type_name(el.type()));
      f(s->get(), line_of(el));
    }
  }

  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  const std::string& file_;
  std::string name_;
  const toml::table* table_;
  int line_;
};

// "tcp", "udp", "sctp", "dccp", "udplite" or 1-255.
std::optional<std::uint8_t> protocol_number(std::string_view name);

void parse_interfaces(const Section& s, Config& c);
void parse_mappings(const Section& s, Config& c);
void parse_errors(const Section& s, Config& c);
void parse_third_party(const Section& s, Config& c);
void parse_natpmp(const Section& s, Config& c);
void parse_announce(const Section& s, Config& c);
void parse_nftables(const Section& s, Config& c);
void parse_checkpoint(const Section& s, Config& c);
void parse_limits(const Section& s, Config& c);
void parse_capability(const Section& s, Config& c);
void parse_ha(const Section& s, Config& c);
void parse_daemon(const Section& s, Config& c);
// [[static]]: an array of tables, after [interfaces] and [mappings] (it reads both).
void parse_statics(const toml::node* node, const std::string& file, Config& c);

}  // namespace pcpd::config::detail
